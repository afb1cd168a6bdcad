"""Run tasks end to end: load and prepare every task, encode every text once, score, write results.

One run (DESIGN.md "Data flow")::

    resolve tasks ─▶ skip finished ones ─▶ load + prepare each task (raw data dropped once prepared)
      ─▶ one TextPool gets every task's requests ─▶ pool.embeddings() (encode once)
      ─▶ score each task ─▶ write {output}/{org}__{model}/{revision}/{Task}.json atomically
                            (a task mteb does not have: {revision}/fastmteb-only/{Task}.json)

``{revision}`` is the model's revision, or ``fp-<16 hex of its model fingerprint>`` for a model
without one (``fastmteb.provenance.revision_folder_name``): models of the same name with other
weights never share a folder.

The part from "load + prepare" to "score" is ``PreparedRun``: ``evaluate`` runs it once and writes
the results; a training callback (``fastmteb.callbacks``) keeps one and re-encodes and re-scores it
after each weight update, so both go through the same code.

A task that fails (bad data, a scorer error) is recorded and the others go on; nothing is written
for it. Finished tasks are skipped on a rerun unless ``overwrite=True``, or unless the stored
result came from other weights, settings that change scores or other data
(``fastmteb.provenance.reuse_problem``): such a task is evaluated again and the reason logged.
"""

from __future__ import annotations

import json
import logging
import os
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fastmteb import provenance
from fastmteb.inputs import check_run_inputs
from fastmteb.results import (
    FASTMTEB_ONLY_DIR,
    MODEL_META_FILE,
    MTEB_COMPAT_VERSION,
    ResultFileError,
    TaskResult,
    model_result_dir,
    result_path_for,
    task_result_path,
    to_builtin,
    update_run_settings,
    write_model_meta,
)

if TYPE_CHECKING:
    from fastmteb.distributed import Distributed
    from fastmteb.encoding.base import Encoder
    from fastmteb.tasks.base import TaskMetadata

logger = logging.getLogger("fastmteb")

__all__ = [
    "evaluate",
    "prepare_run",
    "resolve_tasks",
    "PreparedRun",
    "RawTransform",
    "RunResults",
    "TaskFailure",
    "TaskFailedError",
]

# ``raw_transform(meta, raw, split, subset) -> raw``: applied to what the loader returns, before
# ``prepare`` (e.g. a callback's fixed subsample).
RawTransform = Callable[["TaskMetadata", Any, str, str], Any]


# ---------------------------------------------------------------------------------------------
# The parts other modules own, looked up at call time (importing fastmteb stays light, and tests
# substitute them).


def _get_task(task: Any) -> TaskMetadata:
    from fastmteb.tasks.registry import get_task

    return get_task(task)


def _get_benchmark(benchmark: Any) -> list[TaskMetadata]:
    from fastmteb.tasks.registry import get_benchmark

    return get_benchmark(benchmark)


def _get_task_type(type_name: str) -> Any:
    from fastmteb.tasks.types import get_task_type

    return get_task_type(type_name)


def _load_raw(
    meta: TaskMetadata, subset: str, split: str, data_dir: str | os.PathLike[str] | None
) -> Any:
    from fastmteb.data.loading import load_raw

    return load_raw(meta, subset, split, data_dir=data_dir)


def _local_selection(
    metas: list[TaskMetadata], data_dir: str | os.PathLike[str] | None
) -> list[TaskMetadata]:
    """With a data_dir: each task narrowed to the subsets/splits its folder holds, said in the log."""
    if data_dir is None:
        return metas
    from fastmteb.data.loading import local_selection

    out = []
    for meta in metas:
        kept = local_selection(meta, data_dir)
        if kept is not meta:
            logger.warning(
                "%s: %s holds %d of %d subset(s) and %d of %d split(s); evaluating only those "
                "(subsets %s, splits %s)",
                meta.name,
                data_dir,
                len(kept.hf_subsets),
                len(meta.hf_subsets),
                len(kept.eval_splits),
                len(meta.eval_splits),
                ", ".join(kept.hf_subsets[:10]) + (" ..." if len(kept.hf_subsets) > 10 else ""),
                ", ".join(kept.eval_splits),
            )
        out.append(kept)
    return out


def _partial_local_data(
    requested: Sequence[TaskMetadata], evaluated: Sequence[TaskMetadata]
) -> dict[str, dict[str, list[str]]]:
    """{task: {"subsets": [...], "splits": [...]}} for tasks evaluated on part of their data."""
    return {
        new.name: {"subsets": list(new.hf_subsets), "splits": list(new.eval_splits)}
        for old, new in zip(requested, evaluated, strict=True)
        if new != old
    }


def _release_loader_data() -> None:
    """Every task is prepared: drop the rows mteb's loader path keeps for the next subset."""
    import sys

    loading = sys.modules.get("fastmteb.data.loading")
    if loading is not None:
        loading.release_mteb_data()


