r"""Graph Laplacians of a non-negative symmetric affinity ``W``, dense or sparse.

.. math::

    L = D - W, \qquad L_{\text{sym}} = \mathbb{1}_{d > 0} - D^{-1/2} W D^{-1/2},
    \qquad D = \operatorname{diag}(d),\; d_i = \textstyle\sum_j W_{ij}.

**Isolated nodes.** Where ``d_i = 0`` the textbook ``I - D^{-1/2} W D^{-1/2}`` is undefined. We set
``D^{-1/2}_{ii} = 0`` *and* ``(L_sym)_{ii} = 0`` there, so an isolated node contributes a zero
eigenvalue (eigenvector ``e_i``), exactly like any other connected component: the multiplicity of
the eigenvalue 0 of ``L_sym`` equals the number of connected components, as it does for ``L``
(the alternative ``(L_sym)_{ii} = 1`` would give such a node the eigenvalue 1 and break that count).
The spectrum stays in ``[0, 2]``.

**Degree floor.** ``D^{-1/2}`` amplifies rounding in tiny degrees and its derivative is
``d^{-3/2}``, so a node counts as isolated when

    ``d_i <= max(eps * max_j d_j, sqrt(tiny))``

over its own graph, with ``eps`` the machine epsilon of ``W``'s dtype by default and ``tiny`` its
smallest normal number. The relative part says such a degree is below the rounding level of ``D``
and keeps ``L_sym`` invariant to a rescaling of ``W``; the absolute part (``1.1e-19`` in float32,
``1.5e-154`` in float64) bounds ``d^{-3/2}`` by ``tiny^{-3/4}`` (``3e28`` in float32), so the
backward cannot overflow even when the whole graph has collapsed (a Gaussian kernel whose
bandwidth went to zero): such a graph is read as edgeless. The floor is applied without gradient,
and the gradient through a floored node's ``D^{-1/2}`` is zero, so forward and backward are
finite for any non-negative finite ``W`` (all-zero graphs included; ``L_sym`` is then the zero
matrix). Edges to a floored node, weighing at most the floor, are dropped from ``L_sym``; the
spectrum stays in ``[0, 2]``.

Sparse inputs give sparse outputs with the same batch shape and the pattern of ``W`` plus the full
diagonal (explicit zeros included), built in sorted order (``is_coalesced=True``) by a merge, not a
sort. Values are differentiable with respect to ``W``'s values. ``W`` is assumed symmetric and
non-negative (not checked: that would cost a pass and a host sync per call).
"""

from __future__ import annotations

import torch
from torch import nn

from cheeger.graph._coo import coo_tensor
from cheeger.linalg.operator import SymmetricOperator

__all__ = [
    "Laplacian",
    "degree",
    "laplacian",
    "normalized_laplacian",
    "normalized_rayleigh_quotients",
]


def _check(W: torch.Tensor, caller: str) -> None:
    if W.layout not in (torch.strided, torch.sparse_coo):
        raise ValueError(f"{caller}: W must be a dense or sparse COO tensor, got layout {W.layout}")
    if W.is_sparse and W.dense_dim() != 0:
        raise ValueError(f"{caller}: sparse W must have all dims sparse, got {W.dense_dim()} dense")
    if W.dim() not in (2, 3) or W.shape[-1] != W.shape[-2]:
        raise ValueError(f"{caller}: W must be (n, n) or (B, n, n), got shape {tuple(W.shape)}")
    if not torch.is_floating_point(W):
        raise ValueError(f"{caller}: W must be floating point, got dtype {W.dtype}")


