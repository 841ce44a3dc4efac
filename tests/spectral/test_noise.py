"""The noise floor on real graphs (cheeger.graph + cheeger.linalg.eigsh), float64.

Null tests: structure-free features put (almost) all bottom eigenvalues in the noise region.
Planted partitions (``r`` regions, means ``a e_c``, unit noise, ``C = 16``, ``sigma^2 = C``,
16 x 16 maps): above the detection threshold the ``r - 1`` informative eigenvalues fall below
the edge, well below it they do not. Thresholds observed in a sweep (8 images per point; first
amplitude where every image is detected): grid r=2: 5 (none at 3), grid r=4: 8 (none at 6),
kNN r=2: 1.5 (none at 1), kNN r=4: 3 (1/8 at 2), dense r=2: 1.5 (4/8 at 1), dense r=4: 2 (none
at 1.5). The tests sit well on either side.
"""

from __future__ import annotations

import pytest
import torch

from cheeger.spectral import (
    NoiseFloor,
    analytic_noise_edge,
    kernel_bulk_edge,
    noise_floor,
    noise_variance,
    null_features,
    null_noise_edge,
    prediction_bound,
    student_t_quantile,
)

CHANNELS, SIDE, SIGMA, BATCH, K = 16, 16, 4.0, 8, 8

NEIGHBOURHOODS = {
    "grid4": ("grid", {}),
    "grid8": ("grid", {"grid_norm": "chebyshev"}),
    "knn": ("knn", {"k": 10}),
    "dense": ("dense", {}),
}


@pytest.mark.parametrize("name", sorted(NEIGHBOURHOODS))
def test_structure_free_spectrum_lies_in_the_noise_region(name, planted, make_affinity, spectrum):
    kind, options = NEIGHBOURHOODS[name]
    affinity = make_affinity(kind, CHANNELS, SIGMA, **options)
    features = planted(BATCH, CHANNELS, SIDE, 2, 0.0, seed=1)
    lam = spectrum(affinity, features, K)[:, 1:]  # (B, K - 1): the trivial zero excluded
    edge = noise_floor(features, affinity)
    inside = (lam >= edge[:, None]).double().mean()
    assert inside >= 0.95, f"{name}: only {inside:.3f} of the bottom eigenvalues above the edge"
    # the edge is informative, not a trivial bound: it sits just below the null's lambda_2
    assert bool((edge > 0.5 * lam[:, 0]).all())


CASES = [  # neighbourhood, regions, amplitude well above / well below the observed threshold
    ("grid4", 2, 8.0, 2.0),
    ("grid4", 4, 12.0, 2.0),
    ("knn", 2, 3.0, 0.6),
    ("knn", 4, 6.0, 1.0),
    ("dense", 2, 3.0, 0.5),
    ("dense", 4, 4.0, 0.8),
]


@pytest.mark.parametrize(("name", "regions", "above", "below"), CASES)
def test_planted_partition_detection(name, regions, above, below, planted, make_affinity, spectrum):
    kind, options = NEIGHBOURHOODS[name]
    affinity = make_affinity(kind, CHANNELS, SIGMA, **options)
    detected = {}
    for amplitude in (above, below):
        features = planted(BATCH, CHANNELS, SIDE, regions, amplitude, seed=2)
        lam = spectrum(affinity, features, K)
        edge = noise_floor(features, affinity)
        informative = lam[:, 1:regions]  # (B, r - 1)
        detected[amplitude] = int((informative < edge[:, None]).all(1).sum())
        if amplitude == above:  # the rest of the bottom spectrum stays noise
            rest = lam[:, regions:]
            assert (rest >= edge[:, None]).double().mean() >= 0.9
    assert detected[above] == BATCH, f"{name} r={regions} a={above}: {detected}"
    assert detected[below] <= 1, f"{name} r={regions} a={below}: {detected}"


