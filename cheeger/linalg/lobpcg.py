"""Preconditioned block eigensolver (LOBPCG) for the smallest eigenpairs of a batch of matrices.

Locally optimal block preconditioned conjugate gradients (Knyazev 2001): the block ``X (B, n, m)``
of ``m >= k`` approximate eigenvectors is replaced at each step by the best ``m`` Ritz vectors of

    span[X, W, P],   W = T (A X - X Theta)  (preconditioned residuals),   P = previous update,

so a good preconditioner ``T ~ (A + tau I)^{-1}`` (an aggregation multigrid V-cycle, see
:mod:`cheeger.linalg.multigrid`) makes the iteration count nearly independent of ``n`` and of the
tiny eigenvalue gaps of image graphs that cripple plain Krylov methods. Implementation choices:

* **Orthonormal basis, cheaply** (Hetmaniuk and Lehoucq 2006). ``P`` is formed in the small
  space, orthogonal to the new ``X`` and orthonormal (carefully: columns that were numerically
  inside ``X`` are dropped, not normalised), so only ``W`` needs orthogonalising in the big
  space (classical Gram-Schmidt against ``[X, P]``, a second pass when the first removed most
  of a column, then SVQB, Stathopoulos and Wu 2002) and the Rayleigh-Ritz step is a standard
  symmetric eigenproblem. ``X^T A X = Theta``, ``X^T A P = 0`` and ``P^T A P`` hold by
  construction; ``A X`` is recomputed by a sparse product (cheaper than updating it densely).
* **Soft locking.** Columns whose relative residual meets the tolerance in every graph of the
  batch stay in ``X`` and in the Rayleigh-Ritz step but get no ``W`` or ``P`` column: the work
  shrinks as pairs converge, and converged pairs keep improving for free.
* **Fixed shapes across the batch.** A direction that is numerically dependent in one graph is
  zeroed rather than dropped (every graph would drop different ones), and the projected matrix
  gets a large diagonal entry there, so it can never be chosen as a Ritz vector.
* **Guard vectors.** The ``m - k`` extra columns speed up the ``k``-th pair, whose rate depends
  on ``lambda_k / lambda_{m+1}``; only the first ``k`` are tested for convergence.

The relative residual is ``||A u - theta u|| / ||A||_est``, with ``||A||_est`` from the caller.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from cheeger.linalg.multigrid import AggregationMultigrid
from cheeger.linalg.operator import SymmetricOperator

__all__ = ["LobpcgInfo", "lobpcg", "lobpcg_eigsh"]


@dataclass
class LobpcgInfo:
    """What a LOBPCG solve did (the fields of :class:`cheeger.linalg.LanczosInfo`, plus two).

    Attributes:
        restarts: LOBPCG iterations performed (named as the Lanczos field).
        matvecs: products of ``A`` with a single vector.
        residuals: ``(B, k)`` relative residuals ``||A u - lambda u|| / ||A||_est``.
        converged: ``(B,)`` whether all ``k`` pairs met the tolerance.
        tol: the tolerance.
        anorm: ``(B,)`` the ``||A||_2`` estimate used.
        method: ``"lobpcg"``.
        precond: preconditioner applications to a single vector.
        multigrid: the preconditioner's hierarchy (set by :func:`lobpcg_eigsh`; eigsh's
            backward reuses it for the complement solve).
    """

    restarts: int
    matvecs: int
    residuals: torch.Tensor
    converged: torch.Tensor
    tol: float
    anorm: torch.Tensor
    method: str = "lobpcg"
    precond: int = 0
    multigrid: AggregationMultigrid | None = None


def _colnorm(Y: torch.Tensor) -> torch.Tensor:
    """Column norms of ``Y (B, r, p)``."""
    return torch.linalg.vector_norm(Y, dim=-2)


def _svqb(
    Y: torch.Tensor, drop: float, G: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Orthonormalise the columns of ``Y (B, r, p)``; near-dependent directions become zero.

    SVQB (Stathopoulos and Wu 2002), repeated once when the first pass leaves the columns visibly
    non-orthonormal (its error grows like ``eps cond(Y)^2``). ``G = Y^T Y`` may be passed in.
    Returns ``(Q (B, r, p), dead (B, p))`` with ``Q^T Q = I`` on the live columns and zero dead
    columns.
    """
    tiny = torch.finfo(Y.dtype).tiny
    if G is None:
        G = Y.transpose(-1, -2) @ Y  # (B, p, p)
    for _ in range(2):
        d = G.diagonal(dim1=-2, dim2=-1).clamp_min(tiny).rsqrt()  # (B, p) column scaling
        Gn = G * d[:, :, None] * d[:, None, :]
        w, V = torch.linalg.eigh(0.5 * (Gn + Gn.transpose(-1, -2)))
        dead = w <= drop * w.amax(-1, keepdim=True).clamp_min(tiny)
        inv = torch.where(dead, torch.zeros_like(w), w.clamp_min(tiny).rsqrt())
        Y = Y @ (d[:, :, None] * V * inv[:, None, :])
        live = w[~dead] if bool(dead.any()) else w
        # the error of one pass is about eps * cond(G): skip the check when that is tiny
        if float(w.amax() / live.amin().clamp_min(tiny)) < 1e6:
            break
        G = Y.transpose(-1, -2) @ Y
        err = (G - torch.diag_embed((~dead).to(G.dtype))).abs().amax()
        if float(err) <= 1e3 * torch.finfo(Y.dtype).eps:
            break
    return Y, dead


