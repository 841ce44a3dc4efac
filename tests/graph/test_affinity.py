"""Gaussian affinity against a float64 loop over node pairs; layouts, gradients and memory."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cheeger.graph import GaussianAffinity, gaussian_affinity, normalized_laplacian


def brute_affinity(features, projection, sigma, neighbourhood, radius=1.0, norm="euclidean", k=3):
    """Dense ``(B, n, n)`` float64 affinity by loops over pixel pairs."""
    f = features.detach().numpy().astype(np.float64)
    a = projection.detach().numpy().astype(np.float64)
    batch, _, height, width = f.shape
    n = height * width
    nodes = f.reshape(batch, -1, n)
    out = np.zeros((batch, n, n))
    for b in range(batch):
        dist = np.zeros((n, n))
        for i in range(n):
            for j in range(n):
                diff = nodes[b, :, i] - nodes[b, :, j]
                dist[i, j] = diff @ (a.T @ a) @ diff  # (f_i - f_j)^T M (f_i - f_j)
        for i in range(n):
            ranked = [j for j in np.argsort(dist[i], kind="stable") if j != i][:k]
            for j in range(n):
                dy, dx = j // width - i // width, j % width - i % width
                if neighbourhood == "grid":
                    reach = max(abs(dy), abs(dx)) if norm == "chebyshev" else math.hypot(dy, dx)
                    keep = reach <= radius
                elif neighbourhood == "knn":
                    keep = j in ranked
                else:
                    keep = True
                if i != j and keep:
                    out[b, i, j] = out[b, j, i] = math.exp(-dist[i, j] / (2 * sigma**2))
    return out


def random_inputs(seed=0, batch=2, channels=3, height=3, width=4, rank=2, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    features = torch.randn(batch, channels, height, width, generator=gen, dtype=dtype)
    projection = torch.randn(rank, channels, generator=gen, dtype=dtype)
    return features, projection


CASES = [
    ("grid", {"radius": 1.0, "grid_norm": "euclidean"}),
    ("grid", {"radius": 1.0, "grid_norm": "chebyshev"}),
    ("grid", {"radius": 2.0, "grid_norm": "euclidean"}),
    ("knn", {"k": 3}),
    ("dense", {}),
]


@pytest.mark.parametrize(("neighbourhood", "options"), CASES)
def test_matches_a_loop_over_pairs(neighbourhood, options):
    features, projection = random_inputs()
    W = gaussian_affinity(features, projection, 0.7, neighbourhood, **options)
    dense = W.to_dense() if W.is_sparse else W
    expected = brute_affinity(
        features, projection, 0.7, neighbourhood, options.get("radius", 1.0),
        options.get("grid_norm", "euclidean"), options.get("k", 3),
    )
    np.testing.assert_allclose(dense.numpy(), expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(("neighbourhood", "options"), CASES[:4])
def test_sparse_agrees_with_dense_on_its_pattern(neighbourhood, options):
    features, projection = random_inputs(seed=1, height=5, width=6)
    W = gaussian_affinity(features, projection, 1.3, neighbourhood, **options)
    full = gaussian_affinity(features, projection, 1.3, "dense")
    b, r, c = W.indices()
    torch.testing.assert_close(W.values(), full[b, r, c], rtol=1e-13, atol=0)


@pytest.mark.parametrize(("neighbourhood", "options"), CASES)
def test_graph_invariants(neighbourhood, options):
    features, projection = random_inputs(seed=2, batch=3, height=4, width=5, dtype=torch.float32)
    W = gaussian_affinity(features, projection, 2.0, neighbourhood, **options)
    assert W.shape == (3, 20, 20) and W.dtype == torch.float32
    dense = W.to_dense() if W.is_sparse else W
    assert torch.equal(dense, dense.mT)
    assert not bool(dense.diagonal(dim1=1, dim2=2).any())
    assert bool(((dense >= 0) & (dense <= 1)).all())
    if W.is_sparse:
        assert W.is_coalesced() and W.sparse_dim() == 3
        assert bool((W.values() > 0).all())
        # torch's own invariant check rejects a coalesced flag on unsorted or duplicate indices
        torch.sparse_coo_tensor(
            W.indices(), W.values(), W.shape, is_coalesced=True, check_invariants=True
        )
    # each image's graph depends on that image alone
    alone = gaussian_affinity(features[1:2], projection, 2.0, neighbourhood, **options)
    torch.testing.assert_close(dense[1:2], alone.to_dense() if alone.is_sparse else alone)


def test_metric_ignores_directions_outside_the_row_space_of_A():
    features = torch.zeros(1, 2, 2, 2, dtype=torch.float64)
    features[0, 1] = torch.tensor([[0.0, 5.0], [-3.0, 1.0]])  # channel 1 varies, channel 0 does not
    channel_0 = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    W = gaussian_affinity(features, channel_0, 0.5, "dense")
    torch.testing.assert_close(W, 1 - torch.eye(4, dtype=torch.float64)[None])
    channel_1 = torch.tensor([[0.0, 2.0]], dtype=torch.float64)  # M = diag(0, 4)
    W = gaussian_affinity(features, channel_1, 0.5, "dense")
    assert W[0, 0, 1].item() == pytest.approx(math.exp(-4 * 25 / 0.5))


@pytest.mark.parametrize(("neighbourhood", "options"), CASES)
def test_gradcheck_in_features_projection_and_sigma(neighbourhood, options):
    features, projection = random_inputs(seed=3, batch=2, height=3, width=3)
    sigma = torch.tensor(1.7, dtype=torch.float64)

    def fn(f, a, s):
        W = gaussian_affinity(f, a, s, neighbourhood, **options)
        return W.values() if W.is_sparse else W

    inputs = (features.requires_grad_(), projection.requires_grad_(), sigma.requires_grad_())
    assert torch.autograd.gradcheck(fn, inputs)


def test_gradient_flows_through_the_normalized_laplacian():
    features, projection = random_inputs(seed=4, height=4, width=4)
    sigma = torch.tensor(0.9, dtype=torch.float64)

    def fn(f, a, s):
        W = gaussian_affinity(f, a, s, "grid", grid_norm="chebyshev")
        return normalized_laplacian(W).values()

    assert torch.autograd.gradcheck(fn, (features.requires_grad_(), projection.requires_grad_(),
                                         sigma.requires_grad_()))


def test_float_and_tensor_sigma_agree():
    features, projection = random_inputs(seed=5)
    by_float = gaussian_affinity(features, projection, 0.8, "grid")
    by_tensor = gaussian_affinity(features, projection, torch.tensor([0.8], dtype=torch.float64))
    torch.testing.assert_close(by_float.values(), by_tensor.values())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"features": torch.zeros(3, 4, 4)}, r"\(B, C, H, W\)"),
     ({"projection": torch.zeros(2, 5)}, r"\(rank, C\)"),
     ({"sigma": 0.0}, "positive"), ({"sigma": torch.ones(2)}, "scalar"),
     ({"neighbourhood": "ring"}, "neighbourhood"), ({"neighbourhood": "knn", "k": 16}, "k < n"),
     ({"radius": 0.9}, "radius")],
)
def test_rejects_bad_arguments(kwargs, match):
    call = {"features": torch.zeros(1, 3, 4, 4), "projection": torch.zeros(2, 3), "sigma": 1.0}
    call.update(kwargs)
    with pytest.raises(ValueError, match=match):
        gaussian_affinity(**call)


def test_module_shares_the_function_path_and_parametrises_sigma():
    torch.manual_seed(0)
    module = GaussianAffinity(4, 3, "knn", k=4, init_sigma=0.6).double()
    assert module.sigma.item() == pytest.approx(0.6)
    assert {name for name, _ in module.named_parameters()} == {"projection", "log_sigma"}
    rows = module.projection.detach()
    # orthonormal rows, to the float32 precision the parameters were initialised in
    torch.testing.assert_close(rows @ rows.T, torch.eye(3, dtype=torch.float64), atol=1e-6, rtol=0)
    assert bool((torch.linalg.eigvalsh(module.metric.detach()) > -1e-12).all())  # M is PSD
    features = torch.randn(2, 4, 5, 5, dtype=torch.float64)
    W = module(features)
    reference = gaussian_affinity(features, module.projection, module.sigma, "knn", k=4)
    assert torch.equal(W.indices(), reference.indices())
    torch.testing.assert_close(W.values(), reference.values())
    W.values().sum().backward()
    assert module.log_sigma.grad.abs() > 0 and module.projection.grad.abs().sum() > 0
    assert "k=4" in repr(module)


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [((3, 4), {}, "rank"), ((3, 0), {}, "rank"), ((3, 2, "ring"), {}, "neighbourhood"),
     ((3, 2), {"init_sigma": -1.0}, "init_sigma"), ((3, 2), {"radius": 0.0}, "radius"),
     ((3, 2, "knn"), {"k": 0}, "k >= 1")],
)
def test_module_rejects_bad_configuration(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        GaussianAffinity(*args, **kwargs)


def test_grid_at_65536_nodes_allocates_only_per_edge_memory(largest_allocation):
    side, channels = 256, 4
    features = torch.randn(1, channels, side, side, requires_grad=True)
    projection = torch.eye(channels, requires_grad=True)
    result = {}

    def run():
        W = gaussian_affinity(features, projection, 1.0, "grid", grid_norm="chebyshev")
        normalized_laplacian(W).values().square().sum().backward()
        result["nnz"] = W._nnz()

    peak = largest_allocation(run)
    n = side * side
    assert result["nnz"] == 2 * 2 * side * (side - 1) + 4 * (side - 1) ** 2
    assert peak <= 32 * (result["nnz"] + n)  # a few int64 index rows; n x n floats would be 17 GB
    assert features.grad is not None and bool(torch.isfinite(features.grad).all())
