r"""Random-matrix edges: Marchenko-Pastur, its kernel version for ``L_sym``, and the noise level.

Three pieces the noise floor (:mod:`cheeger.spectral.noise`) is built from; the derivation of the
kernel edge is in that module's docstring. Notation: ``n`` samples (graph nodes) of ``d``-dim
noise ``x_i ~ N(mu, s^2 I_d)`` (the metric-projected features ``A f_i``), Gaussian bandwidth
``sigma``, ``m = n - 1`` (centred covariances, and the ``n - 1`` neighbours of a node).

* :func:`marchenko_pastur_edge`: ``s^2 (1 + sqrt(d / m))^2``, the top of the noise bulk of the
  feature covariance (the design's formula), with the Tracy-Widom scale of its largest eigenvalue
  (Johnstone 2001), :func:`tracy_widom_scale`.
* :func:`noise_variance`: ``s^2`` estimated robustly: the mean of the sample-covariance eigenvalues
  inside the predicted bulk, iterated from the plain ``trace / d``; signal spikes above the edge
  (e.g. ``r - 1`` of them for ``r`` planted regions) do not inflate it.
* :func:`kernel_bulk_edge`: the top of the noise bulk of ``D^{-1/2} W D^{-1/2}`` for the dense
  Gaussian kernel (zero diagonal), from the Mehler spectrum ``r^k`` (multiplicity
  ``C(d + k - 1, k)``), ``r = s^2 / (sigma^2 + s^2)``, of the degree-normalised kernel and the
  generalised Marchenko-Pastur law (Silverstein-Bai) of the matching Gram matrix.

Everything here runs without autograd on small ``(B,)`` / ``(B, d)`` tensors; scalars stay on the
inputs' device and dtype (float64 recommended: the sums span many decades).
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "TW1_QUANTILE_99",
    "kernel_bulk_edge",
    "marchenko_pastur_edge",
    "mehler_ratio",
    "noise_span",
    "noise_variance",
    "spike_detection_threshold",
    "tracy_widom_scale",
]

#: 99% quantile of the Tracy-Widom GOE law TW1 (largest eigenvalue of a real Wishart matrix).
TW1_QUANTILE_99 = 2.0234

_BISECTION_STEPS = 200
_RANK_RTOL = 1e-8  # covariance eigenvalues below this share of the largest: null space


def marchenko_pastur_edge(variance: torch.Tensor | float, n: int, d: int) -> torch.Tensor:
    """Upper edge ``s^2 (1 + sqrt(d / (n - 1)))^2`` of the sample covariance of centred noise.

    Args:
        variance: ``s^2``, a float or a tensor ``(B,)``.
        n: samples (the covariance is centred: ``n - 1`` degrees of freedom).
        d: dimension.

    Returns:
        Same shape as ``variance`` (a 0-d tensor for a float).

    Example:
        >>> float(marchenko_pastur_edge(1.0, 1025, 64))
        1.5625
    """
    ratio = d / (n - 1)
    return torch.as_tensor(variance) * (1.0 + math.sqrt(ratio)) ** 2


def tracy_widom_scale(variance: torch.Tensor | float, n: int, d: int) -> torch.Tensor:
    """Scale of the largest sample-covariance eigenvalue's fluctuation around the MP edge.

    Johnstone (2001): ``lambda_max ~ edge + scale * TW1`` with
    ``scale = s^2 (sqrt(m) + sqrt(d)) (1 / sqrt(m) + 1 / sqrt(d))^{1/3} / m``, ``m = n - 1``.

    Args:
        variance: ``s^2``, a float or a tensor ``(B,)``.
        n: samples; d: dimension.

    Returns:
        Same shape as ``variance``.

    Example:
        >>> round(float(tracy_widom_scale(1.0, 1025, 64)), 5)
        0.02104
    """
    m = n - 1
    factor = (math.sqrt(m) + math.sqrt(d)) * (1 / math.sqrt(m) + 1 / math.sqrt(d)) ** (1 / 3) / m
    return torch.as_tensor(variance) * factor


def noise_variance(
    points: torch.Tensor, *, tw_quantile: float = TW1_QUANTILE_99, iterations: int = 8
) -> torch.Tensor:
    """Noise variance ``s^2`` per sample set, robust to a few signal directions.

    Fixed point of ``s^2 = mean{ mu_j : mu_j <= edge(s^2) }`` over the eigenvalues ``mu_j`` of
    the centred sample covariance, ``edge = MP edge + tw_quantile * TW scale``, started from
    their mean. Without spikes nothing is trimmed and this is that mean; a spike above the
    bulk is excluded (its bulk share biases the estimate low by ``O(d / n)`` per spike).

    Args:
        points: ``(B, n, d)`` samples (nodes by channels).
        tw_quantile: the trimming margin in Tracy-Widom scales.
        iterations: fixed-point steps (each is a masked mean; convergence is in 2-3).

    Returns:
        ``(B,)`` variances, never negative (0 for constant points). Eigenvalues below
        ``1e-8`` of the largest are the points' null space, not noise: the bulk is fitted in the
        span of the rest, with its dimension (:func:`noise_span` gives that span).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(1, 2000, 20, generator=g, dtype=torch.float64)
        >>> x[..., 0] += 6.0 * torch.randn(1, 2000, generator=g, dtype=torch.float64)  # a spike
        >>> round(float(noise_variance(x)), 1), round(float(x.var(1).mean()), 1)
        (1.0, 2.7)
    """
    return noise_span(points, tw_quantile=tw_quantile, iterations=iterations)[0]


def noise_span(
    points: torch.Tensor, *, tw_quantile: float = TW1_QUANTILE_99, iterations: int = 8
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`noise_variance` and the orthogonal projector onto the span it was fitted in.

    Points in a lower-dimensional subspace (a ``d``-channel embedding of fewer input channels)
    have a null space of rounding-level covariance eigenvalues: noise of the same kind lives in
    the span, so a null model draws it there (isotropic noise in all ``d`` channels would add
    ``d - d_eff`` dimensions of spread the points never have).

    Args:
        points: ``(B, n, d)`` samples.
        tw_quantile, iterations: as for :func:`noise_variance`.

    Returns:
        ``(variance (B,), projector (B, d, d))``.

    Example:
        >>> x = torch.randn(1, 500, 2, dtype=torch.float64) @ torch.randn(2, 5, dtype=torch.float64)
        >>> variance, projector = noise_span(x)
        >>> round(float(torch.linalg.matrix_rank(projector[0])))
        2
    """
    if points.dim() != 3 or points.shape[-2] < 2:
        raise ValueError(f"noise_variance: points must be (B, n, d) with n >= 2, got shape "
                         f"{tuple(points.shape)}")  # fmt: skip
    n = points.shape[-2]
    centred = points - points.mean(-2, keepdim=True)
    eigenvalues, vectors = torch.linalg.eigh(centred.mT @ centred / (n - 1))  # (B, d) ascending
    null = eigenvalues <= _RANK_RTOL * eigenvalues[:, -1:].clamp_min(0.0)  # (B, d)
    projector = (vectors * ~null[:, None, :]) @ vectors.mT  # (B, d, d)
    variances = []
    for values, empty in zip(eigenvalues, null, strict=True):
        span = values[~empty]  # (d_eff,); all-null: constant points, variance 0
        variance = span.mean() if len(span) else values.new_zeros(())
        for _ in range(iterations if len(span) else 0):
            upper = marchenko_pastur_edge(variance, n, len(span)) + tw_quantile * (
                tracy_widom_scale(variance, n, len(span))
            )
            keep = (span <= upper).to(span.dtype)
            variance = (span * keep).sum() / keep.sum().clamp_min(1.0)
        variances.append(variance)
    variance = torch.stack(variances) if variances else eigenvalues.new_zeros(0)
    return variance.clamp_min(0.0), projector


