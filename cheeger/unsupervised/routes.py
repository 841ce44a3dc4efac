r"""The three routes from node features to ``K`` clusters, fitted on one split, applied per image.

Every route has ``fit(features, colours)`` on the training images (``(M, h, w, C)`` and
``(M, h, w, 3)``) and ``scores(features, colours)`` for one image, ``(K, h, w)`` per-cluster
scores whose bilinear up-sampling and arg-max (:func:`predict_clusters`) give the cluster map at
the labels' size (seed 001 sec. 3.6 does the same with NeuralEF's logits).

* :class:`KMeansRoute`, the paper's baseline: k-means++ / Lloyd on node features sampled from the
  training images; a node's scores are minus its squared distances to the centroids.
* :class:`EigshRoute`, DSM style: per image the kernel ``kappa`` (``pooled=False``), the
  ``m`` bottom eigenvectors of ``(1 + alpha) I - kappa`` (``kappa``'s top ones) from our
  :func:`~cheeger.linalg.eigsh`, rows normalised to unit length (Ng-Jordan-Weiss), k-means into
  ``segments`` per image. **Synchronisation across the dataset:** each segment is described by the
  mean of its nodes' features (re-normalised) and a dataset-level k-means on the training
  images' segments gives ``K`` centroids; a test segment takes its nearest centroid. This is
  DSM's semantic-segmentation step (clustering segment features over the dataset); DSM fits it on
  the evaluated images themselves, we fit it on the training split like the other routes. Scores
  are the one-hot of each node's cluster.
* :class:`NeuralEFRoute`: :func:`~cheeger.unsupervised.neuralef.fit_neuralef`; scores are the
  logits ``psi(f)``, no eigensolve.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from cheeger.linalg import eigsh
from cheeger.unsupervised.kernel import kernel_laplacian, spectral_kernel
from cheeger.unsupervised.kmeans import kmeans, nearest_centroid
from cheeger.unsupervised.neuralef import fit_neuralef

__all__ = ["EigshRoute", "KMeansRoute", "KernelSettings", "NeuralEFRoute", "predict_clusters"]


@dataclass(frozen=True)
class KernelSettings:
    """The kernel's settings (:func:`~cheeger.unsupervised.kernel.spectral_kernel`)."""

    k: int = 32
    alpha: float = 0.3
    pixel_k: tuple[int, ...] = (20, 10)
    position_weights: tuple[float, ...] = (2.0, 0.1)

    def kernel(self, features: torch.Tensor, colours: torch.Tensor, pooled: bool) -> torch.Tensor:
        """``kappa`` of ``(B, h, w, C)`` features and ``(B, h, w, 3)`` colours."""
        return spectral_kernel(features.float(), colours.float(), self.k, self.alpha,
                               self.pixel_k, self.position_weights, pooled=pooled)  # fmt: skip


