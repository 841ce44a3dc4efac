"""The bulk penalty: zero off the noise region, the mean of h^2 on it, and a usable gradient."""

from __future__ import annotations

import doctest
import importlib
import itertools

import pytest
import torch

from cheeger.losses.bulk import BulkPenalty, bulk_penalty, noise_weights
from cheeger.spectral import LearnedFilter, truncation_filter

F64 = torch.float64


def spectra() -> tuple[torch.Tensor, torch.Tensor]:
    """Two graphs' bottom eigenvalues ``(2, 8)`` and their noise edges ``(2,)``."""
    lam = torch.tensor(
        [
            [0.0, 1e-4, 4e-4, 6e-3, 7e-3, 8e-3, 9e-3, 1e-2],  # a grid: edge 5e-3
            [0.0, 0.62, 0.85, 0.975, 0.98, 0.99, 1.0, 1.002],  # a dense kernel: edge 0.97
        ],
        dtype=F64,
    )
    return lam, torch.tensor([5e-3, 0.97], dtype=F64)


def test_zero_when_the_response_vanishes_on_the_bulk():
    lam, edge = spectra()
    h = truncation_filter(lam, cutoff=edge)  # 1 below the edge, 0 above
    assert bulk_penalty(h, lam, edge).item() < 1e-6
    assert bulk_penalty(torch.zeros(2, 8, 3, dtype=F64), lam, edge).item() == 0.0


def test_mean_of_h_squared_over_the_noise_region():
    lam, edge = spectra()
    h = torch.linspace(0.1, 0.8, 16, dtype=F64).reshape(2, 8)
    sharp = bulk_penalty(h, lam, edge, width=1e-9, relative=False, reduction="none")
    inside = lam >= edge[:, None]
    expected = torch.stack([h[b][inside[b]].square().mean() for b in range(2)])
    torch.testing.assert_close(sharp, expected)
    # channels are averaged, the batch reduced as asked
    h3 = torch.stack([h, 2 * h], -1)  # (2, 8, 2)
    torch.testing.assert_close(
        bulk_penalty(h3, lam, edge, width=1e-9, relative=False, reduction="none"), 2.5 * expected
    )
    torch.testing.assert_close(
        bulk_penalty(h, lam, edge, width=1e-9, relative=False, reduction="sum"), expected.sum()
    )


def test_indicator_is_smooth_with_a_relative_width():
    lam, edge = spectra()
    on_edge = noise_weights(edge[:, None].expand(2, 3), edge)
    torch.testing.assert_close(on_edge, torch.full((2, 3), 0.5, dtype=F64))
    # width 0.05 of min(e, |1 - e|): 5e-3 -> 2.5e-4 (grid), 0.97 -> 1.5e-3 (dense)
    w = torch.tensor([2.5e-4, 1.5e-3], dtype=F64)
    probe = torch.stack([edge - 3 * w, edge + 3 * w], -1)  # (2, 2)
    expected = torch.sigmoid(torch.tensor([-3.0, 3.0], dtype=F64)).expand(2, 2)
    torch.testing.assert_close(noise_weights(probe, edge), expected)
    # informative eigenvalues (here all a few widths below their edge) get no weight
    weights = noise_weights(lam, edge)
    assert bool((weights[lam < edge[:, None] * 0.9] < 1e-6).all())


def test_no_eigenvalue_in_the_region_gives_a_vanishing_penalty():
    lam = torch.tensor([[0.0, 0.01, 0.02]], dtype=F64)
    h = torch.ones(1, 3, dtype=F64)
    assert bulk_penalty(h, lam, torch.tensor([0.5], dtype=F64)).item() < 1e-6
    # an edge at 0 or exactly 1 stays finite (the width has a floor)
    for e in (0.0, 1.0):
        value = bulk_penalty(h, lam, e)
        assert torch.isfinite(value) and 0.0 <= value.item() <= 1.0


def test_positive_and_decreasing_under_gradient_steps_on_a_learned_filter():
    torch.manual_seed(0)
    lam, edge = spectra()
    filt = LearnedFilter(out_channels=2).double()
    optimiser = torch.optim.SGD(filt.parameters(), lr=1.0)
    values = []
    for _ in range(20):
        optimiser.zero_grad()
        loss = bulk_penalty(filt(lam), lam, edge)
        loss.backward()
        grads = [p.grad for p in filt.parameters()]
        assert all(torch.isfinite(g).all() for g in grads)
        values.append(loss.item())
        optimiser.step()
    assert values[0] == pytest.approx(0.25)  # h = 1/2 at initialisation
    assert all(b < a for a, b in itertools.pairwise(values))
    assert values[-1] < 0.5 * values[0]


def test_gradient_reaches_the_response_only():
    lam, edge = spectra()
    lam, edge = lam.clone().requires_grad_(), edge.clone().requires_grad_()
    h = torch.full((2, 8), 0.5, dtype=F64, requires_grad=True)
    bulk_penalty(h, lam, edge).backward()
    assert lam.grad is None and edge.grad is None
    assert bool(torch.isfinite(h.grad).all()) and h.grad.abs().sum() > 0
    assert bool((h.grad[lam.detach() < 0.5 * edge.detach()[:, None]].abs() < 1e-8).all())


def test_module_matches_function_and_bad_inputs_raise():
    lam, edge = spectra()
    h = torch.rand(2, 8, 3, generator=torch.Generator().manual_seed(0), dtype=F64)
    module = BulkPenalty(width=0.1, reduction="none")
    torch.testing.assert_close(module(h, lam, edge),
                               bulk_penalty(h, lam, edge, width=0.1, reduction="none"))  # fmt: skip
    with pytest.raises(ValueError, match="reduction"):
        bulk_penalty(h, lam, edge, reduction="max")
    with pytest.raises(ValueError, match="channel dim"):
        bulk_penalty(h[:, :5], lam, edge)
    with pytest.raises(ValueError, match="at most one"):
        bulk_penalty(h[..., None], lam, edge)
    with pytest.raises(ValueError, match="edge must"):
        bulk_penalty(h, lam, edge[:1].expand(3))
    with pytest.raises(ValueError, match="width"):
        BulkPenalty(width=0.0)


def test_docstring_examples():
    torch.manual_seed(0)
    module = importlib.import_module("cheeger.losses.bulk")
    result = doctest.testmod(module, extraglobs={"torch": torch})
    assert result.attempted > 0 and result.failed == 0
