"""Unsupervised segmentation on frozen features: k-means, eigensolver and NeuralEF routes."""

from __future__ import annotations

from cheeger.unsupervised.dataset import iter_items, load_split_nodes
from cheeger.unsupervised.evaluate import evaluate_route, neuralef_fidelity, principal_angles
from cheeger.unsupervised.kernel import (
    feature_knn_affinity,
    kernel_laplacian,
    normalized_adjacency,
    pixel_knn_affinity,
    spectral_kernel,
)
from cheeger.unsupervised.kmeans import kmeans, nearest_centroid
from cheeger.unsupervised.matching import cluster_confusion, cluster_to_class
from cheeger.unsupervised.neuralef import PsiNet, fit_neuralef, gumbel_temperature
from cheeger.unsupervised.nodes import TAP_STRIDES, node_colours, node_features
from cheeger.unsupervised.routes import (
    EigshRoute,
    KernelSettings,
    KMeansRoute,
    NeuralEFRoute,
    predict_clusters,
)

__all__ = [
    "TAP_STRIDES",
    "EigshRoute",
    "KMeansRoute",
    "KernelSettings",
    "NeuralEFRoute",
    "PsiNet",
    "cluster_confusion",
    "cluster_to_class",
    "evaluate_route",
    "feature_knn_affinity",
    "fit_neuralef",
    "gumbel_temperature",
    "iter_items",
    "kernel_laplacian",
    "kmeans",
    "load_split_nodes",
    "nearest_centroid",
    "neuralef_fidelity",
    "node_colours",
    "node_features",
    "normalized_adjacency",
    "pixel_knn_affinity",
    "predict_clusters",
    "principal_angles",
    "spectral_kernel",
]
