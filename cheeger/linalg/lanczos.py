"""Thick-restart block Lanczos for the smallest eigenpairs of a batch of symmetric matrices.

The iteration is the Krylov-Schur form of block Lanczos (Stewart 2001; Zhou and Saad 2008):

* a block of ``b`` vectors is extended by ``W = A V_j``, fully reorthogonalised against the whole
  basis by classical Gram-Schmidt applied twice ("twice is enough", Giraud et al. 2005), and the
  projection coefficients are written into ``T = V^T A V`` (kept explicitly, so no three-term
  recurrence has to be trusted in floating point);
* when the basis is full, the Ritz pairs of ``T`` are computed; the residual of the Ritz pair
  ``(theta_i, V s_i)`` is ``||R S_{last, i}||`` where ``A V = V T + Q R E^T`` is the block
  Arnoldi relation, so convergence is judged from ``T`` without touching ``A``;
* the ``l`` best Ritz vectors and the residual block ``Q`` are kept (thick restart) and the
  iteration resumes from ``Q``.

A block (rather than single-vector) Krylov space is what finds repeated eigenvalues: a graph with
``c`` connected components has a ``c``-fold zero eigenvalue, and a single starting vector only ever
sees one direction of it. A block of ``b >= c`` vectors sees all of them; when the Krylov space
becomes invariant (an exact breakdown, ``R_ii = 0``) the lost directions are replaced by fresh
random vectors orthogonal to the basis, so the search goes on in the rest of the space.

The batch runs in lock step: one sparse-dense product serves every graph of the batch, and the
iteration stops when every graph has converged (graphs that converged early keep refining).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = ["LanczosInfo", "block_lanczos"]


@dataclass
class LanczosInfo:
    """What a solve did and how well.

    Attributes:
        restarts: thick restarts performed.
        matvecs: products of ``A`` with a single vector (a block product of ``b`` columns counts b).
        residuals: ``(B, k)`` true relative residuals ``||A u - lambda u|| / ||A||_est``.
        converged: ``(B,)`` whether every one of the k pairs met the tolerance.
        tol: the relative residual tolerance used.
        anorm: ``(B,)`` the estimate of ``||A||_2`` (largest Ritz value magnitude seen).
        method: the path that produced the result (``"lanczos"``, ``"dense"``, or
            ``"lanczos->dense"`` when :func:`~cheeger.linalg.eigsh` fell back to the dense path).
    """

    restarts: int
    matvecs: int
    residuals: torch.Tensor
    converged: torch.Tensor
    tol: float
    anorm: torch.Tensor
    method: str = "lanczos"


def _orthogonalise_rows(
    Wr: torch.Tensor, Vr: torch.Tensor, passes: int = 2
) -> tuple[torch.Tensor, torch.Tensor]:
    """Remove the span of the orthonormal rows ``Vr (B, j, n)`` from the rows ``Wr (B, b, n)``:
    classical Gram-Schmidt, ``passes`` times ("twice is enough").

    Returns ``(Wr', H)`` with ``H = V^T W (B, j, b)`` accumulated over the passes.
    """
    Ht = torch.zeros(Wr.shape[0], Wr.shape[1], Vr.shape[1], dtype=Wr.dtype, device=Wr.device)
    for _ in range(passes):
        Ct = Wr @ Vr.transpose(-1, -2)  # (B, b, j)
        Wr = Wr - Ct @ Vr
        Ht = Ht + Ct
    return Wr, Ht.transpose(-1, -2)


def _orthonormalise_against(
    W: torch.Tensor, V: torch.Tensor, passes: int = 2
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`_orthogonalise_rows` in column form: ``W (B, n, b)``, ``V (B, n, j)``."""
    Wr, H = _orthogonalise_rows(W.mT, V.mT, passes)
    return Wr.mT, H


def _qr_with_replacement(
    W: torch.Tensor, V: torch.Tensor, tiny: torch.Tensor, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """QR of ``W`` whose rank-deficient directions are replaced by random ones orthogonal to ``V``.

    Args:
        W: ``(B, n, b)`` residual block, already orthogonal to ``V``.
        V: ``(B, n, j)`` current orthonormal basis.
        tiny: ``(B,)``; an ``|R_ii|`` below it is an exact breakdown.

    Returns:
        ``Q (B, n, b)`` orthonormal and orthogonal to ``V``; ``R (B, b, b)`` with the rows of
        replaced directions zeroed (they carry no part of ``W``).
    """
    Q, R = torch.linalg.qr(W)
    dead = R.diagonal(dim1=-2, dim2=-1).abs() <= tiny[:, None]  # (B, b)
    if not bool(dead.any()):
        return Q, R
    # Fresh directions: random, then orthogonal to V and to the live columns of Q.
    fresh = torch.randn(W.shape, dtype=W.dtype, device=W.device, generator=generator)
    Q = torch.where(dead[:, None, :], fresh, Q)
    R = torch.where(dead[:, :, None], torch.zeros_like(R), R)
    Q, _ = _orthonormalise_against(Q, V)
    # Re-orthonormalise the block while keeping live columns fixed: Gram-Schmidt left to right.
    cols = []
    for i in range(Q.shape[-1]):
        q = Q[..., i : i + 1]
        if cols:
            q, _ = _orthonormalise_against(q, torch.cat(cols, dim=-1))
        cols.append(q / q.norm(dim=-2, keepdim=True))
    return torch.cat(cols, dim=-1), R


def block_lanczos(
    matmul: Callable[[torch.Tensor], torch.Tensor],
    batch: int,
    n: int,
    k: int,
    *,
    dtype: torch.dtype,
    device: torch.device,
    block_size: int | None = None,
    basis_size: int | None = None,
    tol: float | None = None,
    max_restarts: int = 1000,
    generator: torch.Generator | None = None,
    X0: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, LanczosInfo]:
    """Smallest ``k`` eigenpairs of ``B`` symmetric matrices given by their products.

    This is the pure iteration: no autograd (call it under ``torch.no_grad``), no input checks
    beyond sizes. Use :func:`cheeger.linalg.eigsh` for the differentiable public entry.

    Args:
        matmul: ``X (B, n, m) -> A X (B, n, m)``; ``X`` may be a non-contiguous view.
        batch, n, k: batch size, matrix order, number of wanted pairs.
        dtype, device: of the iteration.
        block_size: ``b``, vectors per Krylov block; must be at least the largest multiplicity
            that has to be resolved. Default ``min(k, 4)``: smaller blocks need fewer products
            (measured on a 64 x 64 grid, k = 16: b = 8 took 11,000 products, b = 4 1,800, b = 2
            940), larger ones resolve higher multiplicities.
        basis_size: ``m``, basis columns before a restart. Default ``max(4 k, k + 8 b)``.
        tol: relative residual tolerance ``||A u - lambda u|| <= tol ||A||``. Default 1e-10 in
            float64, 1e-5 in float32.
        max_restarts: the iteration stops (unconverged) after this many restarts.
        generator: source of the random starting block (and of breakdown replacements).
        X0: optional ``(B, n, p)`` warm start (e.g. the previous training step's eigenvectors);
            the starting block mixes its columns with random weights.

    Returns:
        ``(eigenvalues (B, k) ascending, eigenvectors (B, n, k), LanczosInfo)``.

    Example:
        >>> import torch
        >>> A = torch.diag(torch.arange(100.0, dtype=torch.float64)).unsqueeze(0)
        >>> lam, U, info = block_lanczos(lambda X: A @ X, 1, 100, 3,
        ...                              dtype=A.dtype, device=A.device)
        >>> lam.round(decimals=8).tolist()
        [[0.0, 1.0, 2.0]]
    """
    b = min(k, 4) if block_size is None else block_size
    m = max(4 * k, k + 8 * b) if basis_size is None else basis_size
    if tol is None:
        tol = 1e-10 if dtype == torch.float64 else 1e-5
    if b < 1 or m < k + 2 * b:
        raise ValueError(
            f"block_lanczos: need block_size >= 1 and basis_size >= k + 2 b, got "
            f"b={b}, m={m}, k={k}"
        )
    if m + b > n:
        raise ValueError(
            f"block_lanczos: basis of {m + b} columns does not fit n = {n}; "
            "use the dense path for small matrices"
        )
    eps = torch.finfo(dtype).eps
    keep = max(k, min(m - 2 * b, (k + m) // 2 - b))  # Ritz vectors kept at a restart

    # The basis is stored by rows, Vr = V^T (B, m + b, n), and each block as its transpose:
    # Gram-Schmidt then multiplies (b, n) by (n, j) matrices, where the column form multiplies
    # (j, n) by (n, b), a shape BLAS runs about 5 times slower with b = 4 columns (measured at
    # n = 690, B = 8, j = 64: 58 against 279 us; Gram-Schmidt was 3/4 of a solve).
    Vr = torch.zeros(batch, m + b, n, dtype=dtype, device=device)  # basis, by rows
    T = torch.zeros(batch, m, m, dtype=dtype, device=device)  # V^T A V
    start = torch.randn(batch, n, b, dtype=dtype, device=device, generator=generator)
    if X0 is not None:
        mix = torch.randn(X0.shape[-1], b, dtype=dtype, device=device, generator=generator)
        start = X0.to(dtype) @ mix + 1e-3 * start * X0.norm() / start.norm()
    Vr[:, :b] = torch.linalg.qr(start)[0].mT
    anorm = torch.zeros(batch, dtype=dtype, device=device)
    cur, matvecs, restarts = 0, 0, 0
    while True:
        j = cur
        R = None
        while j + b <= m:
            Wr = matmul(Vr[:, j : j + b].mT).mT  # (B, b, n)
            matvecs += b
            Wr, H = _orthogonalise_rows(Wr, Vr[:, : j + b])  # H: (B, j + b, b)
            T[:, : j + b, j : j + b] = H
            T[:, j : j + b, : j + b] = H.transpose(-1, -2)
            anorm = torch.maximum(anorm, H.abs().amax(dim=(-1, -2)))
            Q, R = _qr_with_replacement(Wr.mT, Vr[:, : j + b].mT, 1e3 * eps * anorm, generator)
            Vr[:, j + b : j + 2 * b] = Q.mT
            j += b
        Tj = 0.5 * (T[:, :j, :j] + T[:, :j, :j].transpose(-1, -2))
        theta, S = torch.linalg.eigh(Tj)  # (B, j), (B, j, j)
        anorm = torch.maximum(anorm, theta.abs().amax(-1))
        ritz_res = (R @ S[:, j - b : j, :k]).norm(dim=-2)  # (B, k)
        done = bool((ritz_res <= tol * anorm[:, None]).all())
        if done or restarts >= max_restarts:
            break
        # Thick restart: keep the best `keep` Ritz vectors, resume from the residual block.
        Vr[:, :keep] = S[..., :keep].mT @ Vr[:, :j]
        Vr[:, keep : keep + b] = Vr[:, j : j + b]
        T.zero_()
        T[:, :keep, :keep] = torch.diag_embed(theta[:, :keep])
        cur = keep
        restarts += 1

    lam = theta[:, :k]  # (B, k)
    U = (S[..., :k].mT @ Vr[:, :j]).mT.contiguous()  # (B, n, k)
    # A deterministic sign: the largest-magnitude entry of each eigenvector is positive.
    pivot = U.abs().argmax(dim=-2, keepdim=True)  # (B, 1, k)
    U = U * torch.sign(torch.gather(U, -2, pivot)).where(torch.gather(U, -2, pivot) != 0, 1.0)
    true_res = (matmul(U) - U * lam[:, None, :]).norm(dim=-2) / anorm[:, None].clamp_min(
        torch.finfo(dtype).tiny
    )
    matvecs += k
    info = LanczosInfo(
        restarts=restarts,
        matvecs=matvecs,
        residuals=true_res,
        converged=(true_res <= 10 * tol).all(-1),
        tol=tol,
        anorm=anorm,
    )
    return lam, U, info
