r"""Graph nodes of an image: frozen encoder taps and down-sampled colours on one grid.

The unsupervised routes work on the nodes of one feature grid, the encoder's stride-``s`` map
(``s = 16``: 23 x 30 nodes for a 360 x 480 CamVid frame, as the paper's ViT patches of 16 px).
A node's feature is the concatenation of several taps brought to that grid, each L2-normalised
over its channels and the whole divided by ``sqrt(#taps)``:

.. math::

    f_u = \frac{1}{\sqrt{T}} \big[\, \hat t_1(u),\; \dots,\; \hat t_T(u) \,\big], \qquad
    \hat t(u) = t(u) / \lVert t(u) \rVert ,

so ``||f_u|| = 1`` and each tap weighs the same in the cosine ``f_u^T f_v`` whatever its channel
count (EfficientNet-Lite0 taps have 24/40/112/320 channels). A finer tap is average-pooled to the
grid, a coarser one bilinearly up-sampled (the paper also feeds intermediate ViT features).

The node colour is the image bilinearly down-sampled (with anti-aliasing) to the same grid, RGB in
``[0, 1]``: the input of the pixel graph of :mod:`cheeger.unsupervised.kernel`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = ["TAP_STRIDES", "node_colours", "node_features"]

#: Strides of the EfficientNet-Lite0 taps, in the order the feature cache stores them.
TAP_STRIDES = (4, 8, 16, 32)


def node_features(
    taps: Sequence[torch.Tensor], stride: int = 16, levels: Sequence[int] = (1, 2, 3)
) -> torch.Tensor:
    """Unit-norm node features of a batch on the stride-``stride`` grid.

    Args:
        taps: the 4 taps, each ``(B, C_i, h_i, w_i)`` (or ``(C_i, h_i, w_i)`` for one image), at
            strides 4/8/16/32; any float dtype (the cache's float16 is promoted to float32).
        stride: the grid, one of :data:`TAP_STRIDES`.
        levels: indices of the taps to concatenate (default: strides 8, 16, 32).

    Returns:
        ``(B, h, w, C)`` float32 (``(h, w, C)`` for one image), ``C = sum of the levels'
        channels``, every node of unit norm.

    Raises:
        ValueError: wrong number of taps, unknown stride or level, or NaN/inf in a tap.

    Example:
        >>> taps = [torch.randn(2, c, 48 // s, 64 // s) for c, s in zip((3, 4, 5, 6), TAP_STRIDES)]
        >>> f = node_features(taps, stride=16, levels=(2, 3))
        >>> tuple(f.shape), round(float(f.norm(dim=-1).mean()), 4)
        ((2, 3, 4, 11), 1.0)
    """
    if len(taps) != len(TAP_STRIDES):
        raise ValueError(f"node_features: expected {len(TAP_STRIDES)} taps, got {len(taps)}")
    if stride not in TAP_STRIDES:
        raise ValueError(f"node_features: stride must be one of {TAP_STRIDES}, got {stride!r}")
    if not levels or any(lv not in range(len(TAP_STRIDES)) for lv in levels):
        raise ValueError(f"node_features: levels must be tap indices 0-3, got {list(levels)}")
    single = taps[0].dim() == 3
    taps = [t[None] if single else t for t in taps]
    grid = tuple(taps[TAP_STRIDES.index(stride)].shape[-2:])
    parts = []
    for level in levels:
        tap = taps[level].float()  # (B, C, h_i, w_i)
        if not torch.isfinite(tap).all():
            raise ValueError(f"node_features: tap {level} (stride {TAP_STRIDES[level]}) has "
                             "NaN or infinite entries")  # fmt: skip
        if TAP_STRIDES[level] < stride:
            tap = F.adaptive_avg_pool2d(tap, grid)
        elif TAP_STRIDES[level] > stride:
            tap = F.interpolate(tap, size=grid, mode="bilinear", align_corners=False)
        parts.append(F.normalize(tap, dim=1))  # (B, C, h, w)
    out = torch.cat(parts, 1).permute(0, 2, 3, 1) / math.sqrt(len(parts))  # (B, h, w, C)
    return out[0] if single else out


def node_colours(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """RGB of each node: the image bilinearly down-sampled (anti-aliased) to the grid.

    Args:
        images: ``(B, H, W, 3)`` uint8 (as the prepared ``images.npy``) or float in ``[0, 1]``;
            ``(H, W, 3)`` for one image.
        size: the grid ``(h, w)``.

    Returns:
        ``(B, h, w, 3)`` float32 in ``[0, 1]`` (``(h, w, 3)`` for one image).

    Example:
        >>> node_colours(torch.full((4, 6, 3), 255, dtype=torch.uint8), (2, 3)).shape
        torch.Size([2, 3, 3])
    """
    single = images.dim() == 3
    x = images[None] if single else images
    if x.dim() != 4 or x.shape[-1] != 3:
        raise ValueError(f"node_colours: images must be (B, H, W, 3), got {tuple(images.shape)}")
    x = x.permute(0, 3, 1, 2).float()  # (B, 3, H, W)
    if images.dtype == torch.uint8:
        x = x / 255.0
    x = F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False, antialias=True)
    out = x.clamp(0, 1).permute(0, 2, 3, 1)  # (B, h, w, 3)
    return out[0] if single else out
