"""The training loop: one head on the shared U-Net, resumable, deterministic, checked every step.

A run lives in one folder::

    checkpoint.pt   after every epoch: model, optimiser, scheduler, RNG states, epoch, step,
                    best validation value, history (atomic; the resume point)
    best.pt         weights of the epoch with the best validation ``train.select`` metric
    history.csv     one row per epoch;  train_log.txt  human-readable log
    snapshots/      epoch_NNN.png: prediction and head internals on a fixed validation image
    dvclive/        live curves (see :mod:`cheeger.training.monitor`)
    final.json      written LAST, once every epoch is done: the completion marker

Running the same command again resumes from ``checkpoint.pt`` (the partial epoch after it is
redone) and ends with exactly the metrics and weights of an uninterrupted run: the data order
and augmentation are pure functions of ``(seed, epoch)`` and the global generators are restored
from the checkpoint. A folder whose checkpoint came from different settings is refused (the
differing keys are named); a finished run is not retrained. Any NaN/Inf loss term or gradient,
or a non-converged eigensolve, stops the run with the step, epoch and term named, before the
optimiser touches the weights; the last checkpoint is left as it was. So does a stalled
complement solve in the eigensolver's backward when ``spectral.head.solver_strict`` is set;
otherwise stalls are counted.

A head with an eigensolver (``internals["solver"]``) adds per-step metrics to the step rows and
DVCLive curves (:func:`~cheeger.training.monitor.solver_metrics`: the forward solve's restarts,
products, fallback, converged and certified fractions, method; the backward's complement solves,
stalled and unconverged columns) and ``final.json`` gets their counts over the whole run under
``"solver"`` (:func:`~cheeger.training.monitor.solver_totals`; ``null`` for the conv head).
A head with graph diagnostics (``internals["diagnostics"]``, the spectral head's
:data:`~cheeger.heads.spectral.DIAGNOSTICS`) adds them to the step rows (``diag_*``, the batch
mean), their epoch means to the epoch rows of ``history.csv`` and to DVCLive (``diag/<name>``),
and the last epoch's to ``final.json`` under ``"diagnostics"``.

Example:
    >>> spec = RunSpec(data="results/prepared/embedded", out="results/runs/conv/0",
    ...                head="conv", seed=0)  # doctest: +SKIP
    >>> train(spec)["val"]["miou"]  # doctest: +SKIP
    0.71
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from cheeger.data import PreparedDataset, RandomScaleCropFlip, collate_items, load_manifest
from cheeger.data.io import atomic_write_bytes
from cheeger.features import CachedTaps
from cheeger.heads import resize_logits
from cheeger.heads.spectral import cached_noise_edges
from cheeger.linalg import ComplementSolveError, EigshConvergenceError, record_complement
from cheeger.metrics import SegmentationMetrics
from cheeger.models import build_model, parameter_counts, parameter_parity
from cheeger.training.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from cheeger.training.errors import RunMismatchError, SolverError
from cheeger.training.loss import check_finite, segmentation_loss
from cheeger.training.monitor import (
    RunMonitor,
    diagnostic_means,
    diagnostic_metrics,
    solver_metrics,
    solver_totals,
)
from cheeger.training.runtime import (
    derived_seed,
    deterministic_algorithms,
    epoch_order,
    resolve_device,
)
from cheeger.training.schedule import build_optimizer, loss_weights
from cheeger.training.snapshot import save_snapshot
from cheeger.training.spec import RunSpec, flatten_keys
from cheeger.training.validation import evaluate_model, forward_batch, metrics_summary

__all__ = ["BEST", "CHECKPOINT", "CHECKPOINT_FORMAT", "FINAL", "RunSpec", "train"]

CHECKPOINT, BEST, FINAL = "checkpoint.pt", "best.pt", "final.json"
CHECKPOINT_FORMAT = "cheeger-checkpoint-1"


@contextlib.contextmanager
def _solver_failure(where: str) -> Iterator[None]:
    """Turn a non-converged eigensolve into a :class:`SolverError` saying where it happened."""
    try:
        yield
    except EigshConvergenceError as exc:
        raise SolverError(f"{where}: the eigensolver did not converge ({exc}); stopped, the last "
                          "good checkpoint is kept") from exc  # fmt: skip
    except ComplementSolveError as exc:
        raise SolverError(f"{where}: solver_strict: {exc}; stopped, the last good checkpoint is "
                          "kept") from exc  # fmt: skip


def _fmt(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.4f}"


def _write_json(path: Path, value: Any) -> None:
    atomic_write_bytes(path, (json.dumps(value, indent=1, default=str) + "\n").encode())


class _Trainer:
    """State of one run between epochs; :meth:`run` trains the remaining epochs."""

    def __init__(self, spec: RunSpec, device: torch.device, monitor: RunMonitor) -> None:
        self.spec, self.device, self.monitor = spec, device, monitor
        self.out, cfg = Path(spec.out), spec.train
        self.manifest = load_manifest(spec.data)
        self.classes = list(self.manifest["class_names"])
        self.ignore = int(self.manifest["ignore_index"])
        a = spec.augment
        augment = RandomScaleCropFlip(a.scale, a.crop, a.hflip, self.ignore)
        if spec.model.features is None:
            self.train_set = PreparedDataset(spec.data, "train", augment=augment, seed=spec.seed)
        else:  # a frozen encoder's cached taps: flips only (scale / crop would change the taps)
            self.train_set = CachedTaps(spec.model.features, spec.data, "train", seed=spec.seed,
                                        hflip=a.hflip)  # fmt: skip
        # validation reads the same cache (unflipped taps): the encoder never runs in a run
        self.val_set = (PreparedDataset(spec.data, "val", native=True)
                        if spec.model.features is None else
                        CachedTaps(spec.model.features, spec.data, "val", native=True))
        self.snapshot_set = PreparedDataset(spec.data, "val", native=True)  # its image
        self.steps_per_epoch = math.ceil(len(self.train_set) / cfg.batch_size)
        torch.manual_seed(spec.seed)  # model initialisation
        m = spec.model
        norm = self.manifest["normalization"]  # what the encoder maps to its own
        model = build_model(m.encoder, len(self.classes), depth=m.depth, width=m.width,
                            norm=m.norm, groups=m.groups, decoder_width=m.decoder_width,
                            freeze_encoder=m.freeze_encoder, input_mean=norm["mean"],
                            input_std=norm["std"], head=spec.head,
                            head_options=spec.head_options)  # fmt: skip
        fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
        self.model = model.to(device=device, memory_format=fmt)
        self.optimizer, self.scheduler = build_optimizer(
            self.model.parameters(), cfg, self.steps_per_epoch
        )
        e = spec.evaluate
        self.metrics = SegmentationMetrics(len(self.classes), self.ignore, e.boundary_ratio,
                                           e.connectivity, e.stray_max_size)  # fmt: skip
        self.epoch, self.step, self.elapsed = 0, 0, 0.0
        self.best: dict[str, Any] = {"metric": cfg.select, "epoch": None, "value": None}
        self.history: dict[str, list[dict[str, Any]]] = {"steps": [], "epochs": []}
        self.val_summary: dict[str, Any] = {}

    # --- state ----------------------------------------------------------------------------------
    def state(self, identity: dict[str, Any]) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT, "identity": identity, "model_spec": self.model.spec(),
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "rng": rng_state(), "epoch": self.epoch,
            "step": self.step, "best": dict(self.best), "history": self.history,
            "elapsed": self.elapsed, "val_summary": self.val_summary,
            "class_names": self.classes, "ignore_index": self.ignore,
        }  # fmt: skip

    def restore(self, state: Mapping[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"])
        self.epoch, self.step, self.elapsed = state["epoch"], state["step"], state["elapsed"]
        self.best, self.history = dict(state["best"]), state["history"]
        self.val_summary = state["val_summary"]

    # --- one epoch ------------------------------------------------------------------------------
    def train_epoch(self, epoch: int) -> dict[str, float]:
        spec, cfg = self.spec, self.spec.train
        self.model.train()
        self.train_set.set_epoch(epoch)
        loader = DataLoader(
            self.train_set, batch_size=cfg.batch_size,
            sampler=epoch_order(len(self.train_set), spec.seed, epoch).tolist(),
            collate_fn=getattr(self.train_set, "collate", collate_items),
            num_workers=cfg.num_workers,
            generator=torch.Generator().manual_seed(derived_seed(spec.seed, epoch, 1)),
            pin_memory=self.device.type == "cuda",
        )  # fmt: skip
        sums: dict[str, float] = {}
        show = spec.progress and sys.stderr.isatty()
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not show, leave=False)
        params = [p for p in self.model.parameters() if p.requires_grad]
        strict = bool(spec.head_options.get("solver_strict", False))  # a stall is an error
        for i, batch in enumerate(bar):
            step, t = self.step + 1, epoch + i / self.steps_per_epoch
            weights = loss_weights(spec.loss, t)
            labels = batch["label"].to(self.device, non_blocking=True)
            with (_solver_failure(f"step {step} (epoch {epoch + 1})"),
                  record_complement(strict) as complement):  # fmt: skip
                # images, or a frozen encoder's cached taps (decoder and head only)
                output = forward_batch(self.model, batch, self.device, cfg.channels_last)
                total, terms = segmentation_loss(output, labels, weights, ignore_index=self.ignore)
                check_finite({**terms, "total": total}, step, epoch + 1)
                self.optimizer.zero_grad(set_to_none=True)
                total.backward()
            grads = [p.grad for p in params if p.grad is not None]
            grad_norm = torch.nn.utils.get_total_norm(grads)
            check_finite({"gradient": grad_norm}, step, epoch + 1)
            if cfg.grad_clip is not None:
                torch.nn.utils.clip_grads_with_norm_(params, cfg.grad_clip, grad_norm)
            lr = self.optimizer.param_groups[0]["lr"]
            self.optimizer.step()
            self.scheduler.step()
            self.step = step
            row = {"step": step, "epoch": epoch + 1, "lr": lr, "loss": float(total.detach()),
                   **{name: float(v.detach()) for name, v in terms.items()},
                   **{f"weight_{n}": w for n, w in weights.items() if n in terms},
                   "grad_norm": float(grad_norm),
                   **solver_metrics(output.internals, complement),
                   **diagnostic_metrics(output.internals)}  # fmt: skip
            self.history["steps"].append(row)
            self.monitor.log_step(row)
            for name in ("loss", *terms):
                sums[name] = sums.get(name, 0.0) + row[name]
            bar.set_postfix(loss=f"{row['loss']:.4f}")
        epoch_rows = self.history["steps"][-self.steps_per_epoch:]
        return {**{f"train_{name}": value / self.steps_per_epoch for name, value in sums.items()},
                **diagnostic_means(epoch_rows)}  # fmt: skip

    def validate(self, epoch: int) -> dict[str, Any]:
        e = self.spec.evaluate
        # the noise edge changes no metric: validation reuses the training cache's
        with _solver_failure(f"validation after epoch {epoch + 1}"), cached_noise_edges():
            result = evaluate_model(
                self.model, self.val_set, self.metrics, batch_size=e.batch_size,
                device=self.device, channels_last=self.spec.train.channels_last,
            )  # fmt: skip
        return metrics_summary(result, self.classes)

    @torch.no_grad()
    def snapshot(self, epoch: int) -> Path:
        index = min(self.spec.train.snapshot_index, len(self.val_set) - 1)
        item = self.snapshot_set[index]
        batch = getattr(self.val_set, "collate", collate_items)([self.val_set[index]])
        self.model.eval()
        with _solver_failure(f"snapshot after epoch {epoch + 1}"), cached_noise_edges():
            output = forward_batch(self.model, batch, self.device, self.spec.train.channels_last)
        self.model.train()
        target = item["native_label"]
        pred = resize_logits(output.logits, target.shape)[0].argmax(0).cpu()
        path = self.out / "snapshots" / f"epoch_{epoch + 1:03d}.png"
        path.parent.mkdir(exist_ok=True)
        norm = self.manifest["normalization"]
        save_snapshot(path, item["image"], target, pred, self.classes, self.ignore,
                      output.internals, mean=norm["mean"], std=norm["std"],
                      title=f"{self.spec.head} head, seed {self.spec.seed}, epoch {epoch + 1}, "
                            f"val image {item['id']}")  # fmt: skip
        return path

    # --- the run --------------------------------------------------------------------------------
    def header(self) -> None:
        spec = self.spec
        counts = parameter_counts(self.model)
        heads = {spec.head: dict(spec.head_options), **spec.compare_heads}
        parity = parameter_parity(self.model, heads)
        self.parity = parity
        totals = ", ".join(f"{n} {t:,}" for n, t in parity["totals"].items())
        verdict = "ok" if parity["ok"] else "OUT OF TOLERANCE"
        self.monitor.log(
            f"run {self.out}: head {spec.head}, seed {spec.seed}, device {self.device}, "
            f"{torch.get_num_threads()} threads\n"
            f"data {spec.data}: {len(self.train_set)} train / {len(self.val_set)} val images, "
            f"{len(self.classes)} classes, {self.steps_per_epoch} steps per epoch\n"
            f"parameters: backbone {counts['backbone']:,}, head {counts['head']:,}, "
            f"total {counts['total']:,}\n"
            f"parameter parity (whole models): {totals}; spread {100 * parity['spread']:.2f}% "
            f"(tolerance {100 * parity['tolerance']:.0f}%: {verdict})\n"
            f"config: {json.dumps(spec.identity(), default=str)}"
        )

    def run(self, identity: dict[str, Any]) -> dict[str, Any]:
        cfg = self.spec.train
        self.header()
        self.monitor.start_live(flatten_keys(identity), self.history)
        for epoch in range(self.epoch, cfg.epochs):
            start = time.perf_counter()
            train_means = self.train_epoch(epoch)
            self.val_summary = self.validate(epoch)
            snapshot = self.snapshot(epoch)
            seconds = time.perf_counter() - start
            self.elapsed += seconds
            val = {k: v for k, v in self.val_summary.items() if k != "per_class"}
            row = {
                "epoch": epoch + 1, "step": self.step, "lr": self.optimizer.param_groups[0]["lr"],
                **train_means, **{f"val_{k}": v for k, v in val.items()},
                "seconds": round(seconds, 3),
            }  # fmt: skip
            value = val[cfg.select]
            if value is not None and (self.best["value"] is None or value > self.best["value"]):
                self.best.update(epoch=epoch + 1, value=value)
                save_checkpoint(self.out / BEST, {
                    "format": CHECKPOINT_FORMAT, "identity": identity,
                    "model_spec": self.model.spec(), "model": self.model.state_dict(),
                    "epoch": epoch + 1, "metric": cfg.select, "value": value})  # fmt: skip
            self.history["epochs"].append(row)
            self.epoch = epoch + 1
            save_checkpoint(self.out / CHECKPOINT, self.state(identity))
            self.monitor.write_history(self.history["epochs"])
            self.monitor.log_epoch(row)
            self.monitor.log_image("snapshot.png", snapshot)
            self.monitor.log(
                f"epoch {epoch + 1}/{cfg.epochs} step {self.step}: train loss "
                f"{train_means['train_loss']:.4f}, val mIoU {_fmt(val['miou'])}, boundary mIoU "
                f"{_fmt(val['boundary_miou'])}, {seconds:.1f} s"
            )
        final = {
            "head": self.spec.head, "seed": self.spec.seed, **dict(self.spec.meta),
            "epochs": cfg.epochs, "steps": self.step, "device": str(self.device),
            "threads": torch.get_num_threads(), "parameters": parameter_counts(self.model),
            "parameter_parity": self.parity, "best": dict(self.best),
            "val": self.val_summary, "train_seconds": round(self.elapsed, 3),
            "seconds_per_epoch": round(self.elapsed / max(1, len(self.history["epochs"])), 3),
            "solver": solver_totals(self.history["steps"]),
            "diagnostics": {k.removeprefix("diag_"): v for k, v in
                            self.history["epochs"][-1].items() if k.startswith("diag_")}
            if self.history["epochs"] else {},
        }  # fmt: skip
        if final["solver"] is not None:
            totals = final["solver"]
            self.monitor.log(
                f"eigensolver over {totals['steps']} steps: methods {totals['methods']}, "
                f"{totals['fallback_steps']} with a fallback, {totals['unconverged_steps']} "
                f"unconverged, uncertified {totals['uncertified_steps']}; complement solves "
                f"{totals['complement']['solves']}, stalled columns "
                f"{totals['complement']['stalled']}, unconverged columns "
                f"{totals['complement']['unconverged']}"
            )
        _write_json(self.out / FINAL, final)  # the completion marker: last
        self.monitor.log(f"finished: {self.out / FINAL}")
        return final


def _check_resumable(state: Mapping[str, Any], identity: dict[str, Any], path: Path) -> None:
    if state.get("format") != CHECKPOINT_FORMAT:
        raise RunMismatchError(f"{path}: not a {CHECKPOINT_FORMAT} checkpoint; "
                               "delete the run folder or choose another --out")  # fmt: skip
    old, new = flatten_keys(state["identity"]), flatten_keys(identity)
    differ = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    if differ:
        raise RunMismatchError(
            f"{path}: holds a run with different settings ({', '.join(differ)}); delete the run "
            "folder or choose another --out"
        )


def train(spec: RunSpec) -> dict[str, Any]:
    """Train (or resume, or find finished) the run described by ``spec``.

    Returns:
        The contents of ``final.json``: last validation metrics (with per-class values), best
        epoch, parameter counts and parity, steps, timing.

    Raises:
        RunMismatchError: the run folder holds a checkpoint of other settings.
        NonFiniteLossError: a loss term or the gradient became NaN/Inf.
        SolverError: the head's eigensolver did not converge.
        PreparedFormatError, DataError: the data folder is not a finished preparation.
    """
    out = Path(spec.out)
    identity = spec.identity()
    device = resolve_device(spec.device or spec.train.device)
    monitor = RunMonitor(out, live=spec.live, echo=spec.echo)
    state = None
    if (out / CHECKPOINT).is_file():
        state = load_checkpoint(out / CHECKPOINT)
        _check_resumable(state, identity, out / CHECKPOINT)
        if state["epoch"] >= spec.train.epochs and (out / FINAL).is_file():
            monitor.log(f"{out}: already finished ({FINAL} present); nothing to do")
            return json.loads((out / FINAL).read_text())
    (out / FINAL).unlink(missing_ok=True)
    with deterministic_algorithms():
        trainer = _Trainer(spec, device, monitor)
        if state is not None:
            trainer.restore(state)
            monitor.log(f"resuming {out} after epoch {trainer.epoch} (step {trainer.step})")
        try:
            return trainer.run(identity)
        except Exception as exc:
            monitor.log(f"stopped: {type(exc).__name__}: {exc}")
            raise
