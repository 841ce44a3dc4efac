"""The learned spectral filter (range, resolution, gradients, shapes) and the factory."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cheeger.spectral import (
    FILTERS,
    LearnedFilter,
    TruncationFilter,
    build_filter,
    learned_filter,
    log_chebyshev_features,
)

F64 = torch.float64


def spectra(batch: int = 3, k: int = 6, seed: int = 0) -> torch.Tensor:
    """Ascending ``(B, k)`` eigenvalues in ``[0, 2]`` with a trivial zero."""
    lam = torch.rand(batch, k, generator=torch.Generator().manual_seed(seed), dtype=F64) * 2.0
    lam[:, 0] = 0.0
    return lam.sort(-1).values


def test_log_chebyshev_features_are_chebyshev_polynomials_of_log_lambda():
    lam = torch.tensor([0.0, 1e-4, 1e-2, 0.3, 1.0, 2.0], dtype=F64)
    features = log_chebyshev_features(lam, degree=6, floor=1e-4)  # (6, 7)
    u = 2 * (torch.log(lam + 1e-4) - math.log(1e-4)) / (math.log(2 + 1e-4) - math.log(1e-4)) - 1
    u = u.clamp(-1, 1)
    expected = torch.stack([torch.cos(j * torch.arccos(u)) for j in range(7)], -1)
    torch.testing.assert_close(features, expected)
    assert features[0, 1] == -1 and features[-1, 1] == 1
    # log resolution: 1e-4 and 1e-3 are as far apart in u as 0.01 and 0.1
    u_at = log_chebyshev_features(torch.tensor([1e-3, 1e-2, 1e-1, 1.0], dtype=F64), 1)[:, 1]
    gaps = u_at.diff()
    assert float(gaps.min()) > 0.5 * float(gaps.max())


@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(st.floats(-0.5, 2.5, allow_nan=False), min_size=1, max_size=12),
    seed=st.integers(0, 2**16),
    output=st.sampled_from(["sigmoid", "softplus"]),
)
def test_learned_response_is_bounded_and_finite(values, seed, output):
    torch.manual_seed(seed)
    module = LearnedFilter(out_channels=2, output=output).double()
    for layer in module.layers:  # random, large weights: the bound must not depend on them
        torch.nn.init.normal_(layer.weight, std=3.0)
    lam = torch.tensor(values, dtype=F64, requires_grad=True)
    h = module(lam)
    assert h.shape == (len(values), 2)
    assert bool(torch.isfinite(h).all()) and bool((h >= 0).all())
    if output == "sigmoid":
        assert bool((h <= 1).all())
    h.sum().backward()
    assert bool(torch.isfinite(lam.grad).all())


def test_learned_filter_shapes_initial_value_and_function_form():
    lam = spectra(4, 16)
    single, multi = LearnedFilter().double(), LearnedFilter(out_channels=5, depth=2).double()
    assert single(lam).shape == (4, 16) and multi(lam).shape == (4, 16, 5)
    torch.testing.assert_close(single(lam), torch.full((4, 16), 0.5, dtype=F64))
    torch.nn.init.normal_(multi.layers[-1].weight)
    weights = [(layer.weight, layer.bias) for layer in multi.layers]
    torch.testing.assert_close(multi(lam), learned_filter(lam, weights))
    with torch.no_grad():
        softplus = LearnedFilter(output="softplus").double()(lam)
    torch.testing.assert_close(softplus, torch.full_like(softplus, math.log(2.0)))


def test_learned_filter_gradients_reach_every_parameter():
    lam = spectra(2, 8)
    target = torch.rand(2, 8, 3, generator=torch.Generator().manual_seed(1), dtype=F64)
    # at initialisation the last layer is zero, so the hidden layers get exactly zero gradient
    # (the first step moves the last layer only): a test at initialisation cannot see whether
    # the path through the hidden layers exists
    module = LearnedFilter(out_channels=3, depth=2).double()
    (module(lam) - target).square().sum().backward()
    assert [bool(p.grad.any()) for p in module.parameters()] == [False] * 4 + [True] * 2
    torch.manual_seed(0)
    for layer in module.layers:  # a trained state: every parameter gets a gradient
        torch.nn.init.normal_(layer.weight)
        torch.nn.init.normal_(layer.bias)
    module.zero_grad()
    (module(lam) - target).square().sum().backward()
    for name, p in module.named_parameters():
        assert p.grad.abs().sum() > 0, name


def test_learned_filter_fits_a_heat_kernel_across_decades():
    # the eigenvalues the head sees span 1e-4 .. 2; a heat kernel with t = 300 switches off
    # between 1e-3 and 1e-2, which a polynomial in lambda on [0, 2] cannot resolve
    torch.manual_seed(0)
    module = LearnedFilter(degree=10, hidden=32).double()
    lam = torch.logspace(-4, math.log10(2.0), 64, dtype=F64)
    target = torch.exp(-300.0 * lam)
    optimiser = torch.optim.Adam(module.parameters(), lr=0.02)
    for _ in range(400):
        optimiser.zero_grad()
        loss = (module(lam) - target).square().mean()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        assert (module(lam) - target).abs().max().item() < 0.08


def test_build_filter_by_name():
    lam = spectra()
    assert sorted(FILTERS) == ["diffusion", "heat", "learned", "truncation", "zero"]
    assert build_filter("learned", out_channels=2)(lam.float()).shape == (3, 6, 2)
    assert isinstance(build_filter("truncation", num_kept=4), TruncationFilter)
    torch.testing.assert_close(build_filter("diffusion", t=2)(lam), (1 - lam) ** 2)
    with pytest.raises(ValueError, match="unknown filter"):
        build_filter("wavelet")
    with pytest.raises(ValueError, match="bad options"):
        build_filter("heat", num_kept=3)


def test_bad_inputs_raise():
    lam = spectra()
    with pytest.raises(ValueError, match="floating-point"):
        learned_filter(torch.arange(3), [(torch.zeros(1, 9), torch.zeros(1))])
    with pytest.raises(ValueError, match="out_channels"):
        LearnedFilter(out_channels=0)
    with pytest.raises(ValueError, match="output"):
        LearnedFilter(output="relu")
    with pytest.raises(ValueError, match="input columns"):
        learned_filter(lam, [(torch.zeros(1, 3, dtype=F64), torch.zeros(1, dtype=F64))])
