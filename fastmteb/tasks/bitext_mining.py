"""BitextMining (mteb ``AbsTaskBitextMining``): nearest-neighbour translation retrieval.

Each ``sentence1`` row is matched to its most similar ``sentence2`` row (cosine); the gold match of
row i is row i, or ``gold[i][1]`` when the split has a ``gold`` column (BUCC).
Params: ``parallel_subsets`` (False): when True the subset name is ``"xx-yy"`` and the two texts
are the columns ``xx`` and ``yy`` of the split (mteb's parallel datasets).
Requests: ``sentence1`` and ``sentence2``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from fastmteb import kernels
from fastmteb.tasks._common import RowType, TaskTypeError, column, embedding, param, split_rows
from fastmteb.tasks._mteb_task import MtebTaskReader, renamed_sentence_pair
from fastmteb.tasks.base import TaskMetadata, TextRequest


@dataclass(frozen=True)
class BitextPrepared:
    sentence1: list[str]
    sentence2: list[str]
    gold: np.ndarray  # int64 [len(sentence1)]: index into sentence2 of the true translation


class BitextMining(RowType, MtebTaskReader):
    columns = {"sentence1": "str", "sentence2": "str"}
    name = "BitextMining"
    mteb_abstasks = ("AbsTaskBitextMining",)

    def mteb_params(self, task: Any) -> dict[str, Any]:
        return {"parallel_subsets": task.parallel_subsets}

    def mteb_renamed_columns(self, task: Any) -> dict[str, str]:
        return renamed_sentence_pair(task)

    def schema(self, meta: TaskMetadata, subset: str) -> dict[str, str]:
        if param(meta, "parallel_subsets", False):  # the subset "xx-yy" names the two columns
            return {column: "str" for column in subset.split("-", 1)}
        return dict(self.columns)

    def prepare(self, meta: TaskMetadata, raw: Mapping[str, Any], split: str, subset: str) -> BitextPrepared:
        rows = split_rows(meta, raw, split)
        where = f"split {split!r}"
        first, second = "sentence1", "sentence2"
        if param(meta, "parallel_subsets", False):
            if subset.count("-") != 1:
                raise TaskTypeError(
                    f"task {meta.name!r}: parallel subset {subset!r} must be 'xx-yy' (two column names)"
                )
            first, second = subset.split("-")
        sentence1 = column(meta, rows, first, where)
        sentence2 = column(meta, rows, second, where)
        names = rows.column_names if hasattr(rows, "column_names") else list(rows)
        if "gold" in names:
            pairs = list(rows["gold"])
            gold = np.asarray([pairs[i][1] for i in range(len(sentence1))], dtype=np.int64)
        else:
            gold = np.arange(len(sentence1), dtype=np.int64)
        return BitextPrepared(sentence1=sentence1, sentence2=sentence2, gold=gold)

    def requests(self, prepared: BitextPrepared) -> dict[str, TextRequest]:
        return {"sentence1": TextRequest(prepared.sentence1), "sentence2": TextRequest(prepared.sentence2)}

    def score(self, meta: TaskMetadata, prepared: BitextPrepared, embeddings: Mapping[str, Any]) -> dict:
        """``precision``, ``recall``, ``f1`` (sklearn's weighted averages, zero_division=0) and
        ``accuracy`` of each row's nearest neighbour (cosine) against its gold index, as mteb."""
        source = embedding(meta, embeddings, "sentence1", len(prepared.sentence1))
        target = embedding(meta, embeddings, "sentence2", len(prepared.sentence2))
        result = kernels.bitext_mine(source, target, method="nn", metric="cosine", gold=prepared.gold)
        return {
            "precision": float(result.precision),
            "recall": float(result.recall),
            "f1": float(result.f1),
            "accuracy": float(result.accuracy),
        }
