r"""The noise floor of ``L_sym``: where the spectrum of structure-free features ends.

The noise region is ``lambda >= edge``; bottom eigenvalues below the edge are informative, and
the bulk penalty (:mod:`cheeger.losses.bulk`) pushes the learned response to zero above it.

Why not the design's edge directly
----------------------------------
``s^2 (1 + sqrt(d/n))^2`` (Marchenko-Pastur) is the top of the spectrum of the *feature
covariance* ``X^T X / n`` of ``n`` noise vectors in ``d`` dimensions, not of ``L_sym``, whose
spectrum lies in ``[0, 2]`` and, for pure noise, piles up near 1 (``d = 64, n = 1024``,
``sigma^2 = 64``: all of it in ``[0.978, 1.003]``, while that edge is 1.56). It enters ``L_sym``
through an affine map, derived below.

Route (b): the analytic edge of the dense Gaussian kernel
---------------------------------------------------------
Noise model: the projected features ``x_i = A f_i ~ N(mu, s^2 I_d)`` i.i.d.,
``W_ij = exp(-|x_i - x_j|^2 / 2 sigma^2)``, ``W_ii = 0`` (as :mod:`cheeger.graph` builds it).

1. Degrees concentrate: ``D_i = (n-1) q(x_i) (1 + O(n^{-1/2}))`` with
   ``q(x) = E_y k(x, y) = (sigma^2 / (sigma^2 + s^2))^{d/2} exp(-|x - mu|^2 / 2(sigma^2 + s^2))``.
2. So ``N = D^{-1/2} W D^{-1/2} = (G - diag(n~(x_i, x_i))) / (n - 1)`` with ``G_ij = n~(x_i, x_j)``,
   the degree-normalised kernel ``n~(x, y) = k(x, y) / sqrt(q(x) q(y))``.
3. Under ``N(mu, s^2 I)`` ``n~`` is a Gaussian in ``(x, y)``, a Mehler kernel: its eigenfunctions
   are Hermite functions and its eigenvalues ``r^{|alpha|}``, ``alpha in N^d``, with
   ``r = s^2 / (sigma^2 + s^2)``; the degree-``k`` block has multiplicity ``C(d+k-1, k)``; the
   ``k = 0`` block (eigenvalue 1) is the trivial ``lambda = 0`` of ``L_sym``. Its trace is
   ``E n~(x, x) = E 1/q = (1 - r)^{-d} = (1 + s^2/sigma^2)^d``.
4. ``G / (n - 1)`` is the Gram matrix of ``n`` samples of the feature map with population
   covariance ``diag(r^{|alpha|})``: its bulk follows the generalised Marchenko-Pastur law
   (Silverstein-Bai); its top edge is ``z_+ = min_m z(m)``,
   ``z(m) = -1/m + sum_{k>=1} C(d+k-1,k) / (n-1) * r^k / (1 + r^k m)``.
5. Noise edge of ``L_sym``: ``1 - z_+ + (1 - r)^{-d} / (n - 1)``, minus ``q_TW`` Tracy-Widom scales
   ``(z''(m_c)/2)^{1/3} (n-1)^{-2/3}`` (``q_TW = 2.02``, the 99% quantile of TW1: the largest
   bulk eigenvalue of the Gram matrix is ``lambda_2`` of ``L_sym``, mirrored).
6. Keeping only the linear block (``order=1``; higher blocks as multiples of the identity, El Karoui
   2010's linearisation) gives the design's formula in its precise sense: the MP edge
   ``lambda_+ = s^2 (1 + sqrt(d/(n-1)))^2`` of the feature covariance, mapped affinely,

   ``edge = 1 - a lambda_+ - b``, ``a = 1 / (sigma^2 + s^2)``, ``b = -(1 + d r) / (n - 1)``.

   Check, ``d = 64, n = 1025, s = 1, sigma^2 = 64``: ``a lambda_+ = 1.5625 / 65 = 0.0240``,
   ``b = -0.0019``: edge 0.978, the measured bottom; ``1 - b = 1.0019`` is where the ``n - d - 1``
   remaining eigenvalues pile up (measured median 1.0020).

``s^2`` is estimated robustly (:func:`~cheeger.spectral.marchenko_pastur.noise_variance`: the
mean of the covariance eigenvalues inside the MP bulk, so planted signal spikes are excluded).
Measured (``tests/spectral/test_marchenko_pastur.py``): the edge stays within Tracy-Widom
fluctuations of the measured ``lambda_2`` from ``sigma^2 = d s^2`` down to ``sigma^2 = d s^2 / 4``
and to ``sigma = s`` at ``d = 4``, and ``order=1`` stays within half a TW scale of the full sum
throughout (the top of the bulk is the linear block's; higher blocks act through their trace).
Valid for the dense kernel only, with isotropic noise in the projected space (``A`` with
orthonormal rows keeps isotropic features isotropic) and degrees that concentrate (many
effective neighbours, ``(n - 1) (sigma^2 / (sigma^2 + 2 s^2))^{d/2} >> 1``).

Route (a): a null model, for every neighbourhood
------------------------------------------------
Draw ``P`` structure-free versions of the features, build their graph with the *same* affinity
(metric, bandwidth, neighbourhood), and read their smallest non-trivial eigenvalue ``nu_p``
(eigenvalues ``<= zero_tol`` are the trivial zeros, one per connected component). The edge is a
one-sided prediction bound for ``nu`` of one new null draw (``bound``):

* ``"t"`` (default): ``mean_p nu_p - t_{P-1}(1 - miss_rate) sd_p(nu) sqrt(1 + 1/P)``, the Gaussian
  prediction bound: a new null draw's ``nu`` falls below it with probability ``miss_rate`` (5%
  by default) at every ``P >= 2`` when ``nu`` is Gaussian. Measured on the head's default graph
  (CamVid frames, 23 x 30 grid, see below): 5.2-5.5% per draw at ``P`` = 2, 4, 8, 16.
* ``"range"``: ``min_p nu_p - margin (max_p nu_p - min_p nu_p)`` (the rule of the committed
  CamVid results, with ``P = 2``). Its per-draw miss rate depends on ``P``: measured 17.5% at
  ``P = 2``, 3.2% at 4, 0.3% at 8 (same script).

Both are clamped at 0. Every miss rate here is the probability that ONE new null draw's smallest
non-trivial eigenvalue lies below the edge, not a fraction of eigenvalues.

What the edge is on pixel grids. The null's weights are i.i.d. across edges and, with the head's
unit-length embedding and bandwidth, nearly equal, so ``nu`` is the geometric ``lambda_2`` of the
plain grid of that shape: measured ``nu / lambda_2(plain grid) = 1.0000`` with a relative spread
``sd / mean = 1e-4`` on untrained-head embeddings of CamVid frames (stride 8, 23 x 30 nodes,
8 neighbours, ``sigma = 0.5``), and 0.94 (spread 0.026) on planted partitions of the frames'
label layouts. The random-matrix part plays no role there: the edge says "smoother than the
smoothest mode of a featureless grid of this size", a geometric threshold. It is not a detector
of many regions: on those planted partitions (17-24 label regions per frame) at most one
non-trivial eigenvalue lies below it, the others lie among the grid's own modes. Measured with
``.venv/bin/python benchmarks/noise_floor.py --threads 1`` (4 validation frames, 48 null draws
each, 2000 resamples per ``P``). On dense and kNN graphs the null's spectrum is a random-matrix
bulk and the edge is its bottom (tests/spectral/test_noise.py).

The nulls and the prediction bound's statistics are in :mod:`cheeger.spectral.null_model`.

Cost: the null costs ``P`` graph builds and eigensolves of ``num_eigenvalues`` pairs, batched into
one call (measured in the report); the analytic edge is ``O(n d^2)`` plus a scalar bisection.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from cheeger.graph import normalized_laplacian
from cheeger.linalg import eigsh
from cheeger.spectral.marchenko_pastur import TW1_QUANTILE_99, kernel_bulk_edge, noise_span
from cheeger.spectral.null_model import (
    BOUNDS,
    NULLS,
    _points,
    null_features,
    prediction_bound,
    student_t_quantile,
)

__all__ = [
    "BOUNDS",
    "NULLS",
    "NoiseFloor",
    "analytic_noise_edge",
    "noise_floor",
    "null_features",
    "null_noise_edge",
    "prediction_bound",
    "student_t_quantile",
]

_METHODS = ("null", "analytic")


def _bottom_eigenvalues(L: torch.Tensor, k: int, solver: dict[str, Any]) -> torch.Tensor:
    """The ``k`` smallest eigenvalues ``(B, k)`` of a batch of ``L_sym`` (no autograd)."""
    eigenvalues, _ = eigsh(L, k, **{"laplacian": True, **solver})  # L_sym of a null graph
    return eigenvalues


def _default_zero_tol(dtype: torch.dtype) -> float:
    # A tenth of sqrt(eps): 1.5e-9 in float64, 3.5e-5 in float32; below the lambda_2 of the
    # graphs the head builds (a uniform 4-neighbour 64 x 64 grid: (1 - cos(pi / 64)) / 2 = 6e-4),
    # above the solvers' error on the trivial zero.
    return 0.1 * torch.finfo(dtype).eps ** 0.5


def null_noise_edge(
    features: torch.Tensor,
    affinity: Callable[[torch.Tensor], torch.Tensor],
    *,
    null: str = "gaussian",
    num_samples: int = 4,
    num_eigenvalues: int = 4,
    bound: str = "t",
    miss_rate: float = 0.05,
    margin: float = 1.0,
    zero_tol: float | None = None,
    generator: torch.Generator | None = None,
    seed: int = 0,
    solver: dict[str, Any] | None = None,
    return_samples: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Noise edge per image from ``P`` null graphs (route (a) of the module docstring).

    Args:
        features: ``(B, C, H, W)`` (detached internally).
        affinity: ``(B', C, H, W) -> W (B', n, n)``, dense or sparse, e.g. a
            :class:`~cheeger.graph.GaussianAffinity`; the null graphs are built with it.
        null: ``"gaussian"`` or ``"pixels"`` (grid affinities only).
        num_samples: ``P >= 2`` null draws per image (all solved in one batched call).
        num_eigenvalues: eigenvalues per null graph (``>= 2``; more only help when the null
            graph can have several components).
        bound, miss_rate, margin: the prediction bound, see :func:`prediction_bound`.
        zero_tol: eigenvalues at or below it are trivial zeros; ``None``: ``0.1 sqrt(eps)``.
        generator: randomness; ``None``: a fresh generator seeded with ``seed`` on the
            features' device, so the edge is a deterministic function of the features.
        seed: seed of that generator.
        solver: extra :func:`cheeger.linalg.eigsh` keywords.
        return_samples: also return the null eigenvalues ``nu`` ``(P, B)``.

    Returns:
        ``edge (B,)`` (and ``nu (P, B)``), in the features' dtype.

    Example:
        >>> from cheeger.graph import GaussianAffinity
        >>> affinity = GaussianAffinity(4, 4, "grid", init_sigma=2.0).double()
        >>> edge = null_noise_edge(torch.randn(2, 4, 8, 8, dtype=torch.float64), affinity)
        >>> edge.shape, bool((edge > 0).all())
        (torch.Size([2]), True)
    """
    if num_samples < 2 or num_eigenvalues < 2 or not margin >= 0:
        raise ValueError(
            "null_noise_edge: need num_samples >= 2, num_eigenvalues >= 2 and margin >= 0, got "
            f"{num_samples}, {num_eigenvalues}, {margin}"
        )
    if bound not in BOUNDS or not 0.0 < miss_rate <= 0.5:
        raise ValueError(f"null_noise_edge: need bound in {BOUNDS} and 0 < miss_rate <= 1/2, got "
                         f"{bound!r}, {miss_rate}")  # fmt: skip
    if null == "pixels" and getattr(affinity, "neighbourhood", "grid") != "grid":
        raise ValueError("null_noise_edge: the 'pixels' null only relabels the nodes of a "
                         f"{affinity.neighbourhood!r} graph; use null='gaussian'")  # fmt: skip
    batch, _, height, width = features.shape
    if generator is None:
        generator = torch.Generator(device=features.device).manual_seed(seed)
    tol = _default_zero_tol(features.dtype) if zero_tol is None else zero_tol
    with torch.no_grad():
        drawn = null_features(features.detach(), null, num_samples, generator)  # (P, B, C, H, W)
        W = affinity(drawn.reshape(num_samples * batch, *drawn.shape[2:]))
        k = min(num_eigenvalues, height * width)
        lam = _bottom_eigenvalues(normalized_laplacian(W), k, solver or {})  # (P B, k)
        lam = lam.reshape(num_samples, batch, k)
        inf = torch.full_like(lam, float("inf"))
        nu = torch.where(lam > tol, lam, inf).amin(-1)  # (P, B): smallest non-trivial
        nu = torch.where(torch.isinf(nu), torch.zeros_like(nu), nu)  # all trivial: edge 0
        edge = prediction_bound(nu, bound, miss_rate, margin)  # (B,)
    return (edge, nu) if return_samples else edge


