"""Task data: ``load_raw`` (hub, local folder or bundled copy), dataset transforms, bundled files.

Imported lazily so that ``import fastmteb`` does not pull in ``datasets``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BUNDLED_DIR", "TaskDataError", "bundled_source", "load_raw"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from fastmteb.data import loading

        return getattr(loading, name)
    raise AttributeError(f"module 'fastmteb.data' has no attribute {name!r}")
