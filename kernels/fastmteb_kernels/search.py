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

import mmap
from collections.abc import Iterable, Iterator
from typing import Literal, Union

import numpy as np
import torch

from fastmteb.kernels._numba import search as _nb
from fastmteb.kernels.backend import on_triton_path

ArrayLike = Union[np.ndarray, torch.Tensor]
Corpus = Union[np.ndarray, torch.Tensor, Iterable[ArrayLike]]

NORMALIZE_EPS = 1e-12  # as torch.nn.functional.normalize
CPU_SCORE_BUFFER_BYTES = 64 * 2**20  # float32 scores of one query block x corpus block
_MIN_BLOCK, _MAX_BLOCK, _BLOCK_ALIGN = 1024, 16384, 256


class SearchInputError(ValueError):
    """Bad input to ``topk``: the message names the argument and the fix."""


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
    _check_k_metric(k, metric)
    if block_size is not None and (int(block_size) != block_size or block_size <= 0):
        raise SearchInputError(f"block_size must be a positive int or None, got {block_size!r}")
    tie_rank_np = _tie_rank_to_numpy(tie_rank)
    if on_triton_path(queries):  # CUDA tensors; any tensor under use_backend("triton")
        from fastmteb.kernels._triton.search import topk_cuda

        return topk_cuda(queries, corpus, k, metric=metric, block_size=block_size,
                         tie_rank=tie_rank_np)
    scores, indices = _topk_cpu(queries, corpus, k, metric, block_size, tie_rank_np)
    if isinstance(queries, torch.Tensor):
        return torch.from_numpy(scores).to(queries.device), torch.from_numpy(indices).to(queries.device)
    return scores, indices


# ---------------------------------------------------------------- input handling (shared with CUDA)


def _check_k_metric(k: int, metric: str) -> None:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k <= 0:
        raise SearchInputError(f"k must be a positive int, got {k!r}")
    if metric not in ("cosine", "dot"):
        raise SearchInputError(f"metric must be 'cosine' or 'dot', got {metric!r}")


def _tie_rank_to_numpy(tie_rank: ArrayLike | None) -> np.ndarray | None:
    if tie_rank is None:
        return None
    if isinstance(tie_rank, torch.Tensor):
        tie_rank = tie_rank.detach().cpu().numpy()
    tie_rank = np.asarray(tie_rank)
    if tie_rank.ndim != 1 or not np.issubdtype(tie_rank.dtype, np.integer):
        raise SearchInputError(
            f"tie_rank must be a 1-D integer array [n_docs], got shape {tie_rank.shape} "
            f"dtype {tie_rank.dtype}"
        )
    return tie_rank


def unique_tie_key(tie_rank: np.ndarray) -> np.ndarray:
    """A permutation of ``0..n-1`` ordering documents as ``(tie_rank, -index)``; higher wins."""
    n = tie_rank.shape[0]
    order = np.lexsort((-np.arange(n, dtype=np.int64), tie_rank))
    key = np.empty(n, dtype=np.int64)
    key[order] = np.arange(n, dtype=np.int64)
    return key


def check_2d(x: ArrayLike, name: str) -> None:
    if x.ndim != 2:
        raise SearchInputError(f"{name} must be 2-D [rows, dim], got shape {tuple(x.shape)}")
    if isinstance(x, np.ndarray) and not (
        np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)
    ):
        raise SearchInputError(f"{name} must hold real numbers, got dtype {x.dtype}")
    if isinstance(x, torch.Tensor) and (x.is_complex() or x.dtype == torch.bool):
        raise SearchInputError(f"{name} must hold real numbers, got dtype {x.dtype}")


def _is_row_source(x: object) -> bool:
    """A lazy 2-D array (``shape`` + slicing; e.g. a spilled pool's ``RowView``, an h5py or zarr
    dataset): sliced block by block, never loaded whole."""
    return (not isinstance(x, (np.ndarray, torch.Tensor, list, tuple, str, bytes, dict))
            and len(getattr(x, "shape", ())) == 2 and hasattr(x, "__getitem__"))


