"""Segmentation heads behind one interface, chosen by name.

``build_head(name, in_channels, num_classes, **options)`` looks the name up in a registry: the
conv baseline is ``"conv"``; the spectral head registers itself as ``"spectral"`` (add it with
``register_head("spectral", SpectralHead)`` here). ``options`` are the head's own keyword
arguments (none for ``"conv"``).

Example:
    >>> head = build_head("conv", 16, 5)
    >>> type(head).__name__, head_names()[0]
    ('ConvHead', 'conv')
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cheeger.heads.base import INTERNAL_KEYS, Head, HeadOutput, check_head_output
from cheeger.heads.conv import ConvHead, block_mean, conv_head, resize_logits
from cheeger.heads.neuralef import NeuralEFHead, NeuralEFHeadConfig
from cheeger.heads.spectral import SpectralHead, SpectralHeadConfig, spectral_filtering

__all__ = [
    "INTERNAL_KEYS",
    "ConvHead",
    "Head",
    "HeadOutput",
    "NeuralEFHead",
    "NeuralEFHeadConfig",
    "SpectralHead",
    "SpectralHeadConfig",
    "block_mean",
    "build_head",
    "check_head_output",
    "conv_head",
    "head_names",
    "register_head",
    "resize_logits",
    "spectral_filtering",
]

HeadFactory = Callable[..., Head]

_REGISTRY: dict[str, HeadFactory] = {
    "conv": ConvHead,
    "spectral": SpectralHead,
    "neuralef": NeuralEFHead,
}


def register_head(name: str, factory: HeadFactory) -> None:
    """Make ``build_head(name, ...)`` call ``factory(in_channels, num_classes, **options)``.

    Raises:
        ValueError: ``name`` is already registered to another factory.
    """
    if _REGISTRY.get(name, factory) is not factory:
        raise ValueError(f"head {name!r} is already registered to {_REGISTRY[name]!r}")
    _REGISTRY[name] = factory


def head_names() -> tuple[str, ...]:
    """Registered head names, ``"conv"`` first."""
    return tuple(_REGISTRY)


def build_head(name: str, in_channels: int, num_classes: int, **options: Any) -> Head:
    """Instantiate the head registered as ``name``.

    Raises:
        ValueError: unknown ``name`` (the registered ones are listed) or a factory returning
            something that is not a :class:`Head`.
        TypeError: ``options`` the head does not accept (from its constructor).
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown head {name!r}; registered heads: {list(_REGISTRY)}")
    head = _REGISTRY[name](in_channels, num_classes, **options)
    if not isinstance(head, Head):
        raise ValueError(f"head {name!r}: factory returned {type(head).__name__}, not a Head")
    return head
