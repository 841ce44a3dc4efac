"""A coalesced COO constructor whose backward is a lookup, not a ``sparse_mask``.

``torch.sparse_coo_tensor(indices, values, ...)`` is differentiable in ``values``, but its backward
runs ``sparse_mask`` on the incoming gradient, which profiled at about 40% of the whole
affinity + ``L_sym`` forward-backward on a 4 x 64 x 64 grid (6 ms per call for 64k entries). The
gradient that reaches a graph almost always arrives on the graph's own pattern (``values()``'s
backward reuses the very same index tensor), so :func:`coo_tensor` checks for that and returns the
gradient's values as they are; other sparse gradients are matched by a sorted-key search, dense ones
by a gather.
"""

from __future__ import annotations

import torch

__all__ = ["coo_tensor"]


def _linear_keys(indices: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    """Row-major linear position of each ``(sparse_dim, nnz)`` index column."""
    keys = torch.zeros_like(indices[0])
    for dim, extent in enumerate(size[: indices.shape[0]]):
        keys = keys * extent + indices[dim]
    return keys


def _values_on_pattern(grad: torch.Tensor, indices: torch.Tensor, size: tuple[int, ...]):
    """The entries of ``grad`` at the sorted unique ``indices``, zero where ``grad`` has none."""
    if not grad.is_sparse:
        return grad[tuple(indices)]
    grad = grad if grad.is_coalesced() else grad.coalesce()
    grad_indices, grad_values = grad._indices(), grad._values()
    if grad_indices.shape == indices.shape and (
        grad_indices.data_ptr() == indices.data_ptr() or torch.equal(grad_indices, indices)
    ):
        return grad_values
    ours, theirs = _linear_keys(indices, size), _linear_keys(grad_indices, size)
    if theirs.numel() == 0:
        return grad_values.new_zeros(ours.shape)
    slot = torch.searchsorted(theirs, ours).clamp_max(theirs.numel() - 1)  # (nnz,)
    found = theirs[slot] == ours
    return torch.where(found, grad_values[slot], torch.zeros_like(grad_values[slot]))


class _CooFromValues(torch.autograd.Function):
    @staticmethod
    def forward(ctx, values: torch.Tensor, indices: torch.Tensor, size: tuple[int, ...]):
        ctx.save_for_backward(indices)
        ctx.size = size
        return torch.sparse_coo_tensor(
            indices, values, size, is_coalesced=True, check_invariants=False
        )

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (indices,) = ctx.saved_tensors
        return _values_on_pattern(grad, indices, ctx.size), None, None


def coo_tensor(indices: torch.Tensor, values: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    """Coalesced COO tensor from sorted unique ``indices``, differentiable in ``values``.

    Args:
        indices: ``(sparse_dim, nnz)`` int64, sorted lexicographically, no duplicates (not
            checked: the callers build them so).
        values: ``(nnz,)`` values.
        size: the full shape.

    Returns:
        The sparse tensor, flagged coalesced.

    Example:
        >>> v = torch.tensor([1.0, 2.0], requires_grad=True)
        >>> coo_tensor(torch.tensor([[0, 1], [1, 0]]), v, (2, 2)).to_dense().tolist()
        [[0.0, 1.0], [2.0, 0.0]]
    """
    return _CooFromValues.apply(values, indices, tuple(size))
