"""The model:, train:, spectral: (loss weights) and evaluate: sections and profile overrides."""

from __future__ import annotations

import copy

import pytest

from cheeger.config import (
    HEAD_OPTION_READERS,
    EvaluateConfig,
    LossWeightsConfig,
    ModelConfig,
    ParamsError,
    TrainConfig,
    head_options,
    load_params,
)

BASE = {
    "profile": "small",
    "profiles": {
        "small": {"dataset": "synthetic", "root": None, "resolution": [32, 40]},
        "big": {"dataset": "synthetic", "root": None, "resolution": [64, 80], "epochs": 40,
                "device": "cpu", "model": {"width": 16}, "spectral": {"alpha": 0.5}},
        "both": {"dataset": "synthetic", "root": None, "resolution": [8, 8], "epochs": 3,
                 "train": {"epochs": 4}},
    },
    "model": {"depth": 2, "width": 8, "norm": "group", "groups": 4},
    "train": {"epochs": 7, "lr": 0.01, "grad_clip": 1.5},
    "spectral": {"alpha": 0.2, "beta": 0.0, "graph_stride": 4},  # graph_stride: the head's key
    "evaluate": {"checkpoint": "last", "boundary_ratio": 0.03},
}  # fmt: skip


def test_repository_params_match_the_dataclass_defaults(repo_root):
    # the shared sections carry the defaults; profiles may override them (e.g. the embedded
    # profile's shorter schedule), so they are stripped to their data keys here
    params = load_params(repo_root / "params.yaml")
    params["profiles"] = {
        name: {key: block[key] for key in ("dataset", "root", "resolution") if key in block}
        for name, block in params["profiles"].items()
    }
    for cls in (ModelConfig, TrainConfig, LossWeightsConfig, EvaluateConfig):
        assert cls.from_params(params) == cls(), cls.__name__


def test_shared_sections_and_defaults():
    assert ModelConfig.from_params(BASE) == ModelConfig(depth=2, width=8, norm="group", groups=4)
    train = TrainConfig.from_params(BASE)
    assert (train.epochs, train.lr, train.grad_clip, train.batch_size) == (7, 0.01, 1.5, 8)
    loss = LossWeightsConfig.from_params(BASE)  # other spectral keys belong to the head
    assert (loss.alpha, loss.beta, loss.gamma) == (0.2, 0.0, LossWeightsConfig().gamma)
    assert EvaluateConfig.from_params(BASE) == EvaluateConfig(checkpoint="last",
                                                              boundary_ratio=0.03)  # fmt: skip


def test_profile_blocks_override_keys_and_shorthands():
    assert ModelConfig.from_params(BASE, "big").width == 16
    assert ModelConfig.from_params(BASE, "big").depth == 2  # the rest stays shared
    train = TrainConfig.from_params(BASE, "big")
    assert (train.epochs, train.device, train.lr) == (40, "cpu", 0.01)
    assert LossWeightsConfig.from_params(BASE, "big").alpha == 0.5
    with pytest.raises(ParamsError, match=r"profiles\.both\.epochs: given twice \(also as "
                                          r"profiles\.both\.train\.epochs\)"):  # fmt: skip
        TrainConfig.from_params(BASE, "both")


@pytest.mark.parametrize(
    ("edit", "cls", "message"),
    [(("model", "norm", "layer"), ModelConfig, r"model\.norm: expected one of \['batch'"),
     (("model", "groups", 3), ModelConfig, r"model\.groups: expected a divisor of model\.width"),
     (("model", "colour", 1), ModelConfig, r"model: unknown key\(s\) \['colour'\]"),
     (("train", "lr", "1e-3"), TrainConfig, r"train\.lr: expected a positive number; write "
      r"exponents with a dot, 1\.0e-3: YAML reads 1e-3 as a string, got '1e-3'"),
     (("train", "epochs", 0), TrainConfig, r"train\.epochs: expected an int >= 1, got 0"),
     (("train", "device", "gpu"), TrainConfig, r"train\.device: expected auto, cpu, cuda"),
     (("train", "select", "loss"), TrainConfig, r"train\.select: expected miou or boundary_miou"),
     (("train", "channels_last", "yes"), TrainConfig, r"train\.channels_last: expected true"),
     (("spectral", "alpha", -1), LossWeightsConfig, r"spectral\.alpha: expected a number >= 0"),
     (("evaluate", "connectivity", 6), EvaluateConfig, r"evaluate\.connectivity: expected 4 or 8"),
     (("evaluate", "checkpoint", "first"), EvaluateConfig, r"evaluate\.checkpoint: expected best"),
     ],
)  # fmt: skip
def test_malformed_keys_are_named(edit, cls, message):
    params = copy.deepcopy(BASE)
    section, key, value = edit
    params[section][key] = value
    with pytest.raises(ParamsError, match=message):
        cls.from_params(params)


def test_error_in_a_profile_override_names_the_profile_path():
    params = copy.deepcopy(BASE)
    params["profiles"]["big"]["model"] = {"width": -1}
    with pytest.raises(ParamsError, match=r"profiles\.big\.model\.width: expected an int >= 1"):
        ModelConfig.from_params(params, "big")


def test_head_options():
    assert head_options(BASE, "conv") == {}
    assert "conv" in HEAD_OPTION_READERS
    with pytest.raises(ParamsError, match=r"no settings reader for head 'mystery'"):
        head_options(BASE, "mystery")


@pytest.mark.parametrize("value", [[], 0, ""])
def test_a_shared_section_that_is_not_a_mapping_is_named(value):
    params = {**copy.deepcopy(BASE), "train": value}  # falsy, yet not an empty section
    with pytest.raises(ParamsError, match=r"params\.yaml: train: expected a mapping, got "):
        TrainConfig.from_params(params)
