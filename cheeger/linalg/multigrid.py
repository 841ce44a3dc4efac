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
* **Chebyshev smoothing** of ``D^{-1} K`` (``smooth_steps`` steps, on
  ``[lmax / ratio, lmax]`` with ``lmax`` from a power iteration capped by Gershgorin's bound)
  and an exact solve at the coarsest level (its dense inverse, one block per graph).
* **A cheap cycle.** Every level is scaled to unit diagonal (``S K S``, ``S = D^{-1/2}``), so the
  smoother is a polynomial in one sparse matrix with scalar coefficients, evaluated by Horner's
  rule (one sparse product per step, no diagonal broadcasts), and the cycle writes into work
  arrays kept between calls. Measured on the trained camvid_lite0 head's graphs (batch 4, 32
  columns, one thread): one application 18 ms instead of 50 ms at 90 x 120 nodes per graph
  (fresh multi-MB arrays page-fault on every call), 4 ms instead of 8.5 ms at 45 x 60.

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
    """One level on ``N`` nodes (all graphs of the batch).

    The cycle runs on the diagonally scaled operators (``S = D^{-1/2}``, ``D = diag K``):
    ``K~ = S K S`` (unit diagonal), ``P~ = S^{-1} P S_c`` and ``R~ = P~^T``, so the Jacobi
    preconditioner of the smoother is the identity and every smoothing step is a sparse product
    with scalar coefficients (no ``(N, 1)`` broadcasts). The iterates are the original ones
    scaled by ``S^{-1}``: the preconditioner is the same operator.
    """

    K: torch.Tensor  # (N, N) CSR, block diagonal over the batch (scaled after the setup)
    scale: torch.Tensor  # (N, 1) D^{-1/2}
    lmax: float  # upper bound of the spectrum of D^{-1} K (= that of S K S)
    bidx: torch.Tensor  # (N,) graph of each node
    P: torch.Tensor | None = None  # (N, N_c) CSR prolongation (scaled after the setup)
    R: torch.Tensor | None = None  # (N_c, N) CSR restriction P^T (scaled after the setup)
    coef: tuple[float, ...] = ()  # the smoother's polynomial q, X = q(D^{-1} K) D^{-1} B


def _chebyshev_coefficients(lmax: float, ratio: float, steps: int) -> tuple[float, ...]:
    """Coefficients ``c_0 .. c_{steps-1}`` of the polynomial ``q`` of ``steps`` Chebyshev steps.

    Chebyshev iteration for ``K X = B`` preconditioned by ``D = diag(K)`` on ``[lmax / ratio,
    lmax]`` (Saad, Iterative Methods, Alg. 12.1), from ``X_0``, gives
    ``X_s = X_0 + q(M) D^{-1} (B - K X_0)`` with ``M = D^{-1} K``:

        D_0 = r_0 / theta,   X_1 = X_0 + D_0,
        D_j = rho_j rho_{j-1} D_{j-1} + (2 rho_j / delta) r_j,   X_{j+1} = X_j + D_j,
        rho_0 = delta / theta,   rho_j = 1 / (2 theta / delta - rho_{j-1}),

    run here on polynomials in ``t`` (``r_j = 1 - t X_j`` for ``X_0 = 0``, ``B = 1``).
    """
    hi = lmax
    lo = hi / ratio
    theta, delta = 0.5 * (hi + lo), 0.5 * (hi - lo)
    sigma = theta / delta
    rho = 1.0 / sigma
    d = [1.0 / theta]
    x = list(d)
    for _ in range(steps - 1):
        r = [1.0] + [0.0] * len(x)  # 1 - t x(t)
        for j, c in enumerate(x):
            r[j + 1] -= c
        rho_new = 1.0 / (2.0 * sigma - rho)
        keep, push = rho_new * rho, 2.0 * rho_new / delta
        d = [keep * a for a in d] + [0.0] * (len(r) - len(d))
        d = [a + push * b for a, b in zip(d, r, strict=True)]
        x = [a + b for a, b in zip([*x, 0.0], d, strict=True)]
        rho = rho_new
    return tuple(x)


