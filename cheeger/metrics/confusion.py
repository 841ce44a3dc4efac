"""Dataset-level confusion matrix: per-class IoU, mIoU, pixel accuracy, class-average accuracy.

All four scores come from one ``(C, C)`` confusion matrix accumulated over the whole split
(rows: ground truth, columns: prediction), never from per-image averages:

* ``IoU_c = TP_c / (TP_c + FP_c + FN_c)``. A class absent from both ground truth and prediction
  has ``0 / 0`` and is NaN, left out of the mean (as the Cityscapes tool does); a class predicted
  but never present scores 0 and stays in the mean.
* pixel accuracy ``= trace / total`` (SegNet's "G");
* class-average accuracy ``=`` mean recall ``TP_c / (TP_c + FN_c)`` over the classes present in
  the ground truth (SegNet's "C"; ``MulticlassAccuracy(average="macro")`` would also count
  predicted-only classes as 0).

Pixels whose target equals ``ignore_index`` are dropped from everything, including the
prediction made there. When ``ignore_index`` lies inside ``[0, C)`` that class has no ground
truth by construction; its IoU is reported as NaN and left out of the means, like torchmetrics'
macro average, while predicting it elsewhere still counts as a miss for the true class.

The state and reduction match torchmetrics ``MulticlassJaccardIndex(ignore_index=...)``
(``average="none"`` up to the NaN convention, ``average="macro"`` exactly; both checked in the
tests), but the update is our own ``torch.bincount``: torchmetrics' ``_bincount`` switches to an
``(N, C^2)`` one-hot comparison whenever ``torch.use_deterministic_algorithms(True)`` is on, which
the seeded training enables, and that is gigabytes for one Cityscapes batch; plain
``torch.bincount`` without weights is deterministic on CPU and CUDA.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric

from cheeger.metrics._labels import as_label_batch, check_label_args, label_pairs, valid_pixels


def confusion_matrix(
    preds: Tensor, targets: Tensor, num_classes: int, ignore_index: int | None = None
) -> Tensor:
    """Confusion matrix of one batch of label maps, void pixels dropped.

    Args:
        preds: predicted labels, ``(B, H, W)`` or ``(H, W)``, values in ``[0, C)``.
        targets: ground truth of the same shape, values in ``[0, C)`` or ``ignore_index``.
        num_classes: number of classes ``C``.
        ignore_index: void target value, or ``None``.

    Returns:
        ``(C, C)`` int64 counts, ``[i, j]`` = pixels of true class ``i`` predicted as ``j``.

    Example:
        >>> confusion_matrix(torch.tensor([[0, 1, 1]]), torch.tensor([[0, 1, 255]]), 2, 255)
        tensor([[1, 0],
                [0, 1]])
    """
    check_label_args(num_classes, ignore_index)
    preds, targets = as_label_batch(preds, targets, num_classes, ignore_index)
    keep = valid_pixels(targets, ignore_index)
    codes = targets[keep] * num_classes + preds[keep]  # (N_valid,)
    counts = torch.bincount(codes, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def iou_from_counts(
    intersection: Tensor, union: Tensor, ignore_index: int | None = None
) -> tuple[Tensor, Tensor]:
    """Per-class IoU and its mean from accumulated intersections and unions.

    Shared by the region IoU and the boundary IoU so that both follow one NaN convention.

    Args:
        intersection: ``(C,)`` accumulated intersection counts.
        union: ``(C,)`` accumulated union counts.
        ignore_index: if inside ``[0, C)``, that class is forced to NaN.

    Returns:
        ``(per_class, mean)``: ``(C,)`` float64 with NaN where the union is empty, and the mean
        over the non-NaN entries (NaN if there are none).

    Example:
        >>> iou_from_counts(torch.tensor([1, 0, 0]), torch.tensor([2, 3, 0]))
        (tensor([0.5000, 0.0000,    nan], dtype=torch.float64), tensor(0.2500, dtype=torch.float64))
    """
    inter = intersection.to(torch.float64)
    uni = union.to(torch.float64)
    per_class = torch.where(uni > 0, inter / uni.clamp_min(1), torch.nan)  # (C,)
    if ignore_index is not None and 0 <= ignore_index < per_class.numel():
        per_class[ignore_index] = torch.nan
    return per_class, torch.nanmean(per_class)


def scores_from_confusion(confmat: Tensor, ignore_index: int | None = None) -> dict[str, Tensor]:
    """IoU, mIoU, pixel accuracy and class-average accuracy from a confusion matrix.

    Args:
        confmat: ``(C, C)`` counts, rows ground truth, columns prediction.
        ignore_index: if inside ``[0, C)``, that class is reported as NaN.

    Returns:
        ``iou`` ``(C,)``, ``miou``, ``pixel_accuracy``, ``class_accuracy`` (float64 tensors;
        NaN when undefined, e.g. an empty matrix).

    Example:
        >>> s = scores_from_confusion(torch.tensor([[3, 1], [0, 0]]))
        >>> s["iou"], s["class_accuracy"]
        (tensor([0.7500, 0.0000], dtype=torch.float64), tensor(0.7500, dtype=torch.float64))
    """
    if confmat.ndim != 2 or confmat.shape[0] != confmat.shape[1]:
        raise ValueError(f"confmat must be a square (C, C) matrix, got {tuple(confmat.shape)}")
    cm = confmat.to(torch.float64)
    tp = cm.diagonal()  # (C,)
    gt_total = cm.sum(1)  # (C,)
    iou, miou = iou_from_counts(tp, gt_total + cm.sum(0) - tp, ignore_index)
    recall = torch.where(gt_total > 0, tp / gt_total.clamp_min(1), torch.nan)  # (C,)
    total = cm.sum()
    pixel_accuracy = torch.where(total > 0, tp.sum() / total.clamp_min(1), torch.nan)
    return {
        "iou": iou,
        "miou": miou,
        "pixel_accuracy": pixel_accuracy,
        "class_accuracy": torch.nanmean(recall),
    }


class SemanticConfusion(Metric):
    """Accumulates one confusion matrix over a split; ``compute`` gives the four scores.

    Args:
        num_classes: number of classes ``C``.
        ignore_index: void target value, or ``None``; may be outside ``[0, C)`` or equal ``C``.
        **kwargs: forwarded to :class:`torchmetrics.Metric` (``sync_on_compute`` etc.).

    Shape:
        - update: ``preds`` and ``targets`` integer ``(B, H, W)`` or ``(H, W)``.
        - compute: dict of ``iou`` ``(C,)``, ``miou``, ``pixel_accuracy``, ``class_accuracy``.

    Example:
        >>> m = SemanticConfusion(num_classes=3, ignore_index=255)
        >>> m.update(torch.tensor([[0, 1], [2, 2]]), torch.tensor([[0, 1], [2, 255]]))
        >>> m.compute()["miou"]
        tensor(1., dtype=torch.float64)
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False
    confmat: Tensor

    def __init__(self, num_classes: int, ignore_index: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        check_label_args(num_classes, ignore_index)
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.add_state(
            "confmat",
            default=torch.zeros(num_classes, num_classes, dtype=torch.long),
            dist_reduce_fx="sum",
        )

    def update(self, preds: Tensor, targets: Tensor) -> None:
        """Add one batch of label maps to the confusion matrix."""
        self.confmat += confusion_matrix(preds, targets, self.num_classes, self.ignore_index)

    def compute(self) -> dict[str, Tensor]:
        """Scores of everything seen since the last reset."""
        return scores_from_confusion(self.confmat, self.ignore_index)


def mean_iou(
    preds: Sequence[Tensor] | Tensor,
    targets: Sequence[Tensor] | Tensor,
    num_classes: int,
    ignore_index: int | None = None,
) -> tuple[Tensor, Tensor]:
    """Dataset-level per-class IoU and mIoU of a split.

    Args:
        preds: list of ``(H, W)`` integer label maps (sizes may differ between images), or a
            ``(B, H, W)`` tensor.
        targets: ground truth, same structure and shapes as ``preds``.
        num_classes: number of classes ``C``.
        ignore_index: void target value, or ``None``.

    Returns:
        ``(per_class, mean)``: ``(C,)`` float64 IoU (NaN for a class absent from both ground truth
        and prediction) and the mean over the non-NaN classes.

    Example:
        >>> per_class, miou = mean_iou([torch.tensor([[0, 0], [1, 1]])],
        ...                            [torch.tensor([[0, 1], [1, 1]])], num_classes=3)
        >>> per_class, miou
        (tensor([0.5000, 0.6667,    nan], dtype=torch.float64), tensor(0.5833, dtype=torch.float64))
    """
    pairs = label_pairs(preds, targets)
    metric = SemanticConfusion(num_classes, ignore_index).to(pairs[0][0].device)
    for p, t in pairs:
        metric.update(p, t)
    scores = metric.compute()
    return scores["iou"], scores["miou"]
