"""Load a task's raw rows: from the Hugging Face hub exactly as mteb 2.26.24 does, from a local
folder in the layout of ``shared/data`` (see its MANIFEST.md), or from the copy bundled in the
package.

``load_raw(meta, subset, split)`` returns ``dict[str, datasets.Dataset]``:

* retrieval family (Retrieval, Reranking, InstructionRetrieval, InstructionReranking): ``corpus``
  (id, title, text), ``queries`` (id, text[, instruction]), ``qrels`` (query-id, corpus-id, score
  int32), for reranking data ``top_ranked`` (query-id, corpus-ids), and for FollowIR data
  ``qrel_diff`` (query-id, corpus-ids: the documents the changed instruction made non-relevant),
  all for ``split``. Queries are those named
  in the qrels, in file order (mteb's loader filters them the same way).
* every other type: one entry per split of the subset, with the canonical columns of the type
  (its type object's ``schema``, see ``canonical_columns``), after the task's dataset transform.

Bad data raises ``TaskDataError`` naming the task, the field and a fix.
"""

from __future__ import annotations

import gzip
import json
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import datasets
import pyarrow as pa
import pyarrow.compute as pc
from datasets import Dataset, DatasetDict, Features, Sequence, Value

from fastmteb.data.transforms import TaskDataError, apply_transform, column_values
from fastmteb.data.reads import note_read
from fastmteb.tasks.base import TaskMetadata

__all__ = [
    "BUNDLED_DIR",
    "TaskDataError",
    "bundled_source",
    "canonical_columns",
    "load_raw",
    "load_raw_with_mteb",
    "local_selection",
    "raw_from_mteb_dataset",
    "release_mteb_data",
]

BUNDLED_DIR = Path(__file__).parent / "bundled"


def _task_type(meta: TaskMetadata) -> Any:
    """The type object of ``meta``: it owns the column schema and the raw normalisation
    (``fastmteb.tasks._common.RowType``). A type object written without that contract gets
    RowType's defaults for what it lacks; it must still give ``schema`` or ``columns``."""
    from fastmteb.tasks._common import RowType
    from fastmteb.tasks.types import get_task_type

    task_type = get_task_type(meta.type)
    if isinstance(task_type, RowType) or getattr(task_type, "retrieval", False):
        return task_type
    return _WithRowDefaults(task_type)


class _WithRowDefaults:
    """A type object plus RowType's defaults for the contract methods it does not define."""

    def __init__(self, task_type: Any) -> None:
        from fastmteb.tasks._common import RowType

        self._type, self._defaults = task_type, RowType()
        self._defaults.columns = getattr(task_type, "columns", {})

    def __getattr__(self, name: str) -> Any:
        if hasattr(self._type, name):
            return getattr(self._type, name)
        return getattr(self._defaults, name)


def _is_retrieval(meta: TaskMetadata) -> bool:
    return bool(getattr(_task_type(meta), "retrieval", False))


def canonical_columns(meta: TaskMetadata, subset: str = "default") -> dict[str, str]:
    """Column -> kind of ``meta``'s rows (its type's ``schema``). Kinds: "str", "number", "label"
    (int/str/bool), "binary" (0/1), "labels" (scalar label or list of them), "list[str]",
    "list[number]", "list"."""
    return _task_type(meta).schema(meta, subset)


_FIX_BY_KIND = {
    "str": "every row needs a non-null string",
    "number": "every row needs a number",
    "label": "every row needs a label (int or string)",
    "binary": "labels must be 0 or 1",
    "labels": "every row needs a label or a list of hierarchy labels",
    "list[str]": "every row needs a list of strings",
    "list[number]": "every row needs a list of numbers",
    "list": "every row needs a list",
    "str_or_none": "use a string (or null)",
}


# --------------------------------------------------------------------------- entry point


def load_raw(
    meta: TaskMetadata, subset: str, split: str, *, data_dir: str | Path | None = None
) -> dict[str, Dataset]:
    """Rows of ``meta`` for one subset, transformed as mteb transforms them.

    Source: ``data_dir`` (a folder in the layout of shared/data, task folder ``meta.local_dir``)
    if given; otherwise the bundled copy when the package ships this task/subset; otherwise the hub
    via ``datasets.load_dataset(meta.hf_path, revision=meta.hf_revision[, name=subset])``.
    """
    if subset not in meta.hf_subsets:
        raise TaskDataError(
            f"{meta.name}: unknown subset {subset!r}; fix: use one of {list(meta.hf_subsets)[:10]}"
            + (" ..." if len(meta.hf_subsets) > 10 else "")
        )
    if data_dir is not None:
        folder = _local_task_folder(meta, Path(data_dir))
    else:
        folder = bundled_source(meta, subset)
    if folder is None and meta.mteb_loader:
        return load_raw_with_mteb(meta, subset, split)
    if _is_retrieval(meta):
        raw = (
            _load_local_retrieval(meta, folder, subset, split)
            if folder is not None
            else _load_hub_retrieval(meta, subset, split)
        )
        _validate_retrieval(meta, raw, split)
        return raw
    if folder is not None:
        dd = _load_local_splits(meta, folder, subset)
    else:
        dd = _load_hub_splits(meta, subset)
    dd = apply_transform(meta, _normalise_columns(meta, _rename_task_columns(meta, dd)))
    return _finalise(meta, dd, split, subset)


