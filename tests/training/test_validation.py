from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from cheeger.metrics import SegmentationMetrics, boundary_iou, mean_iou
from cheeger.models import UNet
from cheeger.training import (
    SCALAR_METRICS,
    ForwardTimer,
    evaluate_model,
    metrics_summary,
    predict_native,
)


class _Fake:
    """Stand-in for a PreparedDataset with native labels of a different size per image."""

    native, split = True, "val"

    def __init__(self):
        g = torch.Generator().manual_seed(0)
        self.items = [{"image": torch.randn(3, 8, 10, generator=g), "index": i, "id": str(i),
                       "label": torch.zeros(8, 10, dtype=torch.long),
                       "native_label": torch.randint(0, 3, size, generator=g)}
                      for i, size in enumerate([(16, 20), (8, 10), (12, 15)])]  # fmt: skip

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def test_predictions_are_argmax_of_bilinearly_upsampled_logits():
    torch.manual_seed(0)
    model = UNet(3, depth=1, width=4).eval()
    images = torch.randn(2, 3, 8, 10)
    preds = predict_native(model, images, [(16, 20), (5, 7)])
    logits = model(images).logits.detach()
    for pred, size, one in zip(preds, [(16, 20), (5, 7)], logits, strict=True):
        up = F.interpolate(one[None], size=size, mode="bilinear", align_corners=False)
        assert torch.equal(pred, up[0].argmax(0))
    with pytest.raises(ValueError, match="2 images but 1 sizes"):
        predict_native(model, images, [(4, 4)])


def test_evaluate_model_matches_the_list_functions_and_restores_train_mode():
    torch.manual_seed(1)
    model = UNet(3, depth=1, width=4).train()
    data = _Fake()
    metrics = SegmentationMetrics(3, ignore_index=None)
    result = evaluate_model(model, data, metrics, batch_size=2, device=torch.device("cpu"))
    assert model.training
    model.eval()
    preds = [predict_native(model, it["image"][None], [it["native_label"].shape])[0]
             for it in data.items]  # fmt: skip
    targets = [it["native_label"] for it in data.items]
    iou, miou = mean_iou(preds, targets, 3)
    _, bmiou = boundary_iou(preds, targets, 3, None)
    torch.testing.assert_close(result["iou"], iou.to(result["iou"].dtype))
    assert float(result["miou"]) == pytest.approx(float(miou))
    assert float(result["boundary_miou"]) == pytest.approx(float(bmiou))
    again = evaluate_model(model, data, metrics, batch_size=3, device=torch.device("cpu"))
    assert float(again["miou"]) == float(result["miou"])  # metrics reset, batch size irrelevant


class _Slow(torch.nn.Module):
    """A model whose forward sleeps ``delay`` seconds per image: the timer must see them."""

    def __init__(self, delay: float):
        super().__init__()
        self.inner, self.delay = UNet(3, depth=1, width=4), delay

    def forward(self, images):
        import time

        time.sleep(self.delay * images.shape[0])
        return self.inner(images)


def test_forward_timer_times_the_forward_without_the_first_batch():
    data = _Fake()
    metrics = SegmentationMetrics(3, ignore_index=None)
    timer = ForwardTimer()
    evaluate_model(_Slow(0.05), data, metrics, batch_size=2, device=torch.device("cpu"),
                   timer=timer)  # fmt: skip
    # batches of 2 and 1 images: the first is warm-up, the second (1 image) is timed
    assert (timer.batches, timer.images, timer.skipped) == (1, 1, 1)
    assert 0.05 <= timer.per_image() < 0.5
    one = ForwardTimer()  # a single batch is timed (nothing else would be)
    evaluate_model(_Slow(0.02), data, metrics, batch_size=3, device=torch.device("cpu"), timer=one)
    assert (one.batches, one.images, one.skipped) == (1, 3, 0) and one.per_image() >= 0.02
    assert ForwardTimer().per_image() is None


def test_metrics_summary_names_classes_and_turns_nan_into_null():
    nan = float("nan")
    result = {name: torch.tensor(0.5) for name in SCALAR_METRICS}
    result["boundary_miou"] = torch.tensor(nan)
    for name in ("iou", "boundary_iou", "excess_components_per_class",
                 "gt_excess_components_per_class"):  # fmt: skip
        result[name] = torch.tensor([0.25, nan])
    summary = metrics_summary(result, ["road", "sky"])
    assert summary["miou"] == 0.5 and summary["boundary_miou"] is None
    assert summary["per_class"]["iou"] == {"road": 0.25, "sky": None}
    assert set(summary["per_class"]) == {"iou", "boundary_iou", "excess_components",
                                         "gt_excess_components"}  # fmt: skip
    assert not any(isinstance(v, float) and math.isnan(v) for v in summary.values())
    with pytest.raises(ValueError):
        metrics_summary(result, ["road"])  # class names must match the per-class length
