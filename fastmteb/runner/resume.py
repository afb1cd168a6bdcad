"""Resume: which tasks of a run are finished in the output folder, which (split, subset) pairs are
still to evaluate, and which earlier files cannot be reused (``fastmteb.provenance.reuse_problem``)."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from fastmteb import provenance
from fastmteb.results import (
    FASTMTEB_ONLY_DIR,
    MODEL_META_FILE,
    ResultFileError,
    TaskResult,
    result_path_for,
    task_result_path,
)
from fastmteb.runner.outcome import Outcome

if TYPE_CHECKING:
    from fastmteb.distributed import Distributed
    from fastmteb.tasks.base import TaskMetadata

logger = logging.getLogger("fastmteb")

__all__ = ["Pending", "folder_of_model", "plan"]

# (task, its earlier result to build on, the (split, subset) pairs still to evaluate)
Pending = tuple["TaskMetadata", "TaskResult | None", Sequence[tuple[str, str]]]


def _recorded_model_fingerprint(path: Path) -> str | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data[provenance.PROVENANCE_KEY]["model"]["model_fingerprint"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def folder_of_model(out_dir: Path, model_fp: str) -> Path:
    """``out_dir``, unless it holds results recorded for another model fingerprint (other weights
    under the same name and revision, e.g. a fine-tuned model whose card names its base model's
    revision): then the sibling ``{revision}-fp-<16 hex>``, so that neither overwrites the other.
    Files without a record (mteb's own, older fastmteb) belong to nobody."""
    if not out_dir.is_dir():
        return out_dir
    files = [*out_dir.glob("*.json"), *(out_dir / FASTMTEB_ONLY_DIR).glob("*.json")]
    owners = {
        fp
        for path in files
        if path.name != MODEL_META_FILE and (fp := _recorded_model_fingerprint(path)) is not None
    }
    if not owners - {model_fp}:
        return out_dir
    moved = out_dir.with_name(f"{out_dir.name}-fp-{provenance.short_fingerprint(model_fp)}")
    logger.warning(
        "%s holds results of other weights under the same model name and revision; "
        "this model's results go to %s",
        out_dir,
        moved,
    )
    return moved


def plan(
    metas: Sequence[TaskMetadata],
    out_dir: Path,
    overwrite: bool,
    outcome: Outcome,
    dist: Distributed | None = None,
    reuse_problem: Callable[[TaskMetadata, TaskResult], str | None] | None = None,
) -> list[Pending]:
    """Read back finished tasks; the others with their earlier result and missing pairs.

    Distributed: rank 0 alone reads the output folder (other machines may not see it) and every
    rank evaluates the (split, subset) pairs it chose, so that all build the same text pool.
    """
    if dist is not None and dist.is_distributed:
        chosen = None
        if dist.is_main:
            pending = plan(metas, out_dir, overwrite, outcome, None, reuse_problem)
            chosen = [(meta.name, todo) for meta, _, todo in pending]
        chosen = dist.broadcast_object(chosen)
        if dist.is_main:
            return pending
        by_name = {meta.name: meta for meta in metas}
        return [(by_name[name], None, todo) for name, todo in chosen]
    pending = []
    for meta in metas:
        path = result_path_for(out_dir, meta)
        _move_from_old_place(out_dir, meta, path)
        earlier, todo = _existing_result(path, meta, overwrite, reuse_problem, outcome.reevaluated)
        if earlier is not None and not todo:
            outcome.results[meta.name] = earlier
            outcome.skipped.append(meta.name)
        else:
            pending.append((meta, earlier, todo))
    if outcome.skipped:
        logger.info("resuming: %d finished task(s) read from %s", len(outcome.skipped), out_dir)
    return pending


def _move_from_old_place(out_dir: Path, meta: TaskMetadata, path: Path) -> None:
    """A fastmteb-only task's file written beside the mteb ones (by an earlier fastmteb) moves to
    ``fastmteb-only/``: there it is resumed from, and mteb's readers no longer trip on it."""
    old = task_result_path(out_dir, meta.name)
    if old == path or not old.is_file() or path.exists():
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(old, path)
        logger.info("%s: moved %s to %s (mteb does not know this task)", meta.name, old, path)
    except OSError as e:
        logger.warning("%s: could not move %s to %s: %s", meta.name, old, path, e)


def _existing_result(
    path: Path,
    meta: TaskMetadata,
    overwrite: bool,
    reuse_problem: Callable[[TaskMetadata, TaskResult], str | None] | None = None,
    reevaluated: dict[str, str] | None = None,
) -> tuple[TaskResult | None, list[tuple[str, str]]]:
    """(result to build on, (split, subset) pairs still to evaluate) for the file at ``path``.

    A file for another dataset revision, one that cannot be read, or one ``reuse_problem`` objects
    to (other weights, settings or data: ``fastmteb.provenance.reuse_problem``) is evaluated again
    in full; the reason is logged and put in ``reevaluated``.
    """
    todo = [(split, subset) for split in meta.eval_splits for subset in meta.hf_subsets]
    if overwrite or not path.exists():
        return None, todo
    try:
        result = TaskResult.from_disk(path)
    except (ResultFileError, OSError) as e:
        logger.warning(
            "%s: existing result %s is unreadable (%s); evaluating again", meta.name, path, e
        )
        if reevaluated is not None:
            reevaluated[meta.name] = "the earlier result file is unreadable"
        return None, todo
    if result.task_name != meta.name or result.dataset_revision != meta.hf_revision:
        logger.warning(
            "%s: existing result %s is for another task or dataset revision; evaluating again",
            meta.name,
            path,
        )
        if reevaluated is not None:
            reevaluated[meta.name] = (
                f"the earlier result is for task {result.task_name!r}, dataset revision "
                f"{result.dataset_revision!r} (now {meta.hf_revision!r})"
            )
        return None, todo
    result.task_type = meta.type
    problem = reuse_problem(meta, result) if reuse_problem is not None else None
    if problem:
        logger.warning("%s: evaluating again, the earlier result is not reusable: %s (%s)",
                       meta.name, problem, path)
        if reevaluated is not None:
            reevaluated[meta.name] = problem
        return None, todo
    missing = [(split, subset) for split, subset in todo if not result.covers([split], [subset])]
    if missing:
        logger.info(
            "%s: %d of %d split/subset pairs missing in %s; evaluating those",
            meta.name,
            len(missing),
            len(todo),
            path,
        )
    return result, missing
