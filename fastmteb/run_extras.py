"""The tasks a run handles beside fastmteb's own task types: aggregates and the mteb-evaluator fallback.

``fastmteb.evaluate`` calls two functions of this module and nothing else changes in its flow:

* ``split_extras(tasks, benchmark)`` before resolving the tasks: an aggregate task (named, given as an
  mteb object, or inside a benchmark) is replaced by its parts, which then run as ordinary fastmteb
  tasks in the shared text pool; a task only mteb's evaluator can score (``fastmteb.fallback``) is
  set aside. Everything else passes through unchanged.
* ``finish_extras(...)`` after the fastmteb tasks are scored and written: the fallback tasks are
  scored by mteb's evaluator with fastmteb's encoder, then each aggregate is combined from its
  parts' results (``fastmteb.aggregate``). Files are written as for any task; failures are recorded
  per task and the others go on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger("fastmteb")

__all__ = ["Extras", "finish_extras", "split_extras"]


@dataclass
class Extras:
    """Aggregates (mteb objects) and fallback tasks (mteb objects) of one run, in request order."""

    aggregates: list[Any] = field(default_factory=list)
    fallbacks: list[Any] = field(default_factory=list)

    def names(self) -> list[str]:
        return [t.metadata.name for t in [*self.fallbacks, *self.aggregates]]

    def __bool__(self) -> bool:
        return bool(self.aggregates or self.fallbacks)


def _is_benchmark(obj: Any) -> bool:
    return hasattr(obj, "tasks") and hasattr(obj, "name") and not isinstance(obj, str)


def _benchmark_extras(benchmark: Any) -> list[Any]:
    """The tasks of a benchmark that fastmteb's registry leaves out but this module runs
    (mteb objects, narrowed as the benchmark narrows them)."""
    from fastmteb.aggregate import mteb_aggregate
    from fastmteb.fallback import mteb_fallback_task
    from fastmteb.tasks.registry import BENCHMARKS, benchmark_tasks

    if isinstance(benchmark, str) and benchmark in BENCHMARKS:
        return []  # fastmteb's own benchmarks hold only runnable tasks
    try:
        _, skipped = benchmark_tasks(benchmark)
    except Exception:  # noqa: BLE001 - an unknown benchmark: resolve_tasks raises the right error
        return []
    if not skipped:
        return []
    if isinstance(benchmark, str):
        import mteb

        benchmark = mteb.get_benchmark(benchmark)
    return [
        task
        for task in benchmark.tasks
        if task.metadata.name in skipped
        and (mteb_aggregate(task) is not None or mteb_fallback_task(task) is not None)
    ]


def split_extras(tasks: Any, benchmark: Any) -> tuple[Any, Any, Extras]:
    """(tasks for fastmteb's own types, benchmark, the extras): see the module docstring."""
    from fastmteb.aggregate import expand, mteb_aggregate
    from fastmteb.fallback import mteb_fallback_task
    from fastmteb.tasks.base import TaskMetadata

    extras = Extras()
    from_benchmark: list[Any] = []
    if benchmark is not None:
        from_benchmark = _benchmark_extras(benchmark)
    if tasks is None and not from_benchmark:
        return tasks, benchmark, extras
    single = tasks is not None and (
        isinstance(tasks, (str, TaskMetadata)) or hasattr(tasks, "metadata") or _is_benchmark(tasks)
    )
    items = [] if tasks is None else ([tasks] if single else list(tasks))
    flat: list[Any] = []
    for item in items:
        if _is_benchmark(item):
            flat.append(item)
            flat.extend(_benchmark_extras(item))
        else:
            flat.append(item)
    kept: list[Any] = []
    for item in [*flat, *from_benchmark]:
        if isinstance(item, TaskMetadata) or _is_benchmark(item):
            kept.append(item)
            continue
        fallback = mteb_fallback_task(item)
        if fallback is not None:
            if fallback.metadata.name not in {t.metadata.name for t in extras.fallbacks}:
                extras.fallbacks.append(fallback)
            continue
        if mteb_aggregate(item) is not None:
            parts, aggregates = expand([item])
            for aggregate in aggregates:
                if aggregate.metadata.name not in {t.metadata.name for t in extras.aggregates}:
                    extras.aggregates.append(aggregate)
            kept.extend(parts)
            continue
        kept.append(item)
    if not extras:
        return tasks, benchmark, extras
    return kept, benchmark, extras


def finish_extras(
    extras: Extras,
    encoder: Any,
    out_dir: Path,
    outcome: Any,
    *,
    overwrite: bool,
    cache_dir: Any = None,
    progress: bool = False,
    dist: Any = None,
    fingerprint: str | None = None,
) -> None:
    """Score the fallback tasks, then combine the aggregates; results and failures go to
    ``outcome`` (the runner's ``Outcome``), files to ``out_dir`` (on the main rank).
    ``fingerprint``: the encoder's, when the caller has it already (not hashed again)."""
    if not extras:
        return
    from fastmteb import aggregate as agg
    from fastmteb import fallback as fb
    from fastmteb.results import (
        ResultFileError,
        TaskResult,
        task_result_path,
        update_run_settings,
        write_model_meta,
    )
    from fastmteb.runner.outcome import failure

    main = dist is None or dist.is_main
    pool = None
    for task in extras.fallbacks:
        name = task.metadata.name
        path = task_result_path(out_dir, name)
        if not overwrite and path.is_file():
            try:
                earlier = TaskResult.from_disk(path)
                earlier.scored_by = fb.SCORED_BY  # type: ignore[attr-defined]
                outcome.results[name] = earlier
                outcome.skipped.append(name)
                continue
            except (ResultFileError, OSError):
                pass
        if pool is None:
            from fastmteb.encoding import TextPool

            pool = TextPool(
                encoder, cache_dir=cache_dir, progress=progress, fingerprint=fingerprint,
                communicator=dist,
            )
        try:
            result = fb.evaluate_with_mteb(task, encoder, pool=pool)
        except Exception as e:  # noqa: BLE001 - recorded per task, the run goes on
            outcome.failures.append(failure(name, "score", e))
            continue
        if main:
            try:
                model_meta = Path(out_dir) / "model_meta.json"
                if not model_meta.is_file():
                    dim = int(pool.embeddings().shape[1])
                    write_model_meta(out_dir, name=encoder.name, revision=encoder.revision, embed_dim=dim)
                fb.write(result, path)
                update_run_settings(out_dir, result, {"scored_by": fb.SCORED_BY})
            except Exception as e:  # noqa: BLE001
                outcome.failures.append(failure(name, "write", e))
                continue
        outcome.results[name] = result
    # Distributed: every rank ran the fallback tasks (their encoding is sharded), but only the
    # main rank holds the parts' results, writes and reports; the aggregates are combined there.
    for aggregate in extras.aggregates if main else ():
        name = aggregate.metadata.name
        try:
            result = agg.combine(aggregate, outcome.results.values())
        except Exception as e:  # noqa: BLE001
            outcome.failures.append(failure(name, "score", e))
            continue
        logger.info(
            "%s: combined from %d part(s) by mteb's combine_task_results",
            name,
            len(agg.part_names(aggregate)),
        )
        if main:
            try:
                result.to_disk(task_result_path(out_dir, name))
                update_run_settings(
                    out_dir, result, {"aggregate_of": agg.part_names(aggregate)}
                )
            except Exception as e:  # noqa: BLE001
                outcome.failures.append(failure(name, "write", e))
                continue
        outcome.results[name] = result


AGGREGATE = "aggregate (parts run by fastmteb, combined by mteb's combine_task_results)"


def extended_coverage() -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    """Over mteb's text tasks: (scored by fastmteb's task types: {name: TaskMetadata},
    {run by this module: how}, {not runnable: why})."""
    from fastmteb.tasks.registry import coverage

    runnable, unsupported = coverage()
    extra: dict[str, str] = {}
    rest: dict[str, str] = {}
    for name, reason in unsupported.items():
        how = run_by_extras(reason)
        if how is not None:
            extra[name] = how
        else:
            rest[name] = reason
    return runnable, extra, rest


def run_by_extras(reason: str | None) -> str | None:
    """How this module runs a task ``unsupported_reason`` rejected with ``reason`` (None: it does not)."""
    from fastmteb.fallback import SCORED_BY, _evaluation_only
    from fastmteb.tasks.mteb_adapter import AGGREGATE_REASON

    if reason is None:
        return None
    if reason.startswith(AGGREGATE_REASON):
        return AGGREGATE
    if _evaluation_only(reason):
        return SCORED_BY
    return None
