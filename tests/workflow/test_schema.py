"""workflow/schemas/params.schema.yaml: it accepts the repository's params, knows every key the
config dataclasses read, and is the check both the CLI and Snakemake apply."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import jsonschema
import pytest
import yaml

from cheeger.config import (
    DATASETS,
    NORMS,
    PARAMS_SCHEMA,
    AugmentConfig,
    CamVidConfig,
    CityscapesConfig,
    EvaluateConfig,
    LossWeightsConfig,
    ModelConfig,
    ParamsError,
    SyntheticConfig,
    TrainConfig,
    check_params_schema,
    params_schema_path,
)
from cheeger.config.training import ENCODERS
from cheeger.heads.spectral import SpectralHeadConfig
from cheeger.study.broadening import BroadeningConfig
from cheeger.study.gradients import GradientsConfig
from cheeger.study.report import ReportConfig
from cheeger.study.scaling import ScalingConfig

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def schema() -> dict:
    return yaml.safe_load((REPO / PARAMS_SCHEMA).read_text())


def test_the_schema_is_valid_and_accepts_the_repository_params(schema, repo_params):
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(repo_params)
    assert params_schema_path(REPO / "params.yaml") == REPO / PARAMS_SCHEMA


@pytest.mark.parametrize(
    ("where", "config"),
    [(("model",), ModelConfig), (("train",), TrainConfig), (("spectral",), LossWeightsConfig),
     (("evaluate",), EvaluateConfig), (("spectral", "head"), SpectralHeadConfig),
     (("data", "synthetic"), SyntheticConfig), (("data", "augment"), AugmentConfig),
     (("data", "camvid"), CamVidConfig), (("data", "cityscapes"), CityscapesConfig),
     (("study", "gradients"), GradientsConfig), (("study", "scaling"), ScalingConfig),
     (("study", "report"), ReportConfig), (("study", "broadening"), BroadeningConfig)],
)  # fmt: skip
def test_schema_knows_every_field_of_the_config_dataclasses(schema, where, config):
    node = schema["properties"][where[0]]
    node = schema["$defs"][node["$ref"].split("/")[-1]] if "$ref" in node else node
    for part in where[1:]:
        node = node["properties"][part]
    names = {f.name for f in fields(config)}
    if config is SpectralHeadConfig:  # filter_options is written as spectral.head.filter_options
        names |= {"filter_options"}
    assert names <= set(node["properties"]), sorted(names - set(node["properties"]))


def test_schema_check_names_the_key(repo_params):
    bad = yaml.safe_load(yaml.safe_dump(repo_params))
    bad["study"]["gradients"]["pairs"] = ["inside", "nowhere"]
    with pytest.raises(ParamsError, match=r"^p\.yaml: study\.gradients\.pairs\.1: expected "
                                          r"inside or boundary, got 'nowhere'$"):  # fmt: skip
        check_params_schema(bad, origin="p.yaml")


@pytest.mark.parametrize(
    ("where", "config"),
    [(("model",), ModelConfig), (("train",), TrainConfig), (("evaluate",), EvaluateConfig),
     (("data", "synthetic"), SyntheticConfig), (("data", "augment"), AugmentConfig),
     (("data", "camvid"), CamVidConfig), (("data", "cityscapes"), CityscapesConfig)],
)  # fmt: skip
def test_closed_sections_hold_exactly_the_dataclass_fields(schema, where, config):
    # the schema rejects unknown keys of these sections, so the builders need no check of their own
    node = schema["properties"][where[0]]
    node = schema["$defs"][node["$ref"].split("/")[-1]] if "$ref" in node else node
    for part in where[1:]:
        node = node["properties"][part]
    assert node["additionalProperties"] is False
    assert set(node["properties"]) == {f.name for f in fields(config)}


def test_exported_choices_are_the_schema_enums(schema):
    defs = schema["$defs"]
    assert list(DATASETS) == defs["profile"]["properties"]["dataset"]["enum"]
    assert list(NORMS) == defs["model"]["properties"]["norm"]["enum"]
    assert list(ENCODERS) == defs["model"]["properties"]["encoder"]["enum"]


@pytest.mark.parametrize(
    ("edit", "message"),
    [(lambda p: p["profiles"]["camvid"].pop("dataset"),
      "profiles.camvid.dataset: missing; expected one of ['synthetic', 'camvid', 'cityscapes']"),
     (lambda p: p["data"]["augment"].update(crop=[8]),
      "data.augment.crop: expected [H, W] positive ints or null, got [8]"),
     (lambda p: p["train"].update(min_lr="1e-6"),
      "train.min_lr: expected a number >= 0; write exponents with a dot, 1.0e-3: YAML reads "
      "1e-3 as a string, got '1e-6'"),
     (lambda p: p["profiles"]["camvid"].update(model={"norm": None}),
      "profiles.camvid.model.norm: missing; expected one of ['batch', 'group', 'none']"),
     (lambda p: p["profiles"]["embedded"]["study"]["gradients"].update(pairs="inside"),
      "profiles.embedded.study.gradients.pairs: expected a list, got 'inside'")],
)  # fmt: skip
def test_schema_errors_say_what_the_key_expects(repo_params, edit, message):
    bad = yaml.safe_load(yaml.safe_dump(repo_params))
    edit(bad)
    with pytest.raises(ParamsError) as info:
        check_params_schema(bad, origin="p.yaml")
    assert str(info.value) == f"p.yaml: {message}"


def test_a_section_is_checked_alone_with_its_key_path(repo_params):
    check_params_schema(repo_params["profiles"]["camvid"], at=("profiles", "camvid"))
    with pytest.raises(ParamsError, match=r"^q\.yaml: profiles\.camvid\.train\.epochs: expected "
                                          r"an int >= 1, got 0$"):  # fmt: skip
        check_params_schema({**repo_params["profiles"]["camvid"], "train": {"epochs": 0}},
                            origin="q.yaml", at=("profiles", "camvid"))  # fmt: skip
