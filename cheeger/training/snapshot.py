"""Per-epoch snapshot image: one validation image, its ground truth and prediction, and the head's
spectral internals when it reports them (the first eigenvectors on the graph grid and the learned
response ``h(lambda)`` against the noise edge).

Drawn with matplotlib's object API on an Agg canvas (no pyplot, no global backend switch) and
written atomically, so the file a viewer or DVC picks up mid-training is always complete.

Example:
    >>> import torch, tempfile, pathlib
    >>> label = torch.zeros(8, 10, dtype=torch.long); label[:, 5:] = 1
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "s.png"
    >>> save_snapshot(path, torch.rand(3, 8, 10), label, label, ("a", "b"), 255)
    >>> path.stat().st_size > 0
    True
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from cheeger.data.io import default_mode

__all__ = ["MAX_EIGENVECTORS", "label_colours", "save_snapshot", "snapshot_figure"]

MAX_EIGENVECTORS = 4


def label_colours(label: torch.Tensor, num_classes: int, ignore_index: int | None) -> np.ndarray:
    """``(H, W)`` class ids -> ``(H, W, 3)`` float RGB (tab20 palette; ignore and others black)."""
    palette = np.zeros((256, 3))
    palette[:num_classes] = colormaps["tab20"](np.arange(num_classes) % 20)[:, :3]
    values = label.detach().cpu().numpy().astype(np.int64)
    void = (values < 0) | (values >= num_classes) | (values == ignore_index)
    values = np.where(void, 255, values)
    return palette[values]


def _eigen_panels(fig: Figure, grid, internals: Mapping[str, torch.Tensor]) -> None:
    """Eigenvectors in the first columns of ``grid`` (one row), ``h(lambda)`` in the rest."""
    vectors, size = internals.get("eigenvectors"), internals.get("graph_size")
    shown = 0
    if vectors is not None and size is not None:
        h, w = (int(s) for s in size.reshape(-1)[:2])
        vectors = vectors[0].detach().float().cpu()  # (n, k) of the first image
        values = internals.get("eigenvalues")
        if values is not None:
            values = values.detach().float().cpu().reshape(-1, values.shape[-1])[0]  # (k,)
        shown = min(MAX_EIGENVECTORS, vectors.shape[1])
        for j in range(shown):
            ax = fig.add_subplot(grid[0, j])
            ax.imshow(vectors[:, j].reshape(h, w).numpy(), cmap="RdBu_r")
            lam = "" if values is None else f" (λ={float(values[j]):.3g})"
            ax.set_title(f"u{j + 1}{lam}", fontsize=8)
            ax.axis("off")
    lam, response = internals.get("eigenvalues"), internals.get("filter")
    if lam is None:
        return
    ax = fig.add_subplot(grid[0, shown:])
    lam = lam.detach().float().cpu().reshape(-1, lam.shape[-1])[0].numpy()
    if response is not None:
        ax.plot(lam, response.detach().float().cpu().reshape(-1, lam.shape[-1])[0].numpy(), "o-",
                ms=3, label="h(λ)")  # fmt: skip
        ax.set_ylabel("h(λ)", fontsize=8)
    else:
        ax.plot(lam, "o", ms=3, label="λ_i")
    edge = internals.get("noise_edge")
    if edge is not None:
        ax.axvline(float(edge.reshape(-1)[0]), color="C3", ls="--", label="noise edge λ+")
    ax.set_xlabel("λ", fontsize=8)
    ax.legend(fontsize=7)
    ax.tick_params(labelsize=7)


def snapshot_figure(
    image: torch.Tensor,
    target: torch.Tensor,
    prediction: torch.Tensor,
    class_names: Sequence[str],
    ignore_index: int | None,
    internals: Mapping[str, torch.Tensor] | None = None,
    *,
    mean: Sequence[float] = (0.0, 0.0, 0.0),
    std: Sequence[float] = (1.0, 1.0, 1.0),
    title: str = "",
) -> Figure:
    """The snapshot as a matplotlib figure.

    Args:
        image: ``(3, H, W)`` normalised image (undone with ``mean`` / ``std``, RGB in [0, 1]).
        target: ``(H0, W0)`` ground truth; ``prediction``: ``(H0, W0)`` predicted labels.
        class_names: names of the ``K`` classes (legend).
        ignore_index: void label value (drawn black), or ``None``.
        internals: the head's internals for a batch of one (see :mod:`cheeger.heads.base`).
    """
    internals = dict(internals or {})
    spectral = "eigenvalues" in internals or "eigenvectors" in internals
    width = 2.4 * (MAX_EIGENVECTORS + 2) if spectral else 7.8
    fig = Figure(figsize=(width, 2.4 * (2 if spectral else 1) + 0.6), layout="constrained")
    FigureCanvasAgg(fig)
    rows = fig.add_gridspec(2 if spectral else 1, 1)
    top = rows[0].subgridspec(1, 3)
    rgb = image.detach().float().cpu() * torch.tensor(std).view(3, 1, 1)
    rgb = (rgb + torch.tensor(mean).view(3, 1, 1)).clamp(0, 1).permute(1, 2, 0).numpy()
    k = len(class_names)
    panels = (("input", rgb), ("ground truth", label_colours(target, k, ignore_index)),
              ("prediction", label_colours(prediction, k, ignore_index)))  # fmt: skip
    for column, (name, picture) in enumerate(panels):
        ax = fig.add_subplot(top[0, column])
        ax.imshow(picture, interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.axis("off")
    present = sorted(set(torch.cat([target.reshape(-1), prediction.reshape(-1)]).tolist()))
    palette = label_colours(torch.arange(k)[None], k, ignore_index)[0]  # (K, 3)
    handles = [Patch(color=palette[c], label=class_names[c])
               for c in present if 0 <= c < k and c != ignore_index]  # fmt: skip
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 6) or 1,
               fontsize=7, frameon=False)  # fmt: skip
    if spectral:
        _eigen_panels(fig, rows[1].subgridspec(1, MAX_EIGENVECTORS + 2), internals)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def save_snapshot(
    path: str | os.PathLike,
    image: torch.Tensor,
    target: torch.Tensor,
    prediction: torch.Tensor,
    class_names: Sequence[str],
    ignore_index: int | None,
    internals: Mapping[str, torch.Tensor] | None = None,
    **options,
) -> None:
    """Draw :func:`snapshot_figure` and write it as PNG to ``path`` atomically."""
    path = Path(path)
    fig = snapshot_figure(image, target, prediction, class_names, ignore_index, internals,
                          **options)  # fmt: skip
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".png")
    try:
        os.chmod(tmp, default_mode(0o666))
        with os.fdopen(fd, "wb") as handle:
            fig.savefig(handle, format="png", dpi=90)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
