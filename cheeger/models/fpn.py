"""A light FPN decoder: encoder taps at strides 4/8/16/32 merged top-down into one stride-4 map.

Each tap goes through a lateral ``1x1 conv -> batch norm`` to ``width`` channels; from the
coarsest, the running map is bilinearly upsampled to the next tap's size and added to it
(Lin et al. 2017); the stride-4 sum goes through a ``3x3 conv -> batch norm -> ReLU``. The result,
``(B, width, ceil(H / 4), ceil(W / 4))``, is what the head receives (a head upsamples its logits
to the input size itself; the spectral head's ``stride`` then counts from this stride-4 map).

Example:
    >>> import torch
    >>> decoder = FPNDecoder((24, 40, 112, 320), width=16)
    >>> taps = [torch.rand(2, c, 16 // 2**i, 24 // 2**i) for i, c in enumerate((24, 40, 112, 320))]
    >>> decoder(taps).shape
    torch.Size([2, 16, 16, 24])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["FPNDecoder", "fpn_merge"]


def fpn_merge(laterals: Sequence[torch.Tensor]) -> torch.Tensor:
    """Top-down sum of same-width maps ordered fine to coarse: ``p_i = l_i + up(p_{i+1})``.

    Example:
        >>> import torch
        >>> fpn_merge([torch.zeros(1, 2, 4, 4), torch.ones(1, 2, 2, 2)]).sum().item()
        32.0
    """
    y = laterals[-1]
    for lateral in reversed(laterals[:-1]):
        y = lateral + F.interpolate(y, size=lateral.shape[-2:], mode="bilinear",
                                    align_corners=False)  # fmt: skip
    return y  # (B, width, h_0, w_0)


class FPNDecoder(nn.Module):
    """Merge encoder taps (fine to coarse) into one ``width``-channel map at the finest tap.

    Args:
        in_channels: channels of each tap, finest first.
        width: channels of the merged map.

    Shape:
        - taps: ``[(B, in_channels[i], h_i, w_i)]``, ``h_i`` halving (up to rounding).
        - output: ``(B, width, h_0, w_0)``.
    """

    def __init__(self, in_channels: Sequence[int], width: int = 64) -> None:
        super().__init__()
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise ValueError(f"FPNDecoder: width must be an int >= 1, got {width!r}")
        self.in_channels, self.width = tuple(int(c) for c in in_channels), width
        self.lateral = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c, width, 1, bias=False), nn.BatchNorm2d(width))
            for c in self.in_channels
        )
        self.smooth = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        )  # fmt: skip

    def forward(self, taps: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(taps) != len(self.in_channels) or any(
            t.dim() != 4 or t.shape[1] != c for t, c in zip(taps, self.in_channels, strict=False)
        ):
            got = [tuple(t.shape) for t in taps]
            raise ValueError(f"FPNDecoder: expected {len(self.in_channels)} taps (B, C, h, w) "
                             f"with C = {list(self.in_channels)}, got {got}")  # fmt: skip
        laterals = [lateral(t) for lateral, t in zip(self.lateral, taps, strict=True)]
        return self.smooth(fpn_merge(laterals))  # (B, width, h_0, w_0)
