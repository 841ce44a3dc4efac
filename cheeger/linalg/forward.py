"""The forward paths of :func:`~cheeger.linalg.eigsh.eigsh`: routing, solves, checks, fallbacks.

The ``"auto"`` route (:func:`_route`), the dense solve, one Lanczos or LOBPCG run, and
:func:`_forward_iterative`, which checks each iterative result and falls back when a check fails.

Every iterative result is checked before it is returned, because residuals alone cannot see a
missed copy of a repeated eigenvalue (a block Krylov method with ``b`` columns finds at most ``b``
copies, and reports the next eigenvalue up as converged in place of the rest):

* **Saturation**: when ``eigsh`` chose the Lanczos block itself and a cluster of computed
  eigenvalues (equal within the solve's accuracy) is as large as the block, the block may have
  been too small for that eigenvalue's multiplicity; the solve is redone by LOBPCG (block
  ``k + max(4, k // 4)``; ``info.method`` ``"lanczos->lobpcg"``) for a matrix with Laplacian sign
  pattern, else by Lanczos with a block of ``k`` (``info.escalated``). Fewer copies than the
  block are, in exact arithmetic, all there are.
* **Certificate** (Laplacians: stored off-diagonals ``<= 0``): the graph's connected components
  are counted in ``O(nnz)`` (:mod:`cheeger.linalg.certificate`); ``min(c, k)`` computed eigenvalues
  must be zero. A failed certificate falls back to the dense path (``n <= fallback_max_n``) or to
  LOBPCG with a block larger than ``c``, and ``info.method`` says which (``"lanczos->dense"``);
  if the fallback cannot certify either, the batch entry is reported unconverged (and ``check``
  raises).

Example:
    >>> import torch
    >>> from cheeger.linalg.operator import SymmetricOperator
    >>> op = SymmetricOperator.from_tensor(torch.diag(torch.arange(4.0, dtype=torch.float64)))
    >>> lam, U, lam_all, U_all = _dense_solve(op, 2)
    >>> lam.tolist(), U.shape
    ([[0.0, 1.0]], torch.Size([1, 4, 2]))
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from cheeger.linalg.certificate import (
    combinatorial_laplacian,
    laplacian_like,
    pattern_components,
    zero_certificate,
)
from cheeger.linalg.lanczos import block_lanczos
from cheeger.linalg.lobpcg import lobpcg_eigsh
from cheeger.linalg.operator import SymmetricOperator

__all__ = ["EigshInfo"]


@dataclass
class EigshInfo:
    """What an :func:`~cheeger.linalg.eigsh.eigsh` call did and how well.

    Attributes:
        restarts: iterations of the last solver run (Lanczos restarts, LOBPCG iterations).
        matvecs: products of ``A`` with a single vector, summed over every solver run.
        residuals: ``(B, k)`` relative residuals ``||A u - lambda u|| / ||A||_est``.
        converged: ``(B,)`` residuals met ``tol`` AND the certificate (where it applies) held.
        tol: the relative residual tolerance.
        anorm: ``(B,)`` the estimate of ``||A||_2``.
        method: the path that produced the result: ``"dense"``, ``"lanczos"``, ``"lobpcg"``, or
            ``"<first>-><second>"`` after a fallback (e.g. ``"lanczos->dense"``).
        block_size: the Lanczos block or LOBPCG block of the last run (0 for dense).
        escalated: the Lanczos block was raised to ``k`` after a saturated cluster.
        components: ``(B,)`` connected components of the graph, or ``None`` when ``A`` is not a
            Laplacian (some stored off-diagonal entry is positive) or the path is dense.
        certified: ``(B,)`` bool, at least ``min(components, k)`` zero eigenvalues were found, or
            ``None`` where no certificate applies.
        precond: preconditioner applications to a single vector (LOBPCG).
    """

    restarts: int
    matvecs: int
    residuals: torch.Tensor
    converged: torch.Tensor
    tol: float
    anorm: torch.Tensor
    method: str
    block_size: int = 0
    escalated: bool = False
    components: torch.Tensor | None = None
    certified: torch.Tensor | None = None
    precond: int = 0


@dataclass
class _Options:
    """Everything of a call that is not a tensor; ``info`` is filled by the forward."""

    k: int
    eps: float
    method: str
    backward: str
    tol: float | None
    block_size: int | None
    basis_size: int | None
    max_restarts: int
    seed: int
    X0: torch.Tensor | None
    fallback_max_n: int = 0
    dense_max_n: int = 0
    lobpcg_min_n: int = 0
    auto_block: bool = False
    laplacian: bool | None = None
    eps_rule: str = "rms"
    backward_tol: float | None = None
    backward_precond: bool = True
    info: EigshInfo | None = field(default=None)
    multigrid: object | None = field(default=None)  # the last LOBPCG run's, for the backward


def _dense_solve(op: SymmetricOperator, k: int) -> tuple[torch.Tensor, ...]:
    dense = op.to_dense()
    # eigh reads one triangle; the symmetric part is the matrix meant (rounding may differ)
    lam_all, U_all = torch.linalg.eigh(0.5 * (dense + dense.mT))  # (B, n), (B, n, n)
    U = U_all[..., :k]
    pivot = U.abs().argmax(dim=-2, keepdim=True)
    sign = torch.sign(torch.gather(U, -2, pivot))
    sign = sign.where(sign != 0, 1.0)
    U_all = torch.cat([U * sign, U_all[..., k:]], dim=-1)
    return lam_all[:, :k], U_all[..., :k], lam_all, U_all


def _dense_info(op, lam, U, lam_all, tol) -> EigshInfo:
    anorm = lam_all.abs().amax(-1)  # ||A||_2, known exactly on the dense path
    sym_AU = 0.5 * (op.matmul(U) + op.to_dense().mT @ U)  # the symmetric part, as solved
    res = (sym_AU - U * lam[:, None, :]).norm(dim=-2) / anorm[:, None].clamp_min(1e-300)
    return EigshInfo(0, 0, res, (res <= 10 * tol).all(-1), tol, anorm, "dense")


def _iterative_solve(op: SymmetricOperator, opts: _Options, method: str, tol: float, block):
    """One Lanczos or LOBPCG run; returns ``(lam (B, k), U (B, n, k), EigshInfo)``."""
    gen = torch.Generator(device=op.device).manual_seed(opts.seed)
    if method == "lobpcg":
        lam, U, raw = lobpcg_eigsh(
            op, opts.k, tol=tol, block_size=block, maxiter=opts.max_restarts, generator=gen,
            X0=opts.X0,
        )  # fmt: skip
        m = block or opts.k + max(4, opts.k // 4)
        precond = raw.precond
        # kept (with ctx) until the backward only where its complement solve will use it
        keep = opts.backward == "full" and opts.backward_precond
        opts.multigrid = raw.multigrid if keep else None
    else:
        lam, U, raw = block_lanczos(
            op.matmul, op.batch, op.n, opts.k, dtype=op.dtype, device=op.device,
            block_size=block, basis_size=opts.basis_size, tol=tol,
            max_restarts=opts.max_restarts, generator=gen, X0=opts.X0,
        )  # fmt: skip
        m = block or min(opts.k, 4)
        precond = 0
        opts.multigrid = None
    info = EigshInfo(
        raw.restarts, raw.matvecs, raw.residuals, raw.converged, tol, raw.anorm, method, m,
        precond=precond,
    )  # fmt: skip
    return lam, U, info


def _saturated(lam: torch.Tensor, b: int, close: torch.Tensor) -> bool:
    """Whether some run of ``b`` consecutive eigenvalues of ``lam (B, k)`` lies within ``close
    (B,)`` of its neighbours: a block of ``b`` may have been too small for that multiplicity."""
    if b >= lam.shape[-1]:
        return False
    if b <= 1:
        return True
    near = lam.diff(dim=-1) <= close[:, None]  # (B, k - 1)
    return bool(near.unfold(-1, b - 1, 1).all(-1).any())


def _zero_tol(info: EigshInfo) -> torch.Tensor:
    # a relative residual tol bounds each eigenvalue's error by tol ||A||: ten times that is
    # "numerically equal" for both the zero count and the saturation test
    return 10 * info.tol * info.anorm  # (B,)


def _is_laplacian(op: SymmetricOperator, opts: _Options) -> bool:
    """``opts.laplacian``, or (``None``) whether ``A`` is recognisably ``L = D - W``."""
    if opts.laplacian is not None:
        return opts.laplacian
    if op.csr is None:
        return False  # dense storage: only small or genuinely dense matrices, no detection
    grow = op.bidx * op.n + op.rows
    return combinatorial_laplacian(op.csr.values(), op.rows, op.cols, grow, op.batch * op.n)


def _components(op: SymmetricOperator) -> torch.Tensor:
    """``(B,)`` connected components of the graph of ``A``'s nonzero off-diagonal pattern."""
    if op.csr is not None:
        vals, bidx, rows, cols = op.csr.values(), op.bidx, op.rows, op.cols
    else:  # dense storage (small or genuinely dense matrices): its nonzero pattern
        bidx, rows, cols = op.dense.nonzero().T
        vals = op.dense[bidx, rows, cols]
    edge = (vals != 0) & (rows != cols)
    # A is symmetric (the solve assumes it), so its pattern lists each edge both ways
    return pattern_components(bidx[edge], rows[edge], cols[edge], op.batch, op.n, symmetric=True)[1]


