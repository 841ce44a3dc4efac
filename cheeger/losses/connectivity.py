r"""Trace-of-Laplacian connectivity loss (seed 002), adapted to semantic segmentation.

Seed 002 scores a superpixel ``s`` by the graph ``G_s`` on the pixel grid whose edge ``{i, j}``
weighs ``q_is q_js`` (``q`` the soft assignment): the trace of its Laplacian,
``tr(L_s) = sum_i d_is = sum_i sum_{j in N(i)} q_is q_js``, grows as the region's pixels hold
together, and the loss is ``1 - (1/M) sum_s tr(L_s) / (deg_max N_s)``.

**Definition used here.** Regions are the classes of each image, ``q`` the softmax probabilities
``(B, K, H, W)``, and ``N(i)`` the 4- or 8-neighbourhood of pixel ``i`` inside the image. For image
``b`` and class ``s``

.. math::

    r_s = \frac{\operatorname{tr}(L_s)}{V_s}
        = \frac{\sum_{\{i,j\} \in E} 2\, q_{is} q_{js}}{\sum_{\{i,j\} \in E} (q_{is} + q_{js})},
    \qquad V_s = \sum_i q_{is}\, |N(i)|,

    \mathcal{L} = \operatorname{mean}_b \; \frac{1}{|S_b|} \sum_{s \in S_b} (1 - r_s),

with ``S_b`` the *predicted regions*: the classes that are the arg-max of at least one pixel of
image ``b`` (selected without gradient). ``V_s`` is the paper's ``deg_max * N_s`` with the soft
size ``N_s = sum_i q_is``, counting each pixel's actual number of neighbours, so it equals
``deg_max * N_s`` away from the image border. Then ``r_s`` is in ``[0, 1]`` (``2ab <= a + b`` on
``[0, 1]``) and ``1 - r_s = sum_E [q_is (1 - q_js) + q_js (1 - q_is)] / V_s`` is the soft
*normalised cut* (conductance) ``cut(s) / vol(s)`` of the region in the grid graph: small for one
compact blob, large for a fragmented region, whose every fragment adds boundary.

**Why these choices.**

* Soft size ``sum_i q_is`` rather than the arg-max pixel count: numerator and denominator then use
  the same ``q``, so ``r_s`` stays in ``[0, 1]`` and is differentiable everywhere; a count is
  piecewise constant (no gradient), jumps when a pixel flips, and can fall below the soft mass,
  pushing ``r_s`` above 1.
* ``|N(i)|`` rather than ``deg_max`` for every pixel: otherwise a region touching the image border
  is charged for that border like a cut against another class, and road or sky always touch it.
* Only predicted regions: an absent class has no region. Averaging over all ``K`` classes would add
  terms near 1 and, as ``r_s`` grows with ``q_s`` (``r_s ~ q`` for a faint uniform class), pull
  probability mass towards absent classes. In the paper every superpixel exists and its candidate
  set ``P_s`` is a fixed window, so ``N_s = |P_s|`` is a constant; here every pixel is a candidate
  for every class, and ``N_s = H W`` would score small classes low whatever their shape.

Like the paper's, the loss also rewards confident predictions (``r_s`` scales with ``q_s``) and
larger regions (perimeter over area); it is an ablation, not part of the design's loss. It needs
no graph: the edge sums are products of shifted views of the probability map.
"""

from __future__ import annotations

import torch
from torch import nn

from cheeger.graph import grid_offsets, shifted_pair

__all__ = ["TraceConnectivityLoss", "trace_connectivity_loss"]


def _region_scores(probs: torch.Tensor, connectivity: int, eps: float) -> torch.Tensor:
    """``r_s`` of every image and class, ``(B, K)``."""
    norm = "euclidean" if connectivity == 4 else "chebyshev"
    trace = probs.new_zeros(probs.shape[:2])  # (B, K): tr(L_s) = sum_E 2 q_i q_j
    volume = probs.new_zeros(probs.shape[:2])  # (B, K): V_s = sum_E (q_i + q_j)
    for offset in grid_offsets(1.0, norm):
        src, dst = shifted_pair(probs, offset)  # (B, K, h, w) each
        trace = trace + 2 * (src * dst).sum((-2, -1))
        volume = volume + (src + dst).sum((-2, -1))
    return trace / (volume + eps)


def trace_connectivity_loss(
    probs: torch.Tensor, connectivity: int = 8, eps: float = 1e-8
) -> torch.Tensor:
    """``1 - mean over predicted regions of tr(L_s) / V_s``, averaged over the batch.

    See the module docstring for the definition and its justification.

    Args:
        probs: ``(B, K, H, W)`` class probabilities (softmax output, values in ``[0, 1]``, not
            checked), with ``H W >= 2``.
        connectivity: 4 or 8 grid neighbours (8 in seed 002).
        eps: added to ``V_s``; only matters for a region of (numerically) zero mass.

    Returns:
        Scalar loss in ``[0, 1]``, differentiable in ``probs``.

    Raises:
        ValueError: on a wrong shape or connectivity.

    Example:
        >>> blob = torch.zeros(1, 2, 4, 4)
        >>> blob[0, 0, :, :2] = blob[0, 1, :, 2:] = 1.0  # two halves
        >>> checker = torch.zeros(1, 2, 4, 4)
        >>> checker[0, 0] = (torch.arange(4)[:, None] + torch.arange(4)) % 2
        >>> checker[0, 1] = 1 - checker[0, 0]
        >>> bool(trace_connectivity_loss(blob, 4) < trace_connectivity_loss(checker, 4))
        True
    """
    if probs.dim() != 4 or probs.shape[-1] * probs.shape[-2] < 2:
        raise ValueError(
            "trace_connectivity_loss: probs must be (B, K, H, W) with at least 2 pixels, got "
            f"{tuple(probs.shape)}"
        )
    if connectivity not in (4, 8):
        raise ValueError(
            f"trace_connectivity_loss: connectivity must be 4 or 8, got {connectivity!r}"
        )
    scores = _region_scores(probs, connectivity, eps)  # (B, K)
    labels = probs.detach().argmax(1).flatten(1)  # (B, H W)
    predicted = torch.zeros(scores.shape, dtype=torch.bool, device=probs.device)
    predicted = predicted.scatter(1, labels, True)  # (B, K): classes that label some pixel
    per_image = 1 - (scores * predicted).sum(1) / predicted.sum(1)  # (B,)
    return per_image.mean()


class TraceConnectivityLoss(nn.Module):
    """Module form of :func:`trace_connectivity_loss`.

    Args:
        connectivity: 4 or 8 grid neighbours.
        eps: see :func:`trace_connectivity_loss`.

    Example:
        >>> TraceConnectivityLoss(8)(torch.ones(2, 1, 3, 3))
        tensor(0.)
    """

    def __init__(self, connectivity: int = 8, eps: float = 1e-8) -> None:
        super().__init__()
        if connectivity not in (4, 8):
            raise ValueError(
                f"TraceConnectivityLoss: connectivity must be 4 or 8, got {connectivity!r}"
            )
        self.connectivity, self.eps = connectivity, eps

    def forward(self, probs: torch.Tensor) -> torch.Tensor:
        """The loss of ``probs`` ``(B, K, H, W)``."""
        return trace_connectivity_loss(probs, self.connectivity, self.eps)

    def extra_repr(self) -> str:
        return f"connectivity={self.connectivity}, eps={self.eps}"
