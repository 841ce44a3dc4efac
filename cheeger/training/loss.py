r"""The training objective: cross-entropy plus the weighted extra terms a head reports.

.. math::

    \mathcal{L} = \mathrm{CE} + \alpha(t)\, \mathcal{R} + \beta\, \mathrm{bulk}
                + \gamma\, \mathcal{C},

with the cross-entropy averaged over the pixels whose label is not ``ignore_index`` (0 when a
batch has none, instead of 0/0), ``rayleigh`` and ``bulk`` taken from the head's
:attr:`~cheeger.heads.HeadOutput.losses` when it reports them (the spectral head does, the conv
head does not: absent terms are simply absent), and the trace connectivity loss ``C`` of seed 002
computed here from the softmax probabilities when its weight ``gamma`` is positive. A head that
reports a term with no configured weight is an error rather than a silently ignored term.

Every term is returned unweighted for logging; :func:`check_finite` stops training at the first
NaN or Inf with the step, epoch and term named.

Example:
    >>> import torch
    >>> from cheeger.heads import HeadOutput
    >>> logits = torch.zeros(1, 2, 2, 2, requires_grad=True)
    >>> out = HeadOutput(logits, losses={"rayleigh": logits.sum() * 0 + 0.5})
    >>> target = torch.tensor([[[0, 1], [255, 1]]])
    >>> total, terms = segmentation_loss(out, target, {"rayleigh": 2.0}, ignore_index=255)
    >>> round(float(total), 4), sorted(terms)
    (1.6931, ['ce', 'rayleigh'])
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from cheeger.config import LossWeightsConfig
from cheeger.heads import HeadOutput
from cheeger.training.errors import NonFiniteLossError
from cheeger.training.schedule import loss_weights

__all__ = ["SegmentationLoss", "check_finite", "masked_cross_entropy", "segmentation_loss"]


def masked_cross_entropy(
    logits: torch.Tensor, target: torch.Tensor, ignore_index: int | None
) -> torch.Tensor:
    """Mean cross-entropy over non-ignored pixels; 0 (with a gradient path) if there are none.

    Args:
        logits: ``(B, K, H, W)``.
        target: ``(B, H, W)`` integer labels.
        ignore_index: label value excluded from the mean, or ``None``.
    """
    if target.shape != logits.shape[:1] + logits.shape[2:]:
        raise ValueError(f"cross-entropy: logits {tuple(logits.shape)} and target "
                         f"{tuple(target.shape)} disagree in (B, H, W)")  # fmt: skip
    index = -100 if ignore_index is None else ignore_index
    total = F.cross_entropy(logits, target, ignore_index=index, reduction="sum")
    count = target.numel() if ignore_index is None else (target != ignore_index).sum()
    return total / torch.clamp(torch.as_tensor(count, device=logits.device), min=1)


def segmentation_loss(
    output: HeadOutput,
    target: torch.Tensor,
    weights: Mapping[str, float],
    *,
    ignore_index: int | None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Total loss and its unweighted terms.

    Args:
        output: the model's output (logits ``(B, K, H, W)`` plus the head's extra terms).
        target: ``(B, H, W)`` labels at the logits' resolution.
        weights: term name -> weight for every extra term (``"connectivity"`` is computed here
            when its weight is positive).
        ignore_index: void label value, or ``None``.

    Returns:
        ``(total, terms)``: the scalar objective and a dict ``{"ce": ..., <term>: ...}``.

    Raises:
        ValueError: the head reported a term that has no weight in ``weights``.
    """
    unknown = sorted(set(output.losses) - set(weights))
    if unknown:
        raise ValueError(f"the head reported loss term(s) {unknown} with no configured weight; "
                         f"weighted terms: {sorted(weights)}")  # fmt: skip
    terms = {"ce": masked_cross_entropy(output.logits, target, ignore_index)}
    terms.update(output.losses)
    if weights.get("connectivity", 0) > 0:
        from cheeger.losses import trace_connectivity_loss  # the ablation only needs it here

        terms["connectivity"] = trace_connectivity_loss(output.logits.softmax(dim=1))
    total = terms["ce"]
    for name, term in terms.items():
        if name != "ce":
            total = total + weights[name] * term
    return total, terms


def check_finite(terms: Mapping[str, torch.Tensor], step: int, epoch: int) -> None:
    """Raise :class:`~cheeger.training.errors.NonFiniteLossError` naming the first bad term.

    One device synchronisation for all terms; the culprit is looked up only on failure.
    """
    values = torch.stack([t.detach().float().reshape(()) for t in terms.values()])
    if bool(torch.isfinite(values).all()):
        return
    for name, value in zip(terms, values.tolist(), strict=True):
        if not torch.isfinite(torch.tensor(value)):
            raise NonFiniteLossError(step, epoch, name, value)


class SegmentationLoss(nn.Module):
    """Module form of :func:`segmentation_loss` holding the weights and their schedule.

    Args:
        config: loss weights and the Rayleigh warm-up (``spectral:`` in params).
        ignore_index: void label value, or ``None``.

    Example:
        >>> import torch
        >>> from cheeger.heads import HeadOutput
        >>> loss = SegmentationLoss(LossWeightsConfig(), ignore_index=None)
        >>> total, terms = loss(HeadOutput(torch.zeros(1, 4, 2, 2)), torch.zeros(1, 2, 2).long(),
        ...                     t=0.0)
        >>> round(float(total), 4)
        1.3863
    """

    def __init__(self, config: LossWeightsConfig, ignore_index: int | None) -> None:
        super().__init__()
        self.config, self.ignore_index = config, ignore_index

    def weights(self, t: float) -> dict[str, float]:
        """The extra terms' weights at time ``t`` (epochs)."""
        return loss_weights(self.config, t)

    def forward(
        self, output: HeadOutput, target: torch.Tensor, t: float
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return segmentation_loss(output, target, self.weights(t), ignore_index=self.ignore_index)

    def extra_repr(self) -> str:
        return f"{self.config}, ignore_index={self.ignore_index}"
