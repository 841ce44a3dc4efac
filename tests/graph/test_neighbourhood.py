"""Edge sets: pixel grids against a loop over pixels, kNN against a full distance matrix."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cheeger.graph import grid_edges, grid_offsets, knn_edges, shifted_pair


def brute_grid(height: int, width: int, radius: float, norm: str) -> list[tuple[int, int]]:
    """All ordered pairs of distinct pixels within ``radius``, by a loop over pixel pairs."""
    pairs = []
    for i in range(height * width):
        for j in range(height * width):
            dy, dx = j // width - i // width, j % width - i % width
            dist = max(abs(dy), abs(dx)) if norm == "chebyshev" else math.hypot(dy, dx)
            if i != j and dist <= radius:
                pairs.append((i, j))
    return sorted(pairs)


def brute_knn(points: np.ndarray, k: int) -> list[tuple[int, int, int]]:
    """Union-symmetrised kNN triples ``(b, i, j)`` from full float64 distance matrices."""
    triples = set()
    for b, cloud in enumerate(points):
        dist = ((cloud[:, None, :] - cloud[None, :, :]) ** 2).sum(-1)
        np.fill_diagonal(dist, np.inf)
        for i, row in enumerate(np.argsort(dist, axis=1, kind="stable")[:, :k]):
            for j in row:
                triples.update({(b, i, int(j)), (b, int(j), i)})
    return sorted(triples)


@pytest.mark.parametrize(
    ("radius", "norm", "degree"),
    [(1, "euclidean", 4), (1.5, "euclidean", 8), (2, "euclidean", 12),
     (math.sqrt(5), "euclidean", 20), (1, "chebyshev", 8), (2, "chebyshev", 24),
     (2.9, "chebyshev", 24)],
)
def test_offsets_give_the_interior_degree(radius, norm, degree):
    offsets = grid_offsets(radius, norm)
    assert 2 * len(offsets) == degree
    assert list(offsets) == sorted(offsets)
    assert all(dy > 0 or (dy == 0 and dx > 0) for dy, dx in offsets)


@pytest.mark.parametrize(
    ("height", "width", "radius", "norm"),
    [(1, 1, 1, "euclidean"), (1, 6, 1, "chebyshev"), (5, 1, 2, "euclidean"),
     (4, 5, 1, "euclidean"), (4, 5, 1, "chebyshev"), (5, 4, 2, "euclidean"),
     (6, 3, 2.5, "euclidean"), (3, 7, 2, "chebyshev"), (2, 2, 3, "chebyshev"),
     (2, 3, 3, "euclidean")],
)
def test_grid_edges_match_a_loop_over_pixels(height, width, radius, norm):
    edges = grid_edges(height, width, radius, norm)
    got = list(zip(*edges.indices.tolist(), strict=True)) if edges.indices.numel() else []
    assert got == brute_grid(height, width, radius, norm)  # sorted, unique, symmetric, no loops


@pytest.mark.parametrize(("radius", "norm"), [(1, "euclidean"), (1, "chebyshev"), (2, "euclidean")])
def test_order_maps_shifted_pairs_onto_sorted_edges(radius, norm):
    height, width = 5, 7
    edges = grid_edges(height, width, radius, norm)
    nodes = torch.arange(height * width).reshape(height, width)
    pairs = [shifted_pair(nodes, offset) for offset in edges.offsets]
    src = torch.cat([s.reshape(-1) for s, _ in pairs])
    dst = torch.cat([d.reshape(-1) for _, d in pairs])
    assert torch.equal(torch.cat([src, dst])[edges.order], edges.indices[0])
    assert torch.equal(torch.cat([dst, src])[edges.order], edges.indices[1])


def test_shifted_pair_of_an_offset_larger_than_the_map_is_empty():
    x = torch.arange(6.0).reshape(2, 3)
    for offset in [(0, 3), (0, 5), (2, 0), (1, -3), (1, 4)]:
        src, dst = shifted_pair(x, offset)
        assert src.numel() == 0 and dst.numel() == 0 and src.shape == dst.shape


def test_grid_edges_are_cached_and_built_on_the_device():
    first = grid_edges(9, 11, 1, "chebyshev", "cpu")
    assert grid_edges(9, 11, 1, "chebyshev", torch.device("cpu")) is first
    assert first.indices.device.type == "cpu" and first.indices.dtype == torch.long


def test_grid_nnz_at_65536_nodes():
    side = 256
    four = grid_edges(side, side, 1, "euclidean").indices
    eight = grid_edges(side, side, 1, "chebyshev").indices
    assert four.shape == (2, 2 * 2 * side * (side - 1))  # 261,120
    assert eight.shape == (2, four.shape[1] + 4 * (side - 1) ** 2)  # 521,220
    keys = eight[0] * side * side + eight[1]
    assert bool((keys[1:] > keys[:-1]).all())  # strictly increasing: sorted and unique


@pytest.mark.parametrize(
    ("args", "match"),
    [((3, 3, 0.5), "radius"), ((3, 3, 1, "manhattan"), "norm"), ((0, 3), "at least 1 x 1"),
     ((3, 3, math.inf), "radius")],
)
def test_grid_rejects_bad_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        grid_edges(*args)


def test_knn_matches_a_full_distance_matrix():
    gen = torch.Generator().manual_seed(0)
    points = torch.randn(3, 40, 3, generator=gen, dtype=torch.float64)
    got = knn_edges(points, 4, chunk_size=7)
    assert list(zip(*got.tolist(), strict=True)) == brute_knn(points.numpy(), 4)


@pytest.mark.parametrize("chunk_size", [1, 5, 64, 10_000])
def test_knn_does_not_depend_on_the_chunking(chunk_size):
    points = torch.randn(2, 64, 5, generator=torch.Generator().manual_seed(1))
    assert torch.equal(knn_edges(points, 6, chunk_size), knn_edges(points, 6, 64))


def test_knn_pattern_is_symmetric_sorted_without_self_loops():
    batch, n, k = 2, 50, 5
    idx = knn_edges(torch.rand(batch, n, 2, generator=torch.Generator().manual_seed(2)), k)
    keys = (idx[0] * n + idx[1]) * n + idx[2]
    assert bool((keys[1:] > keys[:-1]).all())
    assert not bool((idx[1] == idx[2]).any())
    mirrored = (idx[0] * n + idx[2]) * n + idx[1]
    assert torch.equal(torch.sort(mirrored).values, keys)
    assert batch * n * k <= idx.shape[1] <= 2 * batch * n * k
    out_degree = torch.bincount(idx[0] * n + idx[1], minlength=batch * n)
    assert int(out_degree.min()) >= k


@pytest.mark.parametrize(("shape", "k", "match"), [((1, 5, 2), 5, "k < n"), ((1, 5, 2), 0, "k < n"),
                                                   ((5, 2), 2, r"\(B, n, d\)")])
def test_knn_rejects_bad_arguments(shape, k, match):
    with pytest.raises(ValueError, match=match):
        knn_edges(torch.zeros(shape), k)


def test_knn_memory_is_one_chunk_of_rows(largest_allocation):
    n, chunk = 4096, 256
    points = torch.randn(1, n, 4, generator=torch.Generator().manual_seed(3))
    chunked = largest_allocation(lambda: knn_edges(points, 10, chunk))
    whole = largest_allocation(lambda: knn_edges(points, 10, n))
    assert chunked <= 2 * chunk * n * 4  # one (chunk, n) float32 block, nothing of size n x n
    assert whole >= n * n * 4  # the measurement does see an n x n block when there is one
