"""The broadened backward: exactness, bounds at degeneracy, partial-solve complement, sparsity."""

from __future__ import annotations

import importlib
import warnings

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cheeger.linalg import SymmetricOperator, broadened_inverse_gaps, eigsh
from cheeger.linalg.backward import (
    ComplementSolveError,
    cocg_complement,
    complement_term,
    record_complement,
)

D = torch.float64


def _random_symmetric(n, seed, spread=1.0):
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=D))
    d = torch.linspace(0, spread, n, dtype=D) + 0.01 * torch.rand(n, generator=g, dtype=D)
    return Q @ torch.diag(d) @ Q.T, Q


def _loss(lam, U, w):
    # gauge-invariant in each eigenvector's sign: squares of projections
    return lam.square().sum() + ((U * w).sum(-2) ** 2).sum()


def _reference_grad(A0, k, w):
    A = A0.clone().requires_grad_()
    lam, U = torch.linalg.eigh(A)
    _loss(lam[..., :k], U[..., :k], w).backward()
    return A.grad


@pytest.mark.parametrize("method", ["dense", "lanczos"])
def test_gradcheck_separated_spectrum(method):
    # A(theta) = A0 + sum_i theta_i S_i over 12 random symmetric directions: the whole gradient
    # is checked against finite differences along each direction, at 24 solves instead of 2 n^2
    n, k = 60, 3
    A0, _ = _random_symmetric(n, 0, spread=3.0)
    g = torch.Generator().manual_seed(1)
    w = torch.randn(n, k, dtype=D, generator=g)
    S = torch.randn(12, n, n, dtype=D, generator=g)
    S = (S + S.transpose(-1, -2)) / 2

    def f(theta):
        A = A0 + (theta[:, None, None] * S).sum(0)
        lam, U = eigsh(A, k, eps=0.0, method=method, basis_size=24, block_size=2)
        return _loss(lam, U, w)

    theta = torch.zeros(12, dtype=D, requires_grad=True)
    assert torch.autograd.gradcheck(f, (theta,), eps=1e-6, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize(("method", "backward"), [("dense", "full"), ("lanczos", "full")])
def test_exact_rule_agrees_with_autograd_through_dense_eigh(method, backward):
    n, k = 150, 5
    A0, _ = _random_symmetric(n, 2, spread=2.0)
    w = torch.randn(n, k, dtype=D, generator=torch.Generator().manual_seed(3))
    A = A0.clone().requires_grad_()
    lam, U = eigsh(A, k, eps=0.0, method=method, backward=backward)
    _loss(lam, U, w).backward()
    ref = _reference_grad(A0, k, w)
    assert (A.grad - ref).norm() / ref.norm() < 1e-8


def test_broadened_matches_exact_where_gaps_are_large():
    # gaps >= ~1e-2 everywhere; eps_abs = 1e-6 * scale: relative change eps^2/gap^2 << 1e-6
    n, k = 80, 4
    A0, _ = _random_symmetric(n, 4, spread=5.0)
    w = torch.randn(n, k, dtype=D, generator=torch.Generator().manual_seed(5))
    grads = []
    for eps in (0.0, 1e-6):
        A = A0.clone().requires_grad_()
        lam, U = eigsh(A, k, eps=eps, method="dense")
        _loss(lam, U, w).backward()
        grads.append(A.grad)
    assert (grads[0] - grads[1]).norm() / grads[0].norm() < 1e-6


def test_broadened_factor_is_bounded():
    lam = torch.tensor([[0.0, 1e-12, 1e-3, 0.5]], dtype=D)
    eps = torch.tensor([1e-3], dtype=D)
    F = broadened_inverse_gaps(lam, lam, eps)
    assert torch.isfinite(F).all()
    assert F.abs().max() <= 1 / (2 * 1e-3) + 1e-9
    assert F[0, 0, 1].abs() < 1e-5  # collided pair: saturates to ~gap/eps^2, not 1/gap


def _three_components(grid_laplacian):
    return grid_laplacian(24, 24, seed=11, regions=3, cut=0.0)


@pytest.mark.parametrize("method", ["dense", "lanczos"])
def test_degenerate_spectrum_gives_bounded_gradient(grid_laplacian, method):
    A = _three_components(grid_laplacian)
    v = A.values().clone().requires_grad_()
    S = torch.sparse_coo_tensor(A.indices(), v, A.shape, is_coalesced=True)
    k = 5
    lam, U = eigsh(S, k, method=method)
    gU = torch.randn(U.shape, dtype=D, generator=torch.Generator().manual_seed(0))
    glam = torch.ones(k, dtype=D)
    ((U * gU).sum() + (lam * glam).sum()).backward()
    assert torch.isfinite(v.grad).all()
    # documented bound: ||A_bar||_F <= ||g_lam|| + ||g_U||_F / (2 eps_abs); a sparse entry's value
    # gradient is the symmetric A_bar entry, so its norm is at most ||A_bar||_F
    scale = A.values().square().sum().sqrt() / A.shape[0] ** 0.5
    bound = glam.norm() + gU.norm() / (2 * 1e-3 * scale)
    assert v.grad.norm() <= bound
    # the exact rule (eps = 0) is not finite-safe: with the zero eigenvalue 3-fold the
    # within-cluster terms are dropped by construction, so compare the broadened result instead
    # with a slightly perturbed, non-degenerate problem: same order of magnitude, no blow-up
    assert v.grad.abs().max() < 1e6


def test_repeated_eigenvalues_dense_matrix_finite():
    g = torch.Generator().manual_seed(0)
    Q, _ = torch.linalg.qr(torch.randn(100, 100, generator=g, dtype=D))
    d = torch.cat([torch.tensor([1.0, 1, 1, 2, 2]), torch.linspace(3, 10, 95)]).double()
    A = (Q @ torch.diag(d) @ Q.T).requires_grad_()
    _, U = eigsh(A, 4)  # cuts through the 2-fold eigenvalue 2: the worst case
    (U.square().sum(-1) * torch.arange(100, dtype=D)).sum().backward()
    assert torch.isfinite(A.grad).all()
    assert A.grad.norm() <= 100**0.5 * 100 / (2 * 1e-3 * d.square().mean().sqrt()) + 2


def test_sparse_gradient_stays_on_the_pattern(grid_laplacian):
    A = grid_laplacian(30, 30, seed=12, regions=2)
    v = A.values().clone().requires_grad_()
    S = torch.sparse_coo_tensor(A.indices(), v, A.shape, is_coalesced=True)
    lam, U = eigsh(S, 6, method="lanczos")
    (lam.sum() + U[:50].square().sum()).backward()
    assert v.grad.shape == v.shape  # O(nnz), not n x n

    # ... and equals the dense gradient sampled on the pattern
    Ad = A.to_dense().requires_grad_()
    lam2, U2 = eigsh(Ad, 6, method="dense")
    (lam2.sum() + U2[:50].square().sum()).backward()
    i, j = A.indices()
    assert torch.allclose(v.grad, Ad.grad[i, j], atol=1e-7, rtol=1e-6)


def test_partial_solve_complement_matches_full_gradient(grid_laplacian):
    # the k-of-n Lanczos backward with the complement solve equals the dense whole-spectrum one.
    # The three bands are nearly disconnected (lambda_1..3 ~ 1e-13): the loss sum_i u_i^T C u_i
    # is invariant to rotations inside that cluster, so both solvers must give the same gradient.
    A = grid_laplacian(24, 24, seed=13, regions=3)
    c = torch.rand(576, dtype=D, generator=torch.Generator().manual_seed(6))
    grads = {}
    for method, backward in [("dense", "full"), ("lanczos", "full"), ("lanczos", "subspace")]:
        Ad = A.to_dense().requires_grad_()
        lam, U = eigsh(Ad, 4, method=method, backward=backward)
        (lam.sum() + (U.square() * c[:, None]).sum()).backward()
        grads[method, backward] = Ad.grad
    ref = grads["dense", "full"]
    assert (grads["lanczos", "full"] - ref).norm() / ref.norm() < 1e-6
    # leaving the complement out is biased for eigenvector losses: measured, not assumed
    bias = (grads["lanczos", "subspace"] - ref).norm() / ref.norm()
    assert bias > 1e-2


@pytest.mark.parametrize("k", [1, 5])
def test_complement_term_matches_the_dense_sum_over_the_rest_of_the_spectrum(grid_laplacian, k):
    # x_i = sum_{j not in S} u_j (u_j^T g_i) F_ji on a sparse batch of three graphs, against the
    # whole eigenbasis of each; in float32 (the training path) to its own tolerance
    graphs = [grid_laplacian(12, 14, seed=s, regions=2) for s in range(3)]
    A = torch.stack(graphs).coalesce()  # (3, 168, 168) COO, 3 sparse dims
    lam_all, U_all = torch.linalg.eigh(torch.stack([a.to_dense() for a in graphs]))
    lam, U = lam_all[:, :k], U_all[:, :, :k]
    g = torch.randn(3, 168, k, dtype=D, generator=torch.Generator().manual_seed(2))
    # two bands: lambda_2 ~ 1e-13, so k = 1 splits a cluster (bounded only by eps) and k = 5 is
    # gapped (eps = 0, the exact rule, is then regular too)
    eps = torch.tensor([1e-3, 1e-2, 1e-1 if k == 1 else 0.0], dtype=D)
    F = broadened_inverse_gaps(lam_all[:, k:], lam, eps)  # (3, n - k, k)
    rest = U_all[:, :, k:]
    ref = rest @ (F * (rest.mT @ g))  # (3, n, k)
    got = complement_term(SymmetricOperator.from_tensor(A), lam, U, g, eps)
    assert got.shape == ref.shape and got.dtype == D
    assert (got - ref).norm() / ref.norm() < 1e-8
    op32 = SymmetricOperator.from_tensor(A.float())
    got32 = complement_term(op32, lam.float(), U.float(), g.float(), eps.float())
    assert got32.dtype == torch.float32
    assert (got32.double() - ref).norm() / ref.norm() < 1e-3


def test_a_stalled_complement_solve_stops_early_with_a_warning(grid_laplacian):
    # an unreachable tolerance stands in for float32 rounding: the solve must stop once its
    # residual stops halving, not run to maxiter, and say so; its answer is still the solution
    A = grid_laplacian(16, 16, seed=3, regions=2)
    op = SymmetricOperator.from_tensor(A)
    lam, U = eigsh(A.to_dense(), 4, method="dense")
    g = torch.randn(1, 256, 4, dtype=D, generator=torch.Generator().manual_seed(1))
    eps = torch.full((1,), 1e-3, dtype=D)
    exact = complement_term(op, lam[None], U[None], g, eps)
    calls = []
    counted = SymmetricOperator.from_tensor(A)
    counted.matmul = lambda Y: calls.append(1) or op.matmul(Y)
    with pytest.warns(RuntimeWarning, match="complement solve stalled"):
        stopped = complement_term(counted, lam[None], U[None], g, eps, tol=1e-300, patience=20)
    assert len(calls) < 2000
    assert (stopped - exact).norm() / exact.norm() < 1e-8


def test_a_column_stopped_early_returns_its_best_iterate(grid_laplacian):
    # COCG's residual is not monotone: with a tiny eps on banded graphs it climbs far above its
    # start (the last iterate measured here at 59 ||P g|| at worst; in training, stalled columns
    # ended at 2e2-1e3). Whatever the iteration cap, the returned z is never worse than z = 0.
    worst = 0.0
    for seed in range(3):
        A = grid_laplacian(12, 14, seed=seed, regions=3)
        dense = A.to_dense()
        lam_all, U_all = torch.linalg.eigh(dense)
        for k in (1, 3):
            lam, U = lam_all[None, :k], U_all[None, :, :k]
            g = torch.randn(1, 168, k, dtype=D, generator=torch.Generator().manual_seed(seed))
            P = torch.eye(168, dtype=D) - U[0] @ U[0].T
            eps = torch.full((1,), 1e-6, dtype=D)
            for maxiter in range(1, 30):
                sol = cocg_complement(SymmetricOperator.from_tensor(A), lam, U, g, eps,
                                      tol=1e-12, maxiter=maxiter)  # fmt: skip
                z = sol.z[0]  # (n, k) complex
                shifted = dense[None] - (lam[0] + 1j * eps)[:, None, None]  # (k, n, n)
                Pc = P.to(z.dtype)
                true = torch.stack([Pc @ (shifted[i] @ (Pc @ z[:, i])) - Pc @ g[0, :, i].to(z.dtype)
                                    for i in range(k)], 1)  # fmt: skip
                start = (P @ g[0]).norm(dim=0)  # the residual of z = 0
                worst = max(worst, float((true.norm(dim=0) / start).max()))
                assert bool(sol.unmet.all()) or maxiter > 1  # capped solves really stop early
    assert worst <= 1.0 + 1e-9


def test_stalls_are_counted_and_strict_makes_them_an_error(grid_laplacian, monkeypatch):
    A = grid_laplacian(16, 16, seed=3, regions=2)
    op = SymmetricOperator.from_tensor(A)
    lam, U = eigsh(A.to_dense(), 4, method="dense")
    g = torch.randn(1, 256, 4, dtype=D, generator=torch.Generator().manual_seed(1))
    eps = torch.full((1,), 1e-3, dtype=D)
    with record_complement() as outer:
        with record_complement() as record:
            complement_term(op, lam[None], U[None], g, eps)  # converges: counted, not flagged
            assert (record.solves, record.columns, record.stalled, record.worst_residual) == (
                1, 4, 0, 0.0)  # fmt: skip
            with pytest.warns(RuntimeWarning, match=r"4 stalled, 0 unconverged of 4 columns"):
                complement_term(op, lam[None], U[None], g, eps, tol=1e-300, patience=20)
            with pytest.warns(RuntimeWarning, match=r"did not converge in 3 iterations"):
                complement_term(op, lam[None], U[None], g, eps, maxiter=3)
        complement_term(op, lam[None], U[None], g, eps)  # after the inner block: outer only
    assert (record.solves, record.columns, record.stalled, record.unconverged) == (3, 12, 4, 4)
    assert record.worst_residual > 0
    assert (outer.solves, outer.stalled, outer.unconverged) == (4, 4, 4)
    # strict: the same stall raises, from inside backward() when it runs there
    with record_complement(strict=True), pytest.raises(ComplementSolveError, match="stalled"):
        complement_term(op, lam[None], U[None], g, eps, tol=1e-300, patience=20)
    # and from inside eigsh's own backward (an iteration cap that cannot be met stands in)
    eigsh_module = importlib.import_module("cheeger.linalg.eigsh")  # the name is the function
    capped = lambda *a, **kw: complement_term(*a, **{**kw, "maxiter": 2})  # noqa: E731
    monkeypatch.setattr(eigsh_module, "complement_term", capped)
    _, U2 = eigsh(A.to_dense().requires_grad_(), 4, method="lanczos")
    with record_complement(strict=True) as record, pytest.raises(ComplementSolveError):
        (U2[:, 0] ** 3).sum().backward()
    assert record.unconverged > 0


def test_eigenvalue_only_loss_needs_no_complement(grid_laplacian):
    A = grid_laplacian(24, 24, seed=14, regions=3)
    grads = []
    for backward in ("full", "subspace"):
        Ad = A.to_dense().requires_grad_()
        lam, _ = eigsh(Ad, 4, method="lanczos", backward=backward)
        lam.sum().backward()
        grads.append(Ad.grad)
    assert torch.allclose(grads[0], grads[1], atol=1e-12)


@st.composite
def random_graphs(draw):
    n = draw(st.integers(6, 40))
    p = draw(st.floats(0.0, 0.6))
    isolated = draw(st.integers(0, 3))
    seed = draw(st.integers(0, 2**16))
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(n, n, generator=g) < p
    mask = torch.triu(mask, 1)
    mask[:, :isolated] = False
    mask[:isolated, :] = False
    w = torch.rand(n, n, generator=g, dtype=D) * mask
    return w + w.T


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(W=random_graphs(), k=st.integers(1, 5))
def test_property_no_nan_on_random_graphs(W, k):
    n = W.shape[0]
    d = W.sum(1)
    dis = torch.where(d > 0, d.clamp_min(1e-300).rsqrt(), torch.zeros_like(d))
    L = torch.diag((d > 0).to(D)) - dis[:, None] * W * dis[None, :]
    Ls = L.to_sparse().coalesce()
    v = Ls.values().clone().requires_grad_()
    S = torch.sparse_coo_tensor(Ls.indices(), v, L.shape, is_coalesced=True)
    k = min(k, n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lam, U = eigsh(S, k)
    (lam.sum() + U.square().mul(torch.arange(n, dtype=D)[:, None]).sum()).backward()
    assert torch.isfinite(lam).all() and torch.isfinite(U).all()
    assert torch.isfinite(v.grad).all()


def test_a_second_derivative_is_refused(grid_laplacian):
    # the backward reads A detached: differentiating it again would silently miss terms
    A = grid_laplacian(8, 8, seed=1).to_dense().requires_grad_()
    lam, U = eigsh(A, 3, method="lanczos", dense_max_n=0)
    (g,) = torch.autograd.grad((U[:5] ** 2).sum() + lam.sum(), A, create_graph=True)
    with pytest.raises(RuntimeError, match=r"once_differentiable|differentiate"):
        g.sum().backward()


def test_docstring_examples():
    import doctest

    module = importlib.import_module("cheeger.linalg.backward")
    result = doctest.testmod(module, extraglobs={"torch": torch})
    assert result.attempted > 0 and result.failed == 0


def test_backward_tol_reaches_the_complement_solve_and_is_checked(grid_laplacian, monkeypatch):
    eigsh_module = importlib.import_module("cheeger.linalg.eigsh")  # the name is the function's
    seen = []
    real_term = eigsh_module.complement_term
    monkeypatch.setattr(eigsh_module, "complement_term",
                        lambda *a, **kw: seen.append(kw.get("tol")) or real_term(*a, **kw))
    A = grid_laplacian(12, 14, seed=0).requires_grad_()
    grads = {}
    for tol in (None, 1e-2):
        A.grad = None
        _, U = eigsh(A, 4, method="lanczos", backward_tol=tol)
        (U[:, 1:] ** 3).sum().backward()
        grads[tol] = A.grad.to_dense()
    assert seen == [None, 1e-2]
    error = (grads[1e-2] - grads[None]).norm() / grads[None].norm()
    assert 0 < error < 1e-1  # looser: a different, still close gradient
    with pytest.raises(ValueError, match="backward_tol must be in"):
        eigsh(A, 4, backward_tol=1.5)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_preconditioned_complement_matches_the_dense_sum_in_fewer_iterations(grid_laplacian,
                                                                             dtype):
    from cheeger.linalg.multigrid import AggregationMultigrid

    graphs = [grid_laplacian(24, 28, seed=s, regions=3) for s in range(2)]
    A = torch.stack(graphs).coalesce()  # (2, 672, 672)
    lam_all, U_all = torch.linalg.eigh(torch.stack([a.to_dense() for a in graphs]))
    k = 6
    lam, U = lam_all[:, :k], U_all[:, :, :k]
    g = torch.randn(2, 672, k, dtype=D, generator=torch.Generator().manual_seed(5))
    eps = torch.tensor([1e-3, 1e-4], dtype=D)
    rest = U_all[:, :, k:]
    ref = rest @ (broadened_inverse_gaps(lam_all[:, k:], lam, eps) * (rest.mT @ g))
    op = SymmetricOperator.from_tensor(A.to(dtype))
    args = (op, lam.to(dtype), U.to(dtype), g.to(dtype), eps.to(dtype))
    plain = cocg_complement(*args)
    mg = AggregationMultigrid(op, 1e-4, coarse_size=100, work_dtype=torch.float32)
    pre = cocg_complement(*args, precond=mg)
    assert not bool(pre.unmet.any()) and not bool(plain.unmet.any())
    assert 3 * pre.iterations <= plain.iterations
    for solution in (plain, pre):
        x = -torch.view_as_real(solution.z)[..., 0]
        x = x - U.to(dtype) @ (U.to(dtype).mT @ x)
        bound = 1e-7 if dtype == torch.float64 else 2e-3
        assert (x.double() - ref).norm() / ref.norm() < bound


def test_lobpcg_backward_reuses_its_multigrid(grid_laplacian, monkeypatch):
    from cheeger.linalg.multigrid import AggregationMultigrid

    eigsh_module = importlib.import_module("cheeger.linalg.eigsh")
    seen = []
    real_term = eigsh_module.complement_term
    monkeypatch.setattr(eigsh_module, "complement_term",
                        lambda *a, **kw: seen.append(kw.get("precond")) or real_term(*a, **kw))
    A = grid_laplacian(30, 32, seed=1, regions=3).requires_grad_()
    w = torch.randn(960, 8, dtype=D, generator=torch.Generator().manual_seed(0))
    grads = {}
    for method, precond in (("lobpcg", True), ("lobpcg", False), ("lanczos", True)):
        A.grad = None
        lam, U = eigsh(A, 8, method=method, backward_precond=precond)
        _loss(lam, U, w).backward()
        grads[method, precond] = A.grad.coalesce().values()
    assert isinstance(seen[0], AggregationMultigrid) and seen[1] is None and seen[2] is None
    ref = grads["lobpcg", False]
    # the same forward, so the same gradient to the solve's tolerance (Lanczos's eigenvectors
    # differ inside near-degenerate clusters: its gradient is not compared)
    assert (grads["lobpcg", True] - ref).norm() / ref.norm() < 1e-7
