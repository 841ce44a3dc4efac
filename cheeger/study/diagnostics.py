"""What the spectral head's graph did in training: its per-epoch diagnostics and solver counts.

A run of a head with a graph writes, on each epoch row of ``history.csv``, the epoch mean of its
graph diagnostics (``diag_*``, :data:`cheeger.heads.spectral.DIAGNOSTICS`), and its eigensolver
counts over the run to ``final.json`` under ``"solver"``. This module tables them for the
report, for the main runs and the controls alike (a label per head or control):

* :func:`diagnostics_table`: each diagnostic at the last epoch, mean, std and t interval over
  seeds per label (a head without a graph, e.g. conv, has none and is left out);
* :func:`solver_table`: each run's solver totals (methods, fallbacks, unconverged steps, stalled
  complement columns), and :func:`solver_summary` their sums per label;
* :func:`cost_table`: each label's parameters and training wall time per epoch and per step,
  against the first label's (the baseline head).

Example:
    >>> import pandas as pd
    >>> curves = pd.DataFrame({"head": ["spectral"] * 4, "seed": [0, 0, 1, 1],
    ...                        "epoch": [1, 2, 1, 2], "diag_y_ratio": [0.1, 0.2, 0.3, 0.4]})
    >>> row = diagnostics_table(curves).iloc[0]
    >>> row["head"], row["diagnostic"], int(row["n"]), round(float(row["mean"]), 3)
    ('spectral', 'diag_y_ratio', 2, 0.3)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from cheeger.study.statistics import summarize

__all__ = [
    "DIAGNOSTICS",
    "cost_table",
    "diagnostics_table",
    "diagnostics_view",
    "inference_table",
    "solver_summary",
    "solver_table",
]  # fmt: skip

#: The history columns tabled, in order, with what each measures.
DIAGNOSTICS: dict[str, str] = {
    "diag_affinity_cv": "coefficient of variation of the learned edge weights (0: a plain grid)",
    "diag_exponent_mean": "mean over edges of ||A(g_i - g_j)||^2 / 2 sigma^2 (the metric's "
                          "scale against sigma)",
    "diag_y_ratio": "||y|| / ||x_low||: how much the graph term adds to the logits",
    "diag_lambda_ratio": "mean over j = 2..k of lambda_j(learned) / lambda_j(plain grid, same "
                         "size)",
    "diag_lambda2": "lambda_2 of the learned graph",
    "diag_lambda2_grid": "lambda_2 of the plain grid of the same size",
}  # fmt: skip
_SOLVER_COLUMNS = ("steps", "fallback_steps", "unconverged_steps", "uncertified_steps",
                   "complement_stalled", "complement_unconverged", "steps_with_stalls")  # fmt: skip


def diagnostics_table(curves: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Each diagnostic at each run's last epoch: statistics over seeds per label (``head``).

    Args:
        curves: epoch rows with ``head``, ``seed``, ``epoch`` and ``diag_*`` columns.

    Returns:
        ``head, diagnostic, n, mean, std, sem, ci_low, ci_high, ci_half``; labels and
        diagnostics without a finite value are left out (empty without any ``diag_*``).
    """
    columns = [c for c in DIAGNOSTICS if c in curves.columns]
    if not columns or curves.empty:
        return summarize(pd.DataFrame(columns=["head", "diagnostic", "value"]),
                         ["head", "diagnostic"])  # fmt: skip
    last = curves.sort_values("epoch").groupby(["head", "seed"], sort=False).tail(1)
    long = last.melt(id_vars=["head", "seed"], value_vars=columns, var_name="diagnostic")
    long = long.dropna(subset=["value"])
    order = {name: i for i, name in enumerate(dict.fromkeys(curves["head"]))}
    table = summarize(long, ["head", "diagnostic"], confidence=confidence)
    rank = {c: i for i, c in enumerate(columns)}
    return table.sort_values(["head", "diagnostic"], key=lambda s: s.map(order if s.name ==
                             "head" else rank), ignore_index=True)  # fmt: skip


