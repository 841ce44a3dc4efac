"""Shared fixtures of the demo tests: one thread, a real CamVid frame and its labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

FRAME = "0001TP_008550.png"  # a test-split frame with sky at the top and road below
SKY, ROAD = 0, 3  # raw CamVid label values


@pytest.fixture(autouse=True, scope="package")
def one_thread():
    """The demos are measured on one core; on a shared machine more threads only wait."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def camvid_frame(shared_data) -> tuple[Path, np.ndarray]:
    """Path of a real CamVid frame and its ``(360, 480)`` raw labels."""
    root = shared_data / "camvid"
    return root / "test" / FRAME, np.array(Image.open(root / "testannot" / FRAME))


@pytest.fixture(scope="session")
def camvid_folder(shared_data) -> Path:
    """The CamVid test images (233 real frames of one drive)."""
    return shared_data / "camvid" / "test"
