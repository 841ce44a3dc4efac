"""Differentiable bottom-k eigenpairs of symmetric matrices: :func:`eigsh` and :class:`EigSH`.

Ordered as PyTorch's ``torch/_lobpcg.py``: the backward math lives in
:mod:`cheeger.linalg.backward`, then come the autograd Function, the public wrapper and its module;
the pure iteration is :func:`cheeger.linalg.lanczos.block_lanczos`.

Two forward paths share one backward:

* ``"dense"``: ``torch.linalg.eigh`` of the (densified) matrix. The whole eigenbasis is known, so
  the backward sums over the entire spectrum exactly (no complement solve).
* ``"lanczos"``: thick-restart block Lanczos on sparse-dense products; nothing of size ``n x n``.
  The backward adds the complement of the computed subspace by a conjugate-gradient solve
  (``backward="full"``), or leaves it out (``backward="subspace"``, biased: the bias is measured in
  ``tests/linalg/test_eigsh.py`` and ``benchmarks/eigensolvers.py``).
* ``"lobpcg"``: LOBPCG preconditioned by an aggregation multigrid V-cycle
  (:func:`cheeger.linalg.lobpcg.lobpcg_eigsh`), for graph Laplacians (positive semi-definite) too
  large or too tightly clustered for Lanczos; same backward as ``"lanczos"``.

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
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from cheeger.linalg.backward import DEFAULT_EPS, complement_term, subspace_term
from cheeger.linalg.certificate import (
    combinatorial_laplacian,
    laplacian_like,
    pattern_components,
    zero_certificate,
)
from cheeger.linalg.lanczos import block_lanczos
from cheeger.linalg.lobpcg import lobpcg_eigsh
from cheeger.linalg.operator import SymmetricOperator

__all__ = ["EigSH", "EigshConvergenceError", "EigshInfo", "eigsh"]

METHODS = ("auto", "dense", "lanczos", "lobpcg")
# "auto" routes Laplacians with at least this many nodes per graph to LOBPCG (measured: see
# benchmarks/eigensolvers.py); smaller ones, as in the spectral head, to Lanczos
LOBPCG_MIN_N = 8192
EPS_RULES = ("rms", "gap")
# the "gap" rule's floor, relative to the RMS eigenvalue: ||A_bar|| <= ... / (2e-8 scale) at worst
GAP_RULE_FLOOR = 1e-8
BACKWARDS = ("full", "subspace")


class EigshConvergenceError(RuntimeError):
    """A solve stopped before every pair met the residual tolerance, or failed its certificate."""


@dataclass
class EigshInfo:
    """What an :func:`eigsh` call did and how well.

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
    info: EigshInfo | None = field(default=None)


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
    else:
        lam, U, raw = block_lanczos(
            op.matmul, op.batch, op.n, opts.k, dtype=op.dtype, device=op.device,
            block_size=block, basis_size=opts.basis_size, tol=tol,
            max_restarts=opts.max_restarts, generator=gen, X0=opts.X0,
        )  # fmt: skip
        m = block or min(opts.k, 4)
        precond = 0
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


def _absolute_eps(opts: _Options, op: SymmetricOperator, lam: torch.Tensor) -> torch.Tensor:
    """``(B,)`` absolute broadening from the relative ``opts.eps`` and ``opts.eps_rule``.

    ``"rms"``: ``eps * ||A||_F / sqrt(n)``. ``"gap"``: ``eps`` times the computed block's mean
    gap ``(lambda_k - lambda_1) / (k - 1)``, floored at ``GAP_RULE_FLOOR * ||A||_F / sqrt(n)`` so
    the gradient stays bounded when the whole block is degenerate.
    """
    scale = op.scale()  # (B,)
    if opts.eps_rule == "rms" or lam.shape[-1] < 2:
        return opts.eps * scale
    mean_gap = (lam[:, -1] - lam[:, 0]) / (lam.shape[-1] - 1)  # (B,)
    return torch.maximum(opts.eps * mean_gap, GAP_RULE_FLOOR * scale)


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


