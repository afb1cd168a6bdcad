"""STS (mteb ``AbsTaskSTS``): correlation of gold scores with pairwise similarities.

Params: ``min_score`` (0), ``max_score`` (5), ``input1_prompt_type`` / ``input2_prompt_type`` (None).
Requests: ``sentence1`` and ``sentence2`` (row-aligned pairs; no deduplication needed, the text pool
does that).
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
    float64,
    pair_prompt_types,
    paired_scores,
    param,
    sentence_pair_requests,
    split_rows,
)
from fastmteb.tasks._mteb_task import MtebTaskReader, plain, renamed_sentence_pair
from fastmteb.tasks.base import TaskMetadata, TextRequest


@dataclass(frozen=True)
class STSPrepared:
    sentence1: list[str]
    sentence2: list[str]
    gold: list[float]  # normalised (score - min) / (max - min), as mteb's _normalize
    prompt_types: tuple[Any, Any]


class STS(RowType, MtebTaskReader):
    columns = {"sentence1": "str", "sentence2": "str", "score": "number"}
    name = "STS"
    mteb_abstasks = ("AbsTaskSTS",)

    def mteb_params(self, task: Any) -> dict[str, Any]:
        p = {"min_score": task.min_score, "max_score": task.max_score}
        for attr in ("input1_prompt_type", "input2_prompt_type"):
            if getattr(task, attr, None) is not None:
                p[attr] = plain(getattr(task, attr))
        return p

    def mteb_renamed_columns(self, task: Any) -> dict[str, str]:
        return renamed_sentence_pair(task)

    def prepare(self, meta: TaskMetadata, raw: Mapping[str, Any], split: str, subset: str) -> STSPrepared:
        rows = split_rows(meta, raw, split)
        low, high = param(meta, "min_score", 0), param(meta, "max_score", 5)
        gold = [(x - low) / (high - low) for x in column(meta, rows, "score", f"split {split!r}")]
        return STSPrepared(
            sentence1=column(meta, rows, "sentence1", f"split {split!r}"),
            sentence2=column(meta, rows, "sentence2", f"split {split!r}"),
            gold=gold,
            prompt_types=pair_prompt_types(meta),
        )

    def requests(self, prepared: STSPrepared) -> dict[str, TextRequest]:
        return sentence_pair_requests(prepared)

    def score(self, meta: TaskMetadata, prepared: STSPrepared, embeddings: Mapping[str, Any]) -> dict:
        r"""Pearson and Spearman of gold vs each similarity (distances negated, as mteb).

        Keys in mteb's order: ``pearson``, ``spearman`` (model similarity = cosine),
        ``cosine_*``, ``manhattan_*``, ``euclidean_*``.
        """
        n = len(prepared.gold)
        vectors = paired_scores(
            device_embedding(meta, embeddings, "sentence1", n),
            device_embedding(meta, embeddings, "sentence2", n),
        )
        vectors["manhattan"] = -vectors["manhattan"]
        vectors["euclidean"] = -vectors["euclidean"]
        gold = np.asarray(prepared.gold, dtype=np.float64)
        out: dict[str, float] = {}
        for name in ("similarity", "cosine", "manhattan", "euclidean"):
            prefix = "" if name == "similarity" else f"{name}_"
            predicted = float64(vectors[name])
            out[f"{prefix}pearson"] = float(kernels.pearson(gold, predicted))
            out[f"{prefix}spearman"] = float(kernels.spearman(gold, predicted))
        return out
