"""Training augmentation for segmentation pairs: random scale, crop (padded), horizontal flip.

The image is rescaled bilinearly and the label by nearest neighbour at pixel centres, so label
values are only ever copied, never interpolated. Crops larger than the rescaled image are padded
at the bottom/right: the image with 0 (the mean colour once normalised) and the label with the
ignore index, so padding never counts in the loss. All randomness comes from one
``torch.Generator`` (four uniform draws per call), so a seeded generator reproduces the result.

Example:
    >>> import torch
    >>> image, label = torch.rand(3, 8, 10), torch.randint(0, 4, (8, 10))
    >>> g = torch.Generator().manual_seed(0)
    >>> out_image, out_label = random_scale_crop_flip(image, label, crop=(6, 6), generator=g)
    >>> tuple(out_image.shape), tuple(out_label.shape)
    ((3, 6, 6), (6, 6))
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["RandomScaleCropFlip", "nearest_resize", "random_scale_crop_flip"]


def nearest_resize(label: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize an ``(H, W)`` label map by nearest neighbour at pixel centres (values are copied).

    Matches :func:`cheeger.data.io.resize_label` (the numpy version used in preparation).
    """
    h, w = label.shape[-2:]
    f64 = {"device": label.device, "dtype": torch.float64}  # same arithmetic as the numpy version
    rows = ((torch.arange(size[0], **f64) + 0.5) * h / size[0]).long()
    cols = ((torch.arange(size[1], **f64) + 0.5) * w / size[1]).long()
    return label[..., rows.clamp_(max=h - 1)[:, None], cols.clamp_(max=w - 1)[None, :]]


def random_scale_crop_flip(
    image: torch.Tensor,
    label: torch.Tensor,
    *,
    scale: tuple[float, float] = (0.75, 1.25),
    crop: tuple[int, int] | None = None,
    hflip: float = 0.5,
    ignore_index: int = 255,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Randomly rescale, crop and flip an image and its label together.

    Args:
        image: ``(3, H, W)`` float image (normalised or not).
        label: ``(H, W)`` integer label map.
        scale: ``(low, high)``; the scale factor is drawn uniformly from it.
        crop: ``(h, w)`` output size; ``None`` keeps the input size ``(H, W)``.
        hflip: probability of a horizontal flip.
        ignore_index: label value used for padding.
        generator: source of randomness (CPU generator); ``None`` uses torch's global one.

    Returns:
        ``image (3, h, w)`` and ``label (h, w)``.
    """
    if image.dim() != 3 or label.shape != image.shape[-2:]:
        raise ValueError(
            f"expected image (3, H, W) and label (H, W) of the same size, "
            f"got image {tuple(image.shape)} and label {tuple(label.shape)}"
        )
    low, high = scale
    if not 0 < low <= high:
        raise ValueError(f"scale must satisfy 0 < low <= high, got {scale}")
    h, w = image.shape[-2:]
    ch, cw = (h, w) if crop is None else crop
    u = torch.rand(4, generator=generator).tolist()  # scale, row offset, column offset, flip
    s = low + (high - low) * u[0]
    sh, sw = max(1, round(h * s)), max(1, round(w * s))
    if (sh, sw) != (h, w):
        image = F.interpolate(
            image[None], size=(sh, sw), mode="bilinear", align_corners=False, antialias=s < 1
        )[0]
        label = nearest_resize(label, (sh, sw))
    pad_h, pad_w = max(0, ch - sh), max(0, cw - sw)
    if pad_h or pad_w:
        image = F.pad(image, (0, pad_w, 0, pad_h), value=0.0)
        label = F.pad(label, (0, pad_w, 0, pad_h), value=ignore_index)
    y0 = min(math.floor(u[1] * (sh + pad_h - ch + 1)), sh + pad_h - ch)
    x0 = min(math.floor(u[2] * (sw + pad_w - cw + 1)), sw + pad_w - cw)
    image = image[:, y0 : y0 + ch, x0 : x0 + cw]  # (3, ch, cw)
    label = label[y0 : y0 + ch, x0 : x0 + cw]  # (ch, cw)
    if u[3] < hflip:
        image, label = image.flip(-1), label.flip(-1)
    return image.contiguous(), label.contiguous()


class RandomScaleCropFlip(nn.Module):
    """Module form of :func:`random_scale_crop_flip` holding its settings.

    Example:
        >>> import torch
        >>> aug = RandomScaleCropFlip(scale=(0.5, 2.0), crop=(4, 4), hflip=0.5)
        >>> image, label = aug(torch.rand(3, 8, 8), torch.zeros(8, 8, dtype=torch.long))
        >>> tuple(label.shape)
        (4, 4)
    """

    def __init__(
        self,
        scale: tuple[float, float] = (0.75, 1.25),
        crop: tuple[int, int] | None = None,
        hflip: float = 0.5,
        ignore_index: int = 255,
    ) -> None:
        super().__init__()
        self.scale, self.crop, self.hflip, self.ignore_index = scale, crop, hflip, ignore_index

    def forward(
        self, image: torch.Tensor, label: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return random_scale_crop_flip(
            image, label, scale=self.scale, crop=self.crop, hflip=self.hflip,
            ignore_index=self.ignore_index, generator=generator,
        )  # fmt: skip

    def extra_repr(self) -> str:
        return f"scale={self.scale}, crop={self.crop}, hflip={self.hflip}"