def _scaled_csr(csr: torch.Tensor, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """``diag(left) csr diag(right)``, same pattern; ``left (N,)``, ``right (M,)``."""
    rows, cols, vals = _triplets(csr)
    return torch.sparse_csr_tensor(csr.crow_indices(), csr.col_indices(),
                                   vals * left[rows] * right[cols], csr.shape,
                                   check_invariants=False)  # fmt: skip


def _select(mask: torch.Tensor, *arrays: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``(a[mask] for a in arrays)`` with one ``nonzero`` for all (each boolean index pays its
    own, and they were a third of the setup's time on 43,200-node batches)."""
    idx = mask.nonzero().squeeze(1)
    return tuple(a[idx] for a in arrays)


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
        return out.scatter_reduce(0, *_select(hit, r, value), "amin")

    for _ in range(rounds):
        free = (label[rows] < 0) & (label[cols] < 0)
        r, c, sf = _select(free, rows, cols, s)
        best = strongest(r, c, sf, c)
        partner = torch.where(best < none, best, node)
        mutual = (partner != node) & (partner[partner] == node)
        label = torch.where(mutual, torch.minimum(node, partner), label)
    join = (label[rows] < 0) & (label[cols] >= 0)
    rj, cj, sj = _select(join, rows, cols, s)
    target = strongest(rj, cj, sj, label[cj])
    return torch.where(label >= 0, label, torch.where(target < none, target, node))


def _aggregate(rows, cols, vals, diag, theta: float, N: int) -> tuple[torch.Tensor, int]:
    """Aggregate of each node ``(N,)`` and their count, from the off-diagonal entries of ``K``.

    Two matching passes; aggregates are numbered in the order of their smallest node, so the
    graphs of a batch stay contiguous and the numbering is deterministic.
    """
    s = (-vals).clamp_min(0) / (diag[rows] * diag[cols]).sqrt()
    strong = _strong(rows, cols, s, N, theta)
    lab = _match(*_select(strong, rows, cols, s), N)
    # the pair graph: summed couplings between pairs, then the same rule once more
    key, inverse = torch.unique(lab[rows] * N + lab[cols], return_inverse=True)
    s2 = torch.zeros(key.shape[0], dtype=s.dtype, device=s.device).index_add_(0, inverse, s)
    r2, c2 = key // N, key % N
    off = r2 != c2
    r2, c2, s2 = _select(off, r2, c2, s2)
    strong2 = _strong(r2, c2, s2, N, theta)
    label = _match(*_select(strong2, r2, c2, s2), N)[lab]
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
        coarse_size: stop coarsening once every graph has at most this many nodes. 400 (was
            500): on the trained camvid_lite0 head's graphs (3 batches of 4, float32, eigsh
            forward and backward, one thread) 45 x 60 graphs then get a second coarse level
            (about 450 -> 80 nodes: the dense coarse solve, bandwidth-bound, was a third of a
            cycle), 0.79-0.84x the time (two runs); 90 x 120 graphs keep theirs (10,800 -> 1,800
            -> 270-320),
            which 300 split again in one batch (its solve 9 LOBPCG iterations instead of 6) and
            200 or 100 in all, at 1.06-1.09x the time.
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
        coarse_inverse: ``(B, m, m)`` inverse of the coarsest matrix, one padded block per
            graph; ``coarse_slot`` ``(N_c,)`` places each coarsest node in the ``(B m)`` blocks.
    """

    def __init__(
        self,
        op: SymmetricOperator,
        shift: float,
        *,
        coarse_size: int = 400,
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
            diag = torch.zeros(N, dtype=dtype, device=device)
            diag.index_add_(0, *_select(on, rows, vals))
            inv_diag = (1.0 / diag)[:, None]  # (N, 1); diag >= tau > 0
            absum = torch.zeros(N, dtype=dtype, device=device).index_add_(0, rows, vals.abs())
            # the Chebyshev smoother needs an upper bound: Gershgorin's is safe but loose
            lmax = float(torch.minimum((absum / diag).amax(), 1.1 * _power_lmax(K, inv_diag)))
            level = _Level(K, diag.rsqrt()[:, None], lmax, bidx,
                           coef=_chebyshev_coefficients(lmax, ratio, smooth_steps))  # fmt: skip
            self.levels.append(level)
            if v is None:  # near-null candidate: Jacobi relaxation of A v = 0 from ones
                v = torch.ones(N, 1, dtype=dtype, device=device)
                for _ in range(relax_steps):
                    v = v - (0.5 / lmax) * inv_diag * (K @ v - shift * v)
                v = v[:, 0].abs().clamp_min(torch.finfo(dtype).tiny)
            sizes = torch.bincount(bidx, minlength=self.batch)
            if int(sizes.max()) <= coarse_size or len(self.levels) == max_levels:
                break
            agg, Nc = _aggregate(*_select(~on, rows, cols, vals), diag, theta, N)
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
        # The cycle runs on the scaled operators (see _Level), in the work dtype, which may be
        # lower than the setup's; 32-bit indices spare MKL a copy in every product.
        for lv, nxt in zip(self.levels, [*self.levels[1:], None], strict=True):
            s = lv.scale[:, 0]
            lv.K = compact_csr(_scaled_csr(lv.K, s, s), self.work_dtype)
            if nxt is not None:
                P = _scaled_csr(lv.P, s.reciprocal(), nxt.scale[:, 0])
                lv.P, lv.R = compact_csr(P, self.work_dtype), compact_csr(
                    P.transpose(0, 1).to_sparse_csr(), self.work_dtype)  # fmt: skip
            lv.scale = lv.scale.to(self.work_dtype)
        self._work: dict[tuple[int, str], torch.Tensor] = {}  # reused buffers, see _buffer

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
        # An explicit inverse, applied by one batched product: a triangular solve with the
        # Cholesky factor copied the factor into LAPACK's layout on every call (trained
        # camvid_lite0 graphs, 45 x 60, batch 4, 460 coarse nodes each: the copies alone were a
        # sixth of the eigensolver's forward and backward). It is SPD and as accurate as the
        # solve (error ~ cond * eps) for a preconditioner.
        inv = torch.cholesky_inverse(torch.linalg.cholesky(self.coarse_matrix))
        self.coarse_inverse = 0.5 * (inv + inv.transpose(-1, -2))  # (B, m, m)
        # the cycle's K~_c^{-1} = D_c^{1/2} K_c^{-1} D_c^{1/2} (see _Level), 1 in the padding
        root = torch.ones(self.batch * m, dtype=vals.dtype, device=vals.device)
        root[self.coarse_slot] = last.scale[:, 0].reciprocal()
        root = root.reshape(self.batch, m, 1)
        scaled = root * self.coarse_inverse * root.transpose(-1, -2)
        self.coarse_scaled_inverse = scaled.to(self.work_dtype)

    def coarse_eigenvectors(self, m: int, *, dense_max: int = 128) -> torch.Tensor:
        """Bottom ``m`` eigenvectors of each graph's coarsest matrix, prolongated to level 0.

        A cascadic starting block for the eigensolver: Ritz vectors of ``A`` on the coarse space
        (exactly so for a tentative ``P``, up to ``P^T P ~ I`` for a smoothed one). Above
        ``dense_max`` coarse nodes the full ``eigh`` is replaced by six steps of block inverse
        iteration with the coarse inverse and a Rayleigh-Ritz step: measured on the trained
        camvid_lite0 head's graphs (45 x 60, batch 4, float32, about 500 coarse nodes each when
        ``coarse_size`` was 500), the
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
                V = torch.linalg.qr(self.coarse_inverse @ (V * ~pad[..., None]))[0]
            V = V @ torch.linalg.eigh(V.transpose(-1, -2) @ K @ V)[1]
        V = V * ~pad[..., None]
        Y = V.reshape(-1, V.shape[-1])[self.coarse_slot].to(self.work_dtype)  # (N_c, m')
        # P_0 .. P_{c-1} Y = S_0 P~_0 .. P~_{c-1} S_c^{-1} Y (the scaled prolongations, _Level)
        Y = Y / self.levels[-1].scale
        for lv in reversed(self.levels[:-1]):
            Y = lv.P @ Y
        Y = (Y * self.levels[0].scale).to(self.dtype).reshape(self.batch, -1, Y.shape[-1])
        if Y.shape[-1] < m:
            Y = torch.cat([Y, Y.new_zeros(*Y.shape[:-1], m - Y.shape[-1])], -1)
        return Y

    def _buffer(self, level: int, name: str, p: int) -> torch.Tensor:
        """A reused ``(N_level, p)`` work array: the cycle allocates nothing per call.

        A fresh array of a few MB is fresh memory from the OS, and its page faults cost more than
        the arithmetic: the V-cycle on 43,200 nodes x 32 columns took 47 ms with new arrays and
        24 ms when the allocator kept its memory. Arrays grow to the widest block seen; a
        narrower one is a contiguous prefix of the same storage.
        """
        N = self.levels[level].K.shape[0]
        flat = self._work.get((level, name))
        if flat is None or flat.numel() < N * p:
            flat = torch.empty(N * p, dtype=self.work_dtype, device=self.levels[0].K.device)
            self._work[(level, name)] = flat
        return flat[: N * p].view(N, p)

    def _coarse_solve(self, B: torch.Tensor) -> torch.Tensor:
        """``K~_c^{-1} B`` for ``B (N_c, p)``, one dense block per graph."""
        m = self.coarse_scaled_inverse.shape[-1]
        full = torch.zeros(self.batch * m, B.shape[-1], dtype=B.dtype, device=B.device)
        full[self.coarse_slot] = B
        X = self.coarse_scaled_inverse @ full.reshape(self.batch, m, -1)  # (B, m, p)
        return X.reshape(self.batch * m, -1)[self.coarse_slot]

    def _smooth(self, level: int, B: torch.Tensor, X: torch.Tensor | None) -> torch.Tensor:
        """Chebyshev smoothing of ``K~ X = B``: ``X <- X + q(K~) (B - K~ X)`` (``X = q(K~) B`` from
        ``X = None``, written to the level's ``x`` buffer), ``q`` of
        :func:`_chebyshev_coefficients` evaluated by Horner's rule, one sparse product per degree.
        """
        lv = self.levels[level]
        c, K, p = lv.coef, lv.K, B.shape[-1]
        if X is None:  # q(K~) B straight into x
            X = self._buffer(level, "x", p)
            return self._polynomial(level, c, B, X)
        R = torch.addmm(B, K, X, alpha=-1.0, out=self._buffer(level, "r", p))  # B - K~ X
        if len(c) == 2:  # the default degree: X + c_0 R + c_1 K~ R, no temporary
            return X.addmm_(K, R, alpha=c[1]).add_(R, alpha=c[0])
        return X.add_(self._polynomial(level, c, R, self._buffer(level, "u", p)))

    def _polynomial(self, level: int, c: tuple[float, ...], R: torch.Tensor,
                    out: torch.Tensor) -> torch.Tensor:  # fmt: skip
        """``q(K~) R`` into ``out`` by Horner's rule (``out`` and R distinct buffers)."""
        K, d = self.levels[level].K, len(c) - 1
        if d == 0:
            return torch.mul(R, c[0], out=out)
        # ping-pong between out and a temporary so that the last product lands in out
        other = self._buffer(level, "t", R.shape[-1])
        bufs = (out, other) if d % 2 == 1 else (other, out)
        Y = torch.addmm(R, K, R, beta=c[d - 1], alpha=c[d], out=bufs[0])
        for i, j in enumerate(range(d - 2, -1, -1)):
            Y = torch.addmm(R, K, Y, beta=c[j], alpha=1.0, out=bufs[(i + 1) % 2])
        return Y

    def vcycle(self, B: torch.Tensor, level: int = 0) -> torch.Tensor:
        """One V-cycle for ``K~ X = B`` (the scaled operator of ``level``, see ``_Level``) from
        ``X = 0``; ``B`` is ``(N_level, p)`` and is not changed. The result lives in the level's
        work buffer until the next cycle on that level."""
        if level == len(self.levels) - 1:
            return self._coarse_solve(B)
        lv, p = self.levels[level], B.shape[-1]
        X = self._smooth(level, B, None)
        R = torch.addmm(B, lv.K, X, alpha=-1.0, out=self._buffer(level, "r", p))
        Bc = torch.mm(lv.R, R, out=self._buffer(level + 1, "b", p))
        X = X.addmm_(lv.P, self.vcycle(Bc, level + 1))
        return self._smooth(level, B, X)

    def __call__(self, R: torch.Tensor) -> torch.Tensor:
        """Apply the preconditioner to ``R (B, n, p)``: ``T R = S_0 T~ S_0 R``."""
        B, n, p = R.shape
        scale = self.levels[0].scale  # (N, 1)
        Rw = torch.mul(R.reshape(B * n, p), scale, out=self._buffer(0, "b", p))
        X = self.vcycle(Rw)
        if self.cycles > 1:  # stationary iteration: a fixed, symmetric operator
            X = self._buffer(0, "acc", p).copy_(X)
            K, res = self.levels[0].K, self._buffer(0, "res", p)
            for _ in range(self.cycles - 1):
                X.add_(self.vcycle(torch.addmm(Rw, K, X, alpha=-1.0, out=res)))
        out = torch.empty(B * n, p, dtype=R.dtype, device=R.device)
        return torch.mul(X, scale, out=out).reshape(B, n, p)


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
