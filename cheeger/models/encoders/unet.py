"""The from-scratch U-Net, where the house plan puts encoders (it lives in
:mod:`cheeger.models.unet`; re-exported here so existing imports keep working)."""

from __future__ import annotations

from cheeger.models.unet import UNet

__all__ = ["UNet"]