# --------------------------------------------------------------------------- mteb's own loader


def load_raw_with_mteb(meta: TaskMetadata, subset: str, split: str) -> dict[str, Dataset]:
    """Rows of ``meta`` as the mteb task's own ``load_data()`` gives them (custom loaders,
    ``dataset_transform``, extra ``load_dataset`` arguments), converted to fastmteb's raw form.

    The task is narrowed to ``subset`` and ``split`` before loading, so only those are read
    (tasks that load every subset at once, e.g. ``fast_loading``, still read them all).
    """
    if meta.params.get("local_only"):
        raise TaskDataError(_local_only_message(meta))
    task = _loaded_mteb_task(meta, subset, split)
    return raw_from_mteb_dataset(meta, task.dataset, subset, split)


# The last mteb task loaded, with its data: the other splits (and, for tasks that load every
# subset at once, the other subsets) of a task are read from it instead of loading again.
_MTEB_LOADED: dict[tuple[str, str, str, str], Any] = {}


def release_mteb_data() -> None:
    """Drop the mteb task kept by ``load_raw_with_mteb`` (its rows) once a run has prepared it."""
    _MTEB_LOADED.clear()


def _loaded_mteb_task(meta: TaskMetadata, subset: str, split: str) -> Any:
    """The mteb task of ``meta`` with the data of ``subset``/``split`` loaded by its own code."""
    retrieval = _is_retrieval(meta)
    # Tasks whose loader reads one dataset for every subset (a ``lang`` column, or one column per
    # language) load once for all subsets; the others load the one subset asked for.
    whole = bool(meta.params.get("parallel_subsets") or meta.params.get("fast_loading"))
    load_subset = "*" if whole else subset
    key = (meta.name, meta.hf_revision, load_subset, split)
    for cached_key, task in _MTEB_LOADED.items():
        if cached_key[:3] == key[:3] and (
            cached_key[3] == split or (not retrieval and _has_split(meta, task, subset, split))
        ):
            return task
    import mteb

    task = mteb.get_task(meta.name)
    if not whole and subset in task.hf_subsets and len(task.hf_subsets) > 1:
        task = task.filter_languages(None, hf_subsets=[subset])
    if retrieval:  # loads split by split; the other types load every split of the subset
        task = task.filter_eval_splits([split])
    try:
        task.load_data()
        if hasattr(task, "convert_v1_dataset_format_to_v2"):  # retrieval loaders of mteb 1.x form
            task.convert_v1_dataset_format_to_v2(num_proc=None)
    except Exception as exc:  # any loader failure is a data problem for the user
        raise TaskDataError(
            f"{meta.name}: mteb's loader failed for subset {subset!r}: {type(exc).__name__}: "
            f"{exc}; fix: check network access / HF_HUB_OFFLINE, or pass data_dir= a local copy"
        ) from exc
    _MTEB_LOADED.clear()
    _MTEB_LOADED[key] = task
    return task


def _has_split(meta: TaskMetadata, task: Any, subset: str, split: str) -> bool:
    try:
        if meta.params.get("parallel_subsets"):
            return split in task.dataset
        return split in _mteb_subset(task.dataset, subset)
    except (KeyError, TypeError):
        return False


def _mteb_subset(dataset: Any, subset: str) -> Any:
    """mteb keeps a monolingual task's splits at the top level, a multilingual one's per subset."""
    if isinstance(dataset, Mapping) and subset in dataset and not isinstance(dataset[subset], Dataset):
        return dataset[subset]
    if subset == "default":
        return dataset
    raise KeyError(subset)


