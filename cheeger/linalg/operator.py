"""A batched symmetric linear operator over dense or sparse storage.

The eigensolver and its backward need four things of ``A``: products ``A X`` with blocks of vectors,
the scale of its spectrum, its gradient restricted to its own storage pattern, and (for tests) its
dense form. :class:`SymmetricOperator` gives them for

* a dense tensor ``(n, n)`` or ``(B, n, n)``;
* a torch sparse COO tensor ``(n, n)`` or ``(B, n, n)`` (3 sparse dims, as built by
  :mod:`cheeger.graph`);
* a torch sparse CSR tensor ``(n, n)``.

Sparse batches are stored as one block-diagonal CSR matrix ``(B n, B n)``: a single sparse-dense
product then serves the whole batch (CSR products are 15-30x faster than COO ones here, see
``shared/notes/eigensolvers.md``), and nothing of size ``n x n`` is ever allocated.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch

__all__ = ["SymmetricOperator"]


def compact_csr(csr: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """``csr`` with 32-bit indices (when they fit) and values in ``dtype`` (default: its own, the
    values then shared): products convert int64 indices to int32 inside every call."""
    crow, col = csr.crow_indices(), csr.col_indices()
    if max(csr.shape) < 2**31 and csr.values().numel() < 2**31:
        crow, col = crow.to(torch.int32), col.to(torch.int32)
    values = csr.values() if dtype is None else csr.values().to(dtype)
    return torch.sparse_csr_tensor(
        crow, col, values, csr.shape, check_invariants=False
    )  # the pattern is csr's own: valid by construction


def _coo_batch_indices(A: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return (batch, row, col) index vectors of a coalesced COO tensor of 2 or 3 sparse dims."""
    A = A if A.is_coalesced() else A.coalesce()
    idx = A.indices()
    if A.sparse_dim() == 2:
        return torch.zeros_like(idx[0]), idx[0], idx[1]
    return idx[0], idx[1], idx[2]


