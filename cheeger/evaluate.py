"""Evaluation of a finished training run on a split, at the labels' native resolution.

``evaluate_run`` rebuilds the model from the run's checkpoint (``evaluate.checkpoint``: ``best``
= ``best.pt``, the epoch with the best *validation* ``train.select`` metric, so nothing is chosen
on the evaluated split; ``last`` = the final epoch's weights in ``checkpoint.pt``), predicts every
image of the split, upsamples the logits bilinearly to the native label size, and computes with
:class:`cheeger.metrics.SegmentationMetrics`: mIoU and per-class IoU from one dataset-level
confusion matrix, pixel and class-average accuracy (with per-class accuracy), Boundary IoU
(per class and mean, with the ratio and the boundary width in pixels at each native size
recorded), and the fragment metrics of the predictions and of the ground truth. Only finished
runs (with ``final.json``) are evaluated.

For a head with a spectrum (the spectral head) the JSON has a ``"spectral"`` block (``null``
otherwise): each image's own noise edge (the head computes it per image in eval mode, see
:class:`~cheeger.heads.SpectralHeadConfig` ``noise_every``) and how many of its non-trivial bottom
eigenvalues (all but the first) lie below it, their mean / min / max over the split, and the
forward eigensolves' counts (methods, fallbacks, unconverged and uncertified batches, restarts,
products; :func:`~cheeger.training.monitor.solver_totals`). The edge enters only the bulk loss
term, never the logits: the metrics do not depend on it.

The JSON is written atomically; undefined values (a class absent from both prediction and ground
truth) are ``null``.

Example:
    >>> metrics = evaluate_run("results/runs/conv/0", "results/prepared/embedded", "test",
    ...                        EvaluateConfig())  # doctest: +SKIP
    >>> metrics["miou"], metrics["per_class"]["iou"]["road"]  # doctest: +SKIP
    (0.72, 0.95)
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

import torch

from cheeger.config import EvaluateConfig
from cheeger.data import PreparedDataset, load_manifest
from cheeger.data.io import atomic_write_bytes
from cheeger.features import DONE, CachedTaps
from cheeger.linalg import ComplementRecord
from cheeger.metrics import SegmentationMetrics, boundary_width
from cheeger.models import model_from_spec
from cheeger.training import (
    BEST,
    CHECKPOINT,
    FINAL,
    ForwardTimer,
    RunNotFoundError,
    TrainingError,
    deterministic_algorithms,
    evaluate_model,
    load_checkpoint,
    metrics_summary,
    resolve_device,
)
from cheeger.training.monitor import solver_metrics, solver_totals

__all__ = ["SpectralRecord", "evaluate_run", "write_metrics"]


class SpectralRecord:
    """Per-image noise edges and the forward eigensolves of one evaluation pass.

    Called as ``observe(output, batch)`` by :func:`~cheeger.training.evaluate_model`; heads
    without ``noise_edge`` / ``eigenvalues`` / ``solver`` internals leave it empty.

    Example:
        >>> from cheeger.heads import HeadOutput
        >>> record = SpectralRecord()
        >>> out = HeadOutput(torch.zeros(2, 3, 4, 4), internals={
        ...     "noise_edge": torch.tensor([0.1, 0.2]),
        ...     "eigenvalues": torch.tensor([[0.0, 0.05, 0.15], [0.0, 0.3, 0.4]])})
        >>> record(out, {"id": ["a", "b"]})
        >>> [(i["id"], i["below_edge"]) for i in record.summary()["per_image"]]
        [('a', 1), ('b', 0)]
    """

    def __init__(self) -> None:
        self.images: list[dict[str, Any]] = []
        self.solves: list[dict[str, Any]] = []

    def __call__(self, output: Any, batch: dict[str, Any]) -> None:
        internals = output.internals
        if "noise_edge" in internals and "eigenvalues" in internals:
            lam = internals["eigenvalues"].detach().double().cpu()  # (B, k)
            edge = internals["noise_edge"].detach().double().cpu().reshape(-1)
            edge = edge.expand(lam.shape[0]) if edge.numel() == 1 else edge  # (B,)
            below = (lam[:, 1:] < edge[:, None]).sum(1)  # non-trivial eigenvalues below it
            for name, e, b in zip(batch["id"], edge.tolist(), below.tolist(), strict=True):
                self.images.append({"id": name, "noise_edge": e, "below_edge": int(b)})
        if "solver" in internals:  # no backward here: the complement counts stay 0
            self.solves.append(solver_metrics(internals, ComplementRecord()))

    def summary(self) -> dict[str, Any] | None:
        """The JSON block (see the module docstring); ``None`` when nothing was recorded."""
        if not self.images and not self.solves:
            return None
        block: dict[str, Any] = {}
        for key in ("noise_edge", "below_edge"):
            values = [image[key] for image in self.images]
            block[key] = ({"mean": sum(values) / len(values), "min": min(values),
                           "max": max(values)} if values else None)  # fmt: skip
        block["per_image"] = self.images
        totals = solver_totals(self.solves)
        if totals is not None:
            totals.pop("complement")  # forward solves only at evaluation
        block["solver"] = totals
        return block


def _load_model(
    run: Path, checkpoint: str, device: torch.device
) -> tuple[torch.nn.Module, dict, dict]:
    """The model of ``run`` with the chosen weights, the run's last state and the chosen one."""
    if not (run / FINAL).is_file():
        raise RunNotFoundError(f"{run}: no {FINAL}; the run has not finished (train it first; "
                               "only finished runs are evaluated)")  # fmt: skip
    last = load_checkpoint(run / CHECKPOINT)
    chosen = last if checkpoint == "last" else load_checkpoint(run / BEST)
    model = model_from_spec(chosen["model_spec"])  # U-Net or pretrained encoder
    model.load_state_dict(chosen["model"])
    channels_last = bool(last["identity"]["train"]["channels_last"])  # as in training
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    return model.to(device=device, memory_format=fmt).eval(), last, chosen