def predict_clusters(scores: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear up-sampling of ``(K, h, w)`` scores to ``size``, then arg-max: ``(H, W)`` int64."""
    up = F.interpolate(scores[None].float(), size=tuple(size), mode="bilinear",
                       align_corners=False)  # fmt: skip
    return up[0].argmax(0)


class KMeansRoute:
    """k-means on node features.

    Args:
        clusters: ``K``.
        sample_per_image: training nodes drawn per image (all when ``None``).
        iters: Lloyd iterations.
        seed: sampling and k-means++ seed.
    """

    needs_colours = False

    def __init__(self, clusters: int, sample_per_image: int | None = 200, iters: int = 50,
                 seed: int = 0) -> None:  # fmt: skip
        self.clusters, self.sample, self.iters, self.seed = clusters, sample_per_image, iters, seed
        self.centroids: torch.Tensor | None = None

    def fit(self, features: torch.Tensor, colours: torch.Tensor | None = None) -> KMeansRoute:
        m, h, w, c = features.shape
        nodes = features.reshape(m, h * w, c)
        if self.sample is not None and self.sample < h * w:
            gen = torch.Generator().manual_seed(self.seed)
            pick = torch.stack([torch.randperm(h * w, generator=gen)[: self.sample]
                                for _ in range(m)])  # fmt: skip
            nodes = nodes.gather(1, pick[..., None].expand(-1, -1, c).to(nodes.device))
        self.centroids, _ = kmeans(nodes.reshape(-1, c).float(), self.clusters, self.iters,
                                   self.seed)  # fmt: skip
        return self

    def scores(self, features: torch.Tensor, colours: torch.Tensor | None = None) -> torch.Tensor:
        if self.centroids is None:
            raise RuntimeError("KMeansRoute: call fit() first")
        h, w, c = features.shape
        x = features.reshape(-1, c).float()  # (n, C)
        # -||x - c||^2 up to the per-node constant ||x||^2, which the arg-max ignores
        s = 2 * x @ self.centroids.T - self.centroids.square().sum(-1)  # (n, K)
        return s.T.reshape(-1, h, w)


class EigshRoute:
    """Per-image eigenvectors of the kernel, segments, dataset-level k-means (module docstring).

    Args:
        clusters: ``K``.
        kernel: the kernel's settings.
        eigenvectors: ``m`` eigenpairs per image.
        segments: k-means clusters per image.
        iters: Lloyd iterations (both k-means).
        seed: k-means seed.
    """

    needs_colours = True

    def __init__(self, clusters: int, kernel: KernelSettings, eigenvectors: int = 8,
                 segments: int = 8, iters: int = 50, seed: int = 0) -> None:  # fmt: skip
        self.clusters, self.kernel, self.m = clusters, kernel, eigenvectors
        self.segments, self.iters, self.seed = segments, iters, seed
        self.centroids: torch.Tensor | None = None
        self.unconverged = 0

    def eigenvectors(self, features: torch.Tensor, colours: torch.Tensor) -> torch.Tensor:
        """``(n, m)`` top eigenvectors of one image's ``kappa``."""
        kappa = self.kernel.kernel(features[None], colours[None], pooled=False)  # (1, n, n)
        op = kernel_laplacian(kappa, self.kernel.alpha)
        # not one graph's Laplacian (a sum of two normalised ones): no component certificate
        _, vectors, info = eigsh(op, self.m, laplacian=False, return_info=True)
        self.unconverged += int((~info.converged).sum())
        return vectors[0]

    def segment(self, features: torch.Tensor, colours: torch.Tensor):
        """Per-image segments: ``(n,)`` labels and ``(S, C)`` unit mean features."""
        h, w, c = features.shape
        u = F.normalize(self.eigenvectors(features, colours), dim=-1)  # (n, m)
        _, labels = kmeans(u, min(self.segments, h * w), self.iters, self.seed)
        x = features.reshape(-1, c).float()
        sums = torch.zeros(int(labels.max()) + 1, c, dtype=x.dtype).index_add(0, labels, x)
        return labels, F.normalize(sums, dim=-1)

    def fit(self, features: torch.Tensor, colours: torch.Tensor,
            segment_means: torch.Tensor | None = None) -> EigshRoute:  # fmt: skip
        """Segment every training image, then k-means on the segments' mean features.

        ``segment_means`` (``self.segment_means`` of a fitted route with the same kernel and
        segment settings) skips the per-image eigensolves: only the dataset k-means depends on K.
        """
        if segment_means is None:
            segment_means = torch.cat([self.segment(f, c)[1]
                                       for f, c in zip(features, colours, strict=True)])
        self.segment_means = segment_means  # (sum of segments, C)
        self.centroids, _ = kmeans(segment_means, self.clusters, self.iters, self.seed)
        return self

    def scores(self, features: torch.Tensor, colours: torch.Tensor) -> torch.Tensor:
        if self.centroids is None:
            raise RuntimeError("EigshRoute: call fit() first")
        h, w, _ = features.shape
        labels, means = self.segment(features, colours)
        cluster = nearest_centroid(means, self.centroids)[labels]  # (n,)
        return F.one_hot(cluster, self.clusters).T.reshape(-1, h, w).float()


class NeuralEFRoute:
    """Learned eigenfunctions, arg-max of ``psi`` at test time (:mod:`~.neuralef`).

    Args:
        clusters: ``K`` (outputs of ``psi``).
        kernel: the kernel's settings.
        **train: keyword arguments of :func:`~cheeger.unsupervised.neuralef.fit_neuralef`
            (``beta``, ``epochs``, ``batch_images``, ``lr``, ``hidden``, ``layers``, ``tau``,
            ``seed``).
    """

    needs_colours = False

    def __init__(self, clusters: int, kernel: KernelSettings,
                 log: Callable[[str], None] | None = None, **train) -> None:  # fmt: skip
        self.clusters, self.kernel, self.train, self.log = clusters, kernel, train, log
        self.psi = None
        self.history: dict[str, list[float]] = {}

    def fit(self, features: torch.Tensor, colours: torch.Tensor) -> NeuralEFRoute:
        kernel = self.kernel
        self.psi, self.history = fit_neuralef(
            features, colours, k_out=self.clusters, k=kernel.k, alpha=kernel.alpha,
            pixel_k=kernel.pixel_k, position_weights=kernel.position_weights, log=self.log,
            **self.train,
        )  # fmt: skip
        return self

    @torch.no_grad()
    def scores(self, features: torch.Tensor, colours: torch.Tensor | None = None) -> torch.Tensor:
        if self.psi is None:
            raise RuntimeError("NeuralEFRoute: call fit() first")
        return self.psi(features.float()).permute(2, 0, 1)  # (K, h, w)
