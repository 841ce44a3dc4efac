"""``cheeger report``: the study's tables, figures, ``metrics.json`` and ``README.md``.

Reads every output the pipeline declared for the profile (:mod:`cheeger.study.collect`), and
writes into ``out`` (default: the profile's report folder, ``results/<profile>/``; see
:mod:`cheeger.study.layout`)::

    README.md        protocol, numbers, figures and the plain answer (cheeger.study.readme)
    metrics.json     the protocol (encoder, resolution, ...); per head and metric on the report
                     split: mean, std, t interval; the challenger-minus-baseline differences
                     (and each further head minus the challenger); per control and metric the
                     same statistics; the unsupervised routes (the DVC metrics file)
    tables/          heads_<split>, comparison_<split> (comparison_<head>_<split> for each
                     further head), unsupervised, per_class_iou_<split> (the report
                     split; controls included), protocols_<split> and per_class_protocols_<split>
                     (beside another profile of the dataset), controls_<split>, diagnostics,
                     solver_runs and solver, ablation, scaling, gradients, broadening (.csv,
                     .md, .tex); curves.csv and curves_mean.csv (per epoch, for `dvc plots`)
    figures/         curves, heads_<split>, controls_<split>, per_class_iou, diagnostics,
                     scaling, gradients, broadening, ablation, panel (.png, .pdf)

Example:
    >>> make_report("params.yaml", "embedded", results="results")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from cheeger.config import ModelConfig, TrainConfig, load_params
from cheeger.data import load_manifest
from cheeger.data.io import atomic_write_bytes
from cheeger.study import figures as F
from cheeger.study import tables as T
from cheeger.study.collect import ReportConfig, StudyData, collect_study, json_safe, read_json
from cheeger.study.config import StudyConfig, deep_merge
from cheeger.study.controls import (
    ControlsData,
    collect_controls,
    controls_answer,
    controls_caption,
    controls_table,
)
from cheeger.study.diagnostics import (
    DIAGNOSTICS,
    cost_table,
    diagnostics_table,
    diagnostics_view,
    inference_table,
    solver_summary,
    solver_table,
)
from cheeger.study.layout import (
    ABLATION_DONE,
    BROADENING,
    PREPARED,
    REPORT,
    RUN,
    TRIAL_DONE,
    UNSUPERVISED_DONE,
    Layout,
)
from cheeger.study.panel import panel_figure
from cheeger.study.protocols import (
    other_protocols,
    per_class_protocols,
    protocol_record,
    protocol_words,
    protocols_table,
)
from cheeger.study.readme import REFERENCES, answer, hardware, render_readme
from cheeger.study.trial import collect_trial, trial_caption, trial_table
from cheeger.study.unsupervised import unsupervised_metrics, unsupervised_table, unsupervised_text

BROADENING_TEXT = (
    "How far the broadened backward of `eigsh` is from the exact one: on 8-neighbour colour "
    "graphs of the prepared images (median-rule bandwidth, resized to each size), the relative "
    "error of the gradient of the head's basis-invariant loss `<G, U h(Lambda) U^T X>` (random "
    "smooth filter, evidence and cotangent) against its closed form (Daleckii-Krein), for each "
    "relative eps and each rule that makes it absolute: `rms` (eps times the RMS eigenvalue) or "
    "`gap` (eps times the computed block's mean gap). Median and max over the images; "
    "`eps_abs` is the median absolute eps (cheeger/study/broadening.py)."
)

__all__ = ["ReportConfig", "make_report"]


def _metrics_json(heads: pd.DataFrame, comparison: pd.DataFrame | None, study: StudyConfig,
                  challenger: str | None, baseline: str, protocol: dict[str, Any],
                  controls: pd.DataFrame | None = None) -> dict[str, Any]:  # fmt: skip
    result: dict[str, Any] = {"profile": study.profile, "split": study.report_split,
                              "seeds": len(study.seeds), "protocol": protocol}  # fmt: skip
    for row in heads.to_dict("records"):
        result.setdefault(row["head"], {})[row["metric"]] = {
            k: row[k] for k in ("mean", "std", "ci_low", "ci_high")}  # fmt: skip
    if controls is not None:  # each control's own statistics, keyed as a head's
        names = {c.name for c in study.controls}
        for row in controls[controls["head"].isin(names)].to_dict("records"):
            result.setdefault("controls", {}).setdefault(row["head"], {})[row["metric"]] = {
                k: row[k] for k in ("mean", "std", "ci_low", "ci_high")}  # fmt: skip
    if comparison is not None:
        result[f"{challenger}_minus_{baseline}"] = _differences(comparison)
    return json_safe(result)


def _differences(comparison: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """``metrics.json``'s block of one Welch comparison: metric -> difference, interval, p."""
    return {row["metric"]: {k: row[k] for k in ("difference", "ci_low", "ci_high", "p_value",
                                                "beyond_noise")}
            for row in comparison.to_dict("records")}  # fmt: skip