def _split_extras(tasks: Any, benchmark: Any) -> tuple[Any, Any, Any]:
    from fastmteb.run_extras import split_extras

    return split_extras(tasks, benchmark)


def _finish_extras(*args: Any, **kwargs: Any) -> None:
    from fastmteb.run_extras import finish_extras

    finish_extras(*args, **kwargs)


def _load_encoder(model: Any, **kwargs: Any) -> Encoder:
    from fastmteb.encoding import load_encoder

    return load_encoder(model, **kwargs)


def _make_pool(
    encoder: Encoder, cache_dir: str | os.PathLike[str] | None, progress: bool, **spill: Any
) -> Any:
    from fastmteb.encoding import TextPool

    return TextPool(encoder, cache_dir=cache_dir, progress=progress, **spill)


def _is_spilled(embeddings: Any) -> bool:
    """True for the lazy rows of a pool past ``max_embedding_memory`` (read from its spill file)."""
    from fastmteb.encoding.store import RowView

    return isinstance(embeddings, RowView)


def _encode_context(**kwargs: Any) -> Any:
    from fastmteb.encoding.base import EncodeContext

    return EncodeContext(**kwargs)


# ---------------------------------------------------------------------------------------------
# Outcome of a run


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


# ---------------------------------------------------------------------------------------------
# Task resolution


def resolve_tasks(
    tasks: Any = None,
    benchmark: Any = None,
) -> list[TaskMetadata]:
    """Tasks -> metadata list, first occurrence order.

    ``tasks``: a task name (any mteb task fastmteb can run, or a fastmteb-only one), an mteb task
    object, a ``TaskMetadata``, an ``mteb.Benchmark``, or an iterable of these. ``benchmark``: a
    benchmark name (every mteb benchmark, or "fastmteb-mini") or an ``mteb.Benchmark``; its tasks
    come narrowed to the benchmark's splits and subsets.

    Unknown names raise the registry's ``UnknownTaskError`` (a ValueError listing close matches)
    before any work starts.
    """
    from fastmteb.tasks.base import TaskMetadata

    def is_benchmark(obj: Any) -> bool:
        return hasattr(obj, "tasks") and hasattr(obj, "name") and not isinstance(obj, str)

    requested: list[TaskMetadata] = []
    if benchmark is not None:
        requested.extend(_get_benchmark(benchmark))
    if tasks is not None:
        single = isinstance(tasks, (str, TaskMetadata)) or hasattr(tasks, "metadata")
        items = [tasks] if single or is_benchmark(tasks) else list(tasks)
        for item in items:
            if isinstance(item, TaskMetadata):
                requested.append(item)
            elif is_benchmark(item):
                requested.extend(_get_benchmark(item))
            elif isinstance(item, str) or hasattr(item, "metadata"):
                requested.append(_get_task(item))
            else:
                raise TypeError(
                    f"tasks: expected task names, mteb task or benchmark objects, or "
                    f"TaskMetadata, got {type(item).__name__}: {item!r}"
                )
    unique: dict[str, TaskMetadata] = {}
    for meta in requested:
        unique.setdefault(meta.name, meta)
    return list(unique.values())


# ---------------------------------------------------------------------------------------------
# Per-task state


class _Clock:
    """Phase records on one timeline: seconds since the run started (mteb's ``PhaseTiming``)."""

    def __init__(self) -> None:
        self.origin = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self.origin

    @staticmethod
    def phase(
        name: str, start: float, end: float, split: str = "", subset: str = ""
    ) -> dict[str, Any]:
        return {"name": name, "start": start, "end": end, "split": split, "subset": subset}


@dataclass
class _Unit:
    """One (split, subset) of a task: its prepared data and where its texts sit in the pool."""

    split: str
    subset: str
    prepared: Any
    requests: dict[str, Any] | None
    indices: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class _Task:
    meta: TaskMetadata
    task_type: Any
    units: list[_Unit]
    phases: list[dict[str, Any]]
    own_seconds: float  # loading, preparing and scoring this task
    encode_cost: int = 0  # tokens (or characters) its requests cost the last embed(): its share of that time
    earlier: TaskResult | None = (
        None  # a result with some of the (split, subset) pairs already done
    )
    data: dict[str, Any] | None = None  # provenance "data" record of the files read (or the hub)


class _TaskError(Exception):
    """A failure inside one task's phase; carries the phase name."""

    def __init__(self, phase: str, cause: BaseException) -> None:
        super().__init__(phase)
        self.phase = phase
        self.cause = cause