def _certify(op: SymmetricOperator, lam: torch.Tensor, info: EigshInfo, components=None) -> None:
    """Fill ``info.components`` / ``info.certified`` and fold the certificate into converged."""
    if info.components is None:
        info.components = _components(op) if components is None else components
    info.certified = zero_certificate(lam, info.components, _zero_tol(info))
    info.converged = info.converged & info.certified


def _lobpcg_fits(op: SymmetricOperator, k: int, block: int | None = None) -> bool:
    """LOBPCG's block (default ``k + max(4, k // 4)``) fits ``n`` and ``A`` is sparse with a
    Laplacian's sign pattern (``L``, ``L_sym``: the multigrid's case)."""
    m = k + max(4, k // 4) if block is None else block
    return (
        3 * m <= op.n
        and op.csr is not None
        and laplacian_like(op.csr.values(), op.rows, op.cols)
    )


def _forward_iterative(op: SymmetricOperator, opts: _Options, tol: float):
    """The iterative paths with the saturation check, the certificate and the fallbacks."""
    method = opts.method
    laplacian = _is_laplacian(op, opts)
    components = _components(op) if laplacian else None
    if (
        method == "lanczos"
        and opts.auto_block
        and components is not None
        and int(components.max()) >= min(opts.k, 4)
        and _lobpcg_fits(op, opts.k)
    ):
        # as many components as the Lanczos block: it would saturate (and be redone), so the
        # block that holds them is used at once
        method = "lobpcg"
    lam, U, info = _iterative_solve(op, opts, method, tol, opts.block_size)
    if method == "lanczos" and opts.auto_block and _saturated(lam, info.block_size,
                                                             _zero_tol(info)):  # fmt: skip
        # clustered: LOBPCG's block (k + guards) holds every copy and, measured on 8 CamVid
        # colour graphs of 23 x 30 (float32, k = 16, nearly cut), took 0.16 s where Lanczos with
        # a block of k took 0.31 s; a matrix LOBPCG cannot take gets Lanczos with a block of k
        spent, first = info.matvecs, info.method
        if _lobpcg_fits(op, opts.k):
            lam, U, info = _iterative_solve(op, opts, "lobpcg", tol, None)
            info.method = f"{first}->lobpcg"
        else:
            lam, U, info = _iterative_solve(op, opts, method, tol, opts.k)
        info.matvecs += spent
        info.escalated = True
    if laplacian:
        _certify(op, lam, info, components)
    lam_all = U_all = None
    if bool(info.converged.all()):
        return lam, U, lam_all, U_all, info
    if op.n <= opts.fallback_max_n:
        # Tightly clustered spectra (e.g. a graph that is nearly many components) can stall a
        # Krylov method, and a failed certificate means copies were missed: a graph this small
        # is solved exactly instead
        first = info
        lam, U, lam_all, U_all = _dense_solve(op, opts.k)
        opts.multigrid = None  # the whole eigenbasis is known: no complement solve
        info = _dense_info(op, lam, U, lam_all, tol)
        info.method = f"{first.method}->dense"
        info.restarts, info.matvecs = first.restarts, first.matvecs
        info.components, info.escalated = first.components, first.escalated
        if first.components is not None:
            info.certified = zero_certificate(lam, first.components, _zero_tol(info))
    elif (
        opts.fallback_max_n > 0
        and info.certified is not None
        and not bool(info.certified.all())
        and method == "lanczos"
        and 3 * (int(info.components.max()) + opts.k) <= op.n
    ):
        # too large to densify: LOBPCG with a block wider than the null space finds every copy
        first = info
        block = opts.k + max(4, opts.k // 4, int(info.components.max().clamp_max(opts.k)))
        lam, U, info = _iterative_solve(op, opts, "lobpcg", tol, block)
        info.method = f"{first.method}->lobpcg"
        info.matvecs += first.matvecs
        info.components = first.components
        _certify(op, lam, info)
    return lam, U, lam_all, U_all, info


def _route(op: SymmetricOperator, opts: _Options) -> str:
    """The ``"auto"`` choice: dense when small, LOBPCG for large Laplacians, else Lanczos."""
    k, n = opts.k, op.n
    b = min(k, 4) if opts.block_size is None else opts.block_size
    m = max(4 * k, k + 8 * b) if opts.basis_size is None else opts.basis_size
    if n <= opts.dense_max_n or m + b > n:
        return "dense"
    if n >= opts.lobpcg_min_n and _lobpcg_fits(op, k, opts.block_size):
        return "lobpcg"
    return "lanczos"
