"""Errors raised on bad dataset input, so callers (the CLI) can tell them from programming bugs.

Every message names the offending file, folder or key and says what was expected.

Example:
    >>> from cheeger.data.errors import DataError, DataNotFoundError
    >>> issubclass(DataNotFoundError, FileNotFoundError), issubclass(DataNotFoundError, DataError)
    (True, True)
"""

from __future__ import annotations

__all__ = [
    "ChecksumError",
    "DataError",
    "DataNotFoundError",
    "LabelValueError",
    "PreparedFormatError",
]


class DataError(ValueError):
    """Dataset input that cannot be used as given (wrong content, size, format or value)."""


class DataNotFoundError(FileNotFoundError, DataError):
    """A dataset root, split folder or the partner file of an image/label pair is missing."""


class LabelValueError(DataError):
    """A label image holds values outside the dataset's class set."""


class ChecksumError(DataError):
    """A downloaded or cached file does not match its expected sha256."""


class PreparedFormatError(DataError):
    """A prepared-dataset folder is unfinished, of another format version, or inconsistent."""
