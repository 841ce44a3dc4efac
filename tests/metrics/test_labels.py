"""Input validation shared by all metrics: bad label maps must fail loudly, not miscount."""

from __future__ import annotations

import pytest
import torch

from cheeger.metrics import boundary_iou, fragment_stats, mean_iou
from cheeger.metrics._labels import as_label_batch, check_label_args, label_pairs

ALL_FUNCTIONS = [mean_iou, boundary_iou, fragment_stats]


def test_batch_shape_and_dtype() -> None:
    p, t = as_label_batch(
        torch.zeros(4, 5, dtype=torch.uint8), torch.full((4, 5), 255), 3, ignore_index=255
    )
    assert p.shape == t.shape == (1, 4, 5)
    assert p.dtype == t.dtype == torch.int64
    p, t = as_label_batch(
        torch.zeros(2, 4, 5, dtype=torch.int32), torch.zeros(2, 4, 5, dtype=torch.int16), 3, None
    )
    assert p.shape == (2, 4, 5)


@pytest.mark.parametrize("fn", ALL_FUNCTIONS)
def test_prediction_out_of_range_is_rejected(fn) -> None:
    # A prediction equal to C would silently land in the next confusion-matrix row.
    with pytest.raises(ValueError, match=r"preds values must lie in \[0, 3\)"):
        fn([torch.tensor([[0, 3]])], [torch.tensor([[0, 1]])], 3, 255)


@pytest.mark.parametrize("fn", ALL_FUNCTIONS)
def test_target_out_of_range_is_rejected(fn) -> None:
    with pytest.raises(ValueError, match="targets contain 7"):
        fn([torch.tensor([[0, 1]])], [torch.tensor([[0, 7]])], 3, 255)
    with pytest.raises(ValueError, match="targets contain -1"):
        fn([torch.tensor([[0, 1]])], [torch.tensor([[0, -1]])], 3, None)


def test_ignore_index_equal_to_num_classes_is_accepted() -> None:
    # CamVid: 11 classes, void = 11.
    _, t = as_label_batch(torch.tensor([[0, 10]]), torch.tensor([[11, 10]]), 11, ignore_index=11)
    assert t.tolist() == [[[11, 10]]]


@pytest.mark.parametrize(
    ("preds", "targets", "message"),
    [
        (torch.zeros(2, 2), torch.zeros(2, 2, dtype=torch.long), "preds must be an integer"),
        (torch.zeros(2, 2, dtype=torch.long), torch.zeros(2, 2, dtype=torch.bool), "targets must"),
        (torch.zeros(2, 2, dtype=torch.long), torch.zeros(2, 3, dtype=torch.long), "same shape"),
        (torch.zeros(2, dtype=torch.long), torch.zeros(2, dtype=torch.long), r"\(B, H, W\)"),
        (torch.zeros(0, 2, dtype=torch.long), torch.zeros(0, 2, dtype=torch.long), "empty"),
        ([[0]], torch.zeros(1, 1, dtype=torch.long), "torch.Tensor"),
    ],
)
def test_bad_tensors_are_named(preds, targets, message) -> None:
    with pytest.raises(ValueError, match=message):
        as_label_batch(preds, targets, 3, None)


@pytest.mark.parametrize(
    ("num_classes", "ignore_index"), [(0, None), (2.0, None), (True, None), (3, 1.5), (3, False)]
)
def test_bad_arguments(num_classes, ignore_index) -> None:
    with pytest.raises(ValueError):
        check_label_args(num_classes, ignore_index)


def test_pairs_of_a_split() -> None:
    a, b = torch.zeros(2, 3, dtype=torch.long), torch.zeros(4, 5, dtype=torch.long)
    pairs = label_pairs([a, b], [a, b])
    assert [p.shape for p, _ in pairs] == [(2, 3), (4, 5)]
    assert len(label_pairs(torch.zeros(3, 2, 2), torch.zeros(3, 2, 2))) == 3  # (B, H, W) split
    assert len(label_pairs(torch.zeros(2, 2), torch.zeros(2, 2))) == 1
    with pytest.raises(ValueError, match="2 predictions but 1 targets"):
        label_pairs([a, b], [a])
    with pytest.raises(ValueError, match="empty"):
        label_pairs([], [])
