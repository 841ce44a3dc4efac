"""The similarity-map demo: click a pixel, see which pixels the spectral embedding calls alike.

An image is reduced to a working grid (long side :data:`SIMILARITY_LONG_SIDE` by default), each
working pixel gets a feature vector (the seven handcrafted ones of
:mod:`cheeger.demos.features`, or a trained run's decoder features, :mod:`cheeger.demos.run`),
the kNN graph's spectral embedding is computed (:mod:`cheeger.demos.embedding`) and every pixel
is coloured by the cosine similarity of its embedding row to the query pixel's. The figure shows
the image with the query marked, the similarity map and the first non-trivial eigenvectors;
:func:`show_interactive` opens it in a matplotlib window where a click moves the query (only the
cosine is recomputed: the embedding does not depend on the query).

Example:
    >>> import torch
    >>> image = torch.zeros(3, 40, 60); image[2, :20] = 1.0   # blue top, black bottom
    >>> result = similarity_map(image, (5, 30), long_side=30)
    >>> result.similarity.shape, result.query
    (torch.Size([20, 30]), (2, 15))
    >>> bool(result.similarity[:10].mean() > result.similarity[10:].mean())
    True
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from cheeger.data.io import atomic_write_bytes
from cheeger.demos.embedding import Embedding, cosine_similarity_map, spectral_embedding
from cheeger.demos.errors import QueryError
from cheeger.demos.features import pixel_features

__all__ = [
    "SIMILARITY_LONG_SIDE",
    "ClickQuery",
    "SimilarityResult",
    "grid_query",
    "parse_query",
    "save_figure",
    "show_interactive",
    "similarity_figure",
    "similarity_map",
    "working_size",
]

# 90 x 120 on a 360 x 480 CamVid frame: 1.35 s on one thread, reading to similarity, on a busy
# shared machine (README "Demos"), within the 5 s goal and twice as fine as the live 45 x 60
SIMILARITY_LONG_SIDE = 120
SHOWN_EIGENVECTORS = 4

FeatureFn = Callable[[torch.Tensor, tuple[int, int]], torch.Tensor]


@dataclass(frozen=True)
class SimilarityResult:
    """A similarity map and what it came from.

    Attributes:
        similarity: ``(h, w)`` cosine similarities to the query, in ``[-1, 1]``.
        embedding: the :class:`~cheeger.demos.embedding.Embedding` of the working grid.
        query: ``(row, col)`` of the query on the working grid.
    """

    similarity: torch.Tensor
    embedding: Embedding
    query: tuple[int, int]


def working_size(height: int, width: int, long_side: int) -> tuple[int, int]:
    """The grid with the image's aspect ratio whose long side is ``long_side`` (never upscaled).

    Example:
        >>> working_size(360, 480, 120)
        (90, 120)
    """
    scale = min(1.0, long_side / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def parse_query(text: str) -> tuple[int, int]:
    """``"ROW,COL"`` -> ``(row, col)``.

    Raises:
        QueryError: not two integers separated by a comma.
    """
    try:
        row, col = (int(part) for part in text.split(","))
    except ValueError:
        raise QueryError(f"--query: expected ROW,COL (two integers), got {text!r}") from None
    return row, col


def grid_query(query: tuple[int, int], image_size: tuple[int, int], size: tuple[int, int]):
    """An image pixel ``(row, col)`` -> the working-grid pixel that holds it.

    Raises:
        QueryError: the query is outside the image.
    """
    (row, col), (height, width), (h, w) = query, image_size, size
    if not (0 <= row < height and 0 <= col < width):
        raise QueryError(f"query ({row}, {col}) is outside the {height}x{width} image "
                         f"(rows 0..{height - 1}, columns 0..{width - 1})")  # fmt: skip
    return row * h // height, col * w // width


def similarity_map(
    image: torch.Tensor,
    query: tuple[int, int],
    *,
    long_side: int = SIMILARITY_LONG_SIDE,
    k: int = 8,
    neighbours: int = 10,
    features: FeatureFn = pixel_features,
    warm_start: torch.Tensor | None = None,
) -> SimilarityResult:
    """The similarity map of ``image`` to the pixel ``query``.

    Args:
        image: ``(3, H, W)`` RGB in ``[0, 1]``.
        query: ``(row, col)`` in image pixels.
        long_side: long side of the working grid.
        k: eigenpairs of the embedding.
        neighbours: kNN ``k`` of the graph.
        features: ``(image, (h, w)) -> (C, h, w)`` feature function.
        warm_start: the solver's starting block (see :func:`spectral_embedding`).

    Raises:
        QueryError: the query is outside the image.
    """
    size = working_size(image.shape[1], image.shape[2], long_side)
    cell = grid_query(query, (image.shape[1], image.shape[2]), size)
    embedding = spectral_embedding(features(image, size), k, neighbours, warm_start=warm_start)
    return SimilarityResult(cosine_similarity_map(embedding.embedding, size, cell), embedding, cell)


def _upsample(grid: torch.Tensor, shape: tuple[int, int]) -> np.ndarray:
    """``(h, w)`` -> ``(H, W)`` numpy, bilinear, for display over the image."""
    up = F.interpolate(grid[None, None].float(), shape, mode="bilinear", align_corners=False)
    return up[0, 0].cpu().numpy()


def similarity_figure(
    image: torch.Tensor, result: SimilarityResult, query: tuple[int, int], title: str = ""
) -> Figure:
    """Image with the query marked, the similarity map and the first non-trivial eigenvectors."""
    picture = image.permute(1, 2, 0).cpu().numpy()  # (H, W, 3)
    shape = picture.shape[:2]
    h, w = result.embedding.size
    vectors = result.embedding.eigenvectors
    shown = min(SHOWN_EIGENVECTORS, vectors.shape[1] - 1)
    fig = Figure(figsize=(3.2 * 3, 2.6 * (1 + (shown > 0))), dpi=80, layout="constrained")
    grid = fig.add_gridspec(1 + (shown > 0), max(3, shown))
    ax = fig.add_subplot(grid[0, 0])
    ax.imshow(picture)
    ax.plot(query[1], query[0], marker="+", color="red", markersize=16, markeredgewidth=2.5)
    ax.set_title("image and query")
    ax = fig.add_subplot(grid[0, 1])
    im = ax.imshow(_upsample(result.similarity, shape), cmap="inferno", vmin=-1, vmax=1)
    ax.plot(query[1], query[0], marker="+", color="cyan", markersize=16, markeredgewidth=2.5)
    ax.set_title("cosine similarity to the query")
    fig.colorbar(im, ax=ax, shrink=0.8)
    ax = fig.add_subplot(grid[0, 2])
    # brightness follows similarity: dissimilar pixels fade to a quarter of their colour
    weight = 0.25 + 0.75 * _upsample(result.similarity, shape)[..., None].clip(0, 1)
    ax.imshow((picture * weight).clip(0, 1))
    ax.set_title("image lit by similarity")
    lam = result.embedding.eigenvalues
    for j in range(shown):  # eigenvector 0 is the trivial one (D^1/2 1): not worth a panel
        ax = fig.add_subplot(grid[1, j])
        vector = vectors[:, j + 1].reshape(h, w).cpu().numpy()
        bound = float(np.abs(vector).max()) or 1.0
        ax.imshow(vector, cmap="RdBu_r", vmin=-bound, vmax=bound)
        ax.set_title(f"u{j + 1}  λ={float(lam[j + 1]):.2e}", fontsize=9)
    for ax in fig.axes:
        if ax.images and ax.get_label() != "<colorbar>":
            ax.set_xticks([])
            ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def save_figure(fig: Figure, path: str | os.PathLike) -> Path:
    """Write ``fig`` as PNG atomically (temp file and rename)."""
    import io

    path = Path(path)
    buffer = io.BytesIO()
    FigureCanvasAgg(fig)
    fig.savefig(buffer, format="png")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buffer.getvalue())
    return path


class ClickQuery:
    """The two-panel window's content: image and similarity map; :meth:`click` moves the query.

    Only the cosine similarity is recomputed on a click (the embedding does not depend on the
    query). Built on a given :class:`~matplotlib.figure.Figure`, so tests drive it without a
    display; :func:`show_interactive` connects it to a pyplot window.

    Attributes:
        query: ``(row, col)`` in image pixels, the last one clicked.
    """

    def __init__(self, fig: Figure, image: torch.Tensor, result: SimilarityResult,
                 query: tuple[int, int]) -> None:  # fmt: skip
        self.fig, self.result, self.query = fig, result, query
        picture = image.permute(1, 2, 0).cpu().numpy()
        self.shape = picture.shape[:2]
        self.left, self.right = fig.subplots(1, 2)
        self.left.imshow(picture)
        self.marks = [ax.plot(query[1], query[0], "+", color=c, ms=16, mew=2.5)[0]
                      for ax, c in ((self.left, "red"), (self.right, "cyan"))]  # fmt: skip
        self.shown = self.right.imshow(_upsample(result.similarity, self.shape), cmap="inferno",
                                       vmin=-1, vmax=1)  # fmt: skip
        fig.suptitle("click a pixel to move the query")

    def click(self, event) -> None:
        """A mouse press: a press on either panel moves the query there."""
        if event.inaxes not in (self.left, self.right) or event.xdata is None:
            return
        row = min(max(int(event.ydata), 0), self.shape[0] - 1)
        col = min(max(int(event.xdata), 0), self.shape[1] - 1)
        size = self.result.embedding.size
        cell = grid_query((row, col), self.shape, size)
        sim = cosine_similarity_map(self.result.embedding.embedding, size, cell)
        self.shown.set_data(_upsample(sim, self.shape))
        for mark in self.marks:
            mark.set_data([col], [row])
        self.query = (row, col)
        self.fig.canvas.draw_idle()


def show_interactive(image: torch.Tensor, result: SimilarityResult, query: tuple[int, int]):
    """A matplotlib window (:class:`ClickQuery`): a click on either panel moves the query.

    Needs a display and an interactive matplotlib backend.
    """
    import matplotlib.pyplot as plt

    window = ClickQuery(plt.figure(figsize=(11, 4.5)), image, result, query)
    window.fig.canvas.mpl_connect("button_press_event", window.click)
    plt.show()