def test_gaussian_null_is_stable_where_the_pixel_null_collapses(planted, make_affinity, spectrum):
    # Strongly clustered features at shuffled pixels fragment the grid (bond percolation at
    # p ~ 1/2 for two regions): the pixel null's lambda_2 collapses with the signal and swallows
    # the informative eigenvalue; the Gaussian null does not see the signal at all.
    affinity = make_affinity("grid", CHANNELS, SIGMA)
    weak, strong = (planted(BATCH, CHANNELS, SIDE, 2, a, seed=3) for a in (0.0, 10.0))
    lam = spectrum(affinity, strong, 2)[:, 1]
    gaussian_weak, gaussian_strong = (noise_floor(f, affinity) for f in (weak, strong))
    pixels_weak, pixels_strong = (noise_floor(f, affinity, null="pixels") for f in (weak, strong))
    torch.testing.assert_close(gaussian_strong, gaussian_weak, rtol=0.05, atol=0.0)
    assert bool((pixels_strong < 0.5 * pixels_weak).all())
    assert bool((lam < gaussian_strong).all())
    assert int((lam < pixels_strong).sum()) <= BATCH // 2


def test_null_and_analytic_routes_agree_on_dense_graphs(planted, make_affinity):
    affinity = make_affinity("dense", CHANNELS, SIGMA)
    features = planted(BATCH, CHANNELS, SIDE, 2, 0.0, seed=4)
    null_edge, nu = null_noise_edge(features, affinity, return_samples=True)  # nu: (P, B)
    # the same miss rate on both routes: the null's default 5% bound against the analytic edge
    # 0.98 Tracy-Widom scales below the bulk (the 95% quantile of TW1)
    analytic = noise_floor(features, affinity, method="analytic", tw_quantile=0.98)
    points = features.flatten(2).mT
    variance = noise_variance(points)
    bulk, tw_scale = kernel_bulk_edge(SIDE**2, CHANNELS, variance, SIGMA)  # (B,), (B,)
    # the null's lambda_2 draws sit where random-matrix theory puts the top of the bulk: in
    # Tracy-Widom units their offset has the TW1 mean (-1.21) up to finite-n corrections
    z = ((1.0 - bulk) - nu) / tw_scale
    assert -3.5 < float(z.mean()) < 0.0, z
    assert bool((z < 3.0).all())
    # and the two edges agree: on average within one TW scale, per image within four
    assert float((null_edge - analytic).mean().abs()) < float(tw_scale.mean())
    assert bool(((null_edge - analytic).abs() < 4 * tw_scale).all())
    torch.testing.assert_close(analytic, analytic_noise_edge(points, SIGMA, tw_quantile=0.98))


def test_deterministic_under_a_seed_or_generator(planted, make_affinity):
    affinity = make_affinity("grid", CHANNELS, SIGMA)
    features = planted(2, CHANNELS, SIDE, 2, 1.0, seed=5)
    first, second = noise_floor(features, affinity), noise_floor(features, affinity)
    assert torch.equal(first, second)
    other = noise_floor(features, affinity, seed=1)
    assert not torch.equal(first, other)
    torch.testing.assert_close(first, other, rtol=0.1, atol=0.0)  # a statistic, not noise
    draws = [
        noise_floor(features, affinity, generator=torch.Generator().manual_seed(7))
        for _ in range(2)
    ]
    assert torch.equal(*draws)


@pytest.mark.parametrize(("kind", "method"), [("knn", "null"), ("dense", "analytic")])
def test_edge_is_a_detached_constant(kind, method, planted, make_affinity):
    affinity = make_affinity(kind, CHANNELS, SIGMA, **({"k": 6} if kind == "knn" else {}))
    features = planted(2, CHANNELS, 8, 2, 1.0, seed=6).requires_grad_()
    edge = noise_floor(features, affinity, method=method)
    assert not edge.requires_grad and edge.shape == (2,) and edge.dtype == torch.float64


def test_gaussian_null_matches_mean_and_noise_variance():
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(2, 8, 40, 40, generator=generator, dtype=torch.float64) * 3.0 + 1.0
    drawn = null_features(features, "gaussian", 3, generator)  # (P, B, C, H, W)
    assert drawn.shape == (3, 2, 8, 40, 40)
    torch.testing.assert_close(drawn.mean((0, 3, 4)), features.mean((2, 3)), atol=0.2, rtol=0.0)
    variance = drawn.var((0, 3, 4)).mean(1)  # (B,)
    torch.testing.assert_close(variance, torch.full_like(variance, 9.0), rtol=0.05, atol=0.0)


