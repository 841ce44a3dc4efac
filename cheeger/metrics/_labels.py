"""Validation of integer label maps shared by the segmentation metrics.

Every metric in :mod:`cheeger.metrics` accepts predictions and targets as integer label maps of
shape ``(B, H, W)`` or ``(H, W)``. A wrong value does not fail loudly downstream: a prediction
equal to ``num_classes`` lands in the next row of a flattened confusion matrix, and torchmetrics
only counts unique values. These checks therefore look at the value ranges, which costs one
reduction per tensor and one host synchronisation; metrics run off the training forward path.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def check_label_args(num_classes: int, ignore_index: int | None) -> None:
    """Reject a class count or ignore index that is not a plain integer.

    Args:
        num_classes: number of real classes ``C`` (labels ``0 .. C-1``), at least 1.
        ignore_index: target value marking void pixels, or ``None``. It may lie outside
            ``[0, C)`` (Cityscapes trainIds use 255, CamVid uses 11 with 11 classes).

    Raises:
        ValueError: if either argument has the wrong type or ``num_classes < 1``.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be an integer >= 1, got {num_classes!r}")
    if ignore_index is not None and (
        isinstance(ignore_index, bool) or not isinstance(ignore_index, int)
    ):
        raise ValueError(f"ignore_index must be an integer or None, got {ignore_index!r}")


def as_label_batch(
    preds: Tensor, targets: Tensor, num_classes: int, ignore_index: int | None
) -> tuple[Tensor, Tensor]:
    """Check a prediction/target pair of label maps and return both as ``(B, H, W)`` int64.

    Args:
        preds: predicted labels, ``(B, H, W)`` or ``(H, W)``, values in ``[0, C)``.
        targets: ground-truth labels of the same shape, values in ``[0, C)`` or ``ignore_index``.
        num_classes: number of classes ``C``.
        ignore_index: void value of ``targets``, or ``None``.

    Returns:
        ``(preds, targets)``, both ``(B, H, W)`` int64 on the input device.

    Raises:
        ValueError: naming the tensor and what was expected, for a non-integer dtype, a wrong
            rank, mismatched shapes or devices, an empty map, or a value out of range.

    Example:
        >>> p, t = as_label_batch(torch.zeros(4, 5, dtype=torch.uint8),
        ...                       torch.full((4, 5), 255), num_classes=3, ignore_index=255)
        >>> p.shape, p.dtype
        (torch.Size([1, 4, 5]), torch.int64)
    """
    for name, x in (("preds", preds), ("targets", targets)):
        if not isinstance(x, Tensor):
            raise ValueError(f"{name} must be a torch.Tensor of labels, got {type(x).__name__}")
        if x.dtype == torch.bool or x.is_floating_point() or x.is_complex():
            raise ValueError(
                f"{name} must be an integer label map (argmax the logits first), "
                f"got dtype {x.dtype}"
            )
        if x.ndim not in (2, 3):
            raise ValueError(f"{name} must have shape (B, H, W) or (H, W), got {tuple(x.shape)}")
        if x.numel() == 0:
            raise ValueError(f"{name} is empty: shape {tuple(x.shape)}")
    if preds.shape != targets.shape:
        raise ValueError(
            f"preds and targets must have the same shape, got {tuple(preds.shape)} "
            f"and {tuple(targets.shape)} (upsample predictions to the label resolution)"
        )
    if preds.device != targets.device:
        raise ValueError(f"preds on {preds.device} but targets on {targets.device}")

    lo, hi = (int(v) for v in preds.aminmax())
    if lo < 0 or hi >= num_classes:
        raise ValueError(f"preds values must lie in [0, {num_classes}), found range [{lo}, {hi}]")
    bad = (targets < 0) | (targets >= num_classes)
    if ignore_index is not None:
        bad &= targets != ignore_index
    if bool(bad.any()):
        value = int(targets[bad][0])
        raise ValueError(
            f"targets contain {value}, outside [0, {num_classes}) and not ignore_index="
            f"{ignore_index}"
        )
    if preds.ndim == 2:
        preds, targets = preds.unsqueeze(0), targets.unsqueeze(0)
    return preds.long(), targets.long()


def valid_pixels(targets: Tensor, ignore_index: int | None) -> Tensor:
    """Boolean mask of the target pixels that are not void, same shape as ``targets``."""
    if ignore_index is None:
        return torch.ones_like(targets, dtype=torch.bool)
    return targets != ignore_index


def label_pairs(
    preds: Sequence[Tensor] | Tensor, targets: Sequence[Tensor] | Tensor
) -> list[tuple[Tensor, Tensor]]:
    """Pair up a split given as lists of ``(H, W)`` maps (sizes may differ) or as batches.

    A tensor argument is split along its first dimension when it is ``(B, H, W)`` and taken as
    one image when it is ``(H, W)``.

    Raises:
        ValueError: if the two sides hold different numbers of images, or none.
    """

    def images(x: Sequence[Tensor] | Tensor) -> list[Tensor]:
        if isinstance(x, Tensor):
            return [x] if x.ndim == 2 else list(x.unbind(0))
        return list(x)

    p, t = images(preds), images(targets)
    if len(p) != len(t):
        raise ValueError(f"got {len(p)} predictions but {len(t)} targets")
    if not p:
        raise ValueError("no images given: preds and targets are empty")
    return list(zip(p, t, strict=True))
