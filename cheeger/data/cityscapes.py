"""Cityscapes (fine annotations): labelIds mapped to the 19 trainIds, 255 ignored.

Layout under the root (the two official archives unzipped into one folder)::

    leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png
    gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png

The labelId -> trainId table is read from ``cityscapesscripts.helpers.labels`` (the official
definition), never written out here: ids whose trainId is 255 or -1 map to 255; a label value
that is no Cityscapes id (above 33) is an error. The official test split ships placeholder
labels, so profiles normally prepare ``train`` and ``val`` only.

Example:
    >>> int(TRAIN_ID_LUT[7]), int(TRAIN_ID_LUT[26]), int(TRAIN_ID_LUT[0])  # road, car, unlabeled
    (0, 13, 255)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from cityscapesscripts.helpers.labels import labels as CITYSCAPES_LABELS

from cheeger.data.errors import DataError, DataNotFoundError, LabelValueError
from cheeger.data.io import file_sha256, read_label, read_rgb
from cheeger.data.prepared import Sample, Source

__all__ = [
    "CITYSCAPES_CLASSES",
    "CITYSCAPES_ENV",
    "CITYSCAPES_SPLITS",
    "TRAIN_ID_LUT",
    "cityscapes_pairs",
    "cityscapes_root",
    "cityscapes_source",
    "load_cityscapes_pair",
    "map_label_ids",
]

CITYSCAPES_ENV = "CITYSCAPES_DATASET"  # the variable cityscapesscripts itself reads
CITYSCAPES_SPLITS = ("train", "val")
IGNORE_INDEX = 255
IMAGE_SUFFIX = "_leftImg8bit.png"
LABEL_SUFFIX = "_gtFine_labelIds.png"


def _train_id_table() -> tuple[np.ndarray, tuple[str, ...]]:
    lut = np.full(256, -1, dtype=np.int16)  # -1 marks values that are no Cityscapes labelId
    names: dict[int, str] = {}
    for entry in CITYSCAPES_LABELS:
        if not 0 <= entry.id < 256:  # license plate has id -1: never stored in labelIds PNGs
            continue
        ignored = entry.trainId in (255, -1)
        lut[entry.id] = IGNORE_INDEX if ignored else entry.trainId
        if not ignored:
            names[entry.trainId] = entry.name
    classes = tuple(names[t] for t in range(len(names)))
    if sorted(names) != list(range(19)):
        raise RuntimeError(f"cityscapesscripts defines trainIds {sorted(names)}, expected 0..18")
    return lut, classes


TRAIN_ID_LUT, CITYSCAPES_CLASSES = _train_id_table()


def map_label_ids(label_ids: np.ndarray, path: str | os.PathLike = "<array>") -> np.ndarray:
    """Map an ``(H, W)`` uint8 labelId map to trainIds (uint8, 255 = ignore).

    Raises:
        LabelValueError: values that are no Cityscapes labelId (``path`` and values named).
    """
    mapped = TRAIN_ID_LUT[label_ids]
    if (mapped < 0).any():
        bad = np.unique(label_ids[mapped < 0]).tolist()
        raise LabelValueError(f"{path}: values {bad} are not Cityscapes labelIds (0..33)")
    return mapped.astype(np.uint8)


def cityscapes_root(
    root: str | os.PathLike | None,
    key: str = "profiles.cityscapes.root",
    env_var: str = CITYSCAPES_ENV,
) -> Path:
    """The configured root, else ``$env_var``; explain how to obtain the data if neither is usable.

    Args:
        root: configured root or ``None``.
        key: the params key ``root`` came from (named in errors).
        env_var: environment variable consulted when ``root`` is ``None``.

    Raises:
        DataNotFoundError: no usable root, with download and configuration instructions.
    """
    env = os.environ.get(env_var)
    chosen = root if root is not None else env
    how = (
        "Cityscapes needs a free registration: download leftImg8bit_trainvaltest.zip and "
        "gtFine_trainvaltest.zip from https://www.cityscapes-dataset.com/downloads/ "
        "(https://www.cityscapes-dataset.com), unzip both into one folder (it then holds "
        f"leftImg8bit/ and gtFine/), and set {key} in params.yaml or the environment variable "
        f"{env_var} to that folder"
    )
    if chosen is None:
        raise DataNotFoundError(
            f"Cityscapes root not configured ({key} is null and ${env_var} is unset). {how}"
        )
    path = Path(chosen)
    origin = key if root is not None else f"${env_var}"
    if not path.is_dir():
        raise DataNotFoundError(f"Cityscapes root {path} (from {origin}) not found. {how}")
    for sub in ("leftImg8bit", "gtFine"):
        if not (path / sub).is_dir():
            raise DataNotFoundError(
                f"Cityscapes root {path} (from {origin}) has no {sub}/ folder. {how}"
            )
    return path


def cityscapes_pairs(root: str | os.PathLike, split: str) -> list[tuple[Path, Path]]:
    """Sorted ``(image, labelIds)`` paths of ``split`` over all cities.

    Raises:
        DataNotFoundError: the split folders are missing or empty, or an image lacks its label
            (or a label its image).
    """
    root = Path(root)
    image_dir, label_dir = root / "leftImg8bit" / split, root / "gtFine" / split
    for folder in (image_dir, label_dir):
        if not folder.is_dir():
            raise DataNotFoundError(f"Cityscapes split folder {folder} not found (split {split!r})")
    pairs = []
    for image in sorted(image_dir.glob(f"*/*{IMAGE_SUFFIX}")):
        stem = image.name[: -len(IMAGE_SUFFIX)]
        label = label_dir / image.parent.name / f"{stem}{LABEL_SUFFIX}"
        if not label.is_file():
            raise DataNotFoundError(f"{image}: image without its label (expected {label})")
        pairs.append((image, label))
    for label in sorted(label_dir.glob(f"*/*{LABEL_SUFFIX}")):
        stem = label.name[: -len(LABEL_SUFFIX)]
        image = image_dir / label.parent.name / f"{stem}{IMAGE_SUFFIX}"
        if not image.is_file():
            raise DataNotFoundError(f"{label}: label without its image (expected {image})")
    if not pairs:
        raise DataNotFoundError(f"{image_dir}: no <city>/*{IMAGE_SUFFIX} images in split {split!r}")
    return pairs


def load_cityscapes_pair(root: str | os.PathLike, image_path: Path, label_path: Path) -> Sample:
    """Read one frame and map its labelIds to trainIds.

    Raises:
        DataError: unreadable PNG or image/label sizes differ (both files named).
        LabelValueError: values that are no labelId.
    """
    image, label_ids = read_rgb(image_path), read_label(label_path)
    if image.shape[:2] != label_ids.shape:
        raise DataError(
            f"{label_path}: label size {label_ids.shape[1]}x{label_ids.shape[0]} (WxH) differs "
            f"from its image {image_path} ({image.shape[1]}x{image.shape[0]})"
        )
    rel = [Path(p).relative_to(root).as_posix() for p in (image_path, label_path)]
    return Sample(
        id=image_path.name[: -len(IMAGE_SUFFIX)],
        image=image,
        label=map_label_ids(label_ids, label_path),
        sources={rel[0]: file_sha256(image_path), rel[1]: file_sha256(label_path)},
    )


def cityscapes_source(
    root: str | os.PathLike, splits: Sequence[str] = CITYSCAPES_SPLITS, limit: int | None = None
) -> Source:
    """Cityscapes under ``root`` as a :class:`Source`; ``limit`` keeps each split's first frames."""
    root = Path(root)
    table = {}
    for split in splits:
        pairs = cityscapes_pairs(root, split)
        table[split] = pairs if limit is None else pairs[:limit]

    def loader(image_path: Path, label_path: Path):
        return lambda: load_cityscapes_pair(root, image_path, label_path)

    return Source(
        dataset="cityscapes",
        class_names=CITYSCAPES_CLASSES,
        ignore_index=IGNORE_INDEX,
        splits={s: [loader(*pair) for pair in pairs] for s, pairs in table.items()},
        info={
            "root": str(root),
            "label_mapping": "labelIds -> trainIds from cityscapesscripts.helpers.labels; "
            "trainId 255 and -1 -> 255",
        },
    )
