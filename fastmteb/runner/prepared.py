"""The prepared run: tasks loaded and prepared once, their texts in one pool; then encode and score.

``evaluate`` runs it once and writes the results; a training callback (``fastmteb.callbacks``) keeps
one and re-encodes and re-scores it after each weight update, so both go through the same code.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fastmteb import provenance
from fastmteb.results import MTEB_COMPAT_VERSION, TaskResult, to_builtin
from fastmteb.runner.agreement import scored_on_every_rank
from fastmteb.runner.collaborators import Collaborators
from fastmteb.runner.outcome import Outcome, TaskFailure, failure

if TYPE_CHECKING:
    from fastmteb.distributed import Distributed
    from fastmteb.encoding.base import Encoder
    from fastmteb.runner.resume import Pending
    from fastmteb.tasks.base import TaskMetadata

__all__ = ["Clock", "PreparedRun", "RawTransform"]

# ``raw_transform(meta, raw, split, subset) -> raw``: applied to what the loader returns, before
# ``prepare`` (e.g. a callback's fixed subsample).
RawTransform = Callable[["TaskMetadata", Any, str, str], Any]


# ---------------------------------------------------------------------------------------------
# Per-task state


class Clock:
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


def _run_phase(phase: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
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
    clock: Clock,
    collaborators: Collaborators,
    raw_transform: RawTransform | None = None,
) -> _Task:
    """Load and prepare the (split, subset) pairs in ``todo``; raw rows go once prepared."""
    start = clock.now()
    task_type = _run_phase("load", collaborators.get_task_type, meta.type)
    units: list[_Unit] = []
    phases: list[dict[str, Any]] = []
    files_read: list[Path] = []
    for split, subset in todo:
        t0 = clock.now()
        with provenance.record_reads() as read:
            raw = _run_phase(
                "load", collaborators.load_raw, meta, subset, split, data_dir=data_dir
            )
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
    from fastmteb.encoding.base import EncodeContext  # imports torch: not at ``import fastmteb``

    meta = task.meta
    for unit in task.units:
        requests = unit.requests
        if requests is None:
            requests = task.task_type.requests(unit.prepared)
            requests = _check_requests(meta, unit.split, unit.subset, requests)
        for name, request in requests.items():
            ctx = EncodeContext(
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


def _score_unit(
    task: _Task, unit: _Unit, embeddings: np.ndarray, communicator: Distributed | None = None
) -> dict[str, Any]:
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
    if scored_on_every_rank(task.task_type):  # its search is split over the run's ranks
        scores = task.task_type.score(meta, unit.prepared, per_request, communicator=communicator)
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
    clock: Clock,
    encode_phase: dict[str, Any],
    encode_share: float,
    *,
    communicator: Distributed | None = None,
) -> TaskResult:
    start = clock.now()
    new_entries: dict[tuple[str, str], dict[str, Any]] = {}
    phases = [*task.phases, encode_phase]
    for unit in task.units:
        t0 = clock.now()
        new_entries[(unit.split, unit.subset)] = _run_phase(
            "score", _score_unit, task, unit, embeddings, communicator
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


def _is_spilled(embeddings: Any) -> bool:
    """True for the lazy rows of a pool past ``max_embedding_memory`` (read from its spill file)."""
    from fastmteb.encoding.store import RowView

    return isinstance(embeddings, RowView)



def _progress(iterable: Sequence[Any], desc: str, enabled: bool) -> Any:
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, unit="task", leave=False)


def _load_all(
    pending: Sequence[Pending],
    pool: Any,
    data_dir: Any,
    clock: Clock,
    progress: bool,
    outcome: Outcome,
    collaborators: Collaborators,
    raw_transform: RawTransform | None = None,
) -> list[_Task]:
    """Load and prepare every pending task and add its texts to the pool; failures are recorded."""
    loaded = []
    for meta, earlier, todo in _progress(pending, "Loading tasks", progress):
        try:
            task = _load_task(meta, todo, data_dir, clock, collaborators, raw_transform)
            _run_phase("requests", _add_to_pool, task, pool)
        except _TaskError as e:
            outcome.failures.append(failure(meta.name, e.phase, e.cause))
            continue
        task.earlier = earlier
        loaded.append(task)
    return loaded


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
        clock: Clock,
        *,
        collaborators: Collaborators,
        pool_settings: Mapping[str, Any] | None = None,
        communicator: Distributed | None = None,
    ) -> None:
        self.encoder = encoder
        self.pool = pool
        self.tasks = tasks
        self.failures = failures
        self.clock = clock
        self.collaborators = collaborators
        # collaborators.make_pool's keywords: cache_dir, progress, fingerprint, communicator, spill
        self.pool_settings = dict(pool_settings or {})
        # the ranks a retrieval search is split over (None: this process alone)
        self.communicator = communicator
        self.embeddings: np.ndarray | None = None
        self.encode_phase: dict[str, Any] | None = None

    @classmethod
    def load(
        cls,
        encoder: Encoder,
        pending: Sequence[Pending],
        *,
        collaborators: Collaborators,
        data_dir: str | os.PathLike[str] | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        progress: bool = True,
        raw_transform: RawTransform | None = None,
        clock: Clock | None = None,
        spill: Mapping[str, Any] | None = None,
        fingerprint: str | None = None,
        communicator: Distributed | None = None,
    ) -> PreparedRun:
        """Load and prepare ``(meta, earlier result, (split, subset) pairs)`` and fill one pool.

        ``spill``: ``TextPool`` keywords ``max_embedding_memory``, ``spill_dir`` and
        ``spill_dtype`` (none: no limit). ``fingerprint``: ``encoder.fingerprint`` when the caller
        has it already (the weights do not change before ``embed``): the disk cache takes it
        instead of hashing the weights again. ``communicator``: the ranks of a torchrun run, which
        split each retrieval search (``fastmteb.kernels.sharded_topk``); None: one process.
        """
        clock = clock if clock is not None else Clock()
        settings = {
            "cache_dir": cache_dir,
            "progress": progress,
            "fingerprint": fingerprint,
            "communicator": communicator,
        }
        settings.update(spill or {})
        pool = collaborators.make_pool(encoder, **settings)
        outcome = Outcome()
        loaded = _load_all(
            pending, pool, data_dir, clock, progress, outcome, collaborators, raw_transform
        )
        collaborators.release_loader_data()
        return cls(
            encoder,
            pool,
            loaded,
            outcome.failures,
            clock,
            collaborators=collaborators,
            pool_settings=settings,
            communicator=communicator,
        )

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
        self.pool_settings.update(cache_dir=cache_dir, progress=progress, fingerprint=None)
        self.rebuild_pool()

    def rebuild_pool(self) -> None:
        """A new pool (same encoder and settings) gets the texts of ``tasks`` alone, e.g. once
        some tasks were dropped; nothing is encoded yet."""
        self.pool = self.collaborators.make_pool(self.encoder, **self.pool_settings)
        for task in self.tasks:
            _add_to_pool(task, self.pool)
        self.embeddings = self.encode_phase = None

    def tokenize(self) -> int:
        """Tokenize every pooled text now (``embed`` would do it on its first call); returns how
        many texts were tokenized."""
        if self.pool is None:
            raise RuntimeError("this PreparedRun released its text pool; prepare a new one")
        return self.pool.tokenize_all()

    def embed(self, *, reencode: bool = False, resident: bool | None = None) -> Any:
        """Encode every text not encoded yet (all with ``reencode``); float32 [pool, dim]: a numpy
        array, a torch tensor on the encoder's device when ``resident`` (None: auto, see
        ``TextPool.embeddings``), or a lazy ``RowView`` of the spill file when the pool is past
        ``max_embedding_memory``. Each task type's ``score`` gets its requests' rows of it."""
        if self.pool is None:
            raise RuntimeError("this PreparedRun released its text pool; prepare a new one")
        if reencode:
            self.pool.reset_embeddings()
        t0 = self.clock.now()
        self.embeddings = self.pool.embeddings(resident=resident)
        self.encode_phase = self.clock.phase("Encoding", t0, self.clock.now())
        costs = self.pool.encode_costs()
        for task in self.tasks:
            task.encode_cost = int(
                sum(costs[indices].sum() for unit in task.units for indices in unit.indices.values())
            )
        return self.embeddings

    @property
    def embeddings_device(self) -> str | None:
        """Where the last ``embed()`` left the vectors: the torch device of a resident run
        (e.g. ``"cuda:0"``), None for host arrays (numpy, a spill file)."""
        import torch

        if isinstance(self.embeddings, torch.Tensor):
            return str(self.embeddings.device)
        return None

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
                    task, self.embeddings, self.clock, self.encode_phase, share,
                    communicator=self.communicator,
                )
            except _TaskError as e:
                yield task.meta, failure(task.meta.name, e.phase, e.cause)
            finally:
                if release:
                    task.units = []  # free the prepared data as soon as the task is done