def _run_phase(phase: str, fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception as e:  # noqa: BLE001 - recorded per task, the run goes on
        raise _TaskError(phase, e) from e


def _check_requests(meta: TaskMetadata, split: str, subset: str, requests: Any) -> dict[str, Any]:
    where = f"task {meta.name!r} (split {split!r}, subset {subset!r})"
    if not isinstance(requests, Mapping):
        raise TypeError(
            f"{where}: requests() must return a dict name -> TextRequest, "
            f"got {type(requests).__name__}"
        )
    for name, request in requests.items():
        texts = getattr(request, "texts", None)
        if not isinstance(texts, list):
            raise ValueError(
                f"{where}: request {name!r} must be a TextRequest with a list of texts"
            )
        for row, text in enumerate(texts):
            if not isinstance(text, str):
                raise ValueError(
                    f"{where}: request {name!r}, row {row}: text must be a string, "
                    f"got {type(text).__name__} "
                    f"({text!r}); fix or drop that row in the data"
                )
    return dict(requests)


def _load_task(
    meta: TaskMetadata,
    todo: Sequence[tuple[str, str]],
    data_dir: Any,
    clock: _Clock,
    raw_transform: RawTransform | None = None,
) -> _Task:
    """Load and prepare the (split, subset) pairs in ``todo``; raw rows go once prepared."""
    start = clock.now()
    task_type = _run_phase("load", _get_task_type, meta.type)
    units: list[_Unit] = []
    phases: list[dict[str, Any]] = []
    files_read: list[Path] = []
    for split, subset in todo:
        t0 = clock.now()
        with provenance.record_reads() as read:
            raw = _run_phase("load", _load_raw, meta, subset, split, data_dir)
        files_read.extend(read)
        if raw_transform is not None:
            raw = _run_phase("load", raw_transform, meta, raw, split, subset)
        t1 = clock.now()
        prepared = _run_phase("prepare", task_type.prepare, meta, raw, split, subset)
        del raw
        requests = _run_phase("requests", task_type.requests, prepared)
        requests = _run_phase("requests", _check_requests, meta, split, subset, requests)
        t2 = clock.now()
        phases.append(clock.phase("Data loading", t0, t1, split, subset))
        phases.append(clock.phase("Preparing", t1, t2, split, subset))
        units.append(_Unit(split, subset, prepared, requests))
    data = _run_phase("load", provenance.data_record, meta, data_dir, files_read)
    return _Task(meta, task_type, units, phases, own_seconds=clock.now() - start, data=data)


def _add_to_pool(task: _Task, pool: Any) -> None:
    """Give the pool every text of the task; keep only the index arrays.

    Requests already handed to a pool are built again from the prepared data (``requests`` is
    deterministic), which is how a ``PreparedRun`` moves to a new pool.
    """
    meta = task.meta
    for unit in task.units:
        requests = unit.requests
        if requests is None:
            requests = task.task_type.requests(unit.prepared)
            requests = _check_requests(meta, unit.split, unit.subset, requests)
        for name, request in requests.items():
            ctx = _encode_context(
                task_name=meta.name,
                task_type=meta.type,
                prompt_type=request.prompt_type,
                hf_split=unit.split,
                hf_subset=unit.subset,
                task_prompt=meta.prompt,
            )
            unit.indices[name] = np.asarray(pool.add(request.texts, ctx), dtype=np.int64)
        unit.requests = None


def _subset_languages(meta: TaskMetadata, subset: str) -> list[str]:
    """mteb's ``hf_subsets_to_langscripts[subset]``, or every language of the task if absent."""
    if subset in meta.languages:
        return list(meta.languages[subset])
    merged: dict[str, None] = {}
    for langs in meta.languages.values():
        merged.update(dict.fromkeys(langs))
    return list(merged)


def _score_unit(task: _Task, unit: _Unit, embeddings: np.ndarray) -> dict[str, Any]:
    meta = task.meta
    if _is_spilled(embeddings):
        # requests the task type streams itself (``lazy_requests``, e.g. a retrieval corpus)
        # stay lazy row views; the others are read into memory, one unit at a time
        lazy = set(getattr(task.task_type, "lazy_requests", ()))
        per_request = {
            name: embeddings[idx] if name in lazy else np.asarray(embeddings[idx])
            for name, idx in unit.indices.items()
        }
    else:
        per_request = {name: embeddings[idx] for name, idx in unit.indices.items()}
    if _scored_on_every_rank(meta):  # its search is split over the ranks of the current run
        from fastmteb.distributed import current

        scores = task.task_type.score(meta, unit.prepared, per_request, communicator=current())
    else:
        scores = task.task_type.score(meta, unit.prepared, per_request)
    where = f"task {meta.name!r} (split {unit.split!r}, subset {unit.subset!r})"
    if not isinstance(scores, Mapping):
        raise TypeError(
            f"{where}: score() must return a dict of metrics, got {type(scores).__name__}"
        )
    if meta.main_score not in scores:
        raise KeyError(
            f"{where}: main score {meta.main_score!r} is not among the computed metrics "
            f"{sorted(scores)[:12]}; fix TaskMetadata.main_score"
        )
    entry = to_builtin(dict(scores))
    entry["main_score"] = entry[meta.main_score]
    entry["hf_subset"] = unit.subset
    entry["languages"] = _subset_languages(meta, unit.subset)
    entry["mteb_version"] = MTEB_COMPAT_VERSION
    return entry


def _score_task(
    task: _Task,
    embeddings: np.ndarray,
    clock: _Clock,
    encode_phase: dict[str, Any],
    encode_share: float,
) -> TaskResult:
    start = clock.now()
    new_entries: dict[tuple[str, str], dict[str, Any]] = {}
    phases = [*task.phases, encode_phase]
    for unit in task.units:
        t0 = clock.now()
        new_entries[(unit.split, unit.subset)] = _run_phase(
            "score", _score_unit, task, unit, embeddings
        )
        phases.append(clock.phase("Scoring", t0, clock.now(), unit.split, unit.subset))
    seconds = task.own_seconds + (clock.now() - start) + encode_share
    earlier = task.earlier
    if earlier is not None:
        seconds += earlier.evaluation_time or 0.0
        phases = [*(earlier.evaluation_phases or []), *phases]
    result = TaskResult(
        dataset_revision=task.meta.hf_revision,
        task_name=task.meta.name,
        mteb_version=MTEB_COMPAT_VERSION,
        scores=_merge_scores(task.meta, earlier, new_entries),
        evaluation_time=seconds,
        date=time.time(),
        evaluation_phases=phases,
        task_type=task.meta.type,
    )
    earlier_data = (earlier.provenance or {}).get("data") if earlier is not None else None
    data = provenance.merge_data_records(earlier_data, task.data)
    if data is not None:
        result.provenance = {"data": data}
    # Hand back what the file holds, so that a resumed run returns the values of a fresh one.
    result.scores = result.to_dict(rounded=True)["scores"]
    return result


def _merge_scores(
    meta: TaskMetadata,
    earlier: TaskResult | None,
    new_entries: Mapping[tuple[str, str], dict[str, Any]],
) -> dict[str, list[dict[str, Any]]]:
    """New entries plus the earlier ones not recomputed; splits and subsets in metadata order."""
    entries: dict[tuple[str, str], dict[str, Any]] = {}
    if earlier is not None:
        for split, split_entries in earlier.scores.items():
            for entry in split_entries:
                entries[(split, entry["hf_subset"])] = entry
    entries.update(new_entries)
    split_order = list(dict.fromkeys([*meta.eval_splits, *(split for split, _ in entries)]))
    subset_order = list(dict.fromkeys([*meta.hf_subsets, *(subset for _, subset in entries)]))
    scores: dict[str, list[dict[str, Any]]] = {}
    for split in split_order:
        split_entries = [entries[(split, s)] for s in subset_order if (split, s) in entries]
        if split_entries:
            scores[split] = split_entries
    return scores


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


def _failure(name: str, phase: str, exc: BaseException) -> TaskFailure:
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


def _is_encoder(model: Any) -> bool:
    return not isinstance(model, str) and all(
        hasattr(model, attr) for attr in ("name", "revision", "fingerprint", "group_key", "encode")
    )


def _progress(iterable: Sequence[Any], desc: str, enabled: bool) -> Any:
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, unit="task", leave=False)


