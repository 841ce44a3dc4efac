"""Inference at the labels' native resolution and the metrics of a whole split.

The model sees images at the prepared resolution; its logits are upsampled bilinearly to each
label's native size (logits, not labels, are interpolated) and only then turned into labels by
argmax, so every metric is computed against the untouched ground truth, as the official tools
do. Used for the validation of every training epoch and by ``cheeger evaluate``.

Example:
    >>> import torch
    >>> from cheeger.models import UNet
    >>> model = UNet(3, depth=1, width=4, norm="none").eval()
    >>> [tuple(p.shape) for p in predict_native(model, torch.rand(2, 3, 8, 10), [(16, 20), (8, 10)])]
    [(16, 20), (8, 10)]
"""  # noqa: E501

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader

from cheeger.data import PreparedDataset, collate_items
from cheeger.features import CachedTaps
from cheeger.heads import resize_logits
from cheeger.metrics import SegmentationMetrics
from cheeger.models import UNet

__all__ = ["SCALAR_METRICS", "ForwardTimer", "evaluate_model", "forward_batch",
           "metrics_summary", "predict_native", "to_device"]  # fmt: skip

SCALAR_METRICS = (
    "miou", "pixel_accuracy", "class_accuracy", "boundary_miou",
    "excess_components", "stray_pixels", "stray_fraction",
    "gt_excess_components", "gt_stray_pixels", "gt_stray_fraction",
)  # fmt: skip


def to_device(images: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    """Move an image batch to ``device`` in the model's memory format."""
    images = images.to(device, non_blocking=True)
    return images.contiguous(memory_format=torch.channels_last) if channels_last else images


@torch.no_grad()
def predict_native(
    model: UNet, images: torch.Tensor, sizes: Sequence[Sequence[int]]
) -> list[torch.Tensor]:
    """Labels of each image at its own native size.

    Args:
        model: a segmentation model (used as is: call ``.eval()`` first).
        images: ``(B, 3, H, W)`` normalised images at the prepared resolution.
        sizes: ``B`` target sizes ``(H0, W0)``.

    Returns:
        ``B`` int64 label maps ``(H0, W0)`` on the model's device.
    """
    if len(sizes) != images.shape[0]:
        raise ValueError(f"predict_native: {images.shape[0]} images but {len(sizes)} sizes")
    return _native_labels(model(images).logits, sizes)


def forward_batch(model: torch.nn.Module, batch: Mapping[str, Any], device: torch.device,
                  channels_last: bool) -> Any:  # fmt: skip
    """The model's output on a batch of images, or of a frozen encoder's cached taps
    (``batch["taps"]``: decoder and head only, logits at the prepared labels' size)."""
    if "taps" in batch:
        taps = [to_device(t, device, channels_last) for t in batch["taps"]]
        return model.forward_from_taps(taps, batch["label"].shape[-2:])
    return model(to_device(batch["image"], device, channels_last))


@dataclass
class ForwardTimer:
    """Wall time of the model's forward passes in :func:`evaluate_model` (inference cost).

    The first batch is left out when there are more (it pays one-off costs: allocations,
    caches); on CUDA and MPS the device is synchronised around each timed forward. Timed: the
    move of the batch's inputs to the device (a no-op on CPU but for a memory-format change)
    and the model's forward; not the data loading, the upsampling to native size or the
    metrics.

    Attributes:
        seconds: summed forward time of the timed batches.
        images: images in the timed batches.
        batches: timed batches.
        skipped: batches left out (the first, when there were more).

    Example:
        >>> timer = ForwardTimer(seconds=2.0, images=8, batches=2)
        >>> timer.per_image()
        0.25
    """

    seconds: float = 0.0
    images: int = 0
    batches: int = 0
    skipped: int = 0

    def per_image(self) -> float | None:
        """Mean forward seconds per image, or ``None`` before any timed batch."""
        return self.seconds / self.images if self.images else None


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def _native_labels(logits: torch.Tensor, sizes: Sequence[Sequence[int]]) -> list[torch.Tensor]:
    """``B`` label maps from logits ``(B, K, H, W)``, each upsampled to its own size first."""
    return [resize_logits(logits[i : i + 1], size)[0].argmax(0) for i, size in enumerate(sizes)]


def evaluate_model(
    model: UNet,
    dataset: PreparedDataset | CachedTaps,
    metrics: SegmentationMetrics,
    *,
    batch_size: int,
    device: torch.device,
    channels_last: bool = False,
    observe: Callable[[Any, Mapping[str, Any]], None] | None = None,
    timer: ForwardTimer | None = None,
) -> dict[str, torch.Tensor]:
    """All metrics of ``dataset`` (built with ``native=True``) at native label resolution.

    ``dataset`` is a prepared split (the model runs on images) or a frozen encoder's cached taps
    of it (:class:`~cheeger.features.CachedTaps`: the model runs its decoder and head only).

    The model is put in eval mode for the pass and returned to its previous mode; ``metrics``
    is reset first, so it holds exactly this split afterwards (its confusion matrix included).
    ``observe(output, batch)``, if given, sees each batch's model output (a
    :class:`~cheeger.heads.HeadOutput`, e.g. for the head's internals) and the batch (``"id"``).
    ``timer``, if given, accumulates the forward passes' wall time (:class:`ForwardTimer`).

    Returns:
        ``metrics.compute()``: a flat dict of float64 tensors (see
        :class:`~cheeger.metrics.SegmentationMetrics`).
    """
    if not dataset.native:
        raise ValueError(f"evaluate_model: build the {dataset.split!r} dataset with native=True")
    was_training = model.training
    model.eval()
    metrics.reset()
    collate = getattr(dataset, "collate", collate_items)  # a feature cache stacks its taps
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate)
    try:
        for index, batch in enumerate(loader):
            targets = batch["native_label"]
            timed = timer is not None and (index > 0 or len(loader) == 1)
            if timer is not None and not timed:
                timer.skipped += 1
            if timed:
                _sync(device)
                start = time.perf_counter()
            with torch.no_grad():
                output = forward_batch(model, batch, device, channels_last)
            if timed:
                _sync(device)
                timer.seconds += time.perf_counter() - start
                timer.images += len(targets)
                timer.batches += 1
            if observe is not None:
                observe(output, batch)
            preds = _native_labels(output.logits, [t.shape for t in targets])
            for pred, target in zip(preds, targets, strict=True):
                metrics.update(pred.cpu(), target)
    finally:
        model.train(was_training)
    return metrics.compute()


def _number(value: torch.Tensor | float) -> float | None:
    value = float(value)
    return None if math.isnan(value) else value  # JSON has no NaN: undefined is null


def metrics_summary(
    result: Mapping[str, torch.Tensor], class_names: Sequence[str]
) -> dict[str, Any]:
    """JSON-ready view of a metrics result: scalars and per-class values keyed by class name.

    NaN (undefined, e.g. the IoU of a class absent from both prediction and ground truth)
    becomes ``None``.

    Returns:
        ``{<scalar>: float | None, ..., "per_class": {"iou": {name: v}, "boundary_iou": ...,
        "excess_components": ..., "gt_excess_components": ...}}``.
    """
    summary: dict[str, Any] = {name: _number(result[name]) for name in SCALAR_METRICS}
    per_class = {"iou": "iou", "boundary_iou": "boundary_iou",
                 "excess_components": "excess_components_per_class",
                 "gt_excess_components": "gt_excess_components_per_class"}  # fmt: skip
    summary["per_class"] = {
        key: dict(zip(class_names, map(_number, result[name].tolist()), strict=True))
        for key, name in per_class.items()
    }
    return summary
