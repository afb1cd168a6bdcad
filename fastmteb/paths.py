"""File-name checks shared by everything that names a file or folder after user input (result
files, the embedding cache)."""

from __future__ import annotations

import os

__all__ = ["UnsafePathError", "safe_path_component"]


class UnsafePathError(ValueError):
    """A name (model, revision, task, fingerprint) that cannot be one file or folder name: it
    would point elsewhere ("..", a separator, a control character)."""


def safe_path_component(value: str, what: str, *, inside: str) -> str:
    """``value`` if it is usable as one file or folder name inside ``inside``, else raise
    ``UnsafePathError`` naming ``what`` and ``inside``.

    Rejected: empty, "." or "..", a path separator ("/" or "\\"), NUL or another control
    character. Anything else (spaces, ":", non-ASCII...) is kept as mteb keeps it.
    """
    problem = None
    if not isinstance(value, str):
        problem = f"is a {type(value).__name__}, not a string"
    elif value in ("", ".", ".."):
        problem = "is empty, '.' or '..'"
    elif "/" in value or "\\" in value or (os.altsep and os.altsep in value):
        problem = "contains a path separator"
    elif any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        problem = "contains a control character"
    if problem is not None:
        raise UnsafePathError(
            f"{what} {value!r} {problem}, so it cannot name a file or folder inside {inside}; "
            "rename it"
        )
    return value
