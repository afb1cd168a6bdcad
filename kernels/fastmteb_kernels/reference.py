"""Plain numpy/torch references for the kernels, used by the parity tests. Slow, obvious, exact.

One section per kernel; each helper appends its own section.
"""

from __future__ import annotations

import numpy as np
import torch


# ---------------------------------------------------------------- search (topk)


def topk_reference(
    queries: np.ndarray | torch.Tensor,
    corpus: np.ndarray | torch.Tensor,
    k: int,
    *,
    metric: str = "cosine",
    tie_rank: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Brute force: the full float32 score matrix, then a stable sort per query.

    Order: score descending, then ``tie_rank`` descending (if given), then index ascending.
    Cosine rows are normalised with ``torch.nn.functional.normalize`` (eps 1e-12).
    """
    q = torch.as_tensor(queries).detach().cpu().float()
    d = torch.as_tensor(corpus).detach().cpu().float()
    if metric == "cosine":
        q = torch.nn.functional.normalize(q, dim=1, eps=1e-12)
        d = torch.nn.functional.normalize(d, dim=1, eps=1e-12)
    scores = (q @ d.T).numpy()
    n_docs = scores.shape[1]
    index = np.arange(n_docs, dtype=np.int64)
    secondary = np.zeros(n_docs, dtype=np.int64) if tie_rank is None else np.asarray(tie_rank)
    kept = min(k, n_docs)
    out_scores = np.empty((scores.shape[0], kept), dtype=np.float32)
    out_index = np.empty((scores.shape[0], kept), dtype=np.int64)
    for row in range(scores.shape[0]):
        order = np.lexsort((index, -secondary, -scores[row].astype(np.float64)))[:kept]
        out_scores[row] = scores[row, order]
        out_index[row] = order
    return out_scores, out_index


# ---------------------------------------------------------------- ranking (ranking_metrics)


def ranking_metrics_reference(
    qrels: dict[str, dict[str, int]],
    run: dict[str, dict[str, float]],
    k_values: tuple[int, ...],
) -> dict[str, dict[str, float]]:
    """trec_eval's ndcg_cut / map_cut / recall / P / success and mteb's MRR, written out plainly:
    ``{query_id: {"ndcg_at_10": ..., ...}}`` for pytrec_eval's queries (in the run, with at least
    one judgment), in run order.

    One full sort per query: by (float32 score, id) descending for the trec measures, by
    (float64 score, id) descending for MRR (mteb sorts the Python floats). Positive = grade > 0.
    """
    import math

    per_query: dict[str, dict[str, float]] = {}
    for query_id, scored in run.items():
        judged = qrels.get(query_id)
        if not judged:
            continue
        positive = {doc_id: grade for doc_id, grade in judged.items() if grade > 0}
        n_relevant = len(positive)
        ideal = sorted(positive.values(), reverse=True)
        trec_order = sorted(scored, key=lambda d: (float(np.float32(scored[d])), d), reverse=True)
        mrr_order = sorted(scored, key=lambda d: (scored[d], d), reverse=True)
        values: dict[str, float] = {}
        for k in k_values:
            dcg = ideal_dcg = precision_sum = 0.0
            hits = 0
            for rank, doc_id in enumerate(trec_order[:k], start=1):
                if doc_id in positive:
                    hits += 1
                    dcg += positive[doc_id] / math.log2(rank + 1)
                    precision_sum += hits / rank
            for i, grade in enumerate(ideal[:k]):
                ideal_dcg += grade / math.log2(i + 2)
            first = next((r for r, d in enumerate(mrr_order[:k], start=1) if d in positive), 0)
            values[f"ndcg_at_{k}"] = dcg / ideal_dcg if ideal_dcg > 0 else dcg
            values[f"map_at_{k}"] = precision_sum / n_relevant if n_relevant else 0.0
            values[f"recall_at_{k}"] = hits / n_relevant if n_relevant else 0.0
            values[f"precision_at_{k}"] = hits / k
            values[f"mrr_at_{k}"] = 1.0 / first if first else 0.0
            values[f"hit_rate_at_{k}"] = 1.0 if hits else 0.0
        per_query[query_id] = values
    return per_query
