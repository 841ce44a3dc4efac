"""The broadened backward pass of a (partial) symmetric eigendecomposition.

For ``A = sum_j lambda_j u_j u_j^T`` and a loss of the bottom ``k`` pairs with cotangents
``g_lambda (k)`` and ``G = (g_1 .. g_k) (n, k)``, first-order perturbation theory gives

    A_bar = sym( sum_i g_lambda_i u_i u_i^T + sum_i sum_{j != i} F_ji (u_j^T g_i) u_j u_i^T ),
    F_ji  = 1 / (lambda_i - lambda_j)                                        (exact)
    F_ji  = (lambda_i - lambda_j) / ((lambda_i - lambda_j)^2 + eps^2)        (broadened)

(the seed's ``F_ij = (l_j - l_i) / ((l_j - l_i)^2 + eps^2)`` with the roles of the indices as
written here). The broadened factor equals the exact one to relative ``eps^2 / gap^2`` when the
gap is large, and is bounded by ``1 / (2 eps)`` when it closes, so

    ||A_bar||_F <= ||g_lambda||_2 + ||G||_F / (2 eps).

The sum over ``j`` runs over the WHOLE spectrum. A partial solve knows only ``j`` in the computed
set ``S``; the rest is

    x_i = sum_{j not in S} u_j (u_j^T g_i) F_ji = -P (B_i^2 + eps^2)^{-1} B_i P g_i,
    B_i = A - lambda_i I,   P = I - U U^T,

which :func:`complement_term` obtains from one complex-shifted linear solve per wanted pair (all
solved together, see there). With ``eps > 0`` the system is regular even when
``lambda_{k+1} = lambda_k``, so the complement needs no gap either.

A complement solve that stalls or runs out of iterations leaves that part of the gradient
approximate. It warns (Python shows a warning once per call site), and every solve inside a
:func:`record_complement` block is counted there (solves, columns, stalled and unconverged
columns, worst residual); ``record_complement(strict=True)`` makes such a solve raise
:class:`ComplementSolveError` instead. The training loop opens one record per step (its counts
become per-step metrics, ``spectral.head.solver_strict`` its ``strict``). The record is
process-wide, not per thread: autograd may run a backward on another thread (CUDA).
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

from cheeger.linalg.operator import SymmetricOperator

__all__ = [
    "DEFAULT_EPS",
    "ComplementRecord",
    "ComplementSolution",
    "ComplementSolveError",
    "broadened_inverse_gaps",
    "cocg_complement",
    "complement_term",
    "record_complement",
    "subspace_term",
]

#: Default broadening, relative to the spectrum's scale (the RMS eigenvalue
#: ``||A||_F / sqrt(n)``, about 1 for a normalised Laplacian): ``eps_abs = DEFAULT_EPS * scale``.
DEFAULT_EPS = 1e-3


class ComplementSolveError(RuntimeError):
    """A complement solve stalled or did not converge inside ``record_complement(strict=True)``."""


@dataclass(eq=False)  # records are told apart by identity (two may hold equal counts)
class ComplementRecord:
    """Counts of the complement solves run inside one :func:`record_complement` block.

    Attributes:
        solves: :func:`complement_term` calls (one per backward of a partial solve).
        columns: right-hand sides solved (``B k`` per call).
        stalled: columns stopped by ``patience`` above the tolerance.
        unconverged: columns that hit ``maxiter`` above the tolerance.
        worst_residual: the largest final relative residual of a column above the tolerance
            (0 when every column met it).
        strict: raise :class:`ComplementSolveError` instead of warning.
    """

    solves: int = 0
    columns: int = 0
    stalled: int = 0
    unconverged: int = 0
    worst_residual: float = 0.0
    strict: bool = False


_RECORDS: list[ComplementRecord] = []
_RECORDS_LOCK = threading.Lock()


@contextlib.contextmanager
def record_complement(strict: bool = False) -> Iterator[ComplementRecord]:
    """Count the complement solves of the backward passes run inside the block.

    Args:
        strict: a solve that stalls or does not converge raises :class:`ComplementSolveError`
            (from inside ``backward()``) instead of warning.

    Example:
        >>> from cheeger.linalg import eigsh
        >>> path = torch.diag(torch.ones(199, dtype=torch.float64), 1)  # a path graph's weights
        >>> A = (torch.diag((path + path.T).sum(1)) - path - path.T).requires_grad_()  # its L
        >>> with record_complement() as record:
        ...     _, U = eigsh(A, 2, method="lanczos")
        ...     U.sum().backward()
        >>> record.solves, record.columns, record.stalled + record.unconverged
        (1, 2, 0)
    """
    record = ComplementRecord(strict=strict)
    with _RECORDS_LOCK:
        _RECORDS.append(record)
    try:
        yield record
    finally:
        with _RECORDS_LOCK:
            _RECORDS.remove(record)


def _report(columns: int, stalled: int, unconverged: int, worst: float) -> bool:
    """Add one solve to every open record; whether any of them is strict."""
    with _RECORDS_LOCK:
        records = list(_RECORDS)
    for record in records:
        record.solves += 1
        record.columns += columns
        record.stalled += stalled
        record.unconverged += unconverged
        record.worst_residual = max(record.worst_residual, worst)
    return any(record.strict for record in records)


def broadened_inverse_gaps(
    lam_rows: torch.Tensor, lam_cols: torch.Tensor, eps: torch.Tensor
) -> torch.Tensor:
    """``F_ai = (l_i - l_a) / ((l_i - l_a)^2 + eps^2)``, 0 where ``l_i == l_a`` and ``eps == 0``.

    Args:
        lam_rows: ``(B, p)`` eigenvalues indexing rows ``a``.
        lam_cols: ``(B, k)`` eigenvalues indexing columns ``i``.
        eps: ``(B,)`` absolute broadening (0 gives the exact rule).

    Returns:
        ``(B, p, k)``.
    """
    gap = lam_cols[:, None, :] - lam_rows[:, :, None]  # (B, p, k)
    denom = gap.square() + eps[:, None, None].square()
    # The exact rule (eps = 0) is undefined at a zero gap: the pair's own term vanishes anyway
    # (a == i), and a degenerate pair is left out, i.e. the gradient is taken in the gauge where
    # the degenerate basis does not rotate.
    return torch.where(denom > 0, gap / denom.where(denom > 0, 1.0), torch.zeros_like(gap))


def subspace_term(
    lam: torch.Tensor,
    U: torch.Tensor,
    g_lam: torch.Tensor | None,
    g_U: torch.Tensor | None,
    eps: torch.Tensor,
    lam_basis: torch.Tensor | None = None,
    U_basis: torch.Tensor | None = None,
) -> torch.Tensor:
    """``P`` with ``A_bar = sym(P U^T)`` from the pairs in a known eigenbasis.

    ``U_basis`` (``(B, n, p)``, default ``U``) holds the eigenvectors the sum over ``j`` can use:
    ``U`` itself for a partial solve, the whole eigenbasis for a dense one.

    Returns:
        ``(B, n, k)``: ``U_basis (F o (U_basis^T G)) + U diag(g_lambda)``.
    """
    P = torch.zeros_like(U)
    if g_lam is not None:
        P = P + U * g_lam[:, None, :]  # (B, n, k)
    if g_U is not None:
        if U_basis is None:
            lam_basis, U_basis = lam, U
        F = broadened_inverse_gaps(lam_basis, lam, eps)  # (B, p, k)
        P = P + U_basis @ (F * (U_basis.transpose(-1, -2) @ g_U))
    return P


def _default_tol(dtype: torch.dtype) -> float:
    """The complement solve's relative residual target when none is given."""
    return 1e-10 if dtype == torch.float64 else 1e-5


