"""Shared helpers of the spectral tests: planted partitions, graphs, spectra (float64)."""

from __future__ import annotations

import pytest
import torch

from cheeger.graph import GaussianAffinity, normalized_laplacian
from cheeger.linalg import eigsh


def planted_features(
    batch: int, channels: int, side: int, regions: int, amplitude: float, seed: int
) -> torch.Tensor:
    """``(B, C, side, side)`` float64: region mean ``amplitude * e_c`` plus ``N(0, I)`` noise.

    Regions: 2 or 3 vertical stripes, 4 quadrants; ``amplitude = 0`` is pure noise.
    """
    generator = torch.Generator().manual_seed(seed)
    rows, cols = torch.arange(side)[:, None], torch.arange(side)[None, :]
    if regions == 4:
        label = (rows * 2 // side) * 2 + cols * 2 // side  # (side, side)
    else:
        label = (cols * regions // side).expand(side, side)
    means = torch.zeros(regions, channels, dtype=torch.float64)
    means[torch.arange(regions), torch.arange(regions)] = amplitude
    noise = torch.randn(batch, channels, side, side, generator=generator, dtype=torch.float64)
    return noise + means[label].permute(2, 0, 1)[None]


def euclidean_affinity(
    neighbourhood: str, channels: int, sigma: float, **options: object
) -> GaussianAffinity:
    """A float64 :class:`GaussianAffinity` with ``A = I`` (the plain Gaussian kernel)."""
    affinity = GaussianAffinity(channels, channels, neighbourhood, init_sigma=sigma, **options)
    affinity = affinity.double()
    with torch.no_grad():
        affinity.projection.copy_(torch.eye(channels, dtype=torch.float64))
    return affinity


def bottom_spectrum(affinity: GaussianAffinity, features: torch.Tensor, k: int) -> torch.Tensor:
    """The ``k`` smallest eigenvalues ``(B, k)`` of ``L_sym`` of the features' graphs."""
    with torch.no_grad():
        return eigsh(normalized_laplacian(affinity(features)), k)[0]


@pytest.fixture
def planted():
    """:func:`planted_features`."""
    return planted_features


@pytest.fixture
def make_affinity():
    """:func:`euclidean_affinity`."""
    return euclidean_affinity


@pytest.fixture
def spectrum():
    """:func:`bottom_spectrum`."""
    return bottom_spectrum


@pytest.fixture(autouse=True)
def _one_thread():
    """Small dense solves run fastest on one thread; with the 2 cores shared, two threads of
    tiny BLAS calls contend and run up to 50x slower (measured)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