def diagnostics_view(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`diagnostics_table` for reading: ``mean ± std [CI]`` in 3 significant digits (the
    diagnostics span 1e-4 to 1e2), diagnostics (``diag_`` dropped) as rows, labels as columns.

    Example:
        >>> t = pd.DataFrame({"head": ["s"], "diagnostic": ["diag_lambda2"], "n": [2],
        ...                   "mean": [3.3e-3], "std": [1e-4], "ci_low": [2.4e-3],
        ...                   "ci_high": [4.2e-3]})
        >>> diagnostics_view(t).loc["lambda2", "s"]
        '0.0033 ± 0.0001 [0.0024, 0.0042]'
    """

    def cell(row: pd.Series) -> str:
        if row["n"] == 0 or pd.isna(row["mean"]):
            return "n/a"
        text = f"{row['mean']:.3g}"
        if pd.notna(row["std"]):
            text += f" ± {row['std']:.3g} [{row['ci_low']:.3g}, {row['ci_high']:.3g}]"
        return text

    cells = table.assign(cell=table.apply(cell, axis=1),
                         row=table["diagnostic"].str.removeprefix("diag_"))  # fmt: skip
    view = cells.pivot(index="row", columns="head", values="cell")
    view = view.reindex(index=list(dict.fromkeys(cells["row"])),
                        columns=list(dict.fromkeys(cells["head"])))  # fmt: skip
    view.index.name, view.columns.name = "diagnostic", None
    return view.fillna("n/a")  # a diagnostic a label does not have (no eigensolve: no lambda)


def solver_table(finals: Mapping[tuple[str, int], Mapping[str, Any]]) -> pd.DataFrame:
    """One row per run with an eigensolver: its ``final.json`` solver totals.

    Args:
        finals: ``(label, seed)`` -> the run's ``final.json`` (runs whose ``"solver"`` is
            missing or null, e.g. the conv head's, are left out).

    Returns:
        ``head, seed, methods`` (``"name: steps"``, comma separated) and the counts
        ``steps, fallback_steps, unconverged_steps, uncertified_steps, complement_stalled,
        complement_unconverged, steps_with_stalls``, and ``worst_residual``.
    """
    rows = []
    for (label, seed), final in finals.items():
        totals = final.get("solver")
        if not totals:
            continue
        complement = totals.get("complement", {})
        rows.append({
            "head": label, "seed": seed,
            "methods": ", ".join(f"{k}: {v}" for k, v in totals.get("methods", {}).items()),
            "steps": totals.get("steps"), "fallback_steps": totals.get("fallback_steps"),
            "unconverged_steps": totals.get("unconverged_steps"),
            "uncertified_steps": totals.get("uncertified_steps"),
            "complement_stalled": complement.get("stalled"),
            "complement_unconverged": complement.get("unconverged"),
            "steps_with_stalls": complement.get("steps_with_stalls"),
            "worst_residual": complement.get("worst_residual"),
        })  # fmt: skip
    return pd.DataFrame(rows, columns=["head", "seed", "methods", *_SOLVER_COLUMNS,
                                       "worst_residual"])  # fmt: skip


def solver_summary(runs: pd.DataFrame) -> pd.DataFrame:
    """:func:`solver_table` summed over the seeds of each label: ``head, runs, methods`` (steps
    per method over the runs), the summed counts, and the largest ``worst_residual``.

    Example:
        >>> runs = pd.DataFrame({"head": ["s", "s"], "seed": [0, 1],
        ...                      "methods": ["lanczos: 3", "lanczos: 2, lobpcg: 1"],
        ...                      "steps": [3, 3], "fallback_steps": [0, 1],
        ...                      "worst_residual": [1e-6, 1e-4]})
        >>> row = solver_summary(runs).iloc[0]
        >>> row["methods"], int(row["fallback_steps"])
        ('lanczos: 5, lobpcg: 1', 1)
    """
    rows = []
    for label, group in runs.groupby("head", sort=False):
        methods: dict[str, int] = {}
        for text in group["methods"]:
            for part in filter(None, str(text).split(", ")):
                name, count = part.rsplit(": ", 1)
                methods[name] = methods.get(name, 0) + int(count)
        counts = {c: group[c].sum(min_count=1) for c in _SOLVER_COLUMNS if c in group}
        rows.append({"head": label, "runs": len(group),
                     "methods": ", ".join(f"{k}: {v}" for k, v in sorted(methods.items())),
                     **counts, "worst_residual": group["worst_residual"].max()})  # fmt: skip
    return pd.DataFrame(rows)


def _means_per_head(
    rows: list[dict[str, Any]],
    value: str,
    before: Mapping[str, tuple[str, str]] | None = None,
    after: Mapping[str, tuple[str, str]] | None = None,
) -> pd.DataFrame:
    """Rows ``head, seed, value, ...`` -> ``head, runs, <before>, value, value_std, <after>,
    ratio``: mean and std of ``value`` over each head's runs, ``before`` / ``after`` further
    columns as ``groupby().agg`` named aggregations, ``ratio`` the mean against the first
    head's."""
    before, after = dict(before or {}), dict(after or {})
    columns = ["head", "runs", *before, value, f"{value}_std", *after, "ratio"]
    if not rows:
        return pd.DataFrame(columns=columns)
    table = pd.DataFrame(rows).groupby("head", sort=False).agg(
        runs=("seed", "size"), **before, **{value: (value, "mean")},
        **{f"{value}_std": (value, "std")}, **after).reset_index()  # fmt: skip
    table["ratio"] = table[value] / table[value].iloc[0]
    return table[columns]


def cost_table(finals: Mapping[tuple[str, int], Mapping[str, Any]]) -> pd.DataFrame:
    """Parameters and training wall time per label (head or control), over its runs.

    Args:
        finals: ``(label, seed)`` -> the run's ``final.json`` (``parameters.total``,
            ``train_seconds``: training and per-epoch validation, ``epochs``, ``steps``).

    Returns:
        ``head, runs, parameters, seconds_per_epoch, seconds_per_epoch_std,
        seconds_per_step, ratio``: means over the runs; ``ratio`` is ``seconds_per_epoch``
        against the first label's (the runs share the machine, so only ratios compare).

    Example:
        >>> finals = {("conv", 0): {"parameters": {"total": 10}, "train_seconds": 20.0,
        ...                         "epochs": 2, "steps": 10},
        ...           ("spectral", 0): {"parameters": {"total": 12}, "train_seconds": 50.0,
        ...                             "epochs": 2, "steps": 10}}
        >>> cost_table(finals)[["head", "seconds_per_epoch", "ratio"]].values.tolist()
        [['conv', 10.0, 1.0], ['spectral', 25.0, 2.5]]
    """
    rows = [{"head": label, "seed": seed, "parameters": final["parameters"]["total"],
             "seconds_per_epoch": final["train_seconds"] / final["epochs"],
             "seconds_per_step": (final["train_seconds"] / final["steps"]
                                  if final.get("steps") else float("nan"))}
            for (label, seed), final in finals.items()
            if final.get("train_seconds") and final.get("epochs")]  # fmt: skip
    return _means_per_head(rows, "seconds_per_epoch",
                           before={"parameters": ("parameters", "first")},
                           after={"seconds_per_step": ("seconds_per_step", "mean")})  # fmt: skip


def inference_table(evaluations: Mapping[tuple[str, int, str], Mapping[str, Any]],
                    split: str) -> pd.DataFrame:  # fmt: skip
    """Forward seconds per image at evaluation (the evaluation JSON's ``forward``), per head.

    Args:
        evaluations: ``(head, seed, split)`` -> the evaluation JSON; runs without a timed
            forward (written before it was measured) are left out.
        split: the split whose evaluations count.

    Returns:
        ``head, runs, seconds_per_image, seconds_per_image_std, ratio``: means over the runs;
        ``ratio`` against the first head's (the runs share the machine: compare ratios).

    Example:
        >>> ev = {("conv", 0, "test"): {"forward": {"seconds_per_image": 0.125}},
        ...       ("spectral", 0, "test"): {"forward": {"seconds_per_image": 0.25}}}
        >>> inference_table(ev, "test")[["head", "ratio"]].values.tolist()
        [['conv', 1.0], ['spectral', 2.0]]
    """
    rows = [{"head": head, "seed": seed,
             "seconds_per_image": record["forward"]["seconds_per_image"]}
            for (head, seed, name), record in evaluations.items()
            if name == split
            and (record.get("forward") or {}).get("seconds_per_image")]  # fmt: skip
    return _means_per_head(rows, "seconds_per_image")
