"""workflow/schemas/params.schema.yaml: it accepts the repository's params, knows every key the
config dataclasses read, and is the check both the CLI and Snakemake apply."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import jsonschema
import pytest
import yaml

from cheeger.config import (
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
    with pytest.raises(ParamsError, match=r"^p\.yaml: study\.gradients\.pairs\.1: 'nowhere' is "
                                          r"not one of \['inside', 'boundary'\]"):  # fmt: skip
        check_params_schema(bad, origin="p.yaml")
