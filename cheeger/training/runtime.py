"""Run-time set-up shared by training and evaluation: device choice, determinism, data order.

Reproducibility here rests on three things: (1) torch's deterministic algorithms are switched
on (where an operation has no deterministic version on an accelerator it warns instead of
failing; on the CPU, where bit-exactness is tested, every operation used is deterministic);
(2) every random draw of the data pipeline comes from a seed derived from ``(seed, epoch)``
rather than from a generator that carries state from epoch to epoch, so resuming at an epoch
boundary needs no generator state for the data at all; (3) the global generators (model
initialisation, anything a head draws) are saved in every checkpoint. Results are bit-identical
for the same seed, device and thread count; a different thread count may change the rounding of
reductions.

Example:
    >>> epoch_order(5, seed=0, epoch=1).tolist() == epoch_order(5, seed=0, epoch=1).tolist()
    True
    >>> str(resolve_device("cpu"))
    'cpu'
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import numpy as np
import torch

from cheeger.training.errors import DeviceUnavailableError

__all__ = ["derived_seed", "deterministic_algorithms", "epoch_order", "resolve_device"]


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> CUDA if available, else MPS if available, else CPU; other names as given.

    Raises:
        DeviceUnavailableError: an explicitly requested accelerator is not available.
    """
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailableError(f"device {name!r}: CUDA is not available (use auto or cpu)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceUnavailableError(f"device {name!r}: MPS is not available (use auto or cpu)")
    return device


def derived_seed(*keys: int) -> int:
    """A 63-bit seed from integer keys (numpy ``SeedSequence``: unrelated streams per key)."""
    state = np.random.SeedSequence([int(k) for k in keys]).generate_state(1, dtype=np.uint64)
    return int(state[0] >> np.uint64(1))


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The shuffled order of ``n`` training items in ``epoch`` (0-based), ``(n,)`` int64.

    A pure function of ``(seed, epoch)``: the same in an uninterrupted and a resumed run.
    """
    generator = torch.Generator().manual_seed(derived_seed(seed, epoch, 0x0DE5))
    return torch.randperm(n, generator=generator)


@contextlib.contextmanager
def deterministic_algorithms() -> Iterator[None]:
    """Switch torch's deterministic algorithms on for the block; restore the previous setting."""
    previous = (torch.are_deterministic_algorithms_enabled(),
                torch.is_deterministic_algorithms_warn_only_enabled())  # fmt: skip
    benchmark = torch.backends.cudnn.benchmark
    # cuBLAS needs this workspace setting for deterministic GEMMs; it must be set before CUDA
    # initialises, and is harmless elsewhere.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])
        torch.backends.cudnn.benchmark = benchmark
