"""Params variants for ablation runs: keys set where they take effect, paths rebased, checked."""

from __future__ import annotations

import copy
import re

import pytest
import yaml

from cheeger.cli import main
from cheeger.config import DataConfig, LossWeightsConfig, ParamsError, load_params
from cheeger.study.variants import params_variant, parse_setting, write_variant


@pytest.fixture
def params_file(repo_root, tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text((repo_root / "params.yaml").read_text())
    return path


def test_variant_sets_the_shared_key_and_the_profile_override():
    params = {"profile": "a", "profiles": {"a": {"spectral": {"alpha": 0.2}}, "b": {}},
              "spectral": {"alpha": 0.1, "head": {"eps": 1e-3}}}  # fmt: skip
    before = copy.deepcopy(params)
    variant = params_variant(params, {"spectral.alpha": 0.5, "spectral.head.filter": "heat"})
    assert params == before  # the input is not modified
    assert variant["spectral"] == {"alpha": 0.5, "head": {"eps": 1e-3, "filter": "heat"}}
    assert variant["profiles"]["a"] == {"spectral": {"alpha": 0.5}}  # no override created
    assert params_variant(params, {}, "b")["profile"] == "b"
    with pytest.raises(ParamsError, match="unknown profile 'c'"):
        params_variant(params, {}, "c")
    with pytest.raises(ParamsError, match=r"cannot set spectral\.alpha\.x: alpha is 0\.1"):
        params_variant(params, {"spectral.alpha.x": 1})


def test_a_profile_shorthand_is_set_with_its_train_key():
    # `epochs:` in a profile block overrides train.epochs (cheeger.config): a variant of
    # train.epochs must change it too, or the run would silently train the old epochs
    params = {"profile": "a", "profiles": {"a": {"epochs": 10, "device": "cpu"}},
              "train": {"epochs": 5, "device": "auto"}}  # fmt: skip
    variant = params_variant(params, {"train.epochs": 20, "train.device": "cuda"})
    assert variant["profiles"]["a"] == {"epochs": 20, "device": "cuda"}
    assert variant["train"] == {"epochs": 20, "device": "cuda"}
    assert params_variant(params, {"train.lr": 0.1})["profiles"]["a"]["epochs"] == 10


def test_written_variant_trains_with_the_new_value(params_file, tmp_path):
    out = tmp_path / "deep" / "er" / "variant.yaml"
    write_variant(params_file, out, {"spectral.alpha": 0.3}, "camvid")
    variant = load_params(out)
    assert variant["profile"] == "camvid"
    assert LossWeightsConfig.from_params(variant).alpha == 0.3
    # relative paths name the same folder from the variant's place
    original = DataConfig.from_params(load_params(params_file), "camvid",
                                      base_dir=params_file.parent)  # fmt: skip
    moved = DataConfig.from_params(variant, "camvid", base_dir=out.parent)
    assert moved.root.resolve() == original.root.resolve()
    assert out.read_text().startswith("# Variant of params.yaml for one run: spectral.alpha = 0.3")
    assert not list(out.parent.glob(".*"))  # no temporary file left behind


def test_a_variant_that_breaks_the_schema_is_not_written(params_file, tmp_path):
    out = tmp_path / "variant.yaml"
    with pytest.raises(ParamsError, match=re.escape("spectral.alpha: expected a number >= 0, "
                                                    "got -1")):  # fmt: skip
        write_variant(params_file, out, {"spectral.alpha": -1})
    assert not out.exists() and not list(tmp_path.glob(".variant*"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [("spectral.alpha=0.3", ("spectral.alpha", 0.3)),
     ("spectral.head.filter=heat", ("spectral.head.filter", "heat")),
     ('spectral.head.filter_options={"t": 2}', ("spectral.head.filter_options", {"t": 2})),
     ("spectral.head.eps=null", ("spectral.head.eps", None)),
     ("spectral.head.eps=1e-05", ("spectral.head.eps", 1e-05))],
)  # fmt: skip
def test_parse_setting(text, expected):
    assert parse_setting(text) == expected


def test_parse_setting_needs_key_and_value():
    with pytest.raises(ParamsError, match="expected KEY=VALUE"):
        parse_setting("spectral.alpha")


def test_cli_variant(params_file, tmp_path, capsys):
    out = tmp_path / "v.yaml"
    status = main(["variant", "--params", str(params_file), "--set", "spectral.alpha=1.0",
                   "--set", "spectral.head.filter=heat", "--out", str(out)])  # fmt: skip
    assert status == 0
    assert "spectral.alpha = 1.0, spectral.head.filter = 'heat'" in capsys.readouterr().out
    variant = yaml.safe_load(out.read_text())
    assert variant["spectral"]["alpha"] == 1.0 and variant["spectral"]["head"]["filter"] == "heat"
