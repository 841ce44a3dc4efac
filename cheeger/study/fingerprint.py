"""Job fingerprints: a record of the code and settings that make a study job's outputs.

Snakemake decides staleness from modification times and from metadata in ``.snakemake/``; a
fresh clone has no metadata and gives every file the clone's time, so after a committed code
change it can find stale outputs "up to date" (stop 10 saw it). The ``Snakefile`` therefore
gives each job one more input, its fingerprint file (``cheeger.study.layout.FINGERPRINT``),
which it brings up to date while it builds the DAG with :func:`update_fingerprint`: the file is
rewritten only when the job's record changed, and then, being newer than the job's outputs,
reruns the job. Unchanged, it is left alone, so it reruns nothing. The file is the record of
what made the job's outputs (committed with them where they are committed); its folder,
``.fingerprints``, sorts before every output folder, so a checkout writes it first and never
makes it look newer than the outputs.

Python code is digested through its syntax tree (``ast.dump``; :mod:`cheeger.config.digest`), so
a change of comments or formatting does not rerun anything, while any change of code or
docstrings does; other files are digested byte for byte.

Example:
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "a.py").write_text("x = 1  # one\\n")
    >>> record = job_fingerprint("train_run/conv/0", {"lr": 0.01}, [folder / "a.py"])
    >>> update_fingerprint(folder / "fp.json", record)  # new: written
    True
    >>> _ = (folder / "a.py").write_text("x = 1  # a comment changed\\n")
    >>> record = job_fingerprint("train_run/conv/0", {"lr": 0.01}, [folder / "a.py"])
    >>> update_fingerprint(folder / "fp.json", record)  # the same record: left alone
    False
    >>> record = job_fingerprint("train_run/conv/0", {"lr": 0.1}, [folder / "a.py"])
    >>> update_fingerprint(folder / "fp.json", record)  # a setting changed: rewritten
    True
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from cheeger.config.digest import code_digest

__all__ = ["code_digest", "job_fingerprint", "update_fingerprint"]

def job_fingerprint(
    job: str, settings: Any, code: Iterable[str | os.PathLike], root: str | os.PathLike = "."
) -> dict[str, Any]:
    """The record of ``job``: its name, its settings, each code file's digest and a digest of
    all three.

    Args:
        job: the rule and its wildcards, e.g. ``"train_run/conv/0"``.
        settings: the settings the job reads (JSON-serialisable).
        code: the code files the job runs.
        root: the checkout: the record names code files relative to it, so that it does not
            depend on the folder Snakemake runs in.

    Returns:
        ``{"job", "settings", "code": {path: sha256}, "digest"}``.

    Raises:
        TypeError: ``settings`` is not JSON-serialisable.
    """
    record = {"job": job, "settings": settings,
              "code": {os.path.relpath(p, root): code_digest(p) for p in map(str, code)}}
    text = json.dumps(record, sort_keys=True, separators=(",", ":"))
    return {**record, "digest": hashlib.sha256(text.encode()).hexdigest()}


def update_fingerprint(path: str | os.PathLike, record: Mapping[str, Any]) -> bool:
    """Write ``record`` to ``path`` (atomically) unless the file already holds it; whether it
    was written. An unreadable or foreign file is rewritten.
    """
    path = Path(path)
    text = json.dumps(record, indent=1, sort_keys=True) + "\n"
    try:
        if path.read_text() == text:
            return False
    except (FileNotFoundError, UnicodeDecodeError):
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temp.write_text(text)
    os.replace(temp, path)
    return True
