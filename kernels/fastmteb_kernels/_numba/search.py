"""Numba kernels behind ``fastmteb.kernels.topk`` on the CPU: merge a block of scores into a
running top-k per query, and the final sort; ``_one_thread_when`` keeps small BLAS/torch steps on
one thread.

Order of documents (best first): score descending; at equal float32 scores the higher
``secondary`` key wins, where ``secondary[j] = tie_key[j]`` when a tie key array is given and
``-j`` (lower global index first) when it is not. ``tie_key`` must be unique per document (the
public wrapper turns the user's ``tie_rank`` into such a permutation).

Each query keeps a reservoir of up to ``2k`` candidates and a threshold (the k-th best score so
far): a new score below it is rejected with a single comparison; a full reservoir is cut back to
its k best by quickselect (the scheme of faiss's ReservoirTopN). The final k are heap-sorted.
Small calls run serially, large ones over queries in Numba's thread pool.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from numba import njit, prange
from threadpoolctl import ThreadpoolController

# Below these sizes a step runs on one thread: waking a thread pool (Numba's, BLAS's, torch's)
# costs more than the work saves (tens of milliseconds on a busy machine, for under 1 ms of work).
SERIAL_MAX_MULTIPLY_ADDS = 1 << 27  # of one score matmul (queries x docs x dim)
SERIAL_MAX_ELEMENTS = 1 << 21  # of one matrix to L2-normalise
_PARALLEL_MIN_SCORES = 1 << 22  # scores in one query block x corpus block
_PARALLEL_MIN_CANDIDATES = 1 << 18  # reservoir slots (n_queries x 2k) to sort at the end


_blas_pools: ThreadpoolController | None = None


@contextmanager
def _one_thread_when(small: bool) -> Iterator[None]:
    """Inside the block, BLAS and torch run on one thread when ``small`` (else unchanged)."""
    global _blas_pools
    if not small:
        yield
        return
    if _blas_pools is None:
        _blas_pools = ThreadpoolController().select(user_api="blas")
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # OpenMP's setting is per calling thread: other threads keep theirs
    try:
        with _blas_pools.limit(limits=1):
            yield
    finally:
        torch.set_num_threads(torch_threads)


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


@njit(cache=True, inline="always")
def _merge_query(
    q: int,
    block_scores: np.ndarray,
    doc_offset: int,
    reservoir_scores: np.ndarray,
    reservoir_docs: np.ndarray,
    sizes: np.ndarray,
    thresholds: np.ndarray,
    nan_docs: np.ndarray,
    k: int,
    tie_key: np.ndarray,
    use_tie_key: bool,
) -> None:
    """Merge query q's row of the block into its reservoir (see ``_merge_block``)."""
    row = block_scores[q]
    kept_scores = reservoir_scores[q]
    kept_docs = reservoir_docs[q]
    capacity = kept_scores.shape[0]
    size = sizes[q]
    threshold = thresholds[q]
    for j in range(row.shape[0]):
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


@njit(cache=True)
def _merge_block_serial(block_scores, doc_offset, reservoir_scores, reservoir_docs, sizes,
                        thresholds, nan_docs, k, tie_key, use_tie_key):  # noqa: ANN001
    for q in range(block_scores.shape[0]):
        _merge_query(q, block_scores, doc_offset, reservoir_scores, reservoir_docs, sizes,
                     thresholds, nan_docs, k, tie_key, use_tie_key)


@njit(cache=True, parallel=True)
def _merge_block_parallel(block_scores, doc_offset, reservoir_scores, reservoir_docs, sizes,
                          thresholds, nan_docs, k, tie_key, use_tie_key):  # noqa: ANN001
    for q in prange(block_scores.shape[0]):
        _merge_query(q, block_scores, doc_offset, reservoir_scores, reservoir_docs, sizes,
                     thresholds, nan_docs, k, tie_key, use_tie_key)


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
    Runs over queries in Numba's thread pool only when the block is large (``_PARALLEL_MIN_SCORES``).
    """
    merge = (_merge_block_parallel if block_scores.size >= _PARALLEL_MIN_SCORES
             else _merge_block_serial)
    merge(block_scores, doc_offset, reservoir_scores, reservoir_docs, sizes, thresholds,
          nan_docs, k, tie_key, use_tie_key)


@njit(cache=True, inline="always")
def _finish_query(
    q: int,
    reservoir_scores: np.ndarray,
    reservoir_docs: np.ndarray,
    sizes: np.ndarray,
    kept: int,
    out_scores: np.ndarray,
    out_docs: np.ndarray,
    tie_key: np.ndarray,
    use_tie_key: bool,
) -> None:
    """Write query q's best ``kept`` documents, best first (select, heapify, heap-sort)."""
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


@njit(cache=True)
def _finish_serial(reservoir_scores, reservoir_docs, sizes, kept, out_scores, out_docs,
                   tie_key, use_tie_key):  # noqa: ANN001
    for q in range(reservoir_scores.shape[0]):
        _finish_query(q, reservoir_scores, reservoir_docs, sizes, kept, out_scores, out_docs,
                      tie_key, use_tie_key)


@njit(cache=True, parallel=True)
def _finish_parallel(reservoir_scores, reservoir_docs, sizes, kept, out_scores, out_docs,
                     tie_key, use_tie_key):  # noqa: ANN001
    for q in prange(reservoir_scores.shape[0]):
        _finish_query(q, reservoir_scores, reservoir_docs, sizes, kept, out_scores, out_docs,
                      tie_key, use_tie_key)


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
    """Write each query's best ``kept`` documents, best first; in threads only when large."""
    finish = (_finish_parallel if reservoir_scores.size >= _PARALLEL_MIN_CANDIDATES
              else _finish_serial)
    finish(reservoir_scores, reservoir_docs, sizes, kept, out_scores, out_docs, tie_key,
           use_tie_key)