# ---------------------------------------------------------------------------------------------
# Prepared run: load + prepare once, then (re-)encode and score as often as needed


class PreparedRun:
    """Tasks loaded and prepared once, every text of theirs registered in one ``TextPool``.

    Build it with ``prepare_run``. ``embed()`` encodes the pool (``reencode=True``: forget the
    vectors and encode with the model's *current* weights; token ids are kept), ``scored()`` yields
    each task's ``TaskResult`` (or ``TaskFailure``) from those embeddings. ``evaluate`` runs it once
    and writes files; ``fastmteb.callbacks`` keeps it across training steps. Nothing that depends on
    the weights is kept between ``embed`` calls.

    ``failures`` holds the tasks that could not be loaded or prepared; they are not in ``tasks``.
    """

    def __init__(
        self,
        encoder: Encoder,
        pool: Any,
        tasks: list[_Task],
        failures: list[TaskFailure],
        clock: _Clock,
        spill: Mapping[str, Any] | None = None,
    ) -> None:
        self.encoder = encoder
        self.pool = pool
        self.tasks = tasks
        self.failures = failures
        self.clock = clock
        self.spill = dict(spill or {})  # TextPool's max_embedding_memory / spill_dir, if set
        self.embeddings: np.ndarray | None = None
        self.encode_phase: dict[str, Any] | None = None

    @classmethod
    def load(
        cls,
        encoder: Encoder,
        pending: Sequence[tuple[TaskMetadata, TaskResult | None, Sequence[tuple[str, str]]]],
        *,
        data_dir: str | os.PathLike[str] | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        progress: bool = True,
        raw_transform: RawTransform | None = None,
        clock: _Clock | None = None,
        spill: Mapping[str, Any] | None = None,
    ) -> PreparedRun:
        """Load and prepare ``(meta, earlier result, (split, subset) pairs)`` and fill one pool.

        ``spill``: ``TextPool`` keywords ``max_embedding_memory`` and ``spill_dir`` (none: no limit).
        """
        clock = clock if clock is not None else _Clock()
        pool = _make_pool(encoder, cache_dir, progress, **(spill or {}))
        outcome = _Outcome()
        loaded = _load_all(pending, pool, data_dir, clock, progress, outcome, raw_transform)
        _release_loader_data()
        return cls(encoder, pool, loaded, outcome.failures, clock, spill)

    @property
    def task_names(self) -> list[str]:
        return [task.meta.name for task in self.tasks]

    def rebind(
        self,
        encoder: Encoder,
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        progress: bool = False,
    ) -> None:
        """Use another encoder (e.g. another model object): a new pool gets the same texts; the
        prepared data is kept."""
        self.encoder = encoder
        self.pool = _make_pool(encoder, cache_dir, progress, **self.spill)
        for task in self.tasks:
            _add_to_pool(task, self.pool)
        self.embeddings = self.encode_phase = None

    def tokenize(self) -> int:
        """Tokenize every pooled text now (``embed`` would do it on its first call); returns how
        many texts were tokenized."""
        if self.pool is None:
            raise RuntimeError("this PreparedRun released its text pool; prepare a new one")
        return self.pool.tokenize_all()

    def embed(self, *, reencode: bool = False) -> np.ndarray:
        """Encode every text not encoded yet (all with ``reencode``); float32 [pool, dim] (a lazy
        ``RowView`` of the spill file when the pool is past ``max_embedding_memory``)."""
        if self.pool is None:
            raise RuntimeError("this PreparedRun released its text pool; prepare a new one")
        if reencode:
            self.pool.reset_embeddings()
        t0 = self.clock.now()
        vectors = self.pool.embeddings()
        self.embeddings = vectors if _is_spilled(vectors) else np.asarray(vectors)
        self.encode_phase = self.clock.phase("Encoding", t0, self.clock.now())
        costs = self.pool.encode_costs()
        for task in self.tasks:
            task.encode_cost = int(
                sum(costs[indices].sum() for unit in task.units for indices in unit.indices.values())
            )
        return self.embeddings

    def release_pool(self) -> None:
        """Drop the pool (texts, token ids, vectors) once embedded: frees memory before scoring."""
        self.pool = None

    def scored(
        self,
        *,
        progress: bool = False,
        release: bool = False,
        only: Callable[[TaskMetadata], bool] | None = None,
    ) -> Iterator[tuple[TaskMetadata, TaskResult | TaskFailure]]:
        """Score each task from the last ``embed()``; ``release`` frees each task's prepared data
        once scored (a one-shot run); ``only``: score just the tasks it accepts."""
        if self.embeddings is None or self.encode_phase is None:
            raise RuntimeError("call embed() before scored()")
        encode_seconds = self.encode_phase["end"] - self.encode_phase["start"]
        total_cost = sum(task.encode_cost for task in self.tasks) or 1
        for task in _progress(self.tasks, "Scoring tasks", progress):
            if only is not None and not only(task.meta):
                if release:
                    task.units = []
                continue
            share = encode_seconds * task.encode_cost / total_cost
            try:
                yield task.meta, _score_task(
                    task, self.embeddings, self.clock, self.encode_phase, share
                )
            except _TaskError as e:
                yield task.meta, _failure(task.meta.name, e.phase, e.cause)
            finally:
                if release:
                    task.units = []  # free the prepared data as soon as the task is done


