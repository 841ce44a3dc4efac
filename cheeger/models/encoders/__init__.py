"""Encoders of the segmentation models: the from-scratch U-Net and the pretrained Lite0."""

from __future__ import annotations

from cheeger.models.encoders.efficientnet_lite import (
    LITE0_MEAN,
    LITE0_STAGES,
    LITE0_STD,
    TAP_CHANNELS,
    TAP_STRIDES,
    EfficientNetLite0,
    WeightsError,
    lite0_weights_path,
    load_lite0_state,
)
from cheeger.models.encoders.unet import UNet

__all__ = [
    "LITE0_MEAN",
    "LITE0_STAGES",
    "LITE0_STD",
    "TAP_CHANNELS",
    "TAP_STRIDES",
    "EfficientNetLite0",
    "UNet",
    "WeightsError",
    "lite0_weights_path",
    "load_lite0_state",
]
