"""L and L_sym against float64 loops and spectra; isolated nodes, self loops, gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from cheeger.graph import (
    Laplacian,
    degree,
    laplacian,
    normalized_laplacian,
    normalized_rayleigh_quotients,
)


def random_graph(n: int, density: float, isolated: int = 0, seed: int = 0) -> np.ndarray:
    """Symmetric non-negative float64 weights, zero diagonal, the last ``isolated`` nodes bare."""
    rng = np.random.default_rng(seed)
    W = np.triu(rng.uniform(0.1, 1.0, (n, n)) * (rng.random((n, n)) < density), 1)
    W = W + W.T
    if isolated:
        W[n - isolated :] = 0.0
        W[:, n - isolated :] = 0.0
    return W


def brute_laplacians(W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``L`` and ``L_sym`` entry by entry, with the isolated-node convention of the module."""
    n = W.shape[0]
    d = W.sum(1)
    L, L_sym = np.zeros_like(W), np.zeros_like(W)
    for i in range(n):
        for j in range(n):
            L[i, j] = (d[i] if i == j else 0.0) - W[i, j]
            if d[i] > 0 and d[j] > 0:
                L_sym[i, j] = (1.0 if i == j else 0.0) - W[i, j] / np.sqrt(d[i] * d[j])
    return L, L_sym


def as_sparse(W: np.ndarray) -> torch.Tensor:
    """Batched ``(B, n, n)`` or single ``(n, n)`` coalesced COO tensor of a numpy array."""
    return torch.from_numpy(W).to_sparse().coalesce()


def assert_coalesced_without_copy(S: torch.Tensor) -> None:
    assert S.is_coalesced()
    torch.sparse_coo_tensor(S.indices(), S.values(), S.shape, is_coalesced=True,
                            check_invariants=True)


@pytest.mark.parametrize("fn", [laplacian, normalized_laplacian])
@pytest.mark.parametrize("isolated", [0, 2])
def test_dense_and_sparse_match_a_loop(fn, isolated):
    W = random_graph(9, 0.5, isolated, seed=1)
    expected = brute_laplacians(W)[fn is normalized_laplacian]
    dense = fn(torch.from_numpy(W))
    sparse = fn(as_sparse(W))
    assert not dense.is_sparse and sparse.is_sparse and sparse.shape == (9, 9)
    assert_coalesced_without_copy(sparse)
    np.testing.assert_allclose(dense.numpy(), expected, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(sparse.to_dense().numpy(), expected, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("fn", [laplacian, normalized_laplacian])
def test_batched_sparse_keeps_its_batch_shape_and_pattern(fn):
    W = np.stack([random_graph(12, 0.3, isolated, seed) for seed, isolated in [(2, 0), (3, 3)]])
    sparse = fn(as_sparse(W))
    assert sparse.shape == (2, 12, 12) and sparse.sparse_dim() == 3
    assert_coalesced_without_copy(sparse)
    # pattern of W plus the full diagonal (explicit zeros for isolated nodes)
    assert sparse._nnz() == int((W != 0).sum()) + 2 * 12
    torch.testing.assert_close(sparse.to_dense(), fn(torch.from_numpy(W)), rtol=1e-13, atol=1e-15)


def test_rows_of_L_sum_to_zero_and_both_are_symmetric():
    W = torch.from_numpy(random_graph(15, 0.4, 2, seed=4))
    for S in (laplacian(W), normalized_laplacian(W), laplacian(W.to_sparse()).to_dense()):
        torch.testing.assert_close(S, S.T, rtol=0, atol=1e-15)
    torch.testing.assert_close(laplacian(W).sum(1), torch.zeros(15, dtype=W.dtype), atol=1e-14,
                               rtol=0)


def component_count(W: np.ndarray) -> int:
    return connected_components(csr_matrix(W != 0), directed=False)[0]


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 24), density=st.floats(0.0, 0.6), isolated=st.integers(0, 4),
       seed=st.integers(0, 2**32 - 1), sparse=st.booleans())
def test_zero_multiplicity_of_L_sym_counts_components(n, density, isolated, seed, sparse):
    W = random_graph(n, density, min(isolated, n), seed)
    L_sym = normalized_laplacian(as_sparse(W) if sparse else torch.from_numpy(W))
    eigenvalues = np.linalg.eigvalsh((L_sym.to_dense() if sparse else L_sym).numpy())
    assert eigenvalues.min() >= -1e-12 and eigenvalues.max() <= 2 + 1e-12
    assert int((np.abs(eigenvalues) < 1e-9).sum()) == component_count(W)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 20), density=st.floats(0.0, 0.7), isolated=st.integers(0, 20),
       scale=st.sampled_from([0.0, 1e-42, 1e-30, 1e-8, 1.0, 1e8]), seed=st.integers(0, 2**32 - 1),
       sparse=st.booleans(), double=st.booleans())
