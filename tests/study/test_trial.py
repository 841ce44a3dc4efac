"""The trial (study.trial): its settings, its comparison with every head, its report section."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from cheeger.cli import main
from cheeger.config import ParamsError
from cheeger.study.config import StudyConfig
from cheeger.study.layout import TRIAL_EVAL, Layout, StudyFileError
from cheeger.study.report import make_report
from cheeger.study.trial import collect_trial, write_trial

from .conftest import small_params


def _with_trial(params: dict, **trial) -> None:
    params["study"]["trial"] = {"name": "stride4", "head": "spectral",
                                "set": {"spectral.head.stride": 4}, "why": "finer graph",
                                **trial}  # fmt: skip


def test_trial_runs_every_seed_of_its_head_on_the_changed_settings():
    params = small_params()
    _with_trial(params)
    study = StudyConfig.from_params(params)
    assert study.trial.settings == {"spectral.head.stride": 4}
    assert study.trial_runs() == [("stride4", 0), ("stride4", 1), ("stride4", 2)]
    assert StudyConfig.from_params(small_params()).trial_runs() == []


@pytest.mark.parametrize(
    ("trial", "message"),
    [
        ({"head": "nope"}, "study.trial.head: expected one of study.heads"),
        ({"name": "conv"}, "study.trial.name: 'conv' is a head's name"),
        ({"set": {"spectral.head.nope": 1}}, "study.trial.set: spectral.head.nope is not set"),
        ({"set": {"study.heads": ["conv"]}}, "study.trial.set: study.heads: expected a key under"),
        ({"set": {"evaluate.boundary_ratio": 0.05}}, "evaluated as the main runs are"),
        ({"set": {"train.epochs": 40}}, r"the profile's `epochs:` overrides it"),
        ({"head": "conv"}, "spectral.head.stride: the conv head does not read it"),
        ({"set": {"spectral.head.stride": 8}}, "every value equals the main runs'"),
    ],
)
def test_a_trial_that_cannot_run_or_changes_nothing_is_refused(trial, message):
    params = small_params()
    params["spectral"]["head"]["stride"] = 8
    params["profiles"]["embedded"]["epochs"] = 3
    _with_trial(params, **trial)
    with pytest.raises(ParamsError, match=message):
        StudyConfig.from_params(params)


def test_a_profile_trial_replaces_the_shared_one_whole():
    params = small_params()
    params["study"]["trial"] = {"name": "shared", "head": "spectral", "why": "shared reason",
                                "set": {"spectral.alpha": 0.3}}  # fmt: skip
    params["profiles"]["embedded"]["study"] = {
        "trial": {"name": "mine", "head": "spectral", "set": {"spectral.head.stride": 4}}}
    trial = StudyConfig.from_params(params).trial
    assert (trial.name, dict(trial.settings), trial.why) == (
        "mine", {"spectral.head.stride": 4}, "")


def test_trial_table_has_the_seed_statistics_and_welch_differences(synthetic_study):
    root, study = synthetic_study(0.0, edit=_with_trial, trial_effect=0.1)
    paths = write_trial(root / "params.yaml", results=root / "results")
    table = pd.read_csv(paths["csv"])
    scalars = collect_trial(study, Layout(root / "results"))
    for head in study.heads:
        row = table[(table["against"] == head) & (table["metric"] == "miou")].iloc[0]
        mine = scalars[(scalars["head"] == "stride4") & (scalars["metric"] == "miou")]["value"]
        theirs = scalars[(scalars["head"] == head) & (scalars["metric"] == "miou")]["value"]
        welch = stats.ttest_ind(mine, theirs, equal_var=False)
        assert row["trial_mean"] == pytest.approx(np.mean(mine), abs=1e-6)
        assert row["difference"] == pytest.approx(np.mean(mine) - np.mean(theirs), abs=1e-6)
        assert row["p_value"] == pytest.approx(welch.pvalue, rel=1e-4)
        assert row["verdict"] == "better" and math.isfinite(row["ci_low"]) and row["ci_low"] > 0
    assert paths["md"].parent.name == "compare"
    markdown = paths["md"].read_text()
    assert "Trial `stride4`: the spectral head with spectral.head.stride = 4" in markdown
    assert "stride4 - conv" in markdown and "better" in markdown and "Why: finer graph" in markdown
    summary = json.loads(paths["summary"].read_text())
    assert summary["trial"]["set"] == {"spectral.head.stride": 4} and summary["split"] == "test"
    assert len(summary["comparisons"]) == len(table)


def test_no_effect_is_within_noise_and_the_report_has_a_trial_section(synthetic_study):
    root, _ = synthetic_study(0.0, edit=_with_trial, trial_effect=0.0)
    make_report(root / "params.yaml", results=root / "results", out=root / "out",
                figures=False, panel=False)  # fmt: skip
    readme = (root / "out" / "README.md").read_text()
    assert "## Trial `stride4` (test, Welch)" in readme
    table = pd.read_csv(root / "out" / "tables" / "trial_stride4.csv")
    assert set(table["against"]) == {"conv", "spectral"}
    assert (table.loc[table["metric"] == "miou", "verdict"] == "within noise").all()


def test_missing_trial_evaluation_is_an_error_naming_it_and_no_trial_a_summary_saying_so(
    synthetic_study, capsys
):
    root, _ = synthetic_study(0.0, edit=_with_trial)
    path = Layout(root / "results").path(TRIAL_EVAL, profile="embedded", trial="stride4",
                                         seed=1, split="test")  # fmt: skip
    path.unlink()
    with pytest.raises(StudyFileError, match=str(path)):
        write_trial(root / "params.yaml", results=root / "results")
    plain, _ = synthetic_study(0.0, name="plain")
    status = main(["trial", "--params", str(plain / "params.yaml"), "--results",
                   str(plain / "results")])  # fmt: skip
    assert status == 0 and "summary.json" in capsys.readouterr().out
    summary = json.loads((plain / "results/embedded/trial/compare/summary.json").read_text())
    assert summary == {"profile": "embedded", "trial": None}
    assert not list((plain / "results/embedded/trial/compare").glob("*.md"))
    for folder in ("runs", "eval"):  # the DVC stage's outputs exist, empty
        assert (plain / "results/embedded/trial" / folder).is_dir()
    with pytest.raises(ParamsError, match=r"study\.trial: not set for profile 'embedded'"):
        collect_trial(StudyConfig.from_params(small_params()), Layout(plain / "results"))


def test_report_confidence_reaches_the_trial_and_renamed_trials_leave_no_tables(synthetic_study):
    def edit(params):
        _with_trial(params)
        params["study"]["report"]["confidence"] = 0.9

    root, _ = synthetic_study(0.0, edit=edit, trial_effect=0.05)
    paths = write_trial(root / "params.yaml", results=root / "results")
    assert "[90% t interval]" in paths["md"].read_text()
    assert json.loads(paths["summary"].read_text())["confidence"] == 0.9
    stale = paths["md"].with_name("stride2.md")
    stale.write_text("an old trial's table")
    write_trial(root / "params.yaml", results=root / "results")
    assert not stale.exists() and paths["md"].exists()


def test_runs_trained_on_other_settings_are_stale(synthetic_study):
    root, _ = synthetic_study(0.0, edit=_with_trial)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["study"]["trial"]["set"] = {"spectral.head.stride": 2}
    with pytest.raises(ParamsError, match=r"spectral\.head\.stride = 4, the trial sets 2"):
        write_trial(params, results=root / "results")
