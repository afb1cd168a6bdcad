"""Which tasks fastmteb runs: every mteb task it can score, read from mteb, plus its own few.

mteb's task objects are the source of truth for what a task is (``fastmteb.tasks.mteb_adapter``):
``get_task("SciFact")`` builds fastmteb's ``TaskMetadata`` from ``mteb.get_task("SciFact")``, and
``get_benchmark("MTEB(eng, v2)")`` from ``mteb.get_benchmark`` with the benchmark's subset/split
narrowing. This module holds only what mteb lacks:

* ``FASTMTEB_TASKS``: tasks that are not mteb's (the derived ``SciFactReranking``);
* ``BENCHMARKS``: fastmteb's own benchmarks (the bundled ``fastmteb-mini``) with their narrowing.

``TASKS`` is a read-only mapping over both (looking a name up imports mteb only for mteb's
tasks; iterating it lists every runnable task). mteb is imported lazily, and the derived metadata
is kept in an on-disk cache keyed by the mteb version and the adapter's source
(``FASTMTEB_CATALOGUE_CACHE``: a folder, or ``0`` to turn the cache off), so a run of the bundled
benchmark does not pay mteb's import time.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastmteb.tasks.base import TaskMetadata

__all__ = [
    "BENCHMARKS",
    "FASTMTEB_TASKS",
    "TASKS",
    "UnknownTaskError",
    "coverage",
    "get_benchmark",
    "get_task",
    "get_tasks",
    "narrow",
]

logger = logging.getLogger("fastmteb")


class UnknownTaskError(ValueError):
    """A task or benchmark name that neither mteb nor fastmteb knows, or one it cannot run."""


# Not an mteb task: built from the local SciFact test split because no reranking data could be
# obtained (see data/derived/SciFactReranking/README.md). The mteb baseline scored it with
# mteb's AskUbuntuDupQuestions class (type Reranking, map_at_1000) after
# AbsTaskReranking.transform_old_dataset_format, so it takes AskUbuntuDupQuestions' settings.
_SCIFACT_RERANKING = TaskMetadata(
    name="SciFactReranking",
    type="Reranking",
    hf_path="mteb/scifact",
    hf_revision="d56462d0e63a25450459c4f213e49ffdb866f7f9",
    main_score="map_at_1000",
    eval_splits=("test",),
    hf_subsets=("default",),
    languages={"default": ("eng-Latn",)},
    multilingual=False,
    prompt=None,
    license="cc-by-nc-4.0",
    local_dir="derived/SciFactReranking",
    transform=None,
    params={
        "ignore_identical_ids": False,
        "k_values": (1, 3, 5, 10, 20, 100, 1000),
        "skip_first_result": False,
        "abstask_prompt": "Retrieve text based on user query.",
        "old_format": True,
        "local_only": True,
    },
    description=(
        "Derived (not in mteb): SciFact test claims reranked against their qrels documents "
        "plus the 19 best BM25 negatives."
    ),
    reference=None,
    mteb_task=False,
)


FASTMTEB_TASKS: dict[str, TaskMetadata] = {_SCIFACT_RERANKING.name: _SCIFACT_RERANKING}

_BUNDLED_MINI = (
    "SciFact",
    "SciFactReranking",
    "Banking77Classification",
    "AmazonCounterfactualClassification",
    "SIB200Classification",
    "SIB200ClusteringS2S",
    "SICK-R",
    "SummEvalSummarization.v2",
    "Tatoeba",
)

BENCHMARKS: dict[str, tuple[str, ...]] = {"fastmteb-mini": _BUNDLED_MINI}

# Per-benchmark narrowing of a task's splits/subsets, as mteb's benchmark objects do.
_BENCHMARK_SELECTIONS: dict[str, dict[str, dict[str, tuple[str, ...]]]] = {
    "fastmteb-mini": {
        "AmazonCounterfactualClassification": {"eval_splits": ("test",), "hf_subsets": ("en",)},
        "SIB200Classification": {"hf_subsets": ("eng_Latn",)},
        "SIB200ClusteringS2S": {"hf_subsets": ("eng_Latn",)},
        "Tatoeba": {"hf_subsets": ("deu-eng", "fra-eng", "spa-eng", "cmn-eng")},
    },
}


# --------------------------------------------------------------------------- mteb access


@lru_cache(maxsize=1)
def _mteb() -> Any:
    import mteb

    return mteb


@lru_cache(maxsize=1)
def _mteb_text_tasks() -> tuple[Any, ...]:
    """mteb's text-only tasks, superseded ones included (MTEB(eng, v2) still uses some, e.g.
    Banking77Classification): ``mteb.get_tasks(modalities=["text"],
    exclusive_modality_filter=True, exclude_superseded=False)``."""
    return tuple(
        _mteb().get_tasks(
            modalities=["text"], exclusive_modality_filter=True, exclude_superseded=False
        )
    )


@lru_cache(maxsize=1)
def coverage() -> tuple[dict[str, TaskMetadata], dict[str, str]]:
    """(runnable mteb text tasks by name, {unsupported task: reason}), over mteb's text tasks."""
    cached = _CACHE.get("coverage")
    if cached is not None:
        return {n: _from_json(d) for n, d in cached["runnable"].items()}, dict(
            cached["unsupported"]
        )
    from fastmteb.tasks.mteb_adapter import metadata_from_task, unsupported_reason

    runnable: dict[str, TaskMetadata] = {}
    unsupported: dict[str, str] = {}
    for task in _mteb_text_tasks():
        reason = unsupported_reason(task)
        if reason is None:
            runnable[task.metadata.name] = metadata_from_task(task)
        else:
            unsupported[task.metadata.name] = reason
    _CACHE.put(
        "coverage",
        {"runnable": {n: _to_json(m) for n, m in runnable.items()}, "unsupported": unsupported},
    )
    return runnable, unsupported