def analytic_noise_edge(
    points: torch.Tensor,
    sigma: torch.Tensor | float,
    *,
    order: int | None = None,
    tw_quantile: float = TW1_QUANTILE_99,
) -> torch.Tensor:
    """Random-matrix noise edge of ``L_sym`` for the dense Gaussian kernel (route (b)).

    Args:
        points: ``(B, n, d)`` metric-projected features ``A f_i`` (e.g.
            ``features.flatten(2).mT @ A.T``).
        sigma: the kernel bandwidth.
        order: Hermite blocks solved exactly (``None``: all; ``1``: the affine image of
            Marchenko-Pastur, see the module docstring).
        tw_quantile: margin in Tracy-Widom scales below the bulk edge.

    Returns:
        ``(B,)`` edges in ``[0, 2]``, in the points' dtype (computed in float64).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(1, 1025, 64, generator=g, dtype=torch.float64)
        >>> round(float(analytic_noise_edge(x, 8.0, order=1, tw_quantile=0.0)), 3)
        0.978
    """
    if points.dim() != 3:
        raise ValueError(f"analytic_noise_edge: points must be (B, n, d), got shape "
                         f"{tuple(points.shape)}")  # fmt: skip
    n = points.shape[1]
    with torch.no_grad():
        variance, projector = noise_span(points.detach().double(), tw_quantile=tw_quantile)
        # the kernel sees the noise in the span it was fitted in: its dimension, not d
        spans = projector.diagonal(dim1=-2, dim2=-1).sum(-1).round().clamp_min(1).long()
        if isinstance(sigma, torch.Tensor):
            sigma = sigma.detach().to(torch.float64).reshape(())
        edge = torch.zeros_like(variance)
        for d_eff in spans.unique().tolist():  # one kernel edge per span dimension
            rows = spans == d_eff
            bulk, tw_scale = kernel_bulk_edge(n, d_eff, variance[rows], sigma, order=order)
            edge[rows] = (1.0 - bulk - tw_quantile * tw_scale).clamp(0.0, 2.0)
    return edge.to(points.dtype)


