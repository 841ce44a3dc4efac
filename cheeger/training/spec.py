"""What one training run depends on, and the identity a resumed checkpoint must match.

Example:
    >>> spec = RunSpec(data="results/prepared/embedded", out="results/runs/conv/0", head="conv",
    ...                seed=0)
    >>> spec.train.epochs, spec.model.width
    (25, 8)
    >>> flatten_keys({"train": {"lr": 0.1}, "seed": 0})
    {'train.lr': 0.1, 'seed': 0}
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cheeger.config import (
    AugmentConfig,
    EvaluateConfig,
    LossWeightsConfig,
    ModelConfig,
    TrainConfig,
)
from cheeger.models.encoders.efficientnet_lite import LITE0_MEAN, LITE0_STD

__all__ = ["RunSpec", "flatten_keys"]


@dataclass(frozen=True)
class RunSpec:
    """Everything one training run depends on.

    Attributes:
        data: prepared dataset folder (``cheeger prepare --out``).
        out: run folder.
        head: registered head name.
        seed: seed of initialisation, data order and augmentation.
        model, train, loss, evaluate, augment: the config sections.
        head_options: the head's constructor options.
        compare_heads: name -> options of every head whose total parameter count is compared
            with this model's (logged; the design wants them within 5%).
        device: overrides ``train.device`` when set.
        progress: show a progress bar (only on a terminal).
        echo: print log lines on stdout.
        live: write DVCLive curves.
        meta: free-form facts recorded in ``final.json`` (profile, params file).
    """

    data: str | Path
    out: str | Path
    head: str
    seed: int
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    loss: LossWeightsConfig = field(default_factory=LossWeightsConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    head_options: Mapping[str, Any] = field(default_factory=dict)
    compare_heads: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    device: str | None = None
    progress: bool = True
    echo: bool = True
    live: bool = True
    meta: Mapping[str, Any] = field(default_factory=dict)

    def identity(self) -> dict[str, Any]:
        """The settings that determine the results (what a resumed checkpoint must match).

        Device, workers and the checkpoint choice of evaluation are left out: they do not
        change what is trained (the device may change rounding; resuming elsewhere is allowed).
        """
        manifest = Path(self.data) / "manifest.json"
        train = {k: v for k, v in asdict(self.train).items() if k not in ("device", "num_workers")}
        ev = {k: v for k, v in asdict(self.evaluate).items() if k not in ("checkpoint",)}
        raw = {"head": self.head, "seed": self.seed, "head_options": dict(self.head_options),
               "model": _model_identity(self.model), "train": train, "loss": asdict(self.loss),
               "evaluate": ev, "augment": asdict(self.augment),
               "data": hashlib.sha256(manifest.read_bytes()).hexdigest()}  # fmt: skip
        return json.loads(json.dumps(raw, default=str))  # tuples -> lists, as stored


def _model_identity(model: ModelConfig) -> dict[str, Any]:
    """The model settings that matter for ``model.encoder``: a U-Net run's identity has no
    encoder keys (so runs made before they existed still resume), a Lite0 run's no U-Net keys."""
    if model.encoder == "unet":
        return {k: v for k, v in asdict(model).items() if k in ("depth", "width", "norm", "groups")}
    keys = ("encoder", "decoder_width", "freeze_encoder", "features")
    # the input normalisation the encoder's weights receive: a run begun under another one
    # (before ff5757e, ImageNet's) must not be resumed under this one
    return {**{k: v for k, v in asdict(model).items() if k in keys},
            "encoder_input": {"mean": list(LITE0_MEAN), "std": list(LITE0_STD)}}  # fmt: skip


def flatten_keys(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as one level with dotted keys."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            out.update(flatten_keys(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out