def _dataset(identity: dict[str, Any], data_dir: str | os.PathLike, split: str,
             run: Path) -> PreparedDataset | CachedTaps:  # fmt: skip
    """The split as the run was trained: images, or the frozen encoder's cached taps.

    A run trained on a cache (``model.features``) is evaluated on that cache's unflipped taps,
    as its validation was: the float16 taps are what its decoder learned from, and the encoder
    does not run again. The cache must be finished; it is not silently replaced by images.
    """
    features = identity.get("model", {}).get("features")
    if features is None:
        return PreparedDataset(data_dir, split, native=True)
    if not (Path(features) / DONE).is_file():
        raise RunNotFoundError(f"{run}: trained on the feature cache {features}, which is not "
                               f"finished here (no {DONE}); compute it with `cheeger features "
                               f"--out {features}`")  # fmt: skip
    return CachedTaps(features, data_dir, split, native=True)


def evaluate_run(
    run_dir: str | os.PathLike,
    data_dir: str | os.PathLike,
    split: str,
    config: EvaluateConfig,
    device: str = "auto",
) -> dict[str, Any]:
    """All metrics of the run's model on ``split`` of ``data_dir``.

    Args:
        run_dir: finished run folder (``cheeger train --out``).
        data_dir: prepared dataset folder.
        split: split name (``test`` for the reported numbers, ``val`` for selection).
        config: checkpoint choice, batch size and metric settings.
        device: ``auto``, ``cpu``, ``cuda`` ...

    Returns:
        JSON-ready dict (see the module docstring).

    Raises:
        RunNotFoundError: no finished run in ``run_dir``.
        TrainingError: the data's classes differ from the run's.
        PreparedFormatError, DataError: bad data folder or unknown split.
    """
    run = Path(run_dir)
    torch_device = resolve_device(device)
    model, last, chosen = _load_model(run, config.checkpoint, torch_device)
    manifest = load_manifest(data_dir)
    classes = list(manifest["class_names"])
    if classes != list(last["class_names"]) or manifest["ignore_index"] != last["ignore_index"]:
        raise TrainingError(
            f"{data_dir}: classes {classes} (ignore {manifest['ignore_index']}) differ from those "
            f"the run {run} was trained on: {last['class_names']} (ignore {last['ignore_index']})"
        )
    dataset = _dataset(last["identity"], data_dir, split, run)
    metrics = SegmentationMetrics(len(classes), manifest["ignore_index"], config.boundary_ratio,
                                  config.connectivity, config.stray_max_size)  # fmt: skip
    channels_last = bool(last["identity"]["train"]["channels_last"])
    spectral = SpectralRecord()
    timer = ForwardTimer()
    with deterministic_algorithms():
        result = evaluate_model(model, dataset, metrics, batch_size=config.batch_size,
                                device=torch_device, channels_last=channels_last,
                                observe=spectral, timer=timer)  # fmt: skip
    summary = metrics_summary(result, classes)
    confmat = metrics["confusion"].confmat.to(torch.int64)  # (C, C), rows ground truth
    totals = confmat.sum(1).to(torch.float64)
    recall = torch.where(totals > 0, confmat.diagonal() / totals.clamp_min(1), torch.nan)
    summary["per_class"]["accuracy"] = {  # recall of each class; null if absent from the truth
        name: None if math.isnan(value) else value
        for name, value in zip(classes, recall.tolist(), strict=True)
    }
    sizes = sorted({tuple(s) for s in manifest["splits"][split]["native_sizes"]})
    identity = last["identity"]
    data_digest = hashlib.sha256((Path(data_dir) / "manifest.json").read_bytes()).hexdigest()
    return {
        "run": str(run), "head": identity["head"], "seed": identity["seed"], "split": split,
        "dataset": manifest["dataset"], "num_images": len(dataset),
        "checkpoint": config.checkpoint, "epoch": chosen["epoch"],
        "selected_on": {"split": "val", "metric": last["best"]["metric"],
                        "value": last["best"]["value"]} if config.checkpoint == "best" else None,
        "data_matches_training": data_digest == identity["data"],
        "class_names": classes, "ignore_index": manifest["ignore_index"],
        "model_inputs": ("cached float16 encoder taps" if isinstance(dataset, CachedTaps)
                         else "images"),
        "resolution": {"input": manifest["resolution"], "labels": "native",
                       "native_sizes": [list(s) for s in sizes]},
        "boundary": {"ratio": config.boundary_ratio,
                     "width_px": {f"{h}x{w}": boundary_width(h, w, config.boundary_ratio)
                                  for h, w in sizes}},
        "fragments": {"connectivity": config.connectivity,
                      "stray_max_size": config.stray_max_size},
        **summary,
        "spectral": spectral.summary(),
        "forward": {"seconds_per_image": timer.per_image(), "images": timer.images,
                    "batches": timer.batches, "skipped_batches": timer.skipped,
                    "batch_size": config.batch_size, "threads": torch.get_num_threads(),
                    "device": str(torch_device),
                    "what": "the inputs' move to the device and the model's forward on the "
                            "model inputs above (skipped: "
                            + ("the first, warm-up batch" if timer.skipped else
                               "none, a single batch timed whole")
                            + "); no data loading, upsampling or metrics"},
        "confusion_matrix": confmat.tolist(),
    }  # fmt: skip


def write_metrics(path: str | os.PathLike, metrics: dict[str, Any]) -> None:
    """Write ``metrics`` as JSON to ``path`` atomically (folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, (json.dumps(metrics, indent=1) + "\n").encode())