def _project(U: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """``P Y = Y - U (U^T Y)`` on real ``Y`` ``(B, n, m)``: the projector off ``span(U)``."""
    return torch.baddbmm(Y, U, U.transpose(-1, -2) @ Y, alpha=-1)  # (B, n, m)


def _on_columns(
    fn: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor],
    Y: torch.Tensor,
    idx: torch.Tensor | None,
) -> torch.Tensor:
    """``fn`` applied to the columns ``idx`` ``(m,)`` of ``Y`` ``(B, n, k)`` only (all when
    ``None``), the other columns of the result left 0; ``fn(Y_cols, idx)``."""
    if idx is None:
        return fn(Y, None)
    out = torch.zeros_like(Y)
    out[..., idx] = fn(Y[..., idx].contiguous(), idx)
    return out  # (B, n, k)


@dataclass(frozen=True)
class ComplementSolution:
    """What :func:`cocg_complement` returns.

    Attributes:
        z: ``(B, n, k)`` complex solutions.
        residual: ``(B, k)`` recursive residual norm of each returned column.
        unmet: ``(B, k)`` columns returned above their target (``tol ||g_i||``).
        stalled: ``(B, k)`` of those, the ones stopped by ``patience``.
        iterations: COCG iterations run.
        tol, maxiter: the relative target and the iteration cap the solve ran with.
    """

    z: torch.Tensor
    residual: torch.Tensor
    unmet: torch.Tensor
    stalled: torch.Tensor
    iterations: int = 0
    tol: float = 0.0
    maxiter: int = 0