def raw_from_mteb_dataset(
    meta: TaskMetadata, dataset: Any, subset: str, split: str
) -> dict[str, Dataset]:
    """mteb's loaded ``task.dataset`` -> fastmteb's raw form for one subset and split.

    Retrieval family: ``{corpus, queries, relevant_docs, top_ranked}`` of the split -> ``corpus``,
    ``queries``, ``qrels`` (and ``top_ranked``) datasets. Other types: the subset's splits with
    the task's column names renamed to the canonical ones (``params["columns"]``), no further
    transform (mteb's ``dataset_transform`` already ran).
    """
    try:
        if meta.params.get("parallel_subsets") and subset not in dataset:
            per_subset = dataset  # split -> rows with one column per language (mteb's parallel form)
        else:
            per_subset = _mteb_subset(dataset, subset)
    except KeyError:
        raise TaskDataError(
            f"{meta.name}: mteb's loader gave no subset {subset!r} (has {list(dataset)[:10]}); "
            "fix: evaluate one of those"
        ) from None
    if _is_retrieval(meta):
        if split not in per_subset:
            raise TaskDataError(
                f"{meta.name}: mteb's loader gave no split {split!r} for subset {subset!r} "
                f"(has {list(per_subset)}); fix: evaluate one of those"
            )
        data = per_subset[split]
        qrels: dict[str, list] = {"query-id": [], "corpus-id": [], "score": []}
        for query_id, docs in data["relevant_docs"].items():
            for doc_id, score in docs.items():
                qrels["query-id"].append(str(query_id))
                qrels["corpus-id"].append(str(doc_id))
                qrels["score"].append(int(score))
        raw = {
            "corpus": _with_string_ids(data["corpus"]),
            "queries": _with_string_ids(data["queries"]),
            "qrels": Dataset.from_dict(qrels, features=_QRELS_FEATURES),
        }
        if data.get("top_ranked"):
            top = data["top_ranked"]
            raw["top_ranked"] = Dataset.from_dict(
                {"query-id": [str(q) for q in top], "corpus-ids": [[str(d) for d in v] for v in top.values()]},
                features=Features({"query-id": Value("string"), "corpus-ids": Sequence(Value("string"))}),
            )
        raw = _finish_retrieval(meta, raw)
        _validate_retrieval(meta, raw, split)
        return raw
    dd = DatasetDict({name: ds for name, ds in per_subset.items() if isinstance(ds, Dataset)})
    return _finalise(meta, _normalise_columns(meta, _rename_task_columns(meta, dd)), split, subset)


def _rename_task_columns(meta: TaskMetadata, dd: DatasetDict) -> DatasetDict:
    """A task whose mteb class reads other column names (``params["columns"]``, e.g.
    UkrSedUASmallSTSv1's ``query``/``passage``) gets them renamed to its type's canonical ones;
    rows that already use the canonical names pass unchanged."""
    renames = {actual: canonical for canonical, actual in meta.params.get("columns", {}).items()}
    if not renames:
        return dd
    return DatasetDict(
        {
            name: ds.rename_columns(
                {
                    a: c
                    for a, c in renames.items()
                    if a in ds.column_names and c not in ds.column_names
                }
            )
            for name, ds in dd.items()
        }
    )


def local_selection(meta: TaskMetadata, data_dir: str | Path) -> TaskMetadata:
    """``meta`` narrowed to the subsets and splits its ``data_dir`` folder holds (MANIFEST.md
    layout). A folder with all of them, or with none (the loader then says what is missing),
    gives ``meta`` back unchanged."""
    if meta.local_dir is None:
        return meta
    folder = Path(data_dir) / meta.local_dir
    if not folder.is_dir():
        return meta
    subsets = [
        s
        for s in meta.hf_subsets
        if _subset_folder(meta, folder, s, must_exist=False) is not None
    ]
    if not subsets:
        return meta
    splits = [s for s in meta.eval_splits if any(_has_local_split(meta, folder, sub, s) for sub in subsets)]
    if not splits:
        return meta
    return meta.narrowed(splits, subsets)


def _has_local_split(meta: TaskMetadata, folder: Path, subset: str, split: str) -> bool:
    sub = _subset_folder(meta, folder, subset, must_exist=False)
    if sub is None:
        return False
    if _is_retrieval(meta) and not meta.params.get("old_format"):
        qrels = sub / "qrels"
        present = sorted(qrels.glob("*.tsv")) if qrels.is_dir() else []
        return (qrels / f"{split}.tsv").is_file() or len(present) == 1
    return _data_file(sub, split) is not None


def bundled_source(meta: TaskMetadata, subset: str) -> Path | None:
    """The bundled folder holding ``meta``/``subset``, or None when the package does not ship it."""
    if meta.local_dir is None:
        return None
    folder = BUNDLED_DIR / meta.local_dir
    if not folder.is_dir():
        return None
    if _subset_folder(meta, folder, subset, must_exist=False) is not None:
        return folder
    return None


# --------------------------------------------------------------------------- hub


def _load_hub_splits(meta: TaskMetadata, subset: str) -> DatasetDict:
    if meta.params.get("local_only"):
        raise TaskDataError(_local_only_message(meta))
    kwargs = {"path": meta.hf_path, "revision": meta.hf_revision}
    if not meta.multilingual:
        return load_dataset_or_error(meta, **kwargs)
    if meta.params.get("fast_loading"):
        # mteb's AbsTask.fast_load: one default config with a ``lang`` column, grouped by subset.
        merged = load_dataset_or_error(meta, **kwargs)
        out = {}
        for split_name, ds in merged.items():
            frame = ds.to_polars()
            part = frame.filter(frame["lang"] == subset).drop("lang")
            if len(part):
                out[split_name] = Dataset.from_polars(part)
        if not out:
            raise TaskDataError(
                f"{meta.name}: no rows with lang == {subset!r} in {meta.hf_path}; "
                "fix: check the subset name or the dataset revision"
            )
        return DatasetDict(out)
    return load_dataset_or_error(meta, name=subset, **kwargs)


