from __future__ import annotations

import pytest
import torch

from cheeger.training import (
    DeviceUnavailableError,
    derived_seed,
    deterministic_algorithms,
    epoch_order,
    resolve_device,
)


def test_epoch_order_is_a_pure_permutation_of_seed_and_epoch():
    a = epoch_order(50, seed=3, epoch=2)
    assert sorted(a.tolist()) == list(range(50))
    torch.manual_seed(123)  # the global generator plays no part
    assert torch.equal(a, epoch_order(50, seed=3, epoch=2))
    assert not torch.equal(a, epoch_order(50, seed=3, epoch=3))
    assert not torch.equal(a, epoch_order(50, seed=4, epoch=2))


def test_derived_seeds_differ_per_key_and_fit_63_bits():
    seeds = {derived_seed(s, e, k) for s in range(3) for e in range(3) for k in range(2)}
    assert len(seeds) == 18 and all(0 <= s < 2**63 for s in seeds)


def test_deterministic_block_restores_the_previous_setting():
    before = torch.are_deterministic_algorithms_enabled()
    with deterministic_algorithms():
        assert torch.are_deterministic_algorithms_enabled()
    assert torch.are_deterministic_algorithms_enabled() == before


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        assert resolve_device("auto") != torch.device("cuda")
        with pytest.raises(DeviceUnavailableError, match="'cuda': CUDA is not available"):
            resolve_device("cuda")
