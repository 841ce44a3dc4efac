"""Semantic Boundary IoU (Cheng et al., CVPR 2021), accumulated over a split.

For a binary mask ``M`` of an ``H x W`` image the official ``mask_to_boundary`` pads ``M`` with one
ring of zeros, erodes it ``d`` times with a 3x3 square and returns ``M`` minus the eroded mask, with
``d = max(1, int(round(ratio * sqrt(H^2 + W^2))))``. So a pixel of ``M`` is a boundary pixel exactly
when its ``(2d+1) x (2d+1)`` window leaves the image or contains a pixel outside ``M``
(``d`` iterated 3x3 erosions equal one ``(2d+1)``-square erosion, the image border counting as
background).

Semantic form used here: for each class ``c`` take the ground-truth boundary ``G_c`` of the mask
``target == c`` and the predicted boundary ``P_c`` of ``pred == c``; accumulate ``|G_c & P_c|`` and
``|G_c | P_c|`` over every image of the split, then ``IoU_c = sum |G_c & P_c| / sum |G_c | P_c|``,
NaN when the union is empty (the class is absent from both) and left out of the mean.

Void pixels (``target == ignore_index``): boundaries are computed first, on the full maps, as the
official recipe does, so a void pixel is simply "not class c" in the ground truth and a class
region ending at a void region has a boundary there; the prediction at void pixels is kept while
the predicted boundaries are formed. Then void pixels are dropped from both boundary masks before
counting. A class predicted only at void pixels therefore has an empty union, consistent with the
region mIoU, which drops the prediction at void pixels too.

Implementation, for all classes at once on the label map and in time independent of ``d``:
a pixel ``p`` of class ``c`` has a non-``c`` pixel in its ``(2d+1)``-window iff some pixel ``r``
with ``|r - p|_inf <= d - 1`` has an 8-neighbour of a different label (walk the straight king path
from ``p`` to the foreign pixel: the last pixel before the first label change is such an ``r``;
conversely that neighbour lies inside the window). So the boundary is the map of label changes
dilated by a ``(2d-1)`` square, plus the band of width ``d`` along the image border. The dilation
is separable (row pass then column pass) and each pass is a box sum from one cumulative sum, exact
in integers. Per class this equals the official iterated 3x3 erosion; the tests check it against
a brute-force erosion loop and against per-class ``(2d+1)`` min-pools (``max_pool2d`` of the
negated mask). The min-pool form costs ``O(d)`` per pixel and per class; this one ``O(1)`` per pixel
(about 2 ms for a 360x480 map at ``d = 12``, six times less than two separable max-pools of the
label map, and it keeps Cityscapes at 1024x2048, ``d = 46``, affordable).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import Metric

from cheeger.metrics._labels import as_label_batch, check_label_args, label_pairs, valid_pixels
from cheeger.metrics.confusion import iou_from_counts


def boundary_width(height: int, width: int, ratio: float = 0.02) -> int:
    """Boundary width ``d`` in pixels, as in the official Boundary IoU code.

    Args:
        height: image height ``H``.
        width: image width ``W``.
        ratio: fraction of the image diagonal.

    Returns:
        ``max(1, round(ratio * sqrt(H^2 + W^2)))``, Python's round-half-to-even on a float like
        the official ``int(round(...))``.

    Example:
        >>> boundary_width(360, 480), boundary_width(1024, 2048)
        (12, 46)
    """
    check_ratio(ratio)
    return max(1, round(ratio * math.sqrt(height * height + width * width)))


def check_ratio(ratio: float) -> None:
    """Reject a boundary ratio that is not a positive finite number."""
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)):
        raise ValueError(f"boundary ratio must be a number, got {ratio!r}")
    if not (math.isfinite(ratio) and ratio > 0):
        raise ValueError(f"boundary ratio must be positive and finite, got {ratio}")


def _label_changes(labels: Tensor) -> Tensor:
    """Pixels with an 8-neighbour of a different label (inside the image).

    Args:
        labels: ``(B, H, W)`` integer label map.

    Returns:
        ``(B, H, W)`` boolean mask.

    Example:
        >>> _label_changes(torch.tensor([[[0, 0, 0, 1]]])).int()
        tensor([[[0, 0, 1, 1]]], dtype=torch.int32)
    """
    out = torch.zeros_like(labels, dtype=torch.bool)  # (B, H, W)
    # Each neighbour pair once (horizontal, vertical, both diagonals); a differing pair marks both.
    horizontal = labels[:, :, 1:] != labels[:, :, :-1]  # (B, H, W-1)
    out[:, :, 1:] |= horizontal
    out[:, :, :-1] |= horizontal
    vertical = labels[:, 1:] != labels[:, :-1]  # (B, H-1, W)
    out[:, 1:] |= vertical
    out[:, :-1] |= vertical
    diagonal = labels[:, 1:, 1:] != labels[:, :-1, :-1]  # (B, H-1, W-1)
    out[:, 1:, 1:] |= diagonal
    out[:, :-1, :-1] |= diagonal
    antidiagonal = labels[:, 1:, :-1] != labels[:, :-1, 1:]  # (B, H-1, W-1)
    out[:, 1:, :-1] |= antidiagonal
    out[:, :-1, 1:] |= antidiagonal
    return out


def _dilate_line(mask: Tensor, radius: int, dim: int) -> Tensor:
    """1-D dilation of a 0/1 int32 tensor by ``[-radius, radius]`` along ``dim`` (box sum > 0)."""
    n = mask.shape[dim]
    pad = [0, 0] * (mask.ndim - 1 - dim) + [radius + 1, radius]  # F.pad lists the last dim first
    csum = torch.cumsum(F.pad(mask, pad), dim=dim, dtype=torch.int32)  # length n + 2r + 1
    window = csum.narrow(dim, 2 * radius + 1, n) - csum.narrow(dim, 0, n)
    return (window > 0).to(torch.int32)


def label_boundaries(labels: Tensor, width: int) -> Tensor:
    """Pixels whose ``(2 width + 1)``-square window leaves the image or holds another label.

    For every class ``c``, ``label_boundaries(labels, d) & (labels == c)`` is the official
    ``mask_to_boundary(labels == c, d)`` (see the module docstring for the proof).

    Args:
        labels: ``(B, H, W)`` integer label map.
        width: boundary width ``d >= 1`` in pixels.

    Returns:
        ``(B, H, W)`` boolean boundary mask.

    Example:
        >>> label_boundaries(torch.zeros(1, 5, 5, dtype=torch.long), 1)[0].int()
        tensor([[1, 1, 1, 1, 1],
                [1, 0, 0, 0, 1],
                [1, 0, 0, 0, 1],
                [1, 0, 0, 0, 1],
                [1, 1, 1, 1, 1]], dtype=torch.int32)
    """
    if labels.ndim != 3:
        raise ValueError(f"labels must be (B, H, W), got shape {tuple(labels.shape)}")
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ValueError(f"boundary width must be an integer >= 1, got {width!r}")
    near = _label_changes(labels).to(torch.int32)  # (B, H, W)
    if width > 1:
        near = _dilate_line(_dilate_line(near, width - 1, dim=2), width - 1, dim=1)
    out = near.bool()
    # The window of a pixel closer than d to the border leaves the image.
    out[:, :width] = True
    out[:, -width:] = True
    out[:, :, :width] = True
    out[:, :, -width:] = True
    return out


def boundary_counts(
    preds: Tensor,
    targets: Tensor,
    num_classes: int,
    ignore_index: int | None = None,
    ratio: float = 0.02,
) -> tuple[Tensor, Tensor]:
    """Per-class boundary intersections and unions of one batch (images of equal size).

    Args:
        preds: predicted labels, ``(B, H, W)`` or ``(H, W)``, values in ``[0, C)``.
        targets: ground truth of the same shape, values in ``[0, C)`` or ``ignore_index``.
        num_classes: number of classes ``C``.
        ignore_index: void target value, or ``None``.
        ratio: boundary width as a fraction of the image diagonal.

    Returns:
        ``(intersection, union)``, two ``(C,)`` int64 tensors.

    Example:
        >>> t = torch.zeros(6, 6, dtype=torch.long); t[:, 3:] = 1
        >>> p = torch.zeros(6, 6, dtype=torch.long); p[:, 4:] = 1
        >>> boundary_counts(p, t, num_classes=2, ratio=0.01)
        (tensor([10,  8]), tensor([20, 18]))
    """
    check_label_args(num_classes, ignore_index)
    preds, targets = as_label_batch(preds, targets, num_classes, ignore_index)
    batch, height, width = preds.shape
    d = boundary_width(height, width, ratio)
    keep = valid_pixels(targets, ignore_index)  # (B, H, W)
    # Void pixels keep their value: it differs from every class at a valid pixel, so in the
    # ground-truth map they are "not class c" for every c, as in the per-class masks.
    edges = label_boundaries(torch.cat([preds, targets]), d)  # (2B, H, W)
    pred_edge = edges[:batch] & keep
    gt_edge = edges[batch:] & keep
    both = pred_edge & gt_edge & (preds == targets)
    n_pred = torch.bincount(preds[pred_edge], minlength=num_classes)  # (C,)
    n_gt = torch.bincount(targets[gt_edge], minlength=num_classes)  # (C,)
    n_both = torch.bincount(targets[both], minlength=num_classes)  # (C,)
    return n_both, n_pred + n_gt - n_both


class BoundaryIoU(Metric):
    """Semantic Boundary IoU accumulated over a split (see the module docstring).

    Args:
        num_classes: number of classes ``C``.
        ignore_index: void target value, or ``None``; may be outside ``[0, C)`` or equal ``C``.
        ratio: boundary width as a fraction of the image diagonal (official default 0.02; report
            it together with the evaluation resolution, since ``d`` depends on both).
        **kwargs: forwarded to :class:`torchmetrics.Metric`.

    Shape:
        - update: ``preds`` and ``targets`` integer ``(B, H, W)`` or ``(H, W)``; ``d`` is
          computed from each batch's own ``H, W``.
        - compute: dict of ``boundary_iou`` ``(C,)`` and ``boundary_miou`` (float64).

    Example:
        >>> m = BoundaryIoU(num_classes=2)
        >>> m.update(torch.zeros(1, 8, 8, dtype=torch.long), torch.zeros(1, 8, 8, dtype=torch.long))
        >>> m.compute()["boundary_iou"]
        tensor([1., nan], dtype=torch.float64)
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False
    intersection: Tensor
    union: Tensor

    def __init__(
        self,
        num_classes: int,
        ignore_index: int | None = None,
        ratio: float = 0.02,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_label_args(num_classes, ignore_index)
        check_ratio(ratio)
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.ratio = ratio
        zeros = torch.zeros(num_classes, dtype=torch.long)
        self.add_state("intersection", default=zeros.clone(), dist_reduce_fx="sum")
        self.add_state("union", default=zeros.clone(), dist_reduce_fx="sum")

    def update(self, preds: Tensor, targets: Tensor) -> None:
        """Add the boundary intersections and unions of one batch."""
        inter, union = boundary_counts(
            preds, targets, self.num_classes, self.ignore_index, self.ratio
        )
        self.intersection += inter
        self.union += union

    def compute(self) -> dict[str, Tensor]:
        """Per-class boundary IoU and its mean over the classes that are not NaN."""
        per_class, mean = iou_from_counts(self.intersection, self.union, self.ignore_index)
        return {"boundary_iou": per_class, "boundary_miou": mean}


def boundary_iou(
    preds: Sequence[Tensor] | Tensor,
    targets: Sequence[Tensor] | Tensor,
    num_classes: int,
    ignore_index: int | None = None,
    ratio: float = 0.02,
) -> tuple[Tensor, Tensor]:
    """Dataset-level semantic Boundary IoU of a split.

    Args:
        preds: list of ``(H, W)`` integer label maps (sizes may differ), or a ``(B, H, W)`` tensor.
        targets: ground truth, same structure and shapes as ``preds``.
        num_classes: number of classes ``C``.
        ignore_index: void target value, or ``None``.
        ratio: boundary width as a fraction of each image's diagonal.

    Returns:
        ``(per_class, mean)``: ``(C,)`` float64 boundary IoU (NaN for a class absent from both)
        and the mean over the non-NaN classes.

    Example:
        >>> t = torch.zeros(6, 6, dtype=torch.long); t[:, 3:] = 1
        >>> p = torch.zeros(6, 6, dtype=torch.long); p[:, 4:] = 1
        >>> boundary_iou([p], [t], num_classes=2, ratio=0.01)[0]
        tensor([0.5000, 0.4444], dtype=torch.float64)
    """
    pairs = label_pairs(preds, targets)
    metric = BoundaryIoU(num_classes, ignore_index, ratio).to(pairs[0][0].device)
    for p, t in pairs:
        metric.update(p, t)
    scores = metric.compute()
    return scores["boundary_iou"], scores["boundary_miou"]