def load_dataset_or_error(meta: TaskMetadata, **kwargs: Any) -> Any:
    """``datasets.load_dataset(**kwargs)`` with failures reported as ``TaskDataError``."""
    try:
        return datasets.load_dataset(**kwargs)
    except (FileNotFoundError, ConnectionError, OSError, ValueError) as exc:
        raise TaskDataError(
            f"{meta.name}: could not load {kwargs.get('path')!r} "
            f"(revision {kwargs.get('revision')}, config {kwargs.get('name')}): {exc}; fix: check "
            "network access / HF_HUB_OFFLINE, or pass data_dir= a local copy"
        ) from exc


def _hub_split(meta: TaskMetadata, config: str, split: str) -> str:
    """mteb's ``_get_split``: the requested split if the config has it, else its only split."""
    splits = datasets.get_dataset_split_names(
        meta.hf_path, revision=meta.hf_revision, config_name=config
    )
    if split in splits:
        return split
    if len(splits) == 1:
        return str(splits[0])
    raise TaskDataError(
        f"{meta.name}: split {split!r} not found in config {config!r} (has {splits}); "
        f"fix: evaluate one of {splits}"
    )


def _load_hub_retrieval(meta: TaskMetadata, subset: str, split: str) -> dict[str, Dataset]:
    """mteb's ``RetrievalDatasetLoader``: configs corpus / queries (or ``query``) / qrels
    (``default`` or ``qrels``) / optional top_ranked and instruction, prefixed ``{subset}-`` for
    multilingual tasks."""
    if meta.params.get("local_only"):
        raise TaskDataError(_local_only_message(meta))
    prefix = None if subset == "default" else subset
    try:
        configs = datasets.get_dataset_config_names(meta.hf_path, meta.hf_revision)
    except (FileNotFoundError, ConnectionError, OSError, ValueError) as exc:
        raise TaskDataError(
            f"{meta.name}: could not list the configs of {meta.hf_path!r}: {exc}; fix: check "
            "network access / HF_HUB_OFFLINE, or pass data_dir= a local copy"
        ) from exc

    def config_name(kind: str) -> str:
        return f"{prefix}-{kind}" if prefix is not None else kind

    def load(config: str) -> Dataset:
        return load_dataset_or_error(
            meta,
            path=meta.hf_path,
            name=config,
            split=_hub_split(meta, config, split),
            revision=meta.hf_revision,
        )

    qrels_config = config_name("qrels") if prefix is not None else "default"
    if qrels_config == "default" and "default" not in configs:
        if "qrels" not in configs:
            raise TaskDataError(
                f"{meta.name}: {meta.hf_path} has no 'default' or 'qrels' config (has {configs}); "
                "fix: point the task at a dataset with qrels"
            )
        qrels_config = "qrels"
    qrels = _cast_qrels(meta, load(qrels_config))
    corpus = _with_string_ids(load(config_name("corpus")))
    queries_config = "query" if "query" in configs else config_name("queries")
    queries = _with_string_ids(load(queries_config))
    raw = {"corpus": corpus, "queries": queries, "qrels": qrels}
    if config_name("top_ranked") in configs:
        raw["top_ranked"] = _id_lists(load(config_name("top_ranked")))
    if config_name("qrel_diff") in configs:  # FollowIR: documents whose relevance the instruction changed
        raw["qrel_diff"] = _id_lists(load(config_name("qrel_diff")))
    if config_name("instruction") in configs:
        instructions = load(config_name("instruction")).cast_column("query-id", Value("string"))
        by_query = dict(
            zip(
                column_values(instructions, "query-id"),
                column_values(instructions, "instruction"),
                strict=True,
            )
        )
        query_ids = column_values(raw["queries"], "id")
        missing = [q for q in query_ids if q not in by_query]
        if missing:
            raise TaskDataError(
                f"{meta.name}: field 'instruction' missing for query ids {missing[:5]}; "
                "fix: give every query an instruction row"
            )
        raw["queries"] = raw["queries"].add_column("instruction", [by_query[q] for q in query_ids])
    return _finish_retrieval(meta, raw)


def _local_only_message(meta: TaskMetadata) -> str:
    return (
        f"{meta.name}: derived data, not on the Hugging Face hub; fix: use the bundled copy "
        f"(data_dir=None) or pass data_dir= a folder holding {meta.local_dir}/"
    )


# --------------------------------------------------------------------------- local folders


def _local_task_folder(meta: TaskMetadata, data_dir: Path) -> Path:
    if meta.local_dir is None:
        raise TaskDataError(
            f"{meta.name}: no local folder layout is known for this task; fix: run without "
            "data_dir to load it from the Hugging Face hub"
        )
    folder = data_dir / meta.local_dir
    if not folder.is_dir():
        raise TaskDataError(
            f"{meta.name}: folder {folder} not found; fix: put the task's files in "
            f"<data_dir>/{meta.local_dir}/ (layout of shared/data/MANIFEST.md)"
        )
    return folder


