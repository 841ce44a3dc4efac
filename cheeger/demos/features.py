r"""Seven handcrafted per-pixel features of an image at a working resolution.

The design seed's demos build their graph on seven dimensions per pixel, computed on the
``h x w`` working grid (each working pixel is a block of the input image, area-averaged):

* mean colour, 3: RGB in ``[0, 1]`` averaged over the block and its 3x3 neighbourhood of blocks;
* local texture variance, 1: of the grey level over the same window, at the input's resolution
  (so texture finer than a block still counts); its square root, the deviation, is what is
  stored, so it scales like the colours;
* gradient magnitude, 1: of the grey level, Sobel on the working grid;
* position, 2: ``(y, x)`` in ``[0, 1]``; weighted down so the graph prefers appearance and only
  breaks ties by proximity.

Each dimension is standardised over the image (zero mean, unit variance; constant channels are
left at zero) and then scaled by :data:`FEATURE_WEIGHTS`, so the Euclidean distance between two
feature vectors is the (weighted) distance the kNN graph uses.

Example:
    >>> import torch
    >>> image = torch.rand(3, 36, 48)
    >>> pixel_features(image, (9, 12)).shape
    torch.Size([7, 9, 12])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["FEATURE_NAMES", "FEATURE_WEIGHTS", "PixelFeatures", "pixel_features"]

FEATURE_NAMES = ("red", "green", "blue", "texture_deviation", "gradient", "y", "x")
# Position at 0.5: with it at 1 the bottom eigenvectors are the image's own low frequencies
# (left/right, top/bottom halves) whatever its content; at 0 two far, alike patches join.
FEATURE_WEIGHTS = (1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.5)

_SOBEL = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 8


def _check_image(image: torch.Tensor, size: tuple[int, int]) -> None:
    if image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"pixel_features: image must be (3, H, W) RGB, got {tuple(image.shape)}")
    if not image.is_floating_point():
        raise ValueError(f"pixel_features: image must be float in [0, 1], got {image.dtype}")
    h, w = size
    if not (1 <= h <= image.shape[1] and 1 <= w <= image.shape[2]) or h * w < 2:
        raise ValueError(
            f"pixel_features: working size {size} must have >= 2 pixels and fit in the image "
            f"{tuple(image.shape[1:])}"
        )


def pixel_features(
    image: torch.Tensor, size: tuple[int, int], weights: tuple[float, ...] = FEATURE_WEIGHTS
) -> torch.Tensor:
    """The seven standardised, weighted features of ``image`` on an ``h x w`` grid.

    Args:
        image: ``(3, H, W)`` RGB, float in ``[0, 1]``.
        size: ``(h, w)`` working resolution, at most ``(H, W)``.
        weights: seven per-dimension scales applied after standardisation.

    Returns:
        ``(7, h, w)`` features in the order of :data:`FEATURE_NAMES`, the image's dtype/device.

    Raises:
        ValueError: on a wrong image shape or dtype, or a working size that does not fit.
    """
    _check_image(image, size)
    if len(weights) != len(FEATURE_NAMES):
        raise ValueError(f"pixel_features: need {len(FEATURE_NAMES)} weights, got {len(weights)}")
    grey = (0.299 * image[0] + 0.587 * image[1] + 0.114 * image[2])[None, None]  # (1, 1, H, W)
    rgb = F.adaptive_avg_pool2d(image[None], size)  # (1, 3, h, w)
    moments = F.adaptive_avg_pool2d(torch.cat([grey, grey.square()], 1), size)  # (1, 2, h, w)
    # 3x3 blocks of context: a block's own variance misses texture coarser than one block
    window = torch.cat([rgb, moments], 1)
    window = F.avg_pool2d(F.pad(window, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    colour, mean, mean_sq = window[:, :3], window[:, 3:4], window[:, 4:5]
    variance = (mean_sq - mean.square()).clamp_min(0)  # (1, 1, h, w)
    sobel = _SOBEL.to(image)
    kernels = torch.stack([sobel, sobel.mT])[:, None]  # (2, 1, 3, 3): d/dx, d/dy
    small = F.pad(moments[:, :1], (1, 1, 1, 1), mode="replicate")
    gradient = F.conv2d(small, kernels).square().sum(1, keepdim=True).sqrt()  # (1, 1, h, w)
    h, w = size
    ys = torch.linspace(0, 1, h, dtype=image.dtype, device=image.device)
    xs = torch.linspace(0, 1, w, dtype=image.dtype, device=image.device)
    position = torch.stack(torch.meshgrid(ys, xs, indexing="ij"))[None]  # (1, 2, h, w)
    features = torch.cat([colour, variance.sqrt(), gradient, position], 1)[0]  # (7, h, w)
    flat = features.reshape(len(FEATURE_NAMES), -1)
    std = flat.std(1, keepdim=True)
    scale = torch.tensor(weights, dtype=image.dtype, device=image.device)[:, None]
    # a constant channel (a flat grey image) carries no information: zero, not 0 / 0
    flat = (flat - flat.mean(1, keepdim=True)) * torch.where(std > 1e-8, scale / std, 0.0)
    return flat.reshape(features.shape)


class PixelFeatures(nn.Module):
    """Module form of :func:`pixel_features` (no parameters).

    Args:
        size: ``(h, w)`` working resolution.
        weights: per-dimension scales (default :data:`FEATURE_WEIGHTS`).

    Example:
        >>> PixelFeatures((6, 8))(torch.rand(3, 12, 16)).shape
        torch.Size([7, 6, 8])
    """

    def __init__(self, size: tuple[int, int], weights: tuple[float, ...] = FEATURE_WEIGHTS):
        super().__init__()
        self.size, self.weights = (int(size[0]), int(size[1])), tuple(weights)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """``(3, H, W)`` image -> ``(7, h, w)`` features."""
        return pixel_features(image, self.size, self.weights)

    def extra_repr(self) -> str:
        return f"size={self.size}"
