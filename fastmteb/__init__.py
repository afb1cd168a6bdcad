"""fastmteb: mteb 2.x scores for text-embedding models, many times faster.

    import fastmteb
    results = fastmteb.evaluate("sentence-transformers/all-MiniLM-L6-v2", benchmark="MTEB(eng, v2)")
    fastmteb.load_results("results")      # {model: {task: TaskResult}}

Importing the package is light: torch, datasets and the kernels load when first needed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from fastmteb import results as _results
from fastmteb.results import Summary, TaskResult
from fastmteb.runner import RunResults, TaskFailedError, TaskFailure, evaluate
from fastmteb.version import __version__

if TYPE_CHECKING:
    from fastmteb.tasks.base import TaskMetadata

__all__ = [
    "evaluate",
    "get_tasks",
    "get_task",
    "get_benchmark",
    "load_results",
    "summarize",
    "TaskResult",
    "RunResults",
    "TaskFailure",
    "TaskFailedError",
    "__version__",
]


def load_results(*folders: str | os.PathLike[str]) -> dict[str, dict[str, TaskResult]]:
    """Read result folders into ``{model: {task_name: TaskResult}}`` (see
    ``fastmteb.results.load_results``), each result's ``task_type`` taken from the registry."""
    from fastmteb.tasks.registry import TASKS

    return _results.load_results(*folders, known_tasks=TASKS)


def summarize(
    results: Mapping[str, TaskResult], tasks: Sequence[str | TaskMetadata] | None = None
) -> Summary:
    """Aggregate one model's results over ``tasks`` (every result present when None) as mteb's
    benchmark tables do (see ``fastmteb.results.summarize``); tasks named by a string take their
    metadata from the registry."""
    from fastmteb.tasks.registry import TASKS

    return _results.summarize(results, tasks, known_tasks=TASKS)


def get_tasks(
    names: Sequence[Any] | None = None, *, types: Sequence[str] | None = None
) -> list[TaskMetadata]:
    """Metadata of the named tasks (names or mteb task objects; every task fastmteb can run when
    ``names`` is None), optionally of some types. mteb's task objects define each task."""
    from fastmteb.tasks.registry import get_tasks as _get_tasks

    return _get_tasks(names, types=types)


def get_task(name: Any) -> TaskMetadata:
    """Metadata of one task (an mteb task name or object); unknown names raise
    ``UnknownTaskError`` listing close matches."""
    from fastmteb.tasks.registry import get_task as _get_task

    return _get_task(name)


def get_benchmark(name: Any) -> list[TaskMetadata]:
    """Tasks of a benchmark: any mteb benchmark name or alias (e.g. "MTEB(eng, v2)", "NanoBEIR"),
    an ``mteb.Benchmark``, or the bundled "fastmteb-mini"; narrowed to the benchmark's subsets and
    splits as mteb narrows them."""
    from fastmteb.tasks.registry import get_benchmark as _get_benchmark

    return _get_benchmark(name)
