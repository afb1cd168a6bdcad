"""PairClassification (mteb ``AbsTaskPairClassification``): best threshold accuracy/F1 and AP per
similarity function.

Params: ``input1_prompt_type`` / ``input2_prompt_type`` (None). Canonical rows are one pair each
(``sentence1``, ``sentence2``, ``labels``); mteb's legacy single-row storage (one row holding three
lists) is unpacked here too, as mteb does.
Requests: ``sentence1`` and ``sentence2`` (row-aligned).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from fastmteb import kernels
from fastmteb.tasks._common import (
    RowType,
    column,
    device_embedding,
    pair_prompt_types,
    paired_scores,
    sentence_pair_requests,
    split_rows,
)
from fastmteb.tasks._mteb_task import MtebTaskReader, plain
from fastmteb.tasks.base import TaskMetadata, TextRequest

# (name, higher score = more similar), in mteb's report order
_SCORE_FUNCTIONS = (
    ("similarity", True),
    ("cosine", True),
    ("manhattan", False),
    ("euclidean", False),
    ("dot", True),
)
_METRICS = ("accuracy", "f1", "precision", "recall", "ap")


@dataclass(frozen=True)
class PairPrepared:
    sentence1: list[str]
    sentence2: list[str]
    labels: np.ndarray  # int64 0/1
    prompt_types: tuple[Any, Any]


class PairClassification(RowType, MtebTaskReader):
    columns = {"sentence1": "str", "sentence2": "str", "labels": "binary"}
    name = "PairClassification"
    mteb_abstasks = ("AbsTaskPairClassification",)
    mteb_columns = {
        "sentence1": ("input1_column_name", "sentence1"),
        "sentence2": ("input2_column_name", "sentence2"),
        "labels": ("label_column_name", "labels"),
    }

    def mteb_params(self, task: Any) -> dict[str, Any]:
        return {
            "input1_prompt_type": plain(task.input1_prompt_type),
            "input2_prompt_type": plain(task.input2_prompt_type),
        }

    def normalise(self, meta: TaskMetadata, splits: Any) -> Any:
        """Local files name the pair label ``label``; mteb's datasets name it ``labels``."""
        names = next(iter(splits.values())).column_names
        if "label" in names and "labels" not in names:
            splits = splits.rename_column("label", "labels")
        return splits

    def finalise_split(self, meta: TaskMetadata, rows: Any) -> Any:
        """mteb's legacy pair storage: one row holding the three lists -> one row per pair."""
        if len(rows) == 1 and isinstance(rows[0].get("labels"), list):
            from datasets import Dataset

            return Dataset.from_dict(rows[0])
        return rows

    def prepare(self, meta: TaskMetadata, raw: Mapping[str, Any], split: str, subset: str) -> PairPrepared:
        rows = split_rows(meta, raw, split)
        where = f"split {split!r}"
        sentence1 = column(meta, rows, "sentence1", where)
        sentence2 = column(meta, rows, "sentence2", where)
        labels = column(meta, rows, "labels", where)
        if len(sentence1) == 1 and isinstance(sentence1[0], list):  # legacy: one row of lists
            sentence1, sentence2, labels = sentence1[0], sentence2[0], labels[0]
        return PairPrepared(
            sentence1=list(sentence1),
            sentence2=list(sentence2),
            labels=np.asarray(labels, dtype=np.int64),
            prompt_types=pair_prompt_types(meta),
        )

    def requests(self, prepared: PairPrepared) -> dict[str, TextRequest]:
        return sentence_pair_requests(prepared)

    def score(self, meta: TaskMetadata, prepared: PairPrepared, embeddings: Mapping[str, Any]) -> dict:
        """``{name}_{accuracy,f1,precision,recall,ap}`` per similarity function, then ``max_*``.

        Each ``max_*`` is the maximum over the five functions independently (mteb).
        """
        n = prepared.labels.shape[0]
        vectors = paired_scores(
            device_embedding(meta, embeddings, "sentence1", n),
            device_embedding(meta, embeddings, "sentence2", n),
        )
        out: dict[str, float] = {}
        best: dict[str, list[float]] = {metric: [] for metric in _METRICS}
        for name, higher_is_better in _SCORE_FUNCTIONS:
            sweep = kernels.pair_sweep(vectors[name], prepared.labels, higher_is_better=higher_is_better)
            for metric in _METRICS:
                value = float(getattr(sweep, metric))
                out[f"{name}_{metric}"] = value
                best[metric].append(value)
        for metric in _METRICS:
            out[f"max_{metric}"] = max(best[metric])
        return out