def test_gaussian_null_of_a_rank_deficient_embedding_stays_in_its_span():
    # a 16-channel embedding of 8-channel features (the head's graph_channels > decoder width):
    # null noise in all 16 channels would spread the null graph over dimensions the data lack
    generator = torch.Generator().manual_seed(1)
    low = torch.randn(2, 8, 30, 30, generator=generator, dtype=torch.float64)
    lift = torch.linalg.qr(torch.randn(16, 8, generator=generator, dtype=torch.float64))[0]
    features = torch.einsum("cd,bdhw->bchw", lift, low) + 2.0
    drawn = null_features(features, "gaussian", 4, generator)  # (P, B, 16, H, W)
    centred = drawn - drawn.mean((3, 4), keepdim=True)
    outside = centred - torch.einsum("cd,ed,pbehw->pbchw", lift, lift, centred)
    assert float(outside.abs().max()) < 1e-10 * float(centred.abs().max())
    # and the spread inside the span is the features' per-dimension variance (1)
    inside = torch.einsum("dc,pbchw->pbdhw", lift.T, centred)
    torch.testing.assert_close(inside.var((0, 3, 4)).mean(), torch.tensor(1.0, dtype=torch.float64),
                               rtol=0.05, atol=0.0)  # fmt: skip


def test_gaussian_null_spans_per_image_full_rank_unchanged_and_constant_input():
    generator = torch.Generator().manual_seed(2)
    full = torch.randn(1, 6, 12, 12, generator=generator, dtype=torch.float64)
    lifts = [torch.linalg.qr(torch.randn(6, r, generator=generator, dtype=torch.float64))[0]
             for r in (2, 4)]  # fmt: skip
    low = [torch.einsum("cd,bdhw->bchw", q, torch.randn(1, q.shape[1], 12, 12,
                                                       generator=generator, dtype=torch.float64))
           for q in lifts]  # fmt: skip
    drawn = null_features(torch.cat(low), "gaussian", 3, torch.Generator().manual_seed(0))
    for b, q in enumerate(lifts):  # each image keeps its own span
        centred = drawn[:, b] - drawn[:, b].mean((2, 3), keepdim=True)
        outside = centred - torch.einsum("cd,ed,pehw->pchw", q, q, centred)
        assert float(outside.abs().max()) < 1e-10
    # full rank: the projector is the identity and the draws are the plain isotropic ones
    drawn = null_features(full, "gaussian", 2, torch.Generator().manual_seed(0))
    noise = torch.randn(2, *full.shape, generator=torch.Generator().manual_seed(0),
                        dtype=torch.float64)  # fmt: skip
    scale = noise_variance(full.flatten(2).mT).sqrt()
    expected = full.mean((2, 3), keepdim=True) + scale[:, None, None, None] * noise
    assert torch.equal(drawn, expected)
    constant = torch.full((1, 6, 5, 5), 3.0, dtype=torch.float64)
    assert torch.equal(null_features(constant, "gaussian", 2), constant.expand(2, -1, -1, -1, -1))


def test_pixel_null_rows_are_permutations():
    features = torch.arange(2 * 3 * 4 * 4, dtype=torch.float64).reshape(2, 3, 4, 4)
    drawn = null_features(features, "pixels", 3, torch.Generator().manual_seed(1))
    for p in range(3):
        for b in range(2):
            columns = drawn[p, b].flatten(1).mT  # (n, C): pixel vectors, moved whole
            original = features[b].flatten(1).mT
            assert torch.equal(columns[columns[:, 0].argsort()], original)


