"""EfficientNet-Lite0: the shipped ImageNet weights load strictly, are trained, and give a fixed
output; bad weight files are refused naming the file."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cheeger.models.encoders import (
    LITE0_MEAN,
    LITE0_STD,
    TAP_CHANNELS,
    EfficientNetLite0,
    WeightsError,
    lite0_weights_path,
    load_lite0_state,
)
from cheeger.models.encoders import efficientnet_lite as lite

skimage_data = pytest.importorskip("skimage.data")

CATS = {281, 282, 285}  # ImageNet: tabby, tiger cat, Egyptian cat
ESPRESSO = 967


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def classifier():
    return EfficientNetLite0("imagenet", classifier=True).eval()


def _photo(image: np.ndarray, mean=LITE0_MEAN, std=LITE0_STD) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float()[None] / 255
    x = F.interpolate(x, size=(224, 224), mode="bilinear", antialias=True, align_corners=False)
    mean, std = torch.tensor(mean), torch.tensor(std)
    return (x - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)  # (1, 3, 224, 224)


def test_every_tensor_of_the_shipped_file_is_loaded_unchanged(classifier):
    state = load_lite0_state(lite0_weights_path())
    own = classifier.state_dict()
    assert own.keys() == state.keys()
    assert all(torch.equal(own[k], state[k]) for k in state)
    params = sum(p.numel() for p in classifier.parameters())
    assert params == 4_652_008  # the file's 4.65 M parameters (the 4.69 M is approximate)


def test_logits_and_taps_on_a_fixed_input_match_the_recorded_checksum(classifier):
    x = torch.randn(2, 3, 96, 128, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits, taps = classifier(x), classifier.forward_taps(x)
    assert logits.sum().item() == pytest.approx(-71.74130249023438, rel=1e-4)
    assert logits.norm().item() == pytest.approx(39.42824935913086, rel=1e-4)
    norms = [t.double().norm().item() for t in taps]
    assert norms == pytest.approx([2530.3404, 1033.1737, 456.14269, 129.55262], rel=1e-4)


def test_real_photos_get_their_imagenet_class(classifier):
    with torch.no_grad():
        p = classifier(torch.cat([_photo(skimage_data.chelsea()),
                                  _photo(skimage_data.coffee())])).softmax(-1)  # fmt: skip
    assert set(p[0].topk(3).indices.tolist()) == CATS and p[0, list(CATS)].sum() > 0.9
    assert p[1].argmax().item() == ESPRESSO and p[1, ESPRESSO] > 0.5


def _batch_norm_mismatch(classifier, x: torch.Tensor) -> float:
    """Mean over the batch norms of ``|batch mean - running mean| / running std`` of their
    inputs (channels with a running variance above 1e-4): how far ``x`` is from the input
    distribution the weights were trained on."""
    gaps = []

    def hook(module, inputs, _):
        keep = module.running_var > 1e-4
        mean = inputs[0].mean((0, 2, 3))[keep]
        gaps.append(((mean - module.running_mean[keep]).abs()
                     / module.running_var[keep].sqrt()).mean())  # fmt: skip

    norms = [m for m in classifier.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    handles = [m.register_forward_hook(hook) for m in norms]
    try:
        with torch.no_grad():
            classifier(x)
    finally:
        for handle in handles:
            handle.remove()
    return float(torch.stack(gaps).mean())


def test_inputs_are_normalised_as_the_lite_weights_were_trained():
    """(x - 127) / 128, not ImageNet's per-channel statistics: the batch norms' inputs agree
    with their running statistics clearly better (measured 0.22 against 0.30 running standard
    deviations on these four photos); the test fails with ImageNet's constants."""
    classifier = EfficientNetLite0("imagenet", classifier=True).eval()
    photos = [skimage_data.chelsea(), skimage_data.coffee(), skimage_data.astronaut(),
              skimage_data.rocket()]  # fmt: skip
    rgb = torch.cat([_photo(p, (0.0,) * 3, (1.0,) * 3) for p in photos])  # (4, 3, 224, 224)

    def mismatch(mean, std):
        shift, scale = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)
        return _batch_norm_mismatch(classifier, (rgb - shift) / scale)

    ours = mismatch(LITE0_MEAN, LITE0_STD)
    imagenet = mismatch((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    assert ours < 0.8 * imagenet, (ours, imagenet)


def test_same_padding_is_the_one_the_weights_were_trained_with(classifier, monkeypatch):
    x = _photo(skimage_data.chelsea())
    with torch.no_grad():
        same = classifier(x).softmax(-1)[0, list(CATS)].sum()

        def symmetric(self, x):
            pad = tuple(k // 2 for k in self.kernel_size)
            return F.conv2d(x, self.weight, self.bias, self.stride, pad, 1, self.groups)

        monkeypatch.setattr(lite._Conv2dSame, "forward", symmetric)
        sym = classifier(x).softmax(-1)[0, list(CATS)].sum()
    assert same > sym  # measured: top-1 Egyptian cat 0.80 with "same", 0.64 with k // 2


def test_batch_norm_statistics_are_trained_not_at_their_initial_values(classifier):
    norms = [m for m in classifier.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(norms) == 1 + 15 * 3 + 2 + 1  # stem, expanded blocks, block 0, head
    for m in norms:
        assert m.eps == 1e-3
        assert not torch.allclose(m.running_var, torch.ones_like(m.running_var))
        assert not torch.allclose(m.running_mean, torch.zeros_like(m.running_mean))


@pytest.mark.parametrize("size", [(64, 96), (33, 47), (360, 480)])
def test_taps_have_strides_4_to_32_rounded_up(size):
    encoder = EfficientNetLite0(weights=None).eval()
    with torch.no_grad():
        taps = encoder.forward_taps(torch.rand(1, 3, *size))
    expected = [(1, c, -(-size[0] // s), -(-size[1] // s))
                for c, s in zip(TAP_CHANNELS, (4, 8, 16, 32), strict=True)]  # fmt: skip
    assert [tuple(t.shape) for t in taps] == expected


def test_without_classifier_the_head_is_dropped_after_a_strict_load():
    encoder = EfficientNetLite0("imagenet", classifier=False)
    assert not any(k.startswith(("_fc", "_conv_head", "_bn1.")) for k in encoder.state_dict())
    with pytest.raises(RuntimeError, match="classifier=False"):
        encoder(torch.rand(1, 3, 32, 32))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        encoder.forward_taps(torch.rand(3, 32, 32))


def test_missing_weight_file_is_named(tmp_path):
    path = tmp_path / "nowhere.pth"
    with pytest.raises(WeightsError, match=f"{path}.*not found"):
        EfficientNetLite0(path)


def test_corrupt_weight_file_is_named(tmp_path):
    path = tmp_path / "corrupt.pth"
    path.write_bytes(lite0_weights_path().read_bytes()[:100_000])  # a cut-off download
    with pytest.raises(WeightsError, match=f"{path}: not a readable torch state dict"):
        EfficientNetLite0(path)
    path.write_bytes(b"\x00" * 64)
    with pytest.raises(WeightsError, match=str(path)):
        EfficientNetLite0(path)


def test_weights_of_another_architecture_are_refused_with_the_keys(tmp_path):
    state = load_lite0_state(lite0_weights_path())
    state.pop("_blocks.3._bn1.running_var")
    state["_fc.weight"] = torch.zeros(10, 1280)
    path = tmp_path / "other.pth"
    torch.save(state, path)
    with pytest.raises(WeightsError, match=r"other.pth: not EfficientNet-Lite0 weights; missing "
                       r"keys \['_blocks.3._bn1.running_var'\].*_fc.weight: \(10, 1280\)"):
        EfficientNetLite0(path)
