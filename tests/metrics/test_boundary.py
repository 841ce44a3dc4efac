"""Semantic Boundary IoU against a brute-force erosion loop, per-class min-pools and hand cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from cheeger.metrics import (
    BoundaryIoU,
    boundary_counts,
    boundary_iou,
    boundary_width,
    label_boundaries,
)


def official_mask_to_boundary(mask: np.ndarray, d: int) -> np.ndarray:
    """boundary_iou/utils/boundary_utils.py ``mask_to_boundary`` with cv2 replaced by loops.

    Pad one ring of zeros, erode ``d`` times with a 3x3 square (cv2's default border for erosion
    is +inf, so pixels outside the padded array never erode anything), crop, subtract.
    """
    h, w = mask.shape
    padded = np.zeros((h + 2, w + 2), dtype=np.uint8)
    padded[1:-1, 1:-1] = mask
    for _ in range(d):
        eroded = padded.copy()
        for y in range(h + 2):
            for x in range(w + 2):
                window = padded[max(y - 1, 0) : y + 2, max(x - 1, 0) : x + 2]
                eroded[y, x] = window.min()
        padded = eroded
    return mask.astype(bool) & ~padded[1:-1, 1:-1].astype(bool)


def reference_boundary_iou(preds, targets, num_classes, ignore_index, ratio):
    """Per-class official boundaries, void dropped after they are formed, summed over the split."""
    inter = np.zeros(num_classes)
    union = np.zeros(num_classes)
    for p, t in zip(preds, targets, strict=True):
        p, t = p.numpy(), t.numpy()
        h, w = t.shape
        d = max(1, int(np.round(ratio * np.sqrt(h**2 + w**2))))
        valid = t != ignore_index if ignore_index is not None else np.ones_like(t, dtype=bool)
        for c in range(num_classes):
            gt_edge = official_mask_to_boundary(t == c, d) & valid
            pred_edge = official_mask_to_boundary(p == c, d) & valid
            inter[c] += (gt_edge & pred_edge).sum()
            union[c] += (gt_edge | pred_edge).sum()
    with np.errstate(invalid="ignore"):
        iou = np.where(union > 0, inter / union, np.nan)
    if ignore_index is not None and 0 <= ignore_index < num_classes:
        iou[ignore_index] = np.nan
    return iou, np.nanmean(iou) if (~np.isnan(iou)).any() else np.nan


def minpool_boundary(mask: torch.Tensor, d: int) -> torch.Tensor:
    """Boundary by one (2d+1)-square min-pool: max_pool of the negated, zero-padded mask."""
    x = F.pad(mask.double()[None, None], (d, d, d, d), value=0.0)
    eroded = -F.max_pool2d(F.max_pool2d(-x, (1, 2 * d + 1), 1), (2 * d + 1, 1), 1)
    return mask & ~eroded[0, 0].bool()


def test_width_matches_official_formula() -> None:
    assert boundary_width(360, 480) == 12  # CamVid
    assert boundary_width(1024, 2048) == 46  # Cityscapes
    assert boundary_width(5, 5) == 1  # never below one pixel
    for h, w, r in [(7, 9, 0.25), (100, 1, 0.005), (33, 65, 0.1)]:
        assert boundary_width(h, w, r) == max(1, int(np.round(r * np.sqrt(h**2 + w**2))))
    for bad in (0.0, -0.1, math.inf, math.nan, "0.02", True):
        with pytest.raises(ValueError, match="ratio"):
            boundary_width(10, 10, bad)


def test_hand_computed_shifted_edge() -> None:
    # 6x6, d = 1. GT: class 0 in columns 0-2, class 1 in 3-5; prediction shifts the edge right.
    t = torch.zeros(6, 6, dtype=torch.long)
    t[:, 3:] = 1
    p = torch.zeros(6, 6, dtype=torch.long)
    p[:, 4:] = 1
    # Class 0: GT boundary = columns 0 and 2 plus (0,1), (5,1): 14 px; predicted boundary =
    # columns 0 and 3 plus rows 0 and 5 of columns 1-2: 16 px; shared 10 -> 10 / 20.
    # Class 1: GT 14 px, predicted (2 columns wide, all boundary) 12 px, shared 8 -> 8 / 18.
    inter, union = boundary_counts(p, t, num_classes=2, ratio=0.01)
    assert inter.tolist() == [10, 8] and union.tolist() == [20, 18]
    per_class, mean = boundary_iou([p], [t], num_classes=2, ratio=0.01)
    torch.testing.assert_close(per_class, torch.tensor([0.5, 4 / 9], dtype=torch.float64))
    torch.testing.assert_close(mean, torch.tensor(17 / 36, dtype=torch.float64))


def test_hand_computed_border_and_width() -> None:
    # One class filling a 9x9 image: its boundary is the band of width d along the border.
    labels = torch.zeros(1, 9, 9, dtype=torch.long)
    for d in (1, 2, 3, 4, 5):
        inner = max(9 - 2 * d, 0)
        assert int(label_boundaries(labels, d).sum()) == 81 - inner * inner
    # A 1-pixel-wide stripe of class 1 in column 7 of a 9x15 image, d = 2: columns 5..9 are
    # within reach of the stripe, plus the border band of width 2.
    labels = torch.zeros(1, 9, 15, dtype=torch.long)
    labels[0, :, 7] = 1
    expected = torch.zeros(9, 15, dtype=torch.bool)
    expected[:2] = expected[-2:] = True
    expected[:, :2] = expected[:, -2:] = True
    expected[:, 5:10] = True
    assert torch.equal(label_boundaries(labels, 2)[0], expected)


def test_void_pixels_are_dropped_after_the_boundaries() -> None:
    # GT: class 0 left, void column 2, class 0 right; prediction all class 0 (also on the void).
    t = torch.zeros(5, 5, dtype=torch.long)
    t[:, 2] = 255
    p = torch.zeros(5, 5, dtype=torch.long)
    inter, union = boundary_counts(p, t, num_classes=2, ignore_index=255, ratio=0.01)
    # GT boundary of class 0: everything valid (columns 1 and 3 touch the void, the rest the
    # border) = 20 px. Predicted boundary: the border ring minus the void column = 16 - 2 = 14.
    assert inter.tolist() == [14, 0] and union.tolist() == [20, 0]
    per_class, _ = boundary_iou([p], [t], 2, 255, ratio=0.01)
    assert per_class[0] == 0.7 and torch.isnan(per_class[1])


@pytest.mark.parametrize("d", [1, 2, 3, 5, 9])
def test_label_boundaries_equal_per_class_minpool(d) -> None:
    # Large regions (so that most pixels are not boundary even at d = 9) and isolated specks.
    rng = np.random.default_rng(6)
    coarse = rng.integers(0, 5, size=(3, 4))
    labels = torch.from_numpy(np.kron(coarse, np.ones((24, 26), dtype=np.int64)))  # (72, 104)
    labels[rng.integers(0, 72, 6), rng.integers(0, 104, 6)] = 5
    edges = label_boundaries(labels[None], d)[0]
    assert 0.1 < edges.double().mean() < 0.95  # the comparison is not vacuous
    for c in range(6):
        mask = labels == c
        assert torch.equal(edges & mask, minpool_boundary(mask, d)), f"class {c}, d={d}"


@pytest.mark.parametrize(("num_classes", "ignore_index", "ratio"), [(5, 255, 0.1), (4, 4, 0.2)])
def test_matches_brute_force_reference(make_split, num_classes, ignore_index, ratio) -> None:
    preds, targets = make_split(
        7, [(12, 15), (9, 9), (14, 6)], num_classes, ignore_index, absent=[1], predicted_only=[2]
    )
    expected, expected_mean = reference_boundary_iou(
        preds, targets, num_classes, ignore_index, ratio
    )
    per_class, mean = boundary_iou(preds, targets, num_classes, ignore_index, ratio)
    np.testing.assert_allclose(per_class.numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(mean.numpy(), expected_mean, rtol=1e-12)
    assert torch.isnan(per_class[1]) and per_class[2] == 0


def test_metric_accumulates_over_batches(make_split) -> None:
    preds, targets = make_split(8, [(20, 24)] * 4 + [(13, 30)] * 2, 4, 255)
    metric = BoundaryIoU(4, 255, ratio=0.05)
    metric.update(torch.stack(preds[:4]), torch.stack(targets[:4]))
    metric.update(torch.stack(preds[4:]), torch.stack(targets[4:]))
    out = metric.compute()
    per_class, mean = boundary_iou(preds, targets, 4, 255, ratio=0.05)
    torch.testing.assert_close(out["boundary_iou"], per_class, equal_nan=True, rtol=0, atol=0)
    assert out["boundary_miou"] == mean


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="ratio"):
        BoundaryIoU(3, ratio=0)
    with pytest.raises(ValueError, match="width"):
        label_boundaries(torch.zeros(1, 3, 3, dtype=torch.long), 0)
    with pytest.raises(ValueError, match=r"\(B, H, W\)"):
        label_boundaries(torch.zeros(3, 3, dtype=torch.long), 1)


def upsampled(coarse: np.ndarray, factor: tuple[int, int]) -> np.ndarray:
    return np.kron(coarse, np.ones(factor, dtype=np.int64))


# Maps of blocks (upsampled coarse maps), so that boundaries do not cover everything.
small_maps = st.tuples(
    st.integers(1, 5), st.integers(1, 5), st.integers(1, 6), st.integers(1, 6)
).flatmap(
    lambda s: st.lists(
        st.tuples(
            hnp.arrays(np.int64, s[:2], elements=st.integers(0, 2)),
            hnp.arrays(np.int64, s[:2], elements=st.sampled_from([0, 1, 2, 255])),
        ).map(lambda pair, f=s[2:]: (upsampled(pair[0], f), upsampled(pair[1], f))),
        min_size=1,
        max_size=3,
    )
)


@settings(max_examples=40, deadline=None)
@given(small_maps, st.sampled_from([0.02, 0.15, 0.3]))
def test_property_matches_reference(pairs, ratio) -> None:
    preds = [torch.from_numpy(p) for p, _ in pairs]
    targets = [torch.from_numpy(t) for _, t in pairs]
    expected, _ = reference_boundary_iou(preds, targets, 3, 255, ratio)
    per_class, _ = boundary_iou(preds, targets, 3, 255, ratio)
    np.testing.assert_allclose(per_class.numpy(), expected, rtol=1e-12)


@settings(max_examples=40, deadline=None)
@given(small_maps, st.randoms(use_true_random=False))
def test_property_identity_and_order(pairs, rnd) -> None:
    maps = [torch.from_numpy(p) for p, _ in pairs]
    # Identical masks (no void): 1 for every class present, NaN for the others.
    per_class, mean = boundary_iou(maps, maps, 3)
    present = torch.zeros(3, dtype=torch.bool)
    present[torch.cat([m.flatten() for m in maps]).unique()] = True
    assert torch.equal(~torch.isnan(per_class), present)
    assert (per_class[present] == 1).all() and mean == 1
    # Permuting the images leaves the dataset-level result unchanged.
    targets = [torch.from_numpy(t) for _, t in pairs]
    order = list(range(len(maps)))
    rnd.shuffle(order)
    base = boundary_iou(maps, targets, 3, 255)
    permuted = boundary_iou([maps[i] for i in order], [targets[i] for i in order], 3, 255)
    torch.testing.assert_close(base, permuted, equal_nan=True, rtol=0, atol=0)
