"""The model, training, loss-weight and evaluation settings: ``model:``, ``train:``,
``spectral:`` (its loss weights) and ``evaluate:``.

A profile block may override any of their keys in a sub-mapping of the same name
(``profiles.camvid.model.width: 16``); ``profiles.<name>.epochs`` and ``.device`` are shorthands
for ``train.epochs`` / ``train.device``. The schema checks every key (errors name the key where
it was written); the builders here check only relations between keys.

Example:
    >>> params = {"profile": "p", "profiles": {"p": {"dataset": "synthetic",
    ...           "resolution": [8, 8], "epochs": 3}}, "train": {"lr": 1}}
    >>> config = TrainConfig.from_params(params)
    >>> config.epochs, config.lr
    (3, 1.0)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from cheeger.config.params import ParamsError, build, section_layers

__all__ = ["ENCODERS", "NORMS", "EvaluateConfig", "LossWeightsConfig", "ModelConfig", "TrainConfig"]

#: Choices of ``model.norm`` and ``model.encoder`` (the schema's enums; a test keeps them equal).
NORMS = ("batch", "group", "none")
ENCODERS = ("unet", "efficientnet_lite0")


@dataclass(frozen=True)
class ModelConfig:
    """``model:``: the backbone (encoder and decoder) shared by every head.

    Attributes:
        depth: number of 2x downsamplings (U-Net only).
        width: channels of the first stage (doubled at each stage; U-Net only).
        norm: ``batch``, ``group`` or ``none`` (U-Net only).
        groups: groups of group normalisation; must divide ``width`` (U-Net only).
        encoder: ``unet`` (from scratch) or ``efficientnet_lite0`` (ImageNet-pretrained, FPN
            decoder).
        decoder_width: channels of the FPN decoder's stride-4 map (efficientnet_lite0 only).
        freeze_encoder: keep the pretrained encoder fixed (eval-mode batch norm, no gradient;
            its taps can be cached) instead of fine-tuning it (efficientnet_lite0 only).
        features: folder of the frozen encoder's cached taps (``cheeger features --out``;
            relative to the working directory) that training reads instead of running the
            encoder, or ``None`` (efficientnet_lite0 with freeze_encoder only).
    """

    depth: int = 3
    width: int = 8
    norm: str = "batch"
    groups: int = 4
    encoder: str = "unet"
    decoder_width: int = 64
    freeze_encoder: bool = True
    features: str | None = None

    @classmethod
    def from_params(
        cls, params: Mapping[str, Any], profile: str | None = None, *, origin: str = "params.yaml"
    ) -> ModelConfig:
        """Build from ``model:`` and the profile's ``model:`` overrides.

        Raises:
            ParamsError: a malformed key (its path named), or keys that contradict each other.
        """
        shared, override, _ = section_layers(params, "model", profile, origin=origin)
        config = build(cls, shared, override)
        if config.norm == "group" and config.width % config.groups:
            raise ParamsError(f"{origin}: model.groups: expected a divisor of model.width "
                              f"({config.width}) for group norm, got {config.groups}")  # fmt: skip
        if config.features is not None and (config.encoder != "efficientnet_lite0"
                                            or not config.freeze_encoder):  # fmt: skip
            raise ParamsError(f"{origin}: model.features: cached taps need model.encoder: "
                              "efficientnet_lite0 and model.freeze_encoder: true, got "
                              f"{config.encoder} and {config.freeze_encoder}")  # fmt: skip
        return config


@dataclass(frozen=True)
class TrainConfig:
    """``train:``: optimisation (AdamW, per-step cosine schedule) and run settings.

    Attributes:
        epochs: passes over the train split.
        batch_size: images per step.
        lr: peak learning rate.
        weight_decay: AdamW decoupled weight decay.
        lr_warmup_epochs: linear learning-rate warm-up (may be fractional; 0 = none).
        min_lr: learning rate the cosine decays to at the last step.
        grad_clip: maximum global gradient norm, or ``None`` for no clipping.
        select: validation metric choosing the best checkpoint (``miou`` or ``boundary_miou``).
        snapshot_index: index of the validation image drawn in every epoch's snapshot.
        channels_last: NHWC memory format (about 1.5-2x faster convolutions on CPU here).
        num_workers: data-loading worker processes (results do not depend on it).
        device: ``auto`` (CUDA if available), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
    """

    epochs: int = 25
    batch_size: int = 8
    lr: float = 3e-3
    weight_decay: float = 1e-4
    lr_warmup_epochs: float = 0.5
    min_lr: float = 1e-5
    grad_clip: float | None = None
    select: str = "miou"
    snapshot_index: int = 0
    channels_last: bool = True
    num_workers: int = 0
    device: str = "auto"

    @classmethod
    def from_params(
        cls, params: Mapping[str, Any], profile: str | None = None, *, origin: str = "params.yaml"
    ) -> TrainConfig:
        """Build from ``train:``, the profile's ``train:`` overrides and its shorthands.

        Raises:
            ParamsError: a malformed key, or a shorthand given twice (both paths named).
        """
        shared, override, block = section_layers(params, "train", profile, origin=origin)
        shorthands = {key: block[key] for key in ("epochs", "device") if key in block}
        for key in shorthands:
            if key in override:
                where = f"profiles.{block['name']}"
                raise ParamsError(f"{origin}: {where}.{key}: given twice (also as "
                                  f"{where}.train.{key}); keep one")  # fmt: skip
        return build(cls, shared, override, shorthands)


@dataclass(frozen=True)
class LossWeightsConfig:
    """Loss weights in ``spectral:`` (the section's other keys belong to the spectral head).

    ``loss = CE + alpha(t) * rayleigh + beta * bulk + gamma * connectivity
    + neuralef_weight * neuralef``, where ``alpha(t)`` is 0 for ``warmup_epochs``, then ramps
    linearly to ``alpha`` over ``ramp_epochs`` (``t`` in fractional epochs). ``rayleigh`` and
    ``bulk`` are reported by the spectral and neuralef heads; the trace connectivity term (seed
    002, an ablation) is computed from the probabilities of any head when ``gamma > 0``;
    ``neuralef`` (the NeuralEF objective of the neuralef head's eigenfunctions) reaches their
    network psi only, so under AdamW any positive weight trains it alike and 0 freezes it.
    """

    alpha: float = 0.1
    beta: float = 0.01
    gamma: float = 0.0
    neuralef_weight: float = 1.0
    warmup_epochs: float = 5.0
    ramp_epochs: float = 5.0

    @classmethod
    def from_params(
        cls, params: Mapping[str, Any], profile: str | None = None, *, origin: str = "params.yaml"
    ) -> LossWeightsConfig:
        """Build from ``spectral:`` and the profile's ``spectral:`` overrides."""
        shared, override, _ = section_layers(params, "spectral", profile, origin=origin)
        names = {f.name for f in fields(cls)}
        return build(cls, *({k: v for k, v in layer.items() if k in names}
                            for layer in (shared, override)))  # fmt: skip


@dataclass(frozen=True)
class EvaluateConfig:
    """``evaluate:``: metric settings (used for validation in training too) and checkpoint choice.

    Attributes:
        checkpoint: ``best`` (the epoch with the best validation ``train.select`` metric) or
            ``last`` (the final epoch).
        batch_size: images per inference batch.
        boundary_ratio: Boundary IoU width as a fraction of the image diagonal.
        connectivity: 4 or 8, for the fragment metrics.
        stray_max_size: only excess components of at most this many pixels are stray (null: all).
    """

    checkpoint: str = "best"
    batch_size: int = 8
    boundary_ratio: float = 0.02
    connectivity: int = 8
    stray_max_size: int | None = None

    @classmethod
    def from_params(
        cls, params: Mapping[str, Any], profile: str | None = None, *, origin: str = "params.yaml"
    ) -> EvaluateConfig:
        """Build from ``evaluate:`` and the profile's ``evaluate:`` overrides."""
        shared, override, _ = section_layers(params, "evaluate", profile, origin=origin)
        return build(cls, shared, override)
