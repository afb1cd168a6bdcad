"""Result files in mteb's layout and schema; aggregation over tasks and task types; tables.

A result file is what ``mteb.TaskResult.to_disk`` writes (mteb 2.26.24, results/task_result.py)::

    {output}/{org}__{model}/{revision}/{TaskName}.json
    {"dataset_revision", "task_name", "mteb_version",
     "scores": {split: [{<metric>: value, ..., "main_score", "hf_subset", "languages",
                         "mteb_version"}]},
     "evaluation_time", "kg_co2_emissions", "date", "evaluation_phases"}

Floats inside ``scores`` are rounded to 6 decimals on disk, NaN is written as ``NaN`` and the
file is indented by 2, so ``mteb.TaskResult.from_disk`` and mteb's ``ResultCache`` read our
files unchanged. A last key, ``"fastmteb"``, records where the result came from (model
fingerprint, settings, data source and hashes; see ``fastmteb.provenance``); mteb's pydantic
``TaskResult`` ignores it.

A task mteb does not have (``TaskMetadata.mteb_task`` False, e.g. SciFactReranking) is written to
``{revision}/fastmteb-only/{TaskName}.json``: mteb's ``ResultCache`` globs ``*/*/*.json`` and
its ``load_results`` ``{revision}/*.json``, so neither sees it (mteb would raise ``KeyError`` on
the unknown task name when validating); fastmteb's ``load_results`` reads both places.
Files are written atomically (temporary file in the same folder, fsync, ``os.replace``): a crash
leaves either the previous file or none, never a partial one.
"""

from __future__ import annotations

import copy
import json
import math
import os
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fastmteb.paths import UnsafePathError, safe_path_component

if TYPE_CHECKING:
    from rich.table import Table

    from fastmteb.tasks.base import TaskMetadata

#: The mteb release whose scores and file format fastmteb reproduces; written as ``mteb_version``.
MTEB_COMPAT_VERSION = "2.26.24"
#: Decimals kept for every float in ``scores`` when a result is written (mteb's ``to_disk``).
SCORE_DECIMALS = 6
MODEL_META_FILE = "model_meta.json"
NO_REVISION = "no_revision_available"
#: Sub-folder of a revision folder holding the results of tasks mteb does not know.
FASTMTEB_ONLY_DIR = "fastmteb-only"
PROVENANCE_KEY = "fastmteb"
#: Where result files go: named in the error for a model, revision or task name unfit for a path.
_OUTPUT_FOLDER = (
    "the output folder (results are written to <output>/<org>__<model>/<revision>/<task>.json)"
)
_TMP_SUFFIX = ".tmp"  # never ".json": half-written files must not look like results to any reader


class ResultFileError(ValueError):
    """A result file not in mteb's TaskResult schema (the message names the file and field)."""


# ---------------------------------------------------------------------------------------------
# Writing files


def model_name_as_path(name: str) -> str:
    """Folder name of a model in mteb's layout: "/" becomes "__" and " " becomes "_".

    A name that would still leave the output folder (".", "..", a backslash, a control character)
    raises ``UnsafePathError``.
    """
    if not isinstance(name, str):
        raise UnsafePathError(f"model name {name!r} is a {type(name).__name__}, not a string")
    folder = name.replace("/", "__").replace(" ", "_")
    return safe_path_component(folder, "model name", inside=_OUTPUT_FOLDER)


def model_result_dir(
    output_folder: str | os.PathLike[str], model_name: str, revision: str | None
) -> Path:
    """``{output_folder}/{org}__{model}/{revision}``, the folder mteb's ``ResultCache`` reads.

    Model name and revision are checked with ``safe_path_component``: the folder is always
    inside ``output_folder``.
    """
    return (
        Path(output_folder)
        / model_name_as_path(model_name)
        / safe_path_component(revision or NO_REVISION, "model revision", inside=_OUTPUT_FOLDER)
    )


