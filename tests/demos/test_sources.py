"""Frame sources: folder, image, video (written by the live demo's writer and read back), and
clear errors for unreadable, missing or empty inputs and a missing webcam."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from cheeger.demos.errors import SourceError
from cheeger.demos.live import write_animation
from cheeger.demos.sources import (
    FolderSource,
    VideoSource,
    WebcamSource,
    open_source,
    read_image,
    to_tensor,
)


def _frames(count: int = 4, h: int = 24, w: int = 32) -> list[np.ndarray]:
    """Solid frames whose red level encodes their index (survives lossy video coding)."""
    out = []
    for i in range(count):
        frame = np.zeros((h, w, 3), np.uint8)
        frame[..., 0] = 40 + 45 * i
        frame[..., 2] = 128
        out.append(frame)
    return out


def test_folder_in_name_order_skipping_other_files(tmp_path):
    for i, frame in enumerate(_frames(3)):
        Image.fromarray(frame).save(tmp_path / f"f{2 - i}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    source = open_source(str(tmp_path))
    assert isinstance(source, FolderSource) and len(source) == 3
    frames = list(source)
    assert [round(float(f[0].mean()) * 255) for f in frames] == [130, 85, 40]
    assert all(f.shape == (3, 24, 32) and f.dtype == torch.float32 for f in frames)


def test_single_image_and_grey_and_rgba(tmp_path):
    Image.fromarray(np.full((6, 8), 255, np.uint8)).save(tmp_path / "grey.png")
    Image.fromarray(np.full((6, 8, 4), 51, np.uint8)).save(tmp_path / "rgba.png")
    (grey,) = open_source(str(tmp_path / "grey.png"))
    assert grey.shape == (3, 6, 8) and float(grey.min()) == 1.0
    assert float(read_image(tmp_path / "rgba.png").max()) == pytest.approx(0.2)


@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_video_round_trip(tmp_path, suffix):
    path = write_animation(_frames(5), tmp_path / f"clip{suffix}", fps=5)
    source = open_source(str(path))
    assert isinstance(source, VideoSource)
    frames = list(source)
    assert len(frames) == 5
    reds = [float(f[0].mean()) * 255 for f in frames]
    np.testing.assert_allclose(reds, [40, 85, 130, 175, 220], atol=12)


def test_unreadable_inputs_are_named(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(SourceError, match=r"broken\.png: unreadable image"):
        read_image(bad)
    clip = tmp_path / "broken.mp4"
    clip.write_bytes(b"not a video")
    with pytest.raises(SourceError, match=r"broken\.mp4: cannot open"):
        list(open_source(str(clip)))
    with pytest.raises(SourceError, match="source not found"):
        open_source(str(tmp_path / "missing.mp4"))
    with pytest.raises(SourceError, match="image not found"):
        read_image(tmp_path / "missing.png")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SourceError, match="no images"):
        open_source(str(empty))
    with pytest.raises(SourceError, match="RGB frame"):
        to_tensor(np.zeros((1, 5, 3), np.uint8), "x")


def test_missing_webcam_is_named():
    index = 63  # /dev/video63: not present on any machine this runs on
    with pytest.raises(SourceError, match=f"webcam {index}"):
        WebcamSource(index)
    with pytest.raises(SourceError, match=f"webcam {index}"):
        open_source(str(index))
