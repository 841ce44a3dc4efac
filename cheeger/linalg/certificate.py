"""A cheap certificate for the bottom of a graph Laplacian's spectrum: connected components.

For a graph Laplacian ``L = D - W`` or ``L_sym = I - D^-1/2 W D^-1/2`` with non-negative weights,
the multiplicity of the eigenvalue 0 equals the number ``c`` of connected components of the graph
(one null vector per component: its indicator, or ``D^1/2`` times it). An iterative eigensolver
that reports fewer than ``min(c, k)`` (numerically) zero eigenvalues has therefore missed copies
of the null space, whatever its residuals say: a block Krylov method cannot find more copies of an
eigenvalue than its block holds. Counting components takes ``O(nnz)`` work per round and
``O(log n)`` rounds (FastSV: Zhang, Azad and Hu 2020, hooking and shortcutting on the parent
array), so the check is cheap beside any solve.

The certificate only applies to graph Laplacians. ``L = D - W`` is recognised from its entries
(off-diagonals ``<= 0``, zero row sums); ``L_sym`` cannot be (its null vector ``D^1/2 1`` needs the
degrees, which the matrix does not hold), so a caller that builds one says so
(``eigsh(..., laplacian=True)``, as the spectral head does).
"""

from __future__ import annotations

import torch

__all__ = [
    "combinatorial_laplacian",
    "connected_components",
    "laplacian_like",
    "pattern_components",
    "zero_certificate",
]


