"""Models chosen by encoder name: build from settings, rebuild from a checkpoint's spec, and check
that a checkpoint's architecture is the one the settings ask for.

Encoders: ``"unet"`` (:class:`~cheeger.models.UNet`, trained from scratch, its own decoder) and
``"efficientnet_lite0"`` (:class:`~cheeger.models.LiteFPN`: ImageNet-pretrained, FPN decoder).
A spec without an ``encoder`` key is a U-Net's (checkpoints written before the key existed).

Example:
    >>> model = build_model("unet", 3, depth=1, width=4, norm="none")
    >>> type(model_from_spec(model.spec())).__name__
    'UNet'
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from torch import nn

from cheeger.models.lite_fpn import LiteFPN
from cheeger.models.unet import UNet

__all__ = ["ENCODERS", "ModelSpecError", "build_model", "check_model_spec", "model_from_spec"]

ENCODERS = ("efficientnet_lite0", "unet")
_UNET_KEYS = ("depth", "width", "norm", "groups")
_LITE_KEYS = ("decoder_width", "freeze_encoder", "input_mean", "input_std", "weights")
# spec keys that fix the architecture and mode (the head is checked by the run's identity)
_ARCHITECTURE = ("encoder", "decoder", "decoder_width", "freeze_encoder", "depth", "width",
                 "norm", "groups", "num_classes")  # fmt: skip


class ModelSpecError(ValueError):
    """A checkpoint's model is not the architecture the settings describe."""


def build_model(encoder: str, num_classes: int, **options: Any) -> nn.Module:
    """A new model with encoder ``encoder``.

    Args:
        encoder: one of :data:`ENCODERS`.
        num_classes: classes of the logits.
        **options: ``head``, ``head_options`` and the encoder's own settings (U-Net: ``depth``,
            ``width``, ``norm``, ``groups``; Lite0: ``decoder_width``, ``freeze_encoder``,
            ``input_mean``, ``input_std``, ``weights``). Settings of the other encoder are
            ignored, so one ``model:`` section can hold both.
    """
    head = {k: options.pop(k) for k in ("head", "head_options") if k in options}
    if encoder == "unet":
        return UNet(num_classes, **{k: v for k, v in options.items() if k in _UNET_KEYS}, **head)
    if encoder == "efficientnet_lite0":
        return LiteFPN(num_classes, **{k: v for k, v in options.items() if k in _LITE_KEYS},
                       **head)  # fmt: skip
    raise ValueError(f"build_model: encoder must be one of {list(ENCODERS)}, got {encoder!r}")


def model_from_spec(spec: Mapping[str, Any]) -> nn.Module:
    """Rebuild the (untrained) model a checkpoint's ``model_spec`` describes."""
    encoder = spec.get("encoder", "unet")
    if encoder == "unet":
        return UNet.from_spec({k: v for k, v in spec.items() if k != "encoder"})
    if encoder == "efficientnet_lite0":
        return LiteFPN.from_spec(spec)
    raise ModelSpecError(f"model spec: encoder must be one of {list(ENCODERS)}, got {encoder!r}")


def check_model_spec(
    found: Mapping[str, Any], expected: Mapping[str, Any], path: str | os.PathLike
) -> None:
    """Refuse a checkpoint (at ``path``) whose encoder or decoder differs from ``expected``.

    Raises:
        ModelSpecError: naming ``path``, each differing key, what it holds and what was expected.

    Example:
        >>> try:
        ...     check_model_spec({"encoder": "unet"}, {"encoder": "efficientnet_lite0"}, "x.pt")
        ... except ModelSpecError as exc:
        ...     print(str(exc).split(": ", 2)[-1])
        encoder is 'unet', expected 'efficientnet_lite0'
    """
    found, expected = {"encoder": "unet", **found}, {"encoder": "unet", **expected}
    differ = [f"{k} is {found.get(k)!r}, expected {expected.get(k)!r}" for k in _ARCHITECTURE
              if found.get(k) != expected.get(k)]  # fmt: skip
    if differ:
        raise ModelSpecError(f"{path}: the checkpoint's model does not match the settings: "
                             + "; ".join(differ))  # fmt: skip
