"""The JSON schema of ``params.yaml``: the one check of its shapes, types, ranges and choices.

``workflow/schemas/params.schema.yaml`` is read by :func:`check_params_schema` here (every config
builder checks the sections it reads with it) and by Snakemake's ``validate``. The config
dataclasses only build typed objects from checked sections and check what the schema cannot
say (relations between keys). A violation raises :class:`~cheeger.config.params.ParamsError`
naming the file, the dotted key and what was expected: the schema node's ``x-expected`` text,
else one derived from its ``enum`` or ``type``, else jsonschema's own message, e.g.
``params.yaml: train.epochs: expected an int >= 1, got 0``. ``x-expected`` is an annotation
(jsonschema and Snakemake ignore it); on a node holding a list or mapping it names the key of
the whole value, not of the offending item.

Example:
    >>> check_params_schema({"profile": "p", "profiles": {"p": {"dataset": "synthetic",
    ...                      "resolution": [8, 8]}}, "train": {"epochs": 0}})
    Traceback (most recent call last):
    ...
    cheeger.config.params.ParamsError: params.yaml: train.epochs: expected an int >= 1, got 0
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from cheeger.config.params import ParamsError

__all__ = ["PARAMS_SCHEMA", "check_params_schema", "params_schema_path"]

#: Where the JSON schema of params.yaml lives in a checkout (also read by the Snakefile).
PARAMS_SCHEMA = Path("workflow") / "schemas" / "params.schema.yaml"

_YAML_FLOAT = "; write exponents with a dot, 1.0e-3: YAML reads 1e-3 as a string"


def params_schema_path(params_path: str | os.PathLike | None = None) -> Path | None:
    """The schema beside a params file's checkout, else that of this package's checkout.

    Returns ``None`` when neither exists (:func:`check_params_schema` then refuses to check).
    """
    candidates = [] if params_path is None else [Path(params_path).resolve().parent]
    candidates.append(Path(__file__).resolve().parents[2])
    for root in candidates:
        if (root / PARAMS_SCHEMA).is_file():
            return root / PARAMS_SCHEMA
    return None


@functools.lru_cache(maxsize=4)
def _validator(schema: Path):
    import jsonschema  # 0.1 s: paid when params are first checked, not at import

    return jsonschema.Draft202012Validator(yaml.safe_load(schema.read_text()))


def _resolve(root: Mapping[str, Any], node: Mapping[str, Any]) -> Mapping[str, Any]:
    """Follow local ``$ref`` s (``#/$defs/name``), keeping the referring node's own keys."""
    while "$ref" in node:
        target = root["$defs"][node["$ref"].rsplit("/", 1)[-1]]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _node(root: Mapping[str, Any], path: Sequence[str | int]) -> Mapping[str, Any] | None:
    """The schema node that checks the value at ``path`` (``None``: no single node does)."""
    node = _resolve(root, root)
    for part in path:
        if isinstance(part, int) and isinstance(node.get("items"), Mapping):
            node = node["items"]
        elif part in node.get("properties", {}):
            node = node["properties"][part]
        elif isinstance(node.get("additionalProperties"), Mapping):
            node = node["additionalProperties"]
        else:
            return None
        node = _resolve(root, node)
    return node


def _expected(node: Mapping[str, Any] | None) -> str | None:
    """What the node accepts, in words (``None``: nothing better than jsonschema's message)."""
    if node is None:
        return None
    if "x-expected" in node:
        return node["x-expected"]
    if "enum" in node:
        options = node["enum"]
        return f"{options[0]} or {options[1]}" if len(options) == 2 else f"one of {options}"
    kind = node.get("type")
    if kind == "object" and node.get("minProperties"):
        return "a non-empty mapping"
    return {"object": "a mapping", "array": "a list", "boolean": "true or false",
            "string": "a string", "integer": "an int", "number": "a number"}.get(kind)


def _value_at(document: Any, path: Sequence[str | int]) -> Any:
    for part in path:
        document = document[part]
    return document


def _message(error, root: Mapping[str, Any], document: Any, prefix: tuple) -> str:
    path = list(error.absolute_path)
    if error.validator == "required":
        missing = next(key for key in error.validator_value if key not in error.instance)
        where = (*prefix, *path, missing)
        expected = _expected(_node(root, (*prefix, *path, missing)))
        return f"{_dotted(where)}: missing" + (f"; expected {expected}" if expected else "")
    if error.validator == "additionalProperties" and error.validator_value is False:
        known = list(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(known))
        return (f"{_dotted((*prefix, *path))}: unknown key(s) {extra}; "
                f"expected some of {known}")  # fmt: skip
    # the outermost node on the path that says what it expects names the key: [H, W] for a
    # bad H, not the H alone
    for depth in range(len(path) + 1):
        node = _node(root, (*prefix, *path[:depth]))
        expected = None if node is None else node.get("x-expected")
        if expected is not None:
            path = path[:depth]
            break
    else:
        expected = _expected(_node(root, (*prefix, *path)))
    where, value = _dotted((*prefix, *path)), _value_at(document, path)
    if expected is None:
        return f"{where}: {error.message}"
    if value is None:
        return f"{where}: missing; expected {expected}"
    if "number" in expected and isinstance(value, str) and _is_float(value):
        expected += _YAML_FLOAT
    return f"{where}: expected {expected}, got {value!r}"


def _is_float(text: str) -> bool:
    return re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", text.strip()) is not None


def _dotted(path: Sequence[str | int]) -> str:
    return ".".join(str(part) for part in path) or "<top level>"


def check_params_schema(
    params: Any,
    *,
    origin: str = "params.yaml",
    schema: Path | None = None,
    at: Sequence[str] = (),
) -> None:
    """Check parsed params, or the part of them at key path ``at``, against the JSON schema.

    Args:
        params: the parsed params file (``at=()``) or the value found at ``at`` in it.
        origin: file name used in error messages.
        schema: the schema file (default: :func:`params_schema_path`).
        at: key path of ``params`` in the whole file, e.g. ``("profiles", "camvid")``; its
            schema node checks it.

    Raises:
        ParamsError: no schema found, or the most relevant violation, naming its key path, e.g.
            ``params.yaml: profiles.embedded.seeds: expected a non-empty list of distinct ints
            >= 0, got []``.
    """
    import jsonschema

    schema = schema or params_schema_path()
    if schema is None:
        raise ParamsError(f"{origin}: no {PARAMS_SCHEMA} to check it against, neither beside it "
                          "nor in this package's checkout")  # fmt: skip
    validator = _validator(schema)
    root, prefix = validator.schema, tuple(at)
    node = _node(root, prefix)
    if node is None:
        return  # a section the schema leaves to its owner
    if prefix:
        validator = validator.evolve(schema=node)
    error = jsonschema.exceptions.best_match(validator.iter_errors(params))
    if error is not None:
        raise ParamsError(f"{origin}: {_message(error, root, params, prefix)}")