def cocg_complement(
    op: SymmetricOperator,
    lam: torch.Tensor,
    U: torch.Tensor,
    g_U: torch.Tensor,
    eps: torch.Tensor,
    *,
    tol: float | None = None,
    maxiter: int = 2000,
    patience: int = 200,
    precond: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> ComplementSolution:
    """Solve ``P (B_i - i eps) P z_i = P g_i`` for every column: the complex system behind
    :func:`complement_term` (which returns ``x_i = -Re P z_i`` and reports the failures).

    ``B_i (B_i^2 + eps^2)^{-1} = Re (B_i - i eps)^{-1}``, so ``x_i = -Re z_i`` with
    ``P (B_i - i eps) P z_i = P g_i``: a complex SYMMETRIC (not Hermitian) system, solved by
    conjugate orthogonal conjugate gradients (COCG, van der Vorst and Melissen 1990) for all ``k``
    right-hand sides and the whole batch at once. On the complement ``B_i`` is positive
    semi-definite, and COCG converges like CG on ``B_i + eps``: about ``sqrt(||A|| / max(gap,
    eps))`` iterations, where CG on the normal form ``B_i^2 + eps^2`` would need the square of
    that (measured on a 24 x 24 image grid: ~20,000 iterations against ~600). Each iteration is one
    product of ``A`` with ``2 k`` real columns. With ``T ~ (A + tau I)^{-1}`` the rate depends on
    ``lambda_{k+1} / gap`` instead of ``||A|| / gap``: on 6 batches of the trained camvid_lite0
    head's graphs (45 x 60, float32, k = 16, random cotangents) 12-24 iterations, 1.7-1.9x less
    time than the plain solve at tol 1e-3 and 1e-5 (one thread, a fresh hierarchy included).

    Args:
        op: the matrix.
        lam, U: ``(B, k)``, ``(B, n, k)`` computed eigenpairs (orthonormal ``U``).
        g_U: ``(B, n, k)`` eigenvector cotangents.
        eps: ``(B,)`` absolute broadening; may be 0 only if the complement is gapped.
        tol: residual target relative to ``||g_i||`` (default 1e-10 float64, 1e-5 float32).
        maxiter: iteration cap; an unconverged solve warns with its residual.
        patience: a column whose best residual has not halved in this many iterations has
            stalled (rounding, typically float32) and stops, with the same warning.
        precond: ``Y (B, n, m) -> T Y`` on real columns, ``T`` symmetric positive definite
            (e.g. the multigrid V-cycle of LOBPCG's forward, ``T ~ (A + tau I)^{-1}``), or
            ``None``. Preconditioned COCG uses ``P T P``, still complex symmetric; the residual
            and the stopping rules are those of the unpreconditioned system.

    Returns:
        :class:`ComplementSolution`: ``z`` (each column's converged iterate, or for a column that
        stopped above its target its best one, z = 0 included), its recursive residual, and which
        columns stopped above the target (stalled or out of iterations).
    """
    if tol is None:
        tol = _default_tol(U.dtype)
    B, n, k = U.shape

    # The iterates are complex (B, n, k), but every product is done in real arithmetic on the
    # (B, n, 2k) real view of their interleaved (re, im) parts: A and U are real, so one real
    # product serves both parts, without copies, as the iterates are contiguous (measured at
    # n = 690, B = 8, k = 16: complex bmm, `cat` / `complex` assembly and complex `abs` were 3/4
    # of the iteration's time).
    def real(Z: torch.Tensor) -> torch.Tensor:  # (B, n, m) complex -> (B, n, 2m) view
        return torch.view_as_real(Z).reshape(B, n, 2 * Z.shape[-1])

    def cplx(Y: torch.Tensor) -> torch.Tensor:  # (B, n, 2m) real -> (B, n, m) complex view
        return torch.view_as_complex(Y.reshape(B, n, Y.shape[-1] // 2, 2))

    shift = (lam[:, None, :] + 1j * eps[:, None, None]).to(  # (B, 1, k)
        torch.complex128 if U.dtype == torch.float64 else torch.complex64
    )

    def system(Z: torch.Tensor, cols: torch.Tensor | None = None) -> torch.Tensor:
        # P (B_i - i eps) P Z on complex Z (B, n, m): all k columns, or the columns `cols`
        AZ = cplx(op.matmul(real(Z)))  # one product with 2m real columns
        sigma = shift if cols is None else shift[..., cols]  # (B, 1, m)
        return cplx(_project(U, real(AZ - sigma * Z)))

    # column sums over n of the real view (a complex reduction over a non-innermost dim, or a
    # complex `abs`, is several times slower)
    def bilinear(X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:  # (B, k) x^T y, no conjugate
        return torch.view_as_complex(real(X * Y).sum(-2).reshape(B, k, 2))

    def norm(Z: torch.Tensor) -> torch.Tensor:  # (B, k) column 2-norms
        return real(Z).square().sum(-2).reshape(B, k, 2).sum(-1).sqrt()

    def precondition(R: torch.Tensor, cols: torch.Tensor | None = None) -> torch.Tensor:
        # P T P R on complex R (B, n, m): T is real, so one application serves both parts
        return cplx(_project(U, precond(_project(U, real(R)))))

    rhs = _project(U, g_U).to(shift.dtype)  # (B, n, k) complex
    # relative to the whole cotangent: when g_i lies almost inside span(U) the projected
    # right-hand side is rounding-sized and cannot be solved to a relative tolerance of itself
    target = tol * g_U.norm(dim=-2)  # (B, k)
    z = torch.zeros_like(rhs)
    r = rhs.clone()
    s = r if precond is None else precondition(r)  # (B, n, k)
    p = s.clone()
    rho = bilinear(r, s)  # (B, k)
    residual = norm(r)
    active = residual > target
    # COCG's residual is not monotone, and in float32 it can stall far above the target (the
    # projector of float32 eigenvectors is itself only as accurate as they are): a column stops
    # when its best residual has not halved in `patience` iterations (measured on trained
    # stride-4 CamVid graphs: stalls at 1e-2 cost 2,000 products per step where converging
    # solves needed 200-300).
    best, since = residual.clone(), torch.zeros_like(residual)
    stalled = torch.zeros_like(active)
    # A column that stops above its target returns its best iterate, not its last: COCG's
    # residual can grow far above the start (seen in CamVid Lite0 training, stride 2: stalled
    # columns ending at 2e2-1e3 ||g||, where z = 0 has at most ||g||). z = 0 is the first best.
    z_best, lowest = torch.zeros_like(z), residual.clone()  # (B, n, k), (B, k)
    iterations = 0
    for _ in range(maxiter):
        if not bool(active.any()):
            break
        iterations += 1
        # Columns converge at different rates (on 8 trained-encoder CamVid graphs of 45 x 60,
        # k = 16: 47 to 100 iterations to 1e-5): the product is taken on the columns still
        # active in some graph of the batch only, 35-40% fewer column products there. A finished
        # column's q is never read (its alpha is 0), so it is left 0; the same for the
        # preconditioner's s.
        cols = active.any(0)  # (k,)
        idx = None if bool(cols.all()) else cols.nonzero().squeeze(1)  # (m,) or all
        q = _on_columns(system, p, idx)
        pq = bilinear(p, q)
        ok = active & (pq != 0)  # a NaN is not frozen: it reaches the gradient, which is checked
        alpha = torch.where(ok, rho / pq.where(ok, 1.0), 0.0)[:, None, :]  # (B, 1, k)
        z.add_(alpha * p)
        r.sub_(alpha * q)
        s = r if precond is None else _on_columns(precondition, r, idx)
        rho_new = bilinear(r, s)
        beta = torch.where(ok, rho_new / rho.where(rho != 0, 1.0), 0.0)
        p = torch.addcmul(s, beta[:, None, :], p)
        rho = torch.where(ok, rho_new, rho)
        residual = norm(r)
        lower = active & (residual < lowest)
        z_best = torch.where(lower[:, None, :], z, z_best)
        lowest = torch.where(lower, residual, lowest)
        better = residual < 0.5 * best
        best = torch.where(better, residual, best)
        since = torch.where(better, torch.zeros_like(since), since + 1)
        stalled = stalled | (ok & (since >= patience))
        active = ok & (residual > target) & ~stalled
    unmet = (residual > target) & (active | stalled)
    z = torch.where(unmet[:, None, :], z_best, z)
    residual = torch.where(unmet, lowest, residual)
    return ComplementSolution(z, residual, unmet, unmet & stalled, iterations, tol, maxiter)


def complement_term(
    op: SymmetricOperator,
    lam: torch.Tensor,
    U: torch.Tensor,
    g_U: torch.Tensor,
    eps: torch.Tensor,
    **options: Any,
) -> torch.Tensor:
    """The part of ``P`` from eigenvectors outside ``span(U)``: ``x_i = -Re P z_i`` with ``z_i``
    from :func:`cocg_complement` (arguments, and the keyword ``options`` ``tol``, ``maxiter``,
    ``patience``, ``precond``, as there).

    A column that stopped above its target is counted (:func:`record_complement`) and warned
    about, or raises :class:`ComplementSolveError` under ``record_complement(strict=True)``.

    Returns:
        ``(B, n, k)``.
    """
    solution = cocg_complement(op, lam, U, g_U, eps, **options)
    B, n, k = U.shape
    unmet = solution.unmet

    columns, n_stalled, n_unconverged, worst = B * k, 0, 0, 0.0
    if bool(unmet.any()):  # the one host sync of the report; the rest only on failure
        worst = float((solution.residual / g_U.norm(dim=-2).clamp_min(1e-300))[unmet].max())
        n_stalled = int(solution.stalled.sum())
        n_unconverged = int((unmet & ~solution.stalled).sum())
    strict = _report(columns, n_stalled, n_unconverged, worst)
    if n_stalled or n_unconverged:
        why = "stalled" if n_stalled else f"did not converge in {solution.maxiter} iterations"
        message = (
            f"eigsh backward: the complement solve {why} above tol={solution.tol:g} "
            f"({n_stalled} stalled, {n_unconverged} unconverged of {columns} columns; each "
            f"returns its best iterate, worst relative residual {worst:.2e}); "
            "the gradient outside the computed eigenspace is approximate. Raise eps, k, or use "
            "backward='subspace'."
        )
        if strict:
            raise ComplementSolveError(message)
        warnings.warn(message, RuntimeWarning, stacklevel=3)
    Z = _project(U, torch.view_as_real(solution.z).reshape(B, n, 2 * k))  # (B, n, 2k) P Z
    return -Z.view(B, n, k, 2)[..., 0]
