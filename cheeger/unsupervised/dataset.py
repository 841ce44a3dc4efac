"""A split of the feature cache as graph nodes: all at once (to fit) or one image at a time.

The cache (:mod:`cheeger.features`) holds the encoder taps; the prepared folder the images (for
the node colours) and the native-size labels (for evaluation). Flipped copies are not used: the
unsupervised routes see each training image once.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from cheeger.data.prepared import split_array_path
from cheeger.features import CachedTaps
from cheeger.unsupervised.nodes import node_colours, node_features

__all__ = ["iter_items", "load_split_nodes"]


def _cached(features: str | os.PathLike, data: str | os.PathLike, split: str,
            native: bool) -> CachedTaps:  # fmt: skip
    # hflip 0: the unflipped taps of every image
    return CachedTaps(features, data, split, hflip=0.0, native=native)


def iter_items(
    features: str | os.PathLike, data: str | os.PathLike, split: str, limit: int | None = None
) -> Iterator[dict[str, Any]]:
    """Yield ``taps``, ``native_label`` ``(H0, W0)``, ``image`` ``(H, W, 3)`` uint8, ``id``.

    Raises:
        FeaturesError: an unfinished cache or one of other data.
    """
    cached = _cached(features, data, split, native=True)
    images = np.load(split_array_path(data, split, "images"), mmap_mode="r")  # (N, H, W, 3)
    count = len(cached) if limit is None else min(limit, len(cached))
    for index in range(count):
        item = cached[index]
        yield {"taps": item["taps"], "native_label": item["native_label"], "id": item["id"],
               "image": torch.from_numpy(np.array(images[index]))}  # fmt: skip


def load_split_nodes(
    features: str | os.PathLike,
    data: str | os.PathLike,
    split: str,
    *,
    stride: int = 16,
    levels: tuple[int, ...] = (1, 2, 3),
    limit: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Node features and colours of a whole split.

    Returns:
        ``features`` ``(M, h, w, C)`` float16 (half the memory: 367 CamVid frames at stride 16
        take 240 MB) and ``colours`` ``(M, h, w, 3)`` float32.
    """
    cached = _cached(features, data, split, native=False)
    images = np.load(split_array_path(data, split, "images"), mmap_mode="r")
    count = len(cached) if limit is None else min(limit, len(cached))
    feats, cols = [], []
    for index in range(count):
        f = node_features(cached[index]["taps"], stride, levels)  # (h, w, C)
        feats.append(f.half())
        cols.append(node_colours(torch.from_numpy(np.array(images[index])), f.shape[:2]))
    return torch.stack(feats), torch.stack(cols)
