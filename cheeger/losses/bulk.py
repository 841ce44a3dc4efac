r"""Bulk penalty: push the learned spectral response to zero inside the noise region.

.. math::

    \mathrm{bulk}(h, \lambda) = \frac{\sum_i s_i\, \overline{h_i^2}}{\max(1, \sum_i s_i)},
    \qquad s_i = \operatorname{sigmoid}\Big(\frac{\lambda_i - e}{w}\Big),

per graph, averaged over the batch: ``e`` is the noise edge (:func:`cheeger.spectral.noise_floor`,
the region ``lambda >= e`` is noise), ``s_i`` a smooth indicator of "eigenvalue ``i`` lies in the
noise region", and ``overline{h_i^2}`` the squared response at eigenvalue ``i`` averaged over the
filter's output channels. When at least one eigenvalue is in the region this is the mean of
``h^2`` over the region; when none is, the denominator stays 1 and the penalty fades with the
tiny weights instead of renormalising them into a spurious mean over informative eigenvalues.

The indicator is smooth so the penalty is differentiable in ``theta`` and does not jump when an
eigenvalue crosses the edge between steps; its width is relative by default,
``w = width * min(e, |1 - e|)``: a fraction of the smaller of the edge's distance to 0 (the scale
of the informative eigenvalues below it: ``~1e-3`` on image grids) and its distance to 1 (the
half-width of a dense noise bulk, which piles up around 1: ``e ~ 0.98`` for a dense kernel). With
``width = 0.05`` an eigenvalue ``3 w`` below the edge is weighted ``0.047``, ``3 w`` above
``0.953``. ``relative=False`` makes ``width`` absolute.

The eigenvalues and the edge are constants here (detached), but ``response`` is taken as given:
if it was computed from eigenvalues that carry a gradient (``h(lambda)``), the penalty moves the
graph through it. To shape the response and not the graph, pass ``h(lambda.detach())``, as the
spectral head does (:mod:`cheeger.heads.spectral`, "Gradient paths"; tested there): otherwise the
penalty could lower itself by moving eigenvalues out of the noise region instead of silencing
the response on it.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["BulkPenalty", "bulk_penalty", "noise_weights"]

_REDUCTIONS = ("mean", "sum", "none")


def noise_weights(
    eigenvalues: torch.Tensor,
    edge: torch.Tensor | float,
    width: float = 0.05,
    relative: bool = True,
) -> torch.Tensor:
    """Smooth indicator ``s = sigmoid((lambda - e) / w)`` of the noise region (detached).

    Args:
        eigenvalues: ``(..., k)``.
        edge: noise edge, a float or a tensor ``(...)`` (one per spectrum, e.g. ``(B,)``).
        width: ``w`` relative to ``min(e, |1 - e|)`` (``relative``) or absolute.
        relative: see ``width``.

    Returns:
        ``(..., k)`` weights in ``(0, 1)``, ``1/2`` at the edge.

    Example:
        >>> noise_weights(torch.tensor([[0.0, 0.45, 0.5, 1.0]]), torch.tensor([0.5]))
        tensor([[2.0612e-09, 1.1920e-01, 5.0000e-01, 1.0000e+00]])
    """
    if not width > 0:
        raise ValueError(f"noise_weights: width must be > 0, got {width}")
    lam = eigenvalues.detach()
    e = torch.as_tensor(edge, dtype=lam.dtype, device=lam.device).detach()
    if e.dim() > 0:
        if e.shape != lam.shape[:-1]:
            raise ValueError(f"noise_weights: edge must be a float or have shape "
                             f"{tuple(lam.shape[:-1])}, got {tuple(e.shape)}")  # fmt: skip
        e = e.unsqueeze(-1)
    scale = torch.minimum(e, (1.0 - e).abs()) if relative else torch.ones_like(e)
    # floor: an edge at exactly 0 or 1 would give w = 0 and 0/0 at lambda = e
    w = (width * scale).clamp_min(torch.finfo(lam.dtype).eps)
    return torch.sigmoid((lam - e) / w)


def bulk_penalty(
    response: torch.Tensor,
    eigenvalues: torch.Tensor,
    edge: torch.Tensor | float,
    *,
    width: float = 0.05,
    relative: bool = True,
    reduction: str = "mean",
) -> torch.Tensor:
    """Mean squared spectral response over the noise region (see the module docstring).

    Args:
        response: ``h(lambda)``, ``(B, k)`` or ``(B, k, C)`` (``C`` output channels).
        eigenvalues: ``(B, k)``, the eigenvalues ``response`` was evaluated at (detached here).
        edge: the noise edge, a float or ``(B,)`` (detached here).
        width, relative: the indicator's width, see :func:`noise_weights`.
        reduction: ``"mean"`` or ``"sum"`` over the batch, or ``"none"`` for ``(B,)``.

    Returns:
        Scalar (or ``(B,)``), differentiable in ``response`` only (and through it in whatever
        ``response`` was computed from).

    Raises:
        ValueError: on shapes that do not match or an unknown reduction.

    Example:
        >>> lam = torch.tensor([[0.0, 0.01, 0.9, 1.0]])
        >>> h = torch.tensor([[1.0, 1.0, 0.5, 0.5]], requires_grad=True)
        >>> round(bulk_penalty(h, lam, torch.tensor([0.5])).item(), 4)  # mean of 0.5^2
        0.25
    """
    if reduction not in _REDUCTIONS:
        raise ValueError(f"bulk_penalty: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if eigenvalues.dim() < 1 or response.shape[: eigenvalues.dim()] != eigenvalues.shape:
        raise ValueError(f"bulk_penalty: response {tuple(response.shape)} must be eigenvalues' "
                         f"shape {tuple(eigenvalues.shape)}, optionally with a trailing channel "
                         "dim")  # fmt: skip
    if response.dim() > eigenvalues.dim() + 1:
        raise ValueError(
            "bulk_penalty: response may have at most one channel dim, got shape "
            f"{tuple(response.shape)} for eigenvalues {tuple(eigenvalues.shape)}"
        )
    weights = noise_weights(eigenvalues, edge, width, relative).to(response.dtype)  # (B, k)
    energy = response.square()
    if response.dim() == eigenvalues.dim() + 1:
        energy = energy.mean(-1)  # (B, k): mean over channels
    per_graph = (weights * energy).sum(-1) / weights.sum(-1).clamp_min(1.0)  # (B,)
    if reduction == "none":
        return per_graph
    return per_graph.mean() if reduction == "mean" else per_graph.sum()


class BulkPenalty(nn.Module):
    """Module form of :func:`bulk_penalty` (no parameters).

    Example:
        >>> penalty = BulkPenalty(width=0.1)
        >>> float(penalty(torch.zeros(2, 5, 3), torch.rand(2, 5), torch.tensor([0.3, 0.6])))
        0.0
    """

    def __init__(self, width: float = 0.05, relative: bool = True, reduction: str = "mean") -> None:
        super().__init__()
        if not width > 0 or reduction not in _REDUCTIONS:
            raise ValueError(f"BulkPenalty: need width > 0 and reduction in {_REDUCTIONS}, got "
                             f"{width}, {reduction!r}")  # fmt: skip
        self.width, self.relative, self.reduction = width, relative, reduction

    def forward(
        self, response: torch.Tensor, eigenvalues: torch.Tensor, edge: torch.Tensor | float
    ) -> torch.Tensor:
        """The penalty of ``response`` ``(B, k[, C])`` at ``eigenvalues`` ``(B, k)``."""
        return bulk_penalty(
            response, eigenvalues, edge, width=self.width, relative=self.relative,
            reduction=self.reduction,
        )  # fmt: skip

    def extra_repr(self) -> str:
        return f"width={self.width}, relative={self.relative}, reduction={self.reduction!r}"
