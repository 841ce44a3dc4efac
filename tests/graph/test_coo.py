"""The coalesced COO constructor: every kind of incoming gradient reaches the right values."""

from __future__ import annotations

import torch

from cheeger.graph._coo import _values_on_pattern, coo_tensor

INDICES = torch.tensor([[0, 0, 1, 1, 1], [0, 2, 0, 1, 2], [1, 0, 2, 1, 0]])  # (3, 5) sorted
SIZE = (2, 3, 3)


def reference_grad(loss_of_sparse) -> torch.Tensor:
    """Gradient on the values through torch's own constructor."""
    values = torch.linspace(0.5, 2.5, 5, dtype=torch.float64, requires_grad=True)
    loss_of_sparse(torch.sparse_coo_tensor(INDICES, values, SIZE, check_invariants=True)).backward()
    return values.grad


def our_grad(loss_of_sparse) -> torch.Tensor:
    values = torch.linspace(0.5, 2.5, 5, dtype=torch.float64, requires_grad=True)
    S = coo_tensor(INDICES, values, SIZE)
    assert S.is_coalesced() and torch.equal(S.indices(), INDICES)
    loss_of_sparse(S).backward()
    return values.grad


def test_gradient_through_values_uses_the_same_pattern():
    weights = torch.arange(5.0, dtype=torch.float64)
    torch.testing.assert_close(our_grad(lambda S: (S.values() * weights).sum()), weights)


def test_gradient_through_a_dense_view():
    weights = torch.randn(SIZE, dtype=torch.float64, generator=torch.Generator().manual_seed(0))

    def loss(S):
        return (S.to_dense() * weights).sum()

    torch.testing.assert_close(our_grad(loss), reference_grad(loss))
    torch.testing.assert_close(our_grad(loss), weights[tuple(INDICES)])


def test_gradient_arriving_on_a_different_sparse_pattern():
    # Adding a sparse tensor with other entries makes the upstream gradient's pattern a superset.
    other = torch.sparse_coo_tensor(torch.tensor([[0, 1], [1, 2], [1, 2]]),
                                    torch.tensor([3.0, 4.0], dtype=torch.float64), SIZE,
                                    check_invariants=True)
    weights = torch.randn(SIZE, dtype=torch.float64, generator=torch.Generator().manual_seed(1))

    def loss(S):
        return ((S + other).coalesce().to_dense() * weights).sum()

    torch.testing.assert_close(our_grad(loss), reference_grad(loss))


def test_gradient_with_an_empty_upstream_pattern():
    empty = torch.sparse_coo_tensor(torch.zeros(3, 0, dtype=torch.long),
                                    torch.zeros(0, dtype=torch.float64), SIZE,
                                    check_invariants=True)
    assert torch.equal(_values_on_pattern(empty, INDICES, SIZE),
                       torch.zeros(5, dtype=torch.float64))


def test_gradcheck():
    values = torch.rand(5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: coo_tensor(INDICES, v, SIZE).to_dense(), (values,))


def test_dense_upstream_gradient_is_gathered_on_the_pattern():
    dense = torch.arange(18.0, dtype=torch.float64).reshape(SIZE)
    expected = torch.tensor([1.0, 6.0, 11.0, 13.0, 15.0], dtype=torch.float64)
    assert torch.equal(_values_on_pattern(dense, INDICES, SIZE), expected)
