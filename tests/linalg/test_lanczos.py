"""Forward accuracy of our Lanczos against float64 oracles (scipy ARPACK, dense eigh)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as sla
import torch

from cheeger.linalg import EigshConvergenceError, SymmetricOperator, block_lanczos, eigsh
from cheeger.linalg.lanczos import _orthogonalise_rows


def _scipy(A: torch.Tensor) -> sp.csr_matrix:
    A = A.coalesce()
    return sp.csr_matrix((A.values().numpy(), A.indices().numpy()), shape=A.shape)


def assert_same_eigenspaces(U, V, lam, atol=1e-7, cluster=1e-8):
    """Eigenvectors equal up to sign, and up to rotation inside clusters of equal eigenvalues."""
    lam = np.asarray(lam)
    start = 0
    for i in range(1, len(lam) + 1):
        if i == len(lam) or lam[i] - lam[i - 1] > cluster:
            Ui, Vi = U[:, start:i], V[:, start:i]
            # the projectors onto the two spaces agree (sign- and rotation-free)
            assert np.abs(Ui @ Ui.T - Vi @ Vi.T).max() < atol, (start, i)
            start = i


@pytest.mark.parametrize(
    ("H", "W", "k", "conn"), [(32, 32, 8, 4), (32, 32, 16, 8), (40, 48, 16, 4)]
)
def test_matches_arpack_and_dense(grid_laplacian, H, W, k, conn):
    A = grid_laplacian(H, W, seed=H + k, regions=3, connectivity=conn)
    lam, U, info = eigsh(A, k, method="lanczos", return_info=True)
    ref = np.sort(sla.eigsh(_scipy(A), k, which="SA", tol=1e-14)[0])
    assert np.abs(lam.numpy() - ref).max() < 1e-10
    assert info.residuals.max() < 1e-8
    # relative residual measured here, independently of the solver's own bookkeeping
    res = (A @ U - U * lam).norm(dim=0) / torch.linalg.matrix_norm(A.to_dense(), 2)
    assert res.max() < 1e-8
    d, V = np.linalg.eigh(A.to_dense().numpy())
    assert np.abs(d[:k] - lam.numpy()).max() < 1e-10
    # compare only complete clusters: drop a cluster cut by the k-th eigenvalue
    kk = k
    while kk > 1 and d[kk] - d[kk - 1] < 1e-6:
        kk -= 1
    assert_same_eigenspaces(U.numpy()[:, :kk], V[:, :kk], d[:kk], atol=1e-6, cluster=1e-6)


def test_batch_equals_single_solves(grid_laplacian):
    As = [grid_laplacian(24, 24, seed=s, regions=2) for s in range(3)]
    idx = torch.cat(
        [torch.cat([torch.full((1, a._nnz()), b), a.indices()]) for b, a in enumerate(As)], 1
    )
    vals = torch.cat([a.values() for a in As])
    batch = torch.sparse_coo_tensor(idx, vals, (3, 576, 576)).coalesce()
    lam, U = eigsh(batch, 6, method="lanczos")
    assert lam.shape == (3, 6) and U.shape == (3, 576, 6)
    for b, a in enumerate(As):
        d, V = np.linalg.eigh(a.to_dense().numpy())
        assert np.abs(lam[b].numpy() - d[:6]).max() < 1e-10
        # each graph's eigenvectors are its own (a batch mix-up would pass the eigenvalues of
        # similar graphs), up to rotation inside its two-fold cluster at 0
        res = (a @ U[b] - U[b] * lam[b]).norm(dim=0)
        assert res.max() < 1e-8
        assert_same_eigenspaces(U[b].numpy(), V[:, :6], d[:6], atol=1e-6, cluster=1e-6)


def test_disconnected_components_give_repeated_zero(grid_laplacian):
    # three bands with every crossing edge removed: a 3-fold zero eigenvalue
    A = grid_laplacian(30, 30, seed=1, regions=3, cut=0.0)
    lam, U = eigsh(A, 6, method="lanczos")
    assert np.abs(lam[:3].numpy()).max() < 1e-10
    assert lam[3] > 1e-6
    d, V = np.linalg.eigh(A.to_dense().numpy())
    assert_same_eigenspaces(U.numpy()[:, :3], V[:, :3], d[:3], atol=1e-8, cluster=1e-9)


def test_repeated_eigenvalues_dense_matrix():
    # a random orthogonal similarity of diag(1, 1, 1, 2, 2, 3, ...): multiplicities 3 and 2
    g = torch.Generator().manual_seed(0)
    Q, _ = torch.linalg.qr(torch.randn(200, 200, generator=g, dtype=torch.float64))
    d = torch.cat([torch.tensor([1.0, 1, 1, 2, 2]), torch.linspace(3, 10, 195)]).double()
    A = Q @ torch.diag(d) @ Q.T
    lam, U = eigsh(A, 5, method="lanczos")
    assert torch.allclose(lam, d[:5], atol=1e-10)
    assert_same_eigenspaces(U.numpy(), Q[:, :5].numpy(), d[:5].numpy(), atol=1e-8)


@pytest.mark.parametrize("layout", ["coo", "csr", "dense"])
def test_layouts_agree(grid_laplacian, layout):
    A = grid_laplacian(20, 30, seed=3, regions=2)
    B = {"coo": A, "csr": A.to_sparse_csr(), "dense": A.to_dense()}[layout]
    lam, _ = eigsh(B, 5, method="lanczos")
    ref = np.linalg.eigvalsh(A.to_dense().numpy())[:5]
    assert np.abs(lam.numpy() - ref).max() < 1e-10


def test_float32(grid_laplacian):
    A = grid_laplacian(32, 32, seed=4, regions=3)
    lam, U, info = eigsh(A.float(), 8, method="lanczos", return_info=True)
    assert lam.dtype == torch.float32 and U.dtype == torch.float32
    ref = np.linalg.eigvalsh(A.to_dense().numpy())[:8]
    assert np.abs(lam.double().numpy() - ref).max() < 1e-4
    assert info.residuals.max() < 1e-4


def test_deterministic_under_seed(grid_laplacian):
    A = grid_laplacian(24, 24, seed=5, regions=2)
    a = eigsh(A, 6, method="lanczos", seed=7)
    b = eigsh(A, 6, method="lanczos", seed=7)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_warm_start_needs_fewer_products(grid_laplacian):
    A = grid_laplacian(40, 40, seed=6, regions=3)
    _, U, cold = eigsh(A, 8, method="lanczos", return_info=True)
    A2 = (A + 1e-4 * grid_laplacian(40, 40, seed=7, regions=3)).coalesce() / (1 + 1e-4)
    _, _, warm = eigsh(A2, 8, method="lanczos", X0=U, return_info=True)
    _, _, cold2 = eigsh(A2, 8, method="lanczos", return_info=True)
    assert warm.matvecs < cold2.matvecs
    assert cold.converged.all() and warm.converged.all()


def test_non_convergence_is_an_error(grid_laplacian):
    A = grid_laplacian(40, 40, seed=8, regions=3)
    with pytest.raises(EigshConvergenceError, match="did not converge"):
        eigsh(A, 8, method="lanczos", max_restarts=0)
    lam, _, info = eigsh(A, 8, method="lanczos", max_restarts=0, check=False, return_info=True)
    assert not info.converged.all() and torch.isfinite(lam).all()


def test_auto_falls_back_to_dense_when_lanczos_stalls(grid_laplacian):
    A = grid_laplacian(24, 24, seed=9, regions=3)
    lam, _, info = eigsh(A, 6, max_restarts=1, dense_max_n=100, return_info=True)
    assert info.method == "lanczos->dense" and info.converged.all()
    ref = np.linalg.eigvalsh(A.to_dense().numpy())[:6]
    assert np.abs(lam.numpy() - ref).max() < 1e-12
    # an explicit method never switches silently: it raises instead
    with pytest.raises(EigshConvergenceError):
        eigsh(A, 6, method="lanczos", max_restarts=1)


def test_bad_input_messages():
    with pytest.raises(ValueError, match="square"):
        eigsh(torch.zeros(3, 4, dtype=torch.float64), 1)
    with pytest.raises(ValueError, match="float32 or float64"):
        eigsh(torch.zeros(3, 3, dtype=torch.int64), 1)
    with pytest.raises(ValueError, match="1 <= k <= n"):
        eigsh(torch.eye(3, dtype=torch.float64), 4)
    with pytest.raises(ValueError, match="method"):
        eigsh(torch.eye(3, dtype=torch.float64), 1, method="arpack")


def test_pure_iteration_on_diagonal():
    A = torch.diag(torch.arange(100.0, dtype=torch.float64))[None]
    op = SymmetricOperator.from_tensor(A)
    lam, _, info = block_lanczos(op.matmul, 1, 100, 4, dtype=A.dtype, device=A.device)
    assert torch.allclose(lam[0], torch.arange(4.0, dtype=torch.float64), atol=1e-12)
    assert info.converged.all()


def test_gram_schmidt_by_rows_projects_out_the_basis():
    g = torch.Generator().manual_seed(0)
    V = torch.linalg.qr(torch.randn(2, 50, 7, dtype=torch.float64, generator=g))[0]  # (B, n, j)
    W = torch.randn(2, 50, 3, dtype=torch.float64, generator=g)
    Wr, H = _orthogonalise_rows(W.mT, V.mT)
    assert torch.allclose(H, V.mT @ W, atol=1e-12)  # the coefficients V^T W
    assert (V.mT @ Wr.mT).abs().max() < 1e-13  # the remainder is orthogonal to V
    assert torch.allclose(Wr.mT + V @ H, W, atol=1e-12)  # and with them rebuilds W
