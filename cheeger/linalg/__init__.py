"""Eigensolvers and their backward: our own Lanczos, multigrid-preconditioned LOBPCG, a dense path,
the broadened gradient."""

from cheeger.linalg.backward import (
    DEFAULT_EPS,
    ComplementRecord,
    ComplementSolveError,
    broadened_inverse_gaps,
    record_complement,
)
from cheeger.linalg.eigsh import EigSH, EigshConvergenceError, eigsh
from cheeger.linalg.lanczos import LanczosInfo, block_lanczos
from cheeger.linalg.lobpcg import LobpcgInfo, lobpcg, lobpcg_eigsh
from cheeger.linalg.multigrid import AggregationMultigrid, MultigridPreconditioner
from cheeger.linalg.operator import SymmetricOperator

__all__ = [
    "DEFAULT_EPS",
    "AggregationMultigrid",
    "ComplementRecord",
    "ComplementSolveError",
    "EigSH",
    "EigshConvergenceError",
    "LanczosInfo",
    "LobpcgInfo",
    "MultigridPreconditioner",
    "SymmetricOperator",
    "block_lanczos",
    "broadened_inverse_gaps",
    "eigsh",
    "lobpcg",
    "lobpcg_eigsh",
    "record_complement",
]