def noise_floor(
    features: torch.Tensor,
    affinity: Callable[[torch.Tensor], torch.Tensor],
    num_eigenvalues: int = 4,
    *,
    method: str = "null",
    null: str = "gaussian",
    num_samples: int = 4,
    bound: str = "t",
    miss_rate: float = 0.05,
    margin: float = 1.0,
    order: int | None = None,
    tw_quantile: float = TW1_QUANTILE_99,
    zero_tol: float | None = None,
    generator: torch.Generator | None = None,
    seed: int = 0,
    solver: dict[str, Any] | None = None,
) -> torch.Tensor:
    """Noise edge ``(B,)`` of the graphs ``affinity`` builds on ``features``: noise is ``>= edge``.

    Args:
        features: ``(B, C, H, W)``, the affinity's input (detached: the edge is a constant).
        affinity: the graph builder, e.g. :class:`~cheeger.graph.GaussianAffinity`; for
            ``method="analytic"`` it must expose ``projection`` (``A``), ``sigma`` and
            ``neighbourhood == "dense"``.
        num_eigenvalues: eigenvalues per null graph (``method="null"``).
        method: ``"null"`` (route (a), any neighbourhood) or ``"analytic"`` (route (b), dense).
        null, num_samples, bound, miss_rate, margin, zero_tol, generator, seed, solver: see
            :func:`null_noise_edge`.
        order, tw_quantile: see :func:`analytic_noise_edge`.

    Returns:
        ``(B,)`` edges, in the features' dtype.

    Example:
        >>> from cheeger.graph import GaussianAffinity
        >>> affinity = GaussianAffinity(8, 8, "dense", init_sigma=4.0).double()
        >>> f = torch.randn(3, 8, 10, 10, dtype=torch.float64)
        >>> a, b = noise_floor(f, affinity), noise_floor(f, affinity, method="analytic")
        >>> bool(((a - b).abs() < 0.05).all())
        True
    """
    if method not in _METHODS:
        raise ValueError(f"noise_floor: method must be one of {_METHODS}, got {method!r}")
    if features.dim() != 4:
        raise ValueError(f"noise_floor: features must be (B, C, H, W), got shape "
                         f"{tuple(features.shape)}")  # fmt: skip
    if method == "null":
        return null_noise_edge(
            features, affinity, null=null, num_samples=num_samples,
            num_eigenvalues=num_eigenvalues, bound=bound, miss_rate=miss_rate, margin=margin,
            zero_tol=zero_tol,
            generator=generator, seed=seed, solver=solver,
        )  # fmt: skip
    if getattr(affinity, "neighbourhood", None) != "dense" or not hasattr(affinity, "projection"):
        raise ValueError(
            "noise_floor: method='analytic' holds for the dense Gaussian kernel only: affinity "
            "must have neighbourhood 'dense', a projection and a sigma (a "
            "cheeger.graph.GaussianAffinity); use method='null' otherwise"
        )
    with torch.no_grad():
        points = _points(features.detach()) @ affinity.projection.detach().mT  # (B, n, r)
    return analytic_noise_edge(points, affinity.sigma, order=order, tw_quantile=tw_quantile)


