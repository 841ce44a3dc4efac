"""The prepared-dataset format shared by every dataset, and its atomic writer.

Layout under the output folder (``results/prepared/<profile>/`` in the pipeline)::

    manifest.json              written last: its presence marks a finished preparation
    <split>/images.npy         (N, H, W, 3) uint8, resized bilinearly to ``resolution``
    <split>/labels.npy         (N, H, W) uint8, resized by nearest neighbour (never interpolated)
    <split>/native/00000.png   labels at the source's native size, one 8-bit PNG per image

Label values are class ids ``0 .. num_classes - 1`` or ``ignore_index`` (255 for every dataset
here). ``.npy`` arrays load instantly with ``mmap_mode="r"``; native labels are PNGs because their
sizes may differ per image and they are read once per evaluation.

The whole tree is built in a temporary sibling folder (``.<name>.tmp-*``) and renamed onto the
target only once the manifest is in it, so an interrupted run leaves either the previous finished
preparation or nothing at the target; leftover ``.tmp-*`` folders have no manifest, are never read
and may be deleted.

Example:
    >>> import numpy as np, tempfile, pathlib
    >>> sample = Sample("a", np.zeros((4, 6, 3), np.uint8), np.ones((4, 6), np.uint8), {})
    >>> source = Source("toy", ("bg", "fg"), 255, {"train": [lambda: sample]}, {})
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "toy"
    >>> write_prepared(source, out, (2, 3))["splits"]["train"]["size"]
    1
    >>> load_manifest(out)["num_classes"]
    2
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cheeger.data.errors import DataError, LabelValueError, PreparedFormatError
from cheeger.data.io import (
    atomic_write_bytes,
    default_mode,
    resize_image,
    resize_label,
    write_label_png,
)

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "Sample",
    "Source",
    "load_manifest",
    "native_label_path",
    "split_array_path",
    "write_prepared",
]

FORMAT_NAME = "cheeger-prepared"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True)
class Sample:
    """One decoded image/label pair with labels already mapped to class ids.

    Attributes:
        id: unique name within its split (e.g. ``0001TP_006690``).
        image: ``(H, W, 3)`` uint8 RGB.
        label: ``(H, W)`` uint8, class ids or the ignore index.
        sources: source file path (relative to the dataset root) -> sha256.
    """

    id: str
    image: np.ndarray
    label: np.ndarray
    sources: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Source:
    """A dataset ready to be written: class set plus lazily loaded samples per split.

    Attributes:
        dataset: ``synthetic``, ``camvid`` or ``cityscapes``.
        class_names: names of class ids ``0 .. C-1``.
        ignore_index: the label value excluded from training and metrics.
        splits: split name -> loaders, each returning one :class:`Sample` when called.
        info: dataset-specific manifest entries (root, URL, label mapping, generator settings).
    """

    dataset: str
    class_names: tuple[str, ...]
    ignore_index: int
    splits: Mapping[str, Sequence[Callable[[], Sample]]]
    info: Mapping[str, Any]


def split_array_path(root: str | os.PathLike, split: str, kind: str) -> Path:
    """Path of ``images.npy`` or ``labels.npy`` (``kind`` = "images" / "labels") of a split."""
    return Path(root) / split / f"{kind}.npy"


def native_label_path(root: str | os.PathLike, split: str, index: int) -> Path:
    """Path of the native-resolution label PNG of image ``index`` of ``split``."""
    return Path(root) / split / "native" / f"{index:05d}.png"


def _check_sample(sample: Sample, classes: int, ignore: int) -> None:
    img, lab = sample.image, sample.label
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise DataError(f"{sample.id}: image must be (H, W, 3) uint8, got {img.shape} {img.dtype}")
    if lab.dtype != np.uint8 or lab.shape != img.shape[:2]:
        raise DataError(
            f"{sample.id}: label must be uint8 of the image size {img.shape[:2]}, "
            f"got {lab.shape} {lab.dtype}"
        )
    present = np.flatnonzero(np.bincount(lab.ravel(), minlength=256))
    bad = [int(v) for v in present if v >= classes and v != ignore]
    if bad:
        raise LabelValueError(
            f"{sample.id}: label values {bad} outside the class set 0..{classes - 1} "
            f"(ignore {ignore})"
        )


def _write_split(
    name: str, loaders: Sequence[Callable[[], Sample]], tmp: Path, source: Source,
    resolution: tuple[int, int],
) -> tuple[dict[str, Any], dict[str, str], np.ndarray]:  # fmt: skip
    """Write one split; return its manifest entry, source hashes and (3, 2) RGB sum / sum of sq."""
    n, (h, w) = len(loaders), resolution
    classes = len(source.class_names)
    (tmp / name / "native").mkdir(parents=True)
    fmt = np.lib.format
    images = fmt.open_memmap(split_array_path(tmp, name, "images"), "w+", np.uint8, (n, h, w, 3))
    labels = fmt.open_memmap(split_array_path(tmp, name, "labels"), "w+", np.uint8, (n, h, w))
    ids: list[str] = []
    native_sizes: list[list[int]] = []
    hashes: dict[str, str] = {}
    counts = np.zeros(256, dtype=np.int64)
    moments = np.zeros((3, 2), dtype=np.float64)
    for i, load in enumerate(loaders):
        sample = load()
        _check_sample(sample, classes, source.ignore_index)
        if sample.id in ids:
            raise DataError(f"split {name!r}: duplicate image id {sample.id!r}")
        images[i] = resize_image(sample.image, resolution)
        labels[i] = resize_label(sample.label, resolution)
        write_label_png(native_label_path(tmp, name, i), sample.label)
        ids.append(sample.id)
        native_sizes.append([int(s) for s in sample.label.shape])
        hashes.update(sample.sources)
        counts += np.bincount(labels[i].ravel(), minlength=256)
        pixels = images[i].reshape(-1, 3).astype(np.float64) / 255.0
        moments += np.stack([pixels.sum(0), (pixels**2).sum(0)], axis=1)
    images.flush()
    labels.flush()
    del images, labels  # close the memory maps before the folder is renamed
    entry = {
        "size": n,
        "ids": ids,
        "native_sizes": native_sizes,
        "class_pixels": [int(c) for c in counts[:classes]],
        "ignore_pixels": int(counts[source.ignore_index]),
    }
    return entry, hashes, moments


def _to_json(value: Any, indent: str = "") -> str:
    """JSON with one key per line but short lists (of scalars or pairs) kept on one line."""
    inner = indent + " "
    if isinstance(value, dict) and value:
        items = [f"{inner}{json.dumps(k)}: {_to_json(v, inner)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{indent}}}"
    if isinstance(value, list) and any(isinstance(v, dict) for v in value):
        return "[\n" + ",\n".join(inner + _to_json(v, inner) for v in value) + f"\n{indent}]"
    return json.dumps(value)


def _swap_into_place(tmp: Path, out: Path) -> None:
    """Rename the finished ``tmp`` onto ``out``, replacing an earlier preparation."""
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: exists and is not a folder; refusing to replace it")
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
        os.replace(out, old / "prepared")
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_prepared(
    source: Source,
    out: str | os.PathLike,
    resolution: tuple[int, int],
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``source`` in the prepared format to ``out``, atomically.

    Args:
        source: the dataset (see :class:`Source`).
        out: target folder; an earlier preparation there is replaced only on success.
        resolution: ``(H, W)`` the stored images and labels are resized to.
        extra: further manifest entries (e.g. profile name, limit).

    Returns:
        The manifest written to ``out/manifest.json``.

    Raises:
        DataError: a sample is malformed (messages name the sample and file); nothing is written.
    """
    out = Path(out)
    h, w = (int(v) for v in resolution)
    if h <= 0 or w <= 0:
        raise ValueError(f"resolution must be positive (H, W), got {resolution}")
    if not source.splits:
        raise DataError(f"{source.dataset}: no splits to prepare")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    try:
        os.chmod(tmp, default_mode(0o777))
        splits, hashes, moments = {}, {}, {}
        for name, loaders in source.splits.items():
            splits[name], split_hashes, moments[name] = _write_split(
                name, loaders, tmp, source, (h, w)
            )
            hashes.update(split_hashes)
        stats_split = "train" if "train" in moments else next(iter(moments))
        total = max(1, splits[stats_split]["size"] * h * w)
        mean = moments[stats_split][:, 0] / total
        std = np.sqrt(np.maximum(moments[stats_split][:, 1] / total - mean**2, 1e-12))
        manifest = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "dataset": source.dataset,
            **dict(extra or {}),
            "class_names": list(source.class_names),
            "num_classes": len(source.class_names),
            "ignore_index": int(source.ignore_index),
            "resolution": [h, w],
            "normalization": {"split": stats_split, "mean": mean.tolist(), "std": std.tolist()},
            "splits": splits,
            "source": dict(source.info),
            "source_sha256": dict(sorted(hashes.items())),
        }
        text = _to_json(manifest) + "\n"
        atomic_write_bytes(tmp / MANIFEST_NAME, text.encode())  # the completion marker, last
        _swap_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def load_manifest(root: str | os.PathLike) -> dict[str, Any]:
    """Read and check the manifest of a finished preparation.

    Raises:
        PreparedFormatError: no manifest (not prepared, or interrupted), another format or version,
            or split arrays missing / of the wrong shape.
    """
    root = Path(root)
    path = root / MANIFEST_NAME
    if not path.is_file():
        raise PreparedFormatError(
            f"{path}: not found; {root} is not a finished preparation "
            "(run `cheeger prepare --out` on it; an interrupted run never leaves a manifest)"
        )
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise PreparedFormatError(f"{path}: unreadable manifest ({exc})") from exc
    found = (manifest.get("format"), manifest.get("format_version"))
    if found != (FORMAT_NAME, FORMAT_VERSION):
        raise PreparedFormatError(
            f"{path}: expected format {FORMAT_NAME!r} version {FORMAT_VERSION}, got {found}; "
            "prepare it again"
        )
    h, w = manifest["resolution"]
    for split, entry in manifest["splits"].items():
        n = entry["size"]
        for kind, shape in (("images", (n, h, w, 3)), ("labels", (n, h, w))):
            array_path = split_array_path(root, split, kind)
            try:
                found_shape = np.load(array_path, mmap_mode="r").shape
            except (OSError, ValueError) as exc:
                raise PreparedFormatError(f"{array_path}: unreadable ({exc})") from exc
            if found_shape != shape:
                raise PreparedFormatError(
                    f"{array_path}: expected shape {shape} from the manifest, got {found_shape}"
                )
    return manifest
