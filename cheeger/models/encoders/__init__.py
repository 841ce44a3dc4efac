"""Encoders of the segmentation models: the from-scratch U-Net and the pretrained Lite0."""

from __future__ import annotations

from cheeger.models.encoders.efficientnet_lite import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    LITE0_STAGES,
    TAP_CHANNELS,
    TAP_STRIDES,
    EfficientNetLite0,
    WeightsError,
    lite0_weights_path,
    load_lite0_state,
)
from cheeger.models.encoders.unet import UNet

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "LITE0_STAGES",
    "TAP_CHANNELS",
    "TAP_STRIDES",
    "EfficientNetLite0",
    "UNet",
    "WeightsError",
    "lite0_weights_path",
    "load_lite0_state",
]
