"""Exact blocked similarity search with a streaming top-k: ``fastmteb.kernels.topk``.

The corpus is streamed in blocks of ``block_size`` documents; each block is scored against the
queries and merged into a running top-k per query, so no ``n_queries x n_docs`` matrix is ever
allocated.

- CPU (numpy arrays, CPU torch tensors, iterables of blocks): the scores of a query block x corpus
  block go through BLAS (``np.matmul`` into one reusable float32 buffer), then a Numba kernel
  (parallel over queries) merges them into a per-query reservoir of candidates: one comparison
  against the running k-th best score rejects almost every score; a full reservoir (2k) is cut
  back to its k best by quickselect. The final k are heap-sorted.
- CUDA (queries as a CUDA torch tensor): scores are packed with the document's tie key into
  unique int64 sort keys. For ``k <= 128`` a fused Triton kernel keeps each query's best keys in
  registers while it walks a split of the corpus block, so only ``K_PAD`` (32 or 128)
  keys per query and split leave it; for larger k a Triton kernel writes every pair's key and
  ``torch.topk`` selects. Either way ``torch.topk`` merges on the device (see
  ``fastmteb.kernels._triton.search``).

Memory: the inputs, one score buffer (64 MiB on the CPU; on CUDA at most 256 MiB of fused
candidates, or 1 GiB of int64 keys for k > 128), one normalised corpus block (cosine with fp32 or
mixed inputs; on CUDA half inputs are scaled in the kernel instead), and the per-query candidates
(``n_queries x 2k`` float32 + int64 on the CPU).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from fastmteb.kernels._inputs import (
    ArrayLike,
    Corpus,
    SearchInputError,
    check_2d,
    check_k_metric,
    check_tie_rank_length,
    corpus_length,
    empty_corpus_error,
    iter_corpus_blocks,
    nan_error,
    tie_rank_to_numpy,
    unique_tie_key,
)
from fastmteb.kernels._numba import search as _nb
from fastmteb.kernels.normalize import unit_rows

__all__ = ["SearchInputError", "topk"]

CPU_SCORE_BUFFER_BYTES = 64 * 2**20  # float32 scores of one query block x corpus block
_MIN_BLOCK, _MAX_BLOCK, _BLOCK_ALIGN = 1024, 16384, 256


def topk(
    queries: ArrayLike,
    corpus: Corpus,
    k: int,
    *,
    metric: Literal["cosine", "dot"] = "cosine",
    block_size: int | None = None,
    tie_rank: ArrayLike | None = None,
) -> tuple[ArrayLike, ArrayLike]:
    r"""Exact top-k documents per query by cosine or dot-product similarity.

    .. math::
        s_{qd} = \langle \hat q, \hat d \rangle, \quad
        \hat x = x / \max(\lVert x \rVert_2, 10^{-12}) \text{ (cosine) or } \hat x = x \text{ (dot)}

    computed in float32 (fp16/bf16/fp64 inputs are cast to float32 first; on CUDA fp16/bf16 inputs
    go to the tensor cores as they are: products exact, fp32 accumulation, and for cosine the dot is
    scaled by both inverse norms, computed in fp32).
    For each query the
    ``min(k, n_docs)`` documents with the highest :math:`s_{qd}` are returned, best first.

    Ties (equal float32 scores) are broken deterministically:

    - with ``tie_rank``: the document with the **higher** ``tie_rank`` comes first (pass the rank of
      each document id in bytewise string order to reproduce pytrec_eval/mteb, where the larger id
      wins); documents with equal ``tie_rank`` fall back to the lower index first;
    - without ``tie_rank``: the lower corpus index comes first.

    Args:
        queries: ``[n_queries, dim]`` numpy array or torch tensor (CPU or CUDA).
        corpus: ``[n_docs, dim]`` array/tensor (a numpy memmap works and is read block by block),
            a lazy 2-D array with ``shape`` and slicing (a spilled pool's ``RowView``, an h5py
            dataset: sliced ``block_size`` rows at a time), or an iterable of ``[n_i, dim]``
            blocks (arrays or lazy arrays) in document order (read once).
        k: number of documents to keep per query, ``k >= 1``.
        metric: ``"cosine"`` (rows L2-normalised, then dot) or ``"dot"``.
        block_size: documents per corpus block; default chosen from a memory budget
            (64 MiB of float32 scores on the CPU; on CUDA 2**20 documents for k <= 128, else
            1 GiB of int64 keys).
        tie_rank: optional int array ``[n_docs]`` (see ties above).

    Returns:
        ``(scores, indices)`` of shape ``[n_queries, min(k, n_docs)]``, sorted by score
        descending: float32 scores and int64 global corpus indices. numpy arrays for numpy
        queries, torch tensors on the queries' device for torch queries.

    Raises:
        SearchInputError (a ValueError): ``k <= 0``, empty corpus, shape/dtype mismatch, bad
            ``tie_rank``, or a NaN in the inputs or the scores.
    """
    check_k_metric(k, metric)
    if block_size is not None and (int(block_size) != block_size or block_size <= 0):
        raise SearchInputError(f"block_size must be a positive int or None, got {block_size!r}")
    tie_rank_np = tie_rank_to_numpy(tie_rank)
    if isinstance(queries, torch.Tensor) and queries.is_cuda:
        from fastmteb.kernels._triton.search import topk_cuda  # imports triton: only when asked

        return topk_cuda(queries, corpus, k, metric=metric, block_size=block_size,
                         tie_rank=tie_rank_np)
    scores, indices = _topk_cpu(queries, corpus, k, metric, block_size, tie_rank_np)
    if isinstance(queries, torch.Tensor):
        return torch.from_numpy(scores), torch.from_numpy(indices)
    return scores, indices


# ---------------------------------------------------------------- CPU path


def default_cpu_block_size(n_queries: int) -> int:
    """Corpus block so that all queries x one block of float32 scores fit the CPU buffer budget."""
    docs = CPU_SCORE_BUFFER_BYTES // (4 * max(n_queries, 1))
    docs = docs // _BLOCK_ALIGN * _BLOCK_ALIGN
    return int(min(max(docs, _MIN_BLOCK), _MAX_BLOCK))


def _to_numpy_float32(x: ArrayLike) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        x = x if x.dtype == torch.float32 else x.float()
        return x.numpy()
    return x if x.dtype == np.float32 else x.astype(np.float32)


def _prepare_queries_cpu(queries: ArrayLike, metric: str) -> np.ndarray:
    check_2d(queries, "queries")
    q = np.ascontiguousarray(_to_numpy_float32(queries))
    bad = np.isnan(q).any(axis=1)
    if bad.any():
        raise SearchInputError(
            f"queries contain NaN (first in row {int(np.flatnonzero(bad)[0])}); "
            "check the encoder output"
        )
    return unit_rows(q) if metric == "cosine" else q


def _topk_cpu(
    queries: ArrayLike,
    corpus: Corpus,
    k: int,
    metric: str,
    block_size: int | None,
    tie_rank: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    q = _prepare_queries_cpu(queries, metric)
    n_queries, dim = q.shape
    known_docs = corpus_length(corpus)
    if known_docs == 0:
        raise empty_corpus_error()
    if known_docs is not None:
        check_tie_rank_length(tie_rank, known_docs)
        k = min(k, known_docs)  # bounds the reservoirs when k is huge
    block = int(block_size) if block_size else default_cpu_block_size(n_queries)
    query_block = int(max(1, min(n_queries, CPU_SCORE_BUFFER_BYTES // (4 * block))))
    use_tie_key = tie_rank is not None
    tie_key = unique_tie_key(tie_rank) if use_tie_key else np.empty(0, dtype=np.int64)

    capacity = 2 * k
    reservoir_scores = np.empty((n_queries, capacity), dtype=np.float32)
    reservoir_docs = np.empty((n_queries, capacity), dtype=np.int64)
    sizes = np.zeros(n_queries, dtype=np.int64)
    thresholds = np.full(n_queries, -np.inf, dtype=np.float32)
    nan_docs = np.full(n_queries, -1, dtype=np.int64)
    score_buffer = np.empty(query_block * block, dtype=np.float32)
    doc_buffer = np.empty(0, dtype=np.float32)  # allocated once a block needs a copy

    n_docs = 0
    for offset, raw in iter_corpus_blocks(corpus, block, dim):
        n_block = raw.shape[0]
        if n_block == 0:
            continue
        if use_tie_key and offset + n_block > tie_key.shape[0]:
            check_tie_rank_length(tie_rank, offset + n_block)
        if isinstance(raw, torch.Tensor) and raw.dtype == torch.float32 and not raw.is_cuda:
            raw = raw.detach().numpy()
        if _usable_in_place(raw, metric):
            docs = raw  # BLAS reads it in place (also straight from a memmap's pages)
        else:
            if doc_buffer.size < n_block * dim:
                doc_buffer = np.empty(max(block, n_block) * dim, dtype=np.float32)
            docs = _copy_block_cpu(raw, metric, doc_buffer[: n_block * dim].reshape(n_block, dim))
        for q0 in range(0, n_queries, query_block):
            q1 = min(q0 + query_block, n_queries)
            scores = score_buffer[: (q1 - q0) * n_block].reshape(q1 - q0, n_block)
            with _nb._one_thread_when((q1 - q0) * n_block * dim < _nb.SERIAL_MAX_MULTIPLY_ADDS):
                np.matmul(q[q0:q1], docs.T, out=scores)
            _nb._merge_block(scores, offset, reservoir_scores[q0:q1], reservoir_docs[q0:q1],
                             sizes[q0:q1], thresholds[q0:q1], nan_docs[q0:q1], k, tie_key,
                             use_tie_key)
        nan_rows = np.flatnonzero(nan_docs >= 0)
        if nan_rows.size:
            raise nan_error(int(nan_rows[0]), int(nan_docs[nan_rows[0]]))
        n_docs = offset + n_block
    if n_docs == 0:
        raise empty_corpus_error()
    check_tie_rank_length(tie_rank, n_docs)
    kept = min(k, n_docs)
    out_scores = np.empty((n_queries, kept), dtype=np.float32)
    out_docs = np.empty((n_queries, kept), dtype=np.int64)
    _nb._finish(reservoir_scores, reservoir_docs, sizes, kept, out_scores, out_docs, tie_key,
                use_tie_key)
    return out_scores, out_docs


def _usable_in_place(raw: ArrayLike, metric: str) -> bool:
    return (metric == "dot" and isinstance(raw, np.ndarray) and raw.dtype == np.float32
            and raw.flags.c_contiguous)


def _copy_block_cpu(raw: ArrayLike, metric: str, buffer: np.ndarray) -> np.ndarray:
    """The block as C-contiguous float32 in ``buffer`` (L2-normalised rows for cosine)."""
    buffer[...] = _to_numpy_float32(raw) if isinstance(raw, torch.Tensor) else raw
    if metric == "cosine":
        unit_rows(buffer, in_place=True)
    return buffer
