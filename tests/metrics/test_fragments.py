"""Excess components and stray pixels against a flood-fill reference and hand cases."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from cheeger.metrics import Fragmentation, class_fragments, fragment_stats


def flood_fill_components(labels: np.ndarray, c: int, connectivity: int) -> list[int]:
    """Sizes of the connected components of ``labels == c``, by breadth-first search."""
    h, w = labels.shape
    steps = [(0, 1), (1, 0), (0, -1), (-1, 0)]
    if connectivity == 8:
        steps += [(1, 1), (1, -1), (-1, 1), (-1, -1)]
    seen = np.zeros((h, w), dtype=bool)
    sizes = []
    for y in range(h):
        for x in range(w):
            if labels[y, x] != c or seen[y, x]:
                continue
            seen[y, x] = True
            queue, size = deque([(y, x)]), 0
            while queue:
                cy, cx = queue.popleft()
                size += 1
                for dy, dx in steps:
                    ny, nx = cy + dy, cx + dx
                    if 0 <= ny < h and 0 <= nx < w and labels[ny, nx] == c and not seen[ny, nx]:
                        seen[ny, nx] = True
                        queue.append((ny, nx))
            sizes.append(size)
    return sizes


def reference_fragments(labels, num_classes, connectivity, stray_max_size, skip=None):
    excess = np.zeros(num_classes, dtype=np.int64)
    stray = np.zeros(num_classes, dtype=np.int64)
    for c in range(num_classes):
        sizes = sorted(flood_fill_components(labels, c, connectivity), reverse=True)
        if c == skip or not sizes:
            continue
        excess[c] = len(sizes) - 1
        stray[c] = sum(s for s in sizes[1:] if stray_max_size is None or s <= stray_max_size)
    return excess, stray


def test_hand_computed_connectivity() -> None:
    # A checkerboard: each class is 8 separate cells under 4-connectivity, one region under 8.
    board = torch.tensor([[0, 1, 0, 1], [1, 0, 1, 0], [0, 1, 0, 1], [1, 0, 1, 0]])
    excess4, stray4 = class_fragments(board, 2, connectivity=4)
    excess8, stray8 = class_fragments(board, 2, connectivity=8)
    assert excess4.tolist() == [7, 7] and stray4.tolist() == [7, 7]
    assert excess8.tolist() == [0, 0] and stray8.tolist() == [0, 0]


def test_hand_computed_stray_definition() -> None:
    # Class 1: a 3x3 block (9 px), a 2-px bar and a speck; class 0 is connected around them.
    labels = torch.zeros(8, 8, dtype=torch.long)
    labels[1:4, 1:4] = 1
    labels[6, 1:3] = 1
    labels[6, 6] = 1
    excess, stray = class_fragments(labels, 3)
    assert excess.tolist() == [0, 2, 0]
    assert stray.tolist() == [0, 3, 0]  # everything but the 3x3 block
    _, small_only = class_fragments(labels, 3, stray_max_size=1)
    assert small_only.tolist() == [0, 1, 0]  # only the speck is small enough
    # Two equal largest components: one is kept, the count does not depend on which.
    twins = torch.tensor([[2, 2, 0, 2, 2]])
    assert class_fragments(twins, 3)[1].tolist() == [0, 0, 2]


def test_void_and_values_outside_the_classes() -> None:
    # GT void splits class 0 into two regions; the prediction (no void) is one region.
    t = torch.tensor([[0, 0, 255, 0, 0]])
    p = torch.zeros(1, 5, dtype=torch.long)
    out = fragment_stats([p], [t], num_classes=2, ignore_index=255)
    assert out["excess_components"] == 0 and out["gt_excess_components"] == 1
    assert out["stray_pixels"] == 0 and out["gt_stray_pixels"] == 2
    assert out["gt_stray_fraction"] == 2 / 5
    # An ignore index inside [0, C) is skipped on both sides.
    t2 = torch.tensor([[1, 0, 1, 0, 1]])
    p2 = torch.tensor([[1, 0, 1, 0, 1]])
    out = fragment_stats([p2], [t2], num_classes=2, ignore_index=1)
    assert out["excess_components_per_class"].tolist() == [1.0, 0.0]
    assert out["gt_excess_components_per_class"].tolist() == [1.0, 0.0]


@pytest.mark.parametrize("connectivity", [4, 8])
@pytest.mark.parametrize("stray_max_size", [None, 3])
def test_matches_flood_fill(make_split, connectivity, stray_max_size) -> None:
    preds, targets = make_split(9, [(13, 17), (20, 9), (11, 11)], 4, 255, flip_fraction=0.15)
    metric = Fragmentation(4, 255, connectivity, stray_max_size)
    for p, t in zip(preds, targets, strict=True):
        metric.update(p, t)
    out = metric.compute()
    for prefix, maps in (("", preds), ("gt_", targets)):
        rows = [reference_fragments(m.numpy(), 4, connectivity, stray_max_size) for m in maps]
        excess = np.stack([e for e, _ in rows])  # (N, C)
        stray = np.stack([s for _, s in rows])  # (N, C)
        fractions = [s.sum() / m.numel() for (_, s), m in zip(rows, maps, strict=True)]
        np.testing.assert_allclose(out[f"{prefix}excess_components"], excess.sum(1).mean())
        np.testing.assert_allclose(out[f"{prefix}excess_components_per_class"], excess.mean(0))
        np.testing.assert_allclose(out[f"{prefix}stray_pixels"], stray.sum(1).mean())
        np.testing.assert_allclose(out[f"{prefix}stray_fraction"], np.mean(fractions))
    assert out["excess_components"] > out["gt_excess_components"]  # the flips fragment


def test_batch_reset_and_empty() -> None:
    metric = Fragmentation(3)
    with pytest.warns(UserWarning, match="before the ``update``"):
        assert torch.isnan(metric.compute()["excess_components"])
    maps = torch.tensor([[[0, 1, 0]], [[2, 2, 2]]])
    metric.update(maps, maps)
    out = metric.compute()
    assert out["excess_components"] == 0.5 and out["gt_stray_pixels"] == 0.5
    metric.reset()
    assert metric.num_images == 0 and metric.excess.sum() == 0


def test_bad_arguments() -> None:
    for kwargs in ({"connectivity": 6}, {"stray_max_size": 0}, {"stray_max_size": 2.5}):
        with pytest.raises(ValueError, match=r"connectivity|stray_max_size"):
            Fragmentation(3, **kwargs)
    with pytest.raises(ValueError, match=r"one \(H, W\) map"):
        class_fragments(torch.zeros(1, 2, 2, dtype=torch.long), 2)
    with pytest.raises(ValueError, match="integer"):
        class_fragments(torch.zeros(2, 2), 2)


maps_strategy = st.tuples(st.integers(1, 9), st.integers(1, 9)).flatmap(
    lambda shape: hnp.arrays(np.int64, shape, elements=st.integers(0, 2))
)


@settings(max_examples=60, deadline=None)
@given(maps_strategy, st.sampled_from([4, 8]), st.sampled_from([None, 1, 2]))
def test_property_matches_flood_fill(labels, connectivity, stray_max_size) -> None:
    excess, stray = class_fragments(torch.from_numpy(labels), 3, connectivity, stray_max_size)
    ref_excess, ref_stray = reference_fragments(labels, 3, connectivity, stray_max_size)
    assert excess.tolist() == ref_excess.tolist() and stray.tolist() == ref_stray.tolist()


@settings(max_examples=60, deadline=None)
@given(maps_strategy, st.permutations([0, 1, 2]))
def test_property_invariants(labels, relabel) -> None:
    t = torch.from_numpy(labels)
    e8, s8 = class_fragments(t, 3, connectivity=8)
    e4, s4 = class_fragments(t, 3, connectivity=4)
    # No stray pixel without an excess component and vice versa; 4-connectivity splits more.
    assert torch.equal(e8 == 0, s8 == 0) and (e4 >= e8).all() and (s4 >= s8).all()
    assert int(s8.sum()) + int((torch.bincount(t.flatten(), minlength=3) > 0).sum()) <= t.numel()
    # Renaming the classes permutes the per-class counts.
    renamed = torch.tensor(relabel)[t]
    e_renamed, s_renamed = class_fragments(renamed, 3)
    assert torch.equal(e_renamed[torch.tensor(relabel)], e8)
    assert torch.equal(s_renamed[torch.tensor(relabel)], s8)