# --------------------------------------------------------------------------- on-disk cache


def _cache_file() -> Path | None:
    setting = os.environ.get("FASTMTEB_CATALOGUE_CACHE")
    if setting == "0":
        return None
    try:
        from importlib.metadata import version

        mteb_version = version("mteb")
    except Exception:  # noqa: BLE001 - no mteb installed: nothing to cache
        return None
    here = Path(__file__).parent  # the code that derives and (de)serialises the entries
    sources = b"".join(
        # the adapter asks every type module (mteb_params, ...), so all of them are in the key
        path.read_bytes() for path in sorted(here.glob("*.py"))
    )
    key = hashlib.sha256(sources).hexdigest()[:12]
    root = (
        Path(setting)
        if setting
        else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "fastmteb"
    )
    return root / f"catalogue-mteb{mteb_version}-{key}.json"


def _to_json(meta: TaskMetadata) -> dict[str, Any]:
    d = asdict(meta)
    d["languages"] = {k: list(v) for k, v in meta.languages.items()}
    return d


def _from_json(d: dict[str, Any]) -> TaskMetadata:
    d = dict(d)
    d["eval_splits"] = tuple(d["eval_splits"])
    d["hf_subsets"] = tuple(d["hf_subsets"])
    d["languages"] = {k: tuple(v) for k, v in d["languages"].items()}
    d["params"] = {k: tuple(v) if isinstance(v, list) else v for k, v in d["params"].items()}
    return TaskMetadata(**d)


class _DiskCache:
    """{"task:NAME": metadata, "benchmark:NAME": [[task, splits, subsets], ...]} in one JSON file."""

    def __init__(self) -> None:
        self._path: Path | None = None
        self._data: dict[str, Any] | None = None

    def _load(self) -> dict[str, Any]:
        if self._data is None:
            self._path = _cache_file()
            self._data = {}
            if self._path is not None and self._path.is_file():
                try:
                    self._data = json.loads(self._path.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    self._data = {}
        return self._data

    def get(self, key: str) -> Any:
        return self._load().get(key)

    def put(self, key: str, value: Any) -> None:
        data = self._load()
        data[key] = value
        if self._path is None:
            return
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self._path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(data), encoding="utf-8")
            os.replace(tmp, self._path)
        except OSError:  # a read-only home: the cache is only an optimisation
            pass


_CACHE = _DiskCache()


# --------------------------------------------------------------------------- lookups


def _is_mteb_task(obj: Any) -> bool:
    return hasattr(obj, "metadata") and hasattr(obj, "hf_subsets") and hasattr(obj, "eval_splits")


def _is_mteb_benchmark(obj: Any) -> bool:
    return hasattr(obj, "tasks") and hasattr(obj, "name") and not isinstance(obj, str)


