"""Job fingerprints: a digest of the code and settings that make a study job's outputs.

Snakemake decides staleness from modification times and from metadata in ``.snakemake/``; a
fresh clone has no metadata and gives every file the clone's time, so after a committed code
change it can find stale outputs "up to date" (stop 10 saw it). A fingerprint does not depend on
either: the ``Snakefile`` names, for each job, a file whose name is the digest of the job's
code and settings (``cheeger.study.layout.FINGERPRINT``); when the digest changes that file is
missing, the ``fingerprint`` rule writes it, and the job that reads it is rerun. The file is the
record of what made the job's outputs (committed with them where they are committed).

Python code is digested through its syntax tree (``ast.dump``), so a change of comments or
formatting does not rerun anything, while any change of code or docstrings does; other files
are digested byte for byte.

Example:
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "a.py").write_text("x = 1  # one\\n")
    >>> first = job_fingerprint("train_run/conv/seed0", {"lr": 0.01}, [folder / "a.py"])
    >>> _ = (folder / "a.py").write_text("x = 1  # a comment changed\\n")
    >>> first == job_fingerprint("train_run/conv/seed0", {"lr": 0.01}, [folder / "a.py"])
    True
    >>> first[0] == job_fingerprint("train_run/conv/seed0", {"lr": 0.1}, [folder / "a.py"])[0]
    False
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["code_digest", "job_fingerprint", "write_fingerprint"]

DIGEST_CHARS = 16  # 64 bits of sha256: the file name of a job's fingerprint
_CACHE: dict[tuple[str, int, int], str] = {}  # (path, mtime_ns, size) -> digest, per process


def code_digest(path: str | os.PathLike) -> str:
    """sha256 of a code file: of its syntax tree for Python (comments and layout ignored), of
    its bytes otherwise.

    Raises:
        FileNotFoundError: ``path`` does not exist (its name in the message).
        SyntaxError: a ``.py`` file does not parse (its name in the message).
    """
    path = Path(path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    if key not in _CACHE:
        data = path.read_bytes()
        if path.suffix == ".py":
            # the tree without line numbers: moving code by a line is not a change
            data = ast.dump(ast.parse(data, filename=str(path))).encode()
        _CACHE[key] = hashlib.sha256(data).hexdigest()
    return _CACHE[key]


def job_fingerprint(
    job: str, settings: Any, code: Iterable[str | os.PathLike]
) -> tuple[str, dict[str, Any]]:
    """The digest of ``job`` and its record: the job's name, settings and each code file's
    digest.

    Args:
        job: the rule and its wildcards, e.g. ``"train_run/conv/seed0"``.
        settings: the settings the job reads (JSON-serialisable).
        code: the code files the job runs (paths as the record names them).

    Returns:
        ``(digest, record)``: ``DIGEST_CHARS`` hex digits and ``{"job", "settings", "code"}``.

    Raises:
        TypeError: ``settings`` is not JSON-serialisable.
    """
    record = {"job": job, "settings": settings,
              "code": {str(p): code_digest(p) for p in sorted(map(str, code))}}  # fmt: skip
    text = json.dumps(record, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:DIGEST_CHARS], record


def write_fingerprint(path: str | os.PathLike, record: Mapping[str, Any]) -> Path:
    """Write ``record`` to ``path`` atomically and remove the job's older fingerprints (the other
    ``.json`` files of its folder).

    Raises:
        ValueError: ``path`` does not end in ``.json``.
    """
    path = Path(path)
    if path.suffix != ".json":
        raise ValueError(f"fingerprint {path}: expected a .json file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    os.replace(temp, path)
    for old in path.parent.glob("*.json"):
        if old != path:
            old.unlink()
    return path