def test_forward_and_backward_are_finite(n, density, isolated, scale, seed, sparse, double):
    W = torch.from_numpy(random_graph(n, density, min(isolated, n), seed) * scale)
    W = W.to(torch.float64 if double else torch.float32)
    W = (W.to_sparse() if sparse else W).requires_grad_()
    for fn in (laplacian, normalized_laplacian):
        out = fn(W)
        values = out.values() if sparse else out
        assert bool(torch.isfinite(values).all())
        (grad,) = torch.autograd.grad((values * torch.linspace(-1, 1, values.numel()).reshape(
            values.shape).to(values.dtype)).sum(), W)
        assert bool(torch.isfinite(grad.values() if sparse else grad).all())


def test_all_zero_graph_gives_zero_L_sym_with_zero_gradient():
    W = torch.zeros(2, 5, 5, dtype=torch.float64, requires_grad=True)
    L_sym = normalized_laplacian(W)
    assert not bool(L_sym.any())
    L_sym.sum().backward()
    assert not bool(W.grad.any())


def test_degree_floor_treats_negligible_degrees_as_isolated():
    W = torch.zeros(4, 4, dtype=torch.float64)
    W[0, 1] = W[1, 0] = 1.0
    W[1, 2] = W[2, 1] = 1e-20  # node 2: degree 1e-20, below eps * max degree
    L_sym = normalized_laplacian(W)
    assert not bool(L_sym[2].any()) and not bool(L_sym[:, 2].any())
    kept = normalized_laplacian(W, eps=0.0)  # no floor: node 2 is an ordinary degree-1e-20 node
    assert kept[2, 2].item() == 1.0 and kept[1, 2].item() < 0
    torch.testing.assert_close(normalized_laplacian(W * 1e-100), L_sym)  # relative, scale-free
    collapsed = normalized_laplacian(W * 1e-160)  # every degree below sqrt(tiny) = 1.5e-154
    assert not bool(collapsed.any())


def test_self_loops_cancel_in_L_and_enter_L_sym_through_the_degree():
    W = random_graph(7, 0.6, seed=5)
    loops = np.diag(np.linspace(0.2, 0.8, 7))
    for make in (torch.from_numpy, as_sparse):
        torch.testing.assert_close(laplacian(make(W + loops)).to_dense(),
                                   laplacian(make(W)).to_dense(), rtol=0, atol=1e-15)
        L_sym = normalized_laplacian(make(W + loops)).to_dense().numpy()
        d = (W + loops).sum(1)
        np.testing.assert_allclose(np.diag(L_sym), 1 - np.diag(loops) / d, rtol=1e-13)
        np.testing.assert_allclose(L_sym[0, 1], -W[0, 1] / np.sqrt(d[0] * d[1]), rtol=1e-13)


def test_uncoalesced_input_is_accepted():
    indices = torch.tensor([[0, 1, 0, 1, 2], [1, 0, 1, 0, 0]])
    W = torch.sparse_coo_tensor(indices[:, :4], torch.tensor([1.0, 1.0, 2.0, 2.0]), (3, 3),
                                check_invariants=True)
    assert not W.is_coalesced()
    torch.testing.assert_close(laplacian(W).to_dense(), laplacian(W.to_dense()))


@pytest.mark.parametrize("fn", [laplacian, normalized_laplacian])
def test_gradcheck_dense(fn):
    W = torch.from_numpy(random_graph(6, 0.7, seed=6)) + 0.05  # connected: every pair has weight
    W.fill_diagonal_(0.0)
    assert torch.autograd.gradcheck(fn, (W.requires_grad_(),))


@pytest.mark.parametrize("fn", [laplacian, normalized_laplacian])
def test_gradcheck_sparse_values_with_an_isolated_node(fn):
    W = as_sparse(np.stack([random_graph(7, 0.5, 1, seed=7), random_graph(7, 0.8, 0, seed=8)]))
    indices = W.indices()

    def values_to_laplacian(values):
        graph = torch.sparse_coo_tensor(indices, values, W.shape, is_coalesced=True,
                                        check_invariants=False)
        return fn(graph).values()

    assert torch.autograd.gradcheck(values_to_laplacian, (W.values().clone().requires_grad_(),))


def oracle_rayleigh(W: np.ndarray, U: np.ndarray) -> np.ndarray:
    """``diag(U^T L_sym U) / diag(U^T U)`` with the loop-built ``L_sym``."""
    L_sym = brute_laplacians(W)[1]
    return np.einsum("nk,nm,mk->k", U, L_sym, U) / np.einsum("nk,nk->k", U, U)


