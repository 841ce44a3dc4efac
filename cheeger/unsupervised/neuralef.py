r"""Unsupervised NeuralEF (seed 001, sec. 3.4-3.5, 4): a network learns the kernel's eigenfunctions.

``psi``, a 1x1-convolution stack (an MLP on each node's feature), maps a node feature to ``K``
logits. Training, on batches of ``B`` images whose ``N = B n`` nodes are pooled:

1. the batch kernel ``kappa`` of :func:`~cheeger.unsupervised.kernel.spectral_kernel` with
   ``pooled=True`` (feature kNN searched across the batch's images, pixel graph per image);
2. ``q = gumbel_softmax(psi(f), tau)`` (soft relaxation, one Gumbel draw per node and step), the
   temperature cosine-annealed from ``tau_start = 1`` to ``tau_end = 0.3`` over all steps (sec. 4);
3. ``Psi = l2_batch_normalize(q)`` (the Gumbel-softmax precedes the L2 batch normalisation,
   sec. 3.5), and the loss :func:`~cheeger.losses.neuralef_loss` of ``Psi`` with the kernel
   ``N kappa``. The factor ``N`` makes eq. 7's ``R_jj`` the Rayleigh quotient of ``kappa`` itself
   (``kappa``'s eigenvalues are in ``[-(1 + alpha), 1 + alpha]``, not ``O(1/N)``), so ``beta``
   does not depend on the batch size (:mod:`cheeger.losses.neuralef`, "Scale and beta"); it is
   the reference implementation's scaling with its ``t = 1`` (its loss also divides both terms
   by ``K``, a constant factor that Adam ignores).

Adam, learning rate ``lr`` with cosine decay, no weight decay (sec. 4). At test time there is no
Gumbel noise, no normalisation and no eigensolve: the cluster of a node is ``argmax psi(f)``
(after bilinear up-sampling of the logits, sec. 3.6).

Differences from the paper, all for a CPU budget: an MLP instead of two linear-attention
transformer blocks, no orthogonality constraint on the last layer, ``K`` of 11 (or the
majority-vote ``K``) instead of 256, EfficientNet-Lite0 taps instead of ViT features.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from cheeger.losses.neuralef import l2_batch_normalize, neuralef_loss
from cheeger.unsupervised.kernel import spectral_kernel

__all__ = ["PsiNet", "fit_neuralef", "gumbel_temperature"]


class PsiNet(nn.Module):
    """``psi``: an MLP on the last dim, ``(..., C) -> (..., K)`` logits.

    Hidden layers (Linear + GELU), a LayerNorm, then a bias-free linear head whose weight has
    orthonormal rows (``torch.nn.utils.parametrizations.orthogonal``; the paper's "orthogonal
    columns" of its ``K x d`` convention, sec. 4). The LayerNorm has no learned gain or bias,
    so both together bound the logits (``|logit_k| <= sqrt(hidden)``) throughout training:
    without them the first output grew to take nearly every node and the
    others' softmax underflowed at ``tau = 0.3``, dead columns with no gradient (measured on
    CamVid, K = 11: 2 of 11 clusters used after 4 epochs, test mIoU 0.066).

    Args:
        in_dim: feature channels ``C``.
        k: outputs ``K`` (``<= hidden``).
        hidden: width of the hidden layers.
        layers: hidden layers (GELU after each).

    Example:
        >>> PsiNet(8, 3, hidden=16)(torch.zeros(2, 5, 8)).shape
        torch.Size([2, 5, 3])
    """

    def __init__(self, in_dim: int, k: int, hidden: int = 256, layers: int = 2) -> None:
        super().__init__()
        if not 1 <= k <= hidden:
            raise ValueError(f"PsiNet: K = {k} outputs must be in [1, hidden = {hidden}] for "
                             "an orthonormal head")  # fmt: skip
        dims = [in_dim] + [hidden] * layers
        blocks: list[nn.Module] = []
        for a, b in itertools.pairwise(dims):
            blocks += [nn.Linear(a, b), nn.GELU()]
        # no learned gain or bias: the bound on the logits must hold after training too
        norm = nn.LayerNorm(hidden, elementwise_affine=False)
        blocks += [nn.Linear(dims[-1], hidden), norm] if layers == 0 else [norm]
        self.net = nn.Sequential(*blocks)
        self.head = nn.utils.parametrizations.orthogonal(nn.Linear(hidden, k, bias=False))
        self.k = k

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(self.net(features))


def gumbel_temperature(step: int, total: int, start: float = 1.0, end: float = 0.3) -> float:
    """Cosine annealing ``end + (start - end) (1 + cos(pi step / total)) / 2``.

    Example:
        >>> [round(gumbel_temperature(s, 4), 3) for s in range(5)]
        [1.0, 0.897, 0.65, 0.403, 0.3]
    """
    frac = min(max(step / max(total, 1), 0.0), 1.0)
    return end + (start - end) * 0.5 * (1.0 + math.cos(math.pi * frac))


def fit_neuralef(
    features: torch.Tensor,
    colours: torch.Tensor,
    *,
    k_out: int,
    k: int,
    alpha: float,
    pixel_k: tuple[int, ...],
    position_weights: tuple[float, ...],
    beta: float,
    epochs: int,
    batch_images: int,
    lr: float = 1e-3,
    hidden: int = 256,
    layers: int = 2,
    tau: tuple[float, float] = (1.0, 0.3),
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> tuple[PsiNet, dict[str, list[float]]]:
    """Train ``psi`` on a split's nodes with the NeuralEF objective (module docstring).

    Args:
        features: ``(M, h, w, C)`` node features of the ``M`` training images (any float dtype).
        colours: ``(M, h, w, 3)`` node colours in ``[0, 1]``.
        k_out: eigenfunctions (= clusters) ``K``.
        k, alpha, pixel_k, position_weights: the kernel (:func:`spectral_kernel`).
        beta: NeuralEF penalty weight.
        epochs: passes over the images (each a random partition into batches).
        batch_images: images per batch ``B`` (the last partial batch is dropped).
        lr, hidden, layers: optimiser and network.
        tau: Gumbel-softmax temperature, start and end.
        seed: parameters, batch order and Gumbel draws.
        log: progress lines (one per epoch).

    Returns:
        ``(psi in eval mode, history)``, history with ``loss``, ``trace``, ``tau`` and
        ``seconds`` per epoch.

    Raises:
        ValueError: fewer images than ``batch_images``, or the kernel's errors.
    """
    m = features.shape[0]
    if not 1 <= batch_images <= m:
        raise ValueError(f"fit_neuralef: batch_images = {batch_images} must be in [1, {m}] "
                         "(the training images)")  # fmt: skip
    nodes_per_batch = batch_images * features.shape[1] * features.shape[2]
    if k_out > nodes_per_batch:
        raise ValueError(f"fit_neuralef: K = {k_out} eigenfunctions exceed the {nodes_per_batch} "
                         "nodes of a batch (unsupervised.neuralef.batch_images x the node "
                         "grid); raise batch_images or lower K")  # fmt: skip
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    psi = PsiNet(features.shape[-1], k_out, hidden, layers).to(features.device)
    opt = torch.optim.Adam(psi.parameters(), lr=lr)
    steps_per_epoch = m // batch_images
    total = epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(total, 1))
    history: dict[str, list[float]] = {"loss": [], "trace": [], "tau": [], "seconds": []}
    step = 0
    psi.train()
    for epoch in range(epochs):
        start, losses, traces = time.perf_counter(), [], []
        order = torch.randperm(m, generator=gen)
        for b in range(steps_per_epoch):
            idx = order[b * batch_images : (b + 1) * batch_images]
            f = features[idx].float()  # (B, h, w, C)
            with torch.no_grad():
                kappa = spectral_kernel(f, colours[idx].float(), k, alpha, pixel_k,
                                        position_weights, pooled=True)  # fmt: skip
                nodes = kappa.shape[0]
                kappa = kappa * float(nodes)  # R_jj = Rayleigh quotient of kappa
            tau_now = gumbel_temperature(step, total, *tau)
            logits = psi(f.reshape(nodes, -1))  # (N, K)
            q = F.gumbel_softmax(logits, tau=tau_now, hard=False)  # (N, K)
            loss = neuralef_loss(l2_batch_normalize(q), kappa, beta)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            losses.append(loss.item())
            with torch.no_grad():
                psi_n = l2_batch_normalize(q.detach())
                kp = torch.sparse.mm(kappa, psi_n)
                traces.append(float((psi_n * kp).sum()) / nodes**2)
        history["loss"].append(sum(losses) / max(len(losses), 1))
        history["trace"].append(sum(traces) / max(len(traces), 1))
        # the temperature reached at the epoch's end (the last epoch's is tau's end value)
        history["tau"].append(gumbel_temperature(step, total, *tau) if total else tau[0])
        history["seconds"].append(time.perf_counter() - start)
        if log is not None:
            log(f"neuralef K={k_out} epoch {epoch + 1}/{epochs}: loss {history['loss'][-1]:.4f} "
                f"trace {history['trace'][-1]:.3f} tau {history['tau'][-1]:.3f} "
                f"({history['seconds'][-1]:.1f} s)")  # fmt: skip
    # Bake the orthonormal weight into a plain Linear for inference: the parametrisation
    # recomputes it on every call (psi on 690 nodes, one thread: 4.6 ms -> 4.2 ms, measured).
    nn.utils.parametrize.remove_parametrizations(psi.head, "weight", leave_parametrized=True)
    return psi.eval(), history
