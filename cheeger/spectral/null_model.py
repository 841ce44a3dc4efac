"""The null model of the noise edge: structure-free features and a bound for one new draw.

:func:`null_features` draws structure-free versions of a batch of feature maps; the noise edge
(:func:`cheeger.spectral.noise.null_noise_edge`) builds their graphs and bounds the smallest
non-trivial eigenvalue ``nu`` of one new null draw from below with :func:`prediction_bound`
(the ``"t"`` and ``"range"`` rules: :mod:`cheeger.spectral.noise`).

Two nulls:

* ``"gaussian"`` (default): ``f_i = mean + s N(0, I_C)`` with the robust noise variance ``s^2``
  of the raw features: the isotropic-noise null of Marchenko-Pastur, valid for grid, kNN and
  dense graphs, and unaffected by how strong the signal is.
* ``"pixels"``: the same features at randomly permuted pixels (grid only: for kNN and dense graphs
  a permutation only relabels the nodes, the null is the graph itself). Weights become i.i.d.
  across edges, but strongly clustered features then yield a fragmented null graph (bond
  percolation with probability ``~1/r`` for ``r`` balanced regions) whose ``lambda_2`` collapses
  with the signal. Measured (two stripes, means 10 noise std apart, 16 x 16 grid): the pixel
  null's edge falls from ~9e-3 to ~1e-4 or 0, below the informative ``lambda_2 ~ 2.5e-4``, while
  the Gaussian null's moves by < 0.5%. Kept for the ablation; prefer ``"gaussian"``.

Example:
    >>> f = torch.randn(2, 3, 4, 4)
    >>> null_features(f, "gaussian", 4).shape
    torch.Size([4, 2, 3, 4, 4])
"""

from __future__ import annotations

import bisect
import functools
import itertools
import math

import torch

from cheeger.spectral.marchenko_pastur import noise_span

__all__ = ["BOUNDS", "NULLS", "null_features", "prediction_bound", "student_t_quantile"]

NULLS = ("gaussian", "pixels")
BOUNDS = ("t", "range")


@functools.lru_cache(maxsize=64)
def student_t_quantile(q: float, dof: int, points: int = 20001) -> float:
    """The ``q`` quantile (``1/2 <= q < 1``) of Student's t with ``dof`` degrees of freedom.

    With ``t = sqrt(dof) tan(theta)`` the density of ``theta`` on ``(-pi/2, pi/2)`` is
    ``cos(theta)^(dof - 1)`` up to a constant, smooth and bounded: its cumulative trapezoid on a
    uniform grid is inverted by linear interpolation (agrees with scipy to 1e-6 relative for
    ``dof`` 1..30, ``q`` 0.9..0.99: ``tests/spectral/test_noise.py``).

    Example:
        >>> round(student_t_quantile(0.95, 1), 3)  # Cauchy: tan(0.45 pi)
        6.314
    """
    if not 0.5 <= q < 1.0 or dof < 1:
        raise ValueError(f"student_t_quantile: need 1/2 <= q < 1 and dof >= 1, got {q}, {dof}")
    step = (math.pi / 2) / (points - 1)
    density = [math.cos(i * step) ** (dof - 1) for i in range(points)]
    cumulative = [0.0]
    for a, b in itertools.pairwise(density):
        cumulative.append(cumulative[-1] + 0.5 * (a + b) * step)
    target = (2 * q - 1) * cumulative[-1]  # P(0 < T < t) = q - 1/2 of the half mass 1/2
    i = bisect.bisect_left(cumulative, target)
    lo, hi = cumulative[i - 1], cumulative[i]
    theta = (i - 1 + (target - lo) / (hi - lo)) * step
    return math.sqrt(dof) * math.tan(theta)