@pytest.mark.filterwarnings("error")  # the CSR product must not warn ("beta state")
@pytest.mark.parametrize("grad", [False, True])
def test_rayleigh_quotients_without_L_sym_match_the_loop_built_one(grad):
    # isolated nodes, self loops and a floored node (degree 1e-20) in a batch of three graphs
    graphs = [random_graph(9, 0.5, isolated=2, seed=11),
              random_graph(9, 0.3, seed=12) + np.diag(np.linspace(0.1, 0.9, 9)),
              random_graph(9, 0.6, seed=13)]  # fmt: skip
    graphs[2][0, 8] = graphs[2][8, 0] = 0.0
    graphs[2][8] = graphs[2][:, 8] = 0.0
    graphs[2][8, 3] = graphs[2][3, 8] = 1e-20
    W = np.stack(graphs)
    brute = W.copy()
    brute[2, 8, 3] = brute[2, 3, 8] = 0.0  # below the floor: the node counts as isolated
    U = np.random.default_rng(3).standard_normal((3, 9, 4))
    expected = np.stack([oracle_rayleigh(w, u) for w, u in zip(brute, U, strict=True)])
    for make in (torch.from_numpy, as_sparse):
        values = make(W)
        with torch.set_grad_enabled(grad):
            if grad:
                values = values.coalesce() if values.is_sparse else values
                values.requires_grad_()
            got = normalized_rayleigh_quotients(values, torch.from_numpy(U))
        np.testing.assert_allclose(got.detach().numpy(), expected, rtol=1e-12, atol=1e-14)
        single = normalized_rayleigh_quotients(make(W[1]), torch.from_numpy(U[1]))
        np.testing.assert_allclose(single.numpy(), expected[1], rtol=1e-12)


def test_rayleigh_quotients_without_L_sym_gradcheck_in_W_and_U():
    W = as_sparse(np.stack([random_graph(7, 0.5, 1, seed=7), random_graph(7, 0.8, 0, seed=8)]))
    indices = W.indices()
    U = torch.randn(2, 7, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))

    def quotients(values, U):
        graph = torch.sparse_coo_tensor(indices, values, W.shape, is_coalesced=True,
                                        check_invariants=False)
        return normalized_rayleigh_quotients(graph, U)

    assert torch.autograd.gradcheck(quotients, (W.values().clone().requires_grad_(),
                                                U.requires_grad_()))  # fmt: skip
    # dense: every entry is a variable, so no node may be isolated (a perturbation would
    # connect it: the floor is a discontinuity)
    dense = torch.from_numpy(np.stack([random_graph(7, 0.7, seed=s) for s in (6, 9)])) + 0.05
    dense = dense * (1 - torch.eye(7, dtype=torch.float64))
    assert torch.autograd.gradcheck(normalized_rayleigh_quotients, (dense.requires_grad_(), U))


def test_rayleigh_quotients_without_L_sym_reject_a_mismatched_U():
    with pytest.raises(ValueError, match="U must be"):
        normalized_rayleigh_quotients(torch.eye(3), torch.ones(4, 1))


def test_L_sym_is_invariant_to_the_scale_of_W():
    W = torch.from_numpy(random_graph(10, 0.5, 2, seed=9))
    torch.testing.assert_close(normalized_laplacian(3.7e5 * W), normalized_laplacian(W))


def test_degree_helper():
    W = random_graph(8, 0.5, 1, seed=10)
    np.testing.assert_allclose(degree(torch.from_numpy(W)).numpy(), W.sum(1), rtol=1e-14)
    np.testing.assert_allclose(degree(as_sparse(W)).numpy(), W.sum(1), rtol=1e-14)
    batch = np.stack([W, 2 * W])
    assert degree(as_sparse(batch)).shape == (2, 8)
    np.testing.assert_allclose(degree(as_sparse(batch)).numpy(), batch.sum(2), rtol=1e-14)


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
@pytest.mark.parametrize(
    ("make", "match"),
    [(lambda: torch.eye(3).to_sparse_csr(), "layout"),
     (lambda: torch.zeros(2, 2, 3, 3), r"\(B, n, n\)"), (lambda: torch.zeros(3, 4), r"\(B, n, n\)"),
     (lambda: torch.zeros(3, 3, dtype=torch.long), "floating"),
     (lambda: torch.zeros(3, 3, 2).to_sparse(2), "all dims sparse")],
)
def test_rejects_bad_inputs(make, match):
    W = make()
    for fn in (laplacian, normalized_laplacian, degree):
        with pytest.raises(ValueError, match=match):
            fn(W)


def test_module_selects_the_laplacian():
    W = torch.from_numpy(random_graph(6, 0.6, seed=11))
    torch.testing.assert_close(Laplacian()(W), laplacian(W))
    torch.testing.assert_close(Laplacian(normalized=True)(W), normalized_laplacian(W))
    assert "normalized=True" in repr(Laplacian(normalized=True))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_normalized_rayleigh_quotients_in_half_precision(dtype):
    # without autograd, float32/64 take a CSR product, which CPU torch lacks for half types:
    # those fall back to the gather product and match float64 to their precision
    g = torch.Generator().manual_seed(21)
    W = torch.rand(2, 30, 30, generator=g, dtype=torch.float64)
    W = W * (torch.rand(2, 30, 30, generator=g) < 0.2)
    W = (W + W.mT).to_sparse().coalesce()
    U = torch.randn(2, 30, 4, generator=g, dtype=torch.float64)
    ref = normalized_rayleigh_quotients(W, U)
    with torch.no_grad():
        out = normalized_rayleigh_quotients(W.to(dtype), U.to(dtype))
    assert out.dtype == dtype
    assert torch.allclose(out.double(), ref, rtol=0, atol=4 * torch.finfo(dtype).eps)