def _subset_folder(
    meta: TaskMetadata, folder: Path, subset: str, *, must_exist: bool = True
) -> Path | None:
    """``<task>/<subset>/`` when it exists; the task folder itself for "default" or for the one
    subset that a flat local folder holds (``params['local_root_subset']``)."""
    if (folder / subset).is_dir():
        return folder / subset
    if subset == "default" or meta.params.get("local_root_subset") == subset:
        return folder
    if must_exist:
        raise TaskDataError(
            f"{meta.name}: subset {subset!r} not found under {folder}; fix: add {folder / subset}/"
            " with the split files, or evaluate a subset present there"
        )
    return None


def _data_file(
    folder: Path, stem: str, suffixes: tuple[str, ...] = (".jsonl", ".jsonl.gz")
) -> Path | None:
    for suffix in suffixes:
        path = folder / f"{stem}{suffix}"
        if path.is_file():
            return path
    return None


def _open_text(path: Path):
    return (
        gzip.open(path, "rt", encoding="utf-8")
        if path.suffix == ".gz"
        else path.open(encoding="utf-8")
    )


def _not_utf8(
    meta: TaskMetadata, path: Path, line_number: int, exc: UnicodeDecodeError
) -> TaskDataError:
    return TaskDataError(
        f"{meta.name}: {path} near line {line_number} is not valid UTF-8 ({exc.reason}, byte "
        f"{exc.object[exc.start:exc.start + 1]!r}); fix: re-encode the file as UTF-8"
    )


def _read_jsonl(meta: TaskMetadata, path: Path) -> list[dict[str, Any]]:
    note_read(path)  # the result records a hash of every file read (fastmteb.data.reads)
    try:
        return _read_jsonl_rows(meta, path)
    except UnicodeDecodeError as exc:
        raise _not_utf8(meta, path, _count_utf8_lines(path), exc) from None


