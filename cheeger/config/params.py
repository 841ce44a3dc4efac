"""Reading ``params.yaml``: the file, its profiles, and a section with a profile's overrides.

A shared section (``model:``, ``train:`` ...) may be overridden key by key in the active
profile's sub-mapping of the same name (``profiles.camvid.model.width: 16``).
:func:`section_layers` checks both against the schema (:mod:`cheeger.config.schema`) and hands
them, as plain mappings, to the typed builders.

Example:
    >>> params = {"profile": "toy", "profiles": {"toy": {"dataset": "synthetic",
    ...           "resolution": [8, 8], "model": {"width": 16}}}, "model": {"depth": 2}}
    >>> shared, override, block = section_layers(params, "model")
    >>> shared, override, block["name"]
    ({'depth': 2}, {'width': 16}, 'toy')
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, TypeVar

import yaml

__all__ = ["ParamsError", "active_profile", "build", "load_params", "section_layers"]

T = TypeVar("T")


class ParamsError(ValueError):
    """A malformed ``params.yaml``; the message names the file and key path."""


def load_params(path: str | os.PathLike) -> dict[str, Any]:
    """Read ``params.yaml``, check it against the schema and every profile's data settings.

    Raises:
        ParamsError: missing file, invalid YAML, a key the schema rejects, or data settings
            that contradict each other (the key path named).
    """
    from cheeger.config.data import DataConfig
    from cheeger.config.schema import check_params_schema, params_schema_path

    path = Path(path)
    try:
        params = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ParamsError(f"{path}: cannot read params file ({exc.strerror or exc})") from exc
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: invalid YAML ({exc})") from exc
    check_params_schema(params, origin=path.name, schema=params_schema_path(path))
    for name in params["profiles"]:
        DataConfig.from_params(params, name, origin=path.name)
    active_profile(params, origin=path.name)
    return dict(params)


def active_profile(
    params: Mapping[str, Any], name: str | None = None, *, origin: str = "params.yaml"
) -> dict[str, Any]:
    """The block of profile ``name`` (default: ``params["profile"]``), with ``name`` added.

    Raises:
        ParamsError: no such profile (the defined ones are listed), or none chosen.
    """
    if not isinstance(params, Mapping):
        raise ParamsError(f"{origin}: <top level>: expected a mapping, got {params!r}")
    profiles = params.get("profiles")
    if not isinstance(profiles, Mapping) or not profiles:
        raise ParamsError(f"{origin}: profiles: missing; expected a mapping of named profiles")
    if name is None:
        name = params.get("profile")
        if not isinstance(name, str) or not name:
            raise ParamsError(f"{origin}: profile: missing; expected the name of a profile "
                              "under profiles:")  # fmt: skip
    if name not in profiles:
        raise ParamsError(
            f"{origin}: profile: unknown profile {name!r}; defined: {sorted(profiles)}"
        )
    return {**(profiles[name] or {}), "name": name}


def section_layers(
    params: Mapping[str, Any], name: str, profile: str | None = None, *,
    origin: str = "params.yaml",
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:  # fmt: skip
    """Shared section ``name``, the profile's override of it, and the profile block.

    The section and the profile block are checked against the schema first.

    Raises:
        ParamsError: an unknown profile or a key the schema rejects (its path named).
    """
    from cheeger.config.schema import check_params_schema

    block = active_profile(params, profile, origin=origin)
    shared = params.get(name)
    shared = {} if shared is None else shared
    check_params_schema(shared, origin=origin, at=(name,))
    check_params_schema({k: v for k, v in block.items() if k != "name"}, origin=origin,
                        at=("profiles", block["name"]))  # fmt: skip
    return dict(shared), dict(block.get(name) or {}), block


def build(cls: type[T], *layers: Mapping[str, Any]) -> T:
    """``cls()`` with each layer's keys set in turn (keys the schema checked; ints made floats
    and lists tuples where the field says so)."""
    config = cls()
    kinds = {f.name: str(f.type) for f in fields(cls)}
    for layer in layers:
        values = {}
        for key, value in layer.items():
            kind = kinds.get(key, "")  # an unknown key: replace() names it
            if kind.startswith("float") and isinstance(value, int):
                value = float(value)
            elif kind.startswith("tuple") and isinstance(value, list):
                value = tuple(value)
            values[key] = value
        config = replace(config, **values)
    return config
