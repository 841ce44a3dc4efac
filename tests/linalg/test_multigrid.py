"""The aggregation multigrid preconditioner: error reduction, structure, batches, precision."""

from __future__ import annotations

import itertools

import pytest
import torch

from cheeger.linalg import AggregationMultigrid, MultigridPreconditioner, SymmetricOperator

D = torch.float64


def _grid_parts(H, W, seed):
    """Upper edges and Gaussian weights of a ``H x W`` image-like grid (3 vertical bands)."""
    g = torch.Generator().manual_seed(seed)
    f = torch.randn(1, 3, H, W, generator=g, dtype=D)
    f = torch.nn.functional.avg_pool2d(f, 5, stride=1, padding=2, count_include_pad=False)
    f = f + 3.0 * (torch.arange(W) * 3 // W).to(D)  # three bands: tiny bottom eigenvalues
    f = f[0].reshape(3, -1)
    idx = torch.arange(H * W).reshape(H, W)
    rows = torch.cat([idx[:, :-1].reshape(-1), idx[:-1, :].reshape(-1)])
    cols = torch.cat([idx[:, 1:].reshape(-1), idx[1:, :].reshape(-1)])
    w = torch.exp(-(f[:, rows] - f[:, cols]).square().sum(0))
    return rows, cols, w


def _laplacians(H, W, seed):
    """Dense ``L = D - W``, the degrees and ``L_sym`` (sparse COO) of the same grid."""
    rows, cols, w = _grid_parts(H, W, seed)
    n = H * W
    Wd = torch.zeros(n, n, dtype=D)
    Wd[rows, cols] = w
    Wd[cols, rows] = w
    deg = Wd.sum(1)
    L = torch.diag(deg) - Wd
    Lsym = L / deg.sqrt()[:, None] / deg.sqrt()[None, :]
    return L, deg, Lsym.to_sparse().coalesce()


@pytest.mark.parametrize("work_dtype", [torch.float64, torch.float32])
def test_cycles_reduce_the_error_of_shifted_laplacian_solves(work_dtype):
    # (L + tau D) x = b  <=>  (L_sym + tau I) y = D^{-1/2} b with y = D^{1/2} x: the hierarchy of
    # L_sym preconditions the generalised system; each V-cycle must cut the error several times
    L, deg, Lsym = _laplacians(40, 40, seed=0)
    tau = 1e-4
    mg = AggregationMultigrid(
        SymmetricOperator.from_tensor(Lsym), tau, coarse_size=40, cycles=1, work_dtype=work_dtype
    )
    assert len(mg.levels) >= 3  # a real hierarchy, not a dense solve
    g = torch.Generator().manual_seed(1)
    b = torch.randn(L.shape[0], 2, generator=g, dtype=D)
    K = L + tau * torch.diag(deg)
    x_star = torch.linalg.solve(K, b)
    s = deg.sqrt()[:, None]
    x = torch.zeros_like(b)
    errors = [float(torch.linalg.norm(x - x_star))]
    for _ in range(6):
        r = b - K @ x
        x = x + mg((r / s)[None])[0] / s
        errors.append(float(torch.linalg.norm(x - x_star)))
    rates = [e1 / e0 for e0, e1 in itertools.pairwise(errors)]
    assert max(rates) < 0.7, rates
    assert errors[-1] < 0.05 * errors[0]


def test_pcg_with_the_vcycle_beats_jacobi():
    _, _, Lsym = _laplacians(48, 48, seed=2)
    op = SymmetricOperator.from_tensor(Lsym)
    tau = 1e-4
    A = Lsym.to_dense() + tau * torch.eye(op.n, dtype=D)
    b = torch.randn(op.n, 1, generator=torch.Generator().manual_seed(3), dtype=D)
    mg = AggregationMultigrid(op, tau, coarse_size=50, cycles=1)

    def pcg(precond, maxiter=2000):
        x, r = torch.zeros_like(b), b.clone()
        z = precond(r)
        p, rz = z.clone(), (r * z).sum()
        for it in range(1, maxiter + 1):
            q = A @ p
            alpha = rz / (p * q).sum()
            x, r = x + alpha * p, r - alpha * q
            if r.norm() <= 1e-10 * b.norm():
                return it
            z = precond(r)
            rz, rz_old = (r * z).sum(), rz
            p = z + (rz / rz_old) * p
        return maxiter

    its_mg = pcg(lambda r: mg(r[None])[0])
    its_jacobi = pcg(lambda r: r / A.diagonal()[:, None])
    assert its_mg <= 40
    assert 4 * its_mg < its_jacobi


def _batch_of(graphs):
    """One 3-dim COO batch ``(B, n, n)`` of the sparse ``(n, n)`` ``graphs``."""
    idx = torch.cat(
        [torch.cat([torch.full((1, a._nnz()), b), a.indices()]) for b, a in enumerate(graphs)], 1
    )
    n = graphs[0].shape[-1]
    return torch.sparse_coo_tensor(idx, torch.cat([a.values() for a in graphs]),
                                   (len(graphs), n, n))  # fmt: skip


def test_hierarchy_coarsens_and_keeps_graphs_apart():
    graphs = [_laplacians(24, 24, seed=s)[2] for s in (4, 5)]
    batch = _batch_of(graphs)
    mg = AggregationMultigrid(SymmetricOperator.from_tensor(batch.coalesce()), 1e-3, coarse_size=30)
    sizes = [lv.K.shape[0] for lv in mg.levels]
    assert len(sizes) >= 3
    assert all(2 * c <= f for f, c in itertools.pairwise(sizes))
    # the operator is block diagonal: a right-hand side in graph 0 stays in graph 0
    R = torch.zeros(2, 576, 3, dtype=D)
    R[0] = torch.randn(576, 3, generator=torch.Generator().manual_seed(6), dtype=D)
    out = mg(R)
    assert torch.count_nonzero(out[1]) == 0 and out[0].abs().sum() > 0
    # and each coarse node belongs to one graph: both graphs reach the coarsest level
    assert set(mg.levels[-1].bidx.tolist()) == {0, 1}


@pytest.mark.parametrize("connectivity", [4, 8])
def test_uniform_grids_and_paths_coarsen(connectivity, grid_edges, laplacian_from_edges):
    # every coupling equal: without a tie-break each node proposes to its smallest neighbour,
    # nothing pairs up, and the hierarchy stays one dense level
    H, W = 30, 40
    rows, cols = grid_edges(H, W, connectivity)
    L = laplacian_from_edges(rows, cols, torch.ones(rows.shape[0], dtype=D), H * W)
    mg = AggregationMultigrid(SymmetricOperator.from_tensor(L), 1e-3, coarse_size=100)
    sizes = [lv.K.shape[0] for lv in mg.levels]
    assert len(sizes) >= 2 and sizes[-1] <= 100
    assert all(2 * c <= f for f, c in itertools.pairwise(sizes))
    i = torch.arange(1000)  # a path: each interior node ties between its two neighbours
    e = torch.stack([torch.cat([i[:-1], i[1:], i]), torch.cat([i[1:], i[:-1], i])])
    path = torch.sparse_coo_tensor(e, torch.cat([-torch.ones(1998), 2 * torch.ones(1000)]).to(D))
    mg = AggregationMultigrid(SymmetricOperator.from_tensor(path.coalesce()), 1e-3, coarse_size=20)
    assert len(mg.levels) >= 3


def test_preconditioner_is_symmetric_positive_definite():
    # LOBPCG and PCG need a symmetric positive definite T: check on random vectors
    _, _, Lsym = _laplacians(30, 30, seed=7)
    mg = AggregationMultigrid(SymmetricOperator.from_tensor(Lsym), 1e-3, coarse_size=40)
    g = torch.Generator().manual_seed(8)
    X = torch.randn(1, 900, 6, generator=g, dtype=D)
    TX = mg(X)[0]
    G = X[0].T @ TX
    assert torch.allclose(G, G.T, atol=1e-10 * G.abs().max())
    assert torch.linalg.eigvalsh(0.5 * (G + G.T)).min() > 0


def test_coarse_space_holds_the_null_space_of_disconnected_graphs():
    # three bands with no edge between them: a 3-fold zero eigenvalue that the coarse levels keep
    rows, cols, w = _grid_parts(30, 30, seed=9)
    band = torch.arange(900) % 30 * 3 // 30
    w = torch.where(band[rows] != band[cols], torch.zeros_like(w), w)
    n = 900
    deg = torch.zeros(n, dtype=D).index_add_(0, rows, w).index_add_(0, cols, w)
    v = -w / (deg[rows] * deg[cols]).sqrt()
    idx = torch.stack(
        [torch.cat([rows, cols, torch.arange(n)]), torch.cat([cols, rows, torch.arange(n)])]
    )
    Lsym = torch.sparse_coo_tensor(
        idx, torch.cat([v, v, torch.ones(n, dtype=D)]), (n, n)
    ).coalesce()
    mg = AggregationMultigrid(SymmetricOperator.from_tensor(Lsym), 1e-4, coarse_size=30)
    Y = torch.linalg.qr(mg.coarse_eigenvectors(4)[0])[0]  # (n, 4)
    rayleigh = torch.linalg.eigvalsh(Y.T @ (Lsym @ Y))
    assert rayleigh[:3].max() < 1e-3 and rayleigh[3] > 10 * rayleigh[:3].max()


def test_module_form_and_bad_inputs():
    _, _, Lsym = _laplacians(20, 20, seed=10)
    R = torch.randn(400, 2, generator=torch.Generator().manual_seed(11), dtype=D)
    out = MultigridPreconditioner(1e-3, coarse_size=30)(Lsym, R)
    ref = AggregationMultigrid(SymmetricOperator.from_tensor(Lsym), 1e-3, coarse_size=30)(R[None])
    assert out.shape == R.shape and torch.equal(out, ref[0])
    with pytest.raises(ValueError, match="sparse storage"):
        AggregationMultigrid(SymmetricOperator.from_tensor(Lsym.to_dense()), 1e-3)
    with pytest.raises(ValueError, match="shift must be > 0"):
        AggregationMultigrid(SymmetricOperator.from_tensor(Lsym), 0.0)


def _reference_cycle(mg: AggregationMultigrid, R: torch.Tensor) -> torch.Tensor:
    """The textbook preconditioner, dense and unscaled: V-cycles of Jacobi-preconditioned
    Chebyshev smoothing (Saad, Alg. 12.1, step by step) on ``K = S^{-1} K~ S^{-1}`` with the
    prolongations ``P = S P~ S_c^{-1}`` and an exact coarse solve, rebuilt from the hierarchy."""
    Ks, Ps = [], []
    for i, lv in enumerate(mg.levels):
        s = lv.scale.double()
        Ks.append(lv.K.to_dense().double() / s / s.T)
        if lv.P is not None:
            Ps.append(s * lv.P.to_dense().double() / mg.levels[i + 1].scale.double().T)

    def smooth(i, B, X):
        K, lmax = Ks[i], mg.levels[i].lmax
        inv_diag = 1.0 / K.diagonal()[:, None]
        lo = lmax / mg.ratio
        theta, delta = 0.5 * (lmax + lo), 0.5 * (lmax - lo)
        sigma = theta / delta
        rho = 1.0 / sigma
        X = torch.zeros_like(B) if X is None else X
        D = inv_diag * (B - K @ X) / theta
        X = X + D
        for _ in range(mg.smooth_steps - 1):
            rho_new = 1.0 / (2.0 * sigma - rho)
            D = rho_new * rho * D + 2.0 * rho_new / delta * inv_diag * (B - K @ X)
            X = X + D
            rho = rho_new
        return X

    def cycle(i, B):
        if i == len(Ks) - 1:
            return torch.linalg.solve(Ks[i], B)
        X = smooth(i, B, None)
        X = X + Ps[i] @ cycle(i + 1, Ps[i].T @ (B - Ks[i] @ X))
        return smooth(i, B, X)

    # the rebuilt operators are the setup's: Galerkin products of one another
    for i, P in enumerate(Ps):
        assert torch.allclose(P.T @ Ks[i] @ P, Ks[i + 1], rtol=0, atol=1e-12 * Ks[i].abs().max())
    B = R.reshape(-1, R.shape[-1])
    X = cycle(0, B)
    for _ in range(mg.cycles - 1):
        X = X + cycle(0, B - Ks[0] @ X)
    return X.reshape(R.shape)


@pytest.mark.parametrize(("smooth_steps", "cycles"), [(2, 2), (1, 1), (3, 1), (4, 2)])
def test_scaled_cycle_is_the_textbook_preconditioner(smooth_steps, cycles):
    # the cycle runs on S K S with Horner-evaluated Chebyshev polynomials and reused buffers;
    # it must be the same operator as the step-by-step Jacobi-Chebyshev V-cycle on K, for every
    # degree (Horner's ping-pong differs for odd and even degrees), a batch of two graphs, and
    # blocks of different widths through the same buffers
    graphs = [_laplacians(24, 24, seed=s)[2] for s in (12, 13)]
    batch = _batch_of(graphs)
    mg = AggregationMultigrid(SymmetricOperator.from_tensor(batch.coalesce()), 1e-3,
                              coarse_size=30, smooth_steps=smooth_steps, cycles=cycles)  # fmt: skip
    assert len(mg.levels) >= 3
    # the oracle's finest operator, rebuilt from the scaled one, is the input's A + tau I
    s0 = mg.levels[0].scale.double()
    K0 = mg.levels[0].K.to_dense().double() / s0 / s0.T
    A = torch.block_diag(*[a.to_dense() for a in graphs]) + 1e-3 * torch.eye(2 * 576, dtype=D)
    assert torch.allclose(K0, A, rtol=0, atol=1e-12)
    g = torch.Generator().manual_seed(14)
    for p in (5, 2, 7):
        R = torch.randn(2, 576, p, generator=g, dtype=D)
        out, ref = mg(R), _reference_cycle(mg, R)
        assert torch.allclose(out, ref, rtol=0, atol=1e-10 * ref.abs().max())
