r"""Scoring the routes on a labelled split: matched mIoU, accuracy, boundary mIoU, time, fidelity.

:func:`evaluate_route` runs a fitted route over the split's images one at a time (one image =
node features from the cached taps, the route's scores, up-sampling to the native label size,
arg-max; reading the taps from disk is not timed), accumulates the cluster/class confusion, maps
clusters to classes (:mod:`cheeger.unsupervised.matching`: Hungarian for ``K = C``, majority vote
for ``K > C``) and scores the mapped maps with :class:`~cheeger.metrics.SemanticConfusion` and
:class:`~cheeger.metrics.BoundaryIoU` at the labels' native size.

:func:`neuralef_fidelity` measures how close the learned eigenfunctions are to the eigensolver's:
on batches of held-out images, the pooled kernel ``kappa`` of training, its top ``K``
eigenvectors ``U`` (bottom of ``(1 + alpha) I - kappa`` via :func:`~cheeger.linalg.eigsh`) and
``P = softmax(psi(f) / tau_end)`` on the same nodes (the Gumbel-free relaxation psi was trained
through); the principal angles between ``span(U)`` and ``span(P)``:

.. math::

    \theta_i = \arccos \sigma_i(Q_U^\top Q_P), \qquad Q_U, Q_P \text{ orthonormal bases},

ascending, in degrees (0: shared direction, 90: orthogonal).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from typing import Any

import torch
import torch.nn.functional as F

from cheeger.linalg import eigsh
from cheeger.metrics import BoundaryIoU, SemanticConfusion
from cheeger.unsupervised.kernel import kernel_laplacian
from cheeger.unsupervised.matching import cluster_confusion, cluster_to_class
from cheeger.unsupervised.nodes import node_colours, node_features
from cheeger.unsupervised.routes import KernelSettings, predict_clusters

__all__ = ["evaluate_route", "neuralef_fidelity", "principal_angles"]


def evaluate_route(
    route: Any,
    items: Iterable[dict[str, Any]],
    *,
    clusters: int,
    num_classes: int,
    ignore_index: int | None,
    matching: str,
    stride: int = 16,
    levels: tuple[int, ...] = (1, 2, 3),
    keep: int = 4,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Score a fitted route on a split.

    Args:
        route: a fitted route of :mod:`cheeger.unsupervised.routes`.
        items: dicts with ``taps`` (list of 4 ``(C, h, w)``), ``native_label`` ``(H, W)`` and
            ``image`` ``(H', W', 3)`` uint8 (the prepared image), one per image.
        clusters: ``K`` of the route.
        num_classes, ignore_index: the labels' ``C`` and void value.
        matching: ``"hungarian"`` or ``"majority"``.
        stride, levels: node features (:func:`~cheeger.unsupervised.node_features`).
        keep: cluster maps of the first ``keep`` images returned (for figures).
        log: progress lines.

    Returns:
        ``miou``, ``pixel_accuracy``, ``boundary_miou``, ``seconds_per_image`` (mean inference
        time, node features to cluster map), ``route_seconds_per_image`` (the route's scores
        alone: what differs between routes), the same two as CPU time of the calling thread
        (``cpu_seconds_per_image``, ``route_cpu_seconds_per_image``; one torch thread runs
        there), ``images``, ``clusters``, ``matching``,
        ``mapping`` (class of each cluster), ``iou`` (per class) and ``examples`` (mapped maps
        of the first ``keep`` images).
    """
    maps, seconds, route_seconds, cpu, route_cpu = [], [], [], [], []
    confusion = torch.zeros(num_classes, clusters, dtype=torch.long)
    for item in items:
        # wall and this thread's CPU time: on a shared machine the wall time includes waiting
        start, start_cpu = time.perf_counter(), time.thread_time()
        f = node_features(item["taps"], stride, levels)  # (h, w, C)
        c = node_colours(item["image"], f.shape[:2]) if route.needs_colours else None
        mid, mid_cpu = time.perf_counter(), time.thread_time()
        scores = route.scores(f, c)  # (K, h, w)
        route_seconds.append(time.perf_counter() - mid)
        route_cpu.append(time.thread_time() - mid_cpu)
        cl = predict_clusters(scores, tuple(item["native_label"].shape))  # (H, W)
        seconds.append(time.perf_counter() - start)
        cpu.append(time.thread_time() - start_cpu)
        target = item["native_label"]
        confusion += cluster_confusion(cl, target, clusters, num_classes, ignore_index)
        maps.append((cl.to(torch.int16), target))
        if log is not None and len(maps) % 50 == 0:
            log(f"  {len(maps)} images, {sum(seconds) / len(seconds):.4f} s per image")
    if not maps:
        raise ValueError("evaluate_route: no images to evaluate")
    mapping = cluster_to_class(confusion, matching)
    region = SemanticConfusion(num_classes, ignore_index)
    boundary = BoundaryIoU(num_classes, ignore_index)
    examples = []
    for cl, target in maps:
        pred = mapping[cl.long()]
        region.update(pred, target)
        boundary.update(pred, target)
        if len(examples) < keep:
            examples.append(pred)
    scores, bscores = region.compute(), boundary.compute()
    return {
        "miou": float(scores["miou"]), "pixel_accuracy": float(scores["pixel_accuracy"]),
        "boundary_miou": float(bscores["boundary_miou"]),
        "seconds_per_image": sum(seconds) / len(seconds),
        "route_seconds_per_image": sum(route_seconds) / len(route_seconds),
        "cpu_seconds_per_image": sum(cpu) / len(cpu),
        "route_cpu_seconds_per_image": sum(route_cpu) / len(route_cpu), "images": len(maps),
        "clusters": clusters, "matching": matching, "mapping": mapping.tolist(),
        "iou": [None if math.isnan(v) else v for v in scores["iou"].tolist()],
        "examples": examples,
    }  # fmt: skip


