"""Eigensolvers and their backward: our own Lanczos, a dense path, the broadened gradient."""

from cheeger.linalg.backward import DEFAULT_EPS, broadened_inverse_gaps
from cheeger.linalg.eigsh import EigSH, EigshConvergenceError, eigsh
from cheeger.linalg.lanczos import LanczosInfo, block_lanczos
from cheeger.linalg.operator import SymmetricOperator

__all__ = [
    "DEFAULT_EPS",
    "EigSH",
    "EigshConvergenceError",
    "LanczosInfo",
    "SymmetricOperator",
    "block_lanczos",
    "broadened_inverse_gaps",
    "eigsh",
]