class _EigshFunction(torch.autograd.Function):
    """``A -> (lambda (B, k), U (B, n, k))`` with the broadened backward."""

    @staticmethod
    def forward(A: torch.Tensor, opts: _Options):
        op = SymmetricOperator.from_tensor(A)
        tol = opts.tol if opts.tol is not None else (1e-10 if op.dtype == torch.float64 else 1e-5)
        if opts.method == "auto":
            opts.method = _route(op, opts)
        if opts.method == "dense":
            lam, U, lam_all, U_all = _dense_solve(op, opts.k)
            opts.info = _dense_info(op, lam, U, lam_all, tol)
        else:
            lam, U, lam_all, U_all, opts.info = _forward_iterative(op, opts, tol)
        if not op.batched:
            lam, U = lam[0], U[0]
        return lam, U, lam_all, U_all

    @staticmethod
    def setup_context(ctx, inputs, output):
        A, opts = inputs
        lam, U, lam_all, U_all = output
        ctx.opts = opts
        ctx.mark_non_differentiable(*(t for t in (lam_all, U_all) if t is not None))
        if ctx.needs_input_grad[0]:
            ctx.save_for_backward(A, lam, U, lam_all, U_all)

    @staticmethod
    @once_differentiable  # the backward reads A detached: a second derivative would be wrong
    def backward(ctx, g_lam, g_U, _g_lam_all, _g_U_all):
        if not ctx.needs_input_grad[0]:
            return None, None
        A, lam, U, lam_all, U_all = ctx.saved_tensors
        opts: _Options = ctx.opts
        op = SymmetricOperator.from_tensor(A)
        if not op.batched:
            lam, U = lam[None], U[None]
            g_lam = None if g_lam is None else g_lam[None]
            g_U = None if g_U is None else g_U[None]
        eps = _absolute_eps(opts, op, lam)  # (B,)
        # A_bar = sym(P U^T),  P = U_basis (F o (U_basis^T G)) + U diag(g_lam) [+ complement]
        if U_all is not None and opts.backward == "full":
            P = subspace_term(lam, U, g_lam, g_U, eps, lam_all, U_all)  # whole spectrum known
        else:
            P = subspace_term(lam, U, g_lam, g_U, eps)  # (B, n, k)
            if opts.backward == "full" and g_U is not None:
                P = P + complement_term(op, lam, U, g_U, eps)
        grad = op.pattern_inner(P, U)  # dense (B, n, n) or values on A's pattern (nnz,)
        if op.layout == torch.strided:
            return (grad if op.batched else grad[0]), None
        Ac = A.coalesce() if A.layout == torch.sparse_coo else A.to_sparse_coo().coalesce()
        gA = torch.sparse_coo_tensor(
            Ac.indices(), grad, A.shape, is_coalesced=True, check_invariants=False
        )
        return (gA if A.layout == torch.sparse_coo else gA.to_sparse_csr()), None


