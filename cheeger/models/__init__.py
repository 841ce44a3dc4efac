"""Segmentation models: the U-Net backbone shared by every head."""

from __future__ import annotations

from cheeger.models.unet import NORMS, DoubleConv, UNet, parameter_counts, parameter_parity

__all__ = ["NORMS", "DoubleConv", "UNet", "parameter_counts", "parameter_parity"]
