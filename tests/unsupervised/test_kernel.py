"""The NeuralEF/DSM kernel against a dense float64 numpy oracle, and its errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cheeger.unsupervised.kernel import (
    feature_knn_affinity,
    kernel_laplacian,
    pixel_knn_affinity,
    spectral_kernel,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def _knn_sets(points: np.ndarray, k: int, cosine: bool) -> np.ndarray:
    """Dense 0/1 union-symmetrised kNN pattern (ties impossible for random points)."""
    if cosine:
        unit = points / np.linalg.norm(points, axis=1, keepdims=True)
        dist = -unit @ unit.T
    else:
        dist = ((points[:, None] - points[None]) ** 2).sum(-1)
    np.fill_diagonal(dist, np.inf)
    mask = np.zeros_like(dist, dtype=bool)
    nearest = np.argsort(dist, axis=1)[:, :k]
    mask[np.arange(len(points))[:, None], nearest] = True
    return mask | mask.T


def _oracle(feat: np.ndarray, col: np.ndarray, k: int, alpha: float, pk, pw) -> np.ndarray:
    """Eq. 2-4 written densely in float64 for one image (h, w, C) / (h, w, 3)."""
    h, w, c = feat.shape
    f = feat.reshape(-1, c)
    unit = f / np.linalg.norm(f, axis=1, keepdims=True)
    a = np.where(_knn_sets(f, k, True), np.maximum(unit @ unit.T, 0), 0.0)
    ys, xs = np.meshgrid(np.linspace(0, 1, h), np.linspace(0, 1, w), indexing="ij")
    yx = np.stack([ys, xs], -1).reshape(-1, 2)
    pix = np.zeros_like(a, dtype=bool)
    for ks, ws in zip(pk, pw, strict=True):
        pix |= _knn_sets(np.concatenate([col.reshape(-1, 3), ws * yx], 1), ks, False)

    def norm(m):
        d = m.sum(1)
        return m / np.sqrt(d[:, None] * d[None])

    return norm(a) + alpha * norm(pix.astype(float))


def _inputs(batch=2, h=5, w=6, c=7, seed=0):
    gen = torch.Generator().manual_seed(seed)
    feat = torch.rand(batch, h, w, c, generator=gen) + 0.1
    return feat, torch.rand(batch, h, w, 3, generator=gen)


def test_per_image_kernel_matches_oracle():
    feat, col = _inputs()
    kappa = spectral_kernel(feat, col, 4, 0.3, (5, 3), (2.0, 0.1)).to_dense()
    for b in range(2):
        expected = _oracle(feat[b].double().numpy(), col[b].double().numpy(), 4, 0.3, (5, 3),
                           (2.0, 0.1))  # fmt: skip
        np.testing.assert_allclose(kappa[b].numpy(), expected, rtol=1e-5, atol=1e-6)


def test_pooled_kernel_searches_features_across_images_and_pixels_within():
    feat, col = _inputs()
    kappa = spectral_kernel(feat, col, 6, 0.5, (4,), (2.0,), pooled=True)
    assert tuple(kappa.shape) == (60, 60)
    feature_only = spectral_kernel(feat, col, 6, 0.0, pooled=True).to_dense()
    pixel_part = (kappa.to_dense() - feature_only) / 0.5
    assert pixel_part[:30, 30:].abs().max() == 0  # no pixel edge between images
    assert (feature_only[:30, 30:] > 0).any()  # feature edges cross images
    dense = kappa.to_dense()
    torch.testing.assert_close(dense, dense.T)


def test_kernel_laplacian_spectrum():
    feat, col = _inputs(batch=1)
    kappa = spectral_kernel(feat, col, 4, 0.3, (5,), (2.0,))
    lap = kernel_laplacian(kappa, 0.3).to_dense()[0].double()
    vals = torch.linalg.eigvalsh(lap)
    assert vals.min() > -1e-5 and vals.max() < 2 * 1.3 + 1e-5
    torch.testing.assert_close(lap, 1.3 * torch.eye(30, dtype=torch.float64)
                               - kappa.to_dense()[0].double())  # fmt: skip


def test_feature_affinity_pattern_is_union_of_knn():
    feat, _ = _inputs(batch=1)
    a = feature_knn_affinity(feat.reshape(1, 30, 7), 3).to_dense()[0]
    expected = _knn_sets(feat.reshape(30, 7).double().numpy(), 3, True)
    np.testing.assert_array_equal((a > 0).numpy(), expected)


def test_pixel_affinity_is_binary_and_symmetric():
    _, col = _inputs(batch=1)
    a = pixel_knn_affinity(col, (3, 2), (2.0, 0.1)).to_dense()[0]
    assert set(a.unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(a, a.T)


def test_isolated_node_names_the_setting():
    feat = torch.zeros(1, 1, 3, 2)
    feat[0, 0, 0] = torch.tensor([1.0, 0.0])
    feat[0, 0, 1] = torch.tensor([0.0, 1.0])
    feat[0, 0, 2] = torch.tensor([-1.0, 0.0])  # node 2's neighbours have cosine <= 0
    with pytest.raises(ValueError, match=r"isolated node.*feature kNN \(k=1\)"):
        spectral_kernel(feat, torch.rand(1, 1, 3, 3), 1, 0.0)


def test_nan_features_named():
    feat, col = _inputs()
    feat[0, 1, 1, 1] = float("nan")
    with pytest.raises(ValueError, match="features has NaN"):
        spectral_kernel(feat, col, 3, 0.3, (3,), (2.0,))


def test_k_not_below_nodes_named():
    feat, col = _inputs()
    with pytest.raises(ValueError, match=r"k \(feature kNN\) = 30"):
        spectral_kernel(feat, col, 30, 0.3, (3,), (2.0,))
    with pytest.raises(ValueError, match="pixel_k = 40"):
        spectral_kernel(feat, col, 3, 0.3, (40,), (2.0,))