def prediction_bound(
    nu: torch.Tensor, bound: str = "t", miss_rate: float = 0.05, margin: float = 1.0
) -> torch.Tensor:
    """Lower prediction bound ``(...)`` for one new draw from samples ``nu (P, ...)``.

    Args:
        nu: ``(P, ...)`` samples, ``P >= 2``.
        bound: ``"t"`` (Gaussian prediction bound at ``miss_rate``) or ``"range"``
            (``min - margin (max - min)``); see :mod:`cheeger.spectral.noise`.
        miss_rate: ``"t"``: the probability that a new Gaussian draw falls below the bound.
        margin: ``"range"``: in units of the sample range.

    Returns:
        ``(...)``, clamped at 0.

    Example:
        >>> nu = torch.tensor([[1.0], [2.0], [3.0]], dtype=torch.float64)
        >>> prediction_bound(nu, "range", margin=0.25).tolist()
        [0.5]
    """
    if bound not in BOUNDS:
        raise ValueError(f"prediction_bound: bound must be one of {BOUNDS}, got {bound!r}")
    if nu.shape[0] < 2:
        raise ValueError(f"prediction_bound: need >= 2 samples, got {nu.shape[0]}")
    if bound == "range":
        low, high = nu.amin(0), nu.amax(0)
        return (low - margin * (high - low)).clamp_min(0.0)
    if not 0.0 < miss_rate <= 0.5:
        raise ValueError(f"prediction_bound: miss_rate must be in (0, 1/2], got {miss_rate}")
    p = nu.shape[0]
    t = student_t_quantile(1.0 - miss_rate, p - 1)
    return (nu.mean(0) - t * nu.std(0) * math.sqrt(1.0 + 1.0 / p)).clamp_min(0.0)


def _points(features: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W)`` -> ``(B, n, C)``, node ``y * W + x``."""
    return features.flatten(2).mT


def null_features(
    features: torch.Tensor,
    null: str = "gaussian",
    num_samples: int = 4,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Structure-free versions of a batch of feature maps.

    Args:
        features: ``(B, C, H, W)``.
        null: ``"gaussian"`` (per image: channel means plus isotropic Gaussian noise of the robust
            noise variance, in the span of the features, see
            :func:`~cheeger.spectral.marchenko_pastur.noise_span`) or ``"pixels"`` (the same
            pixels, randomly permuted per image).
        num_samples: ``P`` draws per image.
        generator: source of randomness (on ``features.device``); ``None``: the global one.

    Returns:
        ``(P, B, C, H, W)``.

    Example:
        >>> f = torch.randn(2, 3, 4, 4)
        >>> g = torch.Generator().manual_seed(0)
        >>> null_features(f, "pixels", 5, g).shape
        torch.Size([5, 2, 3, 4, 4])
    """
    if features.dim() != 4:
        raise ValueError(f"null_features: features must be (B, C, H, W), got shape "
                         f"{tuple(features.shape)}")  # fmt: skip
    if null not in NULLS:
        raise ValueError(f"null_features: null must be one of {NULLS}, got {null!r}")
    if num_samples < 1:
        raise ValueError(f"null_features: num_samples must be >= 1, got {num_samples}")
    batch, channels, height, width = features.shape
    n = height * width
    like = {"device": features.device, "dtype": features.dtype}
    if null == "pixels":
        keys = torch.rand(num_samples, batch, n, generator=generator, **like)
        order = keys.argsort(-1)[:, :, None, :].expand(-1, -1, channels, -1)  # (P, B, C, n)
        flat = features.flatten(2).expand(num_samples, -1, -1, -1)  # (P, B, C, n)
        return flat.gather(-1, order).reshape(num_samples, *features.shape)
    variance, projector = noise_span(_points(features).double())  # (B,), (B, C, C)
    scale = variance.sqrt().to(features.dtype)
    mean = features.mean((2, 3), keepdim=True)  # (B, C, 1, 1)
    noise = torch.randn(num_samples, *features.shape, generator=generator, **like)
    # drawn in the span the variance was fitted in: a rank-deficient embedding (fewer input
    # channels than C) has no spread outside it, and its null graphs must not have it either
    # (full-rank features keep their draws exactly: the projector is then the identity)
    full = projector.diagonal(dim1=-2, dim2=-1).sum(-1).round() == channels  # (B,)
    if not bool(full.all()):
        noise = torch.einsum("bcd,pbdhw->pbchw", projector.to(features.dtype), noise)
    return mean + scale[:, None, None, None] * noise
