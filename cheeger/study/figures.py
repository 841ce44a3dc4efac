"""The report's figures (seaborn on matplotlib's object API), each saved as PNG and PDF.

No pyplot and no global style: every figure is a :class:`matplotlib.figure.Figure` on an Agg
canvas drawn inside seaborn's style context, so the report can run in any process. Intervals are
the t intervals of :mod:`cheeger.study.statistics` (over seeds), not seaborn's bootstrap.

Example:
    >>> import pandas as pd, tempfile
    >>> frame = pd.DataFrame({"solver": ["a", "a"], "n": [100, 400], "seconds": [0.1, 0.5]})
    >>> sorted(p.suffix for p in save_figure(scaling_figure(frame), tempfile.mkdtemp(), "s"))
    ['.pdf', '.png']
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from cheeger.data.io import atomic_write_bytes
from cheeger.study.collect import SCALAR_METRICS
from cheeger.study.statistics import summarize

__all__ = [
    "ablation_figure",
    "broadening_figure",
    "curves_figure",
    "diagnostics_figure",
    "gradients_figure",
    "heads_figure",
    "new_figure",
    "per_class_figure",
    "save_figure",
    "scaling_figure",
]

# The cross-entropy, not the total loss: the spectral head's total adds its own terms.
CURVE_METRICS = {"train_ce": "train cross-entropy", "val_miou": "val mIoU",
                 "val_boundary_miou": "val boundary mIoU"}  # fmt: skip
LABELS = {"miou": "mIoU", "boundary_miou": "boundary mIoU", "pixel_accuracy": "pixel accuracy",
          "class_accuracy": "class-average accuracy", "excess_components": "excess components",
          "stray_fraction": "stray pixel fraction"}  # fmt: skip


@contextlib.contextmanager
def _style() -> Iterator[None]:
    with sns.axes_style("whitegrid"), sns.plotting_context("paper"):
        yield


def new_figure(rows: int, cols: int, width: float = 3.2, height: float = 2.6):
    """A constrained-layout figure with a ``rows x cols`` grid of axes (always a 2-D array)."""
    fig = Figure(figsize=(width * cols, height * rows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = np.atleast_2d(fig.subplots(rows, cols, squeeze=False))
    return fig, axes


def save_figure(fig: Figure, out_dir: str | os.PathLike, name: str) -> list[Path]:
    """Write ``<name>.png`` (150 dpi) and ``<name>.pdf`` atomically; returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in ("png", "pdf"):
        buffer = io.BytesIO()
        fig.savefig(buffer, format=fmt, dpi=150, metadata={"CreationDate": None}
                    if fmt == "pdf" else None)  # fmt: skip
        atomic_write_bytes(out / f"{name}.{fmt}", buffer.getvalue())
        paths.append(out / f"{name}.{fmt}")
    return paths


def _band(ax: Axes, stats: pd.DataFrame, x: str, hue: str, palette: dict) -> None:
    for name, group in stats.groupby(hue, sort=False):
        colour = palette[name]
        ax.plot(group[x], group["mean"], marker="o", markersize=3, color=colour, label=name)
        ok = group["ci_low"].notna()
        ax.fill_between(group[x][ok], group["ci_low"][ok], group["ci_high"][ok], color=colour,
                        alpha=0.2, linewidth=0)  # fmt: skip


def _palette(names: Sequence[str]) -> dict[str, tuple]:
    return dict(zip(names, sns.color_palette("colorblind", len(names)), strict=True))


def curves_figure(curves: pd.DataFrame, confidence: float = 0.95) -> Figure:
    """Training curves per head: mean over seeds with the t band, one panel per quantity."""
    columns = [c for c in CURVE_METRICS if c in curves.columns]
    heads = list(dict.fromkeys(curves["head"]))
    palette = _palette(heads)
    with _style():
        fig, axes = new_figure(1, max(1, len(columns)))
        for ax, column in zip(axes[0], columns, strict=False):
            long = curves[["head", "seed", "epoch", column]].rename(columns={column: "value"})
            stats = summarize(long, ["head", "epoch"], confidence=confidence)
            _band(ax, stats, "epoch", "head", palette)
            ax.set(xlabel="epoch", ylabel=CURVE_METRICS[column])
        axes[0, 0].legend(title="head", fontsize=7)
    return fig


