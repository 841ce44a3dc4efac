"""Benchmark graphs: normalised Laplacians of a real CamVid frame, as pixel grids and k-NN graphs.

A frame is resized (PIL, bilinear with antialiasing) to ``side x side``; node ``y * side + x``
carries its RGB colour ``c`` in ``[0, 1]`` and its position ``p = (y, x) / side``. Edge weights are

    w_ij = exp(-||f_i - f_j||^2 / (2 s^2)),    s = bandwidth_scale * median over edges ||f_i - f_j||

with ``f = c`` on the 4- and 8-neighbour grids (all grid edges have the same length, so position
would only rescale every weight alike) and ``f = (c, p)`` on the symmetrised k-NN graph (k nearest
in ``(c, p)``, union of both directions). With ``bandwidth_scale = 1`` (the median rule) the
colour jumps at object borders are tens of bandwidths long, their weights underflow to 1e-100 or
0, and the graph falls apart into many nearly disconnected pieces: the bottom of the spectrum is
a cluster of eigenvalues below 1e-8. Larger scales give the "tiny but resolved gaps" regime
(``lambda_2`` about 2e-5 at 65,536 nodes with scale 10).

``L_sym`` comes from :func:`cheeger.graph.normalized_laplacian` (the project's own convention for
isolated nodes), as a coalesced COO tensor; numpy/scipy/PIL are used only to prepare the data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy.spatial import cKDTree

from cheeger.graph import normalized_laplacian

__all__ = ["GraphSpec", "build_graph", "frame_colours"]

KINDS = ("grid4", "grid8", "knn")


@dataclass(frozen=True)
class GraphSpec:
    """What to build: ``kind`` in ``KINDS``, ``side`` (n = side^2), the frame and the bandwidth."""

    kind: str
    side: int
    frame: str
    bandwidth_scale: float = 1.0
    knn: int = 10


def frame_colours(frame: str | Path, side: int) -> np.ndarray:
    """``(side, side, 3)`` float64 RGB in ``[0, 1]`` of the frame resized to ``side x side``."""
    path = Path(frame)
    if not path.is_file():
        raise FileNotFoundError(f"benchmark frame {path} does not exist (pass --frame)")
    with Image.open(path) as im:
        small = im.convert("RGB").resize((side, side), Image.BILINEAR)
    return np.asarray(small, dtype=np.float64) / 255.0


def _grid_pairs(side: int, connectivity: int) -> tuple[np.ndarray, np.ndarray]:
    idx = np.arange(side * side).reshape(side, side)
    pairs = [(idx[:, :-1], idx[:, 1:]), (idx[:-1, :], idx[1:, :])]
    if connectivity == 8:
        pairs += [(idx[:-1, :-1], idx[1:, 1:]), (idx[:-1, 1:], idx[1:, :-1])]
    return (
        np.concatenate([a.ravel() for a, _ in pairs]),
        np.concatenate([b.ravel() for _, b in pairs]),
    )


def _knn_pairs(points: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    _, nbr = cKDTree(points).query(points, k + 1)
    rows = np.repeat(np.arange(points.shape[0]), k)
    cols = nbr[:, 1:].ravel()  # column 0 is the point itself (or an identical twin)
    keep = rows != cols
    rows, cols = rows[keep], cols[keep]
    lo, hi = np.minimum(rows, cols), np.maximum(rows, cols)
    key = np.unique(lo * points.shape[0] + hi)  # the union of both directions, once per pair
    return key // points.shape[0], key % points.shape[0]


def build_graph(spec: GraphSpec, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, dict]:
    """``L_sym`` ``(n, n)`` (coalesced COO) of ``spec`` and a description (weights, bandwidth)."""
    if spec.kind not in KINDS:
        raise ValueError(f"graph kind must be one of {KINDS}, got {spec.kind!r}")
    colours = frame_colours(spec.frame, spec.side).reshape(-1, 3)
    n = colours.shape[0]
    if spec.kind == "knn":
        yx = np.stack(np.divmod(np.arange(n), spec.side), axis=1) / spec.side
        feats = np.concatenate([colours, yx], axis=1)
        rows, cols = _knn_pairs(feats, spec.knn)
    else:
        feats = colours
        rows, cols = _grid_pairs(spec.side, 4 if spec.kind == "grid4" else 8)
    d2 = ((feats[rows] - feats[cols]) ** 2).sum(1)
    s2 = float(np.median(d2)) * spec.bandwidth_scale**2
    if s2 <= 0:
        raise ValueError(f"{spec.frame}: median edge distance is 0 at side {spec.side}")
    w = np.exp(-d2 / (2 * s2))
    r = np.concatenate([rows, cols])
    c = np.concatenate([cols, rows])
    order = np.lexsort((c, r))
    W = torch.sparse_coo_tensor(
        torch.from_numpy(np.stack([r[order], c[order]])),
        torch.from_numpy(np.concatenate([w, w])[order]).to(dtype),
        (n, n),
        is_coalesced=True,
    )
    L = normalized_laplacian(W)
    info = {
        "n": n,
        "nnz": int(L._nnz()),
        "bandwidth": float(np.sqrt(s2)),
        "weight_min": float(w.min()),
        "weights_below_1e-16": float((w < 1e-16).mean()),
    }
    return L, info
