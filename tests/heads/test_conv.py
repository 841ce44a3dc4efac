from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from cheeger.heads import ConvHead, block_mean, conv_head, resize_logits


@settings(max_examples=20, deadline=None)
@given(c=st.integers(1, 6), k=st.integers(1, 5), h=st.integers(1, 7), w=st.integers(1, 7))
def test_conv_head_is_a_per_pixel_linear_map(c, k, h, w):
    g = torch.Generator().manual_seed(c * 100 + k * 10 + h + w)
    features = torch.randn(2, c, h, w, generator=g, dtype=torch.float64)
    weight = torch.randn(k, c, 1, 1, generator=g, dtype=torch.float64)
    bias = torch.randn(k, generator=g, dtype=torch.float64)
    expected = torch.einsum("kc,bchw->bkhw", weight[:, :, 0, 0], features) + bias[:, None, None]
    torch.testing.assert_close(conv_head(features, weight, bias, (h, w)), expected)


def test_upsampling_is_bilinear_on_logits():
    features = torch.randn(1, 3, 4, 5, dtype=torch.float64)
    weight, bias = torch.randn(2, 3, 1, 1, dtype=torch.float64), None
    out = conv_head(features, weight, bias, (8, 15))
    expected = F.interpolate(F.conv2d(features, weight), size=(8, 15), mode="bilinear",
                             align_corners=False)  # fmt: skip
    torch.testing.assert_close(out, expected)
    assert resize_logits(expected, (8, 15)) is expected  # same size: untouched


def test_module_matches_function_and_counts_parameters():
    head = ConvHead(8, 5)
    features = torch.randn(2, 8, 6, 7)
    out = head(features, (6, 7))
    expected = conv_head(features, head.classifier.weight, head.classifier.bias, (6, 7))
    assert torch.equal(out.logits, expected) and out.losses == {} and out.internals == {}
    assert sum(p.numel() for p in head.parameters()) == 8 * 5 + 5
    out.logits.sum().backward()
    assert head.classifier.weight.grad.abs().sum() > 0 and head.classifier.bias.grad.abs().sum() > 0


def test_shape_errors_name_both_tensors():
    with pytest.raises(ValueError, match=r"features \(2, 3, 4, 4\) and weight \(2, 5, 1, 1\)"):
        conv_head(torch.zeros(2, 3, 4, 4), torch.zeros(2, 5, 1, 1), None, (4, 4))


@pytest.mark.parametrize("shape, stride", [((2, 3, 8, 12), 2), ((1, 2, 9, 12), 3),
                                           ((2, 3, 7, 10), 2), ((1, 1, 5, 5), 1)])  # fmt: skip
def test_block_mean_is_ceil_mode_average_pooling(shape, stride):
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    expected = F.avg_pool2d(x, stride, ceil_mode=True)
    got = block_mean(x, stride)
    torch.testing.assert_close(got, expected, rtol=1e-14, atol=1e-14)
    g = torch.randn_like(expected)
    (a,) = torch.autograd.grad(got, x, g)
    (b,) = torch.autograd.grad(expected, x, g)
    torch.testing.assert_close(a, b, rtol=1e-14, atol=1e-14)