@dataclass
class SymmetricOperator:
    """Symmetric ``A`` as a batch of ``B`` matrices of order ``n``.

    Attributes:
        batch: ``B``; 1 for an unbatched input (``batched`` tells which).
        n: order of each matrix.
        batched: whether the input had a batch dimension.
        dense: ``(B, n, n)`` dense values, or ``None`` for sparse storage.
        csr: block-diagonal ``(B n, B n)`` CSR matrix, or ``None`` for dense storage.
        product: :func:`compact_csr` of ``csr`` (32-bit indices, the same values), for products;
            ``None`` for dense storage (int64 indices are converted inside every product:
            measured 10 of 30 us with 4 columns at n = 690, B = 8).
        rows, cols, bidx: the pattern of a sparse input (entry ``e`` sits at
            ``(bidx[e], rows[e], cols[e])``), in the order of the input's values.
        layout: ``torch.strided``, ``torch.sparse_coo`` or ``torch.sparse_csr`` (the input's).
    """

    batch: int
    n: int
    batched: bool
    dense: torch.Tensor | None
    csr: torch.Tensor | None
    product: torch.Tensor | None
    rows: torch.Tensor | None
    cols: torch.Tensor | None
    bidx: torch.Tensor | None
    layout: torch.layout
    dtype: torch.dtype
    device: torch.device

    @classmethod
    def from_tensor(cls, A: torch.Tensor) -> SymmetricOperator:
        """Wrap ``A`` (dense, COO or CSR; values are read detached).

        Raises:
            ValueError: if ``A`` is not square, has the wrong rank, or is not floating point.
        """
        if not torch.is_floating_point(A):
            raise ValueError(f"eigsh: A must be float32 or float64, got dtype {A.dtype}")
        if A.shape[-1] != A.shape[-2]:
            raise ValueError(
                f"eigsh: A must be square in its last two dims, got shape {tuple(A.shape)}"
            )
        if A.layout == torch.strided:
            if A.dim() not in (2, 3):
                raise ValueError(
                    f"eigsh: dense A must be (n, n) or (B, n, n), got {tuple(A.shape)}"
                )
            batched = A.dim() == 3
            dense = (A if batched else A.unsqueeze(0)).detach()
            return cls(
                dense.shape[0],
                dense.shape[-1],
                batched,
                dense,
                None,
                None,
                None,
                None,
                None,
                torch.strided,
                A.dtype,
                A.device,
            )
        if A.layout == torch.sparse_csr:
            if A.dim() != 2:
                raise ValueError(
                    "eigsh: a CSR A must be (n, n); pass a batch as a 3-dim COO tensor"
                )
            A = A.detach().to_sparse_coo()
            layout = torch.sparse_csr
        elif A.layout == torch.sparse_coo:
            if A.dense_dim() != 0 or A.sparse_dim() not in (2, 3):
                raise ValueError(
                    "eigsh: a COO A must have 2 or 3 sparse dims and no dense dims, got "
                    f"sparse_dim={A.sparse_dim()}, dense_dim={A.dense_dim()}"
                )
            A = A.detach()
            layout = torch.sparse_coo
        else:
            raise ValueError(f"eigsh: unsupported layout {A.layout}")
        batched = A.dim() == 3
        B = A.shape[0] if batched else 1
        n = A.shape[-1]
        A = A.coalesce()
        bidx, rows, cols = _coo_batch_indices(A)
        vals = A.values()
        grow = bidx * n + rows  # rows sorted: coalesced order is lexicographic in (b, i, j)
        counts = torch.bincount(grow, minlength=B * n)
        crow = torch.zeros(B * n + 1, dtype=torch.int64, device=A.device)
        crow[1:] = torch.cumsum(counts, 0)
        with warnings.catch_warnings():
            # torch warns once per process that CSR is "beta": the products used here are not
            warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta state")
            csr = torch.sparse_csr_tensor(
                crow, bidx * n + cols, vals, (B * n, B * n), check_invariants=False
            )
            product = compact_csr(csr)
        return cls(B, n, batched, None, csr, product, rows, cols, bidx, layout, A.dtype, A.device)

    def matmul(self, X: torch.Tensor) -> torch.Tensor:
        """``A X`` for ``X`` of shape ``(B, n, m)``."""
        if self.dense is not None:
            return torch.bmm(self.dense, X)
        B, n, m = X.shape
        return (self.product @ X.reshape(B * n, m)).reshape(B, n, m)

    def scale(self) -> torch.Tensor:
        """RMS eigenvalue ``||A||_F / sqrt(n)`` per matrix, ``(B,)``: the spectrum's scale.

        Computable in O(nnz) from the stored values, unlike the largest eigenvalue; for ``L_sym``
        it is close to 1.
        """
        if self.dense is not None:
            fro2 = self.dense.square().sum(dim=(-1, -2))
        else:
            fro2 = torch.zeros(self.batch, dtype=self.dtype, device=self.device)
            fro2.index_add_(0, self.bidx, self.csr.values().square())
        return (fro2 / self.n).sqrt()

    def pattern_inner(self, P: torch.Tensor, Q: torch.Tensor) -> torch.Tensor:
        """Entries of ``sym(P Q^T)`` on the storage pattern.

        For dense storage returns the dense ``(B, n, n)`` matrix ``(P Q^T + Q P^T) / 2``; for sparse
        storage the vector of ``(P_r . Q_c + P_c . Q_r) / 2`` over stored entries ``(b, r, c)``,
        in O(nnz m) memory and time: the gradient of a sparse ``A`` never leaves its pattern.

        Args:
            P, Q: ``(B, n, m)``.
        """
        if self.dense is not None:
            PQ = P @ Q.transpose(-1, -2)  # (B, n, n)
            return 0.5 * (PQ + PQ.transpose(-1, -2))
        # sym(P Q^T) = [P Q] [Q P]^T / 2 sampled on the pattern: one sampled dense-dense product
        # (SDDMM) on the block-diagonal CSR, whose values are in the stored entries' order. The
        # row gathers it replaces, (nnz, m) each, were 10-15x slower (trained camvid_lite0
        # graphs, 45 x 60 and 90 x 120, batch 4, k = 16, one thread)
        Pf = P.reshape(-1, P.shape[-1])
        Qf = Q.reshape(-1, Q.shape[-1])
        left, right = torch.cat([Pf, Qf], -1), torch.cat([Qf, Pf], -1)  # (B n, 2m)
        return torch.sparse.sampled_addmm(self.csr, left, right.T, beta=0.0, alpha=0.5).values()

    def to_dense(self) -> torch.Tensor:
        """Dense ``(B, n, n)`` copy (tests and small problems only)."""
        if self.dense is not None:
            return self.dense
        out = torch.zeros(self.batch, self.n, self.n, dtype=self.dtype, device=self.device)
        out[self.bidx, self.rows, self.cols] = self.csr.values()
        return out
