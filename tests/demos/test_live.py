"""The live demo on a fake source: frame limit, rendered frames, the GIF and video it writes,
the frame-rate line, warm starts, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from cheeger.demos.errors import DemoError, QueryError, SourceError
from cheeger.demos.live import render_frame, run_live, write_animation
from cheeger.demos.sources import open_source, read_image


def _scene(shift: int, h: int = 36, w: int = 48) -> torch.Tensor:
    """Blue sky over grey road; the horizon moves down by ``shift`` rows."""
    image = torch.full((3, h, w), 0.4)
    image[:, : h // 3 + shift] = torch.tensor([0.3, 0.5, 0.9])[:, None, None]
    return image


class FakeSource:
    """A stream that counts how many frames were pulled (stands in for a webcam)."""

    def __init__(self, count: int) -> None:
        self.count, self.pulled = count, 0

    def __iter__(self):
        for i in range(self.count):
            self.pulled += 1
            yield _scene(i % 4)


def test_frames_limit_rendering_and_rate_line(capsys):
    source = FakeSource(10)
    stats = run_live(source, query=(2, 24), frames=4, long_side=24, k=4)
    assert stats.frames == 4 and source.pulled == 5  # the fifth is pulled, seen over the limit
    assert len(stats.rendered) == 4 and stats.rendered[0].shape == (36, 96, 3)
    assert stats.seconds > 0 and stats.fps == pytest.approx(4 / stats.seconds)
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("4 frames in ") and "frames per second" in last


def test_rendered_map_is_bright_on_the_query_region():
    stats = run_live([_scene(0)], query=(2, 24), long_side=24, k=4, echo=False)
    canvas = stats.rendered[0].astype(float)  # (36, 96, 3): image | inferno map
    sky, road = canvas[3:10, 52:92].mean(), canvas[20:34, 52:92].mean()
    assert sky > road + 60
    assert tuple(canvas[2, 24]) == (255, 0, 0) and tuple(canvas[2, 48 + 24]) == (0, 255, 255)


def test_gif_and_video_outputs(tmp_path):
    gif = tmp_path / "out" / "live.gif"
    run_live(FakeSource(3), query=(2, 24), out=gif, long_side=24, k=4, echo=False)
    with Image.open(gif) as image:
        assert image.n_frames == 3 and image.size == (96, 36)
    video = tmp_path / "live.mp4"
    run_live(FakeSource(3), query=(2, 24), out=video, long_side=24, k=4, echo=False)
    assert len(list(open_source(str(video)))) == 3
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["live.gif", "live.mp4"]


def test_warm_start_changes_nothing_visible(camvid_folder):
    # real consecutive frames: flat synthetic scenes split into many components, and the cut at
    # k eigenpairs inside a null space makes any basis (warm or cold) a different map
    frames = list(open_source(str(camvid_folder)).paths[:3])
    frames = [read_image(path) for path in frames]
    warm = run_live(frames, query=(40, 240), long_side=40, k=6, echo=False)
    cold = run_live(frames, query=(40, 240), long_side=40, k=6, warm=False, echo=False)
    for a, b in zip(warm.rendered, cold.rendered, strict=True):
        assert np.abs(a.astype(int) - b.astype(int)).mean() < 1.0


def test_default_query_is_the_centre():
    stats = run_live([_scene(0)], long_side=24, k=4, echo=False)
    assert tuple(stats.rendered[0][18, 24]) == (255, 0, 0)


def test_errors_are_named(tmp_path):
    with pytest.raises(SourceError, match="no frame"):
        run_live([], echo=False)
    with pytest.raises(QueryError, match="outside the 36x48 image"):
        run_live([_scene(0)], query=(36, 0), echo=False)
    with pytest.raises(DemoError, match=r"expected \.gif or a video"):
        write_animation([render_frame(_scene(0), torch.zeros(6, 8), (0, 0))], tmp_path / "a.txt")


def test_window_mode_shows_frames_and_a_click_moves_the_query():
    import matplotlib

    from cheeger.demos.live import _Window

    if matplotlib.get_backend().lower() != "agg":
        pytest.skip("needs the non-interactive Agg backend (no display in tests)")
    stats = run_live([_scene(0), _scene(1)], query=(2, 24), show=True, long_side=24, k=4,
                     echo=False)  # fmt: skip
    assert stats.frames == 2 and stats.rendered == []  # shown, not kept
    window = _Window((2, 24))
    window.update(stats_frame := render_frame(_scene(0), torch.zeros(6, 8), (2, 24)))
    assert window.shown.get_array().shape == stats_frame.shape
    from types import SimpleNamespace

    window._click(SimpleNamespace(inaxes=window.ax, xdata=48 + 10.6, ydata=30.2))  # right half
    assert window.query == (30, 10)
