"""Summarization (mteb ``AbsTaskSummarization`` with the v2 ``SummarizationEvaluator``).

Per document and per machine summary, the predicted quality is the maximum over the document's
human summaries of the cosine (and of the dot product); per document, Spearman and Pearson of
the human relevance list against each prediction list; reported values are means over documents.

Params: ``min_score`` (0), ``max_score`` (5). Requests: ``human`` (all human summaries, flattened
in document order) and ``machine`` (all machine summaries, flattened). Source texts are not encoded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import torch

from fastmteb import kernels
from fastmteb.tasks._common import RowType, column, embedding, param, split_rows
from fastmteb.tasks._mteb_task import MtebTaskReader
from fastmteb.tasks.base import TaskMetadata, TextRequest


@dataclass(frozen=True)
class SummarizationPrepared:
    human: list[str]
    machine: list[str]
    human_offsets: np.ndarray  # int64 [n_docs + 1] into ``human``
    machine_offsets: np.ndarray  # int64 [n_docs + 1] into ``machine``
    gold: list[list[float]]  # normalised relevance per machine summary, per document


def _offsets(lists: list[list[Any]]) -> np.ndarray:
    return np.concatenate([[0], np.cumsum([len(x) for x in lists])]).astype(np.int64)


class Summarization(RowType, MtebTaskReader):
    columns = {
        "text": "str",
        "human_summaries": "list[str]",
        "machine_summaries": "list[str]",
        "relevance": "list[number]",
    }
    name = "Summarization"
    mteb_abstasks = ("AbsTaskSummarization",)
    mteb_columns = {
        "text": ("text_column_name", "text"),
        "human_summaries": ("human_summaries_column_name", "human_summaries"),
        "machine_summaries": ("machine_summaries_column_name", "machine_summaries"),
        "relevance": ("relevancy_column_name", "relevance"),
    }

    def mteb_params(self, task: Any) -> dict[str, Any]:
        return {"min_score": task.min_score, "max_score": task.max_score}

    def prepare(
        self, meta: TaskMetadata, raw: Mapping[str, Any], split: str, subset: str
    ) -> SummarizationPrepared:
        rows = split_rows(meta, raw, split)
        where = f"split {split!r}"
        human = column(meta, rows, "human_summaries", where)
        machine = column(meta, rows, "machine_summaries", where)
        low, high = param(meta, "min_score", 0), param(meta, "max_score", 5)
        gold = [((np.array(x) - low) / (high - low)).tolist() for x in column(meta, rows, "relevance", where)]
        return SummarizationPrepared(
            human=[s for summaries in human for s in summaries],
            machine=[s for summaries in machine for s in summaries],
            human_offsets=_offsets(human),
            machine_offsets=_offsets(machine),
            gold=gold,
        )

    def requests(self, prepared: SummarizationPrepared) -> dict[str, TextRequest]:
        return {"human": TextRequest(prepared.human), "machine": TextRequest(prepared.machine)}

    def score(
        self, meta: TaskMetadata, prepared: SummarizationPrepared, embeddings: Mapping[str, Any]
    ) -> dict:
        r"""Means over kept documents of per-document correlations.

        For machine summary m of document d: :math:`\text{cos}_m = \max_h \langle \hat m, \hat h\rangle`
        and :math:`\text{dot}_m = \max_h \langle m, h\rangle` over d's human summaries h, computed
        with the same torch float32 shapes as mteb (one machine summary against the document's
        human summaries). A document is skipped when all its human scores, all its dot
        predictions, or all its cosine predictions are equal. ``pearson``/``spearman`` use the
        model similarity, which for fastmteb's cosine encoders is the cosine.
        """
        human = embedding(meta, embeddings, "human", len(prepared.human))
        machine = embedding(meta, embeddings, "machine", len(prepared.machine))
        machine_tensor = torch.from_numpy(np.ascontiguousarray(machine))
        correlations: dict[str, list[float]] = {key: [] for key in ("cos_s", "cos_p", "dot_s", "dot_p")}
        for doc, gold in enumerate(prepared.gold):
            h0, h1 = prepared.human_offsets[doc], prepared.human_offsets[doc + 1]
            m0, m1 = prepared.machine_offsets[doc], prepared.machine_offsets[doc + 1]
            human_block = torch.from_numpy(np.ascontiguousarray(human[h0:h1]))
            human_unit_t = kernels.unit_rows(human_block).T
            cosine, dot = [], []
            for m in range(m0, m1):
                row = machine_tensor[m : m + 1]
                cosine.append(torch.max(kernels.unit_rows(row) @ human_unit_t).item())
                dot.append(torch.max(row @ human_block.T).item())
            if len(set(gold)) == 1 or len(set(dot)) == 1 or len(set(cosine)) == 1:
                continue
            gold_array = np.asarray(gold, dtype=np.float64)
            cosine_array, dot_array = np.asarray(cosine), np.asarray(dot)
            correlations["cos_s"].append(float(kernels.spearman(gold_array, cosine_array)))
            correlations["cos_p"].append(float(kernels.pearson(gold_array, cosine_array)))
            correlations["dot_s"].append(float(kernels.spearman(gold_array, dot_array)))
            correlations["dot_p"].append(float(kernels.pearson(gold_array, dot_array)))
        means = {key: float(np.mean(values)) for key, values in correlations.items()}
        return {
            "pearson": means["cos_p"],
            "spearman": means["cos_s"],
            "cosine_spearman": means["cos_s"],
            "cosine_pearson": means["cos_p"],
            "dot_pearson": means["dot_p"],
            "dot_spearman": means["dot_s"],
        }