def _curves_mean(curves: pd.DataFrame) -> pd.DataFrame:
    """Wide per-epoch means over seeds (``epoch, <head>_<column>``) for ``dvc plots``."""
    columns = [c for c in F.CURVE_METRICS if c in curves.columns]
    mean = curves.groupby(["head", "epoch"])[columns].mean().unstack("head")
    mean.columns = [f"{head}_{column}" for column, head in mean.columns]
    return mean.reset_index()


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    atomic_write_bytes(path, frame.to_csv(index=False, float_format="%.6g").encode())


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _backbone(model: ModelConfig) -> str:
    """The backbone ``model.encoder`` selects (cheeger.models.build_model), in words."""
    if model.encoder == "unet":
        return f"U-Net depth {model.depth}, width {model.width}, {model.norm} norm (from scratch)"
    mode = "frozen" if model.freeze_encoder else "fine-tuned"
    cache = f", training on its taps cached in `{model.features}`" if model.features else ""
    return (f"EfficientNet-Lite0 encoder (ImageNet weights, {mode}{cache}), FPN decoder width "
            f"{model.decoder_width}")  # fmt: skip


def _protocol(params: Mapping[str, Any], data: StudyData, layout: Layout,
              controls: ControlsData) -> list[tuple[str, str]]:  # fmt: skip
    study = data.study
    manifest = load_manifest(layout.path(PREPARED, profile=study.profile))
    model = ModelConfig.from_params(params, study.profile)
    train = TrainConfig.from_params(params, study.profile)
    block = params["profiles"][study.profile]
    loss = deep_merge(params.get("spectral"), block.get("spectral"))
    head = loss.pop("head", {})
    first = next(iter(data.evaluations.values()))
    sizes = ", ".join(f"{name} {entry['size']}" for name, entry in manifest["splits"].items())
    params_per_head = ", ".join(f"{h} {final['parameters']['total']:,}"
                                for (h, seed), final in data.finals.items()
                                if seed == study.seeds[0])  # fmt: skip
    seconds = {"main": [f["train_seconds"] for f in data.finals.values()], "ablation": [],
               "trial": [], "controls": [f["train_seconds"] for f in controls.finals.values()]}
    done = [*data.finals.values(), *controls.finals.values()]
    for name, slug, seed in study.ablation_runs():
        done.append(read_json(layout.path(ABLATION_DONE, profile=study.profile, axis=name,
                                          value=slug, seed=seed)))  # fmt: skip
        seconds["ablation"].append(done[-1]["train_seconds"])
    for name, seed in study.trial_runs():
        done.append(read_json(layout.path(TRIAL_DONE, profile=study.profile, trial=name,
                                          seed=seed)))  # fmt: skip
        seconds["trial"].append(done[-1]["train_seconds"])
    devices = sorted({f"{f['device']} x {f['threads']} threads" for f in done
                      if "device" in f})  # fmt: skip
    wall = "; ".join(f"{kind} {_duration(sum(s))} over {len(s)} runs (mean "
                     f"{_duration(sum(s) / len(s))})" for kind, s in seconds.items() if s)
    axes = "; ".join(f"{a.name} ({a.key}): {[a.baseline, *a.values]}" for a in study.axes)
    checks = "; ".join(f"{c.name}: {c.head} head, seeds {list(c.seeds)}" for c in study.controls)
    return [
        ("Dataset", f"{manifest['dataset']} ({manifest['num_classes']} classes, label "
                    f"{manifest['ignore_index']} ignored); prepared splits: {sizes}"),
        ("Resolution", f"input {manifest['resolution'][0]}x{manifest['resolution'][1]}; metrics "
                       f"at the labels' native size ({first['resolution']['native_sizes']}), "
                       f"Boundary IoU ratio {first['boundary']['ratio']}"),
        ("Model", f"{_backbone(model)}; parameters: {params_per_head}; spectral head: "
                  f"{json.dumps(head)}"),
        ("Training", f"{train.epochs} epochs, batch {train.batch_size}, AdamW lr {train.lr:g} "
                     f"(cosine, warm-up {train.lr_warmup_epochs:g} epochs), weight decay "
                     f"{train.weight_decay:g}; loss weights {json.dumps(loss)}"),
        ("Selection and splits", f"checkpoint `{first['checkpoint']}` (best validation "
                                 f"`{train.select}`), headline split `{study.report_split}` "
                                 f"({first['num_images']} images), evaluated once per run; "
                                 f"ablations scored on `{study.ablation_split}`"),
        ("Seeds", f"{list(study.seeds)} for each of {list(study.heads)}; ablations: "
                  f"{study.ablation_head} head, seeds {list(study.ablation_seeds)}; "
                  f"{axes or 'none'}" + (f"; controls: {checks}" if checks else "")),
        ("Hardware", f"{hardware()}; runs on {', '.join(devices)}"),
        ("Wall time", f"training: {wall} (evaluation and sweeps not included)"),
    ]  # fmt: skip


