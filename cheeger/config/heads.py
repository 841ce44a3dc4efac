"""Each head's constructor options read from ``params.yaml``, by head name.

The spectral head's options are ``spectral.head`` with the profile's ``spectral.head`` keys on
top; the NeuralEF head's are the keys of ``spectral.head`` it shares, then ``neuralef.head``
(each with the profile's keys on top); the conv head takes none. The schema checks that each
``head`` is a mapping; the head's own config class (``from_mapping``) checks its keys.

Example:
    >>> params = {"profile": "p", "profiles": {"p": {"dataset": "synthetic",
    ...           "resolution": [8, 8]}}}
    >>> head_options(params, "conv")
    {}
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import asdict
from typing import Any

from cheeger.config.params import ParamsError, section_layers

__all__ = ["HEAD_OPTION_READERS", "head_options"]


def _head_keys(
    params: Mapping[str, Any], section: str, profile: str | None, origin: str,
    keep: Collection[str] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """``<section>.head`` with the profile's ``<section>.head`` on top (only ``keep`` keys)."""
    shared, override, _ = section_layers(params, section, profile, origin=origin)
    merged: dict[str, Any] = {}
    for layer in (shared.get("head") or {}, override.get("head") or {}):
        merged.update({k: v for k, v in layer.items() if keep is None or k in keep})
    return merged


def _from_mapping(config_class, merged: dict[str, Any], where: str, origin: str) -> dict:
    try:
        return asdict(config_class.from_mapping(merged, where))
    except (TypeError, ValueError) as err:
        raise ParamsError(f"{origin}: {err}".replace("params.yaml: ", "")) from err


def _no_head_options(params: Mapping[str, Any], profile: str | None, origin: str) -> dict:
    return {}


def _spectral_head_options(params: Mapping[str, Any], profile: str | None, origin: str) -> dict:
    """``spectral.head``, with the profile's ``spectral.head`` keys on top, validated."""
    from cheeger.heads.spectral import SpectralHeadConfig

    merged = _head_keys(params, "spectral", profile, origin)
    return _from_mapping(SpectralHeadConfig, merged, "spectral.head", origin)


def _neuralef_head_options(params: Mapping[str, Any], profile: str | None, origin: str) -> dict:
    """The keys of ``spectral.head`` the NeuralEF head shares (graph, filter, noise edge), then
    ``neuralef.head`` on top (each with the profile's keys on top), validated."""
    from cheeger.heads.neuralef import SHARED_KEYS, NeuralEFHeadConfig

    merged = {**_head_keys(params, "spectral", profile, origin, keep=SHARED_KEYS),
              **_head_keys(params, "neuralef", profile, origin)}  # fmt: skip
    return _from_mapping(NeuralEFHeadConfig, merged, "neuralef.head", origin)


# Head name -> reader of that head's constructor options from params (the spectral head's
# reader builds them from its keys under ``spectral:``); the conv head takes none.
HEAD_OPTION_READERS: dict[str, Callable[[Mapping[str, Any], str | None, str], dict]] = {
    "conv": _no_head_options,
    "spectral": _spectral_head_options,
    "neuralef": _neuralef_head_options,
}


def head_options(
    params: Mapping[str, Any], head: str, profile: str | None = None, *,
    origin: str = "params.yaml",
) -> dict[str, Any]:  # fmt: skip
    """Constructor options of head ``head`` read from params (``{}`` for ``conv``).

    Raises:
        ParamsError: no reader is registered in :data:`HEAD_OPTION_READERS` for ``head``.
    """
    if head not in HEAD_OPTION_READERS:
        raise ParamsError(f"{origin}: no settings reader for head {head!r}; "
                          f"known: {sorted(HEAD_OPTION_READERS)}")  # fmt: skip
    return dict(HEAD_OPTION_READERS[head](params, profile, origin))