def eigsh(
    A: torch.Tensor,
    k: int,
    eps: float | None = None,
    *,
    method: str = "auto",
    backward: str = "full",
    tol: float | None = None,
    block_size: int | None = None,
    basis_size: int | None = None,
    max_restarts: int = 500,
    seed: int = 0,
    X0: torch.Tensor | None = None,
    dense_max_n: int = 128,
    fallback_max_n: int = 4096,
    lobpcg_min_n: int = LOBPCG_MIN_N,
    laplacian: bool | None = None,
    eps_rule: str = "rms",
    check: bool = True,
    return_info: bool = False,
):
    """The ``k`` smallest eigenpairs of a symmetric ``A``, differentiable in ``A``.

    Args:
        A: symmetric, float32 or float64: dense ``(n, n)`` / ``(B, n, n)``; sparse COO ``(n, n)`` /
            ``(B, n, n)`` (a batch of graphs, 3 sparse dims); or sparse CSR ``(n, n)``. Only the
            symmetric part is meaningful; symmetry is not checked.
        k: number of pairs, ``1 <= k <= n``.
        eps: broadening of the backward, RELATIVE to the spectrum's scale ``||A||_F / sqrt(n)``
            (the RMS eigenvalue, ~1 for ``L_sym``); ``None`` means ``DEFAULT_EPS = 1e-3``; 0 is
            the exact (unbounded) rule. The gradient obeys
            ``||A_bar||_F <= ||g_lambda|| + ||g_U||_F / (2 eps_abs)``. Under ``eps_rule="gap"``
            it is relative to the computed block's mean gap instead (see ``eps_rule``).
        eps_rule: how ``eps`` becomes absolute: ``"rms"`` (times the RMS eigenvalue, ~1.1 for
            ``L_sym``) or ``"gap"`` (times the mean gap of the computed block, floored at
            ``GAP_RULE_FLOOR`` times the RMS eigenvalue). Measured by
            ``benchmarks/broadening.py`` on CamVid colour graphs (3 frames, k = 16): at
            ``eps = 1e-3`` the head's (filtered) gradient is off by a median 25% (23 x 30) and 23%
            (46 x 60) under ``"rms"``, by 0.02% and 0.1% under ``"gap"``.
        method: ``"dense"``, ``"lanczos"``, ``"lobpcg"`` (multigrid-preconditioned, for positive
            semi-definite ``A``; ``block_size`` is then its number of columns, default
            ``k + max(4, k // 4)``, and ``max_restarts`` its iteration cap) or ``"auto"``: dense
            when ``n <= dense_max_n`` or the Lanczos basis would not fit; LOBPCG for sparse
            matrices with Laplacian sign pattern and ``n >= lobpcg_min_n`` per matrix, or
            with as many connected components as the Lanczos block (when ``laplacian``); else
            Lanczos (measured on 8 CamVid colour graphs of 23 x 30, float32, k = 16: nearly
            cut into 1-11 pieces, 0.09 s routed to LOBPCG against 0.67 s for Lanczos with the
            saturation redo; 8 connected grids, Lanczos 0.044 s against LOBPCG 0.46 s).
            Iterative results pass the saturation check and, for Laplacians, the
            components certificate (module docstring); under ``"auto"`` a result that still has
            not converged or certified is redone densely when ``n <= fallback_max_n`` (or by
            LOBPCG with a wider block above it), and ``info.method`` says so.
        backward: ``"full"`` (whole-spectrum gradient) or ``"subspace"`` (only the computed pairs;
            cheaper, biased for eigenvector losses).
        tol: relative residual tolerance ``||A u - lambda u|| <= tol ||A||`` (default 1e-10 in
            float64, 1e-5 in float32).
        block_size, basis_size, max_restarts: Lanczos settings (see :func:`block_lanczos`).
        seed: seed of the starting block: the same seed gives the same result.
        X0: ``(..., n, p)`` warm start for Lanczos or LOBPCG (e.g. last step's eigenvectors).
        dense_max_n, fallback_max_n, lobpcg_min_n: the ``"auto"`` thresholds (per matrix).
        laplacian: whether ``A`` is a graph Laplacian ``L`` or ``L_sym`` (non-negative weights),
            which turns on the components certificate; ``None`` detects ``L = D - W`` from its
            entries (``L_sym`` cannot be recognised: pass ``True``).
        check: raise :class:`EigshConvergenceError` if a solve did not converge or certify.
        return_info: also return the :class:`EigshInfo`.

    Returns:
        ``(eigenvalues (..., k) ascending, eigenvectors (..., n, k))`` (and the info). Eigenvector
        signs are fixed (largest-magnitude entry positive); within a degenerate eigenspace the
        basis is arbitrary.

    Example:
        >>> import torch
        >>> from cheeger.linalg import eigsh
        >>> A = torch.diag(torch.arange(6.0, dtype=torch.float64)).requires_grad_()
        >>> lam, U = eigsh(A, 2)
        >>> lam.tolist()
        [0.0, 1.0]
        >>> lam.sum().backward(); A.grad.diagonal().tolist()
        [1.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    """
    if method not in METHODS:
        raise ValueError(f"eigsh: method must be one of {METHODS}, got {method!r}")
    if backward not in BACKWARDS:
        raise ValueError(f"eigsh: backward must be one of {BACKWARDS}, got {backward!r}")
    n = A.shape[-1]
    if not 1 <= k <= n:
        raise ValueError(f"eigsh: need 1 <= k <= n = {n}, got k = {k}")
    if eps is not None and eps < 0:
        raise ValueError(f"eigsh: eps must be >= 0, got {eps}")
    if eps_rule not in EPS_RULES:
        raise ValueError(f"eigsh: eps_rule must be one of {EPS_RULES}, got {eps_rule!r}")
    auto = method == "auto"
    if X0 is not None and X0.dim() == 2:
        X0 = X0.unsqueeze(0)
    opts = _Options(
        k,
        DEFAULT_EPS if eps is None else eps,
        method,
        backward,
        tol,
        block_size,
        basis_size,
        max_restarts,
        seed,
        None if X0 is None else X0.detach(),
        fallback_max_n if auto else 0,
        dense_max_n,
        lobpcg_min_n,
        auto_block=block_size is None,
        laplacian=laplacian,
        eps_rule=eps_rule,
    )
    lam, U, _, _ = _EigshFunction.apply(A, opts)
    info = opts.info
    if check and not bool(info.converged.all()):
        bad = (~info.converged).nonzero().flatten().tolist()
        missed = [] if info.certified is None else (~info.certified).nonzero().flatten().tolist()
        why = (
            f"did not converge for batch entries {bad}: worst relative residual "
            f"{float(info.residuals.max()):.2e} > tol {info.tol:g}"
            if not missed
            else f"failed its certificate for batch entries {missed}: fewer zero eigenvalues "
            f"than connected components ({info.components.tolist()}), so copies of a repeated "
            "eigenvalue were missed"
        )
        raise EigshConvergenceError(
            f"eigsh: {info.method} solve of k={k} pairs (n={n}) {why}, after {info.restarts} "
            f"iterations ({info.matvecs} products). Raise max_restarts or basis_size, choose "
            "another method, or pass check=False to use the result anyway."
        )
    return (lam, U, info) if return_info else (lam, U)


class EigSH(nn.Module):
    """Module form of :func:`eigsh` (same arguments, fixed at construction).

    Example:
        >>> import torch
        >>> lam, U = EigSH(k=2)(torch.eye(4, dtype=torch.float64))
        >>> U.shape
        torch.Size([4, 2])
    """

    def __init__(self, k: int, eps: float | None = None, **options) -> None:
        super().__init__()
        self.k, self.eps, self.options = k, eps, options

    def forward(self, A: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return eigsh(A, self.k, self.eps, **self.options)

    def extra_repr(self) -> str:
        return f"k={self.k}, eps={self.eps}, options={self.options}"
