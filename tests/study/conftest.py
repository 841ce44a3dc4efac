"""A synthetic study on disk: every file the pipeline would leave for the report, with planted
numbers, in the formats of ``cheeger train`` (final.json, history.csv) and ``cheeger evaluate``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from cheeger.config import DataConfig
from cheeger.data import prepare
from cheeger.study.config import StudyConfig
from cheeger.study.layout import (
    ABLATION_DONE,
    ABLATION_EVAL,
    CONTROL_DONE,
    CONTROL_EVAL,
    CONTROL_PARAMS,
    CONTROL_RUN,
    EVAL,
    GRADIENTS,
    PREPARED,
    RUN,
    RUN_DONE,
    SCALING_TABLE,
    TRIAL_DONE,
    TRIAL_EVAL,
    TRIAL_PARAMS,
    Layout,
)
from cheeger.study.variants import params_variant

REPO = Path(__file__).resolve().parents[2]
METRICS = ("miou", "pixel_accuracy", "class_accuracy", "boundary_miou", "excess_components",
           "stray_pixels", "stray_fraction", "gt_excess_components", "gt_stray_pixels",
           "gt_stray_fraction")  # fmt: skip


def small_params() -> dict:
    """The repository's params with a tiny embedded profile: 2 heads x 3 seeds, 2 axes."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    block = params["profiles"]["embedded"]
    block.pop("study", None)
    block.update(resolution=[16, 20], seeds=[0, 1, 2], ablation_seeds=[0, 1])
    params["profile"] = "embedded"
    params["data"]["synthetic"].update(size=[16, 20], splits={"train": 2, "val": 2, "test": 2})
    params["study"]["ablation"]["axes"] = {
        "alpha": {"key": "spectral.alpha", "values": [0.0, 1.0]},
        "filter": {"key": "spectral.head.filter", "values": ["heat"]},
    }
    return params


def evaluation(head: str, seed: int, split: str, miou: float, classes: list[str]) -> dict:
    """A metrics JSON as ``cheeger evaluate`` writes it (the keys the report reads)."""
    rng = np.random.default_rng(seed)
    scalars = {name: float(rng.uniform(0.1, 0.9)) for name in METRICS}
    scalars.update(miou=miou, boundary_miou=miou / 2)
    per_class_iou = {name: float(np.clip(miou + 0.1 * (i - 1), 0, 1))
                     for i, name in enumerate(classes)}  # fmt: skip
    per_class_iou[classes[-1]] = None  # absent from prediction and ground truth
    return {"run": f"runs/{head}/seed{seed}", "head": head, "seed": seed, "split": split,
            "dataset": "synthetic", "num_images": 2, "checkpoint": "best", "epoch": 3,
            "resolution": {"input": [16, 20], "labels": "native", "native_sizes": [[16, 20]]},
            "boundary": {"ratio": 0.02, "width_px": {"16x20": 1}}, **scalars,
            "per_class": {"iou": per_class_iou, "boundary_iou": per_class_iou,
                          "accuracy": per_class_iou}}  # fmt: skip


#: Planted graph diagnostics of a spectral run at epoch e of seed s: value * (1 + e / 10 + s).
DIAGNOSTICS = {"diag_affinity_cv": 0.2, "diag_exponent_mean": 3.0, "diag_y_ratio": 0.1,
               "diag_lambda_ratio": 0.8, "diag_lambda2": 3.3e-3, "diag_lambda2_grid": 4.3e-3}
#: A planted final.json "solver" block of a spectral run (cheeger.training.monitor.solver_totals).
SOLVER = {"steps": 30, "methods": {"lanczos": 28, "lobpcg": 2}, "fallback_steps": 2,
          "unconverged_steps": 0, "uncertified_steps": 0,
          "restarts": {"mean": 1.0, "max": 2.0, "total": 30.0},
          "matvecs": {"mean": 80.0, "max": 90.0, "total": 2400.0},
          "complement": {"solves": 30, "columns": 960, "stalled": 3, "unconverged": 0,
                         "steps_with_stalls": 1, "worst_residual": 1e-4}}  # fmt: skip


def history(seed: int, final_miou: float, graph: bool) -> pd.DataFrame:
    """A history.csv of 3 epochs; a run with a graph has the planted diagnostics."""
    frame = pd.DataFrame({"epoch": [1, 2, 3], "train_ce": [2.0, 1.5, 1.2],
                          "val_miou": [0.2, 0.4, final_miou],
                          "val_boundary_miou": [0.1, 0.2, 0.3]})  # fmt: skip
    if graph:
        for name, value in DIAGNOSTICS.items():
            frame[name] = [value * (1 + epoch / 10 + seed) for epoch in frame["epoch"]]
    return frame


