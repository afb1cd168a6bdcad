"""``fastmteb.kernels.sharded_topk``: the exact top-k of a corpus streamed in fixed parts from
any row source, searched in one process or split over the ranks of a communicator.

Why fixed parts: BLAS rounds a score's last bits differently with the shape of the product (the
block length, a single query's gemv), so a float32 score is reproducible only if it is computed
in the same block every time. The corpus is cut into parts of ``PART_ROWS`` rows (normalised one
part at a time, so no normalised copy of the corpus is ever whole in memory) and ``topk`` cuts
each part into the same blocks however the corpus is stored (in memory, a memmap, a spill file)
and whichever rank searches it. Rank shards are made of whole parts, so every score, and hence
the merged ranking, is the one-process one to the bit.
"""

from __future__ import annotations

from typing import Any, Iterator, Literal, Protocol

import numpy as np
import torch

from fastmteb.kernels._inputs import ArrayLike, check_k_metric, tie_rank_to_numpy
from fastmteb.kernels.normalize import unit_rows
from fastmteb.kernels.search import topk

PART_ROWS = 1 << 16  # rows normalised together; also the unit of a rank's corpus shard


class RowSource(Protocol):
    """A lazy ``[n_rows, dim]`` array of real rows: ``shape`` and slicing ``source[a:b]`` (any
    array ``np.asarray`` reads: a spilled pool's ``RowView``, an h5py dataset, a memmap).

    It may also offer ``read(start, stop)`` returning rows ``start..stop`` as a writable float32
    array in a buffer it reuses (valid until the next read); the rows are then normalised in that
    buffer, so resident memory stays one kernel block (``fastmteb.encoding.store.RowView`` does).
    """

    @property
    def shape(self) -> tuple[int, int]: ...

    def __getitem__(self, rows: slice) -> Any: ...


class Communicator(Protocol):
    """The collectives ``sharded_topk`` uses; ``fastmteb.distributed.Distributed`` has them."""

    @property
    def rank(self) -> int: ...

    @property
    def world_size(self) -> int: ...

    def all_gather_rows(self, rows: ArrayLike) -> list[ArrayLike]:
        """Every rank's ``rows`` (row counts may differ), in rank order, as numpy for numpy input,
        else tensors on ``rows``' device."""
        ...

    def check_all(self, error: BaseException | None, what: str) -> None:
        """Called by every rank after a step that may fail on some: re-raises this rank's
        ``error``, or raises when another rank failed, so no rank waits for a failed one."""
        ...


def sharded_topk(
    queries: ArrayLike,
    corpus: ArrayLike | RowSource,
    k: int,
    *,
    communicator: Communicator | None = None,
    metric: Literal["cosine", "dot"] = "cosine",
    tie_rank: ArrayLike | None = None,
    block_size: int | None = None,
    part_rows: int | None = None,
) -> tuple[ArrayLike, ArrayLike]:
    r"""Exact top-k documents per query, as ``topk``, with every float32 score mteb's to the bit
    and independent of where the corpus is stored and of how many ranks search it.

    .. math::
        s_{qd} = \langle \hat q, \hat d \rangle, \quad
        \hat x = x / \max(\lVert x \rVert_2, 10^{-12}) \text{ (cosine) or } \hat x = x \text{ (dot)}

    For cosine, queries and corpus rows are normalised by ``unit_rows`` (float32,
    ``torch.nn.functional.normalize`` itself, as mteb's ``cos_sim``), whatever their dtype or
    device, then ranked by dot product. Ties: as ``topk`` (higher ``tie_rank`` first, then the
    lower index).

    With a ``communicator`` of ``world_size > 1``, call on every rank with the same arguments:
    rank ``r`` searches its contiguous shard ``corpus_shard_bounds(...)[r : r + 2]`` and the
    per-rank top-k lists are gathered and merged (``merge_topk``), which is exact because each
    shard's top-k holds its share of the global top-k. Every rank returns the global result; an
    error on one rank is raised on every rank (``communicator.check_all``).

    Args:
        queries: ``[n_queries, dim]`` numpy array or torch tensor (CPU or CUDA).
        corpus: ``[n_docs, dim]`` numpy array, torch tensor or ``RowSource`` (read
            ``part_rows`` rows at a time, never whole).
        k: documents to keep per query, ``k >= 1``.
        communicator: the ranks to split the corpus over; ``None`` searches it all here.
        metric: ``"cosine"`` or ``"dot"``.
        tie_rank: optional int array ``[n_docs]`` (see ``topk``).
        block_size: ``topk``'s corpus block (default: its memory budget).
        part_rows: rows per part (default ``PART_ROWS``); every rank must use the same.

    Returns:
        ``(scores, indices)`` ``[n_queries, min(k, n_docs)]``: float32 scores, best first, and
        int64 indices into the whole corpus; numpy for numpy queries, else tensors on the
        queries' device.

    Raises:
        SearchInputError (a ValueError): as ``topk``.
    """
    check_k_metric(k, metric)
    part_rows = int(part_rows or PART_ROWS)
    normalise = metric == "cosine"
    queries = unit_rows(queries) if normalise else queries
    if communicator is None or communicator.world_size <= 1:
        parts = unit_row_parts(corpus, part_rows=part_rows, normalise=normalise)
        return topk(queries, parts, k, metric="dot", block_size=block_size, tie_rank=tie_rank)

    tie_rank = tie_rank_to_numpy(tie_rank)
    bounds = corpus_shard_bounds(corpus.shape[0], communicator.world_size, part_rows)
    start, stop = int(bounds[communicator.rank]), int(bounds[communicator.rank + 1])
    error = scores = indices = None
    try:
        if stop > start:
            parts = unit_row_parts(corpus[start:stop], part_rows=part_rows, normalise=normalise)
            shard_ties = None if tie_rank is None else tie_rank[start:stop]
            scores, local = topk(queries, parts, k, metric="dot", block_size=block_size,
                                 tie_rank=shard_ties)
            indices = local + start
        else:  # more ranks than parts: this one has nothing to search
            scores, indices = _no_columns(queries, np.float32), _no_columns(queries, np.int64)
    except Exception as failure:  # noqa: BLE001 - raised on every rank by check_all
        error = failure
    communicator.check_all(error, "searching its corpus shard")
    return merge_topk(_gather_columns(communicator, scores),
                      _gather_columns(communicator, indices), k, tie_rank)


