"""Training of a U-Net with a swappable head: objective, schedules, checkpoints, monitoring.

:func:`train` runs (or resumes) one run described by a :class:`RunSpec`; the pieces it is made
of are importable for tests and for the study scripts.
"""

from __future__ import annotations

from cheeger.training.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from cheeger.training.errors import (
    DeviceUnavailableError,
    NonFiniteLossError,
    RunMismatchError,
    RunNotFoundError,
    SolverError,
    TrainingError,
)
from cheeger.training.loop import BEST, CHECKPOINT, CHECKPOINT_FORMAT, FINAL, train
from cheeger.training.loss import (
    SegmentationLoss,
    check_finite,
    masked_cross_entropy,
    segmentation_loss,
)
from cheeger.training.monitor import RunMonitor
from cheeger.training.runtime import (
    derived_seed,
    deterministic_algorithms,
    epoch_order,
    resolve_device,
)
from cheeger.training.schedule import (
    CosineSchedule,
    build_optimizer,
    loss_weights,
    rayleigh_weight,
)
from cheeger.training.snapshot import save_snapshot, snapshot_figure
from cheeger.training.spec import RunSpec, flatten_keys
from cheeger.training.validation import (
    SCALAR_METRICS,
    ForwardTimer,
    evaluate_model,
    metrics_summary,
    predict_native,
)

__all__ = [
    "BEST",
    "CHECKPOINT",
    "CHECKPOINT_FORMAT",
    "FINAL",
    "SCALAR_METRICS",
    "CosineSchedule",
    "DeviceUnavailableError",
    "ForwardTimer",
    "NonFiniteLossError",
    "RunMismatchError",
    "RunMonitor",
    "RunNotFoundError",
    "RunSpec",
    "SegmentationLoss",
    "SolverError",
    "TrainingError",
    "build_optimizer",
    "check_finite",
    "derived_seed",
    "deterministic_algorithms",
    "epoch_order",
    "evaluate_model",
    "flatten_keys",
    "load_checkpoint",
    "loss_weights",
    "masked_cross_entropy",
    "metrics_summary",
    "predict_native",
    "rayleigh_weight",
    "resolve_device",
    "rng_state",
    "save_checkpoint",
    "save_snapshot",
    "segmentation_loss",
    "set_rng_state",
    "snapshot_figure",
    "train",
]
