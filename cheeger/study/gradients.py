"""Gradient stability sweep: ``||dL/dA||_F`` against the eigengap, exact and broadened backward.

A symmetric ``A = Q diag(lambda) Q^T`` (``Q`` Haar-random, float64) has a well-separated spectrum
on ``[0, 2]`` (the range of a normalised Laplacian) except for one planted pair
``(c, c + gap)``, and :func:`cheeger.linalg.eigsh` computes its bottom ``k`` pairs. The pair sits

* ``inside`` the computed block (indices ``k - 2, k - 1``), or
* on its ``boundary`` (indices ``k - 1, k``: one computed, one not, so the computed subspace
  itself is ill-determined as the gap closes).

Two losses are differentiated:

* ``eigenvector``: ``<G, U>``, raw eigenvector coordinates (what a basis-dependent head would use);
* ``filtered``: ``<G, U diag(h(lambda)) U^T X>`` with ``h = exp(-lambda)``, the basis-invariant
  construction of the spectral head.

The exact backward (``eps = 0``) grows like ``1 / gap`` wherever the loss depends on the split of
the pair (raw eigenvectors; the filtered loss when the pair straddles the block's edge) and stays
finite for the filtered loss with the pair inside; the broadened backward obeys
``||dL/dA||_F <= ||g_lambda|| + ||g_U||_F / (2 eps_abs)`` whatever the gap. Each row of the output
records both the measured norm and that bound.

Example:
    >>> config = GradientsConfig(n=16, k=3, gaps=2, eps=(0.0, 1e-2), trials=1)
    >>> table = gradient_sweep(config)
    >>> len(table), sorted(table.columns)[:3]
    (16, ['bound', 'eps', 'eps_abs'])
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from cheeger.config import ParamsError
from cheeger.data.io import atomic_write_bytes
from cheeger.linalg import eigsh
from cheeger.study.config import study_section

__all__ = ["PAIRS", "GradientsConfig", "gradient_sweep", "planted_spectrum", "write_sweep"]

PAIRS = ("inside", "boundary")
LOSSES = ("eigenvector", "filtered")
_PAIR_CENTRE = 0.6  # where the planted pair sits on [0, 2]
_CLEARANCE = 0.1  # distance from the pair to every other eigenvalue beyond the largest gap


@dataclass(frozen=True)
class GradientsConfig:
    """``study.gradients``: the sweep's grid.

    Attributes:
        n: matrix size.
        k: computed eigenpairs (``2 <= k < n - 1``).
        gap_range: smallest and largest gap of the planted pair (geometric grid).
        gaps: number of gaps on that grid.
        eps: relative broadenings (0 is the exact backward).
        pairs: pair positions, ``inside`` and/or ``boundary``.
        losses: ``eigenvector`` and/or ``filtered``.
        trials: random matrices (and loss directions) per grid point.
        seed: seed of the first trial.
    """

    n: int = 64
    k: int = 4
    gap_range: tuple[float, float] = (1e-8, 1e-1)
    gaps: int = 15
    eps: tuple[float, ...] = (0.0, 1e-4, 1e-3, 1e-2)
    pairs: tuple[str, ...] = PAIRS
    losses: tuple[str, ...] = LOSSES
    trials: int = 3
    seed: int = 0

    def __post_init__(self) -> None:
        low, high = self.gap_range
        if not 2 <= self.k < self.n - 1:
            raise ParamsError(f"study.gradients.k: expected 2 <= k < n - 1 = {self.n - 1}, "
                              f"got {self.k}")  # fmt: skip
        limit = 2 - _PAIR_CENTRE - 2 * _CLEARANCE  # the pair and its clearance fit in [0, 2]
        if not 0 < low <= high < limit:
            raise ParamsError(f"study.gradients.gap_range: expected 0 < low <= high < "
                              f"{limit:g}, got {list(self.gap_range)}")  # fmt: skip
        if set(self.pairs) - set(PAIRS) or set(self.losses) - set(LOSSES):
            raise ParamsError(f"study.gradients: pairs must be among {list(PAIRS)} and losses "
                              f"among {list(LOSSES)}")  # fmt: skip

    @classmethod
    def from_params(
        cls, params: Mapping[str, Any], profile: str | None = None, *, origin: str = "params.yaml"
    ) -> GradientsConfig:
        """Build from ``study.gradients`` (and the profile's override), schema-checked."""
        section = dict(study_section(params, profile, origin=origin).get("gradients", {}))
        for key in ("gap_range", "eps", "pairs", "losses"):
            if key in section:
                section[key] = tuple(section[key])
        return cls(**section)

    def gap_values(self) -> list[float]:
        """The geometric grid of gaps, largest first."""
        low, high = self.gap_range
        if self.gaps == 1:
            return [high]
        step = math.log(high / low) / (self.gaps - 1)
        return [high * math.exp(-i * step) for i in range(self.gaps)]


def planted_spectrum(n: int, k: int, gap: float, pair: str, *, max_gap: float) -> torch.Tensor:
    """``(n,)`` ascending float64 eigenvalues on ``[0, 2]`` with the pair ``(c, c + gap)``.

    The pair occupies indices ``(k - 2, k - 1)`` (``inside``) or ``(k - 1, k)`` (``boundary``);
    every other eigenvalue is at least ``max_gap + 0.1`` away from it.

    Example:
        >>> planted_spectrum(6, 3, 1e-3, "boundary", max_gap=0.1)[2:4].tolist()
        [0.6, 0.601]
    """
    if pair not in PAIRS:
        raise ValueError(f"planted_spectrum: pair must be one of {PAIRS}, got {pair!r}")
    first = k - 2 if pair == "inside" else k - 1
    below = torch.linspace(0.0, _PAIR_CENTRE - _CLEARANCE, first + 1, dtype=torch.float64)[:-1]
    above_start = _PAIR_CENTRE + max_gap + _CLEARANCE
    above = torch.linspace(above_start, 2.0, n - first - 2, dtype=torch.float64)
    pair_values = torch.tensor([_PAIR_CENTRE, _PAIR_CENTRE + gap], dtype=torch.float64)
    return torch.cat([below, pair_values, above])


def _haar_orthogonal(n: int, generator: torch.Generator) -> torch.Tensor:
    Z = torch.randn(n, n, generator=generator, dtype=torch.float64)
    Q, R = torch.linalg.qr(Z)
    return Q * torch.sign(torch.diagonal(R))  # sign fix makes Q Haar-distributed


def _measure(A: torch.Tensor, k: int, eps: float, loss: str, G: torch.Tensor, X: torch.Tensor):
    """Loss value, ``||dL/dA||_F``, ``||g_lambda||`` and ``||g_U||_F`` of one solve."""
    A = A.clone().requires_grad_(True)
    lam, U = eigsh(A, k, eps, method="dense")  # (k,), (n, k)
    lam.retain_grad()
    U.retain_grad()
    if loss == "eigenvector":
        value = (G[:, :k] * U).sum()
    else:
        filtered = U @ (torch.exp(-lam)[:, None] * (U.mT @ X))  # (n, c)
        value = (G[:, : X.shape[1]] * filtered).sum()
    value.backward()
    g_lam = torch.zeros(()) if lam.grad is None else lam.grad.norm()
    g_U = torch.zeros(()) if U.grad is None else U.grad.norm()
    return float(value.detach()), float(A.grad.norm()), float(g_lam), float(g_U)


def gradient_sweep(config: GradientsConfig) -> pd.DataFrame:
    """One row per (trial, pair, loss, gap, eps).

    Columns: ``trial, pair, loss, gap, eps, eps_abs, loss_value, grad_norm, g_lambda, g_U,
    bound`` (``bound`` is ``||g_lambda|| + ||g_U||_F / (2 eps_abs)``, infinite for ``eps = 0``).
    """
    rows = []
    gaps = config.gap_values()
    for trial in range(config.trials):
        generator = torch.Generator().manual_seed(config.seed + trial)
        Q = _haar_orthogonal(config.n, generator)
        G = torch.randn(config.n, config.k, generator=generator, dtype=torch.float64)
        X = torch.randn(config.n, config.k, generator=generator, dtype=torch.float64)
        for pair in config.pairs:
            for gap in gaps:
                lam = planted_spectrum(config.n, config.k, gap, pair, max_gap=config.gap_range[1])
                A = (Q * lam) @ Q.mT
                A = (A + A.mT) / 2  # (n, n), exactly symmetric
                scale = float(A.norm()) / math.sqrt(config.n)  # eigsh's spectrum scale
                for loss in config.losses:
                    for eps in config.eps:
                        value, grad, g_lam, g_U = _measure(A, config.k, eps, loss, G, X)
                        eps_abs = eps * scale
                        bound = g_lam + g_U / (2 * eps_abs) if eps_abs > 0 else math.inf
                        rows.append({"trial": trial, "pair": pair, "loss": loss, "gap": gap,
                                     "eps": eps, "eps_abs": eps_abs, "loss_value": value,
                                     "grad_norm": grad, "g_lambda": g_lam, "g_U": g_U,
                                     "bound": bound})  # fmt: skip
    return pd.DataFrame(rows)


def write_sweep(table: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write the sweep as CSV, atomically (folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    table.to_csv(buffer, index=False, float_format="%.10g")
    atomic_write_bytes(path, buffer.getvalue().encode())
    return path
