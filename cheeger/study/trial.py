"""The trial: one change tried after the ablations, compared with every head of the study.

``study.trial`` names a change (e.g. ``spectral.head.stride: 4``); the pipeline retrains the
trial's head with every seed of the profile on it, the protocol otherwise unchanged, and scores
the runs on the report split (``test``). This module reads those evaluations and the main runs'
and writes ``trial/<profile>/compare/summary.json`` (``{"trial": null}`` when the profile has no
trial, so the pipeline's trial stage always has an output) and
``trial/<profile>/compare/<name>.{csv,md,tex}``:

* the CSV, one row per metric and compared head: the trial's and the head's mean, std and t
  interval over seeds, and ``trial - head`` with Welch's interval, p-value and verdict
  (:func:`~cheeger.study.tables.comparison_table`);
* the Markdown and LaTeX, ``mean ± std [CI]`` per metric for the heads and the trial, then
  ``trial - head`` with its interval and verdict.

Example:
    >>> write_trial("params.yaml", "camvid", results="results")  # doctest: +SKIP
    {'summary': PosixPath('results/camvid/trial/compare/summary.json'), 'csv': ..., ...}
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from cheeger.config import ParamsError, load_params
from cheeger.data.io import atomic_write_bytes
from cheeger.study.collect import SCALAR_METRICS, ReportConfig, _scalar_rows, json_safe, read_json
from cheeger.study.config import StudyConfig, get_key
from cheeger.study.layout import (
    EVAL,
    TRIAL_DONE,
    TRIAL_EVAL,
    TRIAL_PARAMS,
    TRIAL_RUN,
    TRIAL_SUMMARY,
    TRIAL_TABLE,
    Layout,
    StudyFileError,
)
from cheeger.study.tables import comparison_table, display, heads_table, write_table

__all__ = ["collect_trial", "trial_caption", "trial_table", "write_trial"]


def collect_trial(study: StudyConfig, layout: Layout) -> pd.DataFrame:
    """Scalars ``head, seed, split, metric, value`` of the heads and of the trial (its rows
    labelled with the trial's name) on the report split.

    Raises:
        ParamsError: the study has no trial, or a trial run was trained on other settings
            than the trial's (``set`` edited since: the runs are stale).
        StudyFileError: a declared run or evaluation is missing (the path named).
    """
    if study.trial is None:
        raise ParamsError("params.yaml: study.trial: not set for profile "
                          f"{study.profile!r}: there is no trial to compare")  # fmt: skip
    split, rows = study.report_split, []
    for head, seed in study.runs():
        path = layout.path(EVAL, profile=study.profile, head=head, seed=seed, split=split)
        rows.extend(_scalar_rows(read_json(path), head=head, seed=seed, split=split))
    for name, seed in study.trial_runs():
        fields = {"profile": study.profile, "trial": name, "seed": seed}
        read_json(layout.path(TRIAL_DONE, **fields))  # finished, or an error naming it
        _check_settings(layout.path(TRIAL_PARAMS, **fields), study.trial.settings)
        metrics = read_json(layout.path(TRIAL_EVAL, **fields, split=split))
        rows.extend(_scalar_rows(metrics, head=name, seed=seed, split=split))
    return pd.DataFrame(rows, columns=["head", "seed", "split", "metric", "value"])


def _check_settings(path: Path, settings: Mapping[str, Any]) -> None:
    """The run's params file holds the trial's settings (else its runs are another trial's)."""
    try:
        variant = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise StudyFileError(f"{path}: missing or unreadable ({error})") from None
    for key, value in settings.items():
        found = get_key(variant, key, None)
        if found != value:
            raise ParamsError(f"{path}: {key} = {found!r}, the trial sets {value!r}: the run "
                              "is stale (rerun the trial stage)")  # fmt: skip


def trial_table(
    scalars: pd.DataFrame, study: StudyConfig, confidence: float = 0.95
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The trial against every head: ``(numbers, readable)``.

    ``numbers`` has one row per metric and head (``against``): ``trial_mean, trial_std,
    against_mean, against_std``, and ``difference, ci_low, ci_high, dof, p_value, verdict`` of
    ``trial - against``. ``readable`` is indexed by metric, with ``mean ± std [CI]`` cells per
    head and for the trial, and one ``<trial> - <head>`` column per head.
    """
    name, split = study.trial.name, study.report_split
    stats = heads_table(scalars, split, confidence)
    by_key = {(r.metric, r.head): r for r in stats.itertuples()}
    rows, diffs = [], {}
    for head in study.heads:
        comparison = comparison_table(scalars, split, head, name, confidence)
        for row in comparison.to_dict("records"):
            mine, theirs = by_key[row["metric"], name], by_key[row["metric"], head]
            rows.append({"trial": name, "against": head, "metric": row["metric"],
                         "trial_mean": mine.mean, "trial_std": mine.std,
                         "against_mean": theirs.mean, "against_std": theirs.std,
                         **{k: row[k] for k in ("difference", "ci_low", "ci_high", "dof",
                                                "p_value", "verdict")}})  # fmt: skip
            diffs[row["metric"], f"{name} - {head}"] = (
                f"{row['difference']:+.3f} [{row['ci_low']:+.3f}, {row['ci_high']:+.3f}] "
                f"{row['verdict']}")  # fmt: skip
    readable = display(stats, "metric", "head")
    for (metric, column), text in diffs.items():
        readable.loc[metric, column] = text
    order = [m for m in SCALAR_METRICS if m in readable.index]
    return pd.DataFrame(rows), readable.loc[order]


def trial_caption(study: StudyConfig, confidence: float = 0.95) -> str:
    """One sentence saying what the trial changed, on which seeds and split, and why."""
    trial = study.trial
    changes = ", ".join(f"{k} = {v}" for k, v in trial.settings.items())
    text = (f"Trial `{trial.name}`: the {trial.head} head with {changes}, every other setting "
            f"the main runs'; seeds {list(study.seeds)}, {study.report_split} split (mean ± std "
            f"[{confidence:.0%} t interval] over seeds; differences with Welch's "
            "interval).")  # fmt: skip
    return text + (f" Why: {trial.why}" if trial.why else "")


def write_trial(
    params: str | os.PathLike | Mapping[str, Any], profile: str | None = None,
    results: str | os.PathLike = "results", confidence: float | None = None,
) -> dict[str, Path]:  # fmt: skip
    """Compare the trial of ``profile`` with the heads: its summary JSON and its CSV, Markdown
    and LaTeX table (the summary alone, saying so, when the profile has no trial). Tables of
    other trial names in the folder (a renamed or removed trial) are deleted.

    Args:
        confidence: interval level; ``None``: ``study.report.confidence``, as the report.

    Raises:
        ParamsError: invalid settings, or stale trial runs.
        StudyFileError: a declared run or evaluation is missing.
    """
    loaded = load_params(params) if not isinstance(params, Mapping) else params
    study = StudyConfig.from_params(loaded, profile)
    if confidence is None:
        confidence = ReportConfig.from_params(loaded, study.profile).confidence
    layout = Layout(results)
    summary_path = layout.path(TRIAL_SUMMARY, profile=study.profile)
    summary: dict[str, Any] = {"profile": study.profile, "trial": None}
    paths = {"summary": summary_path}
    keep = None
    if study.trial is not None:
        trial = study.trial
        numbers, readable = trial_table(collect_trial(study, layout), study, confidence)
        target = layout.path(TRIAL_TABLE, profile=study.profile, trial=trial.name)
        keep = target.name
        paths.update(write_table(numbers, target.parent, target.name, readable,
                                 caption=trial_caption(study, confidence)))  # fmt: skip
        summary.update(
            trial={"name": trial.name, "head": trial.head, "set": dict(trial.settings),
                   "why": trial.why},
            split=study.report_split, seeds=list(study.seeds), confidence=confidence,
            comparisons=numbers.to_dict("records"),
        )  # fmt: skip
    summary_path.parent.mkdir(parents=True, exist_ok=True)
    for template in (TRIAL_RUN, TRIAL_EVAL):  # the stage's other outputs exist even if empty
        folder = template.split("/{trial}")[0].format(profile=study.profile)
        (layout.root / folder).mkdir(parents=True, exist_ok=True)
    for stale in summary_path.parent.glob("*"):
        if stale.suffix in (".csv", ".md", ".tex") and stale.stem != keep:
            stale.unlink()
    atomic_write_bytes(summary_path, (json.dumps(json_safe(summary), indent=1) + "\n").encode())
    return paths
