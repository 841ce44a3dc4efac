"""A U-Net backbone with a swappable segmentation head.

Encoder: ``depth`` stages of 2x2 max pooling and a double 3x3 convolution, channels doubling from
``width``; decoder: bilinear 2x upsampling, concatenation with the skip connection and a double
3x3 convolution back to the skip's channels. ``forward_features`` returns the last decoder map,
``(B, width, H, W)`` at the input's full resolution; ``forward`` hands it to the head (any
:class:`~cheeger.heads.Head`, built by name), which returns logits of the input size. Upsampling
matches each skip's exact size, so inputs need not be divisible by ``2 ** depth`` (but must be
at least that large).

Same backbone, two heads: the head is the only difference between the compared models, and the
backbone dominates the parameter count (the conv head is just ``width * K + K`` weights), which is
what keeps both models' totals within a few percent (see :func:`parameter_counts`).

Example:
    >>> import torch
    >>> model = UNet(num_classes=5, depth=2, width=8, norm="group", groups=4)
    >>> model.forward_features(torch.rand(1, 3, 30, 42)).shape
    torch.Size([1, 8, 30, 42])
    >>> model(torch.rand(1, 3, 30, 42)).logits.shape
    torch.Size([1, 5, 30, 42])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cheeger.heads import Head, HeadOutput, build_head, check_head_output

__all__ = ["NORMS", "DoubleConv", "UNet", "parameter_counts", "parameter_parity"]

NORMS = ("batch", "group", "none")


def _norm(kind: str, channels: int, groups: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(groups, channels)
    return nn.Identity()


class DoubleConv(nn.Sequential):
    """Two ``3x3 convolution -> normalisation -> ReLU`` blocks (convolutions without bias when a
    normalisation follows, since its shift makes the bias redundant)."""

    def __init__(self, in_channels: int, out_channels: int, norm: str, groups: int) -> None:
        bias = norm == "none"
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=bias),
            _norm(norm, out_channels, groups),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=bias),
            _norm(norm, out_channels, groups),
            nn.ReLU(inplace=True),
        )


class UNet(nn.Module):
    """U-Net backbone plus a named head.

    Args:
        num_classes: classes ``K`` of the logits.
        in_channels: input channels (3 for RGB).
        depth: number of 2x downsamplings (the bottleneck is at ``1 / 2 ** depth``).
        width: channels of the first stage; stage ``i`` has ``width * 2 ** i``.
        norm: ``"batch"``, ``"group"`` or ``"none"``.
        groups: groups of group normalisation (must divide ``width``); unused otherwise.
        head: registered head name (``"conv"``, ``"spectral"``) or a :class:`Head` instance.
        head_options: keyword arguments of the named head.

    Shape:
        - input: ``(B, in_channels, H, W)``.
        - forward_features: ``(B, width, H, W)``.
        - forward: :class:`~cheeger.heads.HeadOutput` with logits ``(B, K, H, W)``.
    """

    def __init__(
        self,
        num_classes: int,
        *,
        in_channels: int = 3,
        depth: int = 4,
        width: int = 16,
        norm: str = "batch",
        groups: int = 8,
        head: str | Head = "conv",
        head_options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        for name, value, low in (("num_classes", num_classes, 1), ("in_channels", in_channels, 1),
                                 ("depth", depth, 1), ("width", width, 1), ("groups", groups, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"UNet: {name} must be an int >= {low}, got {value!r}")
        if norm not in NORMS:
            raise ValueError(f"UNet: norm must be one of {list(NORMS)}, got {norm!r}")
        if norm == "group" and width % groups:
            raise ValueError(f"UNet: groups ({groups}) must divide width ({width}) for group norm")
        self.num_classes, self.in_channels, self.depth = num_classes, in_channels, depth
        self.width, self.norm, self.groups = width, norm, groups
        channels = [width * 2**i for i in range(depth + 1)]
        self.stem = DoubleConv(in_channels, width, norm, groups)
        self.down = nn.ModuleList(
            DoubleConv(channels[i], channels[i + 1], norm, groups) for i in range(depth)
        )
        self.up = nn.ModuleList(
            DoubleConv(channels[i + 1] + channels[i], channels[i], norm, groups)
            for i in reversed(range(depth))
        )
        if isinstance(head, Head):
            if head_options:
                raise ValueError("UNet: head_options only apply to a head given by name")
            self.head_name, self.head_options = type(head).__name__, {}
        else:
            self.head_name, self.head_options = head, dict(head_options or {})
            head = build_head(head, width, num_classes, **self.head_options)
        if head.in_channels != width or head.num_classes != num_classes:
            raise ValueError(
                f"UNet: head expects {head.in_channels} channels and {head.num_classes} classes, "
                f"the backbone gives {width} channels and {num_classes} classes"
            )
        self.head = head

    def spec(self) -> dict[str, Any]:
        """Constructor arguments that rebuild this model (stored in checkpoints)."""
        return {
            "num_classes": self.num_classes, "in_channels": self.in_channels,
            "depth": self.depth, "width": self.width, "norm": self.norm, "groups": self.groups,
            "head": self.head_name, "head_options": dict(self.head_options),
        }  # fmt: skip

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last decoder feature map, ``(B, width, H, W)``, at the input's resolution."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"UNet: expected input (B, {self.in_channels}, H, W), got {tuple(x.shape)}"
            )
        if min(x.shape[-2:]) < 2**self.depth:
            raise ValueError(f"UNet: input {tuple(x.shape[-2:])} is smaller than 2 ** depth = "
                             f"{2**self.depth} pixels on a side")  # fmt: skip
        skips = [self.stem(x)]  # (B, width, H, W)
        for stage in self.down:
            skips.append(stage(F.max_pool2d(skips[-1], 2)))  # (B, 2 c, h / 2, w / 2)
        y = skips.pop()
        for stage in self.up:
            skip = skips.pop()
            y = F.interpolate(y, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            y = stage(torch.cat([skip, y], dim=1))  # (B, c_skip, h, w)
        return y

    def forward(self, x: torch.Tensor) -> HeadOutput:
        out_size = tuple(x.shape[-2:])
        output = self.head(self.forward_features(x), out_size)
        return check_head_output(output, x.shape[0], self.num_classes, out_size, self.head_name)

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> UNet:
        """Rebuild a model from :meth:`spec`."""
        return cls(**dict(spec))


def parameter_counts(model: UNet) -> dict[str, int]:
    """Trainable parameters of the backbone, the head and their total.

    Example:
        >>> counts = parameter_counts(UNet(3, depth=1, width=4, norm="none"))
        >>> counts["head"], counts["total"] == counts["backbone"] + counts["head"]
        (15, True)
    """
    head = sum(p.numel() for p in model.head.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"backbone": total - head, "head": head, "total": total}


def parameter_parity(
    model: UNet, heads: Mapping[str, Mapping[str, Any]], tolerance: float = 0.05
) -> dict[str, Any]:
    """Total parameters of ``model``'s backbone with each head of ``heads``, and their spread.

    Only the heads are built (the backbone is shared), under a forked random state so the
    caller's generators are untouched.

    Args:
        model: the model being trained (its own head is included).
        heads: head name -> constructor options of every head to compare with.
        tolerance: largest allowed ``max / min - 1`` of the totals.

    Returns:
        ``{"totals": {name: int}, "spread": float, "tolerance": float, "ok": bool}``.

    Example:
        >>> model = UNet(3, depth=1, width=4, norm="none")
        >>> parameter_parity(model, {"conv": {}})["spread"]
        0.0
    """
    counts = parameter_counts(model)
    totals = {model.head_name: counts["total"]}
    with torch.random.fork_rng(devices=[]):
        for name, options in heads.items():
            if name not in totals:
                head = build_head(name, model.width, model.num_classes, **dict(options))
                size = sum(p.numel() for p in head.parameters() if p.requires_grad)
                totals[name] = counts["backbone"] + size
    spread = max(totals.values()) / min(totals.values()) - 1
    return {"totals": totals, "spread": spread, "tolerance": tolerance, "ok": spread <= tolerance}
