"""The controls: runs that say what a head's part does, tabled beside the compared heads.

``study.controls`` lists changes such as the spectral head on the plain pixel grid
(``spectral.head.affinity: uniform``) or without its graph term (``spectral.head.filter:
zero``); the pipeline retrains each control's head with the control's seeds on a params variant
and scores the runs on the report split (``test``). This module reads those runs (their
``final.json``, ``history.csv`` and evaluation) and compares every control with every head:
mean, std and t interval over seeds, and ``control - head`` with Welch's interval and verdict
(:func:`~cheeger.study.tables.comparison_table`), as the trial is compared.

Example:
    >>> data = collect_controls(study, Layout("results"))  # doctest: +SKIP
    >>> numbers, readable = controls_table(data.scalars, study)  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from cheeger.config import ParamsError
from cheeger.study.collect import (
    SCALAR_METRICS,
    _class_rows,
    _read_csv,
    _scalar_rows,
    read_json,
)
from cheeger.study.config import StudyConfig
from cheeger.study.layout import (
    CONTROL_DONE,
    CONTROL_EVAL,
    CONTROL_PARAMS,
    CONTROL_RUN,
    Layout,
)
from cheeger.study.tables import comparison_table, display, heads_table
from cheeger.study.trial import _check_settings

__all__ = ["ControlsData", "against_heads", "collect_controls", "controls_answer",
           "controls_caption", "controls_table"]  # fmt: skip

@dataclass
class ControlsData:
    """The controls' runs, in the frames of :class:`~cheeger.study.collect.StudyData`, each
    labelled by the control's name in the ``head`` column.

    Attributes:
        scalars: ``head, seed, split, metric, value`` on the report split.
        per_class: ``head, seed, split, kind, class, value`` on the report split.
        curves: each run's ``history.csv`` (epoch rows) with ``head`` and ``seed``.
        finals: ``(control, seed)`` -> the run's ``final.json``.
    """

    scalars: pd.DataFrame
    per_class: pd.DataFrame
    curves: pd.DataFrame
    finals: dict[tuple[str, int], dict[str, Any]]


def collect_controls(study: StudyConfig, layout: Layout) -> ControlsData:
    """Read every control run of ``study`` (none: empty frames).

    Raises:
        ParamsError: a control run was trained on other settings than the control's (``set``
            edited since: the runs are stale).
        StudyFileError: a declared run, history or evaluation is missing (the path named).
    """
    split, scalars, per_class, curves, finals = study.report_split, [], [], [], {}
    for name, seed in study.control_runs():
        fields = {"profile": study.profile, "control": name, "seed": seed}
        finals[name, seed] = read_json(layout.path(CONTROL_DONE, **fields))
        _check_settings(layout.path(CONTROL_PARAMS, **fields), study.control(name).settings)
        history = _read_csv(layout.path(CONTROL_RUN, **fields) / "history.csv")
        curves.append(history.assign(head=name, seed=seed))
        metrics = read_json(layout.path(CONTROL_EVAL, **fields, split=split))
        scalars.extend(_scalar_rows(metrics, head=name, seed=seed, split=split))
        per_class.extend(_class_rows(metrics, head=name, seed=seed, split=split))
    return ControlsData(
        scalars=pd.DataFrame(scalars, columns=["head", "seed", "split", "metric", "value"]),
        per_class=pd.DataFrame(per_class,
                               columns=["head", "seed", "split", "kind", "class", "value"]),
        curves=pd.concat(curves, ignore_index=True) if curves else pd.DataFrame(),
        finals=finals,
    )  # fmt: skip


def against_heads(
    scalars: pd.DataFrame, name: str, heads: Sequence[str], split: str, confidence: float = 0.95
) -> tuple[list[dict[str, Any]], dict[tuple[str, str], str]]:
    """Runs labelled ``name`` against every head of ``heads`` on ``split``.

    Returns:
        ``(rows, cells)``: one row per head and metric (``name, against, metric, mean, std,
        against_mean, against_std, difference, ci_low, ci_high, dof, p_value, verdict`` of
        ``name - head``), and ``(metric, "<name> - <head>")`` -> ``difference [CI] verdict``.

    Raises:
        ParamsError: no runs labelled ``name`` or one of ``heads`` on ``split``.
    """
    stats = heads_table(scalars, split, confidence)
    by_key = {(r.metric, r.head): r for r in stats.itertuples()}
    missing = [h for h in (name, *heads) if ("miou", h) not in by_key]
    if missing:
        raise ParamsError(f"no {split} scores of {missing} to compare {name!r} with")
    rows, cells = [], {}
    for head in heads:
        for row in comparison_table(scalars, split, head, name, confidence).to_dict("records"):
            mine, theirs = by_key[row["metric"], name], by_key[row["metric"], head]
            rows.append({"name": name, "against": head, "metric": row["metric"],
                         "mean": mine.mean, "std": mine.std, "against_mean": theirs.mean,
                         "against_std": theirs.std,
                         **{k: row[k] for k in ("difference", "ci_low", "ci_high", "dof",
                                                "p_value", "verdict")}})  # fmt: skip
            interval = (f"[{row['ci_low']:+.3f}, {row['ci_high']:+.3f}] {row['verdict']}"
                        if math.isfinite(row["ci_low"]) else "(one seed: no interval)")
            cells[row["metric"], f"{name} - {head}"] = f"{row['difference']:+.3f} {interval}"
    return rows, cells


def controls_table(
    scalars: pd.DataFrame, study: StudyConfig, confidence: float = 0.95
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every control against every head on the report split: ``(numbers, readable)``.

    ``scalars`` holds the heads' and the controls' rows (``head`` is the control's name).
    ``numbers`` has one row per control, head and metric (:func:`against_heads`, the
    control's name in ``control``); ``readable`` is indexed by metric, with ``mean ± std [CI]``
    per head and control, then one ``<control> - <head>`` column per pair.

    Example:
        >>> numbers, view = controls_table(scalars, study)  # doctest: +SKIP
        >>> view.loc["miou", "no_graph - spectral"]  # doctest: +SKIP
        '-0.012 [-0.030, +0.006] within noise'
    """
    split, rows, cells = study.report_split, [], {}
    for control in study.controls:
        found, texts = against_heads(scalars, control.name, study.heads, split, confidence)
        rows += found
        cells.update(texts)
    numbers = pd.DataFrame(rows).rename(columns={"name": "control"})
    names = [*study.heads, *(c.name for c in study.controls)]
    stats = heads_table(scalars[scalars["head"].isin(names)], split, confidence)
    readable = display(stats, "metric", "head")[names]
    for (metric, column), text in cells.items():
        readable.loc[metric, column] = text
    order = [m for m in SCALAR_METRICS if m in readable.index]
    return numbers, readable.loc[order]


