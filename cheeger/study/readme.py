"""``results/<profile>/README.md``: the study's protocol, numbers, figures and a plain answer.

The text is generated from the same frames as the tables, so every number in it is one the
tables hold. It carries no timestamp: rerunning the report on unchanged results rewrites the same
bytes (clean ``git diff`` / ``dvc status``).

The answer to the study's question ("is the spectral head better, beyond seed noise?") follows
:func:`cheeger.study.statistics.welch_difference`: a difference counts only when the two heads'
own t intervals do not overlap AND Welch's interval of the difference excludes zero; otherwise
it is reported as within seed noise, which is a result, not a failure.
"""

from __future__ import annotations

import math
import os
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from cheeger.study.figures import LABELS

__all__ = ["REFERENCES", "answer", "hardware", "render_readme"]

#: Published reference points, per dataset: (method and protocol, {metric: value in %}).
#: Every CamVid row: the SegNet version of CamVid, 11 classes, test split (233 frames) at 360x480.
REFERENCES: dict[str, list[tuple[str, dict[str, float]]]] = {
    "camvid": [
        ("SegNet-Basic (Badrinarayanan et al., TPAMI 2017): trained from scratch",
         {"miou": 47.7, "pixel_accuracy": 82.7, "class_accuracy": 62.0}),
        ("ENet (Paszke et al., 2016)", {"miou": 51.3}),
        ("SegNet (Badrinarayanan et al., TPAMI 2017): VGG16 encoder with ImageNet weights",
         {"miou": 55.6}),
        ("ESPNet (Mehta et al., ECCV 2018)", {"miou": 55.6}),
        ("FC-DenseNet103 (Jégou et al., CVPR-W 2017): trained from scratch", {"miou": 66.9}),
    ],
}  # fmt: skip


def hardware() -> str:
    """CPU model, core count, OS and torch version of this machine."""
    cpu = platform.processor() or platform.machine()
    with_cpuinfo = Path("/proc/cpuinfo")
    if with_cpuinfo.is_file():
        for line in with_cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}, torch {torch.__version__}")  # fmt: skip


def _fmt(value: float, digits: int = 3) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def answer(comparison: pd.DataFrame, heads: pd.DataFrame, baseline: str, challenger: str,
           split: str, confidence: float) -> str:  # fmt: skip
    """The plain answer for ``challenger`` against ``baseline`` (tables of one split)."""
    stats = heads.set_index(["metric", "head"])
    rows = comparison.set_index("metric")
    if not {(m, h) for m in ("miou",) for h in (baseline, challenger)} <= set(stats.index):
        return "No answer: the comparison lacks one of the heads."
    if min(stats.loc[("miou", baseline), "n"], stats.loc[("miou", challenger), "n"]) < 2:
        return ("**No answer beyond noise is possible**: fewer than two seeds per head, so seed "
                f"noise cannot be estimated (see the {split} table for the single values).\n")
    parts = []
    for metric in ("miou", "boundary_miou"):
        row, a, b = rows.loc[metric], stats.loc[(metric, baseline)], stats.loc[(metric, challenger)]
        parts.append(
            f"{LABELS[metric]}: {challenger} {_fmt(b['mean'])} ± {_fmt(b['std'])} vs {baseline} "
            f"{_fmt(a['mean'])} ± {_fmt(a['std'])} (difference {row['difference']:+.3f}, "
            f"{confidence:.0%} Welch interval [{_fmt(row['ci_low'])}, {_fmt(row['ci_high'])}], "
            f"p = {_fmt(row['p_value'])}): **{row['verdict']}**")  # fmt: skip
    verdicts = {rows.loc[m, "verdict"] for m in ("miou", "boundary_miou")}
    headline = ("miou", "boundary_miou")
    others = [f"{LABELS[m]} ({rows.loc[m, 'verdict']})" for m in rows.index
              if m not in headline and rows.loc[m, "verdict"] != "within noise"]  # fmt: skip
    if verdicts == {"better"}:
        lead = f"**Yes.** The {challenger} head is better than the {baseline} head"
    elif "better" in verdicts and "worse" not in verdicts:
        lead = f"**Partly.** The {challenger} head is better on one of the two headline metrics"
    elif "worse" in verdicts and "better" not in verdicts:
        lead = f"**No: it is worse.** The {challenger} head is below the {baseline} head"
    elif verdicts == {"within noise"}:
        lead = (f"**No.** The {challenger} head is not better than the {baseline} head beyond "
                "seed noise")  # fmt: skip
    else:
        lead = "**Mixed.** The heads differ beyond noise in opposite directions"
    text = f"{lead} on the {split} split.\n\n" + "\n".join(f"- {p}" for p in parts)
    if others:
        text += "\n- Other metrics beyond seed noise: " + ", ".join(others) + "."
    return text + "\n"


def _blank(frame: pd.DataFrame) -> pd.DataFrame:
    """Unpublished numbers as empty cells, not ``nan``."""
    return frame.astype(object).where(frame.notna(), "")


def _table(frame: pd.DataFrame, index: bool = True) -> str:
    return frame.to_markdown(index=index, floatfmt=".4g")


def render_readme(
    *,
    profile: str,
    answer_text: str,
    protocol: Sequence[tuple[str, str]],
    sections: Sequence[tuple[str, str]],
    figures: Mapping[str, str],
    references: Sequence[tuple[str, Mapping[str, float]]] = (),
    ours: Mapping[str, Mapping[str, float]] | None = None,
    ours_protocol: str = "this protocol",
) -> str:
    """Assemble the Markdown document.

    Args:
        profile: profile name (title).
        answer_text: from :func:`answer`.
        protocol: ``(item, description)`` lines.
        sections: ``(heading, markdown body)`` in order.
        figures: caption -> relative image path (PNG), shown at the end.
        references: published reference points for the dataset.
        ours: head -> {metric: mean} on the report split, put beside the references (in %).
        ours_protocol: how our rows were made, in a few words (their label and the note
            saying how the references differ).
    """
    lines = [f"# Results: conv head vs spectral head ({profile} profile)", "",
             "Generated by `cheeger report` (the last stage of `snakemake` / `dvc repro`) from "
             "the runs in this folder; do not edit by hand.", "",
             "## Answer", "", answer_text, "## Protocol", ""]  # fmt: skip
    lines += [f"- **{item}**: {text}" for item, text in protocol]
    lines.append("")
    for heading, body in sections:
        lines += [f"## {heading}", "", body.rstrip(), ""]
    if references:
        rows: list[dict[str, Any]] = [{"model": name, **{LABELS[m]: v for m, v in values.items()}}
                                      for name, values in references]  # fmt: skip
        for head, values in (ours or {}).items():
            rows.append({"model": f"ours, {head} head ({ours_protocol})",
                         **{LABELS[m]: round(100 * v, 1) for m, v in values.items()
                            if m in ("miou", "pixel_accuracy", "class_accuracy")}})  # fmt: skip
        lines += ["## Published reference points", "",
                  "In %, the published test-split numbers (for CamVid: 11 classes, 233 frames at "
                  f"360x480). Our protocol differs ({ours_protocol}; see Protocol) in "
                  "resolution, epochs, augmentation and model size: the references place the "
                  "numbers, they are not a like-for-like comparison.", "",
                  _table(_blank(pd.DataFrame(rows)), index=False), ""]  # fmt: skip
    if figures:
        lines += ["## Figures", ""]
        for caption, path in figures.items():
            lines += [f"**{caption}**", "", f"![{caption}]({path})", ""]
    return "\n".join(lines).rstrip() + "\n"