def unit_row_parts(
    corpus: ArrayLike | RowSource, *, part_rows: int = PART_ROWS, normalise: bool = True
) -> Iterator[Any]:
    """The corpus as consecutive parts of ``part_rows`` rows (``unit_rows`` of each when
    ``normalise``), for ``topk``: array parts for an array or tensor (one part normalised at a
    time), lazy parts for a ``RowSource`` (read and normalised as ``topk`` slices them)."""
    in_memory = isinstance(corpus, (np.ndarray, torch.Tensor))
    for start in range(0, corpus.shape[0], part_rows):
        stop = min(start + part_rows, corpus.shape[0])
        if not in_memory:
            yield _LazyPart(corpus, start, stop, normalise)
        elif normalise:
            yield unit_rows(corpus[start:stop])
        else:
            yield corpus[start:stop]


class _LazyPart:
    """Rows ``start..stop`` of a ``RowSource``, read (and normalised) only when sliced.

    ``topk`` slices a lazy part into the same blocks as an in-memory one, and ``unit_rows``
    normalises each row alone, so the scores equal those of the same rows in memory."""

    ndim = 2

    def __init__(self, source: RowSource, start: int, stop: int, normalise: bool) -> None:
        self.source, self.start, self.normalise = source, start, normalise
        self.shape = (stop - start, source.shape[1])

    def __getitem__(self, rows: slice) -> np.ndarray:
        first, last, _ = rows.indices(self.shape[0])
        first, last = self.start + first, self.start + last
        read = getattr(self.source, "read", None)
        if read is not None:  # the source's reused float32 buffer: normalised where it lies
            block = read(first, last)
            return unit_rows(block, in_place=True) if self.normalise else block
        block = np.asarray(self.source[first:last])
        return unit_rows(block) if self.normalise else block


def corpus_shard_bounds(n_rows: int, world_size: int, part_rows: int = PART_ROWS) -> np.ndarray:
    """Offsets ``[world_size + 1]`` of the ranks' contiguous corpus shards, made of whole parts of
    ``part_rows`` rows (the last part may be short): the parts are dealt as ``np.array_split``
    deals rows (the first ranks one part more), so a corpus of fewer parts than ranks leaves the
    last ranks empty."""
    n_parts = -(-int(n_rows) // part_rows)
    base, extra = divmod(n_parts, int(world_size))
    rank = np.arange(world_size + 1, dtype=np.int64)
    return np.minimum((base * rank + np.minimum(rank, extra)) * part_rows, int(n_rows))


def merge_topk(
    scores: ArrayLike, indices: ArrayLike, k: int, tie_rank: ArrayLike | None = None
) -> tuple[ArrayLike, ArrayLike]:
    r"""The best ``min(k, m)`` of ``m`` candidates per query, ordered exactly as ``topk``.

    ``scores`` float32 and ``indices`` int64 (global corpus indices, distinct per row) are
    ``[n_queries, m]`` (the local top-k lists of every shard side by side). Order: score
    descending, then the higher ``tie_rank[index]``, then the lower index — three stable sorts
    from the least significant key up. Returns numpy for numpy input, tensors (same device) else.
    """
    numpy_in = not isinstance(scores, torch.Tensor)
    s, i = _as_tensor(scores), _as_tensor(indices).to(torch.int64)
    if s.shape != i.shape or s.ndim != 2:
        raise ValueError(
            f"merge_topk: scores {tuple(s.shape)} and indices {tuple(i.shape)} must both be "
            "[n_queries, candidates]"
        )
    order = torch.argsort(i, dim=1, stable=True)
    keys = []
    if tie_rank is not None:
        ranks = _as_tensor(tie_rank).to(device=i.device, dtype=torch.int64)
        keys.append(ranks[i])
    keys.append(s)
    for key in keys:
        step = torch.argsort(torch.gather(key, 1, order), dim=1, descending=True, stable=True)
        order = torch.gather(order, 1, step)
    order = order[:, : min(int(k), s.shape[1])]
    top_scores, top_indices = torch.gather(s, 1, order), torch.gather(i, 1, order)
    if numpy_in:
        return top_scores.numpy(), top_indices.numpy()
    return top_scores, top_indices


def _as_tensor(x: ArrayLike) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(x))


def _no_columns(queries: ArrayLike, dtype: type) -> ArrayLike:
    if isinstance(queries, torch.Tensor):
        return torch.empty((queries.shape[0], 0), dtype=getattr(torch, np.dtype(dtype).name),
                           device=queries.device)
    return np.empty((queries.shape[0], 0), dtype=dtype)


def _gather_columns(communicator: Communicator, x: ArrayLike) -> ArrayLike:
    """Every rank's ``[n_queries, k_r]`` side by side; ranks differ in ``k_r``, so the
    transposes are gathered as rows."""
    parts = communicator.all_gather_rows(_transpose(x))
    return _transpose(torch.cat(parts) if isinstance(x, torch.Tensor) else np.concatenate(parts))


def _transpose(x: ArrayLike) -> ArrayLike:
    return x.T.contiguous() if isinstance(x, torch.Tensor) else np.ascontiguousarray(x.T)