def controls_caption(study: StudyConfig, confidence: float = 0.95) -> str:
    """What each control changed, on which seeds and split, and why (Markdown)."""
    lines = [f"Controls in the main protocol, scored on the {study.report_split} split (mean ± "
             f"std [{confidence:.0%} t interval] over seeds; `control - head`: the difference "
             "with Welch's interval and verdict). Every other setting is the main runs':"]
    for control in study.controls:
        changes = ", ".join(f"`{k} = {v}`" for k, v in control.settings.items())
        why = f" {control.why}" if control.why else ""
        lines.append(f"- `{control.name}`: the {control.head} head with {changes}, seeds "
                     f"{list(control.seeds)}.{why}")  # fmt: skip
    return "\n".join(lines)


def controls_answer(rows: pd.DataFrame, study: StudyConfig) -> str:
    """What the controls say, against each control's own head (mIoU and boundary mIoU)."""
    lines = ["", "What the controls say (each against its own head):"]
    for control in study.controls:
        mine = rows[(rows["control"] == control.name) & (rows["against"] == control.head)]
        for row in mine[mine["metric"].isin(["miou", "boundary_miou"])].to_dict("records"):
            interval = (f"[{row['ci_low']:+.3f}, {row['ci_high']:+.3f}] ({row['verdict']})"
                        if math.isfinite(row["ci_low"]) else "(one seed: no interval)")
            lines.append(f"- `{control.name}` - {control.head}, {row['metric']}: "
                         f"{row['difference']:+.3f} {interval}")  # fmt: skip
    return "\n".join(lines) + "\n"
