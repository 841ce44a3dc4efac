"""Graph factories for the eigensolver tests (plain torch, independent of cheeger.graph)."""

from __future__ import annotations

import pytest
import torch


def _sym_laplacian(rows, cols, w, n):
    """L_sym = I - D^-1/2 W D^-1/2 as a coalesced COO tensor, W given by its upper edges."""
    r = torch.cat([rows, cols])
    c = torch.cat([cols, rows])
    v = torch.cat([w, w])
    d = torch.zeros(n, dtype=w.dtype).index_add_(0, r, v)
    dis = torch.where(d > 0, d.clamp_min(1e-300).rsqrt(), torch.zeros_like(d))
    diag = torch.where(d > 0, torch.ones_like(d), torch.zeros_like(d))
    idx = torch.stack([torch.cat([r, torch.arange(n)]), torch.cat([c, torch.arange(n)])])
    val = torch.cat([-v * dis[r] * dis[c], diag])
    return torch.sparse_coo_tensor(idx, val, (n, n)).coalesce()


def _grid_edges(H, W, connectivity=4):
    idx = torch.arange(H * W).reshape(H, W)
    pairs = [(idx[:, :-1], idx[:, 1:]), (idx[:-1, :], idx[1:, :])]
    if connectivity == 8:
        pairs += [(idx[:-1, :-1], idx[1:, 1:]), (idx[:-1, 1:], idx[1:, :-1])]
    return (
        torch.cat([a.reshape(-1) for a, _ in pairs]),
        torch.cat([b.reshape(-1) for _, b in pairs]),
    )


@pytest.fixture
def grid_laplacian():
    """``make(H, W, seed, regions=0, connectivity=4, cut=None)``: L_sym of a weighted pixel grid.

    Weights are Gaussian in a smooth random field plus ``regions`` vertical bands, as on images:
    bottom eigenvalues are small and bunched. ``cut`` scales edges crossing band borders (0 makes
    the bands disconnected components).
    """

    def make(H, W, seed=0, regions=0, connectivity=4, cut=None):
        g = torch.Generator().manual_seed(seed)
        f = torch.randn(1, 3, H, W, generator=g, dtype=torch.float64)
        f = torch.nn.functional.avg_pool2d(f, 5, stride=1, padding=2, count_include_pad=False)
        band = (torch.arange(W) * max(regions, 1) // W).to(torch.float64)
        if regions:
            f = f + 3.0 * band.expand(H, W)[None, None]
        f = f[0].reshape(3, -1)
        rows, cols = _grid_edges(H, W, connectivity)
        w = torch.exp(-(f[:, rows] - f[:, cols]).square().sum(0))
        if cut is not None:
            bflat = band.expand(H, W).reshape(-1)
            w = torch.where(bflat[rows] != bflat[cols], w * cut, w)
        return _sym_laplacian(rows, cols, w, H * W)

    return make


@pytest.fixture
def laplacian_from_edges():
    return _sym_laplacian


@pytest.fixture
def grid_edges():
    """``make(H, W, connectivity=4)``: the upper edges ``(rows, cols)`` of a pixel grid."""
    return _grid_edges
