"""Torch k-means++ / Lloyd against a numpy float64 oracle on separable blobs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cheeger.unsupervised.kmeans import _reseed_empty, kmeans, nearest_centroid

pytestmark = pytest.mark.usefixtures("one_thread")


def _blobs(seed: int = 0, per: int = 40, k: int = 4, d: int = 3):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=10.0, size=(k, d))
    truth = np.repeat(np.arange(k), per)
    return centres[truth] + rng.normal(scale=0.3, size=(k * per, d)), truth


def _numpy_lloyd(x: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """float64 oracle: the centroids of a partition and one more assignment step."""
    cent = np.stack([x[labels == j].mean(0) for j in range(k)])
    return cent, ((x[:, None] - cent[None]) ** 2).sum(-1).argmin(1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_recovers_separable_blobs(seed):
    x, truth = _blobs(seed)
    cent, labels = kmeans(torch.tensor(x), 4, seed=seed)
    labels = labels.numpy()
    # one cluster per blob, up to a permutation
    pairs = {(t, p) for t, p in zip(truth, labels, strict=True)}
    assert len(pairs) == 4 and len({p for _, p in pairs}) == 4
    oracle_cent, oracle_labels = _numpy_lloyd(x, labels, 4)
    np.testing.assert_allclose(cent.numpy(), oracle_cent, rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(oracle_labels, labels)  # a fixed point of Lloyd


def test_same_seed_same_result_and_nearest_centroid():
    x = torch.tensor(_blobs(3)[0])
    a, la = kmeans(x, 4, seed=5)
    b, lb = kmeans(x, 4, seed=5)
    assert torch.equal(a, b) and torch.equal(la, lb)
    assert torch.equal(nearest_centroid(x, a), la)


def test_no_empty_cluster_on_duplicates():
    x = torch.cat([torch.zeros(10, 2), torch.ones(2, 2)])
    _, labels = kmeans(x, 3)
    assert torch.bincount(labels, minlength=3).min() >= 1


def test_reseeding_never_empties_a_singleton():
    # cluster 0 holds one point, the worst served of all (distance 9); cluster 1 three points;
    # cluster 2 is empty: it must take a point of cluster 1, not cluster 0's only one
    dist = torch.tensor([[9.0, 20, 20], [20, 1, 20], [20, 2, 20], [20, 3, 20]])
    labels, counts = _reseed_empty(dist, dist.argmin(-1), 3)
    assert counts.tolist() == [1, 2, 1] and labels.tolist() == [0, 1, 1, 2]
    assert torch.equal(counts, torch.bincount(labels, minlength=3))
    # two empty clusters, two spare points: both filled
    dist = torch.tensor([[1.0, 9, 9, 9], [2, 9, 9, 9], [3, 9, 9, 9], [9, 1, 9, 9]])
    _, counts = _reseed_empty(dist, dist.argmin(-1), 4)
    assert counts.min() == 1


@pytest.mark.parametrize(("x", "k", "match"), [
    (torch.zeros(3, 2), 4, "K = 4"),
    (torch.zeros(3), 1, "must be"),
    (torch.full((3, 2), float("nan")), 2, "NaN"),
])  # fmt: skip
def test_bad_input(x, k, match):
    with pytest.raises(ValueError, match=match):
        kmeans(x, k)