def _park(H: torch.Tensor, dead: torch.Tensor) -> torch.Tensor:
    """``H (B, s, s)`` with the diagonal of its ``dead`` (zero) directions raised above its
    spectrum (Gershgorin's bound, x1.5), so no Ritz vector is taken there.

    Not at some huge value: ``eigh``'s error is ``eps ||H||``, and a penalty of ``1e3 ||A||``
    stalled float32 solves at relative residuals near 1e-3.
    """
    bound = H.abs().sum(-1).amax(-1)  # (B,)
    park = 1.5 * bound + torch.finfo(H.dtype).tiny ** 0.5
    return H + torch.diag_embed(dead * park[:, None])


def _project_out(W: torch.Tensor, blocks: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """``W`` minus its components in the span of the orthonormal ``blocks``, and its Gram matrix.

    Classical Gram-Schmidt; a second pass only when the first removed most of a column ("twice
    is enough"), judged without another pass over ``W``: the norm before projection is
    ``||w||^2 = ||w - Q c||^2 + ||c||^2``.
    """
    before2 = None
    for _ in range(2):
        c2 = 0.0
        for Q in blocks:
            c = Q.transpose(-1, -2) @ W
            W = torch.baddbmm(W, Q, c, alpha=-1.0)
            c2 = c2 + c.square().sum(-2)
        G = W.transpose(-1, -2) @ W
        after2 = G.diagonal(dim1=-2, dim2=-1)  # (B, p)
        before2 = after2 + c2 if before2 is None else before2
        if bool((after2 > 0.25 * (after2 + c2)).all()):
            break
    # a column that lost all but rounding noise has no reliable direction left: zero it
    lost = after2 <= 1e-4 * torch.finfo(W.dtype).eps * before2
    if bool(lost.any()):
        W = W * ~lost[:, None, :]
        G = G * ~lost[:, :, None] * ~lost[:, None, :]
    return W, G


def _small_orthonormal(
    Y: torch.Tensor, C: torch.Tensor, drop: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Orthonormal columns spanning ``Y (B, s, a)`` outside the orthonormal ``C (B, s, m)``.

    In the small space, so it is cheap to be careful: project twice, zero the columns that were
    (numerically) inside ``C`` (normalising them would blow their rounding errors up), SVQB,
    then project and SVQB once more so the result is orthogonal to ``C`` to working precision.
    """
    norm0 = _colnorm(Y)
    for _ in range(2):
        Y = Y - C @ (C.transpose(-1, -2) @ Y)
    inside = _colnorm(Y) <= torch.finfo(Y.dtype).eps ** 0.5 * norm0
    Y, _ = _svqb(Y * ~inside[:, None, :], drop)
    Y = Y - C @ (C.transpose(-1, -2) @ Y)
    return _svqb(Y, drop)


def _combine(
    blocks: list[torch.Tensor], coef: torch.Tensor, split: int, rows: int = 8192
) -> tuple[torch.Tensor, torch.Tensor]:
    """``[blocks] @ coef`` split into its first ``split`` columns and the rest.

    Row chunks keep every operand of a chunk in cache: the tall blocks are read once and the two
    results written once, where whole-matrix products would stream them several times.
    """
    B, n, _ = blocks[0].shape
    coefs = torch.split(coef, [b.shape[-1] for b in blocks], dim=1)
    first = torch.empty(B, n, split, dtype=coef.dtype, device=coef.device)
    rest = torch.empty(B, n, coef.shape[-1] - split, dtype=coef.dtype, device=coef.device)
    for r in range(0, n, rows):
        acc = blocks[0][:, r : r + rows] @ coefs[0]
        for Y, c in zip(blocks[1:], coefs[1:], strict=True):
            acc = torch.baddbmm(acc, Y[:, r : r + rows], c)
        first[:, r : r + rows] = acc[..., :split]
        rest[:, r : r + rows] = acc[..., split:]
    return first, rest


def lobpcg(
    matmul: Callable[[torch.Tensor], torch.Tensor],
    precond: Callable[[torch.Tensor], torch.Tensor] | None,
    X: torch.Tensor,
    k: int,
    *,
    anorm: torch.Tensor,
    tol: float | None = None,
    maxiter: int = 500,
) -> tuple[torch.Tensor, torch.Tensor, LobpcgInfo]:
    """Smallest ``k`` eigenpairs by LOBPCG from the starting block ``X``.

    The pure iteration (no autograd, no input checks): call it under ``torch.no_grad``. The public
    entry is :func:`cheeger.linalg.eigsh` with ``method="lobpcg"``.

    Args:
        matmul: ``Y (B, n, p) -> A Y``.
        precond: ``R (B, n, p) -> T R``, ``T`` symmetric positive definite, or ``None``.
        X: ``(B, n, m)`` starting block of ``m >= k`` linearly independent columns.
        k: wanted pairs.
        anorm: ``(B,)`` estimate of ``||A||_2`` (residuals are relative to it).
        tol: relative residual tolerance (default 1e-10 in float64, 1e-5 in float32).
        maxiter: iteration cap (the result is then flagged unconverged).

    Returns:
        ``(eigenvalues (B, k) ascending, eigenvectors (B, n, k), LobpcgInfo)``.

    Example:
        >>> import torch
        >>> A = torch.diag(torch.arange(1.0, 101.0, dtype=torch.float64)).unsqueeze(0)
        >>> X = torch.randn(1, 100, 6, dtype=torch.float64,
        ...                 generator=torch.Generator().manual_seed(0))
        >>> lam, U, info = lobpcg(lambda Y: A @ Y, None, X, 3, anorm=torch.tensor([100.0]),
        ...                       maxiter=2000)
        >>> lam.round(decimals=8).tolist()
        [[1.0, 2.0, 3.0]]
    """
    dtype = X.dtype
    if tol is None:
        tol = 1e-10 if dtype == torch.float64 else 1e-5
    B, n, m = X.shape
    if not 1 <= k <= m or 3 * m > n:
        raise ValueError(f"lobpcg: need 1 <= k <= m and 3 m <= n, got k={k}, m={m}, n={n}")
    drop = 100 * torch.finfo(dtype).eps
    X, xdead = _svqb(_svqb(X, drop)[0], drop)
    AX = matmul(X)
    H = X.transpose(-1, -2) @ AX
    H = _park(0.5 * (H + H.transpose(-1, -2)), xdead)
    theta, C = torch.linalg.eigh(H)
    X, AX = X @ C, AX @ C
    guard = torch.ones(m - k, dtype=torch.bool, device=X.device)

    def status(X, AX, theta):
        R = torch.addcmul(AX, X, theta[:, None, :], value=-1.0)  # (B, n, m)
        res = _colnorm(R) / anorm[:, None]  # (B, m)
        conv = res[:, :k] <= tol
        # soft locking: a column converged in every graph gets no new directions; guards do
        idx = torch.cat([~conv.all(0), guard]).nonzero().flatten()
        return R, res, conv, idx

    R, res, conv, idx = status(X, AX, theta)
    matvecs, applications, it = m, 0, 0
    P = PAP = pdead = None
    while not bool(conv.all()) and it < maxiter:
        W = R if idx.shape[0] == m else R[..., idx]
        if precond is not None:
            W = precond(W)
            applications += W.shape[-1]
        W, G = _project_out(W, [X] if P is None else [X, P])
        W, wdead = _svqb(W, drop, G)
        AW = matmul(W)
        matvecs += W.shape[-1]
        # Rayleigh-Ritz on [X, W, P], orthonormal up to dead (zero) columns. X^T A X = Theta,
        # X^T A P = 0 and P^T A P (kept from the last projection) hold by construction, so only
        # the blocks with W are products of tall matrices
        a, p = W.shape[-1], 0 if P is None else P.shape[-1]
        s = m + a + p
        H = torch.zeros(B, s, s, dtype=dtype, device=X.device)
        H[:, :m, :m] = torch.diag_embed(theta)
        H[:, :m, m : m + a] = AX.transpose(-1, -2) @ W
        H[:, m : m + a, m : m + a] = W.transpose(-1, -2) @ AW
        if P is not None:
            H[:, m : m + a, m + a :] = AW.transpose(-1, -2) @ P
            H[:, m + a :, m + a :] = PAP
        H = torch.triu(H) + torch.triu(H, 1).transpose(-1, -2)
        dead = torch.cat([torch.zeros_like(xdead), wdead] + ([] if P is None else [pdead]), -1)
        theta_all, C_all = torch.linalg.eigh(_park(H, dead))
        theta, C = theta_all[:, :m], C_all[..., :m]  # (B, m), (B, s, m)
        # the next P: the active columns' update outside the old X, made orthogonal to the new X
        # in the small space (Hetmaniuk and Lehoucq 2006)
        Cp = torch.cat([torch.zeros_like(C[:, :m, idx]), C[:, m:, idx]], 1)  # (B, s, a)
        Cp, pdead = _small_orthonormal(Cp, C, drop)
        PAP = Cp.transpose(-1, -2) @ H @ Cp
        PAP = 0.5 * (PAP + PAP.transpose(-1, -2))
        X, P = _combine([X, W] if P is None else [X, W, P], torch.cat([C, Cp], -1), m)
        AX = matmul(X)  # a sparse product is cheaper than a dense update, and does not drift
        matvecs += m
        R, res, conv, idx = status(X, AX, theta)
        it += 1
    U = X[..., :k].contiguous()
    lam = (U * AX[..., :k]).sum(-2)  # Rayleigh quotients of the returned vectors themselves
    info = LobpcgInfo(it, matvecs, res[:, :k], conv.all(-1), tol, anorm, precond=applications)
    return lam, U, info


def _norm_estimate(matmul, batch: int, n: int, dtype, device, steps: int = 20) -> torch.Tensor:
    """``(B,)`` power-iteration estimate of ``||A||_2``, from below (so residuals relative to it
    are, if anything, overstated). Deterministic start."""
    x = torch.cos(torch.arange(n, device=device, dtype=dtype) * 2.399963)
    x = x.expand(batch, n)[..., None].contiguous()  # (B, n, 1)
    est = torch.zeros(batch, dtype=dtype, device=device)
    for _ in range(steps):
        y = matmul(x)
        est = _colnorm(y)[:, 0] / _colnorm(x)[:, 0].clamp_min(torch.finfo(dtype).tiny)
        x = y / _colnorm(y)[:, None, :].clamp_min(torch.finfo(dtype).tiny)
    return est.clamp_min(torch.finfo(dtype).tiny)


def lobpcg_eigsh(
    op: SymmetricOperator,
    k: int,
    *,
    tol: float | None = None,
    block_size: int | None = None,
    maxiter: int = 500,
    generator: torch.Generator | None = None,
    X0: torch.Tensor | None = None,
    shift: float = 1e-4,
    **multigrid: object,
) -> tuple[torch.Tensor, torch.Tensor, LobpcgInfo]:
    """Smallest ``k`` eigenpairs of a positive semi-definite ``op`` by multigrid-preconditioned
    LOBPCG: the ``method="lobpcg"`` path of :func:`cheeger.linalg.eigsh` (no autograd here).

    The preconditioner is one :class:`~cheeger.linalg.multigrid.AggregationMultigrid` for
    ``A + tau I``, ``tau = shift * ||A||_F / sqrt(n)`` (the RMS eigenvalue; ~1 for ``L_sym``),
    built from the matrix alone and run in float32. The starting block is ``X0`` (a warm start,
    e.g. the previous training step's eigenvectors) completed by the bottom eigenvectors of the
    coarsest level, prolongated (a cascadic start), then by random vectors.

    Args:
        op: the matrix (sparse; dense storage is converted).
        k: wanted pairs, ``3 * block_size <= n``.
        tol: relative residual tolerance (default 1e-10 in float64, 1e-5 in float32).
        block_size: columns ``m >= k`` of the block (default ``k + max(4, k // 4)``).
        maxiter: LOBPCG iteration cap.
        generator: source of the random columns (only used when the start needs them).
        X0: ``(B, n, p)`` warm start.
        shift: ``tau`` relative to the spectrum's scale.
        **multigrid: options of :class:`~cheeger.linalg.multigrid.AggregationMultigrid`.

    Returns:
        ``(eigenvalues (B, k) ascending, eigenvectors (B, n, k), LobpcgInfo)``; eigenvector
        signs are fixed (largest-magnitude entry positive).

    Example:
        >>> import torch
        >>> from cheeger.linalg import SymmetricOperator
        >>> i = torch.arange(400)
        >>> idx = torch.stack([torch.cat([i[:-1], i[1:], i]), torch.cat([i[1:], i[:-1], i])])
        >>> val = torch.cat([-torch.ones(798), torch.full((400,), 2.0)]).double()
        >>> op = SymmetricOperator.from_tensor(torch.sparse_coo_tensor(idx, val).coalesce())
        >>> lam, U, info = lobpcg_eigsh(op, 3)
        >>> bool(info.converged.all()), U.shape
        (True, torch.Size([1, 400, 3]))
    """
    dtype, device, B, n = op.dtype, op.device, op.batch, op.n
    if tol is None:
        tol = 1e-10 if dtype == torch.float64 else 1e-5
    m = k + max(4, k // 4) if block_size is None else block_size
    if m < k or 3 * m > n:
        raise ValueError(
            f"lobpcg: need k <= block_size and 3 block_size <= n, got k={k}, block_size={m}, "
            f"n={n}; use the dense path for small matrices"
        )
    if op.csr is None:
        op = SymmetricOperator.from_tensor(op.dense.to_sparse())
    matmul = op.matmul  # through op.product: 32-bit indices
    tau = shift * float(op.scale().max().clamp_min(torch.finfo(dtype).tiny))
    multigrid.setdefault("work_dtype", torch.float32)
    mg = AggregationMultigrid(op, tau, **multigrid)
    parts = [] if X0 is None else [X0.to(dtype)[..., :m]]
    have = 0 if X0 is None else parts[0].shape[-1]
    if have < m - 1:
        parts.append(mg.coarse_eigenvectors(m - 1 - have))
    if have < m:
        # The last guard starts random. Coarse eigenvectors of a graph made of identical pieces
        # are localised in some pieces, and LOBPCG's new directions T R never leave the pieces
        # the block covers (T is block diagonal over them), so a copy of a repeated eigenvalue
        # in another piece was missed and the solve reported converged (20 x 40 grid cut into 12
        # identical strips, k = 16: one of the 12 copies of lambda_2). A random column covers
        # every piece; the preconditioner turns it towards the lowest modes within iterations.
        parts.append(torch.randn(B, n, 1, dtype=dtype, device=device, generator=generator))
    X = torch.cat(parts, -1)  # (B, n, m)
    # columns the coarse space could not fill (tiny graphs) become random
    empty = _colnorm(X) == 0  # (B, m)
    if bool(empty.any()):
        fresh = torch.randn(X.shape, dtype=dtype, device=device, generator=generator)
        X = torch.where(empty[:, None, :], fresh, X)
    anorm = _norm_estimate(matmul, B, n, dtype, device)
    lam, U, info = lobpcg(matmul, mg, X, k, anorm=anorm, tol=tol, maxiter=maxiter)
    pivot = torch.gather(U, -2, U.abs().argmax(dim=-2, keepdim=True))  # (B, 1, k)
    U = U * torch.where(pivot < 0, -1.0, 1.0).to(dtype)
    info.multigrid = mg
    return lam, U, info
