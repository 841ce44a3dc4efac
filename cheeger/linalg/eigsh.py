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

Every iterative result passes a saturation check and, for graph Laplacians, a components
certificate, with fallbacks when either fails: :mod:`cheeger.linalg.forward` holds these forward
paths; this module the autograd Function, the public wrapper and its module.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from cheeger.linalg.backward import DEFAULT_EPS, complement_term, subspace_term
from cheeger.linalg.forward import (
    EigshInfo,
    _dense_info,
    _dense_solve,
    _forward_iterative,
    _Options,
    _route,
)
from cheeger.linalg.operator import SymmetricOperator

__all__ = ["EigSH", "EigshConvergenceError", "EigshInfo", "eigsh"]

METHODS = ("auto", "dense", "lanczos", "lobpcg")
# "auto" routes Laplacians with at least this many nodes per graph to LOBPCG, smaller ones to
# Lanczos. Measured 2026-12-07 (`python -m benchmarks.eigensolvers --batched --repeats 3`, one
# thread, k = 16, B = 8; the table in benchmarks/README.md): from 1,024 nodes LOBPCG is as fast
# or faster on every graph there (image8 3.4-7.8x, image8s 1.12-2.56x); below, Lanczos is
# 1.15-1.2x faster on resolved-gap graphs (image8s) and 1.8-3.5x slower on nearly cut ones (image8:
# it saturates and LOBPCG redoes the solve).
LOBPCG_MIN_N = 1024
EPS_RULES = ("rms", "gap")
# the "gap" rule's floor, relative to the RMS eigenvalue: ||A_bar|| <= ... / (2e-8 scale) at worst
GAP_RULE_FLOOR = 1e-8
BACKWARDS = ("full", "subspace")


class EigshConvergenceError(RuntimeError):
    """A solve stopped before every pair met the residual tolerance, or failed its certificate."""


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
                # the forward's multigrid (LOBPCG's T ~ (A + tau I)^{-1}) preconditions it;
                # preconditioned solves take 12-24 iterations (trained camvid_lite0 graphs), so a
                # stall is declared and the cap reached 5x sooner than for the plain solve
                precond = opts.multigrid if opts.backward_precond else None
                limits = {} if precond is None else {"patience": 40, "maxiter": 400}
                P = P + complement_term(op, lam, U, g_U, eps, tol=opts.backward_tol,
                                        precond=precond, **limits)  # fmt: skip
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
    backward_tol: float | None = None,
    backward_precond: bool = True,
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
        backward_tol: residual target of the full backward's complement solve, relative to each
            eigenvector cotangent (default 1e-10 in float64, 1e-5 in float32; see
            :func:`~cheeger.linalg.backward.complement_term`). A looser target is a cheaper,
            slightly less exact gradient: the gradient's error is measured in
            ``benchmarks/complement_tol.py``.
        backward_precond: when the forward ran LOBPCG, precondition the complement solve with
            its multigrid hierarchy (:func:`~cheeger.linalg.backward.cocg_complement`); the
            same gradient to ``backward_tol``, in fewer iterations.
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
    if backward_tol is not None and not 0 < backward_tol < 1:
        raise ValueError(f"eigsh: backward_tol must be in (0, 1), got {backward_tol}")
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
        backward_tol=backward_tol,
        backward_precond=backward_precond,
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