def write_study(
    root: Path, params: dict, effect: float, noise: float = 0.005, trial_effect: float = 0.0,
    control_effects: dict[str, float] | None = None,
) -> StudyConfig:
    """Write the files of ``params``' study under ``root``: the spectral head's mIoU is the
    conv head's plus ``effect``, the trial's (if any) plus ``trial_effect``, a control's that
    of the spectral head plus ``control_effects[name]`` (default 0), each run off by up to
    ``noise``. Spectral runs and controls get the planted diagnostics and solver totals."""
    study = StudyConfig.from_params(params)
    layout, profile = Layout(root / "results"), study.profile
    prepare(DataConfig.from_params(params), layout.path(PREPARED, profile=profile))
    manifest = json.loads((layout.path(PREPARED, profile=profile) / "manifest.json").read_text())
    classes = list(manifest["class_names"])
    rng = np.random.default_rng(0)

    def write(path: Path, document) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document) if not isinstance(document, str) else document)

    for head, seed in study.runs():
        base = 0.5 + (effect if head == "spectral" else 0.0)
        final = {"head": head, "seed": seed, "epochs": 3, "device": "cpu", "threads": 1,
                 "train_seconds": 10.0, "parameters": {"total": 1000 + len(head)},
                 "solver": SOLVER if head == "spectral" else None}  # fmt: skip
        write(layout.path(RUN_DONE, profile=profile, head=head, seed=seed), final)
        run = layout.path(RUN, profile=profile, head=head, seed=seed)
        run.mkdir(parents=True, exist_ok=True)
        history(seed, base, head == "spectral").to_csv(run / "history.csv", index=False)
    for head, seed, split in study.evaluations():
        miou = 0.5 + (effect if head == "spectral" else 0.0) + float(rng.uniform(-noise, noise))
        write(layout.path(EVAL, profile=profile, head=head, seed=seed, split=split),
              evaluation(head, seed, split, miou, classes))  # fmt: skip
    for axis, value, seed in study.ablation_runs():
        fields = {"profile": profile, "axis": axis, "value": value, "seed": seed}
        write(layout.path(ABLATION_DONE, **fields), {"train_seconds": 5.0})
        write(layout.path(ABLATION_EVAL, **fields, split=study.ablation_split),
              evaluation("spectral", seed, study.ablation_split, 0.4, classes))  # fmt: skip
    for name, seed in study.trial_runs():
        fields = {"profile": profile, "trial": name, "seed": seed}
        write(layout.path(TRIAL_DONE, **fields), {"train_seconds": 7.0})
        variant = params_variant(params, study.trial.settings)  # what `cheeger variant` writes
        write(layout.path(TRIAL_PARAMS, **fields), yaml.safe_dump(variant, sort_keys=False))
        miou = 0.5 + trial_effect + float(rng.uniform(-noise, noise))
        write(layout.path(TRIAL_EVAL, **fields, split=study.report_split),
              evaluation(name, seed, study.report_split, miou, classes))  # fmt: skip
    for name, seed in study.control_runs():
        fields = {"profile": profile, "control": name, "seed": seed}
        write(layout.path(CONTROL_DONE, **fields), {"train_seconds": 6.0, "device": "cpu",
                                                    "threads": 1, "solver": SOLVER})
        variant = params_variant(params, study.control(name).settings)
        write(layout.path(CONTROL_PARAMS, **fields), yaml.safe_dump(variant, sort_keys=False))
        run = layout.path(CONTROL_RUN, **fields)
        run.mkdir(parents=True, exist_ok=True)
        history(seed, 0.4, True).to_csv(run / "history.csv", index=False)
        miou = (0.5 + effect + (control_effects or {}).get(name, 0.0)
                + float(rng.uniform(-noise, noise)))  # fmt: skip
        write(layout.path(CONTROL_EVAL, **fields, split=study.report_split),
              evaluation(name, seed, study.report_split, miou, classes))  # fmt: skip
    scaling = pd.DataFrame({"solver": ["dense", "dense", "lanczos", "lanczos"],
                            "n": [256, 1024, 256, 1024], "k": 4,
                            "seconds": [0.01, 0.3, 0.02, 0.05]})  # fmt: skip
    path = layout.path(SCALING_TABLE, profile=profile)
    path.parent.mkdir(parents=True, exist_ok=True)
    scaling.to_csv(path, index=False)
    gaps = [1e-1, 1e-3, 1e-5]
    gradients = pd.DataFrame([{"trial": 0, "pair": "boundary", "loss": "eigenvector", "gap": g,
                               "eps": eps, "eps_abs": eps, "grad_norm": 1 / max(g, eps),
                               "bound": 1 / eps if eps else np.inf}
                              for g in gaps for eps in (0.0, 1e-2)])  # fmt: skip
    path = layout.path(GRADIENTS, profile=profile)
    path.parent.mkdir(parents=True, exist_ok=True)
    gradients.to_csv(path, index=False)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return study


@pytest.fixture
def synthetic_study(tmp_path) -> Callable[..., tuple[Path, StudyConfig]]:
    """``make(effect, edit=None)``: a study folder (params.yaml, results/) and its config."""

    def make(effect: float, edit: Callable[[dict], None] | None = None, name: str = "study",
             trial_effect: float = 0.0, control_effects: dict[str, float] | None = None):
        params = copy.deepcopy(small_params())
        if edit is not None:
            edit(params)
        root = tmp_path / name
        root.mkdir()
        return root, write_study(root, params, effect, trial_effect=trial_effect,
                                 control_effects=control_effects)  # fmt: skip

    return make
