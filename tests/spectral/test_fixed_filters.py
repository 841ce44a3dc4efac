"""Fixed spectral filters against their closed forms (float64)."""

from __future__ import annotations

import pytest
import torch

from cheeger.spectral import (
    DiffusionFilter,
    HeatFilter,
    TruncationFilter,
    diffusion_filter,
    heat_filter,
    truncation_filter,
)

F64 = torch.float64


def spectra(batch: int = 3, k: int = 6, seed: int = 0) -> torch.Tensor:
    """Ascending ``(B, k)`` eigenvalues in ``[0, 2]`` with a trivial zero."""
    lam = torch.rand(batch, k, generator=torch.Generator().manual_seed(seed), dtype=F64) * 2.0
    lam[:, 0] = 0.0
    return lam.sort(-1).values


def test_truncation_by_count_and_by_cutoff():
    lam = spectra()
    torch.testing.assert_close(truncation_filter(lam, num_kept=2),
                               (torch.arange(6) < 2).to(F64).expand(3, 6))  # fmt: skip
    edge = torch.tensor([0.5, 1.0, 1.5], dtype=F64)
    torch.testing.assert_close(truncation_filter(lam, cutoff=edge), (lam < edge[:, None]).to(F64))
    torch.testing.assert_close(truncation_filter(lam, cutoff=1.0), (lam < 1.0).to(F64))
    assert truncation_filter(lam, num_kept=0).sum() == 0


def test_diffusion_and_heat_closed_forms():
    lam = spectra()
    for t in (0, 1, 2, 3, 7):
        torch.testing.assert_close(diffusion_filter(lam, t), (1.0 - lam) ** t)
    assert bool((diffusion_filter(torch.tensor([1.5], dtype=F64), 3) < 0).all())  # odd t, > 1
    torch.testing.assert_close(heat_filter(lam, 2.5), torch.exp(-2.5 * lam))
    stacked = heat_filter(lam, [0.5, 4.0])  # (B, k, 2)
    torch.testing.assert_close(stacked, torch.stack([torch.exp(-t * lam) for t in (0.5, 4.0)], -1))
    torch.testing.assert_close(diffusion_filter(lam, [1, 2])[..., 1], (1.0 - lam) ** 2)


def test_heat_time_is_differentiable():
    t = torch.tensor(2.0, dtype=F64, requires_grad=True)
    lam = spectra()
    heat_filter(lam, t).sum().backward()
    torch.testing.assert_close(t.grad, (-lam * torch.exp(-2.0 * lam)).sum())
    module = HeatFilter([1.0, 3.0], learnable=True).double()
    module(lam).sum().backward()
    assert module.log_t.grad is not None and torch.isfinite(module.log_t.grad).all()
    torch.testing.assert_close(module.t, torch.tensor([1.0, 3.0], dtype=F64))


def test_fixed_modules_match_functions_and_repeat_channels():
    lam = spectra()
    torch.testing.assert_close(TruncationFilter(num_kept=3)(lam), truncation_filter(lam, 3))
    edge = torch.tensor([0.2, 0.4, 0.6], dtype=F64)
    torch.testing.assert_close(TruncationFilter(num_kept=3)(lam, cutoff=edge),
                               truncation_filter(lam, cutoff=edge))  # fmt: skip
    torch.testing.assert_close(DiffusionFilter(2)(lam), diffusion_filter(lam, 2))
    torch.testing.assert_close(HeatFilter(0.5).double()(lam), heat_filter(lam, 0.5))
    for module in (TruncationFilter(num_kept=2, out_channels=4), DiffusionFilter(3, out_channels=4),
                   HeatFilter(1.0, out_channels=4).double()):  # fmt: skip
        out = module(lam)
        assert out.shape == (3, 6, 4)
        assert torch.equal(out, out[..., :1].expand_as(out))  # the same response in every channel
    assert DiffusionFilter([1, 2, 3], out_channels=3)(lam).shape == (3, 6, 3)
    with pytest.raises(ValueError, match="contradicts"):
        HeatFilter([1.0, 2.0], out_channels=3)


def test_bad_inputs_raise():
    lam = spectra()
    with pytest.raises(ValueError, match="exactly one"):
        truncation_filter(lam)
    with pytest.raises(ValueError, match="exactly one"):
        truncation_filter(lam, num_kept=1, cutoff=0.5)
    with pytest.raises(ValueError, match="one per spectrum"):
        truncation_filter(lam, cutoff=torch.ones(5, dtype=F64))
    with pytest.raises(ValueError, match="int >= 0"):
        diffusion_filter(lam, -1)
    with pytest.raises(ValueError, match="int >= 0"):
        diffusion_filter(lam, 0.5)
    with pytest.raises(ValueError, match="> 0"):
        heat_filter(lam, [1.0, 0.0])
    with pytest.raises(ValueError, match="floating-point"):
        heat_filter(torch.arange(3), 1.0)
    with pytest.raises(ValueError, match="out_channels"):
        TruncationFilter(num_kept=1, out_channels=0)
