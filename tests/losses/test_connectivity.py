"""Trace connectivity loss against explicit region graphs; shapes of regions, range, gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cheeger.graph import grid_edges, laplacian
from cheeger.losses import TraceConnectivityLoss, trace_connectivity_loss
from cheeger.losses.connectivity import _region_scores


def neighbours(y: int, x: int, height: int, width: int, connectivity: int):
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            inside = 0 <= y + dy < height and 0 <= x + dx < width
            if (dy, dx) != (0, 0) and inside and (connectivity == 8 or dy == 0 or dx == 0):
                yield y + dy, x + dx


def reference(probs: np.ndarray, connectivity: int) -> float:
    """Loop over pixels: Laplacian of each class graph, its trace, V_s, predicted classes."""
    batch, _, height, width = probs.shape
    per_image = []
    for b in range(batch):
        predicted = set(probs[b].argmax(0).ravel().tolist())
        scores = []
        for s in sorted(predicted):
            q = probs[b, s]
            n = height * width
            A = np.zeros((n, n))
            volume = 0.0
            for y in range(height):
                for x in range(width):
                    around = list(neighbours(y, x, height, width, connectivity))
                    volume += q[y, x] * len(around)
                    for ny, nx in around:
                        A[y * width + x, ny * width + nx] = q[y, x] * q[ny, nx]
            L = np.diag(A.sum(1)) - A
            scores.append(1 - np.trace(L) / volume)
        per_image.append(np.mean(scores))
    return float(np.mean(per_image))


def random_probs(shape, seed, sharpness=1.0):
    gen = torch.Generator().manual_seed(seed)
    return (sharpness * torch.randn(shape, generator=gen, dtype=torch.float64)).softmax(1)


@pytest.mark.parametrize("connectivity", [4, 8])
@pytest.mark.parametrize(("shape", "sharpness"), [((2, 3, 5, 6), 1.0), ((1, 4, 1, 7), 3.0),
                                                  ((3, 2, 4, 4), 0.2)])
def test_matches_explicit_region_graphs(connectivity, shape, sharpness):
    probs = random_probs(shape, seed=0, sharpness=sharpness)
    got = trace_connectivity_loss(probs, connectivity, eps=0.0)
    assert got.item() == pytest.approx(reference(probs.numpy(), connectivity), rel=1e-12)


@pytest.mark.parametrize("connectivity", [4, 8])
def test_trace_is_that_of_the_sparse_region_laplacian(connectivity):
    probs = random_probs((1, 3, 6, 7), seed=1)
    edges = grid_edges(6, 7, 1.0, "euclidean" if connectivity == 4 else "chebyshev")
    rows, cols = edges.indices
    degree = torch.bincount(rows, minlength=42).to(probs)  # |N(i)|
    scores = _region_scores(probs, connectivity, eps=0.0)  # (1, 3)
    for s in range(3):
        q = probs[0, s].reshape(-1)
        W_s = torch.sparse_coo_tensor(edges.indices, q[rows] * q[cols], (42, 42),
                                      check_invariants=True)
        trace = laplacian(W_s).to_dense().trace()
        assert scores[0, s].item() == pytest.approx((trace / (q * degree).sum()).item(), rel=1e-12)


def test_interior_region_matches_the_paper_normalisation():
    probs = torch.zeros(1, 2, 8, 8, dtype=torch.float64)
    probs[0, 0, 2:6, 2:5] = 0.9  # a soft blob whose support stays off the border
    probs[0, 0, 3:5, 3] = 0.7
    probs[0, 1] = 1 - probs[0, 0]
    q = probs[0, 0].numpy()
    trace = sum(q[y, x] * q[ny, nx] for y in range(8) for x in range(8)
                for ny, nx in neighbours(y, x, 8, 8, 8))  # tr(L_s) over 8-neighbour pairs
    paper = trace / (8 * q.sum())  # tr(L_s) / (deg_max N_s), N_s the soft size
    assert _region_scores(probs, 8, eps=0.0)[0, 0].item() == pytest.approx(paper, rel=1e-12)


def two_class(label: torch.Tensor) -> torch.Tensor:
    one_hot = torch.stack([label == 0, label == 1]).to(torch.float64)
    return 0.05 + 0.9 * one_hot[None]  # confident but soft


@pytest.mark.parametrize("connectivity", [4, 8])
def test_fragmented_predictions_score_higher_than_blobs(connectivity):
    side = 16
    y, x = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
    halves = (x >= side // 2).long()
    blocks = ((y // 4 + x // 4) % 2).long()  # 4 x 4 patches: 16 fragments
    checker = ((y + x) % 2).long()  # every pixel its own fragment
    losses = [trace_connectivity_loss(two_class(label), connectivity).item()
              for label in (halves, blocks, checker)]
    assert losses[0] < losses[1] < losses[2]


def test_single_region_covering_the_image_scores_zero():
    probs = torch.zeros(2, 3, 5, 4, dtype=torch.float64)
    probs[:, 1] = 1.0
    assert trace_connectivity_loss(probs, 8).item() == pytest.approx(0.0, abs=1e-9)
    assert TraceConnectivityLoss(4)(probs).item() == pytest.approx(0.0, abs=1e-9)


def test_absent_classes_do_not_count():
    probs = random_probs((2, 3, 6, 6), seed=2, sharpness=2.0)
    padded = torch.cat([probs, torch.zeros(2, 2, 6, 6, dtype=torch.float64)], 1)
    assert trace_connectivity_loss(padded).item() == pytest.approx(
        trace_connectivity_loss(probs).item(), rel=1e-14)


@settings(max_examples=40, deadline=None)
@given(classes=st.integers(1, 5), height=st.integers(1, 9), width=st.integers(2, 9),
       sharpness=st.sampled_from([0.0, 0.1, 1.0, 10.0, 1e3]), seed=st.integers(0, 2**32 - 1),
       connectivity=st.sampled_from([4, 8]))
def test_value_lies_in_zero_one(classes, height, width, sharpness, seed, connectivity):
    probs = random_probs((2, classes, height, width), seed % 2**31, sharpness).requires_grad_()
    value = trace_connectivity_loss(probs, connectivity)
    assert -1e-12 <= value.item() <= 1 + 1e-12
    value.backward()
    assert bool(torch.isfinite(probs.grad).all())


@pytest.mark.parametrize("connectivity", [4, 8])
def test_gradcheck(connectivity):
    probs = random_probs((2, 3, 3, 4), seed=3, sharpness=2.0)
    assert torch.autograd.gradcheck(lambda p: trace_connectivity_loss(p, connectivity),
                                    (probs.requires_grad_(),))


@pytest.mark.parametrize(("shape", "connectivity", "match"),
                         [((2, 3, 4), 8, r"\(B, K, H, W\)"), ((1, 2, 1, 1), 8, "2 pixels"),
                          ((1, 2, 3, 3), 6, "4 or 8")])
def test_rejects_bad_arguments(shape, connectivity, match):
    with pytest.raises(ValueError, match=match):
        trace_connectivity_loss(torch.rand(shape), connectivity)


def test_module_validates_and_matches_the_function():
    with pytest.raises(ValueError, match="4 or 8"):
        TraceConnectivityLoss(5)
    probs = random_probs((2, 3, 4, 5), seed=4)
    assert TraceConnectivityLoss(4)(probs).item() == trace_connectivity_loss(probs, 4).item()
    assert "connectivity=4" in repr(TraceConnectivityLoss(4))
