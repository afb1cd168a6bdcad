"""Dataset transforms: what mteb 2.26.24's ``dataset_transform`` methods do, by name.

Each transform takes the ``DatasetDict`` of one subset (as loaded from the hub or from a local
folder) and returns the evaluated rows. ``TaskMetadata.transform`` names one of ``TRANSFORMS``.
Where mteb calls a Hugging Face ``datasets`` function (``train_test_split``,
``class_encode_column``) we call the same function with the same arguments, so the rows and their
order are identical. The seed is mteb's task seed, 42.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np
from datasets import ClassLabel, Dataset, DatasetDict, Value, concatenate_datasets

from fastmteb.tasks.base import TaskMetadata

__all__ = [
    "SEED",
    "TRANSFORMS",
    "TaskDataError",
    "apply_transform",
    "column_values",
    "stratified_subsampling",
]

SEED = 42
N_SAMPLES = 2048


class TaskDataError(ValueError):
    """Missing or malformed task data; the message names the task, the field and a fix."""


def column_values(ds: Dataset, column: str, *, as_arrow: bool = False) -> Any:
    """A column as a Python list (or pyarrow ChunkedArray), respecting ``select`` indices.

    ``ds[column]`` iterates row by row in datasets 5 (about 25 s per million values); the Arrow
    path takes milliseconds and yields the same values.
    """
    arrow = ds.with_format("arrow")[column]
    return arrow if as_arrow else arrow.to_pylist()


def stratified_subsampling(
    dataset_dict: DatasetDict,
    seed: int = SEED,
    splits: tuple[str, ...] = ("test",),
    label: str = "label",
    n_samples: int = N_SAMPLES,
) -> DatasetDict:
    """mteb's ``AbsTask.stratified_subsampling`` for single-label columns.

    A non-``ClassLabel`` column is cast to
    ``ClassLabel(names=sorted(str(values) over all splits))``;
    then every listed split longer than ``n_samples`` becomes
    ``split.train_test_split(test_size=n_samples, seed=seed, stratify_by_column=label)["test"]``.
    """
    if not isinstance(dataset_dict[splits[0]].features[label], ClassLabel):
        names = sorted(
            {
                str(x)
                for ds in dataset_dict.values()
                for x in column_values(ds, label)
                if x is not None
            }
        )
        dataset_dict = dataset_dict.cast_column(label, Value("string")).cast_column(
            label, ClassLabel(names=names)
        )
    for split in splits:
        if n_samples >= len(dataset_dict[split]):
            continue
        dataset_dict[split] = dataset_dict[split].train_test_split(
            test_size=n_samples, seed=seed, stratify_by_column=label
        )["test"]
    return dataset_dict


def _eval_split_dicts(dd: DatasetDict, meta: TaskMetadata) -> list[str]:
    missing = [s for s in meta.eval_splits if s not in dd]
    if missing:
        raise TaskDataError(
            f"{meta.name}: split(s) {missing} missing (found {list(dd)}); "
            f"fix: provide {', '.join(missing)} data for the task"
        )
    return list(meta.eval_splits)


def _check_sets(ds: Dataset, meta: TaskMetadata) -> None:
    for column in ("sentences", "labels"):
        if column not in ds.column_names:
            raise TaskDataError(
                f"{meta.name}: field {column!r} missing (have {ds.column_names}); "
                "fix: rows {'sentences': [...], 'labels': [...]}, one cluster set per row"
            )
        for i, value in enumerate(column_values(ds, column)):
            if not isinstance(value, list):
                raise TaskDataError(
                    f"{meta.name}: row {i} field {column!r} is {type(value).__name__}, expected a "
                    "list (one cluster set per row); fix: store each set as lists"
                )


def _flatten_sets(ds: Dataset, meta: TaskMetadata) -> Dataset:
    """One row per document from rows that each hold a cluster set (``sentences``/``labels`` lists).

    (mteb also runs ``_check_label_distribution`` here; it tests each set's labels against the
    union of all sets' labels, which cannot fail, so it is not repeated.)
    """
    _check_sets(ds, meta)
    labels = list(itertools.chain.from_iterable(column_values(ds, "labels")))
    sentences = list(itertools.chain.from_iterable(column_values(ds, "sentences")))
    if len(labels) != len(sentences):
        raise TaskDataError(
            f"{meta.name}: 'sentences' and 'labels' lists differ in length "
            f"({len(sentences)} vs {len(labels)}); fix: give one label per sentence"
        )
    return Dataset.from_dict({"labels": labels, "sentences": sentences})


def _flatten_clusters(dd: DatasetDict, meta: TaskMetadata) -> DatasetDict:
    """Medrxiv*.v2, TwentyNewsgroupsClustering.v2: flatten the eval splits, keep duplicates."""
    return DatasetDict({s: _flatten_sets(dd[s], meta) for s in _eval_split_dicts(dd, meta)})


def _check_only(dd: DatasetDict, meta: TaskMetadata) -> DatasetDict:
    """BiorxivClusteringP2P.v2: already one row per document; mteb's transform only runs
    ``_check_label_distribution``, which cannot fail, so the rows pass through unchanged."""
    _eval_split_dicts(dd, meta)
    return dd


def _split_labels(record: dict) -> dict:
    record["labels"] = record["labels"].split(".")
    return record


def _arxiv_hierarchical(dd: DatasetDict, meta: TaskMetadata) -> DatasetDict:
    """ArXivHierarchicalClustering*: flatten, ``"cs.AI" -> ["cs", "AI"]``, then
    ``test.train_test_split(test_size=2048, seed=42)["test"]`` (not stratified)."""
    out = _flatten_clusters(dd, meta).map(_split_labels)
    out["test"] = out["test"].train_test_split(test_size=N_SAMPLES, seed=SEED)["test"]
    return out


def _flatten_stratified_subsample(dd: DatasetDict, meta: TaskMetadata) -> DatasetDict:
    """StackExchangeClustering.v2: flatten, then stratified 2048 on ``labels``; mteb also resets
    ``max_fraction_of_documents_to_embed`` to None (already recorded in the registry's params)."""
    out = _flatten_clusters(dd, meta)
    return stratified_subsampling(out, SEED, tuple(meta.eval_splits), label="labels")


def _flatten_drop_singletons(dd: DatasetDict, meta: TaskMetadata) -> DatasetDict:
    """StackExchangeClusteringP2P.v2: flatten; for each label seen exactly once (in
    ``np.unique`` order) remove its first occurrence."""
    out = {}
    for split in _eval_split_dicts(dd, meta):
        _check_sets(dd[split], meta)
        labels = list(itertools.chain.from_iterable(column_values(dd[split], "labels")))
        sentences = list(itertools.chain.from_iterable(column_values(dd[split], "sentences")))
        unique_labels, counts = np.unique(labels, return_counts=True)
        for solo in unique_labels[np.where(counts == 1)]:
            loc = labels.index(solo)
            labels.pop(loc)
            sentences.pop(loc)
        out[split] = Dataset.from_dict({"labels": labels, "sentences": sentences})
    return DatasetDict(out)


def _stratified_subsample_test(dd: DatasetDict, meta: TaskMetadata) -> DatasetDict:
    """ToxicConversationsClassification: test split stratified to 2048 rows (seed 42)."""
    return stratified_subsampling(dd, SEED, ("test",), label="label")


def _rename_sent_columns(dd: DatasetDict, meta: TaskMetadata) -> DatasetDict:
    """Sprint/TwitterSemEval2015/TwitterURLCorpus store ``sent1``/``sent2``; mteb renames them."""
    columns = next(iter(dd.values())).column_names
    if "sent1" in columns:
        dd = dd.rename_column("sent1", "sentence1")
    if "sent2" in columns:
        dd = dd.rename_column("sent2", "sentence2")
    return dd


def _sib200_classification(dd: DatasetDict, meta: TaskMetadata) -> DatasetDict:
    """SIB200Classification: hub rows (``category``) -> ``class_encode_column`` + rename to
    ``label``, drop ``index_id``. Local rows already have ``label`` (kept as strings)."""
    columns = next(iter(dd.values())).column_names
    if "category" in columns:
        dd = dd.class_encode_column("category").rename_columns({"category": "label"})
    if "index_id" in columns:
        dd = dd.remove_columns(["index_id"])
    return dd


def _sib200_clustering(dd: DatasetDict, meta: TaskMetadata) -> DatasetDict:
    """SIB200ClusteringS2S: train + validation + test concatenated into one ``test`` split of
    documents (hub: ``category``/``text`` columns; local: one cluster set), then
    ``class_encode_column("labels")``."""
    columns = next(iter(dd.values())).column_names
    if "category" in columns:
        parts = [dd[s] for s in ("train", "validation", "test")]
        merged = concatenate_datasets(parts)
        test = Dataset.from_dict(
            {
                "labels": column_values(merged, "category"),
                "sentences": column_values(merged, "text"),
            }
        )
    else:
        test = _flatten_sets(dd[_eval_split_dicts(dd, meta)[0]], meta)
    return DatasetDict({"test": test}).class_encode_column("labels")


TRANSFORMS: dict[str, Callable[[DatasetDict, TaskMetadata], DatasetDict]] = {
    "stratified_subsample_test": _stratified_subsample_test,
    "arxiv_hierarchical": _arxiv_hierarchical,
    "check_label_distribution": _check_only,
    "flatten_clusters": _flatten_clusters,
    "flatten_stratified_subsample": _flatten_stratified_subsample,
    "flatten_drop_singletons": _flatten_drop_singletons,
    "rename_sent_columns": _rename_sent_columns,
    "sib200_classification": _sib200_classification,
    "sib200_clustering": _sib200_clustering,
}


def apply_transform(meta: TaskMetadata, dataset_dict: DatasetDict) -> DatasetDict:
    """Run ``meta.transform`` (if any) on one subset's splits."""
    if meta.transform is None:
        return dataset_dict
    try:
        fn = TRANSFORMS[meta.transform]
    except KeyError:
        raise TaskDataError(
            f"{meta.name}: unknown transform {meta.transform!r}; "
            f"fix: use one of {sorted(TRANSFORMS)}"
        ) from None
    return fn(dataset_dict, meta)
