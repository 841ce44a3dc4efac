"""Random-matrix pieces of the noise floor against sampled spectra (float64).

The route (b) claims: the Marchenko-Pastur edge and Tracy-Widom scale of white Wishart matrices;
a noise variance robust to spikes; the Mehler spectrum ``r^k`` of the degree-normalised Gaussian
kernel; the resulting ``L_sym`` noise edge against measured spectra; and the BBP transition of a
planted partition mapped through the same affine law.
"""

from __future__ import annotations

import math

import pytest
import torch

from cheeger.graph import gaussian_affinity, normalized_laplacian
from cheeger.spectral import (
    TW1_QUANTILE_99,
    analytic_noise_edge,
    kernel_bulk_edge,
    marchenko_pastur_edge,
    mehler_ratio,
    noise_variance,
    spike_detection_threshold,
    tracy_widom_scale,
)

F64 = torch.float64


def dense_lsym(points: torch.Tensor, sigma: float) -> torch.Tensor:
    """``L_sym`` of the dense Gaussian kernel (zero diagonal) on ``(B, n, d)`` points."""
    batch, n, d = points.shape
    features = points.mT.reshape(batch, d, n, 1)  # an n x 1 "image"
    W = gaussian_affinity(features, torch.eye(d, dtype=F64), sigma, "dense")
    return normalized_laplacian(W)


def gaussian(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=F64)


def test_wishart_top_eigenvalue_follows_the_edge_and_tracy_widom():
    n, d, reps = 257, 16, 400
    x = gaussian((reps, n, d), 0) * 1.5  # s^2 = 2.25
    x = x - x.mean(1, keepdim=True)
    top = torch.linalg.eigvalsh(x.mT @ x / (n - 1))[:, -1]  # (reps,)
    z = (top - marchenko_pastur_edge(2.25, n, d)) / tracy_widom_scale(2.25, n, d)
    assert -1.6 < float(z.mean()) < -0.8  # TW1 mean -1.21
    assert 0.9 < float(z.std()) < 1.6  # TW1 std 1.27
    assert float((z > TW1_QUANTILE_99).double().mean()) < 0.03  # 1% nominal


def test_noise_variance_is_the_trace_without_spikes_and_ignores_them_with():
    x = gaussian((3, 800, 24), 1) * 0.5
    centred = x - x.mean(1, keepdim=True)
    trace = centred.square().sum((1, 2)) / (799 * 24)
    torch.testing.assert_close(noise_variance(x), trace)
    spiked = x.clone()
    spiked[..., :3] += 4.0 * gaussian((3, 800, 3), 2)  # three strong directions
    assert bool((spiked.var(1).mean(1) > 1.5).all())
    torch.testing.assert_close(noise_variance(spiked), torch.full((3,), 0.25, dtype=F64),
                               rtol=0.05, atol=0.0)  # fmt: skip


def test_noise_variance_of_points_in_a_subspace_is_fitted_in_their_span():
    # a 16-channel embedding of 8 channels: half the covariance spectrum is rounding-level
    # (~1e-17, of either sign), which once made the estimate negative and the null model NaN
    low = gaussian((4, 690, 8), 3) * 0.5
    isometry = torch.linalg.qr(gaussian((16, 8), 4))[0]  # (16, 8) orthonormal columns
    points = (low @ isometry.T).float().double()  # rank 8 in 16 dimensions, float32 rounding
    expected = noise_variance(low)  # the same spectrum without the null space
    variance = noise_variance(points)
    assert bool((variance > 0).all())
    torch.testing.assert_close(variance, expected, rtol=1e-4, atol=0.0)
    constant = torch.ones(2, 50, 16, dtype=F64) + 1e-9 * gaussian((2, 50, 16), 5)
    assert bool((noise_variance(constant) >= 0).all())
    assert noise_variance(torch.ones(2, 50, 16, dtype=F64)).tolist() == [0.0, 0.0]


def test_spike_detection_threshold_reduces_to_bbp():
    assert spike_detection_threshold(1025, 64, 0.0) == pytest.approx(0.25)
    assert spike_detection_threshold(401, 100, 0.0) == pytest.approx(0.5)
    loose, strict = (spike_detection_threshold(1025, 64, q) for q in (1.0, 3.0))
    assert 0.25 < loose < strict