def iter_corpus_blocks(
    corpus: Corpus, block_size: int, dim: int
) -> Iterator[tuple[int, ArrayLike]]:
    """Yield ``(offset, block)``: contiguous document blocks of at most ``block_size`` rows.

    A part that is a lazy 2-D array (``_is_row_source``) is sliced ``block_size`` rows at a time
    and each slice read as an array, so only one block of it is ever in memory.
    """
    if isinstance(corpus, (np.ndarray, torch.Tensor)) or _is_row_source(corpus):
        check_2d(corpus, "corpus")
        parts: Iterable[ArrayLike] = (corpus,)
    elif isinstance(corpus, (str, bytes, dict)) or not isinstance(corpus, Iterable):
        raise SearchInputError(
            "corpus must be a 2-D array/tensor or an iterable of 2-D blocks, "
            f"got {type(corpus).__name__}"
        )
    else:
        parts = corpus
    offset = 0
    for part in parts:
        lazy = _is_row_source(part)
        if not lazy and not isinstance(part, (np.ndarray, torch.Tensor)):
            part = np.asarray(part)
        check_2d(part, "corpus block")
        if part.shape[1] != dim:
            raise SearchInputError(
                f"corpus dim {part.shape[1]} != queries dim {dim} (block at document {offset})"
            )
        for start in range(0, part.shape[0], block_size):
            block = part[start:start + block_size]
            if lazy and not isinstance(block, (np.ndarray, torch.Tensor)):
                block = np.asarray(block)
            yield offset, block
            _drop_mapped_pages(block)
            offset += block.shape[0]


def _drop_mapped_pages(block: ArrayLike) -> None:
    """Once a block of a read-only ``np.memmap`` is searched, unmap its pages from this process
    (``madvise(MADV_DONTNEED)``): they stay in the page cache for the next reader, but no longer
    count in the process's RSS, which therefore stays about one block however large the file."""
    mapping = getattr(block, "_mmap", None)
    if (mapping is None or getattr(block, "mode", None) != "r" or not hasattr(mapping, "madvise")
            or not block.flags.c_contiguous or block.nbytes == 0):
        return
    whole = np.frombuffer(mapping, dtype=np.uint8)
    start = block.ctypes.data - whole.ctypes.data
    del whole  # releases the buffer export
    first_page = start - start % mmap.PAGESIZE
    try:
        mapping.madvise(mmap.MADV_DONTNEED, first_page, start + block.nbytes - first_page)
    except (OSError, ValueError):  # an unusual mapping: keep the pages, correctness is unaffected
        pass


def empty_corpus_error() -> SearchInputError:
    return SearchInputError(
        "corpus is empty (0 documents): pass at least one document row, or skip the search "
        "for this task"
    )


def check_tie_rank_length(tie_rank: np.ndarray | None, n_docs: int) -> None:
    if tie_rank is not None and tie_rank.shape[0] != n_docs:
        raise SearchInputError(
            f"tie_rank has {tie_rank.shape[0]} entries but the corpus has {n_docs} documents; "
            "pass one rank per document"
        )


def corpus_length(corpus: Corpus) -> int | None:
    """Number of documents when known without reading the corpus."""
    if isinstance(corpus, (np.ndarray, torch.Tensor)):
        return int(corpus.shape[0]) if corpus.ndim >= 1 else None
    if _is_row_source(corpus):
        return int(corpus.shape[0])
    return None


def nan_error(query: int, doc: int) -> SearchInputError:
    return SearchInputError(
        f"NaN similarity for query {query} and document {doc}: the embeddings contain NaN "
        "(or inf); check the encoder output"
    )


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
    return _unit_rows(q) if metric == "cosine" else q


def _unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled by torch.nn.functional.normalize itself: bit-identical to mteb's cos_sim."""
    with _nb._one_thread_when(x.size < _nb.SERIAL_MAX_ELEMENTS):
        return torch.nn.functional.normalize(
            torch.from_numpy(x), p=2, dim=1, eps=NORMALIZE_EPS).numpy()


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
        buffer[...] = _unit_rows(buffer)
    return buffer
