"""Models chosen by encoder name, from settings to a trained and evaluated run."""

from __future__ import annotations

import pytest
import torch

from cheeger.config import DataConfig, EvaluateConfig, ModelConfig, ParamsError, TrainConfig
from cheeger.data import prepare
from cheeger.evaluate import evaluate_run
from cheeger.models import (
    LiteFPN,
    ModelSpecError,
    UNet,
    build_model,
    check_model_spec,
    model_from_spec,
)
from cheeger.training import CHECKPOINT, RunMismatchError, RunSpec, load_checkpoint, train

TINY = {
    "profile": "tiny",
    "profiles": {"tiny": {"dataset": "synthetic", "root": None, "resolution": [32, 40]}},
    "data": {"synthetic": {"seed": 3, "size": [32, 40],
                           "splits": {"train": 4, "val": 2, "test": 2}}},
}  # fmt: skip


pytestmark = pytest.mark.usefixtures("one_thread")


def test_encoder_name_picks_the_model_and_ignores_the_other_encoders_settings():
    unet = build_model("unet", 3, depth=1, width=4, norm="none", decoder_width=8)
    lite = build_model("efficientnet_lite0", 3, depth=1, width=4, decoder_width=8,
                       weights=None)  # fmt: skip
    assert type(unet) is UNet and type(lite) is LiteFPN and lite.width == 8
    with pytest.raises(ValueError, match="encoder must be one of"):
        build_model("resnet", 3)
    assert type(model_from_spec({**unet.spec()})) is UNet  # old specs have no encoder key
    with pytest.raises(ModelSpecError, match="encoder must be one of"):
        model_from_spec({"encoder": "resnet"})


def test_a_checkpoint_of_another_architecture_is_refused_naming_file_and_expectation():
    lite = LiteFPN(3, decoder_width=8, weights=None).spec()
    check_model_spec(lite, dict(lite), "run/best.pt")  # the same: accepted
    with pytest.raises(ModelSpecError, match=r"run/best.pt: .*decoder_width is 8, expected 64"):
        check_model_spec(lite, {**lite, "decoder_width": 64}, "run/best.pt")
    unet = UNet(3, depth=1, width=4).spec()
    with pytest.raises(ModelSpecError, match=r"x.pt: .*encoder is 'unet', expected "
                       "'efficientnet_lite0'"):  # fmt: skip
        check_model_spec(unet, lite, "x.pt")


def test_settings_parse_the_encoder_keys_and_name_a_bad_one():
    params = {**TINY, "model": {"encoder": "efficientnet_lite0", "decoder_width": 32}}
    config = ModelConfig.from_params(params)
    assert (config.encoder, config.decoder_width, config.freeze_encoder) == (
        "efficientnet_lite0", 32, True)  # fmt: skip
    for key, value in (("encoder", "resnet"), ("freeze_encoder", "yes"), ("decoder_width", 0)):
        with pytest.raises(ParamsError, match=f"model.{key}"):
            ModelConfig.from_params({**TINY, "model": {key: value}})


def test_a_unet_runs_identity_has_no_encoder_keys_so_older_runs_still_resume(tmp_path):
    (tmp_path / "manifest.json").write_text("{}")
    unet = RunSpec(data=tmp_path, out=tmp_path, head="conv", seed=0).identity()["model"]
    assert set(unet) == {"depth", "width", "norm", "groups"}
    lite = RunSpec(data=tmp_path, out=tmp_path, head="conv", seed=0,
                   model=ModelConfig(encoder="efficientnet_lite0")).identity()["model"]  # fmt: skip
    assert lite == {"encoder": "efficientnet_lite0", "decoder_width": 64, "freeze_encoder": True,
                    "features": None, "encoder_input": {"mean": [127 / 255] * 3,
                                                        "std": [128 / 255] * 3}}  # fmt: skip


def test_a_frozen_lite0_run_trains_evaluates_and_refuses_a_unet_resume(tmp_path):
    data = tmp_path / "data"
    prepare(DataConfig.from_params(TINY), data)
    spec = RunSpec(
        data=data, out=tmp_path / "run", head="conv", seed=0,
        model=ModelConfig(encoder="efficientnet_lite0", decoder_width=8),
        train=TrainConfig(epochs=1, batch_size=2, lr=0.01, device="cpu"),
        evaluate=EvaluateConfig(batch_size=2), progress=False, echo=False, live=False,
    )  # fmt: skip
    final = train(spec)
    state = load_checkpoint(spec.out / CHECKPOINT)
    assert state["model_spec"]["encoder"] == "efficientnet_lite0"
    # the encoder is the ImageNet one, untouched by training
    from cheeger.models.encoders import lite0_weights_path, load_lite0_state

    shipped = load_lite0_state(lite0_weights_path())
    encoder = {k[len("encoder."):]: v for k, v in state["model"].items()
               if k.startswith("encoder.")}  # fmt: skip
    assert encoder and all(torch.equal(v, shipped[k]) for k, v in encoder.items())
    assert final["parameters"]["total"] < 100_000  # decoder + head only
    metrics = evaluate_run(spec.out, data, "test", EvaluateConfig(batch_size=2), "cpu")
    assert 0.0 <= metrics["miou"] <= 1.0
    other = RunSpec(**{**spec.__dict__, "model": ModelConfig()})
    with pytest.raises(RunMismatchError, match=f"{spec.out / CHECKPOINT}.*model"):
        train(other)