@pytest.mark.parametrize("d", [1, 2])
def test_degree_normalised_kernel_has_the_mehler_spectrum(d):
    # N = D^-1/2 W D^-1/2 of N(0, I) points: eigenvalues 1, then r^k with multiplicity
    # C(d+k-1, k), r = s^2 / (sigma^2 + s^2) = 1/2 here; for small d these are isolated.
    n = 1200
    L = dense_lsym(gaussian((1, n, d), 3 + d), 1.0)
    r = float(mehler_ratio(torch.tensor(1.0, dtype=F64), 1.0))
    expected = torch.tensor([1.0] + [r] * d + [r**2] * (d * (d + 1) // 2), dtype=F64)
    top = 1.0 - torch.linalg.eigvalsh(L)[0, : len(expected)]  # descending eigenvalues of N
    torch.testing.assert_close(top, expected, atol=0.04, rtol=0.0)


def test_first_order_edge_is_the_affine_image_of_marchenko_pastur():
    n, d, sigma = 1025, 64, 8.0
    s2 = torch.tensor([1.0, 0.5, 2.0], dtype=F64)
    bulk, tw_scale = kernel_bulk_edge(n, d, s2, sigma, order=1)
    a = 1.0 / (sigma**2 + s2)
    r = s2 * a
    lambda_plus = marchenko_pastur_edge(s2, n, d)  # the design's edge, feature covariance
    b = -(1.0 + d * r) / (n - 1)
    torch.testing.assert_close(1.0 - bulk, 1.0 - a * lambda_plus - b)
    torch.testing.assert_close(tw_scale, a * tracy_widom_scale(s2, n, d))  # Johnstone, mapped
    assert 1.0 - float(bulk[0]) == pytest.approx(0.978, abs=5e-4)  # the measured bottom
    # the full Hermite sum differs from the linear block by a fraction of a TW scale here
    full, _ = kernel_bulk_edge(n, d, s2, sigma)
    assert bool(((full - bulk).abs() < 0.5 * tw_scale).all())


REGIMES = [  # n, d, sigma^2: sigma^2 from d s^2 down to d s^2 / 4, and sigma = s at d = 4
    (1024, 64, 64.0),
    (512, 32, 8.0),
    (400, 4, 1.0),
    (256, 16, 16.0),
]


@pytest.mark.parametrize(("n", "d", "sigma2"), REGIMES)
def test_analytic_edge_against_measured_spectra(n, d, sigma2):
    points = gaussian((4, n, d), n + d)
    sigma = math.sqrt(sigma2)
    lam = torch.linalg.eigvalsh(dense_lsym(points, sigma))  # (B, n)
    edge = analytic_noise_edge(points, sigma)  # (B,)
    bottom = lam[:, 1:17]
    assert float((bottom >= edge[:, None]).double().mean()) >= 0.95
    bulk, tw_scale = kernel_bulk_edge(n, d, noise_variance(points), sigma)
    z = ((1.0 - bulk) - lam[:, 1]) / tw_scale  # lambda_2 against the bulk edge, TW units
    assert bool((z > -6.0).all()), "edge far below lambda_2: the prediction is not sharp"
    assert bool((z < TW1_QUANTILE_99).all())
    linear, _ = kernel_bulk_edge(n, d, noise_variance(points), sigma, order=1)
    assert bool(((linear - bulk).abs() < 0.5 * tw_scale).all())  # the affine MP image suffices
    # the flat part: n - d - 1 eigenvalues at 1 + (1 + d r) / (n - 1) (k >= 2 blocks ~ identity)
    if n > 4 * d:
        r = sigma2 ** -1 / (1 + sigma2 ** -1)
        flat = 1.0 + (1.0 + d * r) / (n - 1)
        assert float((lam.median(1).values - flat).abs().max()) < 0.25 * (1.0 - float(edge[0]))


def test_planted_partition_bbp_transition_dense():
    n, d, sigma2 = 1024, 64, 64.0
    gamma = d / (n - 1)
    threshold = spike_detection_threshold(n, d)  # ~1.5 BBP's sqrt(gamma) = 0.25
    label = torch.arange(n) % 2

    def planted(ell: float, seed: int) -> torch.Tensor:
        # two regions, means a e_1 and a e_2: between-region variance l = a^2 / 2 on one axis
        means = torch.zeros(2, d, dtype=F64)
        means[0, 0] = means[1, 1] = math.sqrt(2.0 * ell)
        return gaussian((4, n, d), seed) + means[label]

    detected = {}
    for ell in (0.5 * math.sqrt(gamma), 2.0 * threshold, 4.0 * threshold):
        points = planted(ell, seed=int(100 * ell))
        lam2 = torch.linalg.eigvalsh(dense_lsym(points, 8.0))[:, 1]
        detected[ell] = int((lam2 < analytic_noise_edge(points, 8.0)).sum())
        if ell > math.sqrt(gamma):  # BBP: spike (1 + l)(1 + gamma / l), same affine map
            r = 1.0 / (sigma2 + 1.0)
            predicted = 1.0 - r * (1.0 + ell) * (1.0 + gamma / ell) + (1.0 + d * r) / (n - 1)
            assert float((lam2 - predicted).abs().max()) < 0.1 * (1.0 - predicted)
    below, above, far = detected.values()
    assert (below, above, far) == (0, 4, 4), detected


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match=r"\(B, n, d\)"):
        noise_variance(torch.zeros(5, 3))
    with pytest.raises(ValueError, match="order"):
        kernel_bulk_edge(100, 4, torch.ones(1, dtype=F64), 1.0, order=0)
    with pytest.raises(ValueError, match="n >= 3"):
        kernel_bulk_edge(2, 4, torch.ones(1, dtype=F64), 1.0)
