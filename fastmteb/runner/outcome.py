"""What a run hands back: the results, the failed tasks and why, the tasks read back."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fastmteb.results import TaskResult

logger = logging.getLogger("fastmteb")

__all__ = ["Outcome", "RunResults", "TaskFailedError", "TaskFailure", "failure"]


@dataclass
class TaskFailure:
    """Why a task produced no result: the phase ("load", "prepare", "requests", "score", "write")
    and the error, as ``"ErrorType: message"``."""

    task_name: str
    phase: str
    error: str
    traceback: str = field(default="", repr=False)
    exception: BaseException | None = field(default=None, repr=False, compare=False)

    def __str__(self) -> str:
        return f"{self.task_name} ({self.phase}): {self.error}"


class RunResults(list):
    """``list[TaskResult]`` in task order (new and resumed), plus what went wrong.

    ``failures``: one ``TaskFailure`` per task without a result; ``skipped``: tasks read back
    from existing files (resume); ``reevaluated``: task -> why its existing file was not reused
    (other weights, dtype, data...); ``output_dir``: the model's revision folder.
    """

    def __init__(
        self,
        results: Iterable[TaskResult] = (),
        *,
        failures: Sequence[TaskFailure] = (),
        skipped: Sequence[str] = (),
        output_dir: Path | None = None,
        reevaluated: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(results)
        self.failures = list(failures)
        self.skipped = list(skipped)
        self.output_dir = output_dir
        self.reevaluated = dict(reevaluated or {})


class TaskFailedError(RuntimeError):
    """Raised at the end of ``evaluate(raise_error=True)`` when some tasks failed; the others
    were written. ``.results`` holds the ``RunResults``; with one failure, ``__cause__`` is it."""

    def __init__(self, results: RunResults) -> None:
        self.results = results
        lines = "\n".join(f"  - {f}" for f in results.failures)
        super().__init__(
            f"{len(results.failures)} task(s) failed (the others were written):\n{lines}"
        )


@dataclass
class Outcome:
    """What a run collects task by task (``RunResults`` is made from it at the end)."""

    results: dict[str, TaskResult] = field(default_factory=dict)
    failures: list[TaskFailure] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    reevaluated: dict[str, str] = field(default_factory=dict)


def failure(name: str, phase: str, exc: BaseException) -> TaskFailure:
    """The ``TaskFailure`` of task ``name`` in ``phase``, logged; the message names the task."""
    message = str(exc)
    if not message:
        frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        message = (
            f"(no message) raised in {frame.name} at {frame.filename}:{frame.lineno}"
            if frame
            else "(no message)"
        )
    if name not in message:
        message = f"task {name!r}: {message}"
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    logger.error("%s failed while %s: %s: %s", name, phase, type(exc).__name__, message)
    return TaskFailure(name, phase, f"{type(exc).__name__}: {message}", tb, exc)
