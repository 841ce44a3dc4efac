"""Connected components (FastSV) against scipy, the Laplacian recognisers and the zero count."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse.csgraph import connected_components as scipy_components

from cheeger.linalg.certificate import (
    combinatorial_laplacian,
    connected_components,
    laplacian_like,
    pattern_components,
    zero_certificate,
)


@settings(max_examples=60, deadline=None)
@given(
    batch=st.integers(1, 3),
    n=st.integers(1, 40),
    density=st.floats(0.0, 3.0),
    seed=st.integers(0, 2**31 - 1),
)
def test_components_match_scipy(batch, n, density, seed):
    rng = np.random.default_rng(seed)
    E = int(density * n)
    b, r, c = rng.integers(0, batch, E), rng.integers(0, n, E), rng.integers(0, n, E)
    labels, counts = pattern_components(torch.tensor(b), torch.tensor(r), torch.tensor(c), batch, n)
    for g in range(batch):
        m = b == g
        M = sp.coo_matrix((np.ones(m.sum()), (r[m], c[m])), shape=(n, n))
        count, ref = scipy_components(M, directed=False)
        assert int(counts[g]) == count
        lab = labels[g].numpy()
        # the same partition, labelled by each component's smallest node
        assert np.array_equal(lab[:, None] == lab[None, :], ref[:, None] == ref[None, :])
        assert all(lab[i] == np.flatnonzero(ref == ref[i]).min() for i in range(n))


def test_long_path_and_symmetric_listing():
    # a path numbered against the hooking direction is the slow case of label propagation
    n = 2000
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    r, c = perm[:-1], perm[1:]
    zero = torch.zeros(n - 1, dtype=torch.long)
    assert pattern_components(zero, r, c, 1, n)[1].tolist() == [1]
    both = (torch.cat([zero, zero]), torch.cat([r, c]), torch.cat([c, r]))
    assert pattern_components(*both, 1, n, symmetric=True)[1].tolist() == [1]


def test_connected_components_layouts():
    W = torch.block_diag(torch.ones(3, 3), torch.ones(2, 2), torch.zeros(1, 1))
    assert connected_components(W).tolist() == [3]
    assert connected_components(W.to_sparse()).tolist() == [3]
    assert connected_components(W.to_sparse_csr()).tolist() == [3]
    batch = torch.stack([W, torch.ones(6, 6)])
    assert connected_components(batch).tolist() == [3, 1]
    assert connected_components(batch.to_sparse()).tolist() == [3, 1]


def test_laplacian_recognisers():
    W = torch.tensor([[0, 1, 0], [1, 0, 2], [0, 2, 0]], dtype=torch.float64)
    L = torch.diag(W.sum(1)) - W
    d = W.sum(1).rsqrt()
    L_sym = torch.eye(3, dtype=torch.float64) - d[:, None] * W * d[None, :]

    def parts(A):
        idx = A.nonzero().T
        return A[idx[0], idx[1]], idx[0], idx[1]

    v, r, c = parts(L)
    assert laplacian_like(v, r, c) and combinatorial_laplacian(v, r, c, r, 3)
    v, r, c = parts(L_sym)
    # L_sym has the sign pattern but not the row sums: it must be declared, not detected
    assert laplacian_like(v, r, c) and not combinatorial_laplacian(v, r, c, r, 3)
    v, r, c = parts(-L)
    assert not laplacian_like(v, r, c)


def test_zero_certificate_counts_only_a_shortfall():
    lam = torch.tensor([[0.0, 1e-13, 0.3, 0.5], [0.0, 1e-3, 2e-3, 0.5], [0.0, 0.0, 0.0, 0.0]])
    comps = torch.tensor([2, 2, 7])
    tol = torch.full((3,), 1e-9)
    # entry 1 found one zero for two components; entry 2 has more components than k
    assert zero_certificate(lam, comps, tol).tolist() == [True, False, True]
    # more zeros than components (a nearly cut graph) is not a failure
    assert zero_certificate(lam[:1], torch.tensor([1]), tol[:1]).tolist() == [True]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_isolated_nodes_are_components(dtype):
    W = torch.zeros(5, 5, dtype=dtype)
    W[0, 1] = W[1, 0] = 1.0
    assert connected_components(W.to_sparse()).tolist() == [4]
