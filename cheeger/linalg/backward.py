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
"""

from __future__ import annotations

import warnings

import torch

from cheeger.linalg.operator import SymmetricOperator

__all__ = ["DEFAULT_EPS", "broadened_inverse_gaps", "complement_term", "subspace_term"]

#: Default broadening, relative to the spectrum's scale (the RMS eigenvalue
#: ``||A||_F / sqrt(n)``, about 1 for a normalised Laplacian): ``eps_abs = DEFAULT_EPS * scale``.
DEFAULT_EPS = 1e-3


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


def complement_term(
    op: SymmetricOperator,
    lam: torch.Tensor,
    U: torch.Tensor,
    g_U: torch.Tensor,
    eps: torch.Tensor,
    *,
    tol: float | None = None,
    maxiter: int = 2000,
    patience: int = 200,
) -> torch.Tensor:
    """The part of ``P`` from eigenvectors outside ``span(U)``: ``x_i`` of the module docstring.

    ``B_i (B_i^2 + eps^2)^{-1} = Re (B_i - i eps)^{-1}``, so ``x_i = -Re z_i`` with
    ``P (B_i - i eps) P z_i = P g_i``: a complex SYMMETRIC (not Hermitian) system, solved by
    conjugate orthogonal conjugate gradients (COCG, van der Vorst and Melissen 1990) for all ``k``
    right-hand sides and the whole batch at once. On the complement ``B_i`` is positive
    semi-definite, and COCG converges like CG on ``B_i + eps``: about ``sqrt(||A|| / max(gap,
    eps))`` iterations, where CG on the normal form ``B_i^2 + eps^2`` would need the square of
    that (measured on a 24 x 24 image grid: ~20,000 iterations against ~600). Each iteration is one
    product of ``A`` with ``2 k`` real columns.

    Args:
        op: the matrix.
        lam, U: ``(B, k)``, ``(B, n, k)`` computed eigenpairs (orthonormal ``U``).
        g_U: ``(B, n, k)`` eigenvector cotangents.
        eps: ``(B,)`` absolute broadening; may be 0 only if the complement is gapped.
        tol: residual target relative to ``||g_i||`` (default 1e-10 float64, 1e-5 float32).
        maxiter: iteration cap; an unconverged solve warns with its residual.
        patience: a column whose best residual has not halved in this many iterations has
            stalled (rounding, typically float32) and stops, with the same warning.

    Returns:
        ``(B, n, k)``.
    """
    if tol is None:
        tol = 1e-10 if U.dtype == torch.float64 else 1e-5
    B, n, k = U.shape
    Ut = U.transpose(-1, -2)

    # The iterates are complex (B, n, k), but every product is done in real arithmetic on the
    # (B, n, 2k) real view of their interleaved (re, im) parts: A and U are real, so one real
    # product serves both parts, without copies, as the iterates are contiguous (measured at
    # n = 690, B = 8, k = 16: complex bmm, `cat` / `complex` assembly and complex `abs` were 3/4
    # of the iteration's time).
    def real(Z: torch.Tensor) -> torch.Tensor:  # (B, n, k) complex -> (B, n, 2k) view
        return torch.view_as_real(Z).reshape(B, n, 2 * k)

    def cplx(Y: torch.Tensor) -> torch.Tensor:  # (B, n, 2k) real -> (B, n, k) complex view
        return torch.view_as_complex(Y.reshape(B, n, k, 2))

    def project(Y: torch.Tensor) -> torch.Tensor:  # P Y on a real (B, n, m)
        return torch.baddbmm(Y, U, Ut @ Y, alpha=-1)

    shift = (lam[:, None, :] + 1j * eps[:, None, None]).to(  # (B, 1, k)
        torch.complex128 if U.dtype == torch.float64 else torch.complex64
    )

    def system(Z: torch.Tensor) -> torch.Tensor:  # P (B_i - i eps) P Z, complex Z
        AZ = cplx(op.matmul(real(Z)))  # one product with 2k real columns
        return cplx(project(real(AZ - shift * Z)))

    # column sums over n of the real view (a complex reduction over a non-innermost dim, or a
    # complex `abs`, is several times slower)
    def bilinear(X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:  # (B, k) x^T y, no conjugate
        return torch.view_as_complex(real(X * Y).sum(-2).reshape(B, k, 2))

    def norm(Z: torch.Tensor) -> torch.Tensor:  # (B, k) column 2-norms
        return real(Z).square().sum(-2).reshape(B, k, 2).sum(-1).sqrt()

    rhs = project(g_U).to(shift.dtype)  # (B, n, k) complex
    # relative to the whole cotangent: when g_i lies almost inside span(U) the projected
    # right-hand side is rounding-sized and cannot be solved to a relative tolerance of itself
    target = tol * g_U.norm(dim=-2)  # (B, k)
    z = torch.zeros_like(rhs)
    r = rhs.clone()
    p = r.clone()
    rho = bilinear(r, r)  # (B, k)
    residual = norm(r)
    active = residual > target
    # COCG's residual is not monotone, and in float32 it can stall far above the target (the
    # projector of float32 eigenvectors is itself only as accurate as they are): a column stops
    # when its best residual has not halved in `patience` iterations (measured on trained
    # stride-4 CamVid graphs: stalls at 1e-2 cost 2,000 products per step where converging
    # solves needed 200-300).
    best, since = residual.clone(), torch.zeros_like(residual)
    stalled = torch.zeros_like(active)
    for _ in range(maxiter):
        if not bool(active.any()):
            break
        q = system(p)
        pq = bilinear(p, q)
        ok = active & (pq != 0)  # a NaN is not frozen: it reaches the gradient, which is checked
        alpha = torch.where(ok, rho / pq.where(ok, 1.0), 0.0)[:, None, :]  # (B, 1, k)
        z.add_(alpha * p)
        r.sub_(alpha * q)
        rho_new = bilinear(r, r)
        beta = torch.where(ok, rho_new / rho.where(rho != 0, 1.0), 0.0)
        p = torch.addcmul(r, beta[:, None, :], p)
        rho = torch.where(ok, rho_new, rho)
        residual = norm(r)
        better = residual < 0.5 * best
        best = torch.where(better, residual, best)
        since = torch.where(better, torch.zeros_like(since), since + 1)
        stalled = stalled | (ok & (since >= patience))
        active = ok & (residual > target) & ~stalled
    unmet = (residual > target) & (active | stalled)
    if bool(unmet.any()):
        worst = (residual / g_U.norm(dim=-2).clamp_min(1e-300))[unmet].max()
        why = "stalled" if bool(stalled.any()) else f"did not converge in {maxiter} iterations"
        warnings.warn(
            f"eigsh backward: the complement solve {why} above tol={tol:g} (relative residual "
            f"{float(worst):.2e}); the gradient outside the computed eigenspace is approximate. "
            "Raise eps, k, or use backward='subspace'.",
            RuntimeWarning,
            stacklevel=3,
        )
    return -project(real(z)).view(B, n, k, 2)[..., 0]
