"""The spectral head: segment through the bottom of a learned graph's spectrum.

For decoder features ``f (B, C, H, W)``:

1. ``x = W_x f + b`` (a 1x1 convolution, exactly the conv head's classifier): per-pixel class
   evidence ``(B, K, H, W)``;
2. ``f`` is average-pooled to the graph's resolution ``(h, w) = (H, W) / stride`` (``n = h w``
   nodes), giving ``x_low = W_x f_low + b`` (= the pooled ``x``: a 1x1 convolution commutes with
   average pooling) and ``g = normalise(W_g f_low)``, a graph embedding ``(B, d, h, w)`` of unit
   length per node, so the bandwidth ``sigma`` starts on a known scale;
3. the graph is the learned Gaussian affinity
   ``W_ij = exp(-||A (g_i - g_j)||^2 / 2 sigma^2)`` on a pixel-grid or kNN neighbourhood, and
   ``L_sym = I - D^{-1/2} W D^{-1/2}``;
4. ``(lambda, U) = eigsh(L_sym, k)``, bottom ``k`` pairs, with the broadened backward;
5. the spectral filter ``h_theta(lambda)`` weighs the eigenvectors, and the low-resolution
   evidence is filtered on the graph:

       y = U diag(h_theta(lambda)) U^T x_low                      # (B, n, K)

6. ``logits = x + upsample(y)``: the pixel evidence keeps the detail the coarse graph cannot
   resolve; the graph-filtered term adds what the graph says belongs together.

``U diag(h) U^T`` is a function of the operator, not of the eigenvector basis: it does not change
when an eigenvector flips its sign, nor under any rotation inside a degenerate eigenspace (where
``h``, a function of ``lambda``, is constant), so the head's output is basis-invariant (tested).
Only the bottom ``k`` pairs enter: the filter acts as ``h`` on them and as 0 on the rest of the
spectrum, which the noise floor and the bulk penalty make explicit.

Two settings make the study's controls: ``affinity: uniform`` (every edge of the
neighbourhood weighs 1: the plain pixel grid, nothing learned in the graph) and ``filter: zero``
(``h = 0``: no graph term, so no eigensolve; the logits are the classifier's, as the conv head's,
with the graph's parameters unused). ``internals["diagnostics"]`` says per image what the learned
graph is (:data:`DIAGNOSTICS`): the spread of its weights, the metric's scale against the
bandwidth, ``||y|| / ||x_low||``, and its ``lambda_2..k`` against the plain grid's.

Extra loss terms (unweighted, see :class:`~cheeger.heads.base.HeadOutput`):

* ``"rayleigh"``: Rayleigh-quotient consistency of the head's class probabilities at the graph's
  resolution (``softmax(x_low + y)``) on ``L_sym``.
* ``"bulk"``: the bulk penalty pushing ``h_theta`` to zero above the noise edge (the
  eigenvalues a graph of structure-free features also produces).

Gradient paths: only the cross-entropy moves the graph
------------------------------------------------------
The graph's parameters (``embed``, the affinity's metric ``A`` and bandwidth) receive gradient
from the cross-entropy only; both extra terms see ``L_sym``, ``lambda`` and ``U`` as constants
(tested in ``tests/heads/test_spectral.py``: their gradient w.r.t. those parameters is exactly
zero, the cross-entropy's is not).

* Rayleigh: its purpose is that the *prediction* respects the graph. With any path into the graph
  the cheapest way to lower ``p^T L p / p^T p`` is to change the graph instead: through ``L`` by
  cutting the edges the prediction crosses, through ``U`` and ``lambda`` by reshaping which
  signals the filter passes so that ``y`` is smooth on the old graph. Either way the graph would
  learn to agree with the prediction rather than with the image. So ``probs_low`` is recomputed
  as ``softmax(x_low + U_c diag(h(lambda_c)) U_c^T x_low)`` on the detached ``lambda_c, U_c``
  (same values as the logits' ``y``): the term moves the classifier, the filter ``theta`` and the
  backbone through ``x``.
* Bulk: it shapes the response, not the graph: ``h`` is evaluated at the detached eigenvalues,
  so it moves ``theta`` only. Otherwise it could lower itself by moving eigenvalues across the
  edge (out of the noise region) instead of silencing the response there.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.profiler import record_function

from cheeger.graph import GaussianAffinity, normalized_laplacian
from cheeger.heads.base import Head, HeadOutput
from cheeger.heads.conv import block_mean, resize_logits
from cheeger.linalg import eigsh
from cheeger.losses import rayleigh_quotient_loss
from cheeger.losses.bulk import bulk_penalty
from cheeger.spectral import NoiseFloor, build_filter, noise_floor

__all__ = ["DIAGNOSTICS", "SOLVER_FIELDS", "SpectralHead", "SpectralHeadConfig",
           "cached_noise_edges", "solver_summary", "spectral_filtering"]  # fmt: skip

#: Order of ``internals["solver"]``: the forward eigensolve's thick restarts (or iterations),
#: matrix-vector products, whether it fell back to another method (``info.method`` holds
#: ``"->"``), and the fractions of the batch that converged and that carry eigsh's zero-eigenvalue
#: certificate (NaN where the solver reports none).
SOLVER_FIELDS = ("restarts", "matvecs", "fallback", "converged", "certified")

#: Order of ``internals["diagnostics"]`` ``(B, 6)``, what the learned graph is, per image: the
#: coefficient of variation (std / mean) of its edge weights (0: a plain grid); the mean over edges
#: of the exponent ``||A (g_i - g_j)||^2 / 2 sigma^2`` (the metric's scale against the
#: bandwidth); ``||y|| / ||x_low||`` (how much the graph term adds to the evidence, at the graph's
#: resolution); ``lambda_2`` of ``L_sym``; ``lambda_2`` of the plain grid of the same size and
#: neighbourhood; the mean of ``lambda_j / lambda_j(plain grid)`` over ``j = 2..k``. The
#: eigenvalue fields are NaN without eigenpairs (filter ``zero``).
DIAGNOSTICS = ("affinity_cv", "exponent_mean", "y_ratio", "lambda2", "lambda2_grid",
               "lambda_ratio")  # fmt: skip


_CACHED_EDGES = threading.local()  # set by cached_noise_edges() on this thread


@contextlib.contextmanager
def cached_noise_edges() -> Iterator[None]:
    """Inside this block an eval-mode spectral head uses its cached (training) noise edge even
    when ``noise_eval`` is ``"per_image"``: the edge changes no prediction and no metric, so the
    training loop's per-epoch validation and snapshots skip the null model's eigensolves
    (measured on 8 CamVid images, Lite0 taps, 45 x 60 graph, one thread: 0.53 s per batch
    against 1.50 s); ``cheeger evaluate`` follows ``noise_eval``.

    Example:
        >>> head = SpectralHead(8, 3, stride=4, k=4, graph_channels=4, rank=2).eval()
        >>> with cached_noise_edges():
        ...     out = head(torch.rand(2, 8, 16, 16), (16, 16))
        >>> out.internals["noise_edge"].shape
        torch.Size([2])
    """
    previous = getattr(_CACHED_EDGES, "on", False)
    _CACHED_EDGES.on = True
    try:
        yield
    finally:
        _CACHED_EDGES.on = previous


def solver_summary(info: Any, like: torch.Tensor) -> torch.Tensor:
    """``internals["solver"]``: an eigsh info as a ``(5,)`` tensor on ``like``'s device.

    Built without a host synchronisation (the counts are Python ints already, the flags are
    reduced on the device), so the training loop reads it with one small transfer per step.
    ``certified`` is read with ``getattr``: infos without it give NaN.

    Example:
        >>> from cheeger.linalg import eigsh
        >>> _, _, info = eigsh(torch.eye(3, dtype=torch.float64), 1, return_info=True)
        >>> dict(zip(SOLVER_FIELDS, solver_summary(info, torch.zeros(1)).tolist()))["fallback"]
        0.0
    """
    certified = getattr(info, "certified", None)
    flags = [info.converged, certified if certified is not None else info.converged]
    means = torch.stack([f.reshape(-1).to(torch.float32).mean() for f in flags])  # (2,)
    if certified is None:
        means = means * torch.tensor([1.0, float("nan")], device=means.device)
    counts = torch.tensor([float(info.restarts), float(info.matvecs),
                           float("->" in str(getattr(info, "method", "")))])  # fmt: skip
    return torch.cat([counts.to(means.device, non_blocking=True), means]).to(like.device)


@dataclass
class SpectralHeadConfig:
    """The spectral head's settings (``params.yaml``: ``spectral.head``).

    Attributes:
        stride: graph resolution is the feature map's divided by this (average pooling).
        graph_channels: ``d``, channels of the graph embedding ``g``.
        rank: rank of the learned metric ``M = A^T A`` on ``g``.
        neighbourhood: ``"grid"`` or ``"knn"`` (``"dense"`` for tiny graphs).
        radius, grid_norm: grid neighbourhood (``chebyshev`` radius 1: 8 neighbours).
        knn: neighbours per node for ``"knn"``.
        init_sigma: initial bandwidth (the embedding has unit length per graph node).
        affinity: ``"learned"`` (the Gaussian affinity of the embedding) or ``"uniform"``: every
            edge of the neighbourhood weighs 1, the plain pixel grid (the study's control for
            "does the learned graph matter"); the embedding and metric then receive no gradient.
        k: eigenpairs.
        eps: backward broadening, relative as ``solver["eps_rule"]`` says (eigsh: ``"rms"``, the
            spectrum's scale; ``"gap"``, the block's mean gap), ``None``: eigsh default.
        solver: extra :func:`~cheeger.linalg.eigsh` keywords (``method``, ``backward``, ...).
        filter: filter name for :func:`~cheeger.spectral.build_filter` (``"learned"``,
            ``"truncation"``, ``"diffusion"``, ``"heat"``) and its options.
        per_class_filter: one response per class (``h_c(lambda)``) instead of one shared.
        noise: noise-floor options for :func:`~cheeger.spectral.noise_floor`.
        noise_every: in training, the noise edge is re-estimated every this many steps (and
            averaged over the batch) and reused in between: the null model's edge depends on the
            embedding's statistics, which move slowly, and each estimate costs a few eigensolves.
            1 re-estimates every step, per image.
        noise_eval: the edge in eval mode: ``"per_image"`` (each image's own, estimated on every
            call) or ``"cached"`` (the training cache's batch mean, no estimate). The edge enters
            only the bulk term and the internals, never the logits, so predictions and metrics
            are the same either way; ``"per_image"`` costs the null's eigensolves per batch
            (the head's eval forward 2.1-2.4x slower at the camvid profile's size, 8 images,
            4 null draws, one thread: ``benchmarks/noise_floor.py --threads 1 --timing``). The
            training loop's validation uses the cached edge either way
            (:func:`cached_noise_edges`); ``cheeger evaluate`` follows this setting.
        solver_strict: training: a stalled or unconverged complement solve in eigsh's backward
            is an error (:class:`~cheeger.linalg.ComplementSolveError`) instead of a warning and
            a count; read by the training loop, which opens the
            :func:`~cheeger.linalg.record_complement` block around each backward.
    """

    stride: int = 8
    graph_channels: int = 16
    rank: int = 8
    neighbourhood: str = "grid"
    radius: float = 1.0
    grid_norm: str = "chebyshev"
    knn: int = 10
    init_sigma: float = 0.5
    affinity: str = "learned"
    k: int = 16
    eps: float | None = None
    solver: dict[str, Any] = field(default_factory=dict)
    filter: str = "learned"
    filter_options: dict[str, Any] = field(default_factory=dict)
    per_class_filter: bool = False
    noise: dict[str, Any] = field(default_factory=dict)
    noise_every: int = 10
    noise_eval: str = "per_image"
    solver_strict: bool = False

    @classmethod
    def from_mapping(cls, section: dict[str, Any] | None, where: str = "spectral.head"):
        """Build from a ``params.yaml`` mapping; unknown keys raise naming ``where.key``."""
        section = dict(section or {})
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(section) - known)
        if unknown:
            raise ValueError(f"params.yaml: {where}: unknown key(s) {unknown}; known: "
                             f"{sorted(known)}")  # fmt: skip
        cfg = cls(**section)
        for name in ("stride", "graph_channels", "rank", "k", "knn", "noise_every"):
            value = getattr(cfg, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"params.yaml: {where}.{name}: expected a positive int, "
                                 f"got {value!r}")  # fmt: skip
        if cfg.rank > cfg.graph_channels:
            raise ValueError(f"params.yaml: {where}.rank: must be <= graph_channels "
                             f"({cfg.graph_channels}), got {cfg.rank}")  # fmt: skip
        if cfg.noise_eval not in ("per_image", "cached"):
            raise ValueError(f"params.yaml: {where}.noise_eval: expected per_image or cached, got "
                             f"{cfg.noise_eval!r}")  # fmt: skip
        if not isinstance(cfg.solver_strict, bool):
            raise ValueError(f"params.yaml: {where}.solver_strict: expected true or false, got "
                             f"{cfg.solver_strict!r}")  # fmt: skip
        if not isinstance(cfg.noise, dict):
            raise ValueError(f"params.yaml: {where}.noise: expected a mapping, got "
                             f"{cfg.noise!r}")  # fmt: skip
        try:
            NoiseFloor(**{k: v for k, v in cfg.noise.items() if k != "num_eigenvalues"})
        except ValueError as err:
            raise ValueError(f"params.yaml: {where}.noise: {err}") from err
        if cfg.affinity not in ("learned", "uniform"):
            raise ValueError(f"params.yaml: {where}.affinity: expected learned or uniform, got "
                             f"{cfg.affinity!r}")  # fmt: skip
        if cfg.affinity == "uniform" and cfg.neighbourhood == "knn":
            raise ValueError(f"params.yaml: {where}.affinity: uniform needs a fixed "
                             "neighbourhood (grid or dense), not knn (its edges come from the "
                             "embedding)")  # fmt: skip
        if cfg.neighbourhood not in ("grid", "knn", "dense"):
            raise ValueError(f"params.yaml: {where}.neighbourhood: expected grid, knn or dense, "
                             f"got {cfg.neighbourhood!r}")  # fmt: skip
        return cfg


def spectral_filtering(U: torch.Tensor, response: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``U diag(h) U^T x``: filter node signals with a spectral response on the bottom pairs.

    Args:
        U: ``(B, n, k)`` orthonormal eigenvectors.
        response: ``(B, k)`` one response for every channel, or ``(B, k, K)`` one per channel.
        x: ``(B, n, K)`` node signals.

    Returns:
        ``(B, n, K)``, invariant to eigenvector signs and to rotations inside eigenspaces on
        which ``response`` is constant.

    Example:
        >>> U = torch.eye(3)[None, :, :2]
        >>> spectral_filtering(U, torch.tensor([[1.0, 0.5]]), torch.ones(1, 3, 1)).flatten()
        tensor([1.0000, 0.5000, 0.0000])
    """
    coeff = U.mT @ x  # (B, k, K): the signal's graph Fourier coefficients
    weights = response if response.dim() == 3 else response[..., None]
    return U @ (weights * coeff)  # (B, n, K)


class SpectralHead(Head):
    """Segmentation head through the learned graph's spectrum (see the module docstring).

    Args:
        in_channels: ``C`` of the decoder features.
        num_classes: ``K``.
        **options: :class:`SpectralHeadConfig` fields.

    Example:
        >>> head = SpectralHead(8, 3, stride=4, k=4, graph_channels=4, rank=2)
        >>> out = head(torch.rand(2, 8, 32, 32), (32, 32))
        >>> tuple(out.logits.shape), sorted(out.losses)
        ((2, 3, 32, 32), ['bulk', 'rayleigh'])
    """

    def __init__(self, in_channels: int, num_classes: int, **options: Any) -> None:
        super().__init__(in_channels, num_classes)
        cfg = SpectralHeadConfig.from_mapping(options, "spectral head")
        self.cfg = cfg
        self.classifier = nn.Conv2d(in_channels, num_classes, 1)
        self.embed = nn.Conv2d(in_channels, cfg.graph_channels, 1)
        self.affinity = GaussianAffinity(
            cfg.graph_channels,
            cfg.rank,
            cfg.neighbourhood,
            radius=cfg.radius,
            grid_norm=cfg.grid_norm,
            k=cfg.knn,
            init_sigma=cfg.init_sigma,
        )
        channels = num_classes if cfg.per_class_filter else 1
        self.filter = build_filter(cfg.filter, out_channels=channels, **cfg.filter_options)
        self.graph_term = cfg.filter != "zero"  # h = 0: the control without a graph term
        # the cached noise edge and its age in steps (-1: none yet); buffers, so that a resumed
        # training run continues with exactly the state it stopped with
        self.register_buffer("noise_edge", torch.zeros(()))
        self.register_buffer("noise_age", torch.tensor(-1))

    def _noise_edge(self, g_low: torch.Tensor) -> torch.Tensor:
        """``(B,)`` noise edges: in training fresh or the cached one (see ``noise_every``), in
        eval mode per image or the cached one (see ``noise_eval``)."""
        batch = g_low.shape[0]
        per_image = self.cfg.noise_eval == "per_image" and not getattr(_CACHED_EDGES, "on", False)
        if not self.training and per_image:  # the training cache stays untouched
            with torch.no_grad(), record_function("cheeger::noise_floor"):
                return noise_floor(g_low.detach(), self._affinity, **self.cfg.noise)  # (B,)
        every, age = self.cfg.noise_every, int(self.noise_age)
        stale = age < 0 or (self.training and age + 1 >= every)
        if every == 1 or stale:
            with torch.no_grad(), record_function("cheeger::noise_floor"):
                edge = noise_floor(g_low.detach(), self._affinity, **self.cfg.noise)  # (B,)
            self.noise_edge.copy_(edge.mean())
            self.noise_age.fill_(0)
            if every == 1:
                return edge
        elif self.training:
            self.noise_age.add_(1)
        return self.noise_edge.expand(batch)

    def graph(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(L_sym (B, n, n), g_low (B, d, h, w))`` of a feature map ``(B, C, H, W)``."""
        return self._graph(block_mean(features, self.cfg.stride))[:2]

    def _affinity(self, g: torch.Tensor) -> torch.Tensor:
        """The graph's weights on embedding ``g``: learned, or 1 on every edge (``uniform``)."""
        if self.cfg.affinity == "uniform":  # exp(-0) = 1: the plain grid, whatever g is
            return self.affinity(torch.zeros_like(g.detach()))
        return self.affinity(g)

    def _graph(self, f_low: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        g_low = F.normalize(self.embed(f_low), dim=1)  # (B, d, h, w): unit length per node
        W = self._affinity(g_low)  # (B, n, n), sparse for grid / knn
        return normalized_laplacian(W), g_low, W

    @torch.no_grad()
    def _diagnostics(self, W: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
                     lam: torch.Tensor | None, h: int, w: int) -> torch.Tensor:  # fmt: skip
        """``(B, 6)`` per image, in the order of :data:`DIAGNOSTICS` (see there)."""
        batch = x.shape[0]
        W = W.detach()
        if W.is_sparse:
            idx, vals = W._indices(), W._values()
            which = idx[0]  # (nnz,) the image of each stored edge
        else:  # dense: every off-diagonal pair
            off = ~torch.eye(W.shape[-1], dtype=torch.bool, device=W.device)
            vals = W[:, off].reshape(-1)
            which = torch.arange(batch, device=W.device).repeat_interleave(int(off.sum()))
        # cv = std / mean of the edge weights; W = exp(-e) with e = ||A(g_i - g_j)||^2 / 2 s^2
        count = torch.zeros(batch, dtype=vals.dtype, device=vals.device).index_add_(
            0, which, torch.ones_like(vals)).clamp_min(1)  # (B,)
        mean = torch.zeros_like(count).index_add_(0, which, vals) / count  # (B,)
        var = torch.zeros_like(count).index_add_(0, which, (vals - mean[which]) ** 2) / count
        cv = var.sqrt() / mean.clamp_min(torch.finfo(vals.dtype).tiny)  # (B,)
        exponent = -vals.clamp_min(torch.finfo(vals.dtype).tiny).log()  # (nnz,)
        exponent = torch.zeros_like(count).index_add_(0, which, exponent) / count  # (B,)
        y_ratio = y.flatten(1).norm(dim=1) / x.flatten(1).norm(dim=1).clamp_min(1e-30)  # (B,)
        nan = torch.full_like(cv, float("nan"))
        if lam is None or lam.shape[-1] < 2:
            lam2 = grid2 = ratio = nan
        else:
            grid = self.plain_grid_eigenvalues(h, w, lam).to(lam.dtype)  # (k,)
            lam2, grid2 = lam[:, 1], grid[1].expand(batch)
            ratio = (lam[:, 1:] / grid[1:].clamp_min(1e-30)).mean(-1)  # (B,)
        out = [cv, exponent, y_ratio, lam2, grid2, ratio]
        return torch.stack([t.to(x.dtype) for t in out], -1)  # (B, 6)

    def plain_grid_eigenvalues(self, h: int, w: int, like: torch.Tensor) -> torch.Tensor:
        """``(k,)`` bottom eigenvalues of ``L_sym`` of the plain (uniform-weight) graph on an
        ``h x w`` grid with this head's neighbourhood: the reference the learned graph's
        spectrum is compared with (diagnostics). Computed once per size and cached."""
        key = (h, w, str(like.dtype), str(like.device))
        cache = self.__dict__.setdefault("_plain_grid", {})
        if key not in cache:
            with torch.no_grad():
                g = torch.zeros(1, self.cfg.graph_channels, h, w, dtype=like.dtype,
                                device=like.device)  # fmt: skip
                L = normalized_laplacian(self.affinity(g))
                lam = eigsh(L, min(self.cfg.k, h * w), laplacian=True, return_info=True)[0]
                cache[key] = lam[0]  # (k,)
        return cache[key]

    def forward(self, features: torch.Tensor, out_size: Sequence[int]) -> HeadOutput:
        cfg = self.cfg
        x = self.classifier(features)  # (B, K, H, W)
        # Everything graph-side runs at the graph's resolution: a 1x1 convolution commutes with
        # average pooling, so pooling the C decoder channels once replaces pooling the class map
        # (and its full-resolution backward pass). The embedding is normalised after pooling,
        # which does not commute: g is unit-length per graph node.
        f_low = block_mean(features, cfg.stride)  # (B, C, h, w)
        with record_function("cheeger::graph"):  # named ranges: benchmarks/heads.py reads them
            L, g_low, W = self._graph(f_low)
        batch, _, h, w = g_low.shape
        k = min(cfg.k, h * w)
        x_low = self.classifier(f_low)  # (B, K, h, w) = avg_pool(x), exactly
        x_nodes = x_low.flatten(2).mT  # (B, n, K)
        if self.graph_term:
            with record_function("cheeger::eigsh"):
                # L is L_sym of a non-negative affinity: its components certify the solve
                options = {"laplacian": True, **cfg.solver, "return_info": True}
                lam, U, info = eigsh(L, k, cfg.eps, **options)
            response = self.filter(lam)  # (B, k, channels)
            y = spectral_filtering(U, response, x_nodes)  # (B, n, K)
            # The extra terms see the graph as a constant (module docstring, "Gradient paths"):
            # the response at the detached eigenvalues, the evidence filtered on the detached
            # basis. Same values as ``response`` and ``y``; only the cross-entropy moves the graph.
            lam_c, U_c = lam.detach(), U.detach()
            response_c = self.filter(lam_c)  # (B, k, channels)
            y_c = spectral_filtering(U_c, response_c, x_nodes)  # (B, n, K)
        else:  # h = 0 (filter "zero"): no graph term, so no eigenpairs are needed
            y = y_c = torch.zeros_like(x_nodes)  # (B, n, K)
        y = y.mT.reshape(batch, self.num_classes, h, w)
        full = x + resize_logits(y, x.shape[-2:])  # (B, K, H, W)
        logits = resize_logits(full, out_size)
        # the head's class probabilities at the graph's resolution (softmax of its logits there)
        probs_low = torch.softmax(x_low + y_c.mT.reshape(batch, self.num_classes, h, w), 1)
        losses = {"rayleigh": rayleigh_quotient_loss(probs_low, L.detach())}
        internals: dict[str, Any] = {"graph_size": torch.tensor([h, w])}
        if self.graph_term:
            edge = self._noise_edge(g_low)  # (B,)
            losses["bulk"] = bulk_penalty(response_c, lam_c, edge)
            internals.update({
                "eigenvalues": lam_c,
                "eigenvectors": U_c,
                "filter": response.detach().mean(-1),
                "noise_edge": edge.detach(),
                "solver": solver_summary(info, lam),  # (5,): SOLVER_FIELDS
                "solver_method": str(info.method),  # the one non-tensor internal
            })  # fmt: skip
        else:
            losses["bulk"] = x.new_zeros(())
        internals["diagnostics"] = self._diagnostics(
            W, x_nodes, y_c, lam_c if self.graph_term else None, h, w)  # (B, len(DIAGNOSTICS))
        return HeadOutput(logits, losses, internals)
