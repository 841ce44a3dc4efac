from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cheeger import heads
from cheeger.heads import ConvHead
from cheeger.models import UNet, parameter_counts, parameter_parity


@settings(max_examples=8, deadline=None)
@given(h=st.integers(5, 19), w=st.integers(5, 19), depth=st.integers(1, 3),
       norm=st.sampled_from(["batch", "group", "none"]))  # fmt: skip
def test_features_and_logits_are_full_resolution_for_any_size(h, w, depth, norm):
    h, w = max(h, 2**depth), max(w, 2**depth)
    model = UNet(4, depth=depth, width=4, norm=norm, groups=2).eval()
    x = torch.rand(2, 3, h, w)
    assert model.forward_features(x).shape == (2, 4, h, w)
    assert model(x).logits.shape == (2, 4, h, w)


def test_channel_layout_and_parameter_count_match_the_formula():
    width, depth, k = 4, 2, 3
    model = UNet(k, depth=depth, width=width, norm="none")
    c = [width * 2**i for i in range(depth + 1)]

    def double(cin, cout):  # two 3x3 convolutions with bias
        return 9 * cin * cout + cout + 9 * cout * cout + cout

    backbone = double(3, c[0]) + sum(double(c[i], c[i + 1]) for i in range(depth))
    backbone += sum(double(c[i + 1] + c[i], c[i]) for i in range(depth))
    assert parameter_counts(model) == {"backbone": backbone, "head": width * k + k,
                                       "total": backbone + width * k + k}  # fmt: skip


def test_spec_rebuilds_an_identical_model():
    torch.manual_seed(0)
    model = UNet(5, depth=2, width=4, norm="group", groups=2).eval()
    clone = UNet.from_spec(model.spec()).eval()
    clone.load_state_dict(model.state_dict())
    x = torch.rand(1, 3, 16, 12)
    assert torch.equal(model(x).logits, clone(x).logits)


def test_channels_last_gives_the_same_function():
    torch.manual_seed(1)
    model = UNet(3, depth=2, width=4).eval()
    x = torch.rand(2, 3, 20, 18)
    ref = model(x).logits
    fast = model.to(memory_format=torch.channels_last)(x.contiguous(
        memory_format=torch.channels_last)).logits  # fmt: skip
    torch.testing.assert_close(fast, ref, atol=1e-5, rtol=1e-4)


def test_every_parameter_receives_a_gradient():
    model = UNet(3, depth=2, width=4, norm="batch")
    model(torch.rand(2, 3, 16, 16)).logits.square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_seed_determines_initialisation():
    torch.manual_seed(3)
    a = UNet(3, depth=1, width=4)
    torch.manual_seed(3)
    b = UNet(3, depth=1, width=4)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"depth": 0}, "depth must be an int >= 1"), ({"width": 2.5}, "width must be an int"),
     ({"norm": "layer"}, "norm must be one of"), ({"norm": "group", "width": 6, "groups": 4},
     r"groups \(4\) must divide width \(6\)"), ({"head": "nope"}, "unknown head 'nope'"),
     ({"head": ConvHead(8, 3)}, "head expects 8 channels")],
)  # fmt: skip
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        UNet(3, **{"width": 4, **kwargs})


def test_input_shape_error():
    with pytest.raises(ValueError, match=r"expected input \(B, 3, H, W\), got \(3, 8, 8\)"):
        UNet(2, depth=1, width=4).forward_features(torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match=r"input \(7, 9\) is smaller than 2 \*\* depth = 8"):
        UNet(2, depth=3, width=4)(torch.rand(1, 3, 7, 9))


class _Wide(ConvHead):
    """A conv head with ``extra`` unused parameters, to move the parity."""

    def __init__(self, in_channels, num_classes, extra=0):
        super().__init__(in_channels, num_classes)
        self.extra = torch.nn.Parameter(torch.zeros(extra))


def test_parameter_parity_compares_whole_models_and_keeps_the_rng(monkeypatch):
    monkeypatch.setitem(heads._REGISTRY, "wide", _Wide)
    model = UNet(3, depth=1, width=4, norm="none")
    total = parameter_counts(model)["total"]
    state = torch.get_rng_state()
    small = parameter_parity(model, {"wide": {"extra": total // 50}})
    assert torch.equal(torch.get_rng_state(), state)
    assert small["totals"] == {"conv": total, "wide": total + total // 50}
    assert small["ok"] and small["spread"] == pytest.approx((total // 50) / total)
    large = parameter_parity(model, {"wide": {"extra": total // 10}})
    assert not large["ok"] and large["spread"] > 0.05
