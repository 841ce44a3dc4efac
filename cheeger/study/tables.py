"""The report's tables: seed statistics per head, head comparison, per-class IoU, ablations,
eigensolver scaling and gradient stability, each written as CSV, Markdown and LaTeX.

The CSV files hold the raw numbers (means, stds, interval ends, seed counts) for other tools; the
Markdown and LaTeX versions are for reading and show ``mean ± std [CI low, CI high]``.

Example:
    >>> import pandas as pd
    >>> scalars = pd.DataFrame({"head": ["conv"] * 2 + ["spectral"] * 2, "seed": [0, 1, 0, 1],
    ...                         "split": "test", "metric": "miou", "value": [.5, .6, .7, .8]})
    >>> heads_table(scalars, "test")[["metric", "head", "n", "mean"]].to_dict("records")[1]
    {'metric': 'miou', 'head': 'spectral', 'n': 2, 'mean': 0.75}
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from cheeger.data.io import atomic_write_bytes
from cheeger.study.broadening import summarize as broadening_summary
from cheeger.study.collect import SCALAR_METRICS
from cheeger.study.statistics import summarize, welch_difference

__all__ = [
    "ablation_table",
    "broadening_table",
    "comparison_table",
    "display",
    "gradients_table",
    "heads_table",
    "per_class_table",
    "write_table",
]


def heads_table(scalars: pd.DataFrame, split: str, confidence: float = 0.95) -> pd.DataFrame:
    """Mean, std and t interval over seeds of each metric and head on ``split``."""
    frame = scalars[scalars["split"] == split]
    table = summarize(frame, ["metric", "head"], confidence=confidence)
    order = {m: i for i, m in enumerate(SCALAR_METRICS)}
    return table.sort_values("metric", key=lambda s: s.map(order), kind="stable",
                             ignore_index=True)  # fmt: skip


def comparison_table(
    scalars: pd.DataFrame, split: str, baseline: str, challenger: str, confidence: float = 0.95
) -> pd.DataFrame:
    """``challenger - baseline`` per metric with Welch's interval and the verdict.

    Columns: ``metric, higher_is_better, difference, ci_low, ci_high, dof, p_value, overlap,
    beyond_noise, verdict`` where ``verdict`` is ``better``, ``worse`` (for the challenger) or
    ``within noise``.
    """
    rows = []
    frame = scalars[scalars["split"] == split]
    for metric, higher in SCALAR_METRICS.items():
        values = frame[frame["metric"] == metric]
        a = values.loc[values["head"] == baseline, "value"].tolist()
        b = values.loc[values["head"] == challenger, "value"].tolist()
        result = welch_difference(a, b, confidence)
        verdict = "within noise"
        if result["beyond_noise"]:
            verdict = "better" if (result["difference"] > 0) == higher else "worse"
        rows.append({"metric": metric, "higher_is_better": higher, **result, "verdict": verdict})
    return pd.DataFrame(rows)


def per_class_table(
    per_class: pd.DataFrame, split: str, kind: str = "iou", confidence: float = 0.95
) -> pd.DataFrame:
    """Per-class statistics of ``kind`` (e.g. ``iou``) over seeds; classes in dataset order."""
    frame = per_class[(per_class["split"] == split) & (per_class["kind"] == kind)]
    return summarize(frame, ["class", "head"], confidence=confidence)


def ablation_table(ablation: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Statistics over the ablation seeds of every axis setting (the baseline flagged)."""
    return summarize(ablation, ["axis", "setting", "baseline", "metric"], confidence=confidence)


def _slope(gaps: np.ndarray, norms: np.ndarray) -> float:
    """Least-squares slope of ``log norm`` against ``log gap`` (``-1`` means ``1 / gap``)."""
    if len(gaps) < 2:
        return math.nan
    return float(np.polyfit(np.log(gaps), np.log(norms), 1)[0])