def _count_utf8_lines(path: Path) -> int:
    """1-based line holding the first byte that is not UTF-8 (for the error message)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return 0


def _read_jsonl_rows(meta: TaskMetadata, path: Path) -> list[dict[str, Any]]:
    rows = []
    with _open_text(path) as handle:
        for line_number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                # 1-based column in the file's line (a break at its end points just past the
                # last character, not at the newline json skipped over)
                column = min(exc.pos, len(line.rstrip("\r\n"))) + 1
                raise TaskDataError(
                    f"{meta.name}: {path} line {line_number} is not valid JSON at column "
                    f"{column} ({exc.msg}); fix: make that line one complete JSON object "
                    "(JSONL: one object per line)"
                ) from None
            if not isinstance(row, dict):
                raise TaskDataError(
                    f"{meta.name}: {path} line {line_number} is a {type(row).__name__}, "
                    "expected a JSON object; fix: one JSON object per line"
                )
            rows.append(row)
    return rows


def _rows_to_dataset(meta: TaskMetadata, rows: list[dict[str, Any]], path: Path) -> Dataset:
    if not rows:
        return Dataset.from_dict({})
    columns = list(rows[0])
    for i, row in enumerate(rows):
        if list(row) != columns and set(row) != set(columns):
            missing = sorted(set(columns) - set(row)) or sorted(set(row) - set(columns))
            raise TaskDataError(
                f"{meta.name}: {path} row {i} has fields {sorted(row)}, the first row has "
                f"{sorted(columns)} (differing: {missing}); fix: give every row the same fields"
            )
    try:
        return Dataset.from_dict({c: [row[c] for row in rows] for c in columns})
    except (TypeError, ValueError) as exc:  # pyarrow type clash, e.g. str and int in one column
        raise TaskDataError(
            f"{meta.name}: {path}: a field mixes value types ({exc}); fix: one type per field"
        ) from None


def _load_local_splits(meta: TaskMetadata, folder: Path, subset: str) -> DatasetDict:
    """``<split>.jsonl[.gz]`` files of one subset folder -> DatasetDict (train, dev, test order)."""
    sub = _subset_folder(meta, folder, subset)
    out = {}
    for path in sorted(sub.iterdir(), key=lambda p: _split_order(p.name)):
        stem = path.name.split(".")[0]
        if path.is_file() and path.name in (f"{stem}.jsonl", f"{stem}.jsonl.gz"):
            out[stem] = _rows_to_dataset(meta, _read_jsonl(meta, path), path)
    if not out:
        raise TaskDataError(
            f"{meta.name}: no <split>.jsonl files in {sub}; fix: add e.g. {sub / 'test.jsonl'}"
        )
    return DatasetDict(out)


def _split_order(name: str) -> tuple[int, str]:
    order = {"train": 0, "validation": 1, "dev": 1, "test": 2}
    return (order.get(name.split(".")[0], 3), name)


def _load_local_retrieval(
    meta: TaskMetadata, folder: Path, subset: str, split: str
) -> dict[str, Dataset]:
    sub = _subset_folder(meta, folder, subset)
    if meta.params.get("old_format"):
        return _load_old_format_reranking(meta, sub, split)
    corpus_path = _data_file(sub, "corpus")
    queries_path = _data_file(sub, "queries")
    for path, stem in ((corpus_path, "corpus"), (queries_path, "queries")):
        if path is None:
            raise TaskDataError(
                f"{meta.name}: {sub / (stem + '.jsonl')} not found; fix: BEIR layout "
                "corpus.jsonl, queries.jsonl, qrels/<split>.tsv"
            )
    qrels_path = _local_qrels_path(meta, sub, split)
    corpus = _with_string_ids(_rows_to_dataset(meta, _read_jsonl(meta, corpus_path), corpus_path))
    queries = _with_string_ids(
        _rows_to_dataset(meta, _read_jsonl(meta, queries_path), queries_path)
    )
    raw = {
        "corpus": corpus,
        "queries": queries,
        "qrels": _cast_qrels(meta, _read_qrels_tsv(meta, qrels_path)),
    }
    for kind in ("top_ranked", "qrel_diff"):
        path = _data_file(sub, kind)
        if path is not None:
            raw[kind] = _id_lists(_rows_to_dataset(meta, _read_jsonl(meta, path), path))
    return _finish_retrieval(meta, raw)


def _id_lists(ds: Dataset) -> Dataset:
    """``query-id`` (str) and ``corpus-ids`` (list of str): top_ranked and qrel_diff rows."""
    return ds.cast(
        Features(
            {**ds.features, "query-id": Value("string"), "corpus-ids": Sequence(Value("string"))}
        )
    ).select_columns(["query-id", "corpus-ids"])


def _local_qrels_path(meta: TaskMetadata, sub: Path, split: str) -> Path:
    """``qrels/<split>.tsv``, else the only qrels file (mteb's one-split fallback)."""
    qrels_dir = sub / "qrels"
    path = qrels_dir / f"{split}.tsv"
    if path.is_file():
        return path
    available = sorted(qrels_dir.glob("*.tsv")) if qrels_dir.is_dir() else []
    if len(available) == 1:
        return available[0]
    raise TaskDataError(
        f"{meta.name}: qrels for split {split!r} not found ({path}; present: "
        f"{[p.name for p in available]}); fix: add {path} or evaluate a split that has qrels"
    )


def _read_qrels_tsv(meta: TaskMetadata, path: Path) -> Dataset:
    note_read(path)
    try:
        return _read_qrels_rows(meta, path)
    except UnicodeDecodeError as exc:
        raise _not_utf8(meta, path, _count_utf8_lines(path), exc) from None


def _read_qrels_rows(meta: TaskMetadata, path: Path) -> Dataset:
    columns: dict[str, list] = {"query-id": [], "corpus-id": [], "score": []}
    with path.open(encoding="utf-8") as handle:
        header = handle.readline().rstrip("\n").split("\t")
        if header[:3] != ["query-id", "corpus-id", "score"]:
            raise TaskDataError(
                f"{meta.name}: {path} header is {header}; fix: first line "
                "'query-id<TAB>corpus-id<TAB>score'"
            )
        for line_number, line in enumerate(handle, 2):
            if not line.strip():
                continue
            parts = line.rstrip("\n").split("\t")
            try:
                score = int(float(parts[2]))
            except (IndexError, ValueError):
                raise TaskDataError(
                    f"{meta.name}: {path} line {line_number}: expected 3 tab-separated fields with "
                    f"an integer score, got {parts}; fix: 'query-id<TAB>corpus-id<TAB>score'"
                ) from None
            columns["query-id"].append(parts[0])
            columns["corpus-id"].append(parts[1])
            columns["score"].append(score)
    return Dataset.from_dict(columns)


def _load_old_format_reranking(meta: TaskMetadata, sub: Path, split: str) -> dict[str, Dataset]:
    """mteb's ``AbsTaskReranking.transform_old_dataset_format`` for rows ``{query, positive,
    negative}``: rows without positives or negatives are dropped; query ``i`` (index after the
    drop) becomes ``{split}_query{i}``; its documents ``apositive_{qid}_{j:05d}`` (relevance 1)
    then ``negative_{qid}_{j:05d}`` (relevance 0), each candidate its own corpus entry."""
    path = _data_file(sub, split)
    if path is None:
        raise TaskDataError(
            f"{meta.name}: {sub / (split + '.jsonl')} not found; fix: add the split's "
            "query/positive/negative rows"
        )
    rows = _read_jsonl(meta, path)
    corpus: dict[str, list] = {"id": [], "title": [], "text": []}
    queries: dict[str, list] = {"id": [], "text": []}
    qrels: dict[str, list] = {"query-id": [], "corpus-id": [], "score": []}
    top: dict[str, list] = {"query-id": [], "corpus-ids": []}
    kept = 0
    for line_number, row in enumerate(rows, 1):
        for field, kind in (("query", "str"), ("positive", "list[str]"), ("negative", "list[str]")):
            if field not in row or not _is_kind(row[field], kind):
                raise TaskDataError(
                    f"{meta.name}: {path} row {line_number}: field {field!r} missing or not "
                    f"{kind}; fix: rows {{'query': str, 'positive': [str], 'negative': [str]}}"
                )
        if not row["positive"] or not row["negative"]:
            continue
        query_id = f"{split}_query{kept}"
        kept += 1
        queries["id"].append(query_id)
        queries["text"].append(row["query"])
        ids = []
        for prefix, docs, relevance in (
            ("apositive", row["positive"], 1),
            ("negative", row["negative"], 0),
        ):
            for j, doc in enumerate(docs):
                doc_id = f"{prefix}_{query_id}_{j:05d}"
                ids.append(doc_id)
                corpus["id"].append(doc_id)
                corpus["title"].append("")
                corpus["text"].append(doc)
                qrels["query-id"].append(query_id)
                qrels["corpus-id"].append(doc_id)
                qrels["score"].append(relevance)
        top["query-id"].append(query_id)
        top["corpus-ids"].append(ids)
    qrels_ds = Dataset.from_dict(qrels, features=_QRELS_FEATURES)
    return {
        "corpus": Dataset.from_dict(corpus),
        "queries": Dataset.from_dict(queries),
        "qrels": qrels_ds,
        "top_ranked": Dataset.from_dict(
            top,
            features=Features(
                {"query-id": Value("string"), "corpus-ids": Sequence(Value("string"))}
            ),
        ),
    }


# --------------------------------------------------------------------------- shared steps

_QRELS_FEATURES = Features(
    {"query-id": Value("string"), "corpus-id": Value("string"), "score": Value("int32")}
)


def _with_string_ids(ds: Dataset) -> Dataset:
    """``_id`` -> ``id`` cast to string (mteb's loader); an absent ``title`` becomes ""."""
    if "_id" in ds.column_names:
        ds = ds.cast_column("_id", Value("string")).rename_column("_id", "id")
    elif "id" in ds.column_names and ds.features["id"] != Value("string"):
        ds = ds.cast_column("id", Value("string"))
    return ds


def _cast_qrels(meta: TaskMetadata, qrels: Dataset) -> Dataset:
    missing = [c for c in ("query-id", "corpus-id", "score") if c not in qrels.column_names]
    if missing:
        raise TaskDataError(
            f"{meta.name}: qrels lack field(s) {missing} (have {qrels.column_names}); "
            "fix: qrels rows need query-id, corpus-id, score"
        )
    return qrels.select_columns(["query-id", "corpus-id", "score"]).cast(_QRELS_FEATURES)


def _finish_retrieval(meta: TaskMetadata, raw: dict[str, Dataset]) -> dict[str, Dataset]:
    """Keep the queries named in the qrels (mteb's loader), give the corpus a title column."""
    corpus = raw["corpus"]
    if "title" not in corpus.column_names and "text" in corpus.column_names:
        raw["corpus"] = corpus.add_column("title", [""] * len(corpus))
    queries = raw["queries"]
    if "id" in queries.column_names:
        judged = set(column_values(raw["qrels"], "query-id"))
        keep = [i for i, qid in enumerate(column_values(queries, "id")) if qid in judged]
        if len(keep) != len(queries):
            raw["queries"] = queries.select(keep)
    return raw


def _validate_retrieval(meta: TaskMetadata, raw: dict[str, Dataset], split: str) -> None:
    corpus, queries, qrels = raw["corpus"], raw["queries"], raw["qrels"]
    if len(corpus) == 0:
        raise TaskDataError(f"{meta.name}: the corpus ({split}) is empty; fix: provide corpus rows")
    _check_columns(
        meta, corpus, {"id": "str", "text": "str", "title": "str_or_none"}, f"corpus ({split})"
    )
    query_kinds = {"id": "str", "text": "str"}
    if "instruction" in queries.column_names:
        query_kinds["instruction"] = "str_or_none"
    _check_columns(meta, queries, query_kinds, f"queries ({split})")
    if len(queries) == 0:
        raise TaskDataError(
            f"{meta.name}: no query of split {split!r} has qrels; fix: check that the qrels "
            "query-ids match the queries' ids"
        )
    for name, ds in (("corpus", corpus), ("queries", queries)):
        _check_unique_ids(meta, column_values(ds, "id"), f"{name} ({split})")
    corpus_ids = set(column_values(corpus, "id"))
    unknown = sorted({d for d in column_values(qrels, "corpus-id") if d not in corpus_ids})
    if unknown:
        # mteb does not check this; pytrec_eval counts such documents as relevant but never
        # retrieved, so they are kept (dropping them would change recall/MAP/nDCG).
        warnings.warn(
            f"{meta.name}: {len(unknown)} qrels document id(s) are not in the corpus "
            f"(e.g. {unknown[:3]}); they count as relevant-but-unretrievable, as in mteb. "
            "Fix the qrels or corpus if that is unintended.",
            stacklevel=3,
        )
    if "top_ranked" in raw:
        candidates = column_values(raw["top_ranked"], "corpus-ids")
        missing = sorted({d for ids in candidates for d in ids} - corpus_ids)
        if missing:
            raise TaskDataError(
                f"{meta.name}: top_ranked names {len(missing)} document(s) not in the corpus "
                f"(e.g. {missing[:3]}); fix: every candidate must be a corpus id"
            )


def _check_unique_ids(meta: TaskMetadata, ids: list[str], where: str) -> None:
    """Repeated ids make mteb's retrieval result depend on heap order (both copies compete for
    the top-k, then one overwrites the other in the run dict), so no score would be right."""
    if len(set(ids)) == len(ids):
        return
    seen: set[str] = set()
    repeated = sorted({i for i in ids if i in seen or seen.add(i)})
    raise TaskDataError(
        f"{meta.name}: {where} has {len(repeated)} repeated id(s) (e.g. {repeated[:3]}); "
        "fix: give every row a unique id (merge or rename the duplicates)"
    )


def _normalise_columns(meta: TaskMetadata, dd: DatasetDict) -> DatasetDict:
    """The type's own raw normalisation (e.g. PairClassification's ``label`` -> ``labels``)."""
    return _task_type(meta).normalise(meta, dd)


def _finalise(
    meta: TaskMetadata, dd: DatasetDict, split: str, subset: str = "default"
) -> dict[str, Dataset]:
    if split not in dd:
        raise TaskDataError(
            f"{meta.name}: split {split!r} not found (have {list(dd)}); fix: evaluate one of "
            f"{list(dd)} or provide {split} data"
        )
    task_type = _task_type(meta)
    for required in task_type.required_splits(meta):
        if required not in dd:
            raise TaskDataError(
                f"{meta.name}: training split {required!r} not found (have {list(dd)}); "
                f"fix: provide {required} data (the task type needs it beside {split!r})"
            )
    kinds = task_type.schema(meta, subset)
    out = {}
    for name, ds in dd.items():
        ds = task_type.finalise_split(meta, ds)
        _check_columns(meta, ds, kinds, f"split {name!r}")
        out[name] = ds.select_columns(list(kinds))
    return out


def _is_label_type(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_string(t) or pa.types.is_large_string(t)


def _is_number_type(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t)


def _arrow_settles(arrow: pa.ChunkedArray, kind: str) -> bool:
    """True when the Arrow type and null counts alone prove every value is of ``kind``
    (the row-by-row check then only runs to locate a bad row)."""
    t = arrow.type
    if kind == "str_or_none":
        return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_null(t)
    if arrow.null_count:
        return False
    if kind == "str":
        return pa.types.is_string(t) or pa.types.is_large_string(t)
    if kind == "number":
        return _is_number_type(t)
    if kind == "label":
        return _is_label_type(t)
    if kind == "binary":
        if not pa.types.is_integer(t) or len(arrow) == 0:
            return pa.types.is_integer(t)
        bounds = pc.min_max(arrow)
        return bounds["min"].as_py() >= 0 and bounds["max"].as_py() <= 1
    if not pa.types.is_list(t) and not pa.types.is_large_list(t):
        return kind == "labels" and _is_label_type(t)
    flat = pc.list_flatten(arrow)
    item = t.value_type
    if kind == "list":
        return True
    if flat.null_count:
        return False
    if kind == "list[str]":
        return pa.types.is_string(item) or pa.types.is_large_string(item)
    if kind == "list[number]":
        return _is_number_type(item)
    if kind == "labels":
        lengths = pc.list_value_length(arrow)
        return _is_label_type(item) and (len(arrow) == 0 or pc.min(lengths).as_py() > 0)
    return False


def _is_kind(value: Any, kind: str) -> bool:
    if kind == "str":
        return isinstance(value, str)
    if kind == "str_or_none":
        return value is None or isinstance(value, str)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "label":
        return isinstance(value, (int, str)) and value is not None
    if kind == "binary":
        return isinstance(value, (int, float)) and value in (0, 1)
    if kind == "labels":
        return _is_kind(value, "label") or (
            isinstance(value, list) and len(value) > 0 and all(_is_kind(v, "label") for v in value)
        )
    if kind == "list[str]":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if kind == "list[number]":
        return isinstance(value, list) and all(_is_kind(v, "number") for v in value)
    if kind == "list":
        return isinstance(value, list)
    raise AssertionError(kind)


def _check_columns(meta: TaskMetadata, ds: Dataset, kinds: dict[str, str], where: str) -> None:
    missing = [c for c in kinds if c not in ds.column_names and kinds[c] != "str_or_none"]
    if missing:
        raise TaskDataError(
            f"{meta.name}: {where}: field(s) {missing} missing (have {ds.column_names}); "
            f"fix: rows need {list(kinds)}"
        )
    for column, kind in kinds.items():
        if column not in ds.column_names:
            continue
        arrow = column_values(ds, column, as_arrow=True)
        if _arrow_settles(arrow, kind):
            continue
        for i, value in enumerate(arrow.to_pylist()):
            if not _is_kind(value, kind):
                raise TaskDataError(
                    f"{meta.name}: {where} row {i}: field {column!r} is {value!r:.60} "
                    f"({type(value).__name__}); fix: {_FIX_BY_KIND[kind]}"
                )
