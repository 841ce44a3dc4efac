"""SymmetricOperator: products, scale and pattern gradients agree across storage layouts."""

from __future__ import annotations

import pytest
import torch

from cheeger.linalg import SymmetricOperator

D = torch.float64


@pytest.fixture
def batch(grid_laplacian):
    graphs = [grid_laplacian(6, 7, seed=s, regions=2, connectivity=8) for s in range(3)]
    return graphs, torch.stack(graphs).coalesce()  # (3, 42, 42) COO


def test_products_agree_with_dense_for_every_layout(batch):
    graphs, coo = batch
    dense = torch.stack([g.to_dense() for g in graphs])
    X = torch.randn(3, 42, 5, dtype=D, generator=torch.Generator().manual_seed(0))
    for A, want in [(dense, dense @ X), (coo, dense @ X)]:
        assert torch.allclose(SymmetricOperator.from_tensor(A).matmul(X), want, atol=1e-13)
    one = SymmetricOperator.from_tensor(graphs[1].to_sparse_csr())
    assert not one.batched
    assert torch.allclose(one.matmul(X[1:2]), dense[1:2] @ X[1:2], atol=1e-13)
    # a non-contiguous block (Lanczos passes transposed views)
    Xt = torch.randn(3, 5, 42, dtype=D).mT
    assert torch.allclose(SymmetricOperator.from_tensor(coo).matmul(Xt), dense @ Xt, atol=1e-13)


def test_products_use_32_bit_indices_on_the_same_values(batch):
    _, coo = batch
    op = SymmetricOperator.from_tensor(coo)
    assert op.csr.col_indices().dtype == torch.int64  # what the multigrid set-up reads
    assert op.product.col_indices().dtype == torch.int32
    assert op.product.crow_indices().dtype == torch.int32
    assert op.product.values().data_ptr() == op.csr.values().data_ptr()
    assert torch.equal(op.product.col_indices().long(), op.csr.col_indices())
    assert torch.equal(op.product.crow_indices().long(), op.csr.crow_indices())
    assert SymmetricOperator.from_tensor(coo.to_dense()).product is None


def test_scale_and_pattern_inner_agree_with_dense(batch):
    graphs, coo = batch
    dense = torch.stack([g.to_dense() for g in graphs])
    sparse_op, dense_op = SymmetricOperator.from_tensor(coo), SymmetricOperator.from_tensor(dense)
    assert torch.allclose(sparse_op.scale(), dense_op.scale(), atol=1e-14)
    g = torch.Generator().manual_seed(1)
    P, Q = torch.randn(3, 42, 4, dtype=D, generator=g), torch.randn(3, 42, 4, dtype=D, generator=g)
    full = dense_op.pattern_inner(P, Q)  # (3, 42, 42)
    i = coo.indices()
    assert torch.allclose(sparse_op.pattern_inner(P, Q), full[i[0], i[1], i[2]], atol=1e-13)
