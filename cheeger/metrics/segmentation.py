"""All evaluation metrics of a split behind one ``update`` / ``compute`` pair.

:class:`SegmentationMetrics` is a torchmetrics ``MetricCollection`` of
:class:`~cheeger.metrics.confusion.SemanticConfusion`,
:class:`~cheeger.metrics.boundary.BoundaryIoU` and
:class:`~cheeger.metrics.fragments.Fragmentation`; ``compute`` returns one flat dict:

``iou`` ``(C,)``, ``miou``, ``pixel_accuracy``, ``class_accuracy``, ``boundary_iou`` ``(C,)``,
``boundary_miou``, ``excess_components``, ``excess_components_per_class`` ``(C,)``,
``stray_pixels``, ``stray_fraction`` and the ``gt_`` versions of the four fragment entries.

Feed it label maps at the labels' native resolution (upsample predictions first): boundary width
and fragment counts depend on resolution, so report it with the boundary ratio.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from torchmetrics import MetricCollection

from cheeger.metrics._labels import check_label_args
from cheeger.metrics.boundary import BoundaryIoU, check_ratio
from cheeger.metrics.confusion import SemanticConfusion
from cheeger.metrics.fragments import Fragmentation, check_fragment_args


@dataclass(frozen=True)
class SegmentationMetricsConfig:
    """Settings of the evaluation metrics (one ``params.yaml`` section).

    Attributes:
        num_classes: number of classes ``C``.
        ignore_index: void target value, or ``None`` (Cityscapes trainIds 255, CamVid 11).
        boundary_ratio: Boundary IoU width as a fraction of the image diagonal.
        connectivity: 4 or 8, for the fragment metrics.
        stray_max_size: if set, only excess components of at most this many pixels are stray.

    Example:
        >>> SegmentationMetricsConfig.from_mapping({"num_classes": 11, "ignore_index": 11})
        SegmentationMetricsConfig(num_classes=11, ignore_index=11, boundary_ratio=0.02, connectivity=8, stray_max_size=None)
    """  # noqa: E501

    num_classes: int
    ignore_index: int | None = None
    boundary_ratio: float = 0.02
    connectivity: int = 8
    stray_max_size: int | None = None

    def __post_init__(self) -> None:
        check_label_args(self.num_classes, self.ignore_index)
        check_ratio(self.boundary_ratio)
        check_fragment_args(self.connectivity, self.stray_max_size)

    @classmethod
    def from_mapping(
        cls, section: Mapping[str, Any], where: str = "metrics"
    ) -> SegmentationMetricsConfig:
        """Build from a parsed ``params.yaml`` section.

        Args:
            section: the mapping of settings.
            where: name of the section, used in error messages.

        Raises:
            ValueError: naming ``where`` and the key, for unknown or missing keys or bad values.
        """
        if not isinstance(section, Mapping):
            raise ValueError(
                f"{where}: expected a mapping of settings, got {type(section).__name__}"
            )
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(section) - known)
        if unknown:
            raise ValueError(f"{where}: unknown keys {unknown}; expected some of {sorted(known)}")
        if "num_classes" not in section:
            raise ValueError(f"{where}: missing required key 'num_classes'")
        try:
            return cls(**dict(section))
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from err


class SegmentationMetrics(MetricCollection):
    """Region, boundary and fragment metrics of a split in one collection.

    Args:
        num_classes: number of classes ``C``.
        ignore_index: void target value, or ``None``.
        boundary_ratio: Boundary IoU width as a fraction of the image diagonal.
        connectivity: 4 or 8, for the fragment metrics.
        stray_max_size: if set, only excess components of at most this many pixels are stray.

    Shape:
        - update: ``preds`` and ``targets`` integer ``(B, H, W)`` or ``(H, W)``.
        - compute: flat dict of float64 tensors (see the module docstring).

    Example:
        >>> import torch
        >>> m = SegmentationMetrics(num_classes=2)
        >>> t = torch.zeros(1, 8, 8, dtype=torch.long); t[:, :, 4:] = 1
        >>> m.update(t, t)
        >>> out = m.compute()
        >>> float(out["miou"]), float(out["boundary_miou"]), float(out["excess_components"])
        (1.0, 1.0, 0.0)
    """

    def __init__(
        self,
        num_classes: int,
        ignore_index: int | None = None,
        boundary_ratio: float = 0.02,
        connectivity: int = 8,
        stray_max_size: int | None = None,
    ) -> None:
        super().__init__(
            {
                "confusion": SemanticConfusion(num_classes, ignore_index),
                "boundary": BoundaryIoU(num_classes, ignore_index, boundary_ratio),
                "fragments": Fragmentation(num_classes, ignore_index, connectivity, stray_max_size),
            },
            compute_groups=False,
        )

    @classmethod
    def from_config(cls, config: SegmentationMetricsConfig) -> SegmentationMetrics:
        """Build the collection from its configuration dataclass."""
        return cls(
            config.num_classes,
            config.ignore_index,
            config.boundary_ratio,
            config.connectivity,
            config.stray_max_size,
        )
