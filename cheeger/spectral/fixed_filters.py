r"""The fixed spectral responses the learned filter generalises (the study's ablations).

=============  ============================  ==============================================
name           ``h(lambda)``                 origin
=============  ============================  ==============================================
truncation     ``1[i < K]`` or ``1[l < c]``  spectral clustering: keep the first ``K`` pairs
diffusion      ``(1 - lambda)^t``            diffusion maps: the random walk run ``t`` steps
heat           ``exp(-t lambda)``            heat kernel / Laplacian eigenmaps
zero           ``0``                         a control: the graph term removed
=============  ============================  ==============================================

Each maps eigenvalues ``(..., k)`` to ``(..., k)``; a sequence of parameters (several diffusion
times) gives one channel each, ``(..., k, C)``, and a module's ``out_channels`` repeats a single
response over ``C`` channels (one per class in the head). The truncation cutoff may be a tensor,
one per spectrum, e.g. the noise edge: ``truncation`` with ``cutoff=edge`` is the hard version of
what the bulk penalty teaches the learned response.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = [
    "DiffusionFilter",
    "HeatFilter",
    "TruncationFilter",
    "ZeroFilter",
    "diffusion_filter",
    "heat_filter",
    "truncation_filter",
]


def check_eigenvalues(eigenvalues: torch.Tensor, caller: str) -> None:
    """Raise unless ``eigenvalues`` is a floating-point tensor ``(..., k)`` (shared with filter)."""
    if not isinstance(eigenvalues, torch.Tensor) or not eigenvalues.is_floating_point():
        raise ValueError(f"{caller}: eigenvalues must be a floating-point tensor (..., k)")
    if eigenvalues.dim() < 1:
        raise ValueError(f"{caller}: eigenvalues must have at least one dim (..., k), got 0-d")


def _repeat(response: torch.Tensor, out_channels: int | None) -> torch.Tensor:
    """``(..., k)`` -> ``(..., k, out_channels)`` by repetition (a view); as is for ``None``."""
    if out_channels is None:
        return response
    return response.unsqueeze(-1).expand(*response.shape, out_channels)


def check_out_channels(out_channels: int | None, caller: str) -> None:
    """Raise unless ``out_channels`` is ``None`` or a positive int (shared with filter)."""
    if out_channels is not None and (isinstance(out_channels, bool) or out_channels < 1):
        raise ValueError(f"{caller}: out_channels must be None or a positive int, "
                         f"got {out_channels!r}")  # fmt: skip


def truncation_filter(
    eigenvalues: torch.Tensor,
    num_kept: int | None = None,
    cutoff: float | torch.Tensor | None = None,
) -> torch.Tensor:
    """Indicator response: keep the first ``num_kept`` pairs, or the eigenvalues below ``cutoff``.

    Args:
        eigenvalues: ``(..., k)`` ascending.
        num_kept: ``K``: ``h_i = 1`` for the first ``K`` entries along the last dim, else 0.
        cutoff: ``c``: ``h = 1[lambda < c]``; a float, or a tensor ``(...)`` (one cutoff per
            spectrum, e.g. the noise edge ``(B,)``). Exactly one of ``num_kept`` and ``cutoff``.

    Returns:
        ``(..., k)`` zeros and ones of the eigenvalues' dtype (piecewise constant: zero gradient).

    Example:
        >>> truncation_filter(torch.tensor([0.0, 0.1, 0.5, 0.9]), num_kept=2).tolist()
        [1.0, 1.0, 0.0, 0.0]
        >>> lam = torch.tensor([[0.0, 0.1], [0.0, 0.3]])
        >>> truncation_filter(lam, cutoff=torch.tensor([0.2, 0.05])).tolist()
        [[1.0, 1.0], [1.0, 0.0]]
    """
    check_eigenvalues(eigenvalues, "truncation_filter")
    if (num_kept is None) == (cutoff is None):
        raise ValueError("truncation_filter: pass exactly one of num_kept and cutoff")
    if num_kept is not None:
        if isinstance(num_kept, bool) or not isinstance(num_kept, int) or num_kept < 0:
            raise ValueError(f"truncation_filter: num_kept must be an int >= 0, got {num_kept!r}")
        index = torch.arange(eigenvalues.shape[-1], device=eigenvalues.device)
        return (index < num_kept).to(eigenvalues.dtype).expand_as(eigenvalues)
    c = torch.as_tensor(cutoff, dtype=eigenvalues.dtype, device=eigenvalues.device)
    if c.dim() > 0:
        if c.shape != eigenvalues.shape[:-1]:
            raise ValueError(
                "truncation_filter: a tensor cutoff must have shape "
                f"{tuple(eigenvalues.shape[:-1])} (one per spectrum), got {tuple(c.shape)}"
            )
        c = c.unsqueeze(-1)
    return (eigenvalues < c).to(eigenvalues.dtype)


def diffusion_filter(eigenvalues: torch.Tensor, t: int | Sequence[int]) -> torch.Tensor:
    """Diffusion-map response ``(1 - lambda)^t``: the random walk ``D^-1 W`` run for ``t`` steps.

    Args:
        eigenvalues: ``(..., k)`` of ``L_sym`` (``1 - lambda`` are the walk's eigenvalues).
        t: a non-negative integer number of steps, or a sequence of them (one channel each).

    Returns:
        ``(..., k)`` for an int ``t``, ``(..., k, len(t))`` for a sequence; in ``[-1, 1]`` on the
        ``L_sym`` range ``[0, 2]`` (negative for odd ``t`` above ``lambda = 1``).

    Example:
        >>> diffusion_filter(torch.tensor([0.0, 0.5, 2.0]), 2).tolist()
        [1.0, 0.25, 1.0]
        >>> diffusion_filter(torch.tensor([0.5]), [1, 3]).tolist()
        [[0.5, 0.125]]
    """
    check_eigenvalues(eigenvalues, "diffusion_filter")
    steps = [t] if isinstance(t, int) else list(t) if isinstance(t, (list, tuple)) else []
    if not steps or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in steps):
        raise ValueError(f"diffusion_filter: t must be an int >= 0 or a non-empty sequence of "
                         f"them, got {t!r}")  # fmt: skip
    walk = 1.0 - eigenvalues
    if isinstance(t, int):
        return walk.pow(t)
    return torch.stack([walk.pow(s) for s in steps], dim=-1)  # (..., k, len(t))


def heat_filter(
    eigenvalues: torch.Tensor, t: float | Sequence[float] | torch.Tensor
) -> torch.Tensor:
    """Heat-kernel response ``exp(-t lambda)``.

    Args:
        eigenvalues: ``(..., k)``.
        t: diffusion time(s) ``> 0``: a float or 0-d tensor (output ``(..., k)``), or a sequence /
            1-d tensor of ``C`` times (output ``(..., k, C)``). A tensor ``t`` stays differentiable.

    Returns:
        ``(..., k)`` or ``(..., k, C)``, in ``(0, 1]`` for ``lambda >= 0``.

    Example:
        >>> heat_filter(torch.tensor([0.0, 1.0]), 2.0)
        tensor([1.0000, 0.1353])
    """
    check_eigenvalues(eigenvalues, "heat_filter")
    times = torch.as_tensor(t, dtype=eigenvalues.dtype, device=eigenvalues.device)
    if times.dim() > 1 or times.numel() == 0:
        raise ValueError(f"heat_filter: t must be a scalar or a 1-d sequence, got shape "
                         f"{tuple(times.shape)}")  # fmt: skip
    if not isinstance(t, torch.Tensor) and not bool((times > 0).all()):
        raise ValueError(f"heat_filter: diffusion times must be > 0, got {t!r}")
    if times.dim() == 0:
        return torch.exp(-times * eigenvalues)
    return torch.exp(-eigenvalues.unsqueeze(-1) * times)  # (..., k, C)


class TruncationFilter(nn.Module):
    """Module form of :func:`truncation_filter` (no parameters).

    Args:
        num_kept: keep the first ``K`` pairs ...
        cutoff: ... or the eigenvalues below a fixed ``cutoff`` (exactly one of the two; a
            per-spectrum cutoff tensor is passed to :meth:`forward` instead).
        out_channels: repeat the response over this many channels (``(..., k, C)``).

    Example:
        >>> TruncationFilter(num_kept=1, out_channels=2)(torch.tensor([0.0, 0.5])).tolist()
        [[1.0, 1.0], [0.0, 0.0]]
    """

    def __init__(
        self,
        num_kept: int | None = None,
        cutoff: float | None = None,
        out_channels: int | None = None,
    ) -> None:
        super().__init__()
        check_out_channels(out_channels, "TruncationFilter")
        truncation_filter(torch.zeros(1), num_kept, cutoff)  # validates now, not at the first call
        self.num_kept, self.cutoff, self.out_channels = num_kept, cutoff, out_channels

    def forward(
        self, eigenvalues: torch.Tensor, cutoff: float | torch.Tensor | None = None
    ) -> torch.Tensor:
        """Response ``(..., k)`` or ``(..., k, C)``; ``cutoff`` overrides the fixed one."""
        if cutoff is not None:
            h = truncation_filter(eigenvalues, cutoff=cutoff)
        else:
            h = truncation_filter(eigenvalues, self.num_kept, self.cutoff)
        return _repeat(h, self.out_channels)

    def extra_repr(self) -> str:
        rule = f"num_kept={self.num_kept}" if self.num_kept is not None else f"cutoff={self.cutoff}"
        return f"{rule}, out_channels={self.out_channels}"


class DiffusionFilter(nn.Module):
    """Module form of :func:`diffusion_filter` (no parameters).

    Args:
        t: steps (int), or a sequence of steps (one output channel each).
        out_channels: with an int ``t``, repeat the response over this many channels; with a
            sequence it must be ``None`` or ``len(t)``.

    Example:
        >>> DiffusionFilter([1, 2])(torch.tensor([0.5])).tolist()
        [[0.5, 0.25]]
    """

    def __init__(self, t: int | Sequence[int] = 1, out_channels: int | None = None) -> None:
        super().__init__()
        check_out_channels(out_channels, "DiffusionFilter")
        diffusion_filter(torch.zeros(1), t)  # validates t
        self.t = t if isinstance(t, int) else tuple(t)
        self.out_channels = _channels_for(self.t, out_channels, "DiffusionFilter")

    def forward(self, eigenvalues: torch.Tensor) -> torch.Tensor:
        """Response ``(..., k)`` or ``(..., k, C)``."""
        h = diffusion_filter(eigenvalues, self.t)
        return _repeat(h, self.out_channels) if isinstance(self.t, int) else h

    def extra_repr(self) -> str:
        return f"t={self.t}, out_channels={self.out_channels}"


class HeatFilter(nn.Module):
    """Module form of :func:`heat_filter`, with optionally learnable times.

    Args:
        t: diffusion time(s) ``> 0``: a float or a sequence (one output channel each).
        out_channels: with a float ``t``, repeat over this many channels; with a sequence it must
            be ``None`` or ``len(t)``.
        learnable: make ``log t`` a parameter (``t = exp(log_t)`` stays positive).

    Example:
        >>> HeatFilter(2.0)(torch.tensor([0.0, 1.0]))
        tensor([1.0000, 0.1353])
    """

    def __init__(
        self,
        t: float | Sequence[float] = 1.0,
        out_channels: int | None = None,
        learnable: bool = False,
    ) -> None:
        super().__init__()
        check_out_channels(out_channels, "HeatFilter")
        scalar = isinstance(t, (int, float))
        heat_filter(torch.zeros(1), float(t) if scalar else list(t))  # validates t
        log_t = torch.tensor(t if scalar else list(t), dtype=torch.get_default_dtype()).log()
        if learnable:
            self.log_t = nn.Parameter(log_t)
        else:
            self.register_buffer("log_t", log_t)
        self.scalar, self.learnable = scalar, learnable
        self.out_channels = _channels_for(None if scalar else tuple(t), out_channels, "HeatFilter")

    @property
    def t(self) -> torch.Tensor:
        """Diffusion time(s), ``exp(log_t)``."""
        return self.log_t.exp()

    def forward(self, eigenvalues: torch.Tensor) -> torch.Tensor:
        """Response ``(..., k)`` or ``(..., k, C)``."""
        h = heat_filter(eigenvalues, self.t.to(eigenvalues.dtype))
        return _repeat(h, self.out_channels) if self.scalar else h

    def extra_repr(self) -> str:
        return f"t={self.t.tolist()}, learnable={self.learnable}, out_channels={self.out_channels}"


class ZeroFilter(nn.Module):
    """``h = 0``: the study's control with the spectral head's graph term removed.

    With it the spectral head's logits are its 1x1 classifier's alone (the conv head plus the
    graph's unused parameters), so the head needs no eigenpairs and skips its eigensolve.

    Args:
        out_channels: repeat the response over this many channels (``(..., k, C)``).

    Example:
        >>> ZeroFilter(out_channels=2)(torch.tensor([0.0, 0.5])).shape
        torch.Size([2, 2])
    """

    def __init__(self, out_channels: int | None = None) -> None:
        super().__init__()
        check_out_channels(out_channels, "ZeroFilter")
        self.out_channels = out_channels

    def forward(self, eigenvalues: torch.Tensor) -> torch.Tensor:
        """Zeros ``(..., k)`` or ``(..., k, C)``, not connected to ``eigenvalues``' graph."""
        check_eigenvalues(eigenvalues, "ZeroFilter")
        return _repeat(torch.zeros_like(eigenvalues.detach()), self.out_channels)

    def extra_repr(self) -> str:
        return f"out_channels={self.out_channels}"


def _channels_for(
    params: Sequence[object] | int | None, out_channels: int | None, caller: str
) -> int | None:
    """Channels of a fixed filter: repetition for a scalar parameter, ``len`` for a sequence."""
    if params is None or isinstance(params, int):
        return out_channels
    if out_channels not in (None, len(params)):
        raise ValueError(f"{caller}: out_channels={out_channels} contradicts {len(params)} "
                         f"parameter values {tuple(params)}")  # fmt: skip
    return None
