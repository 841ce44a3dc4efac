"""Eigensolvers and their backward: our own Lanczos, multigrid-preconditioned LOBPCG, a dense path,
the broadened gradient."""

from cheeger.linalg.backward import (
    DEFAULT_EPS,
    ComplementRecord,
    ComplementSolveError,
    broadened_inverse_gaps,
    record_complement,
)
from cheeger.linalg.certificate import connected_components
from cheeger.linalg.eigsh import EigSH, EigshConvergenceError, EigshInfo, eigsh
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
    "EigshInfo",
    "LanczosInfo",
    "LobpcgInfo",
    "MultigridPreconditioner",
    "SymmetricOperator",
    "block_lanczos",
    "broadened_inverse_gaps",
    "connected_components",
    "eigsh",
    "lobpcg",
    "lobpcg_eigsh",
    "record_complement",
]
