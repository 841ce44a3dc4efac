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
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from cheeger.linalg.backward import DEFAULT_EPS, complement_term, subspace_term
from cheeger.linalg.lanczos import LanczosInfo, block_lanczos
from cheeger.linalg.lobpcg import lobpcg_eigsh
from cheeger.linalg.operator import SymmetricOperator

__all__ = ["EigSH", "EigshConvergenceError", "eigsh"]

METHODS = ("auto", "dense", "lanczos", "lobpcg")
BACKWARDS = ("full", "subspace")


class EigshConvergenceError(RuntimeError):
    """A solve stopped before every pair met the residual tolerance."""


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
    info: LanczosInfo | None = field(default=None)


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


def _info_from_residuals(op, lam, U, lam_all, tol) -> LanczosInfo:
    anorm = lam_all.abs().amax(-1)  # ||A||_2, known exactly on the dense path
    sym_AU = 0.5 * (op.matmul(U) + op.to_dense().mT @ U)  # the symmetric part, as solved
    res = (sym_AU - U * lam[:, None, :]).norm(dim=-2) / anorm[:, None].clamp_min(1e-300)
    return LanczosInfo(0, 0, res, (res <= 10 * tol).all(-1), tol, anorm, "dense")


class _EigshFunction(torch.autograd.Function):
    """``A -> (lambda (B, k), U (B, n, k))`` with the broadened backward."""

    @staticmethod
    def forward(A: torch.Tensor, opts: _Options):
        op = SymmetricOperator.from_tensor(A)
        tol = opts.tol if opts.tol is not None else (1e-10 if op.dtype == torch.float64 else 1e-5)
        if opts.method == "dense":
            lam, U, lam_all, U_all = _dense_solve(op, opts.k)
            opts.info = _info_from_residuals(op, lam, U, lam_all, tol)
        elif opts.method == "lobpcg":
            gen = torch.Generator(device=op.device).manual_seed(opts.seed)
            lam, U, opts.info = lobpcg_eigsh(
                op,
                opts.k,
                tol=tol,
                block_size=opts.block_size,
                maxiter=opts.max_restarts,
                generator=gen,
                X0=opts.X0,
            )
            lam_all = U_all = None
        else:
            gen = torch.Generator(device=op.device).manual_seed(opts.seed)
            lam, U, opts.info = block_lanczos(
                op.matmul,
                op.batch,
                op.n,
                opts.k,
                dtype=op.dtype,
                device=op.device,
                block_size=opts.block_size,
                basis_size=opts.basis_size,
                tol=tol,
                max_restarts=opts.max_restarts,
                generator=gen,
                X0=opts.X0,
            )
            lam_all = U_all = None
            if not bool(opts.info.converged.all()) and op.n <= opts.fallback_max_n:
                # Tightly clustered spectra (e.g. a graph that is nearly many components) can
                # stall a Krylov method; a graph this small is solved exactly instead.
                lanczos_info = opts.info
                lam, U, lam_all, U_all = _dense_solve(op, opts.k)
                opts.info = _info_from_residuals(op, lam, U, lam_all, tol)
                opts.info.method = "lanczos->dense"
                opts.info.restarts, opts.info.matvecs = lanczos_info.restarts, lanczos_info.matvecs
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
        eps = opts.eps * op.scale()  # (B,) absolute broadening
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
            ``||A_bar||_F <= ||g_lambda|| + ||g_U||_F / (2 eps_abs)``.
        method: ``"dense"``, ``"lanczos"``, ``"lobpcg"`` (multigrid-preconditioned, for positive
            semi-definite ``A``; ``block_size`` is then its number of columns, default
            ``k + max(4, k // 4)``, and ``max_restarts`` its iteration cap) or ``"auto"``
            (dense when ``n <= dense_max_n`` or the
            Lanczos basis would not fit, else Lanczos; a Lanczos solve that does not converge is
            redone densely when ``n <= fallback_max_n``, and ``info.method`` says so).
        backward: ``"full"`` (whole-spectrum gradient) or ``"subspace"`` (only the computed pairs;
            cheaper, biased for eigenvector losses).
        tol: relative residual tolerance ``||A u - lambda u|| <= tol ||A||`` (default 1e-10 in
            float64, 1e-5 in float32).
        block_size, basis_size, max_restarts: Lanczos settings (see :func:`block_lanczos`).
        seed: seed of the starting block: the same seed gives the same result.
        X0: ``(..., n, p)`` warm start for Lanczos or LOBPCG (e.g. last step's eigenvectors).
        check: raise :class:`EigshConvergenceError` if a solve did not converge.
        return_info: also return the :class:`~cheeger.linalg.lanczos.LanczosInfo`.

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
    auto = method == "auto"
    if auto:
        b = min(k, 4) if block_size is None else block_size
        m = max(4 * k, k + 8 * b) if basis_size is None else basis_size
        method = "dense" if (n <= dense_max_n or m + b > n) else "lanczos"
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
    )
    lam, U, _, _ = _EigshFunction.apply(A, opts)
    info = opts.info
    if check and not bool(info.converged.all()):
        bad = (~info.converged).nonzero().flatten().tolist()
        raise EigshConvergenceError(
            f"eigsh: {method} solve of k={k} pairs (n={n}) did not converge for batch entries "
            f"{bad}: worst relative residual {float(info.residuals.max()):.2e} > tol "
            f"{info.tol:g} after {info.restarts} restarts ({info.matvecs} products). Raise "
            "max_restarts or basis_size, or pass check=False to use the result anyway."
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
