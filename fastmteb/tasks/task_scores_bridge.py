"""Any mteb retrieval task's own ``task_specific_scores`` hook, fed with fastmteb's search results.

mteb's ``AbsTaskRetrieval._evaluate_subset`` ends with::

    task_specific_scores = self.task_specific_scores(
        all_scores,                    # pytrec_eval per query: {qid: {"ndcg_cut_10": ..., "map_cut_10": ...,
                                       #   "recall_10": ..., "P_10": ..., "success_10": ...}} (after skip_first_result)
        data_split["relevant_docs"],   # the split's qrels as loaded: {qid: {doc id: int grade}}, every qid
        results,                       # the top max(k_values) per query: {qid: {doc id: float score}},
                                       #   identical ids dropped (ignore_identical_ids), first result kept
        hf_split=hf_split, hf_subset=hf_subset,
    )

and appends what it returns to the score dict. fastmteb recognises three hooks and computes them
itself (p-MRR, robustness@10, paired accuracy: ``Retrieval.mteb_task_score_markers``); for every other
hook (LMEB's capped recall, IFIR's level scores, ...) the retrieval type sets
``task_specific_scores="mteb_hook"`` and this module rebuilds those three arguments from fastmteb's
arrays and calls the task class's own hook, so its extra keys are mteb's by construction.

The per-query metrics come from fastmteb's ranking kernel (pytrec_eval's values, its names mapped:
``ndcg_at_K`` -> ``ndcg_cut_K``, ``map_at_K`` -> ``map_cut_K``, ``recall_at_K`` -> ``recall_K``,
``precision_at_K`` -> ``P_K``, ``hit_rate_at_K`` -> ``success_K``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Mapping, Sequence

import numpy as np

__all__ = ["HookContext", "context", "hook_scores", "results_dict", "pytrec_scores"]

_PYTREC_NAMES = (
    ("ndcg_at_", "ndcg_cut_"),
    ("map_at_", "map_cut_"),
    ("recall_at_", "recall_"),
    ("precision_at_", "P_"),
    ("hit_rate_at_", "success_"),
)


@dataclass(frozen=True)
class HookContext:
    """What a hook needs that the retrieval type's prepared data does not keep."""

    split: str
    subset: str
    qrels: Mapping[str, Mapping[str, int]]  # every qid of the split's qrels, as mteb's loader gives


def context(split: str, subset: str, qrels: Mapping[str, Mapping[str, int]]) -> HookContext:
    """Built in ``prepare`` from the split's qrels (all of them, as mteb's ``relevant_docs``)."""
    return HookContext(split, subset, {qid: dict(docs) for qid, docs in qrels.items() if docs})


@lru_cache(maxsize=None)
def _task(name: str) -> Any:
    import mteb

    return mteb.get_task(name)


def results_dict(query_ids: Sequence[str], corpus_ids: Sequence[str], run: Any) -> dict[str, dict[str, float]]:
    """``{qid: {doc id: score}}`` from a CSR run (best first), mteb's ``results``."""
    out: dict[str, dict[str, float]] = {}
    docs, scores, indptr = run.docs, run.scores, run.indptr
    for row, qid in enumerate(query_ids):
        lo, hi = int(indptr[row]), int(indptr[row + 1])
        out[qid] = {corpus_ids[int(d)]: float(s) for d, s in zip(docs[lo:hi], scores[lo:hi])}
    return out


def pytrec_scores(
    query_ids: Sequence[str], per_query: Mapping[str, np.ndarray], k_values: Sequence[int]
) -> dict[str, dict[str, float]]:
    """pytrec_eval's per-query dict (mteb's ``all_scores``) from fastmteb's per-query arrays."""
    columns = []
    for ours, theirs in _PYTREC_NAMES:
        for k in k_values:
            key = f"{ours}{k}"
            if key in per_query:
                columns.append((f"{theirs}{k}", np.asarray(per_query[key], dtype=np.float64)))
    return {
        qid: {name: float(values[row]) for name, values in columns} for row, qid in enumerate(query_ids)
    }


def hook_scores(meta: Any, prepared: Any, ranked: Any, per_query: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """The task's own ``task_specific_scores`` on fastmteb's results (see the module docstring)."""
    ctx: HookContext = prepared.hook_context
    task = _task(meta.name)
    return dict(
        task.task_specific_scores(
            pytrec_scores(prepared.query_ids, per_query, prepared.k_values),
            {qid: dict(docs) for qid, docs in ctx.qrels.items()},
            results_dict(prepared.query_ids, prepared.corpus_ids, ranked),
            hf_split=ctx.split,
            hf_subset=ctx.subset,
        )
    )
