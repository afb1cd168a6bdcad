"""Writing a run's results: each task's mteb result file, ``model_meta.json`` and
``run_settings.jsonl`` in the model's revision folder."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastmteb.results import result_path_for, update_run_settings, write_model_meta
from fastmteb.runner.agreement import agree_on_result, scored_on_every_rank
from fastmteb.runner.outcome import Outcome, TaskFailure, failure

if TYPE_CHECKING:
    from fastmteb.distributed import Distributed
    from fastmteb.encoding.base import Encoder
    from fastmteb.runner.prepared import PreparedRun

__all__ = ["write_results"]


def write_results(
    run: PreparedRun,
    encoder: Encoder,
    out_dir: Path,
    settings: Mapping[str, Any],
    progress: bool,
    outcome: Outcome,
    dist: Distributed | None = None,
    record: Mapping[str, Any] | None = None,
) -> None:
    """Score each task and write its file (plus model_meta.json and run_settings.jsonl).

    ``record``: the provenance of the run (version, model, settings), put in every result file
    with the task's own ``data`` record.

    Distributed: the retrieval family is scored on every rank (its search is sharded) and the
    ranks agree on each such task's success; the other tasks are scored on rank 0 only, which
    alone writes.
    """
    assert run.embeddings is not None
    distributed = dist is not None and dist.is_distributed
    main = dist is None or dist.is_main
    meta_written = False
    every_rank = {task.meta.name for task in run.tasks if scored_on_every_rank(task.task_type)}
    only = None if main else (lambda meta: meta.name in every_rank)
    for meta, result in run.scored(progress=progress, release=True, only=only):
        name = meta.name
        if distributed and name in every_rank:
            result = agree_on_result(dist, meta, result)
        if not main:
            continue
        if isinstance(result, TaskFailure):
            outcome.failures.append(result)
            continue
        try:
            if not meta_written:
                embed_dim = int(run.embeddings.shape[1])
                # the folder's revision (fp-... for a model without one), so that mteb's readers
                # keep models of the same name apart
                write_model_meta(out_dir, name=encoder.name, revision=out_dir.name, embed_dim=embed_dim)
                meta_written = True
            task_settings = dict(settings)
            partial = task_settings.pop("partial_local_data", {})
            if name in partial:  # this task ran on the part of its data that data_dir holds
                task_settings["partial_local_data"] = partial[name]
            if record is not None:
                result.provenance = {**record, **(result.provenance or {})}
                if name in partial:  # said in the task's own file too, not only run_settings
                    result.provenance = {**result.provenance, "partial_local_data": partial[name]}
            result.to_disk(result_path_for(out_dir, meta))
            update_run_settings(out_dir, result, task_settings)
        except Exception as e:  # noqa: BLE001 - e.g. a full disk: recorded, the others go on
            outcome.failures.append(failure(name, "write", e))
            continue
        outcome.results[name] = result