def task_result_path(
    folder: str | os.PathLike[str], task_name: str, *, mteb_task: bool = True
) -> Path:
    """``{folder}/{task_name}.json`` (``{folder}/fastmteb-only/{task_name}.json`` for a task mteb
    does not have); a task name that would leave ``folder`` raises ``UnsafePathError``."""
    name = f"{safe_path_component(task_name, 'task name', inside=_OUTPUT_FOLDER)}.json"
    return Path(folder) / name if mteb_task else Path(folder) / FASTMTEB_ONLY_DIR / name


def result_path_for(folder: str | os.PathLike[str], meta: TaskMetadata) -> Path:
    """Where the result of ``meta`` goes in a revision folder (see ``task_result_path``)."""
    return task_result_path(folder, meta.name, mteb_task=getattr(meta, "mteb_task", True))


def write_json_atomic(path: str | os.PathLike[str], obj: Any, *, indent: int = 2) -> None:
    """Write ``obj`` as JSON to ``path`` so that readers see the old file, or the complete new one.

    The text goes to a temporary file in the same folder (same file system, so the rename is
    atomic), is flushed and fsynced, then ``os.replace`` moves it over ``path``. On any error, or
    an interrupt, the temporary file is removed and ``path`` is left as it was.
    """
    _write_text_atomic(
        path, json.dumps(obj, indent=indent)
    )  # serialised first: a TypeError leaves no file


def _write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}{_TMP_SUFFIX}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def remove_stale_temporaries(path: str | os.PathLike[str]) -> list[Path]:
    """Delete temporary files of ``path`` left by writers that were killed (SIGKILL, power loss).

    ``_write_text_atomic`` names its temporary ``.{name}.{pid}.{random}.tmp``; one whose process
    no longer exists can never be renamed, so it is removed the next time ``path`` is written.
    Temporaries of live processes (a concurrent writer) are left alone. Returns what was removed.
    """
    path = Path(path)
    removed = []
    for candidate in path.parent.glob(f".{_glob_escape(path.name)}.*{_TMP_SUFFIX}"):
        pid_text = candidate.name[len(path.name) + 2 :].split(".", 1)[0]
        if pid_text.isdigit() and not _process_alive(int(pid_text)):
            try:
                candidate.unlink()
                removed.append(candidate)
            except OSError:
                pass
    return removed


def _glob_escape(name: str) -> str:
    return "".join(f"[{ch}]" if ch in "*?[" else ch for ch in name)