def prepare_run(
    encoder: Encoder,
    tasks: str | TaskMetadata | Iterable[str | TaskMetadata] | None = None,
    *,
    benchmark: str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = False,
    raw_transform: RawTransform | None = None,
) -> PreparedRun:
    """Load and prepare every (split, subset) of ``tasks``/``benchmark`` for ``encoder`` (an
    ``Encoder``, e.g. from ``load_encoder``); nothing is encoded yet. Unknown names raise at once;
    tasks that fail to load are in ``PreparedRun.failures``."""
    metas = _local_selection(resolve_tasks(tasks, benchmark), data_dir)
    if not metas:
        raise ValueError("no tasks to prepare: pass tasks=[names] or benchmark=NAME")
    check_run_inputs(data_dir=data_dir, cache_dir=cache_dir)
    pending = [
        (meta, None, [(split, subset) for split in meta.eval_splits for subset in meta.hf_subsets])
        for meta in metas
    ]
    return PreparedRun.load(
        encoder,
        pending,
        data_dir=data_dir,
        cache_dir=cache_dir,
        progress=progress,
        raw_transform=raw_transform,
    )


# ---------------------------------------------------------------------------------------------
# The entry point


def evaluate(
    model: Any = None,
    tasks: str | TaskMetadata | Iterable[str | TaskMetadata] | None = None,
    *,
    benchmark: str | None = None,
    output_folder: str | os.PathLike[str] = "results",
    data_dir: str | os.PathLike[str] | None = None,
    device: str | None = None,
    dtype: str = "auto",
    batch_tokens: int = 16384,
    cache_dir: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    progress: bool = True,
    prompts: Mapping[str, str] | None = None,
    trust_remote_code: bool = False,
    raise_error: bool = True,
    max_embedding_memory: int | str | None = None,
    spill_dtype: str = "float32",
    distributed: bool | None = None,
    dist_backend: str | None = None,
) -> RunResults:
    """Evaluate ``model`` on ``tasks`` and/or ``benchmark``; write one mteb result file per task.

    ``model``: None (bundled all-MiniLM-L6-v2), a name or path, a model object, a callable
    ``texts -> array``, or a ready ``Encoder``. Every text of every task goes into one
    ``TextPool`` and is encoded once. Results go to
    ``{output_folder}/{org}__{model}/{revision}/{Task}.json`` (mteb's layout and schema; tasks
    mteb does not have in ``{revision}/fastmteb-only/``; ``{revision}`` is
    ``fp-<model fingerprint>`` for a model without a revision, and gets a ``-fp-<...>`` suffix
    when the folder already holds results of other weights under the same name and revision).
    A task with a complete file there is read back instead of evaluated, unless ``overwrite``, or
    unless that file was scored by other weights, another dtype / spill_dtype / prompts, or other
    data (hub revision, or the hashes of the local files): then it is evaluated again, the reason
    is logged and listed in ``RunResults.reevaluated``. ``device``, ``batch_tokens`` and
    ``max_embedding_memory`` are recorded but do not block resume.

    ``cache_dir``: verified on-disk embedding cache, written shard by shard while encoding, so a
    rerun (also after Ctrl-C or a crash) encodes only what is not there. A plain callable or an
    mteb-protocol model is cached only under a fingerprint its user gives
    (``fastmteb.encoding.CallableEncoder(fn, fingerprint=...)``, ``ProtocolEncoder(model,
    fingerprint=...)`` or a ``fastmteb_fingerprint`` attribute): without one nothing is cached and
    a ``CacheDisabledWarning`` says so (fastmteb cannot see such a model's weights).

    ``evaluation_time`` of a task = its loading + preparing + scoring time + its share of the shared
    encoding time (share = tokens of the texts it requested, as encoded, i.e. cut at the model's
    max length / those of all tasks; characters for a model without a tokenizer; a text two tasks
    request counts for both, a cache hit for neither).

    A task that fails is recorded in ``RunResults.failures`` and writes nothing; the other tasks
    go on. With ``raise_error`` (default) a ``TaskFailedError`` is raised at the end if any failed.
    Unknown task names, and a ``data_dir``/``output_folder``/``cache_dir``/``device``/model path
    that cannot work (``fastmteb.inputs.InputError``), raise before any work starts.

    ``max_embedding_memory`` (bytes, or a string such as ``"2GB"``/``"512MiB"``; None = no limit):
    past it the embeddings are written to a spill file in ``{cache_dir}/.fastmteb-spill`` (else
    ``{output_folder}/.fastmteb-spill``), retrieval streams its corpus from there block by block
    and the other requests are read one task at a time; the file is deleted at the end. Scores
    are the same as in memory. ``spill_dtype="float16"`` halves the file and the disk reads; the
    spilled vectors are then rounded to float16, so scores may move in their last digits (not for
    parity runs).

    ``distributed`` (None = auto): under ``torchrun`` (``WORLD_SIZE > 1``) every rank loads the
    tasks, encodes its share of the text pool and searches its share of each retrieval corpus;
    rank 0 writes the files and every rank returns its ``RunResults``. Call from every rank.
    ``True`` also shards over a process group the caller initialised; ``False``: this process
    alone. ``dist_backend``: "nccl" (default when encoding on CUDA) or "gloo" (CPU).
    """
    tasks, benchmark, extras = _split_extras(tasks, benchmark)  # aggregates, mteb-evaluator fallback
    requested = resolve_tasks(tasks, benchmark)
    metas = _local_selection(requested, data_dir)
    partial = _partial_local_data(requested, metas)
    if not metas and not extras:
        raise ValueError("no tasks to evaluate: pass tasks=[names] or benchmark=NAME")
    # paths, device and model path that cannot work fail now, not after the model has loaded or
    # the whole run has finished (nothing is loaded or written before this)
    check_run_inputs(
        model=model,
        data_dir=data_dir,
        output_folder=output_folder,
        cache_dir=cache_dir,
        device=None if _is_encoder(model) else device,  # a ready encoder keeps its own device
    )
    spill = _spill_settings(max_embedding_memory, cache_dir, output_folder, spill_dtype)
    dist = _distributed_context(model, device, distributed, dist_backend)
    progress = progress and dist.is_main
    with _use_distributed(dist):
        encoder = (
            model
            if _is_encoder(model)
            else _load_encoder(
                model,
                device=dist.encoder_device,
                dtype=dtype,
                prompts=prompts,
                trust_remote_code=trust_remote_code,
                batch_tokens=batch_tokens,
            )
        )
        clock = _Clock()  # phases are timed from here: loading the model is not part of any task
        model_fp, fingerprint = provenance.encoder_fingerprints(encoder)
        settings = provenance.encoder_settings(
            encoder, device=device, batch_tokens=batch_tokens, spill=spill
        )
        record = {
            "version": provenance.version(),
            "model": {
                "name": encoder.name,
                "revision": encoder.revision,
                "model_fingerprint": model_fp,
                "fingerprint": fingerprint,
            },
            "settings": settings,
        }
        out_dir = model_result_dir(
            output_folder,
            encoder.name,
            provenance.revision_folder_name(encoder.revision, model_fp),
        )
        if dist.is_main:
            out_dir = _folder_of_model(out_dir, model_fp)
        if dist.is_distributed:
            out_dir = dist.broadcast_object(out_dir)

        def reuse_problem(meta: TaskMetadata, result: TaskResult) -> str | None:
            return provenance.reuse_problem(
                result.provenance,
                model_fingerprint=model_fp,
                fingerprint=fingerprint,
                settings=settings,
                meta=meta,
                data_dir=data_dir,
            )

        outcome = _Outcome()
        pending = _plan(metas, out_dir, overwrite, outcome, dist, reuse_problem)
        if pending:
            run = PreparedRun.load(
                encoder,
                pending,
                data_dir=data_dir,
                cache_dir=cache_dir,
                progress=progress,
                clock=clock,
                spill=spill,
            )
            _agree_on_loaded_tasks(run, dist, cache_dir, progress)
            outcome.failures.extend(run.failures)
            if run.tasks:
                try:
                    run.embed()
                    run.release_pool()
                    run_settings = {
                        "device": device,
                        "dtype": dtype,
                        "batch_tokens": batch_tokens,
                        "encoder_fingerprint": fingerprint,
                        "model_fingerprint": model_fp,
                    }
                    if partial:  # tasks evaluated on the subsets/splits data_dir holds
                        run_settings["partial_local_data"] = partial
                    if spill:
                        run_settings["max_embedding_memory"] = spill["max_embedding_memory"]
                        run_settings["spill_dtype"] = spill["spill_dtype"]
                    _write_results(
                        run, encoder, out_dir, run_settings, progress, outcome, dist, record
                    )
                finally:
                    if _is_spilled(run.embeddings):
                        run.embeddings.close()  # deletes the spill file now, not when GC finds it

        _finish_extras(
            extras, encoder, out_dir, outcome,
            overwrite=overwrite, cache_dir=cache_dir, progress=progress, dist=dist,
        )
        dist.barrier()
        names = [*(meta.name for meta in metas), *extras.names()]
        order = {name: i for i, name in enumerate(names)}
        run_results = RunResults(
            (outcome.results[name] for name in names if name in outcome.results),
            failures=sorted(outcome.failures, key=lambda f: order[f.task_name]),
            skipped=outcome.skipped,
            output_dir=out_dir,
            reevaluated=outcome.reevaluated,
        )
        if dist.is_distributed:  # every rank returns what rank 0 wrote
            run_results = _from_main_rank(dist, run_results)
    if run_results.failures and raise_error:
        error = TaskFailedError(run_results)
        if len(run_results.failures) == 1 and run_results.failures[0].exception is not None:
            raise error from run_results.failures[0].exception
        raise error
    return run_results


