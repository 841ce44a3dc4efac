"""Random label maps with regions, void pixels and absent classes, shared by the metric tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pytest
import torch

Split = tuple[list[torch.Tensor], list[torch.Tensor]]


def blocky_labels(
    rng: np.random.Generator, height: int, width: int, classes: Sequence[int], block: int
) -> np.ndarray:
    """An (H, W) map of random ``block``-sized rectangles drawn from ``classes``."""
    coarse = rng.choice(np.asarray(classes), size=(-(-height // block), -(-width // block)))
    return np.kron(coarse, np.ones((block, block), dtype=np.int64))[:height, :width]


def random_split(
    seed: int,
    sizes: Sequence[tuple[int, int]],
    num_classes: int,
    ignore_index: int | None,
    void_fraction: float = 0.1,
    absent: Sequence[int] = (),
    predicted_only: Sequence[int] = (),
    flip_fraction: float = 0.2,
) -> Split:
    """Targets of blocky regions with void pixels; predictions = targets with random errors.

    Classes in ``absent`` appear nowhere; classes in ``predicted_only`` appear only in predictions.
    """
    rng = np.random.default_rng(seed)
    gt_classes = [c for c in range(num_classes) if c not in absent and c not in predicted_only]
    pred_classes = [c for c in range(num_classes) if c not in absent]
    preds, targets = [], []
    for h, w in sizes:
        t = blocky_labels(rng, h, w, gt_classes, block=int(rng.integers(2, 6)))
        p = t.copy()
        flip = rng.random((h, w)) < flip_fraction
        p[flip] = rng.choice(np.asarray(pred_classes), size=int(flip.sum()))
        if ignore_index is not None:
            t[rng.random((h, w)) < void_fraction] = ignore_index
        preds.append(torch.from_numpy(p))
        targets.append(torch.from_numpy(t))
    return preds, targets


@pytest.fixture
def make_split() -> Callable[..., Split]:
    return random_split