def test_null_samples_and_bounds(planted, make_affinity):
    affinity = make_affinity("dense", CHANNELS, SIGMA)
    features = planted(3, CHANNELS, 8, 2, 0.0, seed=8)
    edge, nu = null_noise_edge(features, affinity, num_samples=5, return_samples=True)
    assert nu.shape == (5, 3)
    # default: the Gaussian prediction bound at a 5% miss rate, t_{4, 0.95} = 2.1318
    expected = nu.mean(0) - 2.131847 * nu.std(0) * (1 + 1 / 5) ** 0.5
    torch.testing.assert_close(edge, expected.clamp_min(0), rtol=1e-6, atol=0)
    ranged = null_noise_edge(features, affinity, num_samples=5, bound="range")
    torch.testing.assert_close(ranged, (nu.amin(0) - (nu.amax(0) - nu.amin(0))).clamp_min(0))
    loose = null_noise_edge(features, affinity, num_samples=5, bound="range", margin=0.0)
    torch.testing.assert_close(loose, nu.amin(0))


def test_student_t_quantile_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    for dof in (1, 2, 3, 5, 10, 30):
        for q in (0.5, 0.9, 0.95, 0.975, 0.99):
            expected = stats.t.ppf(q, dof)
            assert abs(student_t_quantile(q, dof) - expected) <= 1e-6 * max(1.0, abs(expected))


@pytest.mark.parametrize(("bound", "samples", "low", "high"),
                         [("t", 2, 0.04, 0.06), ("t", 4, 0.04, 0.06), ("t", 8, 0.04, 0.06),
                          ("range", 2, 0.15, 0.19), ("range", 4, 0.02, 0.04)])  # fmt: skip
def test_prediction_bound_miss_rate_on_gaussian_draws(bound, samples, low, high):
    # the stated per-draw miss rates: 5% for "t" at every P, 1/6 (P = 2) and 3% (P = 4) for
    # "range", on 40,000 repetitions of (P draws for the bound, one new draw)
    g = torch.Generator().manual_seed(0)
    draws = 1.0 + 0.01 * torch.randn(samples + 1, 40_000, generator=g, dtype=torch.float64)
    edge = prediction_bound(draws[:samples], bound)
    miss = float((draws[samples] < edge).double().mean())
    assert low <= miss <= high, miss


def test_prediction_bound_rejects_bad_settings():
    nu = torch.rand(3, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="bound must be"):
        prediction_bound(nu, "quantile")
    with pytest.raises(ValueError, match="miss_rate"):
        prediction_bound(nu, "t", miss_rate=0.7)
    with pytest.raises(ValueError, match=">= 2 samples"):
        prediction_bound(nu[:1])


def test_module_matches_function(planted, make_affinity):
    affinity = make_affinity("grid", CHANNELS, SIGMA)
    features = planted(2, CHANNELS, 8, 2, 1.0, seed=9)
    module = NoiseFloor(num_samples=3, bound="range", margin=0.5)
    expected = noise_floor(features, affinity, num_samples=3, bound="range", margin=0.5)
    torch.testing.assert_close(module(features, affinity), expected)
    assert "num_samples=3" in repr(module)


def test_bad_inputs_raise(make_affinity):
    grid, knn = make_affinity("grid", 4, 1.0), make_affinity("knn", 4, 1.0, k=3)
    features = torch.randn(1, 4, 5, 5, dtype=torch.float64)
    with pytest.raises(ValueError, match="method"):
        noise_floor(features, grid, method="mp")
    with pytest.raises(ValueError, match="dense"):
        noise_floor(features, grid, method="analytic")
    with pytest.raises(ValueError, match="relabels"):
        noise_floor(features, knn, null="pixels")
    with pytest.raises(ValueError, match="num_samples"):
        noise_floor(features, grid, num_samples=1)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        noise_floor(features[0], grid)
    with pytest.raises(ValueError, match="null must be"):
        null_features(features, "channels")
    with pytest.raises(ValueError, match="unknown option"):
        NoiseFloor(samples=3)
    with pytest.raises(ValueError, match="bound must be"):
        NoiseFloor(bound="quantile")
    with pytest.raises(ValueError, match="miss_rate"):
        noise_floor(features, grid, miss_rate=0.0)
    with pytest.raises(ValueError, match=r"\(B, n, d\)"):
        analytic_noise_edge(features, 1.0)