def _from_mteb_object(task: Any) -> TaskMetadata:
    from fastmteb.tasks.mteb_adapter import UnsupportedTaskError, metadata_from_task

    try:
        return metadata_from_task(task)
    except UnsupportedTaskError as exc:
        raise UnknownTaskError(f"fastmteb cannot run {exc}") from None


def _mteb_task_meta(name: str) -> TaskMetadata:
    cached = _CACHE.get(f"task:{name}") or (_CACHE.get("coverage") or {}).get("runnable", {}).get(
        name
    )
    if cached is not None:
        return _from_json(cached)
    try:
        task = _mteb().get_task(name)
    except KeyError:
        raise _unknown(
            "task", name, [*FASTMTEB_TASKS, *(t.metadata.name for t in _mteb_text_tasks())]
        ) from None
    meta = _from_mteb_object(task)
    _CACHE.put(f"task:{name}", _to_json(meta))
    return meta


def get_task(task: str | TaskMetadata | Any) -> TaskMetadata:
    """Metadata of one task: an mteb task name (mteb's spelling), a fastmteb-only task name, an
    mteb task object (its narrowing kept) or a ``TaskMetadata``. Unknown names and tasks fastmteb
    cannot run raise ``UnknownTaskError`` (a ValueError) saying why."""
    if isinstance(task, TaskMetadata):
        from fastmteb.tasks.types import get_task_type

        get_task_type(task.type)  # an unknown type fails here, naming close matches
        return task
    if isinstance(task, str):
        if task in FASTMTEB_TASKS:
            return FASTMTEB_TASKS[task]
        return _mteb_task_meta(task)
    if _is_mteb_task(task):
        return _from_mteb_object(task)
    raise TypeError(
        f"tasks: expected task names, mteb task objects or TaskMetadata, "
        f"got {type(task).__name__}: {task!r}"
    )


def _check_types(types: Iterable[str]) -> set[str]:
    from fastmteb.tasks.types import TASK_TYPES

    wanted = set(types)
    unknown_types = wanted - set(TASK_TYPES)
    if unknown_types:
        raise ValueError(
            f"unknown task type(s) {sorted(unknown_types)}; expected some of {TASK_TYPES}"
        )
    return wanted


def get_tasks(
    names: Iterable[str | TaskMetadata | Any] | None = None,
    *,
    types: Iterable[str] | None = None,
) -> list[TaskMetadata]:
    """Tasks by name or object (given order; every runnable task when None), optionally only
    some types."""
    if names is None:
        selected = [*FASTMTEB_TASKS.values(), *coverage()[0].values()]
    else:
        selected = [get_task(n) for n in names]
    if types is not None:
        wanted = _check_types(types)
        selected = [m for m in selected if m.type in wanted]
    return selected


def benchmark_tasks(benchmark: str | Any) -> tuple[list[TaskMetadata], dict[str, str]]:
    """(runnable tasks of a benchmark, narrowed as the benchmark narrows them, {skipped: reason})."""
    from fastmteb.tasks.mteb_adapter import unsupported_reason

    if isinstance(benchmark, str) and benchmark in BENCHMARKS:
        selections = _BENCHMARK_SELECTIONS.get(benchmark, {})
        out = []
        for task_name in BENCHMARKS[benchmark]:
            meta = get_task(task_name)
            narrowed = selections.get(task_name, {})
            out.append(
                meta.narrowed(
                    narrowed.get("eval_splits", meta.eval_splits),
                    narrowed.get("hf_subsets", meta.hf_subsets),
                )
            )
        return out, {}
    if isinstance(benchmark, str):
        cached = _CACHE.get(f"benchmark:{benchmark}")
        if cached is not None:
            metas = [
                get_task(n).narrowed(splits, subsets) for n, splits, subsets in cached["tasks"]
            ]
            return metas, dict(cached["skipped"])
        try:
            bench = _mteb().get_benchmark(benchmark)
        except KeyError:
            names = [*BENCHMARKS, *(b.name for b in _mteb().get_benchmarks())]
            raise _unknown("benchmark", benchmark, names) from None
    elif _is_mteb_benchmark(benchmark):
        bench = benchmark
    else:
        raise TypeError(f"benchmark: expected a name or an mteb.Benchmark, got {benchmark!r}")
    metas, skipped, entries = [], {}, []
    for task in bench.tasks:
        reason = unsupported_reason(task)
        if reason is not None:
            skipped[task.metadata.name] = reason
            continue
        meta = (
            get_task(task.metadata.name) if isinstance(benchmark, str) else _from_mteb_object(task)
        )
        meta = meta.narrowed(tuple(task.eval_splits), tuple(task.hf_subsets))
        metas.append(meta)
        entries.append([meta.name, list(meta.eval_splits), list(meta.hf_subsets)])
    if isinstance(benchmark, str):
        _CACHE.put(f"benchmark:{benchmark}", {"tasks": entries, "skipped": skipped})
    return metas, skipped


