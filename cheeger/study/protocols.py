"""Protocols side by side: this profile's numbers beside another profile's on the same dataset.

A profile's report names its protocol in ``metrics.json`` (``"protocol"``: dataset, encoder,
whether it was pretrained and frozen, input resolution, epochs, augmentation;
:func:`protocol_record`). When another profile of the same dataset has a report in the results
folder (e.g. ``results/camvid/``, the from-scratch U-Net at 180x240, beside
``results/camvid_lite0/``, the frozen pretrained encoder at 360x480), the report puts both
protocols' heads side by side (:func:`protocols_table`, :func:`per_class_protocols`), read from
that profile's committed ``metrics.json`` and ``tables/per_class_iou_<split>.csv``. A
``metrics.json`` without a ``"protocol"`` record was written by an earlier pipeline: its
protocol is described from today's ``params.yaml`` and the report says that its numbers predate
later training changes.

Example:
    >>> others = other_protocols(params, study, Layout("results"))  # doctest: +SKIP
    >>> protocols_table(headline, study, others)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from cheeger.config import DataConfig, ModelConfig, ParamsError, TrainConfig
from cheeger.study.collect import read_json
from cheeger.study.config import StudyConfig
from cheeger.study.layout import METRICS, TABLES, Layout
from cheeger.study.tables import display

__all__ = ["OtherProtocol", "other_protocols", "per_class_protocols", "protocol_record",
           "protocol_words", "protocols_table"]  # fmt: skip

#: Metrics shown side by side (the ones both protocols' metrics.json hold).
SIDE_BY_SIDE = ("miou", "boundary_miou", "pixel_accuracy", "class_accuracy")
#: Said of a metrics.json without a protocol record (the pipeline began recording it later).
UNRECORDED = ("its metrics.json carries no protocol record: those runs were made by an earlier "
              "pipeline and predate the training-numerics changes since (e.g. the spectral "
              "head's backward broadening rule `spectral.head.solver.eps_rule: gap`), so they "
              "are not rerun with today's code; the protocol shown is that profile's in "
              "today's params.yaml")  # fmt: skip


def protocol_record(params: Mapping[str, Any], profile: str) -> dict[str, Any]:
    """The protocol of ``profile``'s runs, as ``metrics.json`` records it.

    Example:
        >>> record = protocol_record(params, "camvid_lite0")  # doctest: +SKIP
        >>> record["encoder"], record["frozen"], record["resolution"]  # doctest: +SKIP
        ('efficientnet_lite0', True, [360, 480])
    """
    model = ModelConfig.from_params(params, profile)
    train = TrainConfig.from_params(params, profile)
    data = DataConfig.from_params(params, profile)
    pretrained = model.encoder != "unet"
    cached = pretrained and model.features is not None
    augment = ({"hflip": data.augment.hflip} if cached else  # cached taps: flips only
               {"scale": list(data.augment.scale), "crop": data.augment.crop,
                "hflip": data.augment.hflip})  # fmt: skip
    return {
        "dataset": data.dataset, "encoder": model.encoder, "pretrained": pretrained,
        "frozen": pretrained and model.freeze_encoder, "features_cached": cached,
        "decoder": (f"fpn width {model.decoder_width}" if pretrained else
                    f"unet depth {model.depth} width {model.width}"),
        "resolution": list(data.resolution), "epochs": train.epochs,
        "batch_size": train.batch_size, "augment": augment,
    }  # fmt: skip


def protocol_words(record: Mapping[str, Any], seeds: int | None = None) -> str:
    """``record`` (:func:`protocol_record`) in a few words, e.g. ``frozen EfficientNet-Lite0
    (ImageNet) + FPN decoder (width 64), 360x480, 10 epochs, flips only``."""
    if record["encoder"] == "unet":
        model = f"U-Net from scratch ({record['decoder'].removeprefix('unet ')})"
    else:
        mode = "frozen" if record["frozen"] else "fine-tuned"
        name = {"efficientnet_lite0": "EfficientNet-Lite0"}.get(record["encoder"],
                                                                record["encoder"])
        model = (f"{mode} {name} (ImageNet) + FPN decoder "
                 f"({record['decoder'].removeprefix('fpn ')})")  # fmt: skip
    augment = record.get("augment", {})
    steps = "flips only" if set(augment) == {"hflip"} else "scale, crop and flips"
    height, width = record["resolution"]
    text = f"{model}, {height}x{width}, {record['epochs']} epochs, {steps}"
    return text + (f", {seeds} seeds" if seeds is not None else "")


@dataclass(frozen=True)
class OtherProtocol:
    """Another profile's committed report on the same dataset.

    Attributes:
        profile: its profile name.
        record: its protocol (recorded in its metrics.json, else from params.yaml).
        recorded: whether its metrics.json recorded the protocol.
        metrics: its metrics.json.
        per_class: its per-class IoU table (``class, head, n, mean, std, ...``), or ``None``.
    """

    profile: str
    record: Mapping[str, Any]
    recorded: bool
    metrics: Mapping[str, Any]
    per_class: pd.DataFrame | None

    def words(self) -> str:
        """Its protocol in a few words, with its seed count (and the note when unrecorded)."""
        text = protocol_words(self.record, self.metrics.get("seeds"))
        return text if self.recorded else f"{text}; {UNRECORDED}"


def other_protocols(
    params: Mapping[str, Any], study: StudyConfig, layout: Layout, dataset: str
) -> list[OtherProtocol]:
    """Every other profile of ``dataset`` whose report (metrics.json) is in ``layout``, scored
    on the same split; in params.yaml order.

    Raises:
        StudyFileError: an unreadable metrics.json.
    """
    found = []
    for name in params.get("profiles", {}):
        if name == study.profile or not layout.path(METRICS, profile=name).is_file():
            continue
        try:
            data = DataConfig.from_params(params, name)
        except ParamsError:  # a profile that cannot be read is not compared
            continue
        metrics = read_json(layout.path(METRICS, profile=name))
        if data.dataset != dataset or metrics.get("split") != study.report_split:
            continue
        recorded = "protocol" in metrics
        record = metrics["protocol"] if recorded else protocol_record(params, name)
        table = layout.path(TABLES, profile=name) / f"per_class_iou_{study.report_split}.csv"
        per_class = pd.read_csv(table) if table.is_file() else None
        found.append(OtherProtocol(name, record, recorded, metrics, per_class))
    return found


def _label(profile: str, head: str) -> str:
    return f"{profile}: {head}"


def protocols_table(
    headline: pd.DataFrame, study: StudyConfig, others: Sequence[OtherProtocol],
    metrics: Sequence[str] = SIDE_BY_SIDE,
) -> pd.DataFrame:  # fmt: skip
    """``mean ± std [CI]`` per metric (rows) and ``<profile>: <head>`` (columns): this profile's
    heads (``headline``: :func:`~cheeger.study.tables.heads_table` on the report split), then
    each other protocol's, from its metrics.json."""
    rows = [{**r, "column": _label(study.profile, r["head"])}
            for r in headline.to_dict("records") if r["metric"] in metrics]  # fmt: skip
    for other in others:
        for head in (h for h in other.metrics if isinstance(other.metrics[h], Mapping)):
            for metric in metrics:
                stats = other.metrics[head].get(metric)
                if not isinstance(stats, Mapping) or "mean" not in stats:
                    continue  # a difference block (spectral_minus_conv) or another metric
                rows.append({"metric": metric, "column": _label(other.profile, head),
                             "n": other.metrics.get("seeds", 0),
                             **{k: _number(stats.get(k)) for k in ("mean", "std", "ci_low",
                                                                   "ci_high")}})  # fmt: skip
    return display(pd.DataFrame(rows), "metric", "column").fillna("n/a")  # not in its report


def per_class_protocols(
    per_class: pd.DataFrame, study: StudyConfig, others: Sequence[OtherProtocol]
) -> pd.DataFrame:
    """Per-class IoU (``mean ± std [CI]``), classes as rows, ``<profile>: <head>`` columns:
    this profile's (``per_class``: :func:`~cheeger.study.tables.per_class_table`) and each
    other protocol's table, where it has one."""
    frames = [per_class.assign(column=[_label(study.profile, h) for h in per_class["head"]])]
    for other in others:
        if other.per_class is not None:
            frames.append(other.per_class.assign(
                column=[_label(other.profile, h) for h in other.per_class["head"]]))
    return display(pd.concat(frames, ignore_index=True), "class", "column").fillna("n/a")


def _number(value: Any) -> float:
    return float("nan") if value is None else float(value)