def _protocols_section(sections: list[tuple[str, str]], tables: Path, headline: pd.DataFrame,
                       study: StudyConfig, record: dict[str, Any], others: list) -> None:
    """This profile's heads beside another protocol's on the same dataset (its committed
    metrics.json), with each protocol in words."""
    view = protocols_table(headline, study, others)
    T.write_table(view.reset_index(), tables, f"protocols_{study.report_split}", view,
                  caption=f"{study.report_split} split, both protocols")  # fmt: skip
    lines = [f"- `{study.profile}` (this report): "
             f"{protocol_words(record, len(study.seeds))}"]  # fmt: skip
    lines += [f"- `{o.profile}` (results/{o.profile}/metrics.json): {o.words()}" for o in others]
    sections.append((f"Both protocols ({study.report_split} split)",
                     "\n".join(lines) + "\n\n" + view.to_markdown()))  # fmt: skip


def _diagnostics_sections(sections: list[tuple[str, str]], tables: Path, save, data: StudyData,
                          controls: ControlsData, confidence: float) -> None:  # fmt: skip
    """The graph diagnostics at the last epoch (table), per epoch (figure), and the eigensolver
    totals of every run with an eigensolver, main runs and controls alike."""
    curves = data.curves if controls.curves.empty else pd.concat(
        [data.curves, controls.curves], ignore_index=True)
    diagnostics = diagnostics_table(curves, confidence)
    if len(diagnostics):
        view = diagnostics_view(diagnostics)
        T.write_table(diagnostics, tables, "diagnostics", view,
                      caption="graph diagnostics at the last epoch")  # fmt: skip
        save(lambda: F.diagnostics_figure(curves, DIAGNOSTICS, confidence), "diagnostics",
             "Graph diagnostics per epoch (mean and t band over seeds)")
        legend = "\n".join(f"- `{k.removeprefix('diag_')}`: {v}" for k, v in DIAGNOSTICS.items()
                           if k in set(diagnostics["diagnostic"]))  # fmt: skip
        sections.append(("Graph diagnostics (last epoch; epoch means of the training steps)",
                         legend + "\n\n" + view.to_markdown()))  # fmt: skip
    cost = cost_table({**data.finals, **controls.finals})
    if len(cost):
        T.write_table(cost, tables, "cost", caption="training cost per head or control")
        sections.append(("Training cost per head (wall time, training and validation)",
                         "Means over each head's runs; the runs shared the machine two at a "
                         "time, so compare the ratios (to the first head), not the seconds.\n\n"
                         + cost.to_markdown(index=False, floatfmt=".3g")))  # fmt: skip
    split = data.study.report_split
    inference = inference_table(data.evaluations, split)
    if len(inference):
        T.write_table(inference, tables, "inference", caption=f"inference cost per head ({split})")
        sections.append((f"Inference cost per head ({split} split, forward only)",
                         "Mean forward seconds per image of each head's evaluation runs (the "
                         "first batch left out where there were more; the model inputs the "
                         "evaluation JSON names, so cached encoder taps mean decoder and head "
                         "only); the runs shared the machine, so compare the ratios (to the "
                         "first head).\n\n"
                         + inference.to_markdown(index=False, floatfmt=".3g")))  # fmt: skip
    runs = solver_table({**data.finals, **controls.finals})
    if len(runs):
        summary = solver_summary(runs)
        _write_csv(runs, tables / "solver_runs.csv")
        T.write_table(summary, tables, "solver", caption="eigensolver totals per head or control")
        sections.append(("Eigensolver totals (training steps, summed over seeds)",
                         "Steps per method, steps that fell back to another method, steps with "
                         "an unconverged graph, and stalled or unconverged complement columns "
                         "of the backward (each run's final.json `solver`).\n\n"
                         + summary.to_markdown(index=False, floatfmt=".3g")))  # fmt: skip