def spike_detection_threshold(n: int, d: int, tw_quantile: float = TW1_QUANTILE_99) -> float:
    """Smallest spike ``l / s^2`` whose sample eigenvalue clears the edge plus the margin.

    A population spike ``s^2 + l`` (e.g. the between-region variance of a planted partition)
    gives a sample eigenvalue ``(s^2 + l)(1 + gamma s^2 / l)`` once ``l > s^2 sqrt(gamma)``
    (Baik, Ben Arous, Peche 2005; ``gamma = d / (n - 1)``). Setting it equal to the MP edge plus
    ``tw_quantile`` Tracy-Widom scales and solving ``l + gamma / l = E - 1 - gamma`` (units of
    ``s^2``) gives the finite-``n`` threshold; ``tw_quantile = 0`` returns BBP's ``sqrt(gamma)``.

    Example:
        >>> spike_detection_threshold(1025, 64, 0.0), round(spike_detection_threshold(1025, 64), 3)
        (0.25, 0.377)
    """
    gamma = d / (n - 1)
    excess = float(marchenko_pastur_edge(1.0, n, d) + tw_quantile * tracy_widom_scale(1.0, n, d))
    excess -= 1.0 + gamma  # l + gamma / l = excess, larger root
    return 0.5 * (excess + math.sqrt(max(excess**2 - 4.0 * gamma, 0.0)))


