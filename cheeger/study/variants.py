"""Params variants: a copy of ``params.yaml`` with a few keys changed, for one ablation run.

An ablation run is an ordinary ``cheeger train`` run whose ``--params`` file differs from the
study's in the ablated key only, so the training code never learns about ablations and the run's
recorded settings say exactly what it was trained with. A key is set in its shared section and,
where the profile overrides it (``profiles.<name>.spectral.alpha``), in that override too, so the
new value is the one in force. Relative paths (a profile's ``root``, ``data.camvid.cache_dir``)
are rewritten for the variant's folder, since the CLI resolves them against the params file.
The variant is checked with :func:`cheeger.config.load_params` before it is written, atomically.

Example:
    >>> params = {"profile": "toy", "profiles": {"toy": {"spectral": {"alpha": 0.1}}},
    ...           "spectral": {"alpha": 0.1, "beta": 0.01}}
    >>> variant = params_variant(params, {"spectral.alpha": 0.3}, "toy")
    >>> variant["spectral"], variant["profiles"]["toy"]["spectral"]
    ({'alpha': 0.3, 'beta': 0.01}, {'alpha': 0.3})
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from cheeger.config import ParamsError, active_profile, load_params
from cheeger.data.io import atomic_write_bytes

__all__ = ["params_variant", "parse_setting", "write_variant"]


def parse_setting(text: str) -> tuple[str, Any]:
    """``"spectral.alpha=0.3"`` -> ``("spectral.alpha", 0.3)``; the value is JSON, or else a
    plain string (``spectral.head.filter=heat``).

    Raises:
        ParamsError: no ``=`` or an empty key.
    """
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ParamsError(f"--set {text!r}: expected KEY=VALUE, e.g. spectral.alpha=0.3")
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        parsed = value
    return key.strip(), parsed


def _set(tree: dict[str, Any], key: str, value: Any, *, create: bool) -> bool:
    """Set dotted ``key`` in ``tree``; with ``create=False`` only if it is already there."""
    *parents, last = key.split(".")
    node = tree
    for part in parents:
        child = node.get(part)
        if not isinstance(child, Mapping):
            if not create:
                return False
            if child is not None:
                raise ParamsError(f"cannot set {key}: {part} is {child!r}, not a mapping")
            child = node[part] = {}
        node = child
    if not create and last not in node:
        return False
    node[last] = copy.deepcopy(value)
    return True


#: Profile-block shorthands of train keys (cheeger.config): a variant sets them too, or a
#: profile's `epochs: 10` would silently win over `--set train.epochs=20`.
_SHORTHANDS = {"train.epochs": "epochs", "train.device": "device"}


def params_variant(
    params: Mapping[str, Any], settings: Mapping[str, Any], profile: str | None = None
) -> dict[str, Any]:
    """``params`` with every dotted key of ``settings`` set, and ``profile`` made active.

    Raises:
        ParamsError: unknown profile, or a key whose parent is not a mapping.
    """
    variant = copy.deepcopy(dict(params))
    name = active_profile(variant, profile)["name"]
    variant["profile"] = name
    block = variant["profiles"][name]
    for key, value in settings.items():
        _set(variant, key, value, create=True)
        _set(block, key, value, create=False)  # the profile's override wins: keep them equal
        shorthand = _SHORTHANDS.get(key)
        if shorthand in block:  # `epochs:` in the profile block overrides train.epochs
            block[shorthand] = value
    return variant


def _rebase(variant: dict[str, Any], source_dir: Path, target_dir: Path) -> None:
    """Rewrite relative paths so they name the same files from ``target_dir``."""

    def moved(value: Any) -> Any:
        if not isinstance(value, str) or os.path.isabs(os.path.expanduser(value)):
            return value
        return os.path.relpath(source_dir / value, target_dir)

    for block in variant.get("profiles", {}).values():
        if isinstance(block, dict) and "root" in block:
            block["root"] = moved(block["root"])
    camvid = variant.get("data", {}).get("camvid")
    if isinstance(camvid, dict) and "cache_dir" in camvid:
        camvid["cache_dir"] = moved(camvid["cache_dir"])


def write_variant(
    source: str | os.PathLike,
    out: str | os.PathLike,
    settings: Mapping[str, Any],
    profile: str | None = None,
) -> dict[str, Any]:
    """Write the variant of the params file ``source`` to ``out`` (atomically) and return it.

    Raises:
        ParamsError: ``source`` or the variant is malformed (the key named).
    """
    source, out = Path(source), Path(out)
    variant = params_variant(load_params(source), settings, profile)
    out.parent.mkdir(parents=True, exist_ok=True)
    _rebase(variant, source.resolve().parent, out.resolve().parent)
    header = (f"# Variant of {source.name} for one run: "
              + ", ".join(f"{k} = {json.dumps(v)}" for k, v in settings.items())
              + f"; profile {variant['profile']}. Written by `cheeger variant`.\n")  # fmt: skip
    text = header + yaml.safe_dump(variant, sort_keys=False)
    check = out.with_name(f".{out.name}.check.yaml")
    try:
        check.write_text(text)
        load_params(check)  # the variant must pass the same checks as the original
    except ParamsError as error:
        raise ParamsError(f"variant of {source.name} with {dict(settings)}: {error}") from None
    finally:
        check.unlink(missing_ok=True)
    atomic_write_bytes(out, text.encode())
    return variant
