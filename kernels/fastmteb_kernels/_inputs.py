"""Input checking and corpus streaming shared by the CPU (``search``) and CUDA
(``_triton.search``) paths of ``fastmteb.kernels.topk``, and by ``sharded_topk``.

Errors are ``SearchInputError`` (a ``ValueError``) whose message names the argument and the fix.
"""

from __future__ import annotations

import mmap
from collections.abc import Iterable, Iterator
from typing import Union

import numpy as np
import torch

ArrayLike = Union[np.ndarray, torch.Tensor]
Corpus = Union[np.ndarray, torch.Tensor, Iterable[ArrayLike]]


class SearchInputError(ValueError):
    """Bad input to ``topk``: the message names the argument and the fix."""


def check_k_metric(k: int, metric: str) -> None:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k <= 0:
        raise SearchInputError(f"k must be a positive int, got {k!r}")
    if metric not in ("cosine", "dot"):
        raise SearchInputError(f"metric must be 'cosine' or 'dot', got {metric!r}")


def tie_rank_to_numpy(tie_rank: ArrayLike | None) -> np.ndarray | None:
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


def is_row_source(x: object) -> bool:
    """A lazy 2-D array (``shape`` + slicing; e.g. a spilled pool's ``RowView``, an h5py or zarr
    dataset): sliced block by block, never loaded whole."""
    return (not isinstance(x, (np.ndarray, torch.Tensor, list, tuple, str, bytes, dict))
            and len(getattr(x, "shape", ())) == 2 and hasattr(x, "__getitem__"))


def iter_corpus_blocks(
    corpus: Corpus, block_size: int, dim: int
) -> Iterator[tuple[int, ArrayLike]]:
    """Yield ``(offset, block)``: contiguous document blocks of at most ``block_size`` rows.

    A part that is a lazy 2-D array (``is_row_source``) is sliced ``block_size`` rows at a time
    and each slice read as an array, so only one block of it is ever in memory.
    """
    if isinstance(corpus, (np.ndarray, torch.Tensor)) or is_row_source(corpus):
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
        lazy = is_row_source(part)
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
    if is_row_source(corpus):
        return int(corpus.shape[0])
    return None


def nan_error(query: int, doc: int) -> SearchInputError:
    return SearchInputError(
        f"NaN similarity for query {query} and document {doc}: the embeddings contain NaN "
        "(or inf); check the encoder output"
    )
