"""Digests of code files: the identity of the code that made a result.

A study job's fingerprint (:mod:`cheeger.study.fingerprint`) and a feature cache's settings
(:mod:`cheeger.features.cache`) record the code that made their outputs by these digests. Python
files are digested through their syntax tree (``ast.dump`` without line numbers), so a change of
comments or layout is not a change of the code, while any change of code or docstrings is; other
files byte for byte. Both records use the same digest, so what reruns a job and what makes a
cache stale agree: a comment edit neither reruns the features job nor makes training refuse the
cache it left.

This module sits in :mod:`cheeger.config` because every stage's code includes that package
(``cheeger.study.layout.STAGE_CODE``): a change here reruns every job, as it should.

Example:
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "a.py").write_text("x = 1  # one\\n")
    >>> first = code_digest(folder / "a.py")
    >>> _ = (folder / "a.py").write_text("\\nx = 1  # a comment changed, a line added\\n")
    >>> code_digest(folder / "a.py") == first
    True
    >>> _ = (folder / "a.py").write_text("x = 2\\n")
    >>> code_digest(folder / "a.py") == first
    False
"""

from __future__ import annotations

import ast
import hashlib
import os
from pathlib import Path

__all__ = ["code_digest"]

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
