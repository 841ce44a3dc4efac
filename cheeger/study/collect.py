"""Reading the study's outputs into tidy pandas frames for the report.

Every file is found through :mod:`cheeger.study.layout` from the :class:`StudyConfig`, so the
report reads exactly the runs the pipeline declared; a missing file is an error naming it (the
report never averages over whatever happens to be on disk).

Frames (one row per observation):

* ``scalars``: ``head, seed, split, metric, value`` from the ``cheeger evaluate`` JSONs;
* ``per_class``: ``head, seed, split, kind, class, value`` (``kind``: ``iou``,
  ``boundary_iou``, ``accuracy``, ...);
* ``curves``: ``head, seed, epoch, <history.csv columns>`` from each run's history;
* ``ablation``: ``axis, value, baseline, seed, metric, value`` (column ``score``), the baseline
  rows taken from the main runs of the ablated head.

Example:
    >>> collect_study(StudyConfig.from_params(params), Layout("results"))  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import pandas as pd

from cheeger.study.config import StudyConfig, format_value, study_section
from cheeger.study.layout import (
    ABLATION_DONE,
    ABLATION_EVAL,
    EVAL,
    GRADIENTS,
    RUN,
    RUN_DONE,
    SCALING_TABLE,
    Layout,
    StudyFileError,
)

__all__ = [
    "SCALAR_METRICS",
    "ReportConfig",
    "StudyData",
    "StudyFileError",
    "collect_study",
    "json_safe",
    "read_json",
]

#: Headline metrics, in table order, with whether higher is better.
SCALAR_METRICS: dict[str, bool] = {
    "miou": True,
    "boundary_miou": True,
    "pixel_accuracy": True,
    "class_accuracy": True,
    "excess_components": False,
    "stray_fraction": False,
}


@dataclass(frozen=True)
class ReportConfig:
    """``study.report``: interval level and the image of the qualitative panel (read by the
    report and by the trial comparison)."""

    confidence: float = 0.95
    panel_index: int = 0

    @classmethod
    def from_params(cls, params: Mapping[str, Any], profile: str | None = None) -> ReportConfig:
        """Build from ``study.report`` (and the profile's override), schema-checked."""
        section = study_section(params, profile).get("report", {})
        return cls(**{f.name: section[f.name] for f in fields(cls) if f.name in section})


def json_safe(value: Any) -> Any:
    """JSON-safe: NaN/inf -> None, numpy scalars -> Python."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def read_json(path: Path) -> dict[str, Any]:
    """Parse the JSON file ``path``.

    Raises:
        StudyFileError: missing or invalid.
    """
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise StudyFileError(f"{path}: missing (run the pipeline stage that writes it)") from None
    except json.JSONDecodeError as error:
        raise StudyFileError(f"{path}: invalid JSON ({error})") from None


@dataclass
class StudyData:
    """Everything the report draws on (see the module docstring for the frames)."""

    study: StudyConfig
    scalars: pd.DataFrame
    per_class: pd.DataFrame
    curves: pd.DataFrame
    ablation: pd.DataFrame
    finals: dict[tuple[str, int], dict[str, Any]]
    evaluations: dict[tuple[str, int, str], dict[str, Any]]
    scaling: pd.DataFrame | None
    gradients: pd.DataFrame | None


def _scalar_rows(metrics: Mapping[str, Any], **key: Any) -> Iterable[dict[str, Any]]:
    for name in SCALAR_METRICS:
        yield {**key, "metric": name, "value": metrics.get(name)}


def _class_rows(metrics: Mapping[str, Any], **key: Any) -> Iterable[dict[str, Any]]:
    for kind, values in metrics.get("per_class", {}).items():
        for name, value in values.items():
            yield {**key, "kind": kind, "class": name, "value": value}


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except FileNotFoundError:
        raise StudyFileError(f"{path}: missing (run the pipeline stage that writes it)") from None


def collect_study(
    study: StudyConfig, layout: Layout, *, scaling: bool = True, gradients: bool = True
) -> StudyData:
    """Read the evaluations, histories, ablations and sweeps of ``study`` under ``layout``.

    Raises:
        StudyFileError: a declared file is missing or unreadable.
    """
    profile = study.profile
    scalars, per_class, curves, finals, evaluations = [], [], [], {}, {}
    for head, seed in study.runs():
        finals[head, seed] = read_json(layout.path(RUN_DONE, profile=profile, head=head,
                                                   seed=seed))  # fmt: skip
        history = _read_csv(layout.path(RUN, profile=profile, head=head, seed=seed)
                            / "history.csv")  # fmt: skip
        curves.append(history.assign(head=head, seed=seed))
    for head, seed, split in study.evaluations():
        path = layout.path(EVAL, profile=profile, head=head, seed=seed, split=split)
        metrics = evaluations[head, seed, split] = read_json(path)
        scalars.extend(_scalar_rows(metrics, head=head, seed=seed, split=split))
        per_class.extend(_class_rows(metrics, head=head, seed=seed, split=split))
    ablation = []
    for axis in study.axes:
        for seed in study.ablation_seeds:  # the baseline: the main runs of the ablated head
            metrics = evaluations[study.ablation_head, seed, study.ablation_split]
            ablation.extend({**row, "axis": axis.name, "setting": format_value(axis.baseline),
                             "baseline": True}
                            for row in _scalar_rows(metrics, seed=seed))  # fmt: skip
        for name, slug, seed in study.ablation_runs():
            if name != axis.name:
                continue
            fields = {"profile": profile, "axis": name, "value": slug, "seed": seed}
            read_json(layout.path(ABLATION_DONE, **fields))  # finished, or an error naming it
            metrics = read_json(layout.path(ABLATION_EVAL, **fields,
                                            split=study.ablation_split))  # fmt: skip
            ablation.extend({**row, "axis": name, "setting": slug, "baseline": False}
                            for row in _scalar_rows(metrics, seed=seed))  # fmt: skip
    scaling_frame = _read_csv(layout.path(SCALING_TABLE, profile=profile)) if scaling else None
    gradient_frame = _read_csv(layout.path(GRADIENTS, profile=profile)) if gradients else None
    return StudyData(
        study=study,
        scalars=pd.DataFrame(scalars, columns=["head", "seed", "split", "metric", "value"]),
        per_class=pd.DataFrame(per_class,
                               columns=["head", "seed", "split", "kind", "class", "value"]),
        curves=pd.concat(curves, ignore_index=True) if curves else pd.DataFrame(),
        ablation=pd.DataFrame(ablation, columns=["axis", "setting", "baseline", "seed",
                                                 "metric", "value"]),
        finals=finals, evaluations=evaluations,
        scaling=scaling_frame, gradients=gradient_frame,
    )  # fmt: skip
