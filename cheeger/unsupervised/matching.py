r"""Clusters to classes, as unsupervised segmentation is evaluated: Hungarian or majority vote.

Both read the dataset confusion ``N`` (``C`` classes x ``K`` clusters, pixels of class ``c`` put
in cluster ``j``, void pixels dropped) of the evaluated split:

* **Hungarian** (``K = C``): the one-to-one assignment ``sigma`` maximising
  ``sum_j N[sigma(j), j]`` (``scipy.optimize.linear_sum_assignment``), as the field's K = C
  protocol (PiCIE, STEGO, DSM);
* **majority vote** (``K > C``): each cluster takes the class most of its pixels have,
  ``sigma(j) = argmax_c N[c, j]`` (several clusters may share a class; seed 001 sec. 3.6 and 4).

The mapping is fitted on the labels of the split it scores: that is the protocol, and it makes
the numbers an upper bound on what an unlabelled deployment would see. An empty cluster is
mapped like any other (Hungarian: to the class left over; vote: to class 0); it labels no pixel.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

__all__ = ["cluster_confusion", "cluster_to_class"]


def cluster_confusion(
    clusters: torch.Tensor, targets: torch.Tensor, num_clusters: int, num_classes: int,
    ignore_index: int | None,
) -> torch.Tensor:  # fmt: skip
    """``(C, K)`` int64 counts of one batch: pixels of class ``c`` (rows) in cluster ``j``.

    Args:
        clusters: ``(..., H, W)`` cluster ids in ``[0, K)``.
        targets: same shape, classes in ``[0, C)`` or ``ignore_index``.
        num_clusters, num_classes: ``K`` and ``C``.
        ignore_index: void target value, or ``None``.

    Example:
        >>> cluster_confusion(torch.tensor([0, 1, 1]), torch.tensor([1, 0, 9]), 2, 2, 9)
        tensor([[0, 1],
                [1, 0]])
    """
    if clusters.shape != targets.shape:
        raise ValueError(f"cluster_confusion: clusters {tuple(clusters.shape)} and targets "
                         f"{tuple(targets.shape)} differ in shape")  # fmt: skip
    keep = torch.ones_like(targets, dtype=torch.bool) if ignore_index is None else (
        targets != ignore_index)  # fmt: skip
    c, j = targets[keep].long(), clusters[keep].long()
    if c.numel() and (int(c.min()) < 0 or int(c.max()) >= num_classes):
        raise ValueError(f"cluster_confusion: targets outside [0, {num_classes}) besides "
                         f"ignore_index {ignore_index}")  # fmt: skip
    if j.numel() and (int(j.min()) < 0 or int(j.max()) >= num_clusters):
        raise ValueError(f"cluster_confusion: cluster ids outside [0, {num_clusters})")
    counts = torch.bincount(c * num_clusters + j, minlength=num_classes * num_clusters)
    return counts.reshape(num_classes, num_clusters)


def cluster_to_class(confusion: torch.Tensor, matching: str) -> torch.Tensor:
    """The class of each cluster, ``(K,)`` int64, from a ``(C, K)`` confusion.

    Args:
        confusion: ``(C, K)`` counts (:func:`cluster_confusion` summed over the split).
        matching: ``"hungarian"`` (needs ``K == C``) or ``"majority"`` (any ``K``).

    Raises:
        ValueError: unknown matching, or Hungarian with ``K != C``.

    Example:
        >>> n = torch.tensor([[0, 5, 1], [4, 0, 0], [0, 3, 2]])
        >>> cluster_to_class(n, "hungarian").tolist(), cluster_to_class(n, "majority").tolist()
        ([1, 0, 2], [1, 0, 2])
    """
    classes, clusters = confusion.shape
    if matching == "majority":
        return confusion.argmax(0)
    if matching != "hungarian":
        raise ValueError(f"matching must be 'hungarian' or 'majority', got {matching!r}")
    if classes != clusters:
        raise ValueError(f"Hungarian matching needs K = C clusters, got K = {clusters}, "
                         f"C = {classes}; use majority voting for K > C")  # fmt: skip
    rows, cols = linear_sum_assignment(confusion.cpu().numpy().astype(np.float64), maximize=True)
    mapping = torch.empty(clusters, dtype=torch.long)
    mapping[torch.as_tensor(cols)] = torch.as_tensor(rows)
    return mapping.to(confusion.device)
