"""StudyConfig: the study's runs from params.yaml, and the checks a schema cannot make."""

from __future__ import annotations

import copy
import math
import re

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from cheeger.config import ParamsError
from cheeger.study.config import StudyConfig, deep_merge, format_value, get_key


@pytest.fixture(scope="module")
def params(repo_root):
    return yaml.safe_load((repo_root / "params.yaml").read_text())


def test_repository_profiles(params):
    embedded = StudyConfig.from_params(params, "embedded")
    assert embedded.runs() == [(h, s) for h in ("conv", "spectral") for s in (0, 1, 2)]
    assert embedded.splits == ("val", "test") and embedded.report_split == "test"
    # the profile's study: block replaces the axes it names whole: eps, beta and filter at the
    # main runs' values train nothing, alpha 0 trains one run
    assert embedded.axis("eps").values == () and embedded.axis("filter").values == ()
    assert embedded.axis("filter").baseline == "learned"
    assert embedded.ablation_runs() == [("alpha", "0.0", 0)]
    cityscapes = StudyConfig.from_params(params, "cityscapes")
    assert cityscapes.splits == ("val",) and cityscapes.report_split == "val"
    assert cityscapes.threads == 4


def test_baseline_values_are_not_trained_again(params):
    p = copy.deepcopy(params)
    p["profiles"]["embedded"].pop("study")
    p["study"]["ablation"]["axes"] = {"alpha": {"key": "spectral.alpha",
                                                "values": [0.0, 0.1, 1]}}  # fmt: skip
    study = StudyConfig.from_params(p, "embedded")
    assert study.axis("alpha").baseline == 0.1 and study.axis("alpha").values == (0.0, 1)
    assert study.ablation_runs() == [("alpha", "0.0", 0), ("alpha", "1", 0)]
    p["profiles"]["embedded"]["spectral"] = {"alpha": 1.0}  # the profile's value is the baseline
    study = StudyConfig.from_params(p, "embedded")
    assert study.axis("alpha").baseline == 1.0 and study.axis("alpha").values == (0.0, 0.1)


def test_companion_key_per_value(params):
    axis = StudyConfig.from_params(params, "camvid").axis("filter")
    assert axis.settings("truncation") == {"spectral.head.filter": "truncation",
                                           "spectral.head.filter_options": {"num_kept": 8}}
    assert axis.settings("learned") == {"spectral.head.filter": "learned"}  # the baseline
    with pytest.raises(KeyError, match="no value 'nope'"):
        axis.settings("nope")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda p: p["profiles"]["embedded"].update(ablation_seeds=[5]),
         "profiles.embedded.ablation_seeds: expected a subset of profiles.embedded.seeds"),
        (lambda p: p["profiles"]["embedded"].pop("seeds"),
         "profiles.embedded.seeds: missing"),
        (lambda p: p["study"]["ablation"]["axes"].update(x={"key": "model.dropout",
                                                            "values": [4]}),
         "study.ablation.axes.x.key: model.dropout is not set in params.yaml"),
        (lambda p: p["study"]["ablation"]["axes"].update(x={"key": "study.heads",
                                                            "values": [1]}),
         "study.ablation.axes.x.key: expected a key of a section training reads"),
        (lambda p: p["study"]["ablation"]["axes"].update(x={"key": "spectral.alpha",
                                                            "values": [0.5, "0.5"]}),
         "study.ablation.axes.x.values: values ['0.5', '0.5', '0.1'] are not distinct"),
        (lambda p: p["study"]["ablation"]["axes"].update(x={"key": "spectral.alpha",
                                                            "values": ["a/b"]}),
         "study.ablation.axes.x.values: ablation value 'a/b': expected letters"),
        # (the shared filter axis, which the embedded profile would otherwise replace)
        (lambda p: p["profiles"]["embedded"]["study"]["ablation"]["axes"].pop("filter")
         and p["study"]["ablation"]["axes"]["filter"]["with"]["values"].update(sharp={}),
         "study.ablation.axes.filter.with.values: ['sharp'] are not ablated values"),
        (lambda p: p["study"]["ablation"].update(head="unet"),
         "study.ablation.head: expected one of study.heads ['conv', 'spectral'], got 'unet'"),
        (lambda p: p["study"]["ablation"].update(split="test2"),
         "study.ablation.split: expected one of the profile's splits"),
        # the embedded profile's `epochs:` shorthand wins over train.epochs: an axis on it
        # would train the baseline again under other labels
        (lambda p: p["study"]["ablation"]["axes"].update(x={"key": "train.epochs",
                                                            "values": [2, 40]}),
         "study.ablation.axes.x.key: train.epochs: the profile's `epochs:` overrides it"),
    ],
)  # fmt: skip
def test_inconsistent_settings_name_the_key(params, edit, message):
    p = copy.deepcopy(params)
    edit(p)
    with pytest.raises(ParamsError, match=re.escape(f"params.yaml: {message}")):
        StudyConfig.from_params(p, "embedded")


@given(st.floats(allow_nan=False, allow_infinity=False), st.floats(allow_nan=False,
                                                                     allow_infinity=False))
def test_float_slugs_are_distinct_and_round_trip(a, b):
    assert float(format_value(a)) == a or (a == 0 and math.copysign(1, a) < 0)
    if a != b:
        assert format_value(a) != format_value(b)


def test_format_value_of_other_types():
    assert [format_value(v) for v in (True, 3, "heat", 1e-5)] == ["true", "3", "heat", "1e-05"]
    with pytest.raises(ValueError, match="letters, digits"):
        format_value("a b")


@given(st.dictionaries(st.sampled_from("abc"), st.integers() | st.dictionaries(
    st.sampled_from("xy"), st.integers())), st.dictionaries(st.sampled_from("abc"),
    st.integers() | st.dictionaries(st.sampled_from("xy"), st.integers())))  # fmt: skip
def test_deep_merge_takes_the_override_and_leaves_its_inputs(base, override):
    before = copy.deepcopy((base, override))
    merged = deep_merge(base, override)
    assert (base, override) == before
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            assert merged[key] == {**base[key], **value}
        else:
            assert merged[key] == value
    assert all(merged[k] == v for k, v in base.items() if k not in override)


def test_get_key():
    tree = {"a": {"b": {"c": 1}}}
    assert get_key(tree, "a.b.c") == 1 and get_key(tree, "a.x", None) is None
    with pytest.raises(KeyError):
        get_key(tree, "a.b.d")
