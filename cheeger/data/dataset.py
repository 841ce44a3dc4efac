"""Torch ``Dataset`` over one split of a prepared folder (see :mod:`cheeger.data.prepared`).

Items are dicts: ``image`` (3, H, W) float32 normalised with the manifest's per-channel mean/std
(of the train split), ``label`` (H, W) int64, ``index`` and ``id``; with ``native=True`` also
``native_label`` (H0, W0) int64 at the source resolution, for evaluation. Augmentation randomness
is seeded per item from ``(seed, epoch, index)``, so results do not depend on worker count or
order; call :meth:`PreparedDataset.set_epoch` to vary it between epochs.

Example:
    >>> ds = PreparedDataset("results/prepared/embedded", "train")  # doctest: +SKIP
    >>> item = ds[0]; item["image"].shape, item["label"].dtype  # doctest: +SKIP
    (torch.Size([3, 128, 160]), torch.int64)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from cheeger.data.errors import DataError
from cheeger.data.io import read_label
from cheeger.data.prepared import load_manifest, native_label_path, split_array_path
from cheeger.data.transforms import RandomScaleCropFlip

__all__ = ["PreparedDataset", "collate_items"]


class PreparedDataset(Dataset):
    """One split of a prepared dataset.

    Args:
        root: prepared folder (holding ``manifest.json``).
        split: split name, e.g. ``"train"``.
        augment: training augmentation, or ``None`` for evaluation.
        seed: base seed of the augmentation.
        native: also return the native-resolution label.

    Raises:
        PreparedFormatError: ``root`` is not a finished preparation.
        DataError: ``split`` is not in it.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str,
        *,
        augment: RandomScaleCropFlip | None = None,
        seed: int = 0,
        native: bool = False,
    ) -> None:
        self.root = Path(root)
        self.manifest = load_manifest(self.root)
        if split not in self.manifest["splits"]:
            raise DataError(
                f"{self.root}: no split {split!r}; prepared splits: "
                f"{sorted(self.manifest['splits'])}"
            )
        self.split, self.augment, self.seed, self.native = split, augment, int(seed), native
        self.ids: list[str] = list(self.manifest["splits"][split]["ids"])
        self.ignore_index = int(self.manifest["ignore_index"])
        self.num_classes = int(self.manifest["num_classes"])
        norm = self.manifest["normalization"]
        self.mean = torch.tensor(norm["mean"], dtype=torch.float32).view(3, 1, 1)  # RGB in [0, 1]
        self.std = torch.tensor(norm["std"], dtype=torch.float32).view(3, 1, 1)
        self.epoch = 0
        self._arrays: tuple[np.ndarray, np.ndarray] | None = None

    def __getstate__(self) -> dict[str, Any]:
        # Memory maps are reopened in each worker instead of being pickled as full copies.
        return {**self.__dict__, "_arrays": None}

    def _open(self) -> tuple[np.ndarray, np.ndarray]:
        if self._arrays is None:
            self._arrays = (
                np.load(split_array_path(self.root, self.split, "images"), mmap_mode="r"),
                np.load(split_array_path(self.root, self.split, "labels"), mmap_mode="r"),
            )
        return self._arrays

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation draws of ``epoch`` (no effect without augmentation)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.ids)

    def item_seed(self, index: int) -> int:
        """The augmentation seed of item ``index`` in the current epoch."""
        key = np.random.SeedSequence([self.seed, self.epoch, int(index)])
        return int(key.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items of {self.split!r}")
        images, labels = self._open()
        image = torch.from_numpy(np.array(images[index])).permute(2, 0, 1).float()
        image = image.sub_(self.mean * 255).div_(self.std * 255)  # (3, H, W)
        label = torch.from_numpy(np.array(labels[index])).long()  # (H, W)
        if self.augment is not None:
            generator = torch.Generator().manual_seed(self.item_seed(index))
            image, label = self.augment(image, label, generator=generator)
        item: dict[str, Any] = {"image": image, "label": label, "index": index,
                                "id": self.ids[index]}  # fmt: skip
        if self.native:
            path = native_label_path(self.root, self.split, index)
            item["native_label"] = torch.from_numpy(read_label(path)).long()
        return item


def collate_items(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Batch items: stack images / labels, keep ids and native labels (sizes may differ) as lists.

    Example:
        >>> import torch
        >>> item = {"image": torch.zeros(3, 2, 2), "label": torch.zeros(2, 2), "index": 0,
        ...         "id": "a"}
        >>> collate_items([item, item])["image"].shape
        torch.Size([2, 3, 2, 2])
    """
    batch: dict[str, Any] = {
        "image": torch.stack([it["image"] for it in items]),  # (B, 3, H, W)
        "label": torch.stack([it["label"] for it in items]),  # (B, H, W)
        "index": torch.tensor([it["index"] for it in items]),
        "id": [it["id"] for it in items],
    }
    if items and "native_label" in items[0]:
        batch["native_label"] = [it["native_label"] for it in items]
    return batch
