"""Which files the data loader read: ``fastmteb.provenance`` hashes them into each result's data
record, so a result is not reused once its data changed."""

from __future__ import annotations

import contextvars
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["note_read", "record_reads"]

_reads: contextvars.ContextVar[list[Path] | None] = contextvars.ContextVar(
    "fastmteb_files_read", default=None
)


@contextmanager
def record_reads() -> Iterator[list[Path]]:
    """Collect the paths ``note_read`` is told about inside the block."""
    paths: list[Path] = []
    token = _reads.set(paths)
    try:
        yield paths
    finally:
        _reads.reset(token)


def note_read(path: str | os.PathLike[str]) -> None:
    """Called by the data loader for every file it reads (a no-op outside ``record_reads``)."""
    paths = _reads.get()
    if paths is not None:
        paths.append(Path(path))
