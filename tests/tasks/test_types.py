"""The task-type registry."""

import pytest

from fastmteb.tasks.base import TASK_TYPES
from fastmteb.tasks.types import UnknownTaskTypeError, get_task_type


def test_every_declared_type_has_an_implementation():
    for name in TASK_TYPES:
        task_type = get_task_type(name)
        assert task_type.name == name
        assert all(callable(getattr(task_type, f)) for f in ("prepare", "requests", "score"))


def test_unknown_type_names_close_matches():
    with pytest.raises(UnknownTaskTypeError, match="Clustering"):
        get_task_type("Clusterin")
