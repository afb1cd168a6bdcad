"""torch.distributed runs (``fastmteb.distributed``): every rank runs ``evaluate`` and builds the
same text pool, the retrieval family is scored on every rank (its search is sharded), rank 0 writes,
and the ranks agree on which tasks failed."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from fastmteb.runner.outcome import RunResults, TaskFailure, failure

if TYPE_CHECKING:
    from fastmteb.distributed import Distributed
    from fastmteb.results import TaskResult
    from fastmteb.runner.prepared import PreparedRun
    from fastmteb.tasks.base import TaskMetadata

__all__ = [
    "agree_on_loaded_tasks",
    "agree_on_result",
    "distributed_context",
    "from_main_rank",
    "scored_on_every_rank",
]


def scored_on_every_rank(task_type: Any) -> bool:
    """Retrieval-family tasks search with retrieval.search, which shards the corpus over the
    ranks: every rank must score them, in the same order."""
    return bool(getattr(task_type, "retrieval", False))


def distributed_context(
    model: Any, device: str | None, enabled: bool | None, backend: str | None
) -> Distributed:
    """The run's ``Distributed`` (this process alone when not under torchrun or ``enabled=False``)."""
    from fastmteb.distributed import Distributed
    from fastmteb.encoding.base import is_encoder

    if is_encoder(model):  # a ready encoder already sits on its device
        device = getattr(model, "device", device)
    return Distributed.from_env(device=device, backend=backend, enabled=enabled)


def agree_on_loaded_tasks(run: PreparedRun, dist: Distributed) -> None:
    """Keep only the tasks every rank loaded (a task that failed to load anywhere fails
    everywhere), so that all ranks hold the same text pool."""
    if not dist.is_distributed:
        return
    from fastmteb.distributed import PeerRankError

    reports = dist.all_gather_object(
        ([t.meta.name for t in run.tasks], [(f.task_name, f.phase, f.error) for f in run.failures])
    )
    everywhere = set.intersection(*(set(names) for names, _ in reports))
    failed = {f.task_name for f in run.failures}
    for rank, (_, failures) in enumerate(reports):
        for name, phase, error in failures:
            if name not in failed:
                failed.add(name)
                run.failures.append(
                    failure(name, phase, PeerRankError(f"on rank {rank}: {error}"))
                )
    if any(failures for _, failures in reports):
        # rebuilt from the kept tasks alone: a task that failed while adding its texts may have
        # left some in this rank's pool
        run.tasks = [task for task in run.tasks if task.meta.name in everywhere]
        run.rebuild_pool()


def agree_on_result(
    dist: Distributed, meta: TaskMetadata, result: TaskResult | TaskFailure
) -> TaskResult | TaskFailure:
    """A task scored on every rank succeeds only if it succeeded on all of them."""
    from fastmteb.distributed import PeerRankError

    reports = dist.all_gather_object(result.error if isinstance(result, TaskFailure) else None)
    if isinstance(result, TaskFailure):
        return result
    for rank, report in enumerate(reports):
        if report is not None:
            return failure(meta.name, "score", PeerRankError(f"on rank {rank}: {report}"))
    return result


def from_main_rank(dist: Distributed, run_results: RunResults) -> RunResults:
    """Rank 0's ``RunResults`` on every rank (failures without their exception objects)."""
    payload = None
    if dist.is_main:
        failures = [replace(f, exception=None) for f in run_results.failures]
        payload = (list(run_results), failures, list(run_results.skipped), run_results.reevaluated)
    results, failures, skipped, reevaluated = dist.broadcast_object(payload)
    if dist.is_main:
        return run_results
    return RunResults(
        results,
        failures=failures,
        skipped=skipped,
        output_dir=run_results.output_dir,
        reevaluated=reevaluated,
    )
