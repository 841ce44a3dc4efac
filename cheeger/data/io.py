"""Reading, hashing and resizing of image / label files, with errors that name the file.

Images are resized bilinearly; labels by nearest neighbour only, so a resized label never holds a
value that was not in the source (no interpolated class ids).

Example:
    >>> import numpy as np
    >>> label = np.array([[0, 1], [2, 255]], dtype=np.uint8)
    >>> resize_label(label, (4, 4)).tolist()[0]
    [0, 0, 1, 1]
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from cheeger.data.errors import DataError, DataNotFoundError

__all__ = [
    "atomic_write_bytes",
    "default_mode",
    "file_sha256",
    "read_label",
    "read_rgb",
    "resize_image",
    "resize_label",
    "write_label_png",
]

_CHUNK = 1 << 20


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _decode(path: Path, mode: str) -> np.ndarray:
    """Decode an image file fully (``load`` forces truncated data to surface here)."""
    if not path.is_file():
        raise DataNotFoundError(f"{path}: file not found")
    try:
        with Image.open(path) as img:
            img.load()
            if mode == "RGB" and img.mode not in ("RGB", "RGBA", "L", "P"):
                raise DataError(f"{path}: expected an RGB image, got PIL mode {img.mode!r}")
            if mode == "L" and img.mode not in ("L", "P"):
                raise DataError(
                    f"{path}: expected a single-channel 8-bit label image (PIL mode 'L' or 'P'), "
                    f"got mode {img.mode!r}"
                )
            # Palette labels keep their indices; only images are converted to RGB.
            out = img.convert("RGB") if mode == "RGB" and img.mode != "RGB" else img
            return np.array(out, dtype=np.uint8)
    except DataError:
        raise
    except (OSError, SyntaxError, ValueError) as exc:
        # PIL reports truncation / bad CRC / unknown format as OSError or SyntaxError.
        raise DataError(f"{path}: cannot decode image ({type(exc).__name__}: {exc})") from exc


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as RGB.

    Args:
        path: image file (any PIL format; PNG for the datasets here).

    Returns:
        ``(H, W, 3)`` uint8 array.

    Raises:
        DataNotFoundError: the file does not exist.
        DataError: the file is corrupt, truncated or not an image.
    """
    return _decode(Path(path), "RGB")


def read_label(path: str | os.PathLike) -> np.ndarray:
    """Read a single-channel 8-bit label image; palette images keep their indices (no RGB lookup).

    Returns:
        ``(H, W)`` uint8 array of raw label values.
    """
    return _decode(Path(path), "L")


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize an ``(H, W, 3)`` uint8 image to ``size = (H', W')`` bilinearly (PIL, antialiased)."""
    if image.shape[:2] == tuple(size):
        return image
    out = Image.fromarray(image).resize((size[1], size[0]), Image.Resampling.BILINEAR)
    return np.asarray(out, dtype=np.uint8)


def resize_label(label: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize an ``(H, W)`` label map to ``size = (H', W')``: nearest neighbour at pixel centres."""
    if label.shape == tuple(size):
        return label
    h, w = label.shape
    rows = np.minimum(((np.arange(size[0]) + 0.5) * h / size[0]).astype(np.int64), h - 1)
    cols = np.minimum(((np.arange(size[1]) + 0.5) * w / size[1]).astype(np.int64), w - 1)
    return label[rows[:, None], cols[None, :]]


def default_mode(mode: int) -> int:
    """``mode`` minus the process umask: what ``open``/``mkdir`` would give (``mkstemp`` and
    ``mkdtemp`` create private 0600 / 0700 entries instead)."""
    umask = os.umask(0)  # the only way to read it; restored at once (main-thread use only)
    os.umask(umask)
    return mode & ~umask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder and ``os.replace``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, default_mode(0o666))
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_label_png(path: str | os.PathLike, label: np.ndarray) -> None:
    """Write an ``(H, W)`` uint8 label map as a lossless 8-bit grayscale PNG."""
    Image.fromarray(np.ascontiguousarray(label, dtype=np.uint8)).save(path, format="PNG")
