"""Fragmentation of a label map: excess components and stray pixels (seed 002's XC and Stray).

Per image and per class ``c``, split the mask ``labels == c`` into connected components
with ``scipy.ndimage.label``: 8-connectivity by default, as in seed 002's pixel graphs (each pixel
joined to its 8 neighbours) and so that a one-pixel-wide diagonal structure is one region rather
than a staircase of fragments; 4-connectivity on request. With ``n_c`` components:

* **excess components** ``XC = sum_c (n_c - 1)`` over the classes present: zero exactly when every
  class occupies one connected region. It counts fragments, whatever their size.
* **stray pixels**: the pixels of class ``c`` that lie outside the largest component of ``c`` in
  that image (ties: any one largest component is kept; the count does not depend on which), i.e.
  the pixel mass of the excess components, or what a "keep one region per label" connectivity
  enforcement would have to relabel. With ``stray_max_size = s`` only excess components of at
  most ``s`` pixels count, so several genuinely separate large objects of one class (two cars) are
  not called stray while specks and slivers are.

Why not "every component below a size threshold"? That would call a lone small object (a distant
traffic sign predicted as one clean region) stray: it conflates small objects with fragmentation,
which is what these metrics exist to separate. Relative to the largest component, a pixel is stray
only because its class also lives elsewhere in the image.

Both are computed for the predictions and for the ground truth (``gt_*`` keys), so a model's
numbers can be read against the fragmentation the labelling itself has, and reported as means over
images (``stray_fraction`` divides each image's stray count by its pixel count first, so images
of different sizes weigh equally). The prediction is judged on the whole map, void pixels
included: fragmentation is a property of the output, and cutting the prediction at void pixels
would create fragments that are not there. In the ground truth void pixels belong to no class.
When ``ignore_index`` lies inside ``[0, C)`` that class is skipped on both sides.

The labelling runs on the CPU through numpy; these metrics are for evaluation, off the forward
path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from scipy import ndimage
from torch import Tensor
from torchmetrics import Metric

from cheeger.metrics._labels import as_label_batch, check_label_args, label_pairs


def check_fragment_args(connectivity: int, stray_max_size: int | None) -> None:
    """Reject a connectivity other than 4 or 8 and a non-positive stray size bound."""
    if (
        isinstance(connectivity, bool)
        or not isinstance(connectivity, int)
        or connectivity not in (4, 8)
    ):
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity!r}")
    size = stray_max_size
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise ValueError(f"stray_max_size must be a positive integer or None, got {size!r}")


def class_fragments(
    labels: Tensor,
    num_classes: int,
    connectivity: int = 8,
    stray_max_size: int | None = None,
    skip_class: int | None = None,
) -> tuple[Tensor, Tensor]:
    """Excess components and stray pixels per class of one ``(H, W)`` label map.

    Args:
        labels: ``(H, W)`` integer map; values outside ``[0, C)`` belong to no class.
        num_classes: number of classes ``C``.
        connectivity: 4 (edge neighbours) or 8 (edge and corner neighbours).
        stray_max_size: if set, only excess components of at most this many pixels are stray.
        skip_class: a class to leave out (the void class when ``ignore_index`` is in ``[0, C)``).

    Returns:
        ``(excess, stray)``: two ``(C,)`` int64 CPU tensors, ``n_c - 1`` (0 for an absent class)
        and the stray pixel count of each class.

    Example:
        >>> m = torch.tensor([[0, 1, 0], [1, 1, 1], [0, 1, 0]])
        >>> class_fragments(m, 2, connectivity=8)
        (tensor([3, 0]), tensor([3, 0]))
    """
    check_label_args(num_classes, skip_class)
    check_fragment_args(connectivity, stray_max_size)
    if labels.ndim != 2:
        raise ValueError(f"labels must be one (H, W) map, got shape {tuple(labels.shape)}")
    if labels.dtype == torch.bool or labels.is_floating_point() or labels.is_complex():
        raise ValueError(f"labels must be an integer label map, got dtype {labels.dtype}")
    structure = ndimage.generate_binary_structure(2, 1 if connectivity == 4 else 2)
    lab = labels.detach().cpu().numpy().astype(np.int64, copy=False)  # (H, W)
    excess = np.zeros(num_classes, dtype=np.int64)
    stray = np.zeros(num_classes, dtype=np.int64)
    # Classes present: a histogram with every value outside [0, C) folded into the two end bins.
    histogram = np.bincount(np.clip(lab.ravel(), -1, num_classes) + 1, minlength=num_classes + 2)
    for c in np.flatnonzero(histogram[1 : num_classes + 1]).tolist():
        if c == skip_class:
            continue
        mask = lab == c
        components, n = ndimage.label(mask, structure=structure)
        if n < 2:
            continue
        excess[c] = n - 1
        sizes = np.bincount(components[mask], minlength=n + 1)[1:]  # (n,) ids start at 1
        others = np.delete(sizes, np.argmax(sizes))  # (n - 1,)
        if stray_max_size is not None:
            others = others[others <= stray_max_size]
        stray[c] = others.sum()
    return torch.from_numpy(excess), torch.from_numpy(stray)


class Fragmentation(Metric):
    """Mean excess components and stray pixels per image, for predictions and ground truth.

    Args:
        num_classes: number of classes ``C``.
        ignore_index: void target value, or ``None``.
        connectivity: 4 or 8 (default 8, see the module docstring).
        stray_max_size: if set, only excess components of at most this many pixels are stray.
        **kwargs: forwarded to :class:`torchmetrics.Metric`.

    Shape:
        - update: ``preds`` and ``targets`` integer ``(B, H, W)`` or ``(H, W)``.
        - compute: dict of ``excess_components``, ``stray_pixels``, ``stray_fraction`` (scalars)
          and ``excess_components_per_class`` ``(C,)``, plus the same four with a ``gt_`` prefix.

    Example:
        >>> m = Fragmentation(num_classes=2)
        >>> m.update(torch.tensor([[0, 1, 0, 0]]), torch.tensor([[0, 0, 1, 1]]))
        >>> m.compute()["excess_components"], m.compute()["gt_excess_components"]
        (tensor(1., dtype=torch.float64), tensor(0., dtype=torch.float64))
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False
    excess: Tensor
    stray: Tensor
    stray_fraction: Tensor
    gt_excess: Tensor
    gt_stray: Tensor
    gt_stray_fraction: Tensor
    num_images: Tensor

    def __init__(
        self,
        num_classes: int,
        ignore_index: int | None = None,
        connectivity: int = 8,
        stray_max_size: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_label_args(num_classes, ignore_index)
        check_fragment_args(connectivity, stray_max_size)
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.connectivity = connectivity
        self.stray_max_size = stray_max_size
        for prefix in ("", "gt_"):
            per_class = torch.zeros(num_classes, dtype=torch.long)
            self.add_state(f"{prefix}excess", default=per_class.clone(), dist_reduce_fx="sum")
            self.add_state(f"{prefix}stray", default=per_class.clone(), dist_reduce_fx="sum")
            fraction = torch.zeros((), dtype=torch.float64)
            self.add_state(f"{prefix}stray_fraction", default=fraction, dist_reduce_fx="sum")
        count = torch.zeros((), dtype=torch.long)
        self.add_state("num_images", default=count, dist_reduce_fx="sum")

    def update(self, preds: Tensor, targets: Tensor) -> None:
        """Add the fragment counts of every image of one batch."""
        preds, targets = as_label_batch(preds, targets, self.num_classes, self.ignore_index)
        skip = self.ignore_index
        if skip is not None and not 0 <= skip < self.num_classes:
            skip = None
        area = preds.shape[1] * preds.shape[2]
        # Void ground-truth pixels are either outside [0, C) or the skipped class: no class.
        for prefix, maps in (("", preds), ("gt_", targets)):
            excess = torch.zeros(self.num_classes, dtype=torch.long)  # (C,) on the CPU
            stray = torch.zeros(self.num_classes, dtype=torch.long)  # (C,)
            fraction = 0.0
            for image in maps:
                image_excess, image_stray = class_fragments(
                    image, self.num_classes, self.connectivity, self.stray_max_size, skip
                )
                excess += image_excess
                stray += image_stray
                fraction += int(image_stray.sum()) / area
            # In-place on the registered states, which live on the metric's device.
            getattr(self, f"{prefix}excess").add_(excess.to(self.device))
            getattr(self, f"{prefix}stray").add_(stray.to(self.device))
            getattr(self, f"{prefix}stray_fraction").add_(fraction)
        self.num_images += preds.shape[0]

    def compute(self) -> dict[str, Tensor]:
        """Means over the images seen since the last reset (NaN before any update)."""
        n = self.num_images.to(torch.float64)
        out = {}
        for prefix in ("", "gt_"):
            excess = getattr(self, f"{prefix}excess").to(torch.float64)
            stray = getattr(self, f"{prefix}stray").to(torch.float64)
            out[f"{prefix}excess_components"] = excess.sum() / n
            out[f"{prefix}excess_components_per_class"] = excess / n
            out[f"{prefix}stray_pixels"] = stray.sum() / n
            out[f"{prefix}stray_fraction"] = getattr(self, f"{prefix}stray_fraction") / n
        return out


def fragment_stats(
    preds: Sequence[Tensor] | Tensor,
    targets: Sequence[Tensor] | Tensor,
    num_classes: int,
    ignore_index: int | None = None,
    connectivity: int = 8,
    stray_max_size: int | None = None,
) -> dict[str, Tensor]:
    """Fragment metrics of a split: :class:`Fragmentation` run over lists of maps.

    Args:
        preds: list of ``(H, W)`` integer label maps (sizes may differ), or a ``(B, H, W)`` tensor.
        targets: ground truth, same structure and shapes as ``preds``.
        num_classes: number of classes ``C``.
        ignore_index: void target value, or ``None``.
        connectivity: 4 or 8.
        stray_max_size: if set, only excess components of at most this many pixels are stray.

    Returns:
        The dict of :meth:`Fragmentation.compute`.

    Example:
        >>> s = fragment_stats([torch.tensor([[0, 1, 0, 0]])], [torch.tensor([[0, 0, 1, 1]])], 2)
        >>> s["stray_pixels"], s["gt_stray_pixels"]
        (tensor(1., dtype=torch.float64), tensor(0., dtype=torch.float64))
    """
    pairs = label_pairs(preds, targets)
    metric = Fragmentation(num_classes, ignore_index, connectivity, stray_max_size)
    metric = metric.to(pairs[0][0].device)
    for p, t in pairs:
        metric.update(p, t)
    return metric.compute()
