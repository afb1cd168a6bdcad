"""Numba kernels behind ``fastmteb.kernels.topk`` on the CPU: merge a block of scores into a
running top-k per query, and the final sort.

Order of documents (best first): score descending; at equal float32 scores the higher
``secondary`` key wins, where ``secondary[j] = tie_key[j]`` when a tie key array is given and
``-j`` (lower global index first) when it is not. ``tie_key`` must be unique per document (the
public wrapper turns the user's ``tie_rank`` into such a permutation).

Each query keeps a reservoir of up to ``2k`` candidates and a threshold (the k-th best score so
far): a new score below it is rejected with a single comparison; a full reservoir is cut back to
its k best by quickselect (the scheme of faiss's ReservoirTopN). The final k are heap-sorted.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, inline="always")
def _secondary(doc: np.int64, tie_key: np.ndarray, use_tie_key: bool) -> np.int64:
    if use_tie_key:
        return tie_key[doc]
    return -doc


@njit(cache=True, inline="always")
def _worse(
    score_a: np.float32,
    doc_a: np.int64,
    score_b: np.float32,
    doc_b: np.int64,
    tie_key: np.ndarray,
    use_tie_key: bool,
) -> bool:
    """True when document a ranks below document b."""
    if score_a != score_b:
        return score_a < score_b
    return _secondary(doc_a, tie_key, use_tie_key) < _secondary(doc_b, tie_key, use_tie_key)


@njit(cache=True, inline="always")
def _sift_down(
    heap_scores: np.ndarray,
    heap_docs: np.ndarray,
    start: int,
    size: int,
    tie_key: np.ndarray,
    use_tie_key: bool,
) -> None:
    """Restore the min-heap property below ``start`` (the worst document at the root)."""
    pos = start
    score = heap_scores[pos]
    doc = heap_docs[pos]
    while True:
        child = 2 * pos + 1
        if child >= size:
            break
        right = child + 1
        if right < size and _worse(
            heap_scores[right], heap_docs[right], heap_scores[child], heap_docs[child],
            tie_key, use_tie_key,
        ):
            child = right
        if not _worse(heap_scores[child], heap_docs[child], score, doc, tie_key, use_tie_key):
            break
        heap_scores[pos] = heap_scores[child]
        heap_docs[pos] = heap_docs[child]
        pos = child
    heap_scores[pos] = score
    heap_docs[pos] = doc


@njit(cache=True, inline="always")
def _swap(scores: np.ndarray, docs: np.ndarray, a: int, b: int) -> None:
    scores[a], scores[b] = scores[b], scores[a]
    docs[a], docs[b] = docs[b], docs[a]


@njit(cache=True)
def _select_best(
    scores: np.ndarray,
    docs: np.ndarray,
    size: int,
    k: int,
    tie_key: np.ndarray,
    use_tie_key: bool,
) -> None:
    """Quickselect: afterwards ``[0, k)`` holds the k best of ``[0, size)``, the worst at k-1.

    Keys are unique (score, secondary) pairs, so the partition never degenerates on ties.
    """
    target = k - 1
    lo, hi = 0, size - 1
    while lo < hi:
        mid = (lo + hi) // 2
        # Median of three as pivot, parked at hi (guards against pre-sorted blocks).
        if _worse(scores[lo], docs[lo], scores[mid], docs[mid], tie_key, use_tie_key):
            _swap(scores, docs, lo, mid)
        if _worse(scores[lo], docs[lo], scores[hi], docs[hi], tie_key, use_tie_key):
            _swap(scores, docs, lo, hi)
        if _worse(scores[hi], docs[hi], scores[mid], docs[mid], tie_key, use_tie_key):
            _swap(scores, docs, mid, hi)
        pivot_score, pivot_doc = scores[hi], docs[hi]
        store = lo
        for i in range(lo, hi):
            if _worse(pivot_score, pivot_doc, scores[i], docs[i], tie_key, use_tie_key):
                _swap(scores, docs, i, store)
                store += 1
        _swap(scores, docs, store, hi)
        if store == target:
            return
        if store < target:
            lo = store + 1
        else:
            hi = store - 1


@njit(cache=True, parallel=True)
def _merge_block(
    block_scores: np.ndarray,  # [n_queries_in_block, n_docs_in_block] float32
    doc_offset: int,  # global index of the block's first document
    reservoir_scores: np.ndarray,  # [n_queries_in_block, capacity] float32, capacity > k
    reservoir_docs: np.ndarray,  # [n_queries_in_block, capacity] int64
    sizes: np.ndarray,  # [n_queries_in_block] int64, filled length of each reservoir
    thresholds: np.ndarray,  # [n_queries_in_block] float32, score of the k-th best so far
    nan_docs: np.ndarray,  # [n_queries_in_block] int64, -1 or the first doc whose score was NaN
    k: int,
    tie_key: np.ndarray,  # [n_docs] int64 or empty
    use_tie_key: bool,
) -> None:
    """Merge one block of scores into the per-query reservoirs (in place).

    A score below the query's threshold is rejected with one comparison; others are appended, and
    a full reservoir is cut back to its k best by quickselect (amortised O(1) per candidate).
    """
    n_queries, n_docs = block_scores.shape
    capacity = reservoir_scores.shape[1]
    for q in prange(n_queries):
        row = block_scores[q]
        kept_scores = reservoir_scores[q]
        kept_docs = reservoir_docs[q]
        size = sizes[q]
        threshold = thresholds[q]
        for j in range(n_docs):
            score = row[j]
            if score < threshold:  # the common case: one comparison
                continue
            if score != score:
                if nan_docs[q] < 0:
                    nan_docs[q] = doc_offset + j
                continue
            kept_scores[size] = score
            kept_docs[size] = doc_offset + j
            size += 1
            if size == capacity:
                _select_best(kept_scores, kept_docs, size, k, tie_key, use_tie_key)
                size = k
                threshold = kept_scores[k - 1]
        sizes[q] = size
        thresholds[q] = threshold


@njit(cache=True, parallel=True)
def _finish(
    reservoir_scores: np.ndarray,
    reservoir_docs: np.ndarray,
    sizes: np.ndarray,
    kept: int,
    out_scores: np.ndarray,  # [n_queries, kept] float32
    out_docs: np.ndarray,  # [n_queries, kept] int64
    tie_key: np.ndarray,
    use_tie_key: bool,
) -> None:
    """Write each query's best ``kept`` documents, best first (select, heapify, heap-sort)."""
    for q in prange(reservoir_scores.shape[0]):
        hs = reservoir_scores[q]
        hd = reservoir_docs[q]
        if sizes[q] > kept:
            _select_best(hs, hd, sizes[q], kept, tie_key, use_tie_key)
        for start in range(kept // 2 - 1, -1, -1):
            _sift_down(hs, hd, start, kept, tie_key, use_tie_key)
        for end in range(kept - 1, 0, -1):
            # Move the worst remaining document to the back, then re-heapify the front.
            _swap(hs, hd, 0, end)
            _sift_down(hs, hd, 0, end, tie_key, use_tie_key)
        for i in range(kept):
            out_scores[q, i] = hs[i]
            out_docs[q, i] = hd[i]