def _coo_parts(W: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """``(3, nnz)`` sorted ``(batch, row, col)`` indices, values, ``B`` and ``n`` of a sparse W."""
    W = W if W.is_coalesced() else W.coalesce()
    indices, values = W.indices(), W.values()
    if W.dim() == 2:
        indices = torch.cat([torch.zeros_like(indices[:1]), indices])
        return indices, values, 1, W.shape[-1]
    return indices, values, W.shape[0], W.shape[-1]


def _row_sums(indices: torch.Tensor, values: torch.Tensor, batch: int, n: int) -> torch.Tensor:
    flat_rows = indices[0] * n + indices[1]
    return values.new_zeros(batch * n).index_add(0, flat_rows, values)  # (B n,)


def degree(W: torch.Tensor) -> torch.Tensor:
    """Degrees ``d_i = sum_j W_ij``.

    Args:
        W: ``(n, n)`` or ``(B, n, n)``, dense or sparse COO.

    Returns:
        ``(n,)`` or ``(B, n)`` dense degrees, differentiable in ``W``.

    Example:
        >>> degree(torch.tensor([[0.0, 2.0], [2.0, 0.0]]).to_sparse()).tolist()
        [2.0, 2.0]
    """
    _check(W, "degree")
    if not W.is_sparse:
        return W.sum(-1)
    indices, values, batch, n = _coo_parts(W)
    return _row_sums(indices, values, batch, n).reshape(W.shape[:-1])


def _with_diagonal(
    indices: torch.Tensor, off_values: torch.Tensor, diag_values: torch.Tensor,
    batch: int, n: int, batched: bool,
) -> torch.Tensor:
    """Merge sorted off-diagonal entries ``(3, m)`` with a full diagonal ``(B n,)`` into one COO.

    An off-diagonal entry ``(b, r, c)`` is preceded by exactly ``b n + r + [c > r]`` diagonal
    entries, which fixes its output slot; the diagonal fills the remaining slots in order.
    """
    b, r, c = indices
    m, device = off_values.shape[0], b.device
    slot = torch.arange(m, device=device) + b * n + r + (c > r).long()  # (m,)
    free = torch.ones(m + batch * n, dtype=torch.bool, device=device)
    free[slot] = False
    diag_slot = free.nonzero().squeeze(1)  # (B n,) in node order
    nodes = torch.arange(batch * n, device=device)
    merged_indices = torch.empty(3, m + batch * n, dtype=torch.long, device=device)
    merged_indices.index_copy_(1, slot, indices)
    merged_indices.index_copy_(1, diag_slot, torch.stack([nodes // n, nodes % n, nodes % n]))
    source = torch.empty(m + batch * n, dtype=torch.long, device=device)
    source.index_copy_(0, slot, torch.arange(m, device=device))
    source.index_copy_(0, diag_slot, m + nodes)
    # index_select, not [source]: its backward is an index_add, 3x faster than index_put here
    values = torch.cat([off_values, diag_values]).index_select(0, source)
    size = (batch, n, n)
    if not batched:
        merged_indices, size = merged_indices[1:], (n, n)
    return coo_tensor(merged_indices, values, size)


def _split_self_loops(indices: torch.Tensor, values: torch.Tensor, batch: int, n: int):
    """Off-diagonal indices and values, and the diagonal of W as a dense ``(B n,)`` vector."""
    loop = indices[1] == indices[2]
    flat = torch.where(loop, indices[0] * n + indices[1], 0)  # off-diagonal entries add 0 below
    loop_values = torch.where(loop, values, torch.zeros_like(values))
    self_weight = values.new_zeros(batch * n).index_add(0, flat, loop_values)
    kept = (~loop).nonzero().squeeze(1)
    return indices.index_select(1, kept), values.index_select(0, kept), self_weight


def laplacian(W: torch.Tensor) -> torch.Tensor:
    """Combinatorial Laplacian ``L = D - W``.

    Args:
        W: ``(n, n)`` or ``(B, n, n)`` non-negative symmetric affinity, dense or sparse COO.

    Returns:
        ``L`` with the shape and layout of ``W`` (sparse: pattern of ``W`` plus the diagonal,
        coalesced). Rows sum to zero; self loops of ``W`` cancel out of ``L``.

    Example:
        >>> laplacian(torch.tensor([[0.0, 2.0], [2.0, 0.0]])).tolist()
        [[2.0, -2.0], [-2.0, 2.0]]
    """
    _check(W, "laplacian")
    if not W.is_sparse:
        return torch.diag_embed(W.sum(-1)) - W
    indices, values, batch, n = _coo_parts(W)
    d = _row_sums(indices, values, batch, n)  # (B n,)
    off_indices, off_values, self_weight = _split_self_loops(indices, values, batch, n)
    return _with_diagonal(off_indices, -off_values, d - self_weight, batch, n, W.dim() == 3)


def _inverse_sqrt_degree(d: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``D^{-1/2}`` with the floor of the module docstring, and the mask of non-isolated nodes.

    Args:
        d: ``(B, n)`` degrees.
        eps: relative floor.
    """
    tiny = torch.finfo(d.dtype).tiny
    floor = (eps * d.detach().amax(-1, keepdim=True)).clamp_min(tiny**0.5)  # (B, 1)
    connected = d.detach() > floor  # (B, n); all False for an all-zero graph
    # Substitute 1 before rsqrt so the unused branch is finite: where() then passes a zero gradient.
    safe = torch.where(connected, d, torch.ones_like(d))
    return torch.where(connected, safe.rsqrt(), torch.zeros_like(d)), connected


def normalized_laplacian(W: torch.Tensor, eps: float | None = None) -> torch.Tensor:
    """Symmetric normalised Laplacian ``L_sym = I - D^{-1/2} W D^{-1/2}`` (stable public interface).

    Isolated nodes (degree at most ``eps`` times the largest degree of their graph, or below
    ``sqrt(finfo.tiny)``) get a zero row and column, so ``L_sym`` has as many zero eigenvalues as
    the graph has connected components; see the module docstring for the convention and why
    forward and backward stay finite.

    Args:
        W: ``(n, n)`` or ``(B, n, n)`` non-negative symmetric affinity, dense or sparse COO.
        eps: relative degree floor; ``None`` means ``torch.finfo(W.dtype).eps``.

    Returns:
        ``L_sym`` with the shape and layout of ``W`` (sparse: pattern of ``W`` plus the diagonal,
        coalesced); symmetric, spectrum in ``[0, 2]``.

    Example:
        >>> W = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
        >>> normalized_laplacian(W).tolist()
        [[1.0, -1.0, 0.0], [-1.0, 1.0, 0.0], [0.0, 0.0, 0.0]]
    """
    _check(W, "normalized_laplacian")
    eps = torch.finfo(W.dtype).eps if eps is None else float(eps)
    if not eps >= 0:
        raise ValueError(f"normalized_laplacian: eps must be >= 0, got {eps}")
    if not W.is_sparse:
        d = W.sum(-1)  # (..., n)
        flat = d.reshape(-1, d.shape[-1])  # (B, n)
        inv_sqrt, connected = (t.reshape(d.shape) for t in _inverse_sqrt_degree(flat, eps))
        # the scale is formed first: d_i^-1/2 d_j^-1/2 commutes exactly, so L_sym is exactly
        # symmetric in floating point (w d_i^-1/2 d_j^-1/2 in another order is not)
        scaled = W * (inv_sqrt[..., :, None] * inv_sqrt[..., None, :])
        return torch.diag_embed(connected.to(W.dtype)) - scaled
    indices, values, batch, n = _coo_parts(W)
    d = _row_sums(indices, values, batch, n)
    inv_sqrt, connected = _inverse_sqrt_degree(d.reshape(batch, n), eps)
    inv_sqrt, connected = inv_sqrt.reshape(-1), connected.reshape(-1)  # (B n,)
    off_indices, off_values, self_weight = _split_self_loops(indices, values, batch, n)
    rows = off_indices[0] * n + off_indices[1]
    cols = off_indices[0] * n + off_indices[2]
    off = -off_values * (inv_sqrt.index_select(0, rows) * inv_sqrt.index_select(0, cols))
    diag = connected.to(W.dtype) - self_weight * inv_sqrt.square()
    return _with_diagonal(off_indices, off, diag, batch, n, W.dim() == 3)


def normalized_rayleigh_quotients(
    W: torch.Tensor, U: torch.Tensor, eps: float | None = None
) -> torch.Tensor:
    r"""Rayleigh quotients ``u_j^T L_sym u_j / u_j^T u_j`` of ``L_sym`` of ``W``, not built.

    .. math::

        u^\top L_{\text{sym}} u = \sum_i \mathbb{1}_{d_i > 0}\, u_i^2 - v^\top W v,
        \qquad v = D^{-1/2} u,

    with :func:`normalized_laplacian`'s conventions (isolated and floored nodes, self loops), so
    the result equals ``rayleigh(normalized_laplacian(W), U)`` up to rounding, at the cost of one
    sparse product instead of building ``L_sym`` (a merge of the diagonal into the pattern) and
    multiplying by it. Differentiable in ``W`` (through ``v^T W v`` and the degrees) and in
    ``U``; without autograd (float32/float64) the product is
    :class:`~cheeger.linalg.SymmetricOperator`'s block-diagonal CSR one.

    Rounding: the two terms are each about ``||u||^2`` and cancel for small quotients, so the
    absolute error is about ``eps ||u||^2`` (``eps`` of the dtype) rather than relative to the
    quotient: in float32 on a 15 x 20 grid, k = 16, 1.2e-7 against 2.6e-8 for
    ``rayleigh(normalized_laplacian(W), U)``, i.e. ~5e-4 relative on a quotient of 2.6e-4.
    Compute in float64 where small quotients must be accurate.

    Args:
        W: ``(n, n)`` or ``(B, n, n)`` non-negative symmetric affinity, dense or sparse COO.
        U: ``(n, k)`` or ``(B, n, k)`` nonzero columns.
        eps: relative degree floor, as in :func:`normalized_laplacian`.

    Returns:
        ``(k,)`` or ``(B, k)``.

    Example:
        >>> W = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
        >>> normalized_rayleigh_quotients(W.to_sparse(), torch.tensor([[1.0], [-1.0], [1.0]]))
        tensor([1.3333])
    """
    _check(W, "normalized_rayleigh_quotients")
    eps = torch.finfo(W.dtype).eps if eps is None else float(eps)
    if not eps >= 0:
        raise ValueError(f"normalized_rayleigh_quotients: eps must be >= 0, got {eps}")
    batched = W.dim() == 3
    if U.dim() != W.dim() or U.shape[-2] != W.shape[-1] or U.shape[:-2] != W.shape[:-2]:
        raise ValueError(f"normalized_rayleigh_quotients: U must be {tuple(W.shape[:-1])} + (k,) "
                         f"for W of shape {tuple(W.shape)}, got {tuple(U.shape)}")  # fmt: skip
    U3 = U if batched else U[None]  # (B, n, k)
    if W.is_sparse:
        indices, values, batch, n = _coo_parts(W)
        d = _row_sums(indices, values, batch, n).reshape(batch, n)
    else:
        W3 = W if batched else W[None]
        d = W3.sum(-1)  # (B, n)
    inv_sqrt, connected = _inverse_sqrt_degree(d, eps)  # (B, n) each
    V = U3 * inv_sqrt[..., None]  # (B, n, k)
    if not W.is_sparse:
        WV = W3 @ V
    elif (torch.is_grad_enabled() and (values.requires_grad or V.requires_grad)) or (
        values.dtype not in (torch.float32, torch.float64)  # no CPU CSR product in half types
    ):
        flat = V.reshape(-1, V.shape[-1])  # (B n, k)
        rows, cols = indices[0] * n + indices[1], indices[0] * n + indices[2]
        gathered = flat.index_select(0, cols) * values[:, None]  # (nnz, k)
        WV = flat.new_zeros(flat.shape).index_add(0, rows, gathered).reshape(V.shape)
    else:
        WV = SymmetricOperator.from_tensor(W).matmul(V)  # (B, n, k)
    squares = U3.square()  # (B, n, k)
    quadratic = (squares * connected[..., None]).sum(1) - (V * WV).sum(1)  # (B, k)
    out = quadratic / squares.sum(1)
    return out if batched else out[0]


class Laplacian(nn.Module):
    """Module form of :func:`laplacian` (``normalized=False``) and :func:`normalized_laplacian`.

    Args:
        normalized: return ``L_sym`` instead of ``L``.
        eps: relative degree floor of ``L_sym`` (``None``: machine epsilon of ``W``'s dtype).

    Example:
        >>> Laplacian(normalized=True)(torch.ones(1, 2, 2) - torch.eye(2)).tolist()
        [[[1.0, -1.0], [-1.0, 1.0]]]
    """

    def __init__(self, normalized: bool = False, eps: float | None = None) -> None:
        super().__init__()
        self.normalized, self.eps = normalized, eps

    def forward(self, W: torch.Tensor) -> torch.Tensor:
        """The chosen Laplacian of ``W`` ``(n, n)`` or ``(B, n, n)``, same layout."""
        return normalized_laplacian(W, self.eps) if self.normalized else laplacian(W)

    def extra_repr(self) -> str:
        return f"normalized={self.normalized}, eps={self.eps}"
