"""Broadening by measurement: the head's gradient error against the exact backward, per eps rule.

The broadened factor ``(l_i - l_j) / ((l_i - l_j)^2 + eps^2)`` of :func:`cheeger.linalg.eigsh`
replaces ``1 / (l_i - l_j)`` and is off by the relative ``eps^2 / gap^2``: harmless when the
absolute ``eps`` is far below the bottom gaps, a damping of every eigenvector gradient when it is
not. This module measures, on 8-neighbour colour graphs of images (median-rule bandwidth, the
``image8`` family of ``benchmarks/eigensolvers.py``), the relative error of the broadened gradient
of the head's basis-invariant loss ``<G, U diag(h(lambda)) U^T X>`` (a smooth random filter ``h``,
random evidence ``X (n, 11)`` and cotangent ``G``) against its closed form
(:func:`reference_gradient`), for the two rules of ``eigsh`` that make ``eps`` absolute:

* ``rms``: ``eps`` times the RMS eigenvalue ``||A||_F / sqrt(n)`` (~1 for ``L_sym``);
* ``gap``: ``eps`` times the computed block's mean gap ``(lambda_k - lambda_1) / (k - 1)``.

Both gradients take the dense path (whole spectrum exact), so the error is the broadening's alone;
it is measured on the graph's pattern (the entries a sparse ``L`` has). An ``eigenvector`` loss
``<G, U>`` can be added (``losses``); its reference is ``eps = 0`` autograd, not finite when two
bottom eigenvalues meet, which its rows then show.

Example:
    >>> import numpy as np
    >>> image = np.random.default_rng(0).integers(0, 256, (12, 15, 3), dtype=np.uint8)
    >>> config = BroadeningConfig(sizes=((6, 8),), eps=(1e-2,), k=4)
    >>> table = broadening_sweep([("noise", image)], config)
    >>> len(table), list(table.columns[:4])
    (2, ['size', 'frame', 'loss', 'rule'])
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from cheeger.config import ParamsError
from cheeger.data.io import atomic_write_bytes, resize_image
from cheeger.data.prepared import split_array_path
from cheeger.graph import normalized_laplacian
from cheeger.linalg import eigsh
from cheeger.study.config import study_section
from cheeger.study.layout import StudyFileError

__all__ = [
    "COLUMNS",
    "BroadeningConfig",
    "broadening_sweep",
    "image8_edges",
    "image8_laplacian",
    "prepared_images",
    "reference_gradient",
    "summarize",
    "write_table",
]

RULES = ("rms", "gap")
LOSSES = ("filtered", "eigenvector")
#: The sweep's columns, one row per (size, frame, loss, rule, eps).
COLUMNS = ("size", "frame", "loss", "rule", "eps", "eps_abs", "rel_error", "min_gap", "mean_gap",
           "gap_k", "scale")  # fmt: skip
_EVIDENCE = 11  # channels of X and G: CamVid's classes


@dataclass(frozen=True)
class BroadeningConfig:
    """``study.broadening``: the sweep's grid.

    Attributes:
        frames: images of ``split`` (evenly spaced over it).
        split: split of the prepared data the images come from.
        sizes: ``(H, W)`` the images are resized to before the graph is built.
        eps: relative broadenings (> 0; the reference is the exact gradient).
        rules: ``rms`` and/or ``gap``.
        losses: ``filtered`` and/or ``eigenvector``.
        k: computed eigenpairs (``2 <= k < H * W`` at every size).
        seed: seed of the filters, evidence and cotangents.
    """

    frames: int = 4
    split: str = "test"
    sizes: tuple[tuple[int, int], ...] = ((23, 30), (46, 60))
    eps: tuple[float, ...] = (1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 1e-4, 1e-5)
    rules: tuple[str, ...] = RULES
    losses: tuple[str, ...] = ("filtered",)
    k: int = 16
    seed: int = 0

    def __post_init__(self) -> None:
        if self.frames < 1:
            raise ParamsError(f"study.broadening.frames: expected >= 1, got {self.frames}")
        if not self.sizes or any(len(s) != 2 or min(s) < 2 for s in self.sizes):
            raise ParamsError(f"study.broadening.sizes: expected [[H, W], ...] with H, W >= 2, "
                              f"got {[list(s) for s in self.sizes]}")  # fmt: skip
        if any(self.k >= h * w for h, w in self.sizes) or self.k < 2:
            raise ParamsError(f"study.broadening.k: expected 2 <= k < H * W at every size, "
                              f"got {self.k}")  # fmt: skip
        if not self.eps or min(self.eps) <= 0:
            raise ParamsError(f"study.broadening.eps: expected positive values, got {self.eps}")
        if set(self.rules) - set(RULES) or set(self.losses) - set(LOSSES):
            raise ParamsError(f"study.broadening: rules must be among {list(RULES)} and losses "
                              f"among {list(LOSSES)}")  # fmt: skip

    @classmethod
    def from_params(
        cls, params: Mapping[str, Any], profile: str | None = None, *, origin: str = "params.yaml"
    ) -> BroadeningConfig:
        """Build from ``study.broadening`` (and the profile's override)."""
        section = dict(study_section(params, profile, origin=origin).get("broadening", {}))
        for key in ("eps", "rules", "losses"):
            if key in section:
                section[key] = tuple(section[key])
        if "sizes" in section:
            section["sizes"] = tuple(tuple(int(v) for v in s) for s in section["sizes"])
        return cls(**section)


def image8_edges(rgb: np.ndarray, sigma: float | None = None):
    """Upper edges of the 8-neighbour colour graph of an ``(H, W, 3)`` image in ``[0, 1]``.

    Weights ``exp(-||c_i - c_j||^2 / (2 s^2)) / step`` (``step`` 1 or sqrt 2 for diagonals), ``s``
    the given ``sigma`` or, when None, the median rule ``s^2 = median ||c_i - c_j||^2``.

    Returns:
        ``rows, cols (E,)`` int, ``weights (E,)`` float64 and ``s^2``.

    Raises:
        ValueError: the image is not ``(H, W, 3)``, or every edge has distance 0 (median rule).
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"image: expected (H, W, 3), got {tuple(rgb.shape)}")
    H, W = rgb.shape[:2]
    colour = np.asarray(rgb, dtype=np.float64).reshape(-1, 3)
    idx = np.arange(H * W).reshape(H, W)
    r2 = 2**0.5
    parts = [(idx[:, :-1], idx[:, 1:], 1.0), (idx[:-1, :], idx[1:, :], 1.0),
             (idx[:-1, :-1], idx[1:, 1:], r2), (idx[:-1, 1:], idx[1:, :-1], r2)]  # fmt: skip
    rows = np.concatenate([a.ravel() for a, _, _ in parts])
    cols = np.concatenate([b.ravel() for _, b, _ in parts])
    step = np.concatenate([np.full(a.size, s) for a, _, s in parts])
    d2 = ((colour[rows] - colour[cols]) ** 2).sum(1)
    s2 = sigma**2 if sigma is not None else float(np.median(d2))
    if s2 <= 0:
        raise ValueError(f"image {H} x {W}: median edge distance is 0 (a flat image)")
    return rows, cols, np.exp(-d2 / (2 * s2)) / step, s2


def image8_laplacian(
    image: np.ndarray, size: tuple[int, int], dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """``L_sym`` (sparse COO, ``(n, n)``, ``n = H * W``) of a uint8 image resized to ``size``."""
    H, W = size
    rgb = resize_image(np.ascontiguousarray(image, dtype=np.uint8), (H, W)) / 255.0
    rows, cols, w, _ = image8_edges(rgb)
    index = torch.from_numpy(np.stack([np.concatenate([rows, cols]), np.concatenate([cols, rows])]))
    values = torch.from_numpy(np.concatenate([w, w])).to(dtype)
    return normalized_laplacian(
        torch.sparse_coo_tensor(index, values, (H * W, H * W), check_invariants=True).coalesce()
    )


def prepared_images(root: str | os.PathLike, split: str, count: int) -> list[tuple[str, Any]]:
    """``count`` images ``(name, (H, W, 3) uint8)`` evenly spaced over a prepared split.

    Raises:
        StudyFileError: the split's ``images.npy`` is missing (the path is named).
    """
    path = split_array_path(root, split, "images")
    if not path.is_file():
        raise StudyFileError(f"broadening: prepared images {path} do not exist")
    images = np.load(path, mmap_mode="r")  # (N, H, W, 3)
    step = max(1, len(images) // count)
    return [(f"{split}/{i:05d}", np.asarray(images[i])) for i in range(0, len(images), step)][
        :count
    ]


def _bump_filter(lam_k: float, g: torch.Generator):
    """A smooth random filter: six Gaussian bumps on ``[0, lam_k]``, with its derivative."""
    centres = torch.rand(6, generator=g, dtype=torch.float64) * lam_k
    widths = (0.1 + torch.rand(6, generator=g, dtype=torch.float64)) * lam_k / 3
    weights = torch.randn(6, generator=g, dtype=torch.float64)

    def h(lam: torch.Tensor) -> torch.Tensor:
        return (weights * torch.exp(-(((lam[:, None] - centres) / widths) ** 2))).sum(-1)

    def dh(lam: torch.Tensor) -> torch.Tensor:
        z = (lam[:, None] - centres) / widths
        return (weights * torch.exp(-(z**2)) * (-2 * z / widths)).sum(-1)

    h.derivative = dh
    return h


def reference_gradient(L: torch.Tensor, k: int, G, X, h) -> torch.Tensor:
    """The exact gradient of the filtered loss in closed form (Daleckii-Krein), ``(n, n)``.

    ``f = sum_{i<k} h(l_i) u_i^T M u_i`` with ``M = sym(X G^T)``, so ``A_bar = V Phi V^T`` over
    the whole eigenbasis ``V``: ``Phi_ii = h'(l_i) m_ii``; inside the block
    ``Phi_ij = m_ij (h_i - h_j) / (l_i - l_j)`` (a divided difference, ``h'`` below 1e-12);
    across its edge ``Phi_ij = m_ij h_i / (l_i - l_j)``. Independent of the code under test: the
    autograd form sums the ``1 / gap`` terms of a pair separately, which can cancel badly at
    nearly equal eigenvalues. ``h`` needs ``h.derivative``.

    Args:
        L: dense symmetric ``(n, n)``.
        k: the block's size.
        G, X: ``(n, c)`` cotangent and evidence.
        h: the filter, a function of ``(k,)`` eigenvalues.
    """
    lam, V = torch.linalg.eigh(L)
    M = X @ G.T
    m = V.T @ (0.5 * (M + M.T)) @ V  # (n, n)
    hk, dk = h(lam[:k]), h.derivative(lam[:k])
    Phi = torch.zeros_like(m)
    diff = lam[:k, None] - lam[None, :k]
    tiny = diff.abs() <= 1e-12
    dd = torch.where(tiny, 0.5 * (dk[:, None] + dk[None, :]),
                     (hk[:, None] - hk[None, :]) / torch.where(tiny, 1.0, diff))  # fmt: skip
    Phi[:k, :k] = m[:k, :k] * dd
    edge = m[:k, k:] * hk[:, None] / (lam[:k, None] - lam[None, k:])  # (k, n - k)
    Phi[:k, k:], Phi[k:, :k] = edge, edge.T
    return V @ Phi @ V.T


def _gradient(L, k: int, eps: float, rule: str, loss: str, G, X, h, Gu) -> torch.Tensor:
    A = L.clone().requires_grad_(True)
    lam, U = eigsh(A, k, eps, method="dense", eps_rule=rule)
    if loss == "filtered":
        value = (G * (U @ (h(lam)[:, None] * (U.T @ X)))).sum()
    else:
        value = (Gu * U).sum()
    (grad,) = torch.autograd.grad(value, A)
    return grad


def broadening_sweep(images: Sequence[tuple[str, Any]], config: BroadeningConfig) -> pd.DataFrame:
    """Relative gradient error per (size, image, loss, rule, eps); columns :data:`COLUMNS`.

    Args:
        images: ``(name, (H, W, 3) uint8 array)`` pairs.
        config: the grid.
    """
    rows, k = [], config.k
    g = torch.Generator().manual_seed(config.seed)
    for H, W in config.sizes:
        for name, image in images:
            L = image8_laplacian(image, (H, W)).to_dense()  # (n, n): the dense path is the point
            pattern = L != 0
            n = L.shape[0]
            scale = float(L.square().sum().div(n).sqrt())
            lam = torch.linalg.eigvalsh(L)[: k + 1]
            gaps = lam.diff()
            mean_gap = float((lam[k - 1] - lam[0]) / (k - 1))
            G = torch.randn(n, _EVIDENCE, generator=g, dtype=L.dtype)
            X = torch.randn(n, _EVIDENCE, generator=g, dtype=L.dtype)
            h = _bump_filter(float(lam[k - 1]), g)
            Gu = torch.randn(n, k, generator=g, dtype=L.dtype)
            for loss in config.losses:
                if loss == "filtered":
                    exact = reference_gradient(L, k, G, X, h)[pattern]
                else:  # ~1 / gap: not finite when two bottom eigenvalues meet
                    exact = _gradient(L, k, 0.0, "rms", loss, G, X, h, Gu)[pattern]
                for rule in config.rules:
                    for eps in config.eps:
                        got = _gradient(L, k, eps, rule, loss, G, X, h, Gu)[pattern]
                        rows.append({
                            "size": f"{H}x{W}", "frame": name, "loss": loss, "rule": rule,
                            "eps": eps, "eps_abs": eps * (scale if rule == "rms" else mean_gap),
                            "rel_error": float((got - exact).norm() / exact.norm()),
                            "min_gap": float(gaps[:k].min()), "mean_gap": mean_gap,
                            "gap_k": float(gaps[k - 1]), "scale": scale,
                        })  # fmt: skip
    return pd.DataFrame(rows, columns=list(COLUMNS))


def summarize(table: pd.DataFrame) -> pd.DataFrame:
    """Median and max relative error over images per (size, loss, rule, eps), eps descending."""
    return (
        table.groupby(["size", "loss", "rule", "eps"])["rel_error"]
        .agg(["median", "max"])
        .reset_index()
        .sort_values(["size", "loss", "rule", "eps"], ascending=[True, True, True, False])
        .reset_index(drop=True)
    )


def write_table(table: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write the sweep atomically as CSV, or as JSON records when ``path`` ends in ``.json``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".json":
        data = json.dumps(table.to_dict(orient="records"), indent=1)
    else:
        buffer = io.StringIO()
        table.to_csv(buffer, index=False, float_format="%.10g")
        data = buffer.getvalue()
    atomic_write_bytes(path, data.encode())
    return path