class NoiseFloor(nn.Module):
    """Module form of :func:`noise_floor`; the options are fixed at construction.

    Example:
        >>> from cheeger.graph import GaussianAffinity
        >>> floor = NoiseFloor(num_samples=3)
        >>> affinity = GaussianAffinity(4, 2, "knn", k=5, init_sigma=1.0)
        >>> floor(torch.randn(2, 4, 6, 6), affinity).shape
        torch.Size([2])
    """

    def __init__(self, num_eigenvalues: int = 4, **options: Any) -> None:
        super().__init__()
        unknown = set(options) - {
            "method", "null", "num_samples", "bound", "miss_rate", "margin", "order",
            "tw_quantile", "zero_tol", "seed", "solver",
        }  # fmt: skip
        if unknown:
            raise ValueError(f"NoiseFloor: unknown option(s) {sorted(unknown)}")
        if options.get("method", "null") not in _METHODS:
            raise ValueError(f"NoiseFloor: method must be one of {_METHODS}, got "
                             f"{options['method']!r}")  # fmt: skip
        if options.get("bound", "t") not in BOUNDS:
            raise ValueError(f"NoiseFloor: bound must be one of {BOUNDS}, got "
                             f"{options['bound']!r}")  # fmt: skip
        if options.get("null", "gaussian") not in NULLS:
            raise ValueError(f"NoiseFloor: null must be one of {NULLS}, got {options['null']!r}")
        self.num_eigenvalues, self.options = num_eigenvalues, options

    def forward(
        self, features: torch.Tensor, affinity: Callable[[torch.Tensor], torch.Tensor]
    ) -> torch.Tensor:
        """Edges ``(B,)`` for ``features`` ``(B, C, H, W)`` under ``affinity``."""
        return noise_floor(features, affinity, self.num_eigenvalues, **self.options)

    def extra_repr(self) -> str:
        options = ", ".join(f"{key}={value!r}" for key, value in sorted(self.options.items()))
        return f"num_eigenvalues={self.num_eigenvalues}" + (f", {options}" if options else "")
