r"""Spectral embedding of a feature map's kNN graph, and cosine similarity in it.

A feature map ``(C, h, w)`` becomes a graph on its pixels: the ``neighbours`` nearest pixels in
feature space (symmetrised by union, :func:`cheeger.graph.gaussian_affinity` with
``neighbourhood="knn"``), Gaussian weights ``exp(-||f_i - f_j||^2 / 2 sigma^2)``. Its normalised
Laplacian ``L_sym = I - D^{-1/2} W D^{-1/2}`` gives the ``k`` bottom eigenpairs by
:func:`cheeger.linalg.eigsh` (default method), and pixel ``i`` is embedded as the row

.. math::  e_i = D_{ii}^{-1/2} U_{i,:} - \bar e,

the random-walk eigenvectors (``D^{-1/2} U``: the trivial one is then constant) centred over the
pixels, so the constant part of every row drops out and the cosine of two rows compares what
the non-trivial eigenvectors say about them. :func:`cosine_similarity_map` colours every pixel by
``cos(e_i, e_q)`` for a query pixel ``q``.

Example:
    >>> import torch
    >>> features = torch.zeros(2, 6, 8); features[0, :, 4:] = 3.0   # two flat halves
    >>> result = spectral_embedding(features, k=3, neighbours=4)
    >>> result.embedding.shape, result.eigenvectors.shape
    (torch.Size([48, 3]), torch.Size([48, 3]))
    >>> sim = cosine_similarity_map(result.embedding, (6, 8), (0, 0))
    >>> bool(sim[0, 1] > 0.99), bool(sim[0, 7] < 0)
    (True, True)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from cheeger.graph import gaussian_affinity, normalized_laplacian
from cheeger.linalg import eigsh

__all__ = ["Embedding", "SpectralEmbedding", "cosine_similarity_map", "spectral_embedding"]


@dataclass(frozen=True)
class Embedding:
    """What :func:`spectral_embedding` computed for one feature map.

    Attributes:
        eigenvalues: ``(k,)`` ascending eigenvalues of ``L_sym``.
        eigenvectors: ``(n, k)`` eigenvectors of ``L_sym`` (``n = h w``, row-major pixels); the
            warm start of the next frame's solve.
        embedding: ``(n, k)`` the centred random-walk eigenvectors, one row per pixel.
        size: ``(h, w)``.
    """

    eigenvalues: torch.Tensor
    eigenvectors: torch.Tensor
    embedding: torch.Tensor
    size: tuple[int, int]


def spectral_embedding(
    features: torch.Tensor,
    k: int = 8,
    neighbours: int = 10,
    sigma: float = 1.0,
    warm_start: torch.Tensor | None = None,
) -> Embedding:
    """The bottom-``k`` spectral embedding of the kNN graph of a ``(C, h, w)`` feature map.

    Args:
        features: ``(C, h, w)`` float feature map (already scaled: the graph uses plain Euclidean
            distances between pixels' feature vectors).
        k: eigenpairs, ``1 <= k <= h w``.
        neighbours: kNN ``k`` of the graph, ``1 <= neighbours < h w``.
        sigma: Gaussian bandwidth, in feature units.
        warm_start: ``(n, p)`` starting block for the solver, e.g. the previous frame's
            ``eigenvectors`` on a graph of the same size (ignored when the size differs).

    Returns:
        An :class:`Embedding`.

    Raises:
        ValueError: on a wrong shape or out-of-range ``k`` / ``neighbours``.
        cheeger.linalg.EigshConvergenceError: the eigensolver did not converge.
    """
    if features.dim() != 3:
        raise ValueError(f"spectral_embedding: features must be (C, h, w), got "
                         f"{tuple(features.shape)}")  # fmt: skip
    channels, h, w = features.shape
    n = h * w
    if not 1 <= k <= n:
        raise ValueError(f"spectral_embedding: need 1 <= k <= h w = {n}, got k = {k}")
    eye = torch.eye(channels, dtype=features.dtype, device=features.device)
    W = gaussian_affinity(features[None], eye, sigma, "knn", k=neighbours)  # sparse (1, n, n)
    L = normalized_laplacian(W)
    X0 = warm_start if warm_start is not None and warm_start.shape[0] == n else None
    lam, U = eigsh(L, k, X0=X0)  # (1, k), (1, n, k)
    # degrees from the sparse rows, never a dense (n, n) matrix
    degree = torch.sparse.sum(W, 2).to_dense()[0]  # (n,)
    walk = U[0] * degree.clamp_min(torch.finfo(U.dtype).tiny).rsqrt()[:, None]  # (n, k)
    return Embedding(lam[0], U[0], walk - walk.mean(0), (h, w))


def cosine_similarity_map(
    embedding: torch.Tensor, size: tuple[int, int], query: tuple[int, int]
) -> torch.Tensor:
    """Cosine similarity of every pixel's embedding row to the query pixel's, as an image.

    Args:
        embedding: ``(n, k)`` rows of pixels on an ``h x w`` grid, row-major.
        size: ``(h, w)``.
        query: ``(row, col)`` on that grid.

    Returns:
        ``(h, w)`` similarities in ``[-1, 1]``.

    Raises:
        ValueError: the query is outside the grid or the sizes disagree.
    """
    h, w = size
    if embedding.dim() != 2 or embedding.shape[0] != h * w:
        raise ValueError(f"cosine_similarity_map: embedding must be ({h * w}, k) for size "
                         f"{size}, got {tuple(embedding.shape)}")  # fmt: skip
    row, col = query
    if not (0 <= row < h and 0 <= col < w):
        raise ValueError(f"cosine_similarity_map: query {query} outside the {h}x{w} grid")
    unit = F.normalize(embedding, dim=1)  # (n, k)
    return (unit @ unit[row * w + col]).reshape(h, w)


class SpectralEmbedding(nn.Module):
    """Module form of :func:`spectral_embedding` that keeps the last eigenvectors as warm start.

    Args:
        k: eigenpairs.
        neighbours: kNN ``k`` of the graph.
        sigma: Gaussian bandwidth.
        warm: reuse the previous call's eigenvectors as the solver's starting block.

    Example:
        >>> embed = SpectralEmbedding(k=3, neighbours=4)
        >>> embed(torch.rand(7, 6, 8)).embedding.shape
        torch.Size([48, 3])
    """

    def __init__(self, k: int = 8, neighbours: int = 10, sigma: float = 1.0, warm: bool = True):
        super().__init__()
        self.k, self.neighbours, self.sigma, self.warm = k, neighbours, sigma, warm
        self.previous: torch.Tensor | None = None

    def forward(self, features: torch.Tensor) -> Embedding:
        """``(C, h, w)`` features -> :class:`Embedding`."""
        result = spectral_embedding(features, self.k, self.neighbours, self.sigma,
                                    self.previous if self.warm else None)  # fmt: skip
        self.previous = result.eigenvectors
        return result

    def extra_repr(self) -> str:
        return f"k={self.k}, neighbours={self.neighbours}, sigma={self.sigma}, warm={self.warm}"
