"""The pretrained-encoder model: shapes with both heads, input normalisation, frozen and
fine-tuned modes, cached taps, spec round trip."""

from __future__ import annotations

import pytest
import torch

from cheeger.models import LiteFPN, model_from_spec, parameter_counts
from cheeger.models.encoders import LITE0_MEAN, LITE0_STD

SPECTRAL = {"stride": 2, "k": 4, "graph_channels": 4, "rank": 2}
DATA_MEAN, DATA_STD = (0.40, 0.42, 0.43), (0.30, 0.31, 0.30)  # like a prepared manifest's


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def frozen():
    torch.manual_seed(0)
    return LiteFPN(3, decoder_width=8, input_mean=DATA_MEAN, input_std=DATA_STD)


@pytest.mark.parametrize("head, options", [("conv", {}), ("spectral", SPECTRAL)])
def test_both_heads_give_full_size_logits_from_the_stride_4_map(head, options):
    torch.manual_seed(0)
    model = LiteFPN(5, decoder_width=8, weights=None, head=head, head_options=options).eval()
    x = torch.rand(2, 3, 70, 90)
    assert model.forward_features(x).shape == (2, 8, 18, 23)
    out = model(x)
    assert out.logits.shape == (2, 5, 70, 90)
    if head == "spectral":
        assert out.internals["eigenvalues"].shape == (2, 4)
        assert tuple(out.internals["graph_size"].tolist()) == (9, 12)  # stride 8 of the input


def test_data_normalised_input_reaches_the_encoder_in_its_own_normalisation(frozen):
    rgb = torch.rand(1, 3, 32, 48)  # in [0, 1]

    def normalise(mean, std):
        return (rgb - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)

    with torch.no_grad():
        taps = frozen.encode(normalise(DATA_MEAN, DATA_STD))
        ref = frozen.encoder.forward_taps(normalise(LITE0_MEAN, LITE0_STD))
    for t, r in zip(taps, ref, strict=True):
        torch.testing.assert_close(t, r, atol=1e-4, rtol=1e-4)


def test_frozen_encoder_gets_no_gradient_and_keeps_its_statistics(frozen):
    frozen.train()
    assert not frozen.encoder.training and frozen.decoder.training
    before = {k: v.clone() for k, v in frozen.encoder.state_dict().items()}
    frozen.zero_grad()
    frozen(torch.rand(2, 3, 32, 48)).logits.square().mean().backward()
    assert all(p.grad is None for p in frozen.encoder.parameters())
    assert all(p.grad is not None for p in [*frozen.decoder.parameters(),
                                            *frozen.head.parameters()])  # fmt: skip
    after = frozen.encoder.state_dict()
    taps = frozen.encode(torch.rand(1, 3, 32, 32, requires_grad=True))
    assert all(t.grad_fn is None for t in taps)  # no autograd graph is kept for the encoder
    assert all(torch.equal(before[k], after[k]) for k in before)
    counts = parameter_counts(frozen)
    assert counts["total"] == sum(p.numel() for p in [*frozen.decoder.parameters(),
                                                      *frozen.head.parameters()])  # fmt: skip


def test_fine_tuned_encoder_gets_gradients_and_updates_its_statistics():
    torch.manual_seed(0)
    model = LiteFPN(3, decoder_width=8, freeze_encoder=False).train()
    before = model.encoder._bn0.running_mean.clone()
    model(torch.rand(2, 3, 32, 48)).logits.square().mean().backward()
    assert model.encoder.training
    assert all(p.grad is not None for p in model.encoder.parameters())
    assert not torch.equal(before, model.encoder._bn0.running_mean)


def test_float16_cached_taps_give_the_same_logits_as_the_images(frozen):
    frozen.eval()
    x = torch.rand(2, 3, 40, 56)
    with torch.no_grad():
        direct = frozen(x).logits
        taps = [t.half() for t in frozen.encode(x)]  # what a cache stores
        cached = frozen.forward_from_taps(taps, x.shape[-2:]).logits
    torch.testing.assert_close(cached, direct, atol=2e-2, rtol=1e-2)


def test_spec_rebuilds_the_same_function_without_reading_the_weight_file(frozen, monkeypatch):
    frozen.eval()
    import cheeger.models.encoders.efficientnet_lite as lite

    def no_file():
        raise AssertionError("from_spec must not read the ImageNet file")

    monkeypatch.setattr(lite, "lite0_weights_path", no_file)
    clone = model_from_spec(frozen.spec()).eval()
    clone.load_state_dict(frozen.state_dict())
    x = torch.rand(1, 3, 32, 40)
    with torch.no_grad():
        assert torch.equal(clone(x).logits, frozen(x).logits)
    assert clone.spec() == frozen.spec()


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="input_std must be 3 numbers"):
        LiteFPN(3, weights=None, input_std=(0.2, 0.0, 0.2))
    with pytest.raises(ValueError, match="num_classes"):
        LiteFPN(0, weights=None)
    with pytest.raises(ValueError, match=r"expected input \(B, 3, H, W\)"):
        LiteFPN(3, weights=None).encode(torch.rand(1, 4, 8, 8))
