r"""The NeuralEF head: the spectral head with ``eigsh`` replaced by learned eigenfunctions.

Everything but the eigensolve is the spectral head's (:mod:`cheeger.heads.spectral`): the class
evidence ``x = W_x f + b``, the pooled features ``f_low`` at the graph's resolution ``(h, w)``
(``n = h w`` nodes), the learned Gaussian affinity ``W`` of the embedding
``g = normalise(W_g f_low)`` on the same neighbourhood, ``L_sym = I - D^{-1/2} W D^{-1/2}``, the
filter ``h_theta(lambda)`` and

    logits = x + upsample(U diag(h_theta(lambda)) U^T x_low).

Instead of ``(lambda, U) = eigsh(L_sym, k)``:

1. a small network ``psi`` (1x1 convolutions, ``hidden`` wide, SiLU) maps ``f_low`` and a
   Fourier encoding of each node's grid position (``positional`` frequencies per axis) to ``k``
   node signals, L2-batch-normalised per image over the graph's nodes (each column to
   ``||psi_j||^2 = n``, eq. 5 of seed 001 with the image's nodes as the batch);
2. ``psi`` is trained by the NeuralEF loss (seed 001, eq. 5-7,
   :func:`cheeger.losses.neuralef.neuralef_loss`) on the kernel ``n (I - L_sym)``, per image: its
   top eigenfunctions are the bottom eigenvectors of ``L_sym`` (``mu = 1 - lambda``), and the
   factor ``n`` makes ``R_jj`` the Rayleigh quotient itself, so ``beta`` does not depend on ``n``;
3. ``U`` is ``psi / sqrt(n)`` orthonormalised by a reduced QR (``orthonormalize``, default), or
   used as is; ``lambda_j = u_j^T L_sym u_j``, the Rayleigh quotients of the basis used (without
   QR, ``lambda_j = 1 - R_jj``: ``R_jj = psi_j^T (I - L_sym) psi_j / n`` is ``mu_j``).

No eigendecomposition runs in the forward pass: a batched ``(n, k)`` QR and sparse products. The
bulk term's noise edge is the spectral head's null model (eigensolves of *null* graphs, without
gradient, every ``noise_every`` training steps; in eval mode the cached edge, estimated once if
there is none), never on the logits' path.

Why a position encoding
-----------------------
The bottom eigenvectors of a grid graph are smooth spatial modes, piecewise along the image's
strong edges; a per-node function of the features alone cannot draw them (two nodes with the
same features get the same value wherever they are). Measured with
``benchmarks/neuralef_head.py --basis`` (two CamVid frames, 64 channels of cached Lite0 taps,
the head's fixed graph at 45 x 60, k = 16, 1000 Adam steps of the NeuralEF loss alone): the
median principal angle between span(psi) and eigsh's bottom 16 is 0.85 rad from the features
alone (``positional: 0``), 0.25 rad with 8 frequencies per axis; the NeuralEF loss reaches
-14.4 and -15.6 against its floor -15.86 (minus the sum of eigsh's top 16 ``mu``).

Why QR
------
After L2 batch normalisation the columns of ``psi / sqrt(n)`` have unit length but are only as
orthogonal as the NeuralEF penalty has made them, and ``U diag(h) U^T`` with a non-orthogonal
``U`` counts the shared directions twice. The QR keeps the span and the NeuralEF order (``q_j`` is
``psi_j`` minus its projection on ``psi_1..psi_{j-1}``, the order in which the loss makes them
orthogonal). Measured (same script): after 1000 steps ``||U0^T U0 - I||_F`` is 0.09-0.11
(largest off-diagonal 0.03) and the filtered signal ``U diag(h) U^T x`` of random ``x`` differs
by 2-3% between ``U0 = psi / sqrt(n)`` and the QR basis; earlier in the fit (300 steps, features
only) ``||U0^T U0 - I||_F`` is 1.8-2.0 and the difference 40-53% with a flat ``h``. A head in
training fits a moving graph, so its psi is never fully converged: QR by default; a batched
``(n, k)`` QR costs little beside the graph (``--timing``).

Gradient paths
--------------
* ``"neuralef"`` moves ``psi``'s parameters and nothing else: the kernel is a constant for it
  (else it would reshape the graph so that its eigenfunctions are easy to fit), and ``psi``
  reads ``f_low`` detached, so it cannot move the backbone either (the backbone's features are
  the graph's input: moving them would move the next step's graph).
* The cross-entropy (through the logits) moves the classifier, the filter, the backbone through
  ``x`` and ``x_low``, and the graph (``embed``, the affinity, the backbone through ``g``) through
  ``lambda_j = u_j^T L_sym u_j`` with ``U`` constant: ``u^T dL u``, the eigenvalue derivative
  eigsh's backward uses (exact when ``u`` is an eigenvector). The eigenvector half of eigsh's
  backward has no counterpart here (``U`` is the solver's estimate, detached): this head's graph
  learns from its eigenvalues only. The task loss does not move ``psi`` (``psi`` is the solver:
  its one objective is the NeuralEF loss, so its output stays an estimate of the eigenvectors).
* ``"rayleigh"`` and ``"bulk"`` as in the spectral head: the graph, ``lambda`` and ``U`` are
  constants for them (``rayleigh`` moves the classifier, the filter and the backbone through
  ``x_low``; ``bulk`` moves the filter only).

All tested in ``tests/heads/test_neuralef.py`` (exactly zero gradients where claimed, nonzero
elsewhere).

Inference: in eval mode under ``torch.no_grad()`` the head returns ``losses = {}`` (logits and
internals as ever): no loss could be used there, and the NeuralEF fit, the second filtering and
the Rayleigh term were ~15% of the head's eval forward (``benchmarks/neuralef_head.py
--timing``). In training mode, or with autograd on, all three terms are returned.

Basis invariance: flipping the sign of any output of ``psi`` leaves the logits unchanged (the
QR basis changes at most by the signs of its columns; the Rayleigh quotients and
``U diag(h) U^T`` are even in each column). A rotation
inside a degenerate eigenspace does *not* leave them unchanged, unlike in the spectral head: the
Rayleigh quotients of rotated approximate eigenvectors differ, and so does ``h`` at them.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.profiler import record_function

from cheeger.graph import GaussianAffinity, normalized_laplacian, normalized_rayleigh_quotients
from cheeger.heads.base import Head, HeadOutput
from cheeger.heads.conv import block_mean, resize_logits
from cheeger.heads.spectral import SpectralHeadConfig, spectral_filtering
from cheeger.losses import rayleigh_quotient_loss
from cheeger.losses.bulk import bulk_penalty
from cheeger.losses.neuralef import neuralef_loss
from cheeger.spectral import build_filter, noise_floor

__all__ = [
    "SHARED_KEYS",
    "NeuralEFHead",
    "NeuralEFHeadConfig",
    "position_encoding",
    "rayleigh_quotients",
]


@dataclass
class NeuralEFHeadConfig:
    """The NeuralEF head's settings: the spectral head's graph, filter and noise keys (read from
    ``spectral.head``) plus its own (``neuralef.head``).

    Attributes:
        stride, graph_channels, rank, neighbourhood, radius, grid_norm, knn, init_sigma, filter,
            filter_options, per_class_filter, noise, noise_every: as in
            :class:`~cheeger.heads.spectral.SpectralHeadConfig`.
        k: eigenfunctions learned (``psi``'s outputs); must not exceed the graph's nodes.
        hidden: width of ``psi``'s hidden 1x1 convolutions.
        depth: number of hidden layers of ``psi`` (0: one linear 1x1 convolution).
        positional: frequencies ``j = 1..P`` per axis of the position encoding appended to
            ``psi``'s input, ``sin(pi j t)`` and ``cos(pi j t)`` of the node's row and column
            scaled to ``t in [0, 1]`` (``4 P`` channels; 0: features only). A per-node function
            of the features alone cannot draw the smooth spatial modes at the bottom of a grid
            graph's spectrum (see the module docstring, "Why a position encoding").
        beta: NeuralEF penalty weight (eq. 5); the kernel is ``n (I - L_sym)``, so the order of
            the eigenfunctions needs ``beta > (mu_i - mu_j) / mu_i^2`` for ``i < j``
            (:mod:`cheeger.losses.neuralef`), ``mu = 1 - lambda``.
        orthonormalize: ``U`` from a reduced QR of ``psi`` (``True``) or ``psi / sqrt(n)``.
    """

    stride: int = 8
    graph_channels: int = 16
    rank: int = 8
    neighbourhood: str = "grid"
    radius: float = 1.0
    grid_norm: str = "chebyshev"
    knn: int = 10
    init_sigma: float = 0.5
    k: int = 16
    filter: str = "learned"
    filter_options: dict[str, Any] = field(default_factory=dict)
    per_class_filter: bool = False
    noise: dict[str, Any] = field(default_factory=dict)
    noise_every: int = 10
    hidden: int = 64
    depth: int = 1
    positional: int = 8
    beta: float = 1.0
    orthonormalize: bool = True

    @classmethod
    def from_mapping(cls, section: dict[str, Any] | None, where: str = "neuralef.head"):
        """Build from a mapping; unknown keys and bad values raise naming ``where.key``."""
        section = dict(section or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(section) - known)
        if unknown:
            raise ValueError(f"params.yaml: {where}: unknown key(s) {unknown}; known: "
                             f"{sorted(known)}")  # fmt: skip
        # the shared keys are checked by the spectral head's own validation
        SpectralHeadConfig.from_mapping({k: v for k, v in section.items() if k in SHARED_KEYS},
                                        where)  # fmt: skip
        cfg = cls(**section)
        for name, low in (("hidden", 1), ("depth", 0), ("positional", 0)):
            value = getattr(cfg, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"params.yaml: {where}.{name}: expected an int >= {low}, got "
                                 f"{value!r}")  # fmt: skip
        beta = cfg.beta
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not 0 <= beta < 1e308:
            raise ValueError(f"params.yaml: {where}.beta: expected a finite number >= 0, got "
                             f"{beta!r}")  # fmt: skip
        if not isinstance(cfg.orthonormalize, bool):
            raise ValueError(f"params.yaml: {where}.orthonormalize: expected true or false, got "
                             f"{cfg.orthonormalize!r}")  # fmt: skip
        return cfg


#: Keys the NeuralEF head shares with ``spectral.head`` (the graph, the filter, the noise edge);
#: the spectral head's eigensolver keys (``eps``, ``solver``, ``solver_strict``, ``noise_eval``)
#: have no meaning here.
SHARED_KEYS = tuple(sorted({f.name for f in fields(NeuralEFHeadConfig)}
                           & set(SpectralHeadConfig.__dataclass_fields__)))  # fmt: skip


def _sparse_apply(operator: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``operator @ x`` for a coalesced sparse COO ``(B, n, n)`` operator and ``x (B, n, k)``."""
    batch, n, k = x.shape
    indices, values = operator.indices(), operator.values()
    rows, cols = indices[0] * n + indices[1], indices[0] * n + indices[2]
    flat = x.reshape(batch * n, k)
    gathered = flat.index_select(0, cols) * values[:, None]  # (nnz, k)
    return flat.new_zeros(batch * n, k).index_add(0, rows, gathered).reshape(batch, n, k)


def rayleigh_quotients(L: torch.Tensor, U: torch.Tensor) -> torch.Tensor:
    """``lambda_j = u_j^T L u_j / u_j^T u_j`` of each column of ``U`` on each image's operator.

    Args:
        L: ``(B, n, n)`` symmetric operator, dense or sparse COO.
        U: ``(B, n, k)`` columns (nonzero).

    Returns:
        ``(B, k)``, differentiable in ``L``'s values and in ``U``.

    Example:
        >>> L = torch.diag(torch.tensor([0.0, 1.0, 2.0]))[None]
        >>> rayleigh_quotients(L.to_sparse(), torch.tensor([[[1.0], [1.0], [0.0]]]))
        tensor([[0.5000]])
    """
    if L.is_sparse:
        L = L if L.is_coalesced() else L.coalesce()
        LU = _sparse_apply(L, U)  # (B, n, k)
    else:
        LU = L @ U
    return (U * LU).sum(1) / U.square().sum(1)


def position_encoding(h: int, w: int, frequencies: int, like: torch.Tensor) -> torch.Tensor:
    """``(4 P, h, w)``: ``sin(pi j t), cos(pi j t)`` of the row and the column ``t in [0, 1]``.

    Channels ``4 (j - 1) + (0, 1, 2, 3)`` are ``sin`` of the row, ``sin`` of the column, ``cos``
    of the row, ``cos`` of the column at frequency ``j``.

    Example:
        >>> position_encoding(2, 3, 1, torch.zeros(())).shape
        torch.Size([4, 2, 3])
    """
    rows = torch.linspace(0.0, 1.0, h, dtype=like.dtype, device=like.device)
    cols = torch.linspace(0.0, 1.0, w, dtype=like.dtype, device=like.device)
    grid = torch.stack(torch.meshgrid(rows, cols, indexing="ij"))  # (2, h, w)
    j = torch.arange(1, frequencies + 1, dtype=like.dtype, device=like.device)
    angles = torch.pi * j[:, None, None, None] * grid  # (P, 2, h, w)
    return torch.cat([angles.sin(), angles.cos()], 1).reshape(4 * frequencies, h, w)


def _kernels(L: torch.Tensor) -> list[torch.Tensor]:
    """Per image, the NeuralEF kernel ``n (I - L_sym)`` as an ``(n, n)`` sparse COO (detached).

    ``I - L_sym`` is ``D^{-1/2} W D^{-1/2}`` on connected nodes and 1 on the diagonal of an
    isolated one (``L_sym``'s convention gives it eigenvalue 0, so its top eigenvalue here is 1:
    the two spectra match under ``mu = 1 - lambda``).
    """
    L = (L if L.is_coalesced() else L.coalesce()).detach()
    n = L.shape[-1]
    indices, values = L.indices(), L.values()
    diagonal = indices[1] == indices[2]
    kernel_values = n * torch.where(diagonal, 1.0 - values, -values)
    counts = torch.bincount(indices[0], minlength=L.shape[0]).tolist()
    out = []
    for idx, val in zip(indices[1:].split(counts, 1), kernel_values.split(counts), strict=True):
        out.append(
            torch.sparse_coo_tensor(idx, val, (n, n), is_coalesced=True, check_invariants=False)
        )
    return out


class NeuralEFHead(Head):
    """Segmentation head through learned eigenfunctions of its graph (see the module docstring).

    Args:
        in_channels: ``C`` of the decoder features.
        num_classes: ``K``.
        **options: :class:`NeuralEFHeadConfig` fields.

    Example:
        >>> head = NeuralEFHead(8, 3, stride=4, k=4, graph_channels=4, rank=2, hidden=8)
        >>> out = head(torch.rand(2, 8, 32, 32), (32, 32))
        >>> tuple(out.logits.shape), sorted(out.losses)
        ((2, 3, 32, 32), ['bulk', 'neuralef', 'rayleigh'])
        >>> tuple(out.internals["eigenvectors"].shape)
        (2, 64, 4)
    """

    def __init__(self, in_channels: int, num_classes: int, **options: Any) -> None:
        super().__init__(in_channels, num_classes)
        cfg = NeuralEFHeadConfig.from_mapping(options, "neuralef head")
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
        widths = [in_channels + 4 * cfg.positional] + [cfg.hidden] * cfg.depth + [cfg.k]
        layers: list[nn.Module] = []
        for a, b in itertools.pairwise(widths):
            layers += [nn.Conv2d(a, b, 1), nn.SiLU()]
        self.psi = nn.Sequential(*layers[:-1])  # no activation after the last layer
        channels = num_classes if cfg.per_class_filter else 1
        self.filter = build_filter(cfg.filter, out_channels=channels, **cfg.filter_options)
        # the cached noise edge and its age in steps (-1: none yet), as in the spectral head
        self.register_buffer("noise_edge", torch.zeros(()))
        self.register_buffer("noise_age", torch.tensor(-1))

    def _noise_edge(self, g_low: torch.Tensor) -> torch.Tensor:
        """``(B,)`` noise edges: re-estimated every ``noise_every`` training steps (batch mean)
        and cached; in eval mode the cached one (estimated once if there is none yet)."""
        batch = g_low.shape[0]
        every, age = self.cfg.noise_every, int(self.noise_age)
        stale = age < 0 or (self.training and age + 1 >= every)
        if stale:
            with torch.no_grad(), record_function("cheeger::noise_floor"):
                edge = noise_floor(g_low.detach(), self.affinity, **self.cfg.noise)  # (B,)
            self.noise_edge.copy_(edge.mean())
            self.noise_age.fill_(0)
        elif self.training:
            self.noise_age.add_(1)
        return self.noise_edge.expand(batch)

    def eigenfunctions(self, f_low: torch.Tensor) -> torch.Tensor:
        """``psi`` of pooled features ``(B, C, h, w)``, L2-batch-normalised per image: ``(B, n, k)``
        with ``||psi_j||^2 = n`` for every image and column (``l2_batch_normalize`` per image)."""
        _, channels, h, w = f_low.shape
        codes = position_encoding(h, w, self.cfg.positional, f_low)  # (4 P, h, w)
        # psi's first layer on [f_low; codes], split: the codes' part is the same for every
        # image, computed once per call as a bias map instead of concatenated to each image
        first = self.psi[0]
        weight = first.weight[:, :, 0, 0]  # (hidden, C + 4 P)
        bias = torch.einsum("oc,chw->ohw", weight[:, channels:], codes)  # (hidden, h, w)
        z = F.conv2d(f_low.detach(), first.weight[:, :channels], first.bias) + bias
        psi = self.psi[1:](z).flatten(2).mT  # (B, n, k)
        n = psi.shape[1]
        # psi_j sqrt(n) / ||psi_j||, per image
        return psi * (n**0.5 / psi.norm(dim=1, keepdim=True).clamp_min(1e-12))

    def _losses(
        self,
        psi: torch.Tensor,
        L: torch.Tensor,
        U: torch.Tensor,
        response_c: torch.Tensor,
        lam_c: torch.Tensor,
        x_low: torch.Tensor,
        edge: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        """The head's loss terms: the NeuralEF fit of ``psi`` ``(B, n, k)`` to the kernel of
        ``L``, the Rayleigh consistency of the prediction ``x_low`` ``(B, K, h, w)`` filtered by
        the constant ``response_c`` ``(B, k, channels)`` on the basis ``U``, and the bulk
        penalty above ``edge`` ``(B,)``."""
        batch, _, h, w = x_low.shape
        n = h * w
        y_c = spectral_filtering(U, response_c, x_low.flatten(2).mT)  # (B, n, K)
        probs_low = torch.softmax(x_low + y_c.mT.reshape(batch, self.num_classes, h, w), 1)
        if L.is_sparse:
            kernels = _kernels(L)
        else:
            eye = torch.eye(n, dtype=L.dtype, device=L.device)
            kernels = list(n * (eye - L))
        with record_function("cheeger::neuralef_loss"):
            fit = torch.stack([neuralef_loss(p, kern, self.cfg.beta)
                               for p, kern in zip(psi, kernels, strict=True)]).mean()  # fmt: skip
        return {
            "neuralef": fit,
            "rayleigh": rayleigh_quotient_loss(probs_low, L),
            "bulk": bulk_penalty(response_c, lam_c, edge),
        }

    def forward(self, features: torch.Tensor, out_size: Sequence[int]) -> HeadOutput:
        cfg = self.cfg
        x = self.classifier(features)  # (B, K, H, W)
        f_low = block_mean(features, cfg.stride)  # (B, C, h, w)
        batch, _, h, w = f_low.shape
        n = h * w
        if cfg.k > n:
            raise ValueError(
                f"neuralef head: k = {cfg.k} eigenfunctions, but the graph has only "
                f"n = {h} x {w} = {n} nodes; lower neuralef.head.k or the stride"
            )
        # one host sync; a NaN or infinity anywhere in features reaches the pooled map and its
        # sum; a sum of finite values overflows only when its B C h w terms average past the
        # dtype's max / (B C h w) (3.4e38 in float32): the full test then confirms the error
        if not bool(torch.isfinite(f_low.sum())) and not bool(torch.isfinite(f_low).all()):
            raise ValueError("neuralef head: features contain NaN or infinite values (found in "
                             "the features pooled to the graph's resolution)")  # fmt: skip
        with record_function("cheeger::graph"):
            g_low = F.normalize(self.embed(f_low), dim=1)  # (B, d, h, w)
            W = self.affinity(g_low)  # (B, n, n) sparse (dense: "dense")
        with record_function("cheeger::neuralef"):
            psi = self.eigenfunctions(f_low)  # (B, n, k)
            psi_c = psi.detach()
            U = torch.linalg.qr(psi_c).Q if cfg.orthonormalize else psi_c / n**0.5  # (B, n, k)
            # u_j^T L_sym u_j from W: graph-differentiable, U constant; L_sym itself is built
            # only for the loss terms, which use it as a constant
            lam = normalized_rayleigh_quotients(W, U)  # (B, k)
        response = self.filter(lam)  # (B, k, channels)
        x_low = self.classifier(f_low)  # (B, K, h, w) = avg_pool(x), exactly
        y = spectral_filtering(U, response, x_low.flatten(2).mT)  # (B, n, K)
        full = x + resize_logits(y.mT.reshape(batch, self.num_classes, h, w), x.shape[-2:])
        logits = resize_logits(full, out_size)
        # extra terms: the graph, lambda and U are constants (module docstring, "Gradient paths")
        lam_c = lam.detach()
        response_c = self.filter(lam_c)  # (B, k, channels)
        edge = self._noise_edge(g_low)  # (B,)
        losses = {}
        if self.training or torch.is_grad_enabled():
            with torch.no_grad(), record_function("cheeger::graph"):
                L = normalized_laplacian(W)  # (B, n, n): a constant of every loss term
            losses = self._losses(psi, L, U, response_c, lam_c, x_low, edge)
        gram = U.mT @ U  # (B, k, k)
        eye_k = torch.eye(cfg.k, dtype=U.dtype, device=U.device)
        order = lam_c.argsort(-1)  # snapshots expect ascending eigenvalues
        internals = {
            "eigenvalues": lam_c.gather(-1, order),
            "eigenvectors": U.gather(-1, order[:, None, :].expand(-1, n, -1)),
            "filter": response_c.detach().mean(-1).gather(-1, order),
            "noise_edge": edge.detach(),
            "graph_size": torch.tensor([h, w]),
            # ||U^T U - I||_F per image: 0 with QR, the NeuralEF fit's departure without it
            "orthogonality": (gram - eye_k).flatten(1).norm(dim=-1),
        }
        return HeadOutput(logits, losses, internals)