def _spill_settings(
    max_embedding_memory: int | str | None,
    cache_dir: str | os.PathLike[str] | None,
    output_folder: str | os.PathLike[str],
    spill_dtype: str = "float32",
) -> dict[str, Any]:
    """``TextPool`` keywords for a memory limit (validated now, before any work); {} for none."""
    from fastmteb.encoding.store import parse_memory_size
    from fastmteb.encoding.store import spill_dtype as checked_spill_dtype

    limit = parse_memory_size(max_embedding_memory)
    dtype = checked_spill_dtype(spill_dtype).name
    if limit is None:
        if dtype != "float32":
            raise ValueError(
                f"spill_dtype={spill_dtype!r} only applies past a memory limit: also pass "
                "max_embedding_memory (e.g. '2GB'; CLI: --max-embedding-memory 2GB), or drop spill_dtype"
            )
        return {}
    folder = Path(cache_dir if cache_dir is not None else output_folder) / ".fastmteb-spill"
    return {"max_embedding_memory": limit, "spill_dir": folder, "spill_dtype": dtype}


@dataclass
class _Outcome:
    results: dict[str, TaskResult] = field(default_factory=dict)
    failures: list[TaskFailure] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    reevaluated: dict[str, str] = field(default_factory=dict)


def _recorded_model_fingerprint(path: Path) -> str | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data[provenance.PROVENANCE_KEY]["model"]["model_fingerprint"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _folder_of_model(out_dir: Path, model_fp: str) -> Path:
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


def _plan(
    metas: Sequence[TaskMetadata],
    out_dir: Path,
    overwrite: bool,
    outcome: _Outcome,
    dist: Distributed | None = None,
    reuse_problem: Callable[[TaskMetadata, TaskResult], str | None] | None = None,
) -> list[tuple[TaskMetadata, TaskResult | None, list[tuple[str, str]]]]:
    """Read back finished tasks; the others with their earlier result and missing pairs.

    Distributed: rank 0 alone reads the output folder (other machines may not see it) and every
    rank evaluates the (split, subset) pairs it chose, so that all build the same text pool.
    """
    if dist is not None and dist.is_distributed:
        chosen = None
        if dist.is_main:
            pending = _plan(metas, out_dir, overwrite, outcome, None, reuse_problem)
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


def _load_all(
    pending: Sequence[tuple[TaskMetadata, TaskResult | None, Sequence[tuple[str, str]]]],
    pool: Any,
    data_dir: Any,
    clock: _Clock,
    progress: bool,
    outcome: _Outcome,
    raw_transform: RawTransform | None = None,
) -> list[_Task]:
    """Load and prepare every pending task and add its texts to the pool; failures are recorded."""
    loaded = []
    for meta, earlier, todo in _progress(pending, "Loading tasks", progress):
        try:
            task = _load_task(meta, todo, data_dir, clock, raw_transform)
            _run_phase("requests", _add_to_pool, task, pool)
        except _TaskError as e:
            outcome.failures.append(_failure(meta.name, e.phase, e.cause))
            continue
        task.earlier = earlier
        loaded.append(task)
    return loaded


def _write_results(
    run: PreparedRun,
    encoder: Encoder,
    out_dir: Path,
    settings: Mapping[str, Any],
    progress: bool,
    outcome: _Outcome,
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
    only = None if main else _scored_on_every_rank
    for meta, result in run.scored(progress=progress, release=True, only=only):
        name = meta.name
        if distributed and _scored_on_every_rank(meta):
            result = _agree_on_result(dist, meta, result)
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
            outcome.failures.append(_failure(name, "write", e))
            continue
        outcome.results[name] = result


# ---------------------------------------------------------------------------------------------
# torch.distributed (fastmteb.distributed): every rank runs evaluate, rank 0 writes

def _scored_on_every_rank(meta: TaskMetadata) -> bool:
    """Retrieval-family tasks search with retrieval.search, which shards the corpus over the
    ranks: every rank must score them, in the same order."""
    return bool(getattr(_get_task_type(meta.type), "retrieval", False))


def _distributed_context(
    model: Any, device: str | None, enabled: bool | None, backend: str | None
) -> Distributed:
    from fastmteb.distributed import Distributed

    if _is_encoder(model):  # a ready encoder already sits on its device
        device = getattr(model, "device", device)
    return Distributed.from_env(device=device, backend=backend, enabled=enabled)


def _use_distributed(dist: Distributed) -> Any:
    from fastmteb.distributed import use

    return use(dist)


def _agree_on_loaded_tasks(
    run: PreparedRun, dist: Distributed, cache_dir: Any, progress: bool
) -> None:
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
                    _failure(name, phase, PeerRankError(f"on rank {rank}: {error}"))
                )
    if any(failures for _, failures in reports):
        # rebuilt from the kept tasks alone: a task that failed while adding its texts may have
        # left some in this rank's pool
        run.tasks = [task for task in run.tasks if task.meta.name in everywhere]
        run.rebind(run.encoder, cache_dir=cache_dir, progress=progress)


def _agree_on_result(
    dist: Distributed, meta: TaskMetadata, result: TaskResult | TaskFailure
) -> TaskResult | TaskFailure:
    """A task scored on every rank succeeds only if it succeeded on all of them."""
    from fastmteb.distributed import PeerRankError

    reports = dist.all_gather_object(result.error if isinstance(result, TaskFailure) else None)
    if isinstance(result, TaskFailure):
        return result
    for rank, report in enumerate(reports):
        if report is not None:
            return _failure(meta.name, "score", PeerRankError(f"on rank {rank}: {report}"))
    return result


def _from_main_rank(dist: Distributed, run_results: RunResults) -> RunResults:
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
