"""Decoder features of a run folder: shape, scale, the similarity pipeline on them, bad runs."""

from __future__ import annotations

import pytest
import torch

from cheeger.demos.decoder import DecoderFeatures
from cheeger.demos.errors import DemoError
from cheeger.demos.similarity import similarity_map
from cheeger.models import UNet
from cheeger.training.checkpoint import save_checkpoint


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    """A run folder holding a U-Net checkpoint as `cheeger train` writes it (best.pt)."""
    run = tmp_path_factory.mktemp("run")
    torch.manual_seed(0)
    model = UNet(num_classes=3, depth=2, width=4)
    save_checkpoint(run / "best.pt", {"model_spec": model.spec(), "model": model.state_dict()})
    return run


def test_run_features_feed_the_same_pipeline(run_folder):
    features = DecoderFeatures(run_folder)
    image = torch.rand(3, 48, 64)
    f = features(image, (24, 32))  # (width, h, w)
    assert f.shape == (4, 24, 32) and torch.isfinite(f).all()
    # standardised, scaled to the seven handcrafted dimensions' total variance
    assert float(f.reshape(4, -1).var(1).sum()) == pytest.approx(7.0, rel=1e-4)
    result = similarity_map(image, (5, 5), long_side=32, k=4, features=features)
    assert result.similarity.shape == (24, 32) and torch.isfinite(result.similarity).all()


def test_last_checkpoint_when_no_best(run_folder, tmp_path):
    (tmp_path / "checkpoint.pt").write_bytes((run_folder / "best.pt").read_bytes())
    assert DecoderFeatures(tmp_path)(torch.rand(3, 16, 16), (8, 8)).shape == (4, 8, 8)


def test_unusable_checkpoint_is_named(tmp_path):
    (tmp_path / "best.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(DemoError, match=r"best\.pt: not a usable checkpoint"):
        DecoderFeatures(tmp_path)