def make_report(
    params_path: str | os.PathLike,
    profile: str | None = None,
    *,
    results: str | os.PathLike = "results",
    out: str | os.PathLike | None = None,
    figures: bool = True,
    panel: bool = True,
) -> dict[str, Any]:
    """Write the report of ``profile`` (default: the active one); returns ``metrics.json``.

    ``out=None`` writes into the profile's report folder under ``results`` (``REPORT``).
    ``figures=False`` writes everything but the figures (and ``panel=False`` all but the
    qualitative panel, which loads the runs' models).

    Raises:
        ParamsError: malformed params.
        StudyFileError: a file the study declared is missing.
    """
    params = load_params(params_path)
    study = StudyConfig.from_params(params, profile)
    config = ReportConfig.from_params(params, study.profile)
    layout = Layout(results)
    out = layout.path(REPORT, profile=study.profile) if out is None else Path(out)
    data = collect_study(study, layout)
    controls = collect_controls(study, layout)
    record = protocol_record(params, study.profile)
    dataset = next(iter(data.evaluations.values()))["dataset"]
    others = other_protocols(params, study, layout, dataset)
    tables, figure_dir = out / "tables", out / "figures"

    def save(make, name: str, caption: str) -> None:
        if figures:
            F.save_figure(make(), figure_dir, name)
            shown[caption] = f"figures/{name}.png"
    conf, split = config.confidence, study.report_split
    baseline = study.heads[0]
    challenger = study.heads[1] if len(study.heads) > 1 else None
    shown: dict[str, str] = {}
    sections: list[tuple[str, str]] = []
    headline = T.heads_table(data.scalars, split, conf)  # every main run, on the report split
    headline_view = T.display(headline, "metric", "head")
    T.write_table(headline, tables, f"heads_{split}", headline_view,
                  caption=f"{split} split: mean ± std [{conf:.0%} t interval] over seeds")
    save(lambda: F.heads_figure(data.scalars, split, conf), f"heads_{split}",
         f"Heads on the {split} split (seeds and t intervals)")
    sections.append((f"Metrics on the {split} split", headline_view.to_markdown()))
    if others:
        _protocols_section(sections, tables, headline, study, record, others)
    comparison = None
    if challenger is not None:
        comparison = T.comparison_table(data.scalars, split, baseline, challenger, conf)
        T.write_table(comparison, tables, f"comparison_{split}",
                      caption=f"{challenger} minus {baseline} on {split}")  # fmt: skip
        sections.append((f"{challenger} minus {baseline} ({split}, Welch)",
                            comparison.to_markdown(index=False, floatfmt=".4g")))  # fmt: skip
    # every further head against the challenger (neuralef against spectral: the eigensolver
    # replaced by learned eigenfunctions)
    extra: dict[str, pd.DataFrame] = {}
    for head in study.heads[2:]:
        extra[head] = T.comparison_table(data.scalars, split, challenger, head, conf)
        T.write_table(extra[head], tables, f"comparison_{head}_{split}",
                      caption=f"{head} minus {challenger} on {split}")  # fmt: skip
        sections.append((f"{head} minus {challenger} ({split}, Welch)",
                         extra[head].to_markdown(index=False, floatfmt=".4g")))  # fmt: skip
    classes = data.per_class if controls.per_class.empty else pd.concat(
        [data.per_class, controls.per_class], ignore_index=True)
    per_class = T.per_class_table(classes, split, "iou", conf)
    per_class_view = T.display(per_class, "class", "head")
    T.write_table(per_class, tables, f"per_class_iou_{split}", per_class_view,
                  caption=f"per-class IoU on {split}")
    save(lambda: F.per_class_figure(per_class), "per_class_iou", "Per-class IoU")
    sections.append((f"Per-class IoU ({split})", per_class_view.to_markdown()))
    if any(o.per_class is not None for o in others):
        view = per_class_protocols(per_class[per_class["head"].isin(study.heads)], study, others)
        T.write_table(view.reset_index(), tables, f"per_class_protocols_{split}", view,
                      caption=f"per-class IoU on {split}, both protocols")  # fmt: skip
        sections.append((f"Per-class IoU ({split}), both protocols", view.to_markdown()))
    _write_csv(data.curves, tables / "curves.csv")
    _write_csv(_curves_mean(data.curves), tables / "curves_mean.csv")
    save(lambda: F.curves_figure(data.curves, conf), "curves",
         "Training curves (mean and t band over seeds)")
    controls_stats, control_rows = None, None
    if study.controls:
        scalars = pd.concat([data.scalars, controls.scalars], ignore_index=True)
        control_rows, view = controls_table(scalars, study, conf)
        controls_stats = T.heads_table(scalars, split, conf)
        caption = controls_caption(study, conf)
        T.write_table(control_rows, tables, f"controls_{split}", view, caption=caption)
        save(lambda: F.heads_figure(scalars, split, conf), f"controls_{split}",
             f"Heads and controls on the {split} split (seeds and t intervals)")
        sections.append((f"Controls ({split}, Welch)", caption + "\n\n" + view.to_markdown()))
    _diagnostics_sections(sections, tables, save, data, controls, conf)
    unsupervised_file = layout.path(UNSUPERVISED_DONE, profile=study.profile)
    unsupervised = read_json(unsupervised_file) if unsupervised_file.is_file() else None
    if unsupervised is not None:  # profiles with a feature cache (the report rule declares it)
        routes = unsupervised_table(unsupervised)
        T.write_table(routes, tables, "unsupervised",
                      caption="unsupervised segmentation on the frozen features")  # fmt: skip
        for name, caption in (("unsupervised", "Unsupervised cluster maps (K = C)"),
                              ("eigenfunctions", "NeuralEF eigenfunctions beside eigsh's "
                                                 "eigenvectors")):  # fmt: skip
            if (unsupervised_file.parent / f"{name}.png").is_file():
                shown[caption] = f"{unsupervised_file.parent.name}/{name}.png"
        sections.append((f"Unsupervised segmentation ({unsupervised['protocol']['split_scored']})",
                         unsupervised_text(unsupervised) + "\n\n"
                         + routes.to_markdown(index=False, floatfmt=".4g")))  # fmt: skip
    if study.axes:
        ablation = T.ablation_table(data.ablation, conf)
        T.write_table(ablation, tables, "ablation", caption="ablations (the baseline flagged)")
        save(lambda: F.ablation_figure(ablation, split=study.ablation_split), "ablation",
             "Ablations (star: baseline)")
        view = ablation[ablation["metric"].isin(["miou", "boundary_miou"])].assign(
            setting=lambda t: t["setting"] + t["baseline"].map({True: " (baseline)", False: ""}),
            row=lambda t: t["axis"] + ": " + t["setting"])  # fmt: skip
        sections.append((f"Ablations ({study.ablation_head} head, {study.ablation_split}, "
                         f"seeds {list(study.ablation_seeds)})",
                         T.display(view, "row", "metric").to_markdown()))  # fmt: skip
    if study.trial is not None:
        name = study.trial.name
        numbers, view = trial_table(collect_trial(study, layout), study, conf)
        caption = trial_caption(study, conf)
        T.write_table(numbers, tables, f"trial_{name}", view, caption=caption)
        sections.append((f"Trial `{name}` ({split}, Welch)",
                         caption + "\n\n" + view.to_markdown()))  # fmt: skip
    if data.scaling is not None and len(data.scaling):
        index = ["graph", "n"] if "graph" in data.scaling.columns else ["n"]
        wide = data.scaling.pivot_table(index=index, columns="solver", values="seconds")
        T.write_table(wide.reset_index(), tables, "scaling", caption="seconds per solve")
        save(lambda: F.scaling_figure(data.scaling), "scaling", "Eigensolver scaling")
        sections.append(("Eigensolver scaling (seconds per solve)",
                         wide.to_markdown(floatfmt=".3g")))
    if data.gradients is not None and len(data.gradients):
        grads = T.gradients_table(data.gradients)
        T.write_table(grads, tables, "gradients", caption="gradient stability")
        save(lambda: F.gradients_figure(data.gradients), "gradients",
             "Gradient norm against the eigengap")
        sections.append(("Gradient stability (slope -1: the norm grows like 1/gap)",
                         grads.to_markdown(index=False, floatfmt=".3g")))  # fmt: skip
    broadening_file = layout.path(BROADENING, profile=study.profile)
    if broadening_file.is_file():  # the report rule declares it; hand-built results may not
        sweep = pd.read_csv(broadening_file)
        broad = T.broadening_table(sweep)
        T.write_table(broad, tables, "broadening", caption="broadened gradient error")
        save(lambda: F.broadening_figure(sweep), "broadening",
             "Broadened gradient error against eps")
        view = broad.to_markdown(index=False, floatfmt=".3g")
        sections.append(("Broadening by measurement (relative gradient error)",
                         BROADENING_TEXT + "\n\n" + view))  # fmt: skip
    if panel:
        runs = {h: layout.path(RUN, profile=study.profile, head=h, seed=study.seeds[0])
                for h in study.heads}  # fmt: skip
        checkpoint = next(iter(data.evaluations.values()))["checkpoint"]
        prepared = layout.path(PREPARED, profile=study.profile)
        save(lambda: panel_figure(runs, prepared, split, config.panel_index, checkpoint),
             "panel", "Qualitative panel")
    metrics = _metrics_json(headline, comparison, study, challenger, baseline, record,
                            controls_stats)  # fmt: skip
    for head, table in extra.items():
        metrics[f"{head}_minus_{challenger}"] = json_safe(_differences(table))
    if unsupervised is not None:
        metrics["unsupervised"] = json_safe(unsupervised_metrics(unsupervised))
    atomic_write_bytes(out / "metrics.json", (json.dumps(metrics, indent=1) + "\n").encode())
    text = "Only one head is compared: no answer.\n"
    if comparison is not None:
        text = answer(comparison, headline, baseline, challenger, split, conf)
    if control_rows is not None:
        text += controls_answer(control_rows, study)
    devices = sorted({str(f.get("device", "?")).upper() for f in data.finals.values()})
    ours = {h: {m: v["mean"] for m, v in metrics[h].items()} for h in study.heads}
    readme = render_readme(
        profile=study.profile, answer_text=text,
        protocol=_protocol(params, data, layout, controls), sections=sections, figures=shown,
        references=REFERENCES.get(dataset, ()), ours=ours,
        ours_protocol=f"{protocol_words(record)}, {'/'.join(devices)}",
    )
    atomic_write_bytes(out / "README.md", readme.encode())
    return metrics