def principal_angles(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Principal angles (degrees, ascending) between the column spans of ``(n, p)`` and ``(n, q)``.

    Example:
        >>> e = torch.eye(3, dtype=torch.float64)
        >>> principal_angles(e[:, :2], e[:, 1:]).round().tolist()
        [0.0, 90.0]
    """
    qa, _ = torch.linalg.qr(a.double())
    qb, _ = torch.linalg.qr(b.double())
    cos = torch.linalg.svdvals(qa.T @ qb).clamp(-1, 1)  # descending cosines
    return torch.rad2deg(torch.arccos(cos))


@torch.no_grad()
def neuralef_fidelity(
    psi: torch.nn.Module,
    features: torch.Tensor,
    colours: torch.Tensor,
    kernel: KernelSettings,
    *,
    batch_images: int,
    batches: int,
    tau_end: float,
) -> dict[str, Any]:
    """Principal angles between learned eigenfunctions and ``eigsh``'s eigenvectors (module doc).

    Args:
        psi: trained network, ``(..., C) -> (..., K)``.
        features, colours: ``(M, h, w, C)`` and ``(M, h, w, 3)`` of held-out images.
        kernel: the training kernel's settings.
        batch_images: images pooled per kernel (as in training).
        batches: consecutive batches measured (``<= M // batch_images``).
        tau_end: temperature of the softmax.

    Returns:
        ``principal_angles`` (mean over batches, degrees, ascending), ``per_batch`` (lists),
        ``median_angle``, ``batches``, ``eigsh_methods``.
    """
    batches = min(batches, features.shape[0] // batch_images)
    if batches < 1:
        raise ValueError(f"neuralef_fidelity: need at least batch_images = {batch_images} "
                         f"held-out images, got {features.shape[0]}")  # fmt: skip
    per_batch, methods = [], []
    for b in range(batches):
        sl = slice(b * batch_images, (b + 1) * batch_images)
        f = features[sl].float()
        kappa = kernel.kernel(f, colours[sl], pooled=True)  # (N, N)
        logits = psi(f.reshape(kappa.shape[0], -1))  # (N, K)
        k_out = logits.shape[1]
        _, vectors, info = eigsh(kernel_laplacian(kappa, kernel.alpha), k_out, laplacian=False,
                                 return_info=True)  # fmt: skip
        methods.append(info.method)
        probs = F.softmax(logits / tau_end, dim=-1)
        per_batch.append(principal_angles(vectors, probs).tolist())
    mean = torch.tensor(per_batch).mean(0)
    return {"principal_angles": mean.tolist(), "median_angle": float(mean.median()),
            "per_batch": per_batch, "batches": batches, "eigsh_methods": methods}  # fmt: skip
