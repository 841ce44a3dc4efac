"""Evaluation metrics over a whole split: region IoU, Boundary IoU and fragmentation.

Every metric is a torchmetrics ``Metric`` (``update(preds, targets)`` on integer label maps,
``compute()`` returning a dict of tensors), and the list-taking functions run the same metric
over a split.
"""

from __future__ import annotations

from cheeger.metrics.boundary import (
    BoundaryIoU,
    boundary_counts,
    boundary_iou,
    boundary_width,
    label_boundaries,
)
from cheeger.metrics.confusion import (
    SemanticConfusion,
    confusion_matrix,
    iou_from_counts,
    mean_iou,
    scores_from_confusion,
)
from cheeger.metrics.fragments import Fragmentation, class_fragments, fragment_stats
from cheeger.metrics.segmentation import SegmentationMetrics, SegmentationMetricsConfig

__all__ = [
    "BoundaryIoU",
    "Fragmentation",
    "SegmentationMetrics",
    "SegmentationMetricsConfig",
    "SemanticConfusion",
    "boundary_counts",
    "boundary_iou",
    "boundary_width",
    "class_fragments",
    "confusion_matrix",
    "fragment_stats",
    "iou_from_counts",
    "label_boundaries",
    "mean_iou",
    "scores_from_confusion",
]
