from __future__ import annotations

import pytest
import torch

from cheeger import heads
from cheeger.heads import ConvHead, Head, HeadOutput, build_head, check_head_output, head_names
from cheeger.models import UNet


class _Constant(Head):
    """A head with an extra loss term and an internal, to exercise the contract."""

    def __init__(self, in_channels, num_classes, scale=1.0):
        super().__init__(in_channels, num_classes)
        self.scale = torch.nn.Parameter(torch.tensor(scale))

    def forward(self, features, out_size):
        logits = self.scale * features.mean(1, keepdim=True).expand(-1, self.num_classes, -1, -1)
        logits = torch.nn.functional.interpolate(logits, size=tuple(out_size))
        return HeadOutput(logits, {"bulk": self.scale**2}, {"eigenvalues": torch.zeros(1, 2)})


def test_head_output_defaults_are_independent_dicts():
    a, b = HeadOutput(torch.zeros(1)), HeadOutput(torch.zeros(1))
    a.losses["x"] = torch.tensor(1.0)
    assert b.losses == {} and a.internals == {} and b.internals == {}


def test_head_is_abstract_and_checks_its_sizes():
    with pytest.raises(TypeError, match="abstract"):
        Head(4, 3)
    with pytest.raises(ValueError, match="_Constant: num_classes must be a positive int"):
        _Constant(4, 0)


def test_registry_builds_conv_and_rejects_unknown_and_duplicate_names():
    assert head_names()[0] == "conv"
    assert isinstance(build_head("conv", 6, 2), ConvHead)
    with pytest.raises(ValueError, match=r"unknown head 'nope'; registered heads: \['conv'"):
        build_head("nope", 6, 2)
    with pytest.raises(ValueError, match="already registered"):
        heads.register_head("conv", _Constant)
    with pytest.raises(TypeError, match="unexpected keyword"):
        build_head("conv", 6, 2, stride=4)


def test_registered_head_plugs_into_the_unet(monkeypatch):
    monkeypatch.setitem(heads._REGISTRY, "constant", _Constant)
    model = UNet(3, depth=1, width=4, norm="none", head="constant", head_options={"scale": 2.0})
    out = model(torch.rand(2, 3, 9, 11))
    assert out.logits.shape == (2, 3, 9, 11)
    assert set(out.losses) == {"bulk"} and float(out.losses["bulk"].detach()) == 4.0
    assert model.spec()["head"] == "constant" and model.spec()["head_options"] == {"scale": 2.0}


def test_factory_returning_a_non_head_is_refused(monkeypatch):
    monkeypatch.setitem(heads._REGISTRY, "bad", lambda c, k: torch.nn.Identity())
    with pytest.raises(ValueError, match="factory returned Identity, not a Head"):
        build_head("bad", 4, 2)


def test_check_head_output_names_the_broken_contract():
    good = HeadOutput(torch.zeros(2, 3, 4, 5), {"rayleigh": torch.tensor(0.5)})
    assert check_head_output(good, 2, 3, (4, 5)) is good
    with pytest.raises(TypeError, match="spectral: forward must return a HeadOutput, got Tensor"):
        check_head_output(torch.zeros(1), 2, 3, (4, 5), "spectral")
    with pytest.raises(ValueError, match=r"logits must have shape \(B, K, H, W\) = \(2, 3, 4, 6\)"):
        check_head_output(good, 2, 3, (4, 6))
    bad = HeadOutput(torch.zeros(2, 3, 4, 5), {"bulk": torch.zeros(3)})
    with pytest.raises(ValueError, match=r"loss term 'bulk' must be a scalar tensor, got \(3,\)"):
        check_head_output(bad, 2, 3, (4, 5))


def test_unet_rejects_a_head_that_breaks_the_contract(monkeypatch):
    class Wrong(ConvHead):
        def forward(self, features, out_size):
            return HeadOutput(super().forward(features, out_size).logits[:, :1])

    monkeypatch.setitem(heads._REGISTRY, "wrong", Wrong)
    model = UNet(3, depth=1, width=4, norm="none", head="wrong")
    with pytest.raises(ValueError, match="wrong: logits must have shape"):
        model(torch.rand(1, 3, 8, 8))