def _process_alive(pid: int) -> bool:
    if pid == os.getpid() or os.name == "nt":  # on Windows os.kill(pid, 0) would terminate it
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists (another user's), or cannot tell: keep the file
    return True


def _fsync_dir(folder: Path) -> None:
    """Persist the rename itself (POSIX); a no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def to_builtin(value: Any) -> Any:
    """Numpy scalars and arrays, tuples and mappings to plain JSON types (recursively)."""
    if isinstance(value, Mapping):
        return {str(k): to_builtin(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_builtin(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_builtin(value.tolist())
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def round_scores(scores: dict[str, Any], decimals: int = SCORE_DECIMALS) -> None:
    """Round floats in place exactly as mteb's ``TaskResult._round_scores`` does.

    Floats that are dict values, and floats and dicts that are list items, are rounded (dicts
    recursively); a list nested directly in a list is left as it is, as in mteb. NaN stays NaN.
    """
    for key, value in scores.items():
        if isinstance(value, dict):
            round_scores(value, decimals)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    round_scores(item, decimals)
                elif isinstance(item, float):
                    value[i] = round(item, decimals)
        elif isinstance(value, float):
            scores[key] = round(value, decimals)


# ---------------------------------------------------------------------------------------------
# TaskResult


@dataclass
class TaskResult:
    """One task's scores, field for field mteb's ``TaskResult`` (``to_dict`` keeps its key order).

    ``scores[split]`` is a list with one dict per hf_subset: the task type's metrics, then
    ``main_score``, ``hf_subset``, ``languages`` and ``mteb_version``. ``date`` is a POSIX
    timestamp. ``task_type`` is not written to disk (mteb does not store it); ``load_results``
    takes it from the task metadata it is given. ``provenance`` is written as the ``"fastmteb"``
    key (None: not written, e.g. a file mteb wrote).
    """

    dataset_revision: str
    task_name: str
    mteb_version: str | None
    scores: dict[str, list[dict[str, Any]]]
    evaluation_time: float | None = None
    kg_co2_emissions: float | None = None
    date: float | None = None
    evaluation_phases: list[dict[str, Any]] | None = None
    task_type: str | None = field(default=None, compare=False)
    provenance: dict[str, Any] | None = field(default=None, compare=False)

    def to_dict(self, *, rounded: bool = False) -> dict[str, Any]:
        """The JSON object of the file; ``rounded=True`` rounds ``scores`` as ``to_disk`` does."""
        obj = {
            "dataset_revision": self.dataset_revision,
            "task_name": self.task_name,
            "mteb_version": self.mteb_version,
            "scores": to_builtin(copy.deepcopy(self.scores)),
            "evaluation_time": to_builtin(self.evaluation_time),
            "kg_co2_emissions": to_builtin(self.kg_co2_emissions),
            "date": to_builtin(self.date),
            "evaluation_phases": to_builtin(self.evaluation_phases),
        }
        if self.provenance is not None:
            obj[PROVENANCE_KEY] = to_builtin(copy.deepcopy(self.provenance))
        if rounded:
            round_scores(obj["scores"])
        return obj

    def to_disk(self, path: str | os.PathLike[str]) -> None:
        """Write the file atomically: scores rounded to 6 decimals, NaN as ``NaN``, indent 2."""
        write_json_atomic(path, self.to_dict(rounded=True))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "result") -> TaskResult:
        """Validate and build; ``source`` (a file name) is used in error messages."""
        if not isinstance(data, Mapping):
            raise ResultFileError(f"{source}: expected a JSON object, got {type(data).__name__}")
        for key in ("task_name", "scores"):
            if key not in data:
                raise ResultFileError(
                    f"{source}: field {key!r} is missing; not an mteb TaskResult file"
                )
        scores = data["scores"]
        if not isinstance(scores, Mapping):
            raise ResultFileError(
                f"{source}: field 'scores' must map split -> list of subset dicts"
            )
        for split, entries in scores.items():
            if not isinstance(entries, list):
                raise ResultFileError(f"{source}: scores[{split!r}] must be a list of subset dicts")
            for i, entry in enumerate(entries):
                where = f"{source}: scores[{split!r}][{i}]"
                if not isinstance(entry, Mapping):
                    raise ResultFileError(f"{where} must be a dict")
                if "main_score" not in entry:
                    raise ResultFileError(f"{where}: field 'main_score' is missing")
                if not isinstance(entry.get("hf_subset"), str):
                    raise ResultFileError(f"{where}: field 'hf_subset' is missing or not a string")
                if not isinstance(entry.get("languages"), list):
                    raise ResultFileError(f"{where}: field 'languages' is missing or not a list")
        return cls(
            dataset_revision=data.get("dataset_revision", ""),
            task_name=data["task_name"],
            mteb_version=data.get("mteb_version"),
            scores={split: [dict(e) for e in entries] for split, entries in scores.items()},
            evaluation_time=data.get("evaluation_time"),
            kg_co2_emissions=data.get("kg_co2_emissions"),
            date=data.get("date"),
            evaluation_phases=data.get("evaluation_phases"),
            provenance=(
                dict(data[PROVENANCE_KEY]) if isinstance(data.get(PROVENANCE_KEY), Mapping) else None
            ),
        )

    @classmethod
    def from_disk(cls, path: str | os.PathLike[str]) -> TaskResult:
        """Read a result file (ours or mteb's); ``task_type`` is left None (not on disk)."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ResultFileError(
                f"{path}: not valid JSON ({e}); delete it or rerun with overwrite"
            ) from e
        return cls.from_dict(data, source=str(path))

    def covers(self, splits: Iterable[str], subsets: Iterable[str]) -> bool:
        """True when every (split, subset) pair has a score entry (resume uses this)."""
        have = {(split, e["hf_subset"]) for split, entries in self.scores.items() for e in entries}
        return all((split, subset) in have for split in splits for subset in subsets)

    def get_score(
        self, splits: Iterable[str] | None = None, subsets: Iterable[str] | None = None
    ) -> float:
        """Mean ``main_score`` over the chosen (split, subset) entries, as mteb's ``get_score``.

        ``score = mean(entry["main_score"] for split in splits for entry in scores[split]
        if entry["hf_subset"] in subsets)``; NaN if an entry is NaN or none is selected.
        """
        wanted = None if subsets is None else set(subsets)
        values = [
            float(entry["main_score"])
            for split in (self.scores if splits is None else splits)
            for entry in self.scores.get(split, [])
            if wanted is None or entry["hf_subset"] in wanted
        ]
        return float(np.mean(values)) if values else math.nan


def _known_meta(
    task_name: str, known_tasks: Mapping[str, TaskMetadata] | None
) -> TaskMetadata | None:
    # not ``known_tasks or {}``: the registry's catalogue would list all of mteb to answer bool()
    return None if known_tasks is None else known_tasks.get(task_name)


def _known_type(task_name: str, known_tasks: Mapping[str, TaskMetadata] | None) -> str | None:
    meta = _known_meta(task_name, known_tasks)
    return None if meta is None else meta.type


def write_model_meta(
    folder: str | os.PathLike[str], *, name: str, revision: str | None, **extra: Any
) -> Path:
    """Write ``model_meta.json`` (mteb ``ModelMeta`` field names) into a revision folder.

    mteb's ``ResultCache.load_results`` takes the model's name and revision from this file.
    ``extra`` may hold other ``ModelMeta`` fields (``embed_dim``, ``similarity_fn_name``...).
    """
    meta = {
        "name": name,
        "revision": revision or NO_REVISION,
        "modalities": ["text"],
        "model_type": ["dense"],
        **{k: to_builtin(v) for k, v in extra.items()},
    }
    path = Path(folder) / MODEL_META_FILE
    write_json_atomic(path, meta, indent=4)
    return path


RUN_SETTINGS_FILE = "run_settings.jsonl"


def package_versions() -> dict[str, str | None]:
    """Versions recorded with each result (mteb's list plus fastmteb; mteb = the one reproduced)."""
    from importlib.metadata import PackageNotFoundError, version

    versions: dict[str, str | None] = {"fastmteb": None, "mteb": MTEB_COMPAT_VERSION}
    for package in ("fastmteb", "torch", "sentence-transformers", "transformers"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = None
    return versions


def update_run_settings(
    folder: str | os.PathLike[str], result: TaskResult, settings: Mapping[str, Any]
) -> Path:
    """Record how ``result`` was computed in ``run_settings.jsonl`` (a row per task, mteb's keys:
    task, splits, version, encode_kwargs, subsets); the task's earlier row is replaced."""
    path = Path(folder) / RUN_SETTINGS_FILE
    rows: list[dict[str, Any]] = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict) and row.get("task") != result.task_name:
                rows.append(row)
    rows.append(
        {
            "task": result.task_name,
            "splits": sorted(result.scores),
            "version": package_versions(),
            "encode_kwargs": json.loads(json.dumps(to_builtin(dict(settings)), default=str)),
            "subsets": sorted(
                {e["hf_subset"] for entries in result.scores.values() for e in entries}
            ),
        }
    )
    _write_text_atomic(path, "".join(json.dumps(row) + "\n" for row in rows))
    return path


# ---------------------------------------------------------------------------------------------
# Loading folders


def iter_result_files(folder: str | os.PathLike[str]) -> list[Path]:
    """Every ``*.json`` result file below ``folder`` (not model_meta.json, not temporary files),
    those in ``fastmteb-only/`` sub-folders included."""
    root = Path(folder)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise FileNotFoundError(f"results folder {str(root)!r} does not exist")
    return sorted(
        p for p in root.rglob("*.json") if p.name != MODEL_META_FILE and not p.name.startswith(".")
    )


def _model_label(revision_dir: Path) -> tuple[str, str]:
    """(model name, revision) of a revision folder: from model_meta.json, else the folder names."""
    if revision_dir.name == FASTMTEB_ONLY_DIR:
        revision_dir = revision_dir.parent
    meta_path = revision_dir / MODEL_META_FILE
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            return str(meta["name"]), str(meta.get("revision") or revision_dir.name)
        except (json.JSONDecodeError, KeyError, TypeError):
            pass
    return revision_dir.parent.name.replace("__", "/"), revision_dir.name


def load_results(
    *folders: str | os.PathLike[str], known_tasks: Mapping[str, TaskMetadata] | None = None
) -> dict[str, dict[str, TaskResult]]:
    """Read result folders (an output folder, one model's folder, or one revision folder),
    the ``fastmteb-only/`` results of tasks mteb does not have included. A result of a task in
    ``known_tasks`` (metadata by name, e.g. the registry's ``TASKS``) gets its ``task_type``.

    Returns ``{model: {task_name: TaskResult}}``. A model with results under several revisions is
    keyed ``"name@revision"`` for each of them, so that nothing is silently merged.
    """
    by_model_rev: dict[tuple[str, str], dict[str, TaskResult]] = {}
    for folder in folders:
        for path in iter_result_files(folder):
            name, revision = _model_label(path.parent)
            result = TaskResult.from_disk(path)
            result.task_type = _known_type(result.task_name, known_tasks)
            by_model_rev.setdefault((name, revision), {})[result.task_name] = result
    revisions_per_name: dict[str, int] = {}
    for name, _ in by_model_rev:
        revisions_per_name[name] = revisions_per_name.get(name, 0) + 1
    return {
        (name if revisions_per_name[name] == 1 else f"{name}@{revision}"): dict(
            sorted(tasks.items())
        )
        for (name, revision), tasks in by_model_rev.items()
    }


# ---------------------------------------------------------------------------------------------
# Aggregation (mteb ``benchmarks/_benchmark_metrics.py``: Mean (Task), Mean (TaskType))


@dataclass(frozen=True)
class Summary:
    """Scores of one model over a set of tasks.

    ``per_task[t]`` = mean main score of task t over its eval (split, subset) entries, None when
    missing or NaN; ``per_type[T]`` = mean of ``per_task`` over the tasks of type T (None if any is
    None); ``mean_task`` = mean over all tasks; ``mean_task_type`` = mean of ``per_type``. Both
    means are None as soon as one task is missing or NaN, as in mteb's benchmark tables.
    """

    per_task: dict[str, float | None]
    task_types: dict[str, str]
    per_type: dict[str, float | None]
    mean_task: float | None
    mean_task_type: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "per_task": self.per_task,
            "task_types": self.task_types,
            "per_type": self.per_type,
            "mean_task": self.mean_task,
            "mean_task_type": self.mean_task_type,
        }


