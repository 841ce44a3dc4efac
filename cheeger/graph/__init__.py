"""Learned graphs on feature maps: Gaussian affinities, neighbourhoods and Laplacians.

Graphs are torch sparse COO tensors ``(B, n, n)`` (coalesced, symmetric, no self loops) or dense
``(B, n, n)`` tensors; nodes of an ``H x W`` map are numbered row-major, ``node = y * W + x``.
"""

from __future__ import annotations

from cheeger.graph.affinity import GaussianAffinity, Neighbourhood, gaussian_affinity
from cheeger.graph.laplacian import (
    Laplacian,
    degree,
    laplacian,
    normalized_laplacian,
    normalized_rayleigh_quotients,
)
from cheeger.graph.neighbourhood import (
    GridEdges,
    GridNorm,
    grid_edges,
    grid_offsets,
    knn_edges,
    shifted_pair,
)

__all__ = [
    "GaussianAffinity",
    "GridEdges",
    "GridNorm",
    "Laplacian",
    "Neighbourhood",
    "degree",
    "gaussian_affinity",
    "grid_edges",
    "grid_offsets",
    "knn_edges",
    "laplacian",
    "normalized_laplacian",
    "normalized_rayleigh_quotients",
    "shifted_pair",
]
