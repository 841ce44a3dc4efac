"""The segmentation-head interface: a feature map in, full-size logits plus extra terms out.

Every head (the 1x1 convolution baseline, the spectral head) is a :class:`Head`: it sees only the
backbone's feature map ``(B, C, h, w)`` and the size ``(H, W)`` its logits must have, and returns
a :class:`HeadOutput`. The training loop never knows which head it holds beyond the output's two
dictionaries:

* ``losses``: *unweighted* scalar loss terms the head computes itself because they need its
  internals (the spectral head: ``"rayleigh"``, the Rayleigh-quotient consistency of its
  probabilities on its graph, and ``"bulk"``, the noise-bulk penalty on ``h(lambda)``). The loop
  weights them (``params.yaml`` ``spectral:`` ``alpha``, ``beta``) and refuses a term it has no
  weight for. The conv head reports none.
* ``internals``: detached tensors for snapshots and diagnostics, never used in a loss. Keys the
  snapshot understands (all optional; shapes for a batch of ``B`` images, ``k`` eigenpairs and a
  graph on an ``h' x w'`` grid with ``n = h' w'`` nodes numbered row-major):

  ==================  ===============  ====================================================
  key                 shape            meaning
  ==================  ===============  ====================================================
  ``eigenvalues``     ``(B, k)``       bottom eigenvalues, ascending
  ``eigenvectors``    ``(B, n, k)``    matching eigenvectors (shown as ``h' x w'`` images)
  ``graph_size``      ``(2,)`` int     ``(h', w')`` of the graph grid
  ``filter``          ``(B, k)``       the learned response ``h_theta(lambda)`` at them
  ``noise_edge``      ``()`` / ``(B,)``  the noise-floor edge ``lambda_+``
  ==================  ===============  ====================================================

A head may raise :class:`cheeger.linalg.EigshConvergenceError`; the loop reports it with the step
and epoch and stops (a non-converged eigensolve is never silently used).

Example:
    >>> import torch
    >>> class Mean(Head):
    ...     def forward(self, features, out_size):
    ...         logits = features.mean(1, keepdim=True).expand(-1, self.num_classes, *out_size)
    ...         return HeadOutput(logits)
    >>> out = Mean(4, 3)(torch.rand(2, 4, 5, 5), (5, 5))
    >>> tuple(out.logits.shape), out.losses, out.internals
    ((2, 3, 5, 5), {}, {})
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

__all__ = ["INTERNAL_KEYS", "Head", "HeadOutput", "check_head_output"]

INTERNAL_KEYS = ("eigenvalues", "eigenvectors", "filter", "graph_size", "noise_edge")


@dataclass
class HeadOutput:
    """What a head returns.

    Attributes:
        logits: ``(B, K, H, W)`` class scores at the requested output size.
        losses: name -> scalar tensor, unweighted extra loss terms (differentiable).
        internals: name -> detached tensor for snapshots (see the module docstring for keys).
    """

    logits: torch.Tensor
    losses: dict[str, torch.Tensor] = field(default_factory=dict)
    internals: dict[str, torch.Tensor] = field(default_factory=dict)


class Head(nn.Module, abc.ABC):
    """Base class of segmentation heads.

    Args:
        in_channels: channels ``C`` of the feature map the head receives.
        num_classes: number of classes ``K`` of its logits.

    Shape:
        - features: ``(B, C, h, w)``; ``h, w`` may be smaller than the output size.
        - output: :class:`HeadOutput` with ``logits (B, K, H, W)``, ``(H, W) = out_size``.
    """

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("num_classes", num_classes)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{type(self).__name__}: {name} must be a positive int, "
                                 f"got {value!r}")  # fmt: skip
        self.in_channels, self.num_classes = in_channels, num_classes

    @abc.abstractmethod
    def forward(self, features: torch.Tensor, out_size: Sequence[int]) -> HeadOutput:
        """Logits of size ``out_size = (H, W)`` from ``features (B, C, h, w)``."""

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, num_classes={self.num_classes}"


def check_head_output(
    output: HeadOutput, batch: int, num_classes: int, out_size: Sequence[int], head: str = "head"
) -> HeadOutput:
    """Check a head kept its contract; return ``output`` unchanged.

    Raises:
        TypeError: ``output`` is not a :class:`HeadOutput`.
        ValueError: wrong logits shape, or a loss term that is not a scalar tensor.
    """
    if not isinstance(output, HeadOutput):
        raise TypeError(f"{head}: forward must return a HeadOutput, got {type(output).__name__}")
    expected = (batch, num_classes, *(int(s) for s in out_size))
    if tuple(output.logits.shape) != expected:
        raise ValueError(
            f"{head}: logits must have shape (B, K, H, W) = {expected}, "
            f"got {tuple(output.logits.shape)}"
        )
    for name, term in output.losses.items():
        if not isinstance(term, torch.Tensor) or term.dim() != 0:
            shape = tuple(term.shape) if isinstance(term, torch.Tensor) else type(term).__name__
            raise ValueError(f"{head}: loss term {name!r} must be a scalar tensor, got {shape}")
    return output
