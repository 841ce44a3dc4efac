"""Smoothed-aggregation multigrid for ``A + tau I``, ``A`` a (batch of) graph Laplacian(s).

The hierarchy is built from the matrix alone (no pixel grid needed, so k-NN graphs benefit too):

* **Aggregation by heavy-edge matching.** Couplings are measured by the strength
  ``s_ij = -a_ij / sqrt(a_ii a_jj)``; an edge is *strong* when ``s_ij >= theta max(s_i*, s_j*)``
  (``s_i*`` the strongest coupling of ``i``). Each node proposes to its strongest free strong
  neighbour and mutual proposals become pairs (two rounds); a left-over node joins the aggregate
  of its strongest strong neighbour, or stays alone. Two such passes make one level (about 4-7x
  fewer nodes). Aggregates follow strong couplings, so they do not straddle image edges, and a
  nearly disconnected piece keeps aggregates of its own down to the coarsest level, where it is
  solved exactly: the near-null space that makes image graphs hard lives on the coarse grid.
* **Smoothed prolongation** ``P = (I - omega D^{-1} K) P_0`` (Vanek, Mandel and Brezina 1996),
  ``P_0`` the candidate ``v`` restricted to each aggregate and normalised. For ``L_sym`` the
  null vector is ``D^{1/2} 1``, which the operator alone does not reveal; ``v`` is approximated
  by a few Jacobi steps on ``A v = 0`` from ones. Coarse operators are Galerkin products
  ``K_c = P^T K P`` (two sparse CSR products); the shift is part of ``K = A + tau I``.
* **Chebyshev smoothing** of ``D^{-1} K`` (degree ``smooth_steps``, on
  ``[lmax / ratio, lmax]`` with ``lmax`` from a power iteration capped by Gershgorin's bound)
  and a Cholesky solve at the coarsest level, one dense block per graph.

A batch is one block-diagonal matrix; aggregates never cross graphs, so every level stays block
diagonal and one V-cycle serves the whole batch. Nothing here is differentiable: it is a
preconditioner, and the eigensolver's residuals are measured on ``A`` itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from cheeger.linalg.operator import SymmetricOperator, compact_csr

__all__ = ["AggregationMultigrid", "MultigridPreconditioner"]


@dataclass
class _Level:
    """One level on ``N`` nodes (all graphs of the batch)."""

    K: torch.Tensor  # (N, N) CSR, block diagonal over the batch
    inv_diag: torch.Tensor  # (N, 1)
    lmax: float  # upper bound of the spectrum of D^{-1} K
    bidx: torch.Tensor  # (N,) graph of each node
    P: torch.Tensor | None = None  # (N, N_c) CSR prolongation
    R: torch.Tensor | None = None  # (N_c, N) CSR restriction P^T


def _triplets(csr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    crow = csr.crow_indices()
    rows = torch.repeat_interleave(torch.arange(crow.shape[0] - 1, device=crow.device), crow.diff())
    return rows, csr.col_indices(), csr.values()


def _csr(rows, cols, vals, shape: tuple[int, int]) -> torch.Tensor:
    """CSR from triplets sorted by (row, col), without duplicates."""
    crow = torch.zeros(shape[0] + 1, dtype=torch.int64, device=rows.device)
    crow[1:] = torch.cumsum(torch.bincount(rows, minlength=shape[0]), 0)
    return torch.sparse_csr_tensor(crow, cols, vals, shape, check_invariants=False)


def _strong(rows, cols, s, n: int, theta: float) -> torch.Tensor:
    """Mask of strong couplings: ``s_ij >= theta max(s_i*, s_j*)`` and ``s_ij > 0``."""
    top = torch.zeros(n, dtype=s.dtype, device=s.device).scatter_reduce(0, rows, s, "amax")
    return (s > 0) & (s >= theta * torch.maximum(top[rows], top[cols]))


def _tie_break(rows: torch.Tensor, cols: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """``s`` times ``1 + 1e-3 h``, ``h`` in ``[0, 1)`` a hash of the unordered pair ``{i, j}``.

    With exactly equal strengths (a uniform grid, the plain-grid control) every node proposes to
    its smallest neighbour: a chain with no mutual pair, so nothing coarsens and the "hierarchy"
    is one dense level (measured: a uniform 45 x 60 8-neighbour grid, batch 4, stayed at 10,800
    nodes and LOBPCG took 5.1 s where Lanczos took 0.3 s). A symmetric, deterministic
    perturbation makes the locally heaviest edge unique; 0.1% moves no real coupling's rank.
    """
    lo, hi = torch.minimum(rows, cols), torch.maximum(rows, cols)
    h = (lo * 2654435761 + hi * 40503) % 1048573  # an integer hash, symmetric in (i, j)
    return s * (1 + 1e-3 * h.to(s.dtype) / 1048573)


def _match(rows, cols, s, n: int, rounds: int = 2) -> torch.Tensor:
    """Aggregate label of each node (the smallest node of its aggregate) by heavy-edge matching
    (ties broken by :func:`_tie_break`)."""
    device = rows.device
    s = _tie_break(rows, cols, s)
    node = torch.arange(n, device=device)
    label = torch.full((n,), -1, dtype=torch.int64, device=device)
    none = torch.iinfo(torch.int64).max

    def strongest(r, c, w, value):
        """Per node, ``value`` of its strongest edge (ties to the smallest value), else none."""
        top = torch.zeros(n, dtype=w.dtype, device=device).scatter_reduce(0, r, w, "amax")
        hit = w >= top[r]
        out = torch.full((n,), none, dtype=torch.int64, device=device)
        return out.scatter_reduce(0, r[hit], value[hit], "amin")

    for _ in range(rounds):
        free = (label[rows] < 0) & (label[cols] < 0)
        r, c = rows[free], cols[free]
        best = strongest(r, c, s[free], c)
        partner = torch.where(best < none, best, node)
        mutual = (partner != node) & (partner[partner] == node)
        label = torch.where(mutual, torch.minimum(node, partner), label)
    join = (label[rows] < 0) & (label[cols] >= 0)
    target = strongest(rows[join], cols[join], s[join], label[cols[join]])
    return torch.where(label >= 0, label, torch.where(target < none, target, node))


def _aggregate(rows, cols, vals, diag, theta: float, N: int) -> tuple[torch.Tensor, int]:
    """Aggregate of each node ``(N,)`` and their count, from the off-diagonal entries of ``K``.

    Two matching passes; aggregates are numbered in the order of their smallest node, so the
    graphs of a batch stay contiguous and the numbering is deterministic.
    """
    s = (-vals).clamp_min(0) / (diag[rows] * diag[cols]).sqrt()
    strong = _strong(rows, cols, s, N, theta)
    lab = _match(rows[strong], cols[strong], s[strong], N)
    # the pair graph: summed couplings between pairs, then the same rule once more
    key, inverse = torch.unique(lab[rows] * N + lab[cols], return_inverse=True)
    s2 = torch.zeros(key.shape[0], dtype=s.dtype, device=s.device).index_add_(0, inverse, s)
    r2, c2 = key // N, key % N
    off = r2 != c2
    r2, c2, s2 = r2[off], c2[off], s2[off]
    strong2 = _strong(r2, c2, s2, N, theta)
    label = _match(r2[strong2], c2[strong2], s2[strong2], N)[lab]
    rep = torch.zeros(N, dtype=torch.bool, device=rows.device)
    rep[label] = True
    ids = torch.cumsum(rep, 0) - 1
    return ids[label], int(ids[-1]) + 1


def _power_lmax(K: torch.Tensor, inv_diag: torch.Tensor, steps: int = 15) -> torch.Tensor:
    """Power-iteration estimate of the largest eigenvalue of ``D^{-1} K`` (deterministic)."""
    n = inv_diag.shape[0]
    x = torch.cos(torch.arange(n, device=K.device, dtype=inv_diag.dtype) * 2.399963)[:, None]
    lam = torch.ones((), dtype=x.dtype, device=x.device)
    for _ in range(steps):
        y = inv_diag * (K @ x)
        lam = y.norm() / x.norm().clamp_min(torch.finfo(x.dtype).tiny)
        x = y / y.norm().clamp_min(torch.finfo(x.dtype).tiny)
    return lam


class AggregationMultigrid:
    """V-cycle preconditioner ``T ~ (A + tau I)^{-1}`` (see the module docstring).

    Args:
        op: symmetric positive semi-definite ``A`` with sparse storage (a batch is fine).
        shift: ``tau > 0``.
        coarse_size: stop coarsening once every graph has at most this many nodes.
        max_levels: cap on the number of levels.
        theta: strength threshold of the aggregation.
        smooth_steps: Chebyshev degree of the pre- and post-smoother.
        ratio: the smoother damps ``D^{-1} K`` on ``[lmax / ratio, lmax]``.
        relax_steps: Jacobi steps on ``A v = 0`` that shape the near-null candidate.
        cycles: V-cycles per application (a stationary iteration: the operator stays fixed and
            symmetric); two halve the eigensolver's iterations on image grids for the price of one.
        smoothed: smooth the prolongator (``False``: plain aggregation, cheaper, weaker).
        work_dtype: dtype of the cycle (default ``A``'s); float32 halves its memory traffic and
            is plenty for a preconditioner. The setup always runs in ``A``'s dtype.
        candidate: ``(B n,)`` near-null vector if known (for ``L_sym``: ``sqrt(degree)``); it
            replaces the relaxed one and helps most on graphs with extreme weight ranges.

    Example:
        >>> import torch
        >>> from cheeger.linalg import SymmetricOperator
        >>> i = torch.arange(1000)
        >>> idx = torch.stack([torch.cat([i[:-1], i[1:], i]), torch.cat([i[1:], i[:-1], i])])
        >>> val = torch.cat([-0.5 * torch.ones(1998), torch.ones(1000)]).double()
        >>> A = torch.sparse_coo_tensor(idx, val).coalesce()  # a path graph's L_sym, nearly
        >>> mg = AggregationMultigrid(SymmetricOperator.from_tensor(A), 1e-3, coarse_size=20)
        >>> len(mg.levels) > 2, mg(torch.ones(1, 1000, 2, dtype=torch.float64)).shape
        (True, torch.Size([1, 1000, 2]))

    Attributes:
        levels: finest first; ``levels[i].P`` maps level ``i + 1`` to level ``i``.
        coarse_chol: ``(B, m, m)`` Cholesky factors of the coarsest matrix, one padded block per
            graph; ``coarse_slot`` ``(N_c,)`` places each coarsest node in the ``(B m)`` blocks.
    """

    def __init__(
        self,
        op: SymmetricOperator,
        shift: float,
        *,
        coarse_size: int = 500,
        max_levels: int = 12,
        theta: float = 0.1,
        smooth_steps: int = 2,
        ratio: float = 8.0,
        relax_steps: int = 10,
        cycles: int = 2,
        smoothed: bool = True,
        work_dtype: torch.dtype | None = None,
        candidate: torch.Tensor | None = None,
    ) -> None:
        if op.csr is None:
            raise ValueError("AggregationMultigrid: A must have sparse storage, got a dense one")
        if not shift > 0:
            raise ValueError(f"AggregationMultigrid: shift must be > 0, got {shift}")
        if min(coarse_size, max_levels, smooth_steps, cycles) < 1 or ratio <= 1:
            raise ValueError(
                "AggregationMultigrid: need coarse_size, max_levels, smooth_steps, cycles >= 1 "
                f"and ratio > 1, got {coarse_size}, {max_levels}, {smooth_steps}, {cycles}, {ratio}"
            )
        self.batch, self.shift = op.batch, shift
        self.smooth_steps, self.ratio, self.cycles = smooth_steps, ratio, cycles
        device, dtype = op.device, op.dtype
        self.dtype, self.work_dtype = dtype, dtype if work_dtype is None else work_dtype
        N = op.batch * op.n
        node = torch.arange(N, device=device)
        eye = torch.sparse_csr_tensor(
            torch.arange(N + 1, device=device), node, torch.full((N,), shift, dtype=dtype,
            device=device), (N, N), check_invariants=False,
        )
        K = (op.csr + eye).to_sparse_csr()  # A + tau I, diagonal present even where A has none
        bidx = node // op.n
        v = None
        if candidate is not None:
            v = candidate.reshape(-1).to(dtype).abs().clamp_min(torch.finfo(dtype).tiny)
        self.levels: list[_Level] = []
        while True:
            rows, cols, vals = _triplets(K)
            on = rows == cols
            diag = torch.zeros(N, dtype=dtype, device=device).index_add_(0, rows[on], vals[on])
            inv_diag = (1.0 / diag)[:, None]  # (N, 1); diag >= tau > 0
            absum = torch.zeros(N, dtype=dtype, device=device).index_add_(0, rows, vals.abs())
            # the Chebyshev smoother needs an upper bound: Gershgorin's is safe but loose
            lmax = float(torch.minimum((absum / diag).amax(), 1.1 * _power_lmax(K, inv_diag)))
            level = _Level(K, inv_diag, lmax, bidx)
            self.levels.append(level)
            if v is None:  # near-null candidate: Jacobi relaxation of A v = 0 from ones
                v = torch.ones(N, 1, dtype=dtype, device=device)
                for _ in range(relax_steps):
                    v = v - (0.5 / lmax) * inv_diag * (K @ v - shift * v)
                v = v[:, 0].abs().clamp_min(torch.finfo(dtype).tiny)
            sizes = torch.bincount(bidx, minlength=self.batch)
            if int(sizes.max()) <= coarse_size or len(self.levels) == max_levels:
                break
            agg, Nc = _aggregate(rows[~on], cols[~on], vals[~on], diag, theta, N)
            if Nc > N // 2:  # coarsening stalls (weakly coupled pieces): stop, solve densely
                break
            norm = torch.zeros(Nc, dtype=dtype, device=device).index_add_(0, agg, v * v).sqrt()
            P = _csr(node, agg, v / norm[agg], (N, Nc))  # tentative: orthonormal columns
            if smoothed:
                omega = 4.0 / (3.0 * lmax)
                S = _csr(rows, cols, -omega * vals * inv_diag[rows, 0], (N, N))
                P = (P + (S @ P)).to_sparse_csr()
            level.P = P
            level.R = P.transpose(0, 1).to_sparse_csr()
            K = (level.R @ (K @ P)).to_sparse_csr()
            first = torch.full((Nc,), N, dtype=torch.int64, device=device).scatter_reduce_(
                0, agg, node, "amin"
            )  # the smallest node of each aggregate: its graph
            bidx, v, N = bidx[first], norm, Nc
            node = torch.arange(N, device=device)
        self._factor_coarsest()
        # the cycle may run in lower precision than the setup; 32-bit indices spare MKL a copy
        for lv in self.levels:
            lv.K, lv.inv_diag = compact_csr(lv.K, self.work_dtype), lv.inv_diag.to(self.work_dtype)
            if lv.P is not None:
                lv.P, lv.R = compact_csr(lv.P, self.work_dtype), compact_csr(lv.R, self.work_dtype)

    def _factor_coarsest(self) -> None:
        """Dense Cholesky of the coarsest matrix, one ``(m, m)`` block per graph."""
        last = self.levels[-1]
        bidx = last.bidx
        N = bidx.shape[0]
        sizes = torch.bincount(bidx, minlength=self.batch)
        m = int(sizes.max())
        start = torch.cumsum(sizes, 0) - sizes
        local = torch.arange(N, device=bidx.device) - start[bidx]
        self.coarse_slot = bidx * m + local  # (N_c,)
        rows, cols, vals = _triplets(last.K)
        dense = torch.zeros(self.batch * m * m, dtype=vals.dtype, device=vals.device)
        dense.index_put_((bidx[rows] * m * m + local[rows] * m + local[cols],), vals)
        self.coarse_pad = torch.ones(self.batch * m, dtype=torch.bool, device=vals.device)
        self.coarse_pad[self.coarse_slot] = False
        self.coarse_pad = self.coarse_pad.reshape(self.batch, m)  # smaller graphs are padded
        pad = self.coarse_pad.to(vals.dtype)
        self.coarse_matrix = dense.reshape(self.batch, m, m) + torch.diag_embed(pad)
        self.coarse_chol = torch.linalg.cholesky(self.coarse_matrix)

    def coarse_eigenvectors(self, m: int, *, dense_max: int = 128) -> torch.Tensor:
        """Bottom ``m`` eigenvectors of each graph's coarsest matrix, prolongated to level 0.

        A cascadic starting block for the eigensolver: Ritz vectors of ``A`` on the coarse space
        (exactly so for a tentative ``P``, up to ``P^T P ~ I`` for a smoothed one). Above
        ``dense_max`` coarse nodes the full ``eigh`` is replaced by six steps of block inverse
        iteration with the Cholesky factor and a Rayleigh-Ritz step: measured on the trained
        camvid_lite0 head's graphs (45 x 60, batch 4, float32, about 500 coarse nodes each), the
        ``eigh`` was 30% of the LOBPCG solve; without it the solve took 0.8x the time and 70
        iterations over 12 batches instead of 69. Columns beyond the number of coarse nodes of a
        graph come out zero. Returns ``(B, n, m)``.
        """
        K, pad = self.coarse_matrix, self.coarse_pad
        mc = K.shape[-1]
        big = 10.0 * max(lv.lmax for lv in self.levels) + 10.0
        K = K + torch.diag_embed(pad * big)  # padding sorts last
        if mc <= dense_max:
            V = torch.linalg.eigh(K)[1][..., : min(m, mc)]
        else:
            g = torch.Generator(device=K.device).manual_seed(0)
            V = torch.rand(self.batch, mc, m, dtype=K.dtype, device=K.device, generator=g)
            for _ in range(6):
                V = torch.linalg.qr(torch.cholesky_solve(V * ~pad[..., None], self.coarse_chol))[0]
            V = V @ torch.linalg.eigh(V.transpose(-1, -2) @ K @ V)[1]
        V = V * ~pad[..., None]
        Y = V.reshape(-1, V.shape[-1])[self.coarse_slot].to(self.work_dtype)  # (N_c, m')
        for lv in reversed(self.levels[:-1]):
            Y = lv.P @ Y
        Y = Y.to(self.dtype).reshape(self.batch, -1, Y.shape[-1])
        if Y.shape[-1] < m:
            Y = torch.cat([Y, Y.new_zeros(*Y.shape[:-1], m - Y.shape[-1])], -1)
        return Y

    def _coarse_solve(self, R: torch.Tensor) -> torch.Tensor:
        m = self.coarse_chol.shape[-1]
        full = torch.zeros(self.batch * m, R.shape[-1], dtype=R.dtype, device=R.device)
        full[self.coarse_slot] = R
        full = full.reshape(self.batch, m, -1).to(self.coarse_chol.dtype)
        X = torch.cholesky_solve(full, self.coarse_chol).to(R.dtype)
        return X.reshape(self.batch * m, -1)[self.coarse_slot]

    def _smooth(self, lv: _Level, B: torch.Tensor, X: torch.Tensor | None) -> torch.Tensor:
        """Chebyshev iteration for ``K X = B`` preconditioned by ``diag(K)`` (Saad, Alg. 12.1).

        ``X`` (if given) is updated in place.
        """
        hi = lv.lmax
        lo = hi / self.ratio
        theta, delta = 0.5 * (hi + lo), 0.5 * (hi - lo)
        sigma = theta / delta
        rho = 1.0 / sigma
        R = B if X is None else torch.addmm(B, lv.K, X, alpha=-1.0)
        D = (lv.inv_diag / theta) * R
        X = D if X is None else X.add_(D)
        for _ in range(self.smooth_steps - 1):
            R = torch.addmm(B, lv.K, X, alpha=-1.0)
            rho_new = 1.0 / (2.0 * sigma - rho)
            keep, push = rho_new * rho, 2.0 * rho_new / delta
            D = torch.addcmul(D, lv.inv_diag, R, value=push / keep).mul_(keep)
            X = X.add_(D)
            rho = rho_new
        return X

    def vcycle(self, B: torch.Tensor, level: int = 0) -> torch.Tensor:
        """One V-cycle for ``K X = B`` from ``X = 0``; ``B`` is ``(N_level, p)``."""
        if level == len(self.levels) - 1:
            return self._coarse_solve(B)
        lv = self.levels[level]
        X = self._smooth(lv, B, None)
        Rc = lv.R @ torch.addmm(B, lv.K, X, alpha=-1.0)
        X = torch.addmm(X, lv.P, self.vcycle(Rc, level + 1))
        return self._smooth(lv, B, X)

    def __call__(self, R: torch.Tensor) -> torch.Tensor:
        """Apply the preconditioner to ``R (B, n, p)``."""
        B, n, p = R.shape
        Rw = R.reshape(B * n, p).to(self.work_dtype)
        X = self.vcycle(Rw)
        for _ in range(self.cycles - 1):  # stationary iteration: a fixed, symmetric operator
            X = X + self.vcycle(torch.addmm(Rw, self.levels[0].K, X, alpha=-1.0))
        return X.to(R.dtype).reshape(B, n, p)


class MultigridPreconditioner(nn.Module):
    """Module form: ``MultigridPreconditioner(shift)(A, R)`` applies one V-cycle to ``R``.

    Builds the hierarchy of ``A`` on every call (graphs change every training step); use
    :class:`AggregationMultigrid` directly to reuse one hierarchy for many right-hand sides.

    Example:
        >>> import torch
        >>> i = torch.arange(100)
        >>> e = torch.stack([torch.cat([i[:-1], i[1:], i]), torch.cat([i[1:], i[:-1], i])])
        >>> v = torch.cat([-torch.ones(198), 2 * torch.ones(100)]).double()
        >>> A = torch.sparse_coo_tensor(e, v, (100, 100)).coalesce()  # path Laplacian-like
        >>> X = MultigridPreconditioner(1e-2, coarse_size=10)(A, torch.ones(100, 1).double())
        >>> X.shape
        torch.Size([100, 1])
    """

    def __init__(self, shift: float, **options) -> None:
        super().__init__()
        self.shift, self.options = shift, options

    def forward(self, A: torch.Tensor, R: torch.Tensor) -> torch.Tensor:
        op = SymmetricOperator.from_tensor(A)
        mg = AggregationMultigrid(op, self.shift, **self.options)
        out = mg(R.reshape(op.batch, op.n, -1))
        return out.reshape(R.shape)