def gradients_table(sweep: pd.DataFrame) -> pd.DataFrame:
    """Per (pair, loss, eps): the largest gradient norm over gaps and trials, the norm at the
    smallest gap, the log-log slope over the smaller half of the gaps, the largest ratio of the
    norm to the broadened bound (``<= 1`` where the bound holds)."""
    rows = []
    for (pair, loss, eps), group in sweep.groupby(["pair", "loss", "eps"], sort=False):
        mean = group.groupby("gap")["grad_norm"].mean().sort_index()  # over trials
        small = mean.iloc[: max(2, len(mean) // 2)]
        finite = np.isfinite(group["bound"])  # the exact backward has no bound
        ratio = (group["grad_norm"] / group["bound"]).where(finite)
        rows.append({"pair": pair, "loss": loss, "eps": eps,
                     "max_grad_norm": float(group["grad_norm"].max()),
                     "grad_norm_at_smallest_gap": float(mean.iloc[0]),
                     "slope_small_gaps": _slope(small.index.to_numpy(), small.to_numpy()),
                     "max_norm_over_bound": float(ratio.max()) if ratio.notna().any()
                     else math.nan})  # fmt: skip
    return pd.DataFrame(rows)


def broadening_table(sweep: pd.DataFrame) -> pd.DataFrame:
    """Per (size, loss, rule, eps): median and max relative gradient error over the images
    (:func:`cheeger.study.broadening.summarize`) and the median absolute eps."""
    table = broadening_summary(sweep)
    eps_abs = sweep.groupby(["size", "loss", "rule", "eps"])["eps_abs"].median()
    keys = list(zip(table["size"], table["loss"], table["rule"], table["eps"], strict=True))
    return table.assign(eps_abs=eps_abs.loc[keys].to_numpy()).rename(
        columns={"median": "median_rel_error", "max": "max_rel_error"}
    )


def _cell(row: pd.Series, digits: int) -> str:
    if row["n"] == 0 or not math.isfinite(row["mean"]):
        return "n/a"
    def number(key: str) -> str:
        return f"{row[key]:.{digits}f}"

    text = number("mean")
    if math.isfinite(row["std"]):
        text += f" ± {number('std')} [{number('ci_low')}, {number('ci_high')}]"
    return text


def display(table: pd.DataFrame, rows: str, columns: str, digits: int = 3) -> pd.DataFrame:
    """A readable pivot of a statistics table: ``mean ± std [CI]`` cells, ``rows`` x ``columns``.

    Example:
        >>> t = pd.DataFrame({"metric": ["miou"], "head": ["conv"], "n": [2], "mean": [0.5],
        ...                   "std": [0.1], "ci_low": [0.4], "ci_high": [0.6]})
        >>> display(t, "metric", "head").loc["miou", "conv"]
        '0.500 ± 0.100 [0.400, 0.600]'
    """
    cells = table.assign(cell=table.apply(_cell, axis=1, digits=digits))
    pivot = cells.pivot(index=rows, columns=columns, values="cell")
    pivot = pivot.reindex(index=list(dict.fromkeys(table[rows])),
                          columns=list(dict.fromkeys(table[columns])))  # fmt: skip
    pivot.columns.name = None
    return pivot


def write_table(
    table: pd.DataFrame, out_dir: str | os.PathLike, name: str,
    readable: pd.DataFrame | None = None, caption: str = "", float_digits: Sequence[int] = (6,),
) -> dict[str, Path]:  # fmt: skip
    """Write ``table`` as ``<name>.csv`` and ``readable`` (default: ``table``) as ``<name>.md``
    and ``<name>.tex``, atomically; returns the three paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    shown = table if readable is None else readable
    index = readable is not None
    buffer = io.StringIO()
    table.to_csv(buffer, index=False, float_format=f"%.{float_digits[0]}g")
    paths = {"csv": out / f"{name}.csv", "md": out / f"{name}.md", "tex": out / f"{name}.tex"}
    atomic_write_bytes(paths["csv"], buffer.getvalue().encode())
    markdown = shown.to_markdown(index=index, floatfmt=".4g")
    atomic_write_bytes(paths["md"], ((f"{caption}\n\n" if caption else "") + markdown
                                     + "\n").encode())  # fmt: skip
    tex_caption = "".join(f"\\{c}" if c in "_%&#$" else c for c in caption)
    latex = shown.to_latex(index=index, float_format="%.4g", caption=tex_caption or None,
                           label=f"tab:{name}", escape=True).replace("±", r"$\pm$")  # fmt: skip
    atomic_write_bytes(paths["tex"], latex.encode())
    return paths
