from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cheeger.models import FPNDecoder, fpn_merge

CHANNELS = (24, 40, 112, 320)


def _taps(h, w, batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, c, -(-h // 2**i), -(-w // 2**i), generator=g)
            for i, c in enumerate(CHANNELS)]  # fmt: skip


@settings(max_examples=8, deadline=None)
@given(h=st.integers(1, 23), w=st.integers(1, 23))
def test_output_is_width_channels_at_the_finest_taps_size(h, w):
    decoder = FPNDecoder(CHANNELS, width=8).eval()
    assert decoder(_taps(h, w)).shape == (2, 8, h, w)


def test_merge_adds_the_upsampled_coarser_map_to_each_finer_one():
    fine, coarse = torch.zeros(1, 1, 4, 4), torch.arange(4.0).view(1, 1, 2, 2)
    coarsest = torch.full((1, 1, 1, 1), 10.0)
    merged = fpn_merge([fine, coarse, coarsest])
    up = torch.nn.functional.interpolate(coarse + 10, size=(4, 4), mode="bilinear")
    torch.testing.assert_close(merged, up)


def test_every_tap_reaches_the_output():
    decoder = FPNDecoder(CHANNELS, width=4)
    taps = [t.requires_grad_() for t in _taps(8, 12)]
    decoder(taps).square().sum().backward()
    assert all(t.grad is not None and t.grad.abs().sum() > 0 for t in taps)


def test_wrong_taps_are_refused_with_the_expected_channels():
    decoder = FPNDecoder(CHANNELS, width=4)
    with pytest.raises(ValueError, match=r"expected 4 taps .*C = \[24, 40, 112, 320\]"):
        decoder(_taps(8, 8)[:3])
    taps = _taps(8, 8)
    taps[1] = taps[1][:, :39]
    with pytest.raises(ValueError, match="C = "):
        decoder(taps)
    with pytest.raises(ValueError, match="width must be an int >= 1"):
        FPNDecoder(CHANNELS, width=0)
