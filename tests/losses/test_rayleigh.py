"""Rayleigh-quotient consistency against a float64 reference; sparse paths, properties, grads."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components
from torch.profiler import ProfilerActivity, profile

from cheeger.graph import gaussian_affinity, laplacian, normalized_laplacian
from cheeger.losses import RayleighQuotientLoss, rayleigh_quotient_loss


def random_graphs(batch: int, n: int, density: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    W = np.triu(rng.uniform(0.1, 1.0, (batch, n, n)) * (rng.random((batch, n, n)) < density), 1)
    return W + W.transpose(0, 2, 1)


def reference(probs: np.ndarray, operators: np.ndarray, eps: float, weights=None) -> float:
    """The loss by explicit loops over images and classes, float64."""
    batch, classes = probs.shape[:2]
    nodes = probs.reshape(batch, classes, -1)
    weights = np.ones(classes) if weights is None else np.asarray(weights, dtype=float)
    per_image = []
    for b in range(batch):
        op = operators if operators.ndim == 2 else operators[b]
        quotients = [nodes[b, c] @ op @ nodes[b, c] / (nodes[b, c] @ nodes[b, c] + eps)
                     for c in range(classes)]
        per_image.append(np.dot(weights, quotients) / weights.sum())
    return float(np.mean(per_image))


def random_probs(batch, classes, height, width, seed):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, classes, height, width, generator=gen, dtype=torch.float64)
    return logits.softmax(1)


@pytest.mark.parametrize("normalized", [False, True])
@pytest.mark.parametrize("sparse", [False, True])
def test_matches_the_reference(normalized, sparse):
    W = torch.from_numpy(random_graphs(3, 12, 0.4, seed=0))
    op = normalized_laplacian(W) if normalized else laplacian(W)
    probs = random_probs(3, 4, 3, 4, seed=1)
    got = rayleigh_quotient_loss(probs, op.to_sparse() if sparse else op, eps=1e-6)
    expected = reference(probs.numpy(), op.numpy(), 1e-6)
    assert got.item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("sparse", [False, True])
def test_one_operator_shared_by_the_batch(sparse):
    W = torch.from_numpy(random_graphs(1, 10, 0.5, seed=2)[0])
    op = laplacian(W)
    probs = random_probs(2, 3, 2, 5, seed=3).flatten(2)  # (B, K, n) also accepted
    got = rayleigh_quotient_loss(probs, op.to_sparse() if sparse else op)
    assert got.item() == pytest.approx(reference(probs.numpy(), op.numpy(), 1e-6), rel=1e-12)


def test_class_weights_give_a_weighted_class_mean():
    W = torch.from_numpy(random_graphs(2, 9, 0.5, seed=4))
    op = laplacian(W).to_sparse()
    probs = random_probs(2, 3, 3, 3, seed=5)
    weights = torch.tensor([0.0, 2.0, 1.0], dtype=torch.float64)
    got = rayleigh_quotient_loss(probs, op, class_weights=weights)
    expected = reference(probs.numpy(), op.to_dense().numpy(), 1e-6, weights.numpy())
    assert got.item() == pytest.approx(expected, rel=1e-12)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(2, 20), density=st.floats(0.0, 0.5), classes=st.integers(1, 4),
       seed=st.integers(0, 2**32 - 1))
def test_prediction_constant_on_components_scores_zero(n, density, classes, seed):
    W = random_graphs(1, n, density, seed)
    count, labels = connected_components(csr_matrix(W[0]), directed=False)
    rng = np.random.default_rng(seed)
    per_component = rng.dirichlet(np.ones(classes), size=count)  # (components, K)
    probs = torch.from_numpy(per_component[labels].T[None].copy())  # (1, K, n)
    op = laplacian(torch.from_numpy(W).to_sparse())
    assert abs(rayleigh_quotient_loss(probs, op).item()) < 1e-12
    # and a prediction that varies inside a component does not
    if count < n:
        varying = torch.from_numpy(rng.dirichlet(np.ones(classes + 1), size=n).T[None].copy())
        assert rayleigh_quotient_loss(varying, op).item() > 0


@settings(max_examples=30, deadline=None)
@given(n=st.integers(2, 20), density=st.floats(0.0, 1.0), seed=st.integers(0, 2**32 - 1))
def test_normalized_value_lies_in_zero_two(n, density, seed):
    W = torch.from_numpy(random_graphs(2, n, density, seed))
    probs = torch.from_numpy(np.random.default_rng(seed).dirichlet(np.ones(3), size=(2, n)))
    value = rayleigh_quotient_loss(probs.transpose(1, 2), normalized_laplacian(W), eps=0.0)
    assert -1e-12 <= value.item() <= 2 + 1e-12


def test_absent_class_contributes_zero_with_finite_gradient():
    W = torch.from_numpy(random_graphs(1, 6, 0.6, seed=6)).to_sparse()
    probs = torch.zeros(1, 2, 6, dtype=torch.float64)
    probs[0, 0] = 1.0  # class 1 is absent
    probs.requires_grad_()
    value = rayleigh_quotient_loss(probs, laplacian(W))
    value.backward()
    assert abs(value.item()) < 1e-15 and bool(torch.isfinite(probs.grad).all())


def test_gradcheck_in_probabilities_and_sparse_operator_values():
    W = torch.from_numpy(random_graphs(2, 6, 0.6, seed=7)).to_sparse()
    L = laplacian(W)
    indices = L.indices()
    probs = random_probs(2, 3, 2, 3, seed=8)

    def fn(p, values):
        operator = torch.sparse_coo_tensor(indices, values, L.shape, is_coalesced=True,
                                           check_invariants=False)
        return rayleigh_quotient_loss(p, operator)

    assert torch.autograd.gradcheck(fn, (probs.requires_grad_(), L.values().requires_grad_()))


def test_gradcheck_with_a_dense_shared_operator():
    L = normalized_laplacian(torch.from_numpy(random_graphs(1, 6, 0.7, seed=9)[0]))
    probs = random_probs(2, 2, 2, 3, seed=10)
    assert torch.autograd.gradcheck(rayleigh_quotient_loss,
                                    (probs.requires_grad_(), L.requires_grad_()))


def test_module_builds_the_chosen_laplacian_from_the_affinity():
    W = torch.from_numpy(random_graphs(2, 8, 0.5, seed=11)).to_sparse()
    probs = random_probs(2, 3, 2, 4, seed=12)
    weights = torch.tensor([1.0, 0.5, 2.0], dtype=torch.float64)
    for normalized, build in [(False, laplacian), (True, normalized_laplacian)]:
        module = RayleighQuotientLoss(normalized=normalized, class_weights=weights, eps=1e-4)
        expected = rayleigh_quotient_loss(probs, build(W), class_weights=weights, eps=1e-4)
        assert module(probs, W).item() == pytest.approx(expected.item(), rel=1e-14)
    assert "class_weights" in dict(module.named_buffers())


@pytest.mark.parametrize(
    ("probs_shape", "op_shape", "weights", "match"),
    [((2, 3, 4), (5, 5), None, "resample"), ((2, 3, 4), (3, 4, 4), None, "resample"),
     ((6, 4), (4, 4), None, r"\(B, K, H, W\)"), ((2, 3, 4), (4, 4), (2,), "class_weights")],
)
def test_rejects_inconsistent_shapes(probs_shape, op_shape, weights, match):
    weights = None if weights is None else torch.ones(weights)
    with pytest.raises(ValueError, match=match):
        rayleigh_quotient_loss(torch.rand(probs_shape), torch.zeros(op_shape),
                               class_weights=weights)


def test_sparse_operator_is_never_densified():
    side, classes = 128, 4
    features = torch.randn(1, 3, side, side, generator=torch.Generator().manual_seed(13))
    L = laplacian(gaussian_affinity(features, torch.eye(3), 1.0, "grid"))
    probs = torch.rand(1, classes, side, side, requires_grad=True)
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        rayleigh_quotient_loss(probs, L).backward()
    largest = max(event.cpu_memory_usage for event in prof.events())
    assert largest <= 16 * L._nnz() * classes  # O(nnz K); the dense L would be 1 GiB