def mehler_ratio(variance: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
    """``r = s^2 / (sigma^2 + s^2)``: the degree-normalised Gaussian kernel's spectral ratio.

    Under ``x ~ N(mu, s^2 I_d)``, ``k(x, y) / sqrt(q(x) q(y))`` with ``q(x) = E_y k(x, y)`` is a
    Mehler kernel whose eigenvalues are ``r^{|alpha|}`` (Hermite multi-index ``alpha``).

    Example:
        >>> float(mehler_ratio(torch.tensor(1.0), 1.0))
        0.5
    """
    return variance / (torch.as_tensor(sigma, dtype=variance.dtype) ** 2 + variance)


def _blocks(r: torch.Tensor, n: int, d: int, order: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Population eigenvalues ``t_k = r^k`` ``(B, K)`` and weights ``C(d+k-1, k) / (n-1)``."""
    k = torch.arange(1, order + 1, dtype=r.dtype, device=r.device)  # (K,)
    log_mult = torch.lgamma(d + k) - torch.lgamma(k + 1) - math.lgamma(d)  # (K,)
    t = torch.exp(k * torch.log(r)[:, None])  # (B, K)
    return t, torch.exp(log_mult) / (n - 1)


def kernel_bulk_edge(
    n: int,
    d: int,
    variance: torch.Tensor,
    sigma: torch.Tensor | float,
    *,
    order: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top of the noise bulk of ``D^{-1/2} W D^{-1/2}`` (dense Gaussian kernel, zero diagonal).

    ``L_sym``'s noise edge is one minus this. With ``t_k = r^k``, ``w_k = C(d+k-1, k) / (n-1)``
    for the Hermite blocks ``k = 1..K`` and the companion Stieltjes inverse
    ``z(m) = -1/m + sum_k w_k t_k / (1 + t_k m)``, the bulk edge of the Gram part is
    ``z_+ = min_{m in (-1/r, 0)} z(m)``; blocks above ``K`` enter as their trace (they are
    multiples of the identity up to ``O(sqrt(n / C(d+k-1, k)))``) and the zero diagonal removes
    the whole trace ``(1 - r)^{-d} / (n - 1)``:

    ``edge = z_+ + (sum_{k>K} C(d+k-1,k) r^k - (1 - r)^{-d}) / (n - 1)``.

    ``order=1`` is the affine image of Marchenko-Pastur:
    ``edge = r (1 + sqrt(d / (n-1)))^2 - (1 + d r) / (n - 1)``, i.e. ``a * lambda_+ + b`` with
    ``a = 1 / (sigma^2 + s^2)`` and ``lambda_+ = s^2 (1 + sqrt(d/(n-1)))^2``.

    Args:
        n: nodes; d: dimension of the (projected) features.
        variance: ``s^2``, ``(B,)``.
        sigma: bandwidth (float or 0-d tensor).
        order: ``K``, the Hermite blocks treated by the Silverstein equation; ``None`` means all
            that matter (until ``w_k t_k`` falls below ``1e-14`` of the trace, at most 256).

    Returns:
        ``(edge (B,), tw_scale (B,))``: the bulk edge and the Tracy-Widom scale of the top bulk
        eigenvalue, ``(z''(m_c) / 2)^{1/3} (n - 1)^{-2/3}`` (the square-root edge of the density).

    Example:
        >>> e, tw = kernel_bulk_edge(1025, 64, torch.tensor([1.0], dtype=torch.float64), 8.0)
        >>> round(1 - float(e), 4)  # the L_sym noise edge: measured lambda_2 ~ 0.978
        0.9779
    """
    if n < 3 or d < 1:
        raise ValueError(f"kernel_bulk_edge: need n >= 3 and d >= 1, got n={n}, d={d}")
    variance = torch.as_tensor(variance)
    if variance.dim() != 1:
        raise ValueError(f"kernel_bulk_edge: variance must be (B,), got {tuple(variance.shape)}")
    r = mehler_ratio(variance, sigma)  # (B,)
    log_trace = -d * torch.log1p(-r)  # log (1 - r)^{-d} = log sum_k C(d+k-1,k) r^k
    if order is None:
        t, w = _blocks(r, n, d, 256)
        significant = (torch.log(w) + torch.log(t)) > (log_trace - math.log(n - 1))[:, None] - 32
        order = max(1, int(significant.any(0).nonzero().max()) + 1) if significant.any() else 1
    if order < 1:
        raise ValueError(f"kernel_bulk_edge: order must be None or >= 1, got {order}")
    t, w = _blocks(r, n, d, order)  # (B, K), (K,)

    def dz(m: torch.Tensor) -> torch.Tensor:
        return 1.0 / m**2 - (w * t**2 / (1.0 + t * m[:, None]) ** 2).sum(-1)

    # z is convex on (-1/r, 0): dz < 0 at the left end, > 0 at the right; bisect u = -m r.
    lo, hi = torch.zeros_like(r), torch.ones_like(r)
    for _ in range(_BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        left = dz(-mid / r) > 0  # slope still positive: the minimum is further left
        lo, hi = torch.where(left, mid, lo), torch.where(left, hi, mid)
    m = -0.5 * (lo + hi) / r  # (B,)
    z = -1.0 / m + (w * t / (1.0 + t * m[:, None])).sum(-1)
    d2z = -2.0 / m**3 + 2.0 * (w * t**3 / (1.0 + t * m[:, None]) ** 3).sum(-1)
    # + trace of the blocks above K - the whole trace (zero diagonal) = -(1 + trace of 1..K)
    edge = z - (1.0 + (n - 1) * (w * t).sum(-1)) / (n - 1)
    tw_scale = (d2z / 2.0) ** (1.0 / 3.0) * (n - 1) ** (-2.0 / 3.0)
    return edge, tw_scale
