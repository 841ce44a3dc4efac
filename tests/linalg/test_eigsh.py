"""The default path of ``eigsh`` on the hard cases of image graphs: repeated eigenvalues.

A learned affinity that nearly cuts an image into regions gives a cluster of tiny eigenvalues, one
that cuts it gives a repeated zero, and a symmetric grid gives double eigenvalues away from zero.
Every default (``method="auto"``) result is compared with numpy's dense ``eigh`` in float64:
eigenvalues, and eigenvectors up to rotation inside each cluster of equal eigenvalues.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cheeger.linalg import EigshConvergenceError, eigsh


@pytest.fixture
def uniform_grid(grid_edges, laplacian_from_edges):
    """``make(H, W, strips=1, cut=0.0, connectivity=8, isolated=0)``: L_sym of an unweighted
    pixel grid cut into ``strips`` equal vertical strips.

    Edges across a strip border get weight ``cut`` (0: the strips are components, and identical
    strips repeat every eigenvalue ``strips`` times). ``isolated`` trailing nodes get no edge.
    """

    def make(H, W, strips=1, cut=0.0, connectivity=8, isolated=0):
        r, c = grid_edges(H, W, connectivity)
        strip = torch.arange(H * W) % W * strips // W
        w = torch.where(strip[r] != strip[c], cut, 1.0).double()
        keep = w > 0
        return laplacian_from_edges(r[keep], c[keep], w[keep], H * W + isolated)

    return make


def stack(mats):
    idx = torch.cat(
        [torch.cat([torch.full((1, a._nnz()), b), a.indices()]) for b, a in enumerate(mats)], 1
    )
    n = mats[0].shape[-1]
    return torch.sparse_coo_tensor(idx, torch.cat([a.values() for a in mats]), (len(mats), n, n))


def assert_matches_dense(A, lam, U, k, atol_lam=1e-10, atol_vec=1e-6, cluster=1e-7):
    d, V = np.linalg.eigh(A.to_dense().numpy())
    assert np.abs(lam.numpy() - d[:k]).max() < atol_lam, (lam.numpy(), d[:k])
    # complete clusters only: one cut by the k-th eigenvalue has an arbitrary part inside
    kk = k
    while kk > 0 and kk < len(d) and d[kk] - d[kk - 1] < cluster:
        kk -= 1
    U = U.numpy()
    start = 0
    for i in range(1, kk + 1):
        if i == kk or d[i] - d[i - 1] > cluster:
            P, Q = U[:, start:i], V[:, start:i]
            assert np.abs(P @ P.T - Q @ Q.T).max() < atol_vec, (start, i)
            start = i


@pytest.mark.parametrize("strips", [1, 2, 4, 5, 6, 8, 12, 16, 20])
@pytest.mark.parametrize("laplacian", [True, None])
def test_default_finds_every_copy_of_zero(strips, laplacian, uniform_grid):
    # identical strips: 0 and every other eigenvalue of a strip repeat `strips` times
    A = uniform_grid(20, 40, strips)
    lam, U, info = eigsh(A, 16, laplacian=laplacian, return_info=True)
    assert_matches_dense(A, lam, U, 16)
    assert bool(info.converged.all())
    if laplacian:
        assert info.components.tolist() == [strips] and bool(info.certified.all())
    else:  # L_sym is not recognised from its entries: no certificate, saturation still works
        assert info.certified is None
    if strips >= 4 and laplacian:  # as many components as a Lanczos block: LOBPCG at once
        assert info.method == "lobpcg" and not info.escalated
    elif strips >= 4:  # a block of 4 holding 4 copies may hold too few: the block is widened
        assert info.escalated and info.block_size >= 16


@pytest.mark.parametrize("strips", [6, 10, 16])
def test_nearly_cut_graph(strips, uniform_grid):
    A = uniform_grid(20, 40, strips, cut=1e-6)
    lam, U, info = eigsh(A, 16, laplacian=True, return_info=True)
    assert info.components.tolist() == [1]
    assert_matches_dense(A, lam, U, 16, cluster=1e-9)


@pytest.mark.parametrize(("side", "connectivity"), [(24, 4), (24, 8), (30, 4)])
def test_square_grid_double_eigenvalues(side, connectivity, uniform_grid):
    A = uniform_grid(side, side, connectivity=connectivity)
    d = np.linalg.eigvalsh(A.to_dense().numpy())[:16]
    assert (np.diff(d) < 1e-10).sum() >= 4  # the case is what it claims: doubles in the bottom
    lam, U = eigsh(A, 16, laplacian=True)
    assert_matches_dense(A, lam, U, 16)


def test_isolated_nodes(uniform_grid):
    A = uniform_grid(20, 30, strips=3, isolated=5)
    lam, U, info = eigsh(A, 16, laplacian=True, return_info=True)
    assert info.components.tolist() == [8]
    assert_matches_dense(A, lam, U, 16)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_batched_mixture(dtype, uniform_grid):
    mats = [
        uniform_grid(24, 25, 1),
        uniform_grid(24, 25, 6),
        uniform_grid(24, 25, 10, cut=1e-6),
        uniform_grid(24, 25, 5),
        uniform_grid(24, 25, 25),
    ]
    A = stack(mats).to(dtype).coalesce()
    lam, U, info = eigsh(A, 16, laplacian=True, return_info=True)
    assert info.components.tolist() == [1, 6, 1, 5, 25]
    tol = 1e-10 if dtype == torch.float64 else 2e-4
    for b, m in enumerate(mats):
        if dtype == torch.float64:
            assert_matches_dense(m, lam[b], U[b], 16)
        else:  # float32: eigenvalues to its tolerance, and the zero count exact
            d = np.linalg.eigvalsh(m.to_dense().numpy())[:16]
            assert np.abs(lam[b].double().numpy() - d).max() < tol
            assert int((lam[b].abs() < 1e-4).sum()) == (d < 1e-4).sum()


def test_certificate_catches_a_small_block(uniform_grid):
    # a Lanczos block of 4 chosen by the caller cannot hold 6 copies of zero
    A = uniform_grid(20, 30, 6)  # equal strips: 6 copies of every eigenvalue
    with pytest.raises(EigshConvergenceError, match="certificate"):
        eigsh(A, 16, method="lanczos", block_size=4, laplacian=True)
    lam, _, info = eigsh(
        A, 16, method="lanczos", block_size=4, laplacian=True, check=False, return_info=True
    )
    assert info.components.tolist() == [6] and not bool(info.certified.all())
    assert int((lam.abs() < 1e-9).sum()) < 6  # the miss is real, not a false alarm
    # the default path falls back and says so
    lam, U, info = eigsh(A, 16, block_size=4, laplacian=True, return_info=True)
    assert info.method == "lanczos->dense" and bool(info.certified.all())
    assert_matches_dense(A, lam, U, 16)


def test_certificate_fallback_above_dense_size(uniform_grid):
    A = uniform_grid(20, 30, 6)  # equal strips: 6 copies of every eigenvalue
    lam, U, info = eigsh(A, 16, block_size=4, laplacian=True, fallback_max_n=100,
                         return_info=True)  # fmt: skip
    assert info.method == "lanczos->lobpcg" and bool(info.certified.all())
    assert_matches_dense(A, lam, U, 16, atol_vec=1e-5)


def test_combinatorial_laplacian_is_detected(uniform_grid):
    A = uniform_grid(20, 40, 6).to_dense()
    # L = D^1/2 L_sym D^1/2 with D from the strips' degrees: recognisable from its row sums
    off = -(A - torch.diag(A.diagonal()))
    W = off  # L_sym's off-diagonals, a valid symmetric affinity in its own right
    L = (torch.diag(W.sum(1)) - W).to_sparse()
    lam, U, info = eigsh(L, 16, return_info=True)
    assert info.components.tolist() == [6] and bool(info.certified.all())
    assert_matches_dense(L, lam, U, 16)


def test_large_laplacians_route_to_lobpcg(uniform_grid):
    from cheeger.linalg.eigsh import LOBPCG_MIN_N

    # the default threshold: a Laplacian of LOBPCG_MIN_N nodes goes to LOBPCG, one below to
    # Lanczos (the spectral head's 45 x 60 graphs are above it, 23 x 30 below)
    assert 23 * 30 < LOBPCG_MIN_N <= 45 * 60
    big, small = uniform_grid(32, LOBPCG_MIN_N // 32), uniform_grid(23, 30)
    assert eigsh(big, 16, return_info=True)[2].method == "lobpcg"
    assert eigsh(small, 8, return_info=True)[2].method.startswith("lanczos")
    A = uniform_grid(20, 40, 6)
    _, _, info = eigsh(A, 16, lobpcg_min_n=800, return_info=True)
    assert info.method == "lobpcg"
    _, _, info = eigsh(-A, 4, lobpcg_min_n=800, check=False, return_info=True)
    assert info.method != "lobpcg"  # not a Laplacian's sign pattern: no multigrid


def test_gap_rule_is_the_block_mean_gap_and_stays_bounded():
    g = torch.Generator().manual_seed(3)
    Q, _ = torch.linalg.qr(torch.randn(40, 40, generator=g, dtype=torch.float64))
    lam0 = torch.cat([torch.tensor([0.0, 0.01, 0.011, 0.03]), torch.linspace(0.5, 2, 36)])
    A = (Q * lam0) @ Q.T
    G = torch.randn(40, 4, generator=g, dtype=torch.float64)

    def grad(eps, rule, M=A):
        M = M.clone().requires_grad_(True)
        _, U = eigsh(M, 4, eps, method="dense", eps_rule=rule)
        (out,) = torch.autograd.grad((U * G).sum(), M)
        return out

    scale = float(A.square().sum().div(40).sqrt())
    mean_gap = 0.03 / 3
    # the gap rule is the rms rule at the eps that gives the same absolute broadening
    assert torch.allclose(grad(1e-2, "gap"), grad(1e-2 * mean_gap / scale, "rms"), atol=1e-12)
    # a fully degenerate block: the floor keeps the bound ||A_bar|| <= ||G|| / (2 eps_abs)
    D = (Q * torch.cat([torch.zeros(4), torch.linspace(0.5, 2, 36)])) @ Q.T
    from cheeger.linalg.eigsh import GAP_RULE_FLOOR

    bound = G.norm() / (2 * GAP_RULE_FLOOR * float(D.square().sum().div(40).sqrt()))
    assert torch.isfinite(grad(1e-3, "gap", D)).all() and grad(1e-3, "gap", D).norm() <= bound
    with pytest.raises(ValueError, match="eps_rule"):
        eigsh(A, 2, eps_rule="relative")
