"""Frame sources of the demos: one image, a folder of images, a video file or a webcam.

A source is any iterable of ``(3, H, W)`` float RGB tensors in ``[0, 1]``; :func:`open_source`
picks one from a command-line string (an integer is a webcam index, a folder is read in name
order, anything else is a video file). Only :class:`WebcamSource` touches a device; the rest of
the live demo takes any iterable, so tests hand it a list of frames.

Video and webcam frames are read with imageio's ffmpeg plugin (the ``demo`` extra:
``imageio``, ``imageio-ffmpeg``); images with Pillow.

Example:
    >>> import tempfile, pathlib
    >>> from PIL import Image
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> Image.new("RGB", (8, 6), (255, 0, 0)).save(folder / "a.png")
    >>> frames = list(open_source(str(folder)))
    >>> frames[0].shape, frames[0][0].max().item()
    (torch.Size([3, 6, 8]), 1.0)
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from cheeger.demos.errors import SourceError

__all__ = [
    "IMAGE_SUFFIXES",
    "FolderSource",
    "VideoSource",
    "WebcamSource",
    "open_source",
    "read_image",
    "to_tensor",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def to_tensor(array: np.ndarray, where: str) -> torch.Tensor:
    """``(H, W, 3)`` uint8 (or ``(H, W)`` grey, or RGBA) -> ``(3, H, W)`` float in ``[0, 1]``."""
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4) or min(array.shape[:2]) < 2:
        raise SourceError(f"{where}: expected an RGB frame of at least 2x2 pixels, got an array "
                          f"of shape {array.shape}")  # fmt: skip
    array = np.ascontiguousarray(array[..., :3])
    scale = 65535.0 if array.dtype == np.uint16 else 255.0
    return torch.from_numpy(array.astype(np.float32) / scale).permute(2, 0, 1).contiguous()


def read_image(path: str | os.PathLike) -> torch.Tensor:
    """One image file as ``(3, H, W)`` float RGB in ``[0, 1]``.

    Raises:
        SourceError: the file is missing or not an image Pillow can decode.
    """
    path = Path(path)
    if not path.is_file():
        raise SourceError(f"{path}: image not found")
    try:
        with Image.open(path) as image:
            array = np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise SourceError(f"{path}: unreadable image ({exc})") from exc
    return to_tensor(array, str(path))


class FolderSource:
    """The images of a folder, in name order (files with other suffixes are skipped).

    Raises:
        SourceError: (on construction) the folder holds no image; (when iterated) one is
            unreadable.
    """

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self.paths = sorted(p for p in self.folder.iterdir()
                            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)  # fmt: skip
        if not self.paths:
            raise SourceError(f"{self.folder}: no images ({', '.join(IMAGE_SUFFIXES)}) in folder")

    def __len__(self) -> int:
        return len(self.paths)

    def __iter__(self) -> Iterator[torch.Tensor]:
        for path in self.paths:
            yield read_image(path)


def _ffmpeg_reader(uri: str, where: str):
    try:
        import imageio.v2 as imageio
    except ImportError as exc:
        raise SourceError(f"{where}: reading video needs imageio and imageio-ffmpeg "
                          "(pip install 'cheeger[demo]')") from exc  # fmt: skip
    try:
        return imageio.get_reader(uri, format="FFMPEG")
    except (OSError, RuntimeError, ValueError, IndexError) as exc:
        raise SourceError(f"{where}: cannot open ({str(exc).strip().splitlines()[-1]})") from exc


class VideoSource:
    """The frames of a video file (any format ffmpeg reads).

    Raises:
        SourceError: the file is missing or not a video ffmpeg can decode.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise SourceError(f"{self.path}: video not found")
        self._reader = _ffmpeg_reader(str(self.path), f"{self.path}")

    def __iter__(self) -> Iterator[torch.Tensor]:
        try:
            for array in self._reader:
                yield to_tensor(np.asarray(array), str(self.path))
        except (OSError, RuntimeError) as exc:
            raise SourceError(f"{self.path}: unreadable video frame ({exc})") from exc
        finally:
            self._reader.close()


class WebcamSource:
    """Frames of webcam ``index`` (``/dev/video<index>`` through ffmpeg), until interrupted.

    Raises:
        SourceError: no such camera, or it cannot be opened.
    """

    def __init__(self, index: int) -> None:
        self.index = index
        device = Path(f"/dev/video{index}")
        if os.name == "posix" and not device.exists():
            raise SourceError(f"webcam {index}: {device} not found (no camera attached?)")
        self._reader = _ffmpeg_reader(f"<video{index}>", f"webcam {index}")

    def __iter__(self) -> Iterator[torch.Tensor]:
        try:
            for array in self._reader:
                yield to_tensor(np.asarray(array), f"webcam {self.index}")
        finally:
            self._reader.close()


def open_source(spec: str):
    """The source named by ``spec``: a webcam index, a folder, an image or a video file.

    Raises:
        SourceError: nothing usable at ``spec``.
    """
    if spec.isdigit():
        return WebcamSource(int(spec))
    path = Path(spec)
    if path.is_dir():
        return FolderSource(path)
    if not path.exists():
        raise SourceError(f"{path}: source not found (expected a webcam index, a folder of "
                          "images, an image or a video file)")  # fmt: skip
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return [read_image(path)]
    return VideoSource(path)
