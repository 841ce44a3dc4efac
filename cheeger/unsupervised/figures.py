"""Figures of the unsupervised study, as PNG bytes (the caller writes them atomically).

* :func:`cluster_figure`: per test image a row: the image, the ground truth, and each route's
  clusters after matching to the classes (same class colours; void black).
* :func:`eigenfunction_figure`: one test image; top row ``eigsh``'s top eigenvectors of the image's
  kernel (``kappa``'s largest eigenvalues), bottom row the NeuralEF eigenfunctions on the same
  nodes (softmax of ``psi``, one column per output), ordered by their Rayleigh quotient on that
  kernel, largest first.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib import colormaps
from matplotlib.figure import Figure

from cheeger.unsupervised.nodes import node_colours, node_features

__all__ = ["cluster_figure", "eigenfunction_figure"]


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def _label_rgb(labels: torch.Tensor, classes: int, ignore: int | None) -> np.ndarray:
    lab = labels.cpu().numpy()
    rgb = np.asarray(colormaps["tab20"](np.clip(lab, 0, classes - 1) % 20))[..., :3]
    if ignore is not None:
        rgb[lab == ignore] = 0
    return rgb


def cluster_figure(items: Sequence[dict[str, Any]], examples: dict[str, list[torch.Tensor]],
                   class_names: Sequence[str], ignore: int | None) -> bytes:  # fmt: skip
    """Image | ground truth | one column per route (matched clusters), one row per image."""
    routes = list(examples)
    rows = min(len(items), *(len(v) for v in examples.values()))
    fig = Figure(figsize=(2.6 * (2 + len(routes)), 2.1 * rows))
    axes = fig.subplots(rows, 2 + len(routes), squeeze=False)
    classes = len(class_names)
    for r in range(rows):
        panels = [("image", items[r]["image"].numpy()),
                  ("ground truth", _label_rgb(items[r]["native_label"], classes, ignore))]
        panels += [(name, _label_rgb(examples[name][r], classes, ignore)) for name in routes]
        for ax, (title, img) in zip(axes[r], panels, strict=True):
            ax.imshow(img, interpolation="nearest")
            ax.set_axis_off()
            if r == 0:
                ax.set_title(title, fontsize=9)
    return _png(fig)


@torch.no_grad()
def eigenfunction_figure(item: dict[str, Any], eigsh_route: Any, neuralef_route: Any,
                         stride: int, levels: Sequence[int], count: int = 4) -> bytes:  # fmt: skip
    """eigsh's top ``count`` eigenvectors over the NeuralEF eigenfunctions of one image."""
    f = node_features(item["taps"], stride, tuple(levels))  # (h, w, C)
    c = node_colours(item["image"], f.shape[:2])
    h, w, _ = f.shape
    vectors = eigsh_route.eigenvectors(f, c)  # (n, m)
    kappa = eigsh_route.kernel.kernel(f[None], c[None], pooled=False)[0]  # (n, n)
    tau = neuralef_route.train.get("tau", (1.0, 0.3))[1]
    probs = F.softmax(neuralef_route.psi(f.reshape(h * w, -1)) / tau, -1)  # (n, K)
    unit = probs / probs.norm(dim=0).clamp_min(1e-12)
    rayleigh = (unit * torch.sparse.mm(kappa, unit)).sum(0)  # (K,)
    order = rayleigh.argsort(descending=True)
    count = min(count, vectors.shape[1], probs.shape[1])
    fig = Figure(figsize=(2.6 * count, 4.4))
    axes = fig.subplots(2, count, squeeze=False)
    for j in range(count):
        for ax, vec, title in (
            (axes[0, j], vectors[:, j], f"eigsh eigenvector {j + 1}"),
            (axes[1, j], probs[:, order[j]],
             f"NeuralEF psi_{int(order[j])} (R={float(rayleigh[order[j]]):.2f})"),
        ):  # fmt: skip
            ax.imshow(vec.reshape(h, w).numpy(), cmap="coolwarm", interpolation="nearest")
            ax.set_title(title, fontsize=8)
            ax.set_axis_off()
    return _png(fig)