def _mean_or_none(values: Sequence[float | None]) -> float | None:
    if not values or any(v is None for v in values):
        return None
    return sum(values) / len(values)  # type: ignore[arg-type]


def task_score(result: TaskResult | None, meta: TaskMetadata | None = None) -> float | None:
    """Main score of a task (mean over its eval splits and subsets when ``meta`` is known).

    None when the result is missing, lacks one of those (split, subset) pairs, or is NaN.
    """
    if result is None:
        return None
    if meta is None:
        score = result.get_score()
    else:
        score = result.get_score(splits=meta.eval_splits, subsets=meta.hf_subsets)
        if not result.covers(meta.eval_splits, meta.hf_subsets):
            return None
    return None if math.isnan(score) else score


def summarize(
    results: Mapping[str, TaskResult],
    tasks: Sequence[str | TaskMetadata] | None = None,
    *,
    known_tasks: Mapping[str, TaskMetadata] | None = None,
) -> Summary:
    """Aggregate one model's results; ``tasks`` (e.g. a benchmark) fixes which tasks count.

    Without ``tasks`` every result present counts. A task named by a string takes its metadata
    from ``known_tasks`` (e.g. the registry's ``TASKS``) when it is there. Task types come from
    the metadata, else from ``TaskResult.task_type``; others are grouped as "Unknown".
    """
    metas: dict[str, TaskMetadata | None] = {}
    for task in tasks if tasks is not None else list(results):
        if isinstance(task, str):
            metas[task] = _known_meta(task, known_tasks)
        else:
            metas[task.name] = task
    per_task: dict[str, float | None] = {}
    task_types: dict[str, str] = {}
    by_type: dict[str, list[float | None]] = {}
    for name, meta in metas.items():
        result = results.get(name)
        per_task[name] = task_score(result, meta)
        task_type = (
            (meta.type if meta else None) or (result.task_type if result else None) or "Unknown"
        )
        task_types[name] = task_type
        by_type.setdefault(task_type, []).append(per_task[name])
    per_type = {t: _mean_or_none(v) for t, v in sorted(by_type.items())}
    return Summary(
        per_task=per_task,
        task_types=task_types,
        per_type=per_type,
        mean_task=_mean_or_none(list(per_task.values())),
        mean_task_type=_mean_or_none(list(per_type.values())),
    )


