r"""The learned spectral filter ``h_theta(lambda)``, and the factory of all filters by name.

Every spectral-embedding recipe weighs the bottom eigenvectors of ``L_sym`` by a function of
their eigenvalues, ``Phi = U diag(h(lambda))``; the fixed choices (truncation, diffusion maps,
heat kernel: :mod:`cheeger.spectral.fixed_filters`) are special cases of a learned ``h_theta``,
here a small MLP on a fixed expansion of the eigenvalue. :func:`build_filter` selects any of them
by name (``"learned"``, ``"truncation"``, ``"diffusion"``, ``"heat"``) behind one interface:
eigenvalues ``(..., k)`` to ``(..., k)``, or ``(..., k, C)`` with ``C`` output channels.

Bottom eigenvalues of image graphs span decades (``1e-5`` for a coarse cut of a large grid, ``~1``
for a dense noise graph) and a polynomial in ``lambda`` cannot tell ``1e-4`` from ``1e-3``, so the
expansion is a Chebyshev basis in *log* eigenvalue,

.. math::

    u(\lambda) = 2\,\frac{\log(\lambda + \epsilon) - \log\epsilon}{\log(2 + \epsilon)
    - \log\epsilon} - 1 \in [-1, 1], \qquad \phi_j(\lambda) = T_j(u(\lambda)),\; j = 0..D,

with uniform resolution in ``log lambda`` from the floor ``epsilon`` (default ``1e-4``) up to 2,
the top of the ``L_sym`` spectrum. Eigenvalues are clamped to ``[0, 2]`` first (round-off can put
the trivial one at ``-1e-16``). The output is bounded: ``"sigmoid"`` (default) gives
``h in (0, 1)``, the range of the truncation and heat responses it generalises, and starts at
``h = 1/2`` (zero-initialised last layer); ``"softplus"`` gives an unbounded positive response.
``|dh/dlambda| <= Lip(MLP) * 2 D^2 / ((lambda + eps) log((2 + eps) / eps))``: the resolution at
small eigenvalues is also the sensitivity the eigensolver's backward sees, and ``epsilon`` caps it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
from torch import nn

from cheeger.spectral.fixed_filters import (
    DiffusionFilter,
    HeatFilter,
    TruncationFilter,
    ZeroFilter,
    check_eigenvalues,
    check_out_channels,
)

__all__ = [
    "FILTERS",
    "LearnedFilter",
    "build_filter",
    "learned_filter",
    "log_chebyshev_features",
]

_OUTPUTS = ("sigmoid", "softplus")


def log_chebyshev_features(
    eigenvalues: torch.Tensor, degree: int = 8, floor: float = 1e-4
) -> torch.Tensor:
    """Chebyshev polynomials ``T_0..T_D`` of the log-scaled eigenvalue ``u(lambda)`` (see module).

    Args:
        eigenvalues: ``(..., k)``, clamped to ``[0, 2]``.
        degree: ``D >= 0``.
        floor: ``epsilon > 0``, the resolution floor of the log scale.

    Returns:
        ``(..., k, D + 1)``, each entry in ``[-1, 1]``; ``u(0) = -1`` and ``u(2) = 1``.

    Example:
        >>> log_chebyshev_features(torch.tensor([0.0, 2.0]), degree=2).tolist()
        [[1.0, -1.0, 1.0], [1.0, 1.0, 1.0]]
    """
    if degree < 0 or not floor > 0:
        raise ValueError(f"log_chebyshev_features: need degree >= 0 and floor > 0, got {degree}, "
                         f"{floor}")  # fmt: skip
    lam = eigenvalues.clamp(0.0, 2.0)
    log_floor = math.log(floor)
    u = 2.0 * (torch.log(lam + floor) - log_floor) / (math.log(2.0 + floor) - log_floor) - 1.0
    u = u.clamp(-1.0, 1.0)  # exact endpoints despite rounding in the logs
    terms = [torch.ones_like(u), u]
    for _ in range(2, degree + 1):
        terms.append(2.0 * u * terms[-1] - terms[-2])  # T_{j+1} = 2 u T_j - T_{j-1}
    return torch.stack(terms[: degree + 1], dim=-1)  # (..., k, D + 1)


def learned_filter(
    eigenvalues: torch.Tensor,
    layers: Sequence[tuple[torch.Tensor, torch.Tensor]],
    *,
    degree: int = 8,
    floor: float = 1e-4,
    output: str = "sigmoid",
    squeeze: bool = False,
) -> torch.Tensor:
    """The learned response ``h_theta(lambda) = out(MLP(phi(lambda)))`` with explicit weights.

    Args:
        eigenvalues: ``(..., k)``.
        layers: ``[(weight (h_1, D + 1), bias (h_1,)), ..., (weight (C, h_m), bias (C,))]``;
            SiLU between layers.
        degree, floor: the :func:`log_chebyshev_features` expansion.
        output: ``"sigmoid"`` (``h in (0, 1)``) or ``"softplus"`` (``h > 0``).
        squeeze: drop the channel dim (requires ``C = 1``).

    Returns:
        ``(..., k, C)``, or ``(..., k)`` with ``squeeze``.

    Example:
        >>> layers = [(torch.zeros(4, 3), torch.zeros(4)), (torch.zeros(2, 4), torch.zeros(2))]
        >>> learned_filter(torch.rand(5, 7), layers, degree=2).shape
        torch.Size([5, 7, 2])
    """
    check_eigenvalues(eigenvalues, "learned_filter")
    if output not in _OUTPUTS:
        raise ValueError(f"learned_filter: output must be one of {_OUTPUTS}, got {output!r}")
    if not layers:
        raise ValueError("learned_filter: need at least one (weight, bias) layer")
    x = log_chebyshev_features(eigenvalues, degree, floor)  # (..., k, D + 1)
    if layers[0][0].shape[-1] != degree + 1:
        raise ValueError(f"learned_filter: first weight must have {degree + 1} input columns "
                         f"(degree + 1), got shape {tuple(layers[0][0].shape)}")  # fmt: skip
    for i, (weight, bias) in enumerate(layers):
        x = torch.nn.functional.linear(x, weight, bias)
        if i < len(layers) - 1:
            x = torch.nn.functional.silu(x)
    h = torch.sigmoid(x) if output == "sigmoid" else torch.nn.functional.softplus(x)
    if squeeze:
        if h.shape[-1] != 1:
            raise ValueError(f"learned_filter: squeeze needs one output channel, got {h.shape[-1]}")
        h = h.squeeze(-1)
    return h


class LearnedFilter(nn.Module):
    """The learned spectral response ``h_theta(lambda)``, module form of :func:`learned_filter`.

    An MLP ``D + 1 -> hidden -> ... -> C`` (SiLU) on :func:`log_chebyshev_features`; the last
    layer is zero-initialised, so every channel starts flat at ``h = 1/2`` (``"sigmoid"``) or
    ``log 2`` (``"softplus"``) and the first gradients shape it from there.

    Args:
        degree: Chebyshev degree ``D`` of the log-eigenvalue expansion.
        hidden: width of the hidden layers.
        depth: number of hidden layers (``>= 1``).
        out_channels: ``None``: output ``(..., k)``; an int ``C``: ``(..., k, C)``.
        floor: resolution floor ``epsilon`` of the log scale.
        output: ``"sigmoid"`` or ``"softplus"``.

    Example:
        >>> h = LearnedFilter(out_channels=3)
        >>> out = h(torch.rand(2, 16))
        >>> out.shape, bool(torch.allclose(out, torch.full_like(out, 0.5)))
        (torch.Size([2, 16, 3]), True)
    """

    def __init__(
        self,
        degree: int = 8,
        hidden: int = 32,
        depth: int = 1,
        out_channels: int | None = None,
        floor: float = 1e-4,
        output: str = "sigmoid",
    ) -> None:
        super().__init__()
        check_out_channels(out_channels, "LearnedFilter")
        if degree < 0 or hidden < 1 or depth < 1 or not floor > 0 or output not in _OUTPUTS:
            raise ValueError(
                f"LearnedFilter: need degree >= 0, hidden >= 1, depth >= 1, floor > 0 and output "
                f"in {_OUTPUTS}; got degree={degree}, hidden={hidden}, depth={depth}, "
                f"floor={floor}, output={output!r}"
            )
        widths = [degree + 1] + [hidden] * depth + [out_channels or 1]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(widths))
        nn.init.zeros_(self.layers[-1].weight)
        nn.init.zeros_(self.layers[-1].bias)
        self.degree, self.floor, self.output = degree, floor, output
        self.out_channels = out_channels

    def forward(self, eigenvalues: torch.Tensor) -> torch.Tensor:
        """Response ``(..., k)`` or ``(..., k, C)``."""
        return learned_filter(
            eigenvalues,
            [(layer.weight, layer.bias) for layer in self.layers],
            degree=self.degree,
            floor=self.floor,
            output=self.output,
            squeeze=self.out_channels is None,
        )

    def extra_repr(self) -> str:
        return (f"degree={self.degree}, floor={self.floor}, output={self.output!r}, "
                f"out_channels={self.out_channels}")  # fmt: skip


FILTERS: dict[str, type[nn.Module]] = {
    "diffusion": DiffusionFilter,
    "heat": HeatFilter,
    "learned": LearnedFilter,
    "truncation": TruncationFilter,
    "zero": ZeroFilter,
}


def build_filter(name: str, **options: object) -> nn.Module:
    """A spectral filter module by name (a key of :data:`FILTERS`), e.g. ``learned`` or ``heat``.

    Args:
        name: a key of :data:`FILTERS`.
        **options: the module's arguments (e.g. ``out_channels``, ``t``, ``num_kept``).

    Returns:
        The filter module, ``(..., k) -> (..., k)`` or ``(..., k, C)``.

    Raises:
        ValueError: on an unknown name or options the filter does not take.

    Example:
        >>> build_filter("heat", t=[1.0, 10.0])(torch.zeros(3)).shape
        torch.Size([3, 2])
    """
    if name not in FILTERS:
        raise ValueError(f"build_filter: unknown filter {name!r}; known: {sorted(FILTERS)}")
    try:
        return FILTERS[name](**options)
    except TypeError as error:  # an option the filter does not take
        raise ValueError(f"build_filter: bad options for filter {name!r}: {error}") from error
