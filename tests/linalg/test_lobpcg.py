"""Multigrid-preconditioned LOBPCG (``eigsh(method="lobpcg")``) against float64 oracles."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as sla
import torch

from cheeger.linalg import EigshConvergenceError, SymmetricOperator, eigsh, lobpcg, lobpcg_eigsh

D = torch.float64


def _scipy(A: torch.Tensor) -> sp.csr_matrix:
    A = A.coalesce()
    return sp.csr_matrix((A.values().numpy(), A.indices().numpy()), shape=A.shape)


def _projector_gap(U: np.ndarray, V: np.ndarray) -> float:
    """Distance between the spans of two orthonormal blocks (sign- and rotation-free)."""
    return float(np.abs(U @ U.T - V @ V.T).max())


def _complete_clusters(d: np.ndarray, k: int, gap: float = 1e-6) -> int:
    """The largest ``kk <= k`` that does not cut a cluster of (near-)equal eigenvalues."""
    while k > 1 and d[k] - d[k - 1] < gap:
        k -= 1
    return k


def _torus(n: int) -> torch.Tensor:
    """``L_sym`` of the ``n x n`` 4-neighbour torus: eigenvalues of multiplicity 4 (and 8)."""
    idx = torch.arange(n * n).reshape(n, n)
    r = torch.cat([idx.reshape(-1), idx.reshape(-1)])
    c = torch.cat([torch.roll(idx, 1, 0).reshape(-1), torch.roll(idx, 1, 1).reshape(-1)])
    rows = torch.cat([r, c, torch.arange(n * n)])
    cols = torch.cat([c, r, torch.arange(n * n)])
    vals = torch.cat([torch.full((2 * r.shape[0],), -0.25), torch.ones(n * n)]).to(D)
    return torch.sparse_coo_tensor(torch.stack([rows, cols]), vals, (n * n, n * n)).coalesce()


@pytest.mark.parametrize(("H", "W", "k", "conn"), [(32, 40, 8, 4), (32, 32, 16, 8)])
def test_matches_scipy_and_dense(grid_laplacian, H, W, k, conn):
    A = grid_laplacian(H, W, seed=H + k, regions=3, connectivity=conn)
    lam, U, info = eigsh(A, k, method="lobpcg", return_info=True)
    assert info.method == "lobpcg" and bool(info.converged.all())
    ref = np.sort(sla.eigsh(_scipy(A), k, which="SA", tol=1e-14)[0])
    assert np.abs(lam.numpy() - ref).max() < 1e-10
    # the relative residual, measured here against the exact ||A||_2
    dense = A.to_dense()
    res = (A @ U - U * lam).norm(dim=0) / torch.linalg.matrix_norm(dense, 2)
    assert res.max() < 1e-8
    d, V = np.linalg.eigh(dense.numpy())
    kk = _complete_clusters(d, k)
    assert _projector_gap(U.numpy()[:, :kk], V[:, :kk]) < 1e-6
    assert torch.allclose(U.T @ U, torch.eye(k, dtype=D), atol=1e-12)


def test_repeated_eigenvalues_of_a_torus():
    # eigenvalues 0, then two 4-fold clusters: k = 9 takes both clusters whole
    A = _torus(24)
    lam, U = eigsh(A, 9, method="lobpcg")
    d, V = np.linalg.eigh(A.to_dense().numpy())
    assert np.abs(lam.numpy() - d[:9]).max() < 1e-10
    assert np.ptp(d[1:5]) < 1e-12 and np.ptp(d[5:9]) < 1e-12 and d[9] - d[8] > 1e-3
    assert _projector_gap(U.numpy()[:, 1:5], V[:, 1:5]) < 1e-8
    assert _projector_gap(U.numpy()[:, 5:9], V[:, 5:9]) < 1e-8


def test_disconnected_components_give_repeated_zero(grid_laplacian):
    A = grid_laplacian(30, 30, seed=1, regions=3, cut=0.0)
    lam, U = eigsh(A, 6, method="lobpcg")
    assert np.abs(lam[:3].numpy()).max() < 1e-10 and lam[3] > 1e-6
    _d, V = np.linalg.eigh(A.to_dense().numpy())
    assert _projector_gap(U.numpy()[:, :3], V[:, :3]) < 1e-8


def test_repeated_eigenvalues_of_a_dense_matrix():
    # a random orthogonal similarity of diag(1, 1, 1, 2, 2, 3, ...): dense input is converted
    g = torch.Generator().manual_seed(0)
    Q, _ = torch.linalg.qr(torch.randn(200, 200, generator=g, dtype=D))
    d = torch.cat([torch.tensor([1.0, 1, 1, 2, 2]), torch.linspace(3, 10, 195)]).to(D)
    lam, U = eigsh(Q @ torch.diag(d) @ Q.T, 5, method="lobpcg", block_size=8)
    assert torch.allclose(lam, d[:5], atol=1e-10)
    assert _projector_gap(U[:, :3].numpy(), Q[:, :3].numpy()) < 1e-8


def test_batch_equals_single_solves(grid_laplacian):
    As = [grid_laplacian(24, 28, seed=s, regions=2) for s in range(2)]
    idx = torch.cat(
        [torch.cat([torch.full((1, a._nnz()), b), a.indices()]) for b, a in enumerate(As)], 1
    )
    batch = torch.sparse_coo_tensor(idx, torch.cat([a.values() for a in As]), (2, 672, 672))
    lam, U = eigsh(batch.coalesce(), 6, method="lobpcg")
    assert lam.shape == (2, 6) and U.shape == (2, 672, 6)
    for b, a in enumerate(As):
        single = eigsh(a, 6, method="lobpcg")[0]
        ref = np.linalg.eigvalsh(a.to_dense().numpy())[:6]
        assert np.abs(lam[b].numpy() - ref).max() < 1e-10
        assert np.abs(single.numpy() - ref).max() < 1e-10


def test_float32(grid_laplacian):
    A = grid_laplacian(32, 32, seed=4, regions=3)
    lam, U, info = eigsh(A.float(), 8, method="lobpcg", return_info=True)
    assert lam.dtype == torch.float32 and U.dtype == torch.float32
    ref = np.linalg.eigvalsh(A.to_dense().numpy())[:8]
    assert np.abs(lam.double().numpy() - ref).max() < 1e-4
    assert info.residuals.max() < 1e-5


def test_deterministic_and_warm_start(grid_laplacian):
    A = grid_laplacian(40, 40, seed=6, regions=3)
    a = eigsh(A, 8, method="lobpcg", seed=3)
    b = eigsh(A, 8, method="lobpcg", seed=3)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    # the next training step: a slightly different graph, started from the last eigenvectors
    A2 = (A + 1e-4 * grid_laplacian(40, 40, seed=7, regions=3)).coalesce() / (1 + 1e-4)
    _, _, cold = eigsh(A2, 8, method="lobpcg", return_info=True)
    lam, _, warm = eigsh(A2, 8, method="lobpcg", X0=a[1], return_info=True)
    assert warm.restarts < cold.restarts and bool(warm.converged.all())
    assert np.abs(lam.numpy() - np.linalg.eigvalsh(A2.to_dense().numpy())[:8]).max() < 1e-10


def test_gradient_is_the_shared_backward(grid_laplacian):
    # same eigenpairs, same backward code path: the gradient equals the Lanczos path's (a
    # separated spectrum, so the eigenvector loss does not depend on a basis choice)
    A = grid_laplacian(24, 24, seed=8)
    w = torch.randn(576, 4, generator=torch.Generator().manual_seed(9), dtype=D)
    grads = []
    for method in ("lanczos", "lobpcg"):
        Ar = A.clone().requires_grad_()
        lam, U = eigsh(Ar, 4, method=method)
        (lam.square().sum() + ((U * w).sum(0) ** 2).sum()).backward()
        grads.append(Ar.grad.coalesce().values())
    assert torch.allclose(grads[0], grads[1], rtol=1e-6, atol=1e-8 * grads[0].abs().max())


def _batch(mats: list[torch.Tensor]) -> torch.Tensor:
    """``(B, n, n)`` COO batch (3 sparse dims) of equally sized sparse matrices."""
    idx = torch.cat(
        [torch.cat([torch.full((1, a._nnz()), b), a.indices()]) for b, a in enumerate(mats)], 1
    )
    n = mats[0].shape[0]
    vals = torch.cat([a.values() for a in mats])
    return torch.sparse_coo_tensor(idx, vals, (len(mats), n, n)).coalesce()


def _strips(H: int, W: int, strips: int, cut: float = 0.0) -> torch.Tensor:
    """``L_sym`` of a uniform ``H x W`` 4-neighbour grid cut into ``strips`` vertical bands.

    Edges across band borders are scaled by ``cut`` (0: ``strips`` components; bands of equal
    width have equal spectra, so eigenvalues repeat away from zero too). ``strips = 1`` on a
    square grid: the square's symmetry makes double eigenvalues.
    """
    idx = torch.arange(H * W).reshape(H, W)
    rows = torch.cat([idx[:, :-1].reshape(-1), idx[:-1, :].reshape(-1)])
    cols = torch.cat([idx[:, 1:].reshape(-1), idx[1:, :].reshape(-1)])
    band = torch.arange(H * W) % W * strips // W
    w = torch.where(band[rows] != band[cols], cut, 1.0).to(D)
    keep = w > 0
    rows, cols, w = rows[keep], cols[keep], w[keep]
    deg = torch.zeros(H * W, dtype=D).index_add_(0, rows, w).index_add_(0, cols, w)
    s = deg.rsqrt()
    r = torch.cat([rows, cols, torch.arange(H * W)])
    c = torch.cat([cols, rows, torch.arange(H * W)])
    v = torch.cat([-w * s[rows] * s[cols], -w * s[rows] * s[cols], torch.ones(H * W, dtype=D)])
    return torch.sparse_coo_tensor(torch.stack([r, c]), v, (H * W, H * W)).coalesce()


def _check_against_dense(A: torch.Tensor, lam: torch.Tensor, U: torch.Tensor, gap: float):
    """Eigenvalues equal dense ``eigh``'s; each computed vector lies in its eigenvalue cluster's
    eigenspace (clusters: runs of dense eigenvalues closer than ``gap``), and the clusters held
    whole by the ``k`` pairs are spanned exactly: every copy of a repeated eigenvalue found."""
    k = lam.shape[-1]
    d, V = np.linalg.eigh(A.to_dense().numpy())
    assert np.abs(lam.numpy() - d[:k]).max() < 1e-10
    U = U.numpy()
    start = 0
    while start < k:
        stop = start + 1
        while stop < len(d) and d[stop] - d[stop - 1] < gap:
            stop += 1
        Vc = V[:, start:stop]  # the whole cluster (it may reach past k)
        Uc = U[:, start : min(stop, k)]
        assert np.abs(Uc - Vc @ (Vc.T @ Uc)).max() < 1e-6, (start, stop)
        if stop <= k:
            assert _projector_gap(Uc, Vc) < 1e-6, (start, stop)
        start = stop


@pytest.mark.parametrize("strips", [1, 2, 5, 8, 13, 16])
def test_components_up_to_multiplicity_k(strips):
    # k = 16 zero eigenvalues at most: the block m = k + max(4, k // 4) must find them all
    A = _strips(20, 30, strips)
    lam, U, info = eigsh(A, 16, method="lobpcg", return_info=True)
    assert bool(info.converged.all())
    assert int((lam.abs() < 1e-10).sum()) == strips
    _check_against_dense(A, lam, U, gap=1e-8)


@pytest.mark.parametrize("strips", [3, 9, 16])
def test_near_disconnected_graphs(strips):
    # cut edges x 1e-6: `strips` eigenvalues near 1e-7, then a gap
    A = _strips(20, 30, strips, cut=1e-6)
    lam, U = eigsh(A, 16, method="lobpcg")
    assert lam[strips - 1] < 1e-5 and (strips == 16 or lam[strips] > 1e-3)
    _check_against_dense(A, lam, U, gap=1e-5)


def test_double_eigenvalues_of_a_square_grid():
    A = _strips(24, 24, 1)
    d = np.linalg.eigvalsh(A.to_dense().numpy())
    assert np.ptp(d[1:3]) < 1e-12 and d[3] - d[2] > 1e-3  # the square's symmetry: doubles
    lam, U = eigsh(A, 16, method="lobpcg")
    _check_against_dense(A, lam, U, gap=1e-8)


def test_batched_mixture_of_multiplicities():
    # one batch: a square grid (doubles), 4 and 16 components, near-disconnected, a plain graph
    mats = [_strips(24, 24, 1), _strips(24, 24, 4), _strips(24, 24, 16),
            _strips(24, 24, 6, cut=1e-6), _strips(24, 24, 3, cut=0.3)]  # fmt: skip
    lam, U, info = eigsh(_batch(mats), 16, method="lobpcg", return_info=True)
    assert bool(info.converged.all())
    for b, (A, gap) in enumerate(zip(mats, [1e-8, 1e-8, 1e-8, 1e-5, 1e-8], strict=True)):
        _check_against_dense(A, lam[b], U[b], gap)


def test_float32_batch_converges(grid_laplacian):
    # the spectral head's case: 8 graphs of 23 x 30 pixels, 8-neighbour, float32, k = 16 (a
    # huge penalty on dead Rayleigh-Ritz directions once stalled these at residuals ~1e-3)
    mats = [grid_laplacian(23, 30, seed=s, regions=s % 4, connectivity=8) for s in range(8)]
    lam, _U, info = eigsh(_batch(mats).float(), 16, method="lobpcg", return_info=True)
    assert bool(info.converged.all()) and info.residuals.max() <= 1e-5
    for b, A in enumerate(mats):
        ref = np.linalg.eigvalsh(A.to_dense().numpy())[:16]
        assert np.abs(lam[b].double().numpy() - ref).max() < 5e-5


def test_lobpcg_iteration_with_any_preconditioner():
    # the bare iteration: a diagonal matrix with the exact inverse as preconditioner
    diag = torch.linspace(0.01, 2.0, 300, dtype=D)
    X = torch.randn(1, 300, 8, generator=torch.Generator().manual_seed(10), dtype=D)
    lam, _U, info = lobpcg(
        lambda Y: diag[:, None] * Y, lambda R: R / (diag[:, None] + 0.1), X, 4,
        anorm=torch.tensor([2.0], dtype=D),
    )
    assert torch.allclose(lam[0], diag[:4], atol=1e-10) and bool(info.converged.all())


def test_errors(grid_laplacian):
    A = grid_laplacian(20, 20, seed=11, regions=2)
    with pytest.raises(ValueError, match="block_size"):
        lobpcg_eigsh(SymmetricOperator.from_tensor(A), 4, block_size=200)
    with pytest.raises(EigshConvergenceError, match="did not converge"):
        eigsh(A, 6, method="lobpcg", max_restarts=0, tol=1e-14)
    lam, _, info = eigsh(
        A, 6, method="lobpcg", max_restarts=0, tol=1e-14, check=False, return_info=True
    )
    assert not bool(info.converged.all()) and torch.isfinite(lam).all()
