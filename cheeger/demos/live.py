"""The live similarity demo: the similarity map of every frame of a stream, as frames come.

Each frame goes through :func:`cheeger.demos.similarity.similarity_map` at the live working
resolution (long side :data:`LIVE_LONG_SIDE`), the previous frame's eigenvectors warm-starting the
solver when the grid is the same. Headless (``out`` given) the frames are rendered side by side
(image with the query marked | similarity map) and written as an animated GIF or, for a video
suffix, a video (imageio-ffmpeg), atomically; with a display (``show=True``) a matplotlib window
shows them and a click moves the query. The frame rate reported counts everything per frame:
reading, features, graph, eigensolve, rendering (not the final encoding of the file).

Example:
    >>> import torch
    >>> frames = [torch.rand(3, 36, 48) for _ in range(3)]
    >>> stats = run_live(frames, query=(4, 24), echo=False)
    >>> stats.frames, len(stats.rendered), stats.rendered[0].shape
    (3, 3, (36, 96, 3))
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib import colormaps

from cheeger.data.io import default_mode
from cheeger.demos.errors import DemoError, SourceError
from cheeger.demos.features import pixel_features
from cheeger.demos.similarity import FeatureFn, similarity_map

__all__ = ["LIVE_LONG_SIDE", "VIDEO_SUFFIXES", "LiveStats", "render_frame", "run_live",
           "write_animation"]  # fmt: skip

# 45 x 60 on a 360 x 480 CamVid frame: 59 ms per frame end to end on one thread, 16.8 fps, on an
# idle machine (benchmarks/live.py, 2026-12-07; 36 x 48 gave 20.9 fps, 90 x 120 3.1 fps)
LIVE_LONG_SIDE = 60
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm")
_INFERNO = (colormaps["inferno"](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8)


@dataclass
class LiveStats:
    """What :func:`run_live` did.

    Attributes:
        frames: frames processed.
        seconds: wall time of the loop over frames (reading to rendering, not the file encode).
        embed_seconds: the part spent in features, graph and eigensolve.
        rendered: the rendered ``(H, 2W, 3)`` uint8 frames (kept only when writing a file or
            when nothing is shown, for tests).
    """

    frames: int = 0
    seconds: float = 0.0
    embed_seconds: float = 0.0
    rendered: list[np.ndarray] = field(default_factory=list)

    @property
    def fps(self) -> float:
        """Frames per second over the whole loop."""
        return self.frames / self.seconds if self.seconds > 0 else float("nan")


def render_frame(image: torch.Tensor, similarity: torch.Tensor, query: tuple[int, int]):
    """``(3, H, W)`` image and ``(h, w)`` similarity -> ``(H, 2W, 3)`` uint8: image | map.

    The query is marked by a red cross on the image and a cyan one on the map.
    """
    height, width = image.shape[1:]
    up = F.interpolate(similarity[None, None].float(), (height, width), mode="bilinear")[0, 0]
    index = ((up.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu().numpy()
    left = (image.permute(1, 2, 0).clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
    canvas = np.concatenate([left, _INFERNO[index]], axis=1)  # (H, 2W, 3)
    row, col = query
    arm = max(3, min(height, width) // 40)
    for offset, colour in ((0, (255, 0, 0)), (width, (0, 255, 255))):
        canvas[row, max(0, col - arm) + offset:min(width, col + arm + 1) + offset] = colour
        canvas[max(0, row - arm):min(height, row + arm + 1), col + offset] = colour
    return canvas


def write_animation(frames: list[np.ndarray], path: str | os.PathLike, fps: float = 10.0) -> Path:
    """Write rendered frames as an animated GIF (Pillow) or a video (imageio-ffmpeg), atomically.

    Raises:
        DemoError: no frames, or an unknown suffix.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if not frames:
        raise DemoError(f"{path}: no frames to write")
    if suffix not in (".gif", *VIDEO_SUFFIXES):
        raise DemoError(f"--out {path}: expected .gif or a video ({', '.join(VIDEO_SUFFIXES)})")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=suffix)
    os.close(fd)
    try:
        if suffix == ".gif":
            from PIL import Image

            images = [Image.fromarray(f) for f in frames]
            images[0].save(tmp, save_all=True, append_images=images[1:], loop=0,
                           duration=round(1000 / fps))  # fmt: skip
        else:
            import imageio.v2 as imageio

            # even sizes: most codecs need them; macro_block_size=1 keeps ours as they are
            even = [f[: f.shape[0] // 2 * 2, : f.shape[1] // 2 * 2] for f in frames]
            with imageio.get_writer(tmp, format="FFMPEG", fps=fps, macro_block_size=1) as writer:
                for frame in even:
                    writer.append_data(frame)
        os.chmod(tmp, default_mode(0o666))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def run_live(
    source: Iterable[torch.Tensor],
    query: tuple[int, int] | None = None,
    *,
    frames: int | None = None,
    out: str | os.PathLike | None = None,
    show: bool = False,
    long_side: int = LIVE_LONG_SIDE,
    k: int = 8,
    features: FeatureFn = pixel_features,
    warm: bool = True,
    echo: bool = True,
) -> LiveStats:
    """Similarity maps of a stream's frames; returns the counts and (headless) the frames.

    Args:
        source: iterable of ``(3, H, W)`` RGB frames in ``[0, 1]`` (see :mod:`.sources`).
        query: ``(row, col)`` in frame pixels; default the centre of the first frame.
        frames: stop after this many frames (default: the whole source).
        out: write the rendered frames there (``.gif`` or a video suffix).
        show: show a window (needs a display); a click moves the query.
        long_side, k, features: as in :func:`~cheeger.demos.similarity.similarity_map`.
        warm: warm-start each solve from the previous frame's eigenvectors.
        echo: print the summary line (frames per second) at the end.

    Raises:
        SourceError: the source yields no frame or an unreadable one.
        QueryError: the query is outside a frame.
    """
    stats, previous, window = LiveStats(), None, None
    keep = out is not None or not show
    start = time.perf_counter()
    for image in source:
        if frames is not None and stats.frames >= frames:
            break
        if query is None:
            query = (image.shape[1] // 2, image.shape[2] // 2)
        if window is not None:
            query = window.query
        tick = time.perf_counter()
        result = similarity_map(image, query, long_side=long_side, k=k, features=features,
                                warm_start=previous if warm else None)  # fmt: skip
        stats.embed_seconds += time.perf_counter() - tick
        previous = result.embedding.eigenvectors
        canvas = render_frame(image, result.similarity, query)
        if keep:
            stats.rendered.append(canvas)
        if show:
            window = window or _Window(query)
            window.update(canvas)
        stats.frames += 1
    stats.seconds = time.perf_counter() - start
    if stats.frames == 0:
        raise SourceError("the source yielded no frame")
    if out is not None:
        write_animation(stats.rendered, out)
    if echo:
        where = f" -> {out}" if out is not None else ""
        print(f"{stats.frames} frames in {stats.seconds:.2f} s: {stats.fps:.1f} frames per second "
              f"(embedding {stats.frames / stats.embed_seconds:.1f} fps){where}")  # fmt: skip
    return stats


class _Window:
    """A matplotlib window showing rendered frames; a click on either half moves the query."""

    def __init__(self, query: tuple[int, int]) -> None:
        import matplotlib.pyplot as plt

        self.plt, self.query, self.shown = plt, query, None
        self.fig, self.ax = plt.subplots(figsize=(10, 4))
        self.ax.set_axis_off()
        self.fig.canvas.mpl_connect("button_press_event", self._click)
        plt.ion()

    def _click(self, event) -> None:
        if event.inaxes is self.ax and event.xdata is not None and self.shown is not None:
            width = self.shown.get_array().shape[1] // 2
            self.query = (int(event.ydata), int(event.xdata) % width)

    def update(self, canvas: np.ndarray) -> None:
        if self.shown is None:
            self.shown = self.ax.imshow(canvas)
        else:
            self.shown.set_data(canvas)
        self.plt.pause(0.001)