def get_benchmark(benchmark: str | Any) -> list[TaskMetadata]:
    """The runnable tasks of a benchmark (any mteb benchmark name or alias, an ``mteb.Benchmark``,
    or fastmteb's "fastmteb-mini"), in the benchmark's order, narrowed to its splits/subsets exactly
    as mteb narrows them. Tasks fastmteb cannot run are left out with a warning naming them."""
    from fastmteb.tasks.mteb_adapter import evaluate_runs_beside

    metas, skipped = benchmark_tasks(benchmark)
    # aggregates and mteb-evaluator tasks: fastmteb.evaluate runs them beside these (run_extras)
    extra = {name: why for name, why in skipped.items() if evaluate_runs_beside(why)}
    if extra:
        logger.info(
            "%s: fastmteb.evaluate also runs %s (not part of a prepared run or training callback)",
            getattr(benchmark, "name", benchmark),
            "; ".join(f"{name} ({why})" for name, why in extra.items()),
        )
    skipped = {name: why for name, why in skipped.items() if name not in extra}
    if skipped:
        logger.warning(
            "%s: %d task(s) fastmteb cannot run are left out: %s",
            getattr(benchmark, "name", benchmark),
            len(skipped),
            "; ".join(f"{name} ({why})" for name, why in skipped.items()),
        )
    return metas


def _langs_match(langscripts: Sequence[str], languages: Sequence[str]) -> bool:
    for langscript in langscripts:
        lang = langscript.split("-")[0]
        if langscript in languages or lang in languages:
            return True
    return False


def narrow(
    meta: TaskMetadata,
    *,
    eval_splits: Sequence[str] | None = None,
    hf_subsets: Sequence[str] | None = None,
    languages: Sequence[str] | None = None,
) -> TaskMetadata | None:
    """``meta`` with only the given splits / subsets / languages (mteb's ``filter_eval_splits``
    and non-exclusive ``filter_languages``: a subset stays when any of its languages is listed, as
    ``eng`` or ``eng-Latn``); None when nothing of the task is left."""
    splits = list(meta.eval_splits)
    if eval_splits is not None:
        splits = [s for s in splits if s in eval_splits]
    subsets = list(meta.hf_subsets)
    if hf_subsets is not None:
        subsets = [s for s in subsets if s in hf_subsets]
    if languages is not None:
        subsets = [s for s in subsets if _langs_match(meta.languages.get(s, ()), languages)]
    if not splits or not subsets:
        return None
    return meta.narrowed(splits, subsets)


class _Catalogue(Mapping[str, TaskMetadata]):
    """Every task fastmteb can run, by name: its own and mteb's (looked up lazily)."""

    def __getitem__(self, name: str) -> TaskMetadata:
        if name in FASTMTEB_TASKS:
            return FASTMTEB_TASKS[name]
        try:
            return coverage()[0][name]  # no error building (suggestions) for a miss
        except ImportError:
            raise KeyError(name) from None

    def __iter__(self) -> Iterator[str]:
        yield from FASTMTEB_TASKS
        yield from coverage()[0]

    def __len__(self) -> int:
        return len(FASTMTEB_TASKS) + len(coverage()[0])

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in FASTMTEB_TASKS or name in coverage()[0])


TASKS: Mapping[str, TaskMetadata] = _Catalogue()


def _unknown(kind: str, name: str, known: Iterable[str]) -> UnknownTaskError:
    known = list(known)
    close = difflib.get_close_matches(name, known, n=5, cutoff=0.5)
    lowered = [k for k in known if k.lower() == name.lower()]
    hint = lowered or close
    suggestion = f" Did you mean: {', '.join(hint)}?" if hint else ""
    return UnknownTaskError(
        f"unknown {kind} {name!r}.{suggestion} "
        f"`fastmteb tasks` lists the {len(known)} known {kind}s."
    )
