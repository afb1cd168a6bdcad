"""Inputs and checks shared by the CPU (Numba) and Triton search tests."""

from __future__ import annotations

import heapq

import numpy as np
import torch

from fastmteb.kernels.reference import topk_reference


def random_embeddings(rng: np.random.Generator, rows: int, dim: int) -> np.ndarray:
    return rng.standard_normal((rows, dim)).astype(np.float32)


def tied_embeddings(rng: np.random.Generator, rows: int, dim: int, distinct: int) -> np.ndarray:
    """Rows with exactly four entries of +-1 (norm 2), drawn from ``distinct`` patterns.

    Every dot product is a small integer and every cosine a multiple of 1/4, so scores are exact
    in float32 whatever the summation order: ties are real ties, and many of them.
    """
    patterns = np.zeros((distinct, dim), dtype=np.float32)
    for row in patterns:
        cols = rng.choice(dim, size=4, replace=False)
        row[cols] = rng.choice([-1.0, 1.0], size=4)
    return patterns[rng.integers(0, distinct, size=rows)]


def assert_topk_close(
    scores: np.ndarray,
    indices: np.ndarray,
    queries,
    corpus,
    k: int,
    metric: str,
    atol: float = 2e-5,
) -> None:
    """Exact top-k up to float32 rounding: same scores per rank, each returned index scores what
    it claims, no duplicates, and the same index wherever the reference's score is isolated."""
    ref_scores, ref_indices = topk_reference(queries, corpus, k, metric=metric)
    full_scores, _ = topk_reference(queries, corpus, 10**9, metric=metric)
    assert scores.shape == ref_scores.shape and indices.shape == ref_scores.shape
    assert scores.dtype == np.float32 and indices.dtype == np.int64
    np.testing.assert_allclose(scores, ref_scores, rtol=0, atol=atol)
    q = torch.as_tensor(queries).float()
    d = torch.as_tensor(corpus).float()
    if metric == "cosine":
        q = torch.nn.functional.normalize(q, dim=1)
        d = torch.nn.functional.normalize(d, dim=1)
    claimed = np.take_along_axis((q @ d.T).numpy(), indices, axis=1)
    np.testing.assert_allclose(scores, claimed, rtol=0, atol=atol)
    for row in range(scores.shape[0]):
        assert len(set(indices[row].tolist())) == indices.shape[1]
        assert np.all(np.diff(scores[row]) <= 0)
        column = full_scores[row]
        gap_before = np.r_[np.inf, -np.diff(column)][: scores.shape[1]]
        gap_after = np.r_[-np.diff(column), np.inf][: scores.shape[1]]
        isolated = (gap_before > 4 * atol) & (gap_after > 4 * atol)
        np.testing.assert_array_equal(indices[row][isolated], ref_indices[row][isolated])


def mteb_heap_search(
    queries: np.ndarray, corpus: np.ndarray, doc_ids: list[str], top_k: int, metric: str
) -> list[list[tuple[float, str]]]:
    """mteb 2.26's merge (models/search_wrappers.py): torch.topk per chunk, then a heap of
    ``(score, doc_id)`` tuples capped at top_k, sorted as pytrec_eval ranks (score, id) desc.

    Chunks of ``top_k + 1`` documents (mteb's chunk size is a parameter), so the per-chunk topk
    keeps every candidate and the heap alone decides ties, as it does across mteb's chunks."""
    q = torch.from_numpy(queries)
    d = torch.from_numpy(corpus)
    if metric == "cosine":
        q = torch.nn.functional.normalize(q, dim=1)
        d = torch.nn.functional.normalize(d, dim=1)
    heaps: list[list[tuple[float, str]]] = [[] for _ in range(q.shape[0])]
    chunk = top_k + 1
    for start in range(0, d.shape[0], chunk):
        scores = q @ d[start:start + chunk].T
        values, idx = torch.topk(scores, min(top_k + 1, scores.shape[1]), dim=1, largest=True)
        for heap, row_values, row_idx in zip(heaps, values.tolist(), idx.tolist()):
            for score, doc in zip(row_values, row_idx):
                if len(heap) < top_k:
                    heapq.heappush(heap, (score, doc_ids[start + doc]))
                else:
                    heapq.heappushpop(heap, (score, doc_ids[start + doc]))
    return [sorted(h, key=lambda item: (item[0], item[1].encode()), reverse=True) for h in heaps]


def bytewise_rank(doc_ids: list[str]) -> np.ndarray:
    """Rank of each id in bytewise string order (the tie_rank the retrieval task passes)."""
    order = sorted(range(len(doc_ids)), key=lambda i: doc_ids[i].encode())
    rank = np.empty(len(doc_ids), dtype=np.int64)
    rank[order] = np.arange(len(doc_ids))
    return rank