def diagnostics_figure(
    curves: pd.DataFrame, columns: dict[str, str], confidence: float = 0.95
) -> Figure:
    """Graph diagnostics per epoch: one panel per column of ``columns`` (name -> title), one
    line per head or control (the ``head`` column) with the t band over seeds; labels without
    a finite value of a column are not drawn in its panel."""
    present = [c for c in columns if c in curves.columns and curves[c].notna().any()]
    labels = list(dict.fromkeys(curves["head"]))
    palette = _palette(labels)
    cols = min(3, max(1, len(present)))
    rows = -(-len(present) // cols) or 1
    with _style():
        fig, axes = new_figure(rows, cols, width=3.4, height=2.6)
        for ax, column in zip(axes.flat, present, strict=False):
            long = curves[["head", "seed", "epoch", column]].rename(columns={column: "value"})
            stats = summarize(long.dropna(subset=["value"]), ["head", "epoch"],
                              confidence=confidence)  # fmt: skip
            _band(ax, stats, "epoch", "head", palette)
            ax.set(xlabel="epoch", ylabel=column.removeprefix("diag_"))
            ax.set_title(columns[column], fontsize=6, wrap=True)
        for ax in list(axes.flat)[len(present):]:
            ax.set_visible(False)
        if present:
            axes.flat[0].legend(title="head / control", fontsize=6)
    return fig


def heads_figure(scalars: pd.DataFrame, split: str, confidence: float = 0.95) -> Figure:
    """Each metric on ``split``: every seed as a dot, the mean with its t interval as a bar."""
    frame = scalars[scalars["split"] == split].dropna(subset=["value"])
    metrics = [m for m in SCALAR_METRICS if m in set(frame["metric"])]
    heads = list(dict.fromkeys(scalars["head"]))
    palette = _palette(heads)
    cols = min(3, max(1, len(metrics)))
    rows = -(-len(metrics) // cols) or 1
    with _style():
        fig, axes = new_figure(rows, cols, width=2.6, height=2.4)
        for ax, metric in zip(axes.flat, metrics, strict=False):
            data = frame[frame["metric"] == metric]
            sns.stripplot(data=data, x="head", y="value", hue="head", order=heads,
                          palette=palette, ax=ax, size=4, alpha=0.6, legend=False)  # fmt: skip
            stats = summarize(data, ["head"], confidence=confidence).set_index("head")
            for i, head in enumerate(heads):
                if head in stats.index and np.isfinite(stats.loc[head, "mean"]):
                    row = stats.loc[head]
                    err = row["ci_half"] if np.isfinite(row["ci_half"]) else 0.0
                    ax.errorbar(i + 0.25, row["mean"], yerr=err, fmt="D", color="black",
                                markersize=4, capsize=3)  # fmt: skip
            arrow = "↑" if SCALAR_METRICS[metric] else "↓"  # which way is better
            ax.set(xlabel="", ylabel="", title=f"{LABELS.get(metric, metric)} {arrow}",
                   xlim=(-0.5, len(heads) - 0.5))  # fmt: skip
        for ax in list(axes.flat)[len(metrics):]:
            ax.set_visible(False)
        fig.suptitle(f"{split} split: seeds (dots), mean and {confidence:.0%} t interval "
                     "(diamonds); ↑ higher is better, ↓ lower")  # fmt: skip
    return fig


def per_class_figure(table: pd.DataFrame, ylabel: str = "IoU") -> Figure:
    """Grouped bars per class and head with t-interval whiskers (``table``: per_class_table)."""
    classes = list(dict.fromkeys(table["class"]))
    heads = list(dict.fromkeys(table["head"]))
    palette = _palette(heads)
    width = 0.8 / max(1, len(heads))
    with _style():
        fig, axes = new_figure(1, 1, width=max(4.0, 0.55 * len(classes) * len(heads)), height=3.0)
        ax = axes[0, 0]
        x = np.arange(len(classes))
        for j, head in enumerate(heads):
            rows = table[table["head"] == head].set_index("class").reindex(classes)
            err = rows["ci_half"].fillna(0.0).to_numpy()
            ax.bar(x + (j - (len(heads) - 1) / 2) * width, rows["mean"].to_numpy(), width,
                   yerr=err, capsize=2, color=palette[head], label=head)  # fmt: skip
        ax.set_xticks(x, classes, rotation=45, ha="right")
        ax.set(ylabel=ylabel, ylim=(0, 1))
        ax.legend(title="head", fontsize=7)
    return fig


def scaling_figure(frame: pd.DataFrame) -> Figure:
    """Eigensolver time against problem size, log-log, one line per solver; one panel per graph
    family (the ``graph`` column, when there is one), side by side on shared axes."""
    graphs = list(dict.fromkeys(frame["graph"])) if "graph" in frame.columns else [None]
    with _style():
        fig, axes = new_figure(1, len(graphs), width=4.2, height=3.2)
        for j, graph in enumerate(graphs):
            ax = axes[0, j]
            data = frame if graph is None else frame[frame["graph"] == graph]
            sns.lineplot(data=data, x="n", y="seconds", hue="solver", style="solver",
                         markers=True, dashes=False, errorbar=None, ax=ax,
                         hue_order=sorted(set(frame["solver"])),
                         style_order=sorted(set(frame["solver"])))  # fmt: skip
            ax.set(xscale="log", yscale="log", xlabel="nodes n", ylabel="seconds per solve",
                   title=graph or "")  # fmt: skip
            if j:
                ax.get_legend().remove()
        if len(graphs) > 1:  # shared axes, so the families compare at a glance
            lows, highs = zip(*(ax.get_ylim() for ax in axes[0]), strict=True)
            for ax in axes[0]:
                ax.set_ylim(min(lows), max(highs))
    return fig


def gradients_figure(sweep: pd.DataFrame) -> Figure:
    """``||dL/dA||_F`` against the gap (log-log) per pair position and loss; one line per eps
    (0 = exact), dashed: the broadened bound of the same eps."""
    pairs = list(dict.fromkeys(sweep["pair"]))
    losses = list(dict.fromkeys(sweep["loss"]))
    eps_values = sorted(set(sweep["eps"]))
    names = {e: "exact (eps=0)" if e == 0 else f"eps={e:g}" for e in eps_values}
    palette = _palette([names[e] for e in eps_values])
    with _style():
        fig, axes = new_figure(len(pairs), len(losses), width=3.4, height=2.8)
        for (i, pair), (j, loss) in ((p, q) for p in enumerate(pairs) for q in enumerate(losses)):
            ax = axes[i, j]
            data = sweep[(sweep["pair"] == pair) & (sweep["loss"] == loss)]
            mean = data.groupby(["eps", "gap"], as_index=False)[["grad_norm", "bound"]].mean()
            for eps in eps_values:
                line = mean[mean["eps"] == eps]
                colour = palette[names[eps]]
                ax.plot(line["gap"], line["grad_norm"], marker="o", markersize=2.5,
                        color=colour, label=names[eps])  # fmt: skip
                if eps > 0:
                    ax.plot(line["gap"], line["bound"], linestyle="--", linewidth=0.8,
                            color=colour)  # fmt: skip
            ax.set(xscale="log", yscale="log", xlabel="eigengap of the pair",
                   ylabel="||dL/dA||_F", title=f"{loss} loss, pair {pair}")  # fmt: skip
        axes[0, 0].legend(fontsize=6)
    return fig


def broadening_figure(sweep: pd.DataFrame) -> Figure:
    """Relative gradient error against eps (log-log), one panel per graph size, one line per
    rule (and loss, if several): the median over images, the band up to their max."""
    sizes = list(dict.fromkeys(sweep["size"]))
    lines = list(dict.fromkeys(zip(sweep["rule"], sweep["loss"], strict=True)))
    several = len({loss for _, loss in lines}) > 1
    names = {key: f"{key[0]} ({key[1]})" if several else f"rule {key[0]}" for key in lines}
    palette = _palette(list(names.values()))
    with _style():
        fig, axes = new_figure(1, len(sizes), width=3.4, height=2.8)
        for ax, size in zip(axes[0], sizes, strict=True):
            for key, name in names.items():
                data = sweep[(sweep["size"] == size) & (sweep["rule"] == key[0])
                             & (sweep["loss"] == key[1])]  # fmt: skip
                stats = data.groupby("eps")["rel_error"].agg(["median", "max"]).sort_index()
                ax.plot(stats.index, stats["median"], marker="o", markersize=2.5,
                        color=palette[name], label=name)  # fmt: skip
                ax.fill_between(stats.index, stats["median"], stats["max"], alpha=0.2,
                                color=palette[name], linewidth=0)  # fmt: skip
            ax.set(xscale="log", yscale="log", xlabel="eps (relative to the rule's scale)",
                   ylabel="relative gradient error", title=f"graph {size}")  # fmt: skip
        axes[0, 0].legend(fontsize=6)
    return fig


def _numeric(settings: Sequence[str]) -> list[float] | None:
    try:
        return [float(s) for s in settings]
    except ValueError:
        return None


def ablation_figure(
    table: pd.DataFrame, metrics: Sequence[str] = ("miou", "boundary_miou"), split: str = "val"
) -> Figure:
    """One panel per ablation axis: each metric's mean (t-interval whiskers) at every setting;
    the baseline (the main runs' setting) drawn as a star."""
    axes_names = list(dict.fromkeys(table["axis"]))
    palette = _palette(list(metrics))
    with _style():
        fig, axes = new_figure(1, max(1, len(axes_names)), width=3.0, height=2.6)
        for ax, name in zip(axes[0], axes_names, strict=False):
            data = table[(table["axis"] == name) & table["metric"].isin(metrics)]
            settings = list(dict.fromkeys(data["setting"]))
            numbers = _numeric(settings)
            for metric in metrics:
                rows = data[data["metric"] == metric]
                if numbers is not None:
                    rows = rows.assign(x=rows["setting"].astype(float)).sort_values("x")
                else:
                    rows = rows.assign(x=rows["setting"].map(settings.index))
                err = rows["ci_half"].fillna(0.0)
                ax.errorbar(rows["x"], rows["mean"], yerr=err, marker="o", markersize=3,
                            capsize=2, color=palette[metric], label=LABELS[metric])  # fmt: skip
                base = rows[rows["baseline"]]
                ax.scatter(base["x"], base["mean"], marker="*", s=90, color=palette[metric],
                           edgecolor="black", zorder=3)  # fmt: skip
            if numbers is None:
                ax.set_xticks(range(len(settings)), settings)
            elif min(numbers) > 0 and max(numbers) / min(numbers) > 20:
                ax.set_xscale("log")
            ax.set(xlabel=name, ylabel=f"{split} score", title=f"ablation: {name}")
        axes[0, 0].legend(fontsize=7)
    return fig