# ---------------------------------------------------------------------------------------------
# Comparison tables


def compare(
    results_by_model: Mapping[str, Mapping[str, TaskResult]],
    tasks: Sequence[str | TaskMetadata] | None = None,
    *,
    known_tasks: Mapping[str, TaskMetadata] | None = None,
) -> dict[str, Summary]:
    """One ``Summary`` per model over the same task list (by default the union of all models' tasks,
    sorted by task type then name); ``known_tasks`` as for ``summarize``."""
    if tasks is None:  # every task any model has, grouped by type
        types: dict[str, str] = {}
        for model_results in results_by_model.values():
            for name, result in model_results.items():
                task_type = result.task_type or _known_type(name, known_tasks)
                types.setdefault(name, task_type or "Unknown")
        tasks = sorted(types, key=lambda name: (types[name], name))
    return {
        model: summarize(model_results, tasks, known_tasks=known_tasks)
        for model, model_results in results_by_model.items()
    }


def _fmt(score: float | None) -> str:
    """Leaderboard display: score x 100 with 2 decimals; missing/NaN as a dash."""
    return "—" if score is None else f"{100 * score:.2f}"


def comparison_tables(summaries: Mapping[str, Summary], *, title: str | None = None) -> list[Table]:
    """Rich tables, models side by side: a row per task, then a row per task type and the means."""
    from rich.table import Table

    models = list(summaries)
    first = next(iter(summaries.values()), None)
    tasks_table = Table(title=title or "Scores per task (x100)")
    types_table = Table(title="Scores per task type (x100)")
    tasks_table.add_column("task")
    tasks_table.add_column("type")
    types_table.add_column("task type")
    for model in models:
        tasks_table.add_column(model, justify="right")
        types_table.add_column(model, justify="right")
    if first is None:
        return [tasks_table, types_table]
    task_names = list(first.per_task)
    for task in task_names:
        tasks_table.add_row(
            task, first.task_types[task], *(_fmt(summaries[m].per_task.get(task)) for m in models)
        )
    type_names = sorted({t for s in summaries.values() for t in s.per_type})
    for task_type in type_names:
        types_table.add_row(
            task_type, *(_fmt(summaries[m].per_type.get(task_type)) for m in models)
        )
    types_table.add_section()
    types_table.add_row("Mean (Task)", *(_fmt(summaries[m].mean_task) for m in models))
    types_table.add_row("Mean (TaskType)", *(_fmt(summaries[m].mean_task_type) for m in models))
    return [tasks_table, types_table]


def __getattr__(name: str) -> Any:
    # names that moved in the architecture step (0.1.x): still importable, with a warning
    if name == "ResultPathError":
        import warnings

        warnings.warn(
            "fastmteb.results.ResultPathError is now fastmteb.paths.UnsafePathError",
            DeprecationWarning,
            stacklevel=2,
        )
        return UnsafePathError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
