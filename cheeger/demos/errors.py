"""Errors of the demos on bad input (an unreadable image or video, a query outside the image, a
missing webcam, a run folder without weights), so the CLI can print them as one line.

Every message names the offending file, source or value and says what was expected.

Example:
    >>> issubclass(SourceError, DemoError), issubclass(DemoError, ValueError)
    (True, True)
"""

from __future__ import annotations

__all__ = ["DemoError", "QueryError", "SourceError"]


class DemoError(ValueError):
    """Input a demo cannot use as given."""


class SourceError(DemoError):
    """An image, video, folder or webcam that cannot be opened or read."""


class QueryError(DemoError):
    """A query pixel outside the image, or not of the form ``ROW,COL``."""
