"""Aggregate tasks (mteb's ``AbsTaskAggregate``: CQADupstackRetrieval, SynPerChatbotConvSAClassification, ...).

An aggregate task has no data of its own: its score is a mean of other tasks' main scores. fastmteb
runs it as mteb does (``mteb.evaluate``'s ``_evaluate_resolved``):

1. its parts (``task.metadata.tasks``) join the run as ordinary fastmteb tasks, so their texts
   share the run's text pool and each part writes its own result file;
2. once every part has a result, the aggregate's own ``combine_task_results`` (mteb's code: the
   per-split mean of the parts' main scores over the aggregate's languages/subsets, summed
   evaluation time, NaN CO2 when unknown, mteb's ``mteb_version`` rule) builds the aggregate's
   ``TaskResult``, written beside the parts as ``{Aggregate}.json``.

Because the combination is mteb's own function applied to the parts' results, it equals mteb's
for the same part scores; a task class that redefines ``task_results_to_scores`` is honoured too.
When a part fails, the aggregate is recorded as failed (mteb writes ``main_score: None``; fastmteb
writes nothing, so a rerun resumes it).
"""

from __future__ import annotations

import datetime
import json
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from fastmteb.results import TaskResult
from fastmteb.tasks.mteb_adapter import AGGREGATE_REASON

logger = logging.getLogger("fastmteb")

__all__ = ["combine", "is_aggregate", "mteb_aggregate", "part_names", "to_mteb_result"]



def is_aggregate(name: str) -> bool:
    """True when ``name`` is one of mteb's text aggregate tasks (read from the cached catalogue)."""
    from fastmteb.tasks.registry import FASTMTEB_TASKS, coverage

    if name in FASTMTEB_TASKS:
        return False
    try:
        reason = coverage()[1].get(name)
    except ImportError:  # no mteb installed: no mteb task to run
        return False
    return reason is not None and reason.startswith(AGGREGATE_REASON)


def mteb_aggregate(item: Any) -> Any | None:
    """mteb's aggregate task object for ``item`` (a task name or an mteb task object), else None."""
    if isinstance(item, str):
        if not is_aggregate(item):
            return None
        import mteb

        return mteb.get_task(item)
    if hasattr(item, "metadata") and hasattr(item, "eval_splits"):
        from fastmteb.tasks._mteb_task import has_mteb_base

        return item if has_mteb_base(item, "AbsTaskAggregate") else None
    return None


def part_names(aggregate: Any) -> list[str]:
    """The names of the tasks an aggregate averages, in mteb's order."""
    return [task.metadata.name for task in aggregate.metadata.tasks]


def parts(aggregate: Any) -> list[Any]:
    """The part task objects (mteb's, as the aggregate's metadata holds them)."""
    return list(aggregate.metadata.tasks)


def to_mteb_result(result: TaskResult) -> Any:
    """fastmteb's ``TaskResult`` as mteb's (the file's JSON, read by mteb's own model)."""
    from mteb.results.task_result import TaskResult as MtebTaskResult

    data = result.to_dict(rounded=False)
    if isinstance(data.get("date"), (int, float)):
        data["date"] = datetime.datetime.fromtimestamp(data["date"], tz=datetime.UTC)
    data.pop("evaluation_phases", None)
    return MtebTaskResult.from_validated(**data)


def from_mteb_result(result: Any, task_type: str | None = None) -> TaskResult:
    """mteb's ``TaskResult`` as fastmteb's (date as a POSIX timestamp)."""
    data = json.loads(result.model_dump_json())
    date = result.date
    data["date"] = date.timestamp() if isinstance(date, datetime.datetime) else date
    data["evaluation_time"] = result.evaluation_time
    data["kg_co2_emissions"] = result.kg_co2_emissions
    out = TaskResult.from_dict(data, source=result.task_name)
    # the scores as mteb holds them (pydantic's JSON dump turns NaN into null), rounded as the file
    # holds them, so that a resumed run returns the values of a fresh one (as
    # fastmteb.runner.prepared._score_task)
    out.scores = {split: [dict(e) for e in entries] for split, entries in result.scores.items()}
    out.scores = out.to_dict(rounded=True)["scores"]
    out.task_type = task_type
    return out


def combine(aggregate: Any, part_results: Iterable[TaskResult]) -> TaskResult:
    """The aggregate's ``TaskResult`` from its parts' results, by mteb's ``combine_task_results``.

    Raises ``ValueError`` naming the missing parts when some part has no result.
    """
    by_name = {r.task_name: r for r in part_results}
    missing = [name for name in part_names(aggregate) if name not in by_name]
    if missing:
        raise ValueError(
            f"{aggregate.metadata.name}: no result for part(s) {missing}; the aggregate needs all "
            f"{len(part_names(aggregate))}"
        )
    mteb_results = [to_mteb_result(by_name[name]) for name in part_names(aggregate)]
    combined = aggregate.combine_task_results(mteb_results)
    return from_mteb_result(combined, task_type=aggregate.metadata.type)


def expand(items: Sequence[Any]) -> tuple[list[Any], list[Any]]:
    """(items with each aggregate replaced by its parts' names, the aggregate task objects)."""
    out: list[Any] = []
    aggregates: list[Any] = []
    for item in items:
        aggregate = mteb_aggregate(item)
        if aggregate is None:
            out.append(item)
            continue
        aggregates.append(aggregate)
        out.extend(parts(aggregate) if not isinstance(item, str) else part_names(aggregate))
    return out, aggregates
