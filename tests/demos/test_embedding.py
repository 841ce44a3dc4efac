"""Spectral embedding of a kNN graph: the eigenpairs against a dense float64 oracle, cosine
similarity separating clusters, warm starts, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from cheeger.demos.embedding import SpectralEmbedding, cosine_similarity_map, spectral_embedding
from cheeger.graph import gaussian_affinity, normalized_laplacian


def _blobs(h: int = 12, w: int = 16, seed: int = 0) -> torch.Tensor:
    """Three regions of distinct feature means plus noise, ``(3, h, w)`` float64."""
    g = torch.Generator().manual_seed(seed)
    f = 0.3 * torch.randn(3, h, w, generator=g, dtype=torch.float64)
    f[0, : h // 2] += 4.0
    f[1, h // 2 :, : w // 2] += 4.0
    return f


def test_eigenpairs_match_the_dense_oracle():
    f = _blobs()
    result = spectral_embedding(f, k=5, neighbours=6)
    W = gaussian_affinity(f[None], torch.eye(3, dtype=f.dtype), 1.0, "knn", k=6)
    L = normalized_laplacian(W).to_dense()[0].numpy()
    lam = scipy.linalg.eigh(L, eigvals_only=True, subset_by_index=[0, 4])
    np.testing.assert_allclose(result.eigenvalues.numpy(), lam, atol=1e-8)
    U = result.eigenvectors.numpy()  # (n, 5): eigenvectors of L
    np.testing.assert_allclose(L @ U, U * result.eigenvalues.numpy(), atol=1e-7)
    degree = W.to_dense()[0].sum(1).numpy()
    walk = U / np.sqrt(degree)[:, None]
    np.testing.assert_allclose(result.embedding.numpy(), walk - walk.mean(0), atol=1e-12)


def test_similarity_is_high_within_a_region_and_low_across():
    f = _blobs()  # three components: the 3 bottom eigenvectors span their indicators
    result = spectral_embedding(f, k=3, neighbours=8)
    sim = cosine_similarity_map(result.embedding, (12, 16), (2, 3))  # top region
    assert sim.shape == (12, 16)
    assert sim[:6].min() > 0.9
    assert sim[6:].max() < 0.1
    assert float(sim[2, 3]) == pytest.approx(1.0)


def test_warm_start_gives_the_same_answer():
    frames = [_blobs(seed=s) for s in range(3)]
    warm, cold = SpectralEmbedding(k=4, neighbours=8), SpectralEmbedding(k=4, neighbours=8,
                                                                         warm=False)
    for f in frames:
        a, b = warm(f), cold(f)
        torch.testing.assert_close(a.eigenvalues, b.eigenvalues, atol=1e-9, rtol=0)
        sa = cosine_similarity_map(a.embedding, a.size, (2, 3))
        sb = cosine_similarity_map(b.embedding, b.size, (2, 3))
        torch.testing.assert_close(sa, sb, atol=1e-6, rtol=0)
    assert warm.previous is not None and cold.previous is not None


def test_warm_start_of_another_size_is_ignored():
    previous = spectral_embedding(_blobs(10, 10), k=3, neighbours=5).eigenvectors
    result = spectral_embedding(_blobs(), k=3, neighbours=5, warm_start=previous)
    assert result.eigenvectors.shape == (12 * 16, 3)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match=r"\(C, h, w\)"):
        spectral_embedding(torch.rand(1, 3, 4, 4))
    with pytest.raises(ValueError, match="1 <= k"):
        spectral_embedding(torch.rand(3, 2, 2), k=5, neighbours=2)
    result = spectral_embedding(_blobs(), k=3, neighbours=5)
    with pytest.raises(ValueError, match="outside the 12x16 grid"):
        cosine_similarity_map(result.embedding, (12, 16), (12, 0))
    with pytest.raises(ValueError, match="embedding must be"):
        cosine_similarity_map(result.embedding, (10, 16), (0, 0))