def pattern_components(
    bidx: torch.Tensor,
    rows: torch.Tensor,
    cols: torch.Tensor,
    batch: int,
    n: int,
    *,
    symmetric: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Connected components of ``batch`` graphs on ``n`` nodes given by their edges.

    Edge ``e`` joins nodes ``rows[e]`` and ``cols[e]`` of graph ``bidx[e]`` (self loops are
    harmless).

    Args:
        bidx, rows, cols: ``(E,)`` integer tensors.
        batch, n: number of graphs and of nodes per graph.
        symmetric: every edge is listed in both directions (the pattern of a symmetric matrix),
            so the list is not doubled; otherwise give each undirected edge once or twice.

    Returns:
        ``(labels (batch, n), counts (batch,))``: ``labels[b, i]`` is the smallest node index of
        ``i``'s component (so two nodes share a component iff their labels agree), ``counts[b]``
        the number of components of graph ``b``.

    Example:
        >>> import torch
        >>> e = torch.tensor([0, 2])  # two edges, 0-1 and 2-3, in one graph of 5 nodes
        >>> labels, counts = pattern_components(torch.zeros(2, dtype=torch.long), e, e + 1, 1, 5)
        >>> labels.tolist(), counts.tolist()
        ([[0, 0, 2, 2, 4]], [3])
    """
    device = rows.device
    N = batch * n
    u = (bidx * n + rows).long()
    v = (bidx * n + cols).long()
    if not symmetric:  # both directions: hooking is one-sided
        u, v = torch.cat([u, v]), torch.cat([v, u])
    f = torch.arange(N, device=device)  # parent of each node; roots are f[i] == i
    gf = f
    while True:
        # FastSV: stochastic hooking f[f[u]] <- min gf[v], aggressive hooking f[u] <- min gf[v],
        # shortcutting f[u] <- min gf[u]; every update only lowers a parent, so it terminates
        gv = gf[v]
        fn = f.clone()
        fn.scatter_reduce_(0, f[u], gv, reduce="amin")
        fn.scatter_reduce_(0, u, gv, reduce="amin")
        fn = torch.minimum(fn, gf)
        gfn = fn[fn]
        if torch.equal(gfn, gf):
            break
        f, gf = fn, gfn
    while True:  # full compression: every node points at its root, the component's smallest id
        ff = f[f]
        if torch.equal(ff, f):
            break
        f = ff
    labels = f.view(batch, n) - torch.arange(batch, device=device)[:, None] * n
    roots = (f == torch.arange(N, device=device)).view(batch, n)
    return labels, roots.sum(-1)


def laplacian_like(values: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> bool:
    """Whether every stored off-diagonal entry is ``<= 0`` (as in ``L`` and ``L_sym``).

    Necessary for a graph Laplacian, not sufficient: ``(L_1 + L_2) / 2`` of two normalised
    Laplacians with different degrees has the sign pattern but no zero eigenvalue.
    """
    off = rows != cols
    return bool((values[off] <= 0).all())


def combinatorial_laplacian(
    values: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, grow: torch.Tensor, size: int
) -> bool:
    """Whether the stored entries form ``L = D - W`` with ``W >= 0``: off-diagonals ``<= 0`` and
    every row sum zero to rounding, so the indicator of each component is a null vector.

    Args:
        values, rows, cols: the stored entries (``rows``/``cols`` within each matrix).
        grow: ``(nnz,)`` each entry's row over the whole batch (``b * n + row``).
        size: ``B * n``.
    """
    if not laplacian_like(values, rows, cols):
        return False
    rowsum = torch.zeros(size, dtype=values.dtype, device=values.device)
    rowabs = torch.zeros_like(rowsum)
    rowsum.index_add_(0, grow, values)
    rowabs.index_add_(0, grow, values.abs())
    eps = torch.finfo(values.dtype).eps
    return bool((rowsum.abs() <= 64 * eps * rowabs).all())


def connected_components(A: torch.Tensor) -> torch.Tensor:
    """Number of connected components of the graph of each matrix's nonzero off-diagonal pattern.

    Args:
        A: ``(n, n)`` or ``(B, n, n)``, dense, sparse COO (2 or 3 sparse dims) or CSR ``(n, n)``;
            e.g. an affinity ``W`` or a Laplacian.

    Returns:
        ``(B,)`` counts (``(1,)`` for an unbatched input).

    Example:
        >>> import torch
        >>> W = torch.block_diag(torch.ones(3, 3), torch.ones(2, 2))
        >>> connected_components(W).tolist()
        [2]
    """
    if A.layout == torch.sparse_csr:
        A = A.to_sparse_coo()
    batched = A.dim() == 3
    B, n = (A.shape[0] if batched else 1), A.shape[-1]
    if A.layout == torch.strided:
        idx = (A if batched else A.unsqueeze(0)).detach().nonzero().T
        bidx, rows, cols = idx[0], idx[1], idx[2]
    else:
        A = A.detach().coalesce()
        keep = A.values() != 0
        idx = A.indices()[:, keep]
        bidx = idx[0] if batched else torch.zeros_like(idx[0])
        rows, cols = idx[-2], idx[-1]
    return pattern_components(bidx, rows, cols, B, n)[1]  # no symmetry assumed of A


def zero_certificate(
    lam: torch.Tensor, components: torch.Tensor, zero_tol: torch.Tensor
) -> torch.Tensor:
    """Whether a computed bottom spectrum holds every null vector a Laplacian must have.

    ``L`` (or ``L_sym``) of a graph with ``c`` components has exactly ``c`` zero eigenvalues, so
    the bottom ``k`` computed eigenvalues must include at least ``min(c, k)`` within the
    solve's accuracy of zero. More may lie there (a nearly cut graph has eigenvalues below any
    rounding threshold), so only a shortfall is a failure.

    Args:
        lam: ``(B, k)`` computed eigenvalues.
        components: ``(B,)`` number of components.
        zero_tol: ``(B,)`` absolute threshold under which an eigenvalue counts as zero (e.g. ten
            times the residual tolerance times ``||A||``: a residual ``r`` bounds the eigenvalue
            error by ``r``).

    Returns:
        ``(B,)`` bool.
    """
    found = (lam.abs() <= zero_tol[:, None]).sum(-1)
    return found >= components.clamp_max(lam.shape[-1])
