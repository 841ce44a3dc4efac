from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cheeger.config import LossWeightsConfig
from cheeger.heads import HeadOutput
from cheeger.losses import trace_connectivity_loss
from cheeger.training import (
    NonFiniteLossError,
    SegmentationLoss,
    check_finite,
    masked_cross_entropy,
    segmentation_loss,
)


def _batch(seed=0, ignore=255):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, 4, 5, 6, generator=g, dtype=torch.float64, requires_grad=True)
    target = torch.randint(0, 4, (2, 5, 6), generator=g)
    target[0, :2] = ignore
    return logits, target


def test_cross_entropy_averages_over_valid_pixels_only():
    logits, target = _batch()
    valid = target != 255
    logp = logits.log_softmax(1).permute(0, 2, 3, 1)[valid]  # (n, K)
    expected = -logp.gather(1, target[valid][:, None]).mean()
    torch.testing.assert_close(masked_cross_entropy(logits, target, 255), expected)
    torch.testing.assert_close(masked_cross_entropy(logits, target, 255),
                               F.cross_entropy(logits, target, ignore_index=255))  # fmt: skip


def test_all_ignored_batch_gives_zero_not_nan():
    logits, _ = _batch()
    loss = masked_cross_entropy(logits, torch.full((2, 5, 6), 255), 255)
    assert float(loss.detach()) == 0.0
    loss.backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))


def test_no_ignore_index_uses_every_pixel():
    logits, target = _batch(ignore=1)
    torch.testing.assert_close(masked_cross_entropy(logits, target, None),
                               F.cross_entropy(logits, target))  # fmt: skip


def test_extra_terms_are_weighted_and_returned_unweighted():
    logits, target = _batch()
    ray, bulk = torch.tensor(0.7, dtype=torch.float64), torch.tensor(3.0, dtype=torch.float64)
    out = HeadOutput(logits, {"rayleigh": ray, "bulk": bulk})
    weights = {"rayleigh": 0.5, "bulk": 0.1, "connectivity": 0.0}
    total, terms = segmentation_loss(out, target, weights, ignore_index=255)
    assert set(terms) == {"ce", "rayleigh", "bulk"}  # connectivity off: not computed
    torch.testing.assert_close(total, terms["ce"] + 0.5 * 0.7 + 0.1 * 3.0)
    assert terms["rayleigh"] is ray


def test_connectivity_term_is_the_trace_loss_of_the_softmax():
    logits, target = _batch()
    total, terms = segmentation_loss(HeadOutput(logits), target, {"connectivity": 2.0},
                                     ignore_index=255)  # fmt: skip
    expected = trace_connectivity_loss(logits.softmax(1))
    torch.testing.assert_close(terms["connectivity"], expected)
    torch.testing.assert_close(total, terms["ce"] + 2.0 * expected)


def test_conv_head_output_has_only_cross_entropy():
    logits, target = _batch()
    loss = SegmentationLoss(LossWeightsConfig(alpha=1.0, beta=1.0), ignore_index=255)
    total, terms = loss(HeadOutput(logits), target, t=10.0)
    assert list(terms) == ["ce"] and total is terms["ce"]


def test_module_applies_the_warmup():
    logits, target = _batch()
    out = HeadOutput(logits, {"rayleigh": torch.tensor(1.0, dtype=torch.float64)})
    loss = SegmentationLoss(LossWeightsConfig(alpha=2.0, warmup_epochs=1, ramp_epochs=2), 255)
    early, terms = loss(out, target, t=0.5)
    late, _ = loss(out, target, t=2.0)
    torch.testing.assert_close(early, terms["ce"])
    torch.testing.assert_close(late, terms["ce"] + 1.0)


def test_unweighted_term_from_a_head_is_an_error():
    logits, target = _batch()
    out = HeadOutput(logits, {"orthogonality": torch.tensor(1.0)})
    with pytest.raises(ValueError, match=r"loss term\(s\) \['orthogonality'\] with no configured"):
        segmentation_loss(out, target, {"rayleigh": 1.0}, ignore_index=255)


def test_check_finite_names_step_epoch_and_term():
    check_finite({"ce": torch.tensor(1.0), "bulk": torch.tensor(0.0)}, 1, 1)
    message = r"step 7 \(epoch 2\): loss term 'rayleigh' is nan"
    with pytest.raises(NonFiniteLossError, match=message):
        check_finite({"ce": torch.tensor(1.0), "rayleigh": torch.tensor(float("nan"))}, 7, 2)
    with pytest.raises(NonFiniteLossError, match="'ce' is inf") as info:
        check_finite({"ce": torch.tensor(float("inf"))}, 3, 1)
    assert (info.value.step, info.value.epoch, info.value.term) == (3, 1, "ce")
