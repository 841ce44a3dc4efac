"""The metric collection used by evaluation, and its configuration."""

from __future__ import annotations

import pytest
import torch

from cheeger.metrics import (
    SegmentationMetrics,
    SegmentationMetricsConfig,
    boundary_iou,
    fragment_stats,
    mean_iou,
)

EXPECTED_KEYS = {
    "iou",
    "miou",
    "pixel_accuracy",
    "class_accuracy",
    "boundary_iou",
    "boundary_miou",
    *(
        f"{prefix}{name}"
        for prefix in ("", "gt_")
        for name in (
            "excess_components",
            "excess_components_per_class",
            "stray_pixels",
            "stray_fraction",
        )
    ),
}


def test_collection_equals_the_separate_metrics(make_split) -> None:
    preds, targets = make_split(10, [(24, 32)] * 3 + [(18, 40)] * 2, 11, 11, absent=[4])
    config = SegmentationMetricsConfig(num_classes=11, ignore_index=11, boundary_ratio=0.05)
    metrics = SegmentationMetrics.from_config(config)
    metrics.update(torch.stack(preds[:3]), torch.stack(targets[:3]))
    for p, t in zip(preds[3:], targets[3:], strict=True):
        metrics.update(p, t)
    out = metrics.compute()
    assert set(out) == EXPECTED_KEYS
    assert all(v.dtype == torch.float64 for v in out.values())

    same = {"equal_nan": True, "rtol": 0, "atol": 0}
    torch.testing.assert_close((out["iou"], out["miou"]), mean_iou(preds, targets, 11, 11), **same)
    torch.testing.assert_close(
        (out["boundary_iou"], out["boundary_miou"]),
        boundary_iou(preds, targets, 11, 11, ratio=0.05),
        **same,
    )
    for key, value in fragment_stats(preds, targets, 11, 11).items():
        torch.testing.assert_close(out[key], value, **same)
    assert torch.isnan(out["iou"][4]) and torch.isnan(out["boundary_iou"][4])

    metrics.reset()
    metrics.update(targets[0].clamp_max(10), targets[0].clamp_max(10))
    assert metrics.compute()["miou"] == 1


def test_config_from_mapping() -> None:
    config = SegmentationMetricsConfig.from_mapping(
        {"num_classes": 19, "ignore_index": 255, "connectivity": 4, "stray_max_size": 50}
    )
    assert config == SegmentationMetricsConfig(19, 255, 0.02, 4, 50)
    with pytest.raises(ValueError, match=r"evaluate: unknown keys \['ratio'\]"):
        SegmentationMetricsConfig.from_mapping({"num_classes": 3, "ratio": 0.1}, "evaluate")
    with pytest.raises(ValueError, match="missing required key 'num_classes'"):
        SegmentationMetricsConfig.from_mapping({})
    with pytest.raises(ValueError, match="metrics: connectivity must be 4 or 8"):
        SegmentationMetricsConfig.from_mapping({"num_classes": 3, "connectivity": 6})
    with pytest.raises(ValueError, match="metrics: boundary ratio"):
        SegmentationMetricsConfig.from_mapping({"num_classes": 3, "boundary_ratio": -1.0})
    with pytest.raises(ValueError, match="expected a mapping"):
        SegmentationMetricsConfig.from_mapping([("num_classes", 3)])
