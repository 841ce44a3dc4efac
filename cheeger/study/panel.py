"""The qualitative panel: one image through every head, with the spectral head's internals.

Top row: the input image, its ground truth and each head's prediction (logits upsampled to the
native label size, as in evaluation). Bottom row, from the first head that reports spectral
internals (see :mod:`cheeger.heads.base`): its first eigenvectors drawn on the graph grid, and the
filter response ``h(lambda)`` at the computed eigenvalues against the noise-floor edge
``lambda_+`` (eigenvalues above it are what structure-free features would also produce).

The models are rebuilt from the runs' checkpoints (the ``evaluate.checkpoint`` choice: ``best``
on validation, or ``last``), exactly as ``cheeger evaluate`` does.

Example:
    >>> fig = panel_figure(runs, "results/embedded/prepared", "test", 0)  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from cheeger.data import PreparedDataset
from cheeger.heads import resize_logits
from cheeger.models import model_from_spec
from cheeger.study.figures import new_figure
from cheeger.training import BEST, CHECKPOINT, load_checkpoint
from cheeger.training.snapshot import label_colours

__all__ = ["load_run_model", "panel_figure"]

EIGENVECTORS = 4


def load_run_model(run: str | os.PathLike, checkpoint: str = "best") -> torch.nn.Module:
    """The model of a finished run (U-Net or pretrained encoder, from its checkpoint's
    ``model_spec``) with its ``best`` (validation) or ``last`` weights, in eval mode on the
    CPU."""
    run = Path(run)
    state = load_checkpoint(run / (BEST if checkpoint == "best" else CHECKPOINT))
    model = model_from_spec(state["model_spec"])
    model.load_state_dict(state["model"])
    return model.eval()


@torch.no_grad()
def panel_figure(
    runs: Mapping[str, str | os.PathLike],
    data: str | os.PathLike,
    split: str,
    index: int,
    checkpoint: str = "best",
) -> Figure:
    """The panel for image ``index`` of ``split``.

    Args:
        runs: head name -> finished run folder (one seed of each head).
        data: prepared dataset folder.
        split: split the image is taken from.
        index: image index in the split (clamped to the split's size).
        checkpoint: ``best`` or ``last``.
    """
    dataset = PreparedDataset(data, split, native=True)
    item = dataset[min(index, len(dataset) - 1)]
    target = item["native_label"]
    k, ignore = dataset.num_classes, dataset.ignore_index
    predictions, internals = {}, None
    for head, run in runs.items():
        output = load_run_model(run, checkpoint)(item["image"][None])
        predictions[head] = resize_logits(output.logits, tuple(target.shape))[0].argmax(0)
        if internals is None and "eigenvectors" in output.internals:
            internals = (head, output.internals)
    rgb = (item["image"] * dataset.std + dataset.mean).clamp(0, 1).permute(1, 2, 0).numpy()
    top = [("input", rgb), ("ground truth", label_colours(target, k, ignore))]
    top += [(f"{head} head", label_colours(p, k, ignore)) for head, p in predictions.items()]
    cols = max(len(top), EIGENVECTORS + 1) if internals else len(top)
    fig, axes = new_figure(2 if internals else 1, cols, width=2.4, height=2.2)
    for ax, (title, picture) in zip(axes[0], top, strict=False):
        ax.imshow(picture, interpolation="nearest")
        ax.set_title(title, fontsize=8)
    for ax in axes.flat:
        ax.axis("off")
    if len(top) < cols:  # a free cell: the class legend
        _draw_legend(axes[0, -1], target, predictions.values(), dataset.manifest["class_names"],
                     ignore)  # fmt: skip
    if internals is not None:
        _draw_internals(axes[1], *internals)
    fig.suptitle(f"{split} image {item['id']}", fontsize=9)
    return fig


def _draw_legend(ax, target, predictions, class_names, ignore) -> None:
    k = len(class_names)
    palette = label_colours(torch.arange(k)[None], k, ignore)[0]  # (K, 3)
    present = set(target.unique().tolist()).union(*(set(p.unique().tolist()) for p in predictions))
    handles = [Patch(color=palette[c], label=class_names[c]) for c in sorted(present) if c < k]
    ax.legend(handles=handles, loc="center", fontsize=7, frameon=False)


def _draw_internals(axes: np.ndarray, head: str, internals: Mapping[str, torch.Tensor]) -> None:
    U = internals["eigenvectors"][0]  # (n, k)
    h, w = (int(v) for v in internals["graph_size"])
    lam = internals["eigenvalues"][0]  # (k,)
    shown = min(EIGENVECTORS, U.shape[1])
    for i in range(shown):
        ax = axes[i]
        vector = U[:, i].reshape(h, w).numpy()
        scale = float(np.abs(vector).max()) or 1.0  # white is 0: the sign pattern shows
        ax.imshow(vector, cmap="RdBu_r", vmin=-scale, vmax=scale, interpolation="nearest")
        ax.set_title(f"{head}: u{i + 1}, λ={float(lam[i]):.3g}", fontsize=7)
    ax = axes[-1]
    ax.axis("on")
    if "filter" in internals:
        ax.plot(lam.numpy(), internals["filter"][0].numpy(), marker="o", markersize=3,
                label="h(λ)")  # fmt: skip
    if "noise_edge" in internals:
        edge = float(internals["noise_edge"].reshape(-1)[0])
        ax.axvline(edge, color="red", linestyle="--", linewidth=1, label=f"noise edge {edge:.3g}")
    ax.set_xlabel("λ", fontsize=7)
    ax.set_title("filter response", fontsize=8)
    ax.tick_params(labelsize=6)
    ax.legend(fontsize=6)
