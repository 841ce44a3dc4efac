"""Segmentation models: an encoder (from-scratch U-Net or pretrained EfficientNet-Lite0), a
decoder, and a swappable head; chosen by encoder name (:func:`build_model`)."""

from __future__ import annotations

from cheeger.models.unet import NORMS, DoubleConv, UNet, parameter_counts, parameter_parity  # isort: skip
from cheeger.models.build import (
    ENCODERS,
    ModelSpecError,
    build_model,
    check_model_spec,
    model_from_spec,
)
from cheeger.models.fpn import FPNDecoder, fpn_merge
from cheeger.models.lite_fpn import LiteFPN

__all__ = [
    "ENCODERS",
    "NORMS",
    "DoubleConv",
    "FPNDecoder",
    "LiteFPN",
    "ModelSpecError",
    "UNet",
    "build_model",
    "check_model_spec",
    "fpn_merge",
    "model_from_spec",
    "parameter_counts",
    "parameter_parity",
]
