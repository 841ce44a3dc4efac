"""Fixtures for the data tests: small dataset trees written to tmp_path, a loopback HTTP server."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CITYSCAPES_IDS = np.arange(34, dtype=np.uint8)  # every labelId a gtFine PNG may hold


def _write_png(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(array)).save(path, format="PNG")
    return path


@pytest.fixture
def write_png() -> Callable[[Path, np.ndarray], Path]:
    """Write an (H, W) uint8 label or (H, W, 3) uint8 image as PNG, creating folders."""
    return _write_png


@pytest.fixture
def camvid_copy(tmp_path: Path, shared_data: Path) -> Callable[..., Path]:
    """Copy the first ``n`` frames of some CamVid splits (SegNet layout) into tmp_path."""

    def copy(splits=("val",), n: int = 2, name: str = "camvid") -> Path:
        root = tmp_path / name
        for split in splits:
            names = sorted(p.name for p in (shared_data / "camvid" / split).glob("*.png"))[:n]
            for folder in (split, f"{split}annot"):
                (root / folder).mkdir(parents=True, exist_ok=True)
                for file in names:
                    shutil.copyfile(shared_data / "camvid" / folder / file, root / folder / file)
        return root

    return copy


@pytest.fixture
def cityscapes_tree(tmp_path: Path) -> Callable[..., Path]:
    """Write a synthetic Cityscapes tree: ``{split: {city: n_frames}}`` of random labelIds."""

    def make(layout: dict[str, dict[str, int]], size=(16, 24), seed: int = 0) -> Path:
        rng = np.random.default_rng(seed)
        root = tmp_path / "cityscapes"
        for split, cities in layout.items():
            for city, n in cities.items():
                for i in range(n):
                    stem = f"{city}_{i:06d}_{19 + i:06d}"
                    image = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
                    ids = rng.choice(CITYSCAPES_IDS, size=size)
                    left = root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png"
                    _write_png(left, image)
                    _write_png(root / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png", ids)
        return root

    return make


class _RecordingHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # record the path instead of printing to stderr
        self.server.paths.append(self.path)


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[str, Path, list[str]]]:
    """Serve a fresh folder over HTTP on 127.0.0.1; yield (base URL, folder, requested paths)."""
    folder = tmp_path / "www"
    folder.mkdir()
    handler = functools.partial(_RecordingHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.paths = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", folder, server.paths
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
