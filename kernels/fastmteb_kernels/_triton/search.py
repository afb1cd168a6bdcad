"""``fastmteb.kernels.topk`` on CUDA: a Triton kernel scores a (query tile x document tile) and
writes each score fused with its document's tie key as one int64 sort key; ``torch.topk`` on the
keys of a corpus block, then on (running keys ++ block keys), keeps the top-k on the device.

Why int64 keys: ``torch.topk`` picks arbitrarily among equal values, which would make ties (and
so retrieval metrics) depend on the block layout. The key is

    key = (ordered_bits(score) << 32) | secondary,   secondary in [0, 2**31)

where ``ordered_bits`` maps float32 to int32 monotonically (negative floats get their magnitude
bits flipped; -0.0 is folded into +0.0; NaN becomes the largest key so it surfaces and raises),
and ``secondary`` is the unique tie key (``2**31 - 1 - index`` without ``tie_rank``: lower index
first). Keys are unique, so every top-k is exact and deterministic; scores and indices are decoded
from the final keys.

Scores are float32: fp32 inputs use IEEE fp32 ``tl.dot`` (no TF32); fp16/bf16 inputs with the dot
metric go to the tensor cores as they are (products exact, fp32 accumulation); cosine normalises
rows in fp32 first. Runs on CPU tensors under ``TRITON_INTERPRET=1`` (the tests do; bf16 ``tl.dot``
is wrong in the 3.7 interpreter, so only fp32/fp16 are tested there).
"""

from __future__ import annotations

import numpy as np
import torch
import triton
import triton.language as tl

from fastmteb.kernels.search import (
    NORMALIZE_EPS,
    Corpus,
    SearchInputError,
    check_2d,
    check_tie_rank_length,
    corpus_length,
    empty_corpus_error,
    iter_corpus_blocks,
    nan_error,
    unique_tie_key,
)

GPU_KEY_BUFFER_BYTES = 2**30  # int64 keys of one query block x corpus block
_MIN_BLOCK, _MAX_BLOCK, _BLOCK_ALIGN = 4096, 262144, 256
_INDEX_LIMIT = 2**31 - 1  # secondary keys live in the low 31 bits
_HALF = (torch.float16, torch.bfloat16)


@triton.jit
def _score_keys_kernel(
    q_ptr, d_ptr, tie_key_ptr, keys_ptr,
    n_queries, n_docs, dim, doc_offset,
    stride_q, stride_d, stride_keys,
    USE_TIE_KEY: tl.constexpr, IEEE: tl.constexpr,
    BLOCK_Q: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_K: tl.constexpr,
):
    rows = tl.program_id(0) * BLOCK_Q + tl.arange(0, BLOCK_Q)
    cols = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    rows64 = rows.to(tl.int64)
    cols64 = cols.to(tl.int64)
    row_ok = rows < n_queries
    col_ok = cols < n_docs
    inner = tl.arange(0, BLOCK_K)
    acc = tl.zeros((BLOCK_Q, BLOCK_D), dtype=tl.float32)
    for start in range(0, dim, BLOCK_K):
        depth = start + inner
        depth_ok = depth < dim
        a = tl.load(q_ptr + rows64[:, None] * stride_q + depth[None, :],
                    mask=row_ok[:, None] & depth_ok[None, :], other=0.0)
        b = tl.load(d_ptr + cols64[None, :] * stride_d + depth[:, None],
                    mask=col_ok[None, :] & depth_ok[:, None], other=0.0)
        if IEEE:
            acc = tl.dot(a, b, acc, input_precision="ieee")
        else:
            acc = tl.dot(a, b, acc)
    acc = tl.where(acc == 0.0, 0.0, acc)  # -0.0 and +0.0 must tie
    bits = acc.to(tl.int32, bitcast=True)
    ordered = tl.where(bits < 0, bits ^ 0x7FFFFFFF, bits)
    ordered = tl.where(acc != acc, 0x7FFFFFFF, ordered)  # NaN: above +inf, decodes to NaN
    if USE_TIE_KEY:
        secondary = tl.load(tie_key_ptr + doc_offset + cols64, mask=col_ok, other=0)
    else:
        secondary = 2147483647 - (doc_offset + cols64)  # _INDEX_LIMIT
    keys = (ordered.to(tl.int64) << 32) | secondary.to(tl.int64)[None, :]
    tl.store(keys_ptr + rows64[:, None] * stride_keys + cols64[None, :], keys,
             mask=row_ok[:, None] & col_ok[None, :])


def default_gpu_block_size(n_queries: int) -> int:
    docs = GPU_KEY_BUFFER_BYTES // (8 * max(n_queries, 1))
    docs = docs // _BLOCK_ALIGN * _BLOCK_ALIGN
    return int(min(max(docs, _MIN_BLOCK), _MAX_BLOCK))


def _prepare(x: torch.Tensor, metric: str, device: torch.device) -> torch.Tensor:
    x = x.detach().to(device, non_blocking=True)
    if metric == "cosine":
        return torch.nn.functional.normalize(x.float(), dim=1, eps=NORMALIZE_EPS).contiguous()
    return (x if x.dtype in _HALF else x.float()).contiguous()


def score_keys(
    queries: torch.Tensor, docs: torch.Tensor, doc_offset: int, tie_key: torch.Tensor | None,
    out: torch.Tensor,
) -> None:
    """out[i, j] = key(score(queries[i], docs[j]), document doc_offset + j)."""
    n_queries, dim = queries.shape
    n_docs = docs.shape[0]
    block_q, block_d, block_k = (64, 128, 32) if queries.is_cuda else (32, 64, 32)
    grid = (triton.cdiv(n_queries, block_q), triton.cdiv(n_docs, block_d))
    use_tie_key = tie_key is not None
    _score_keys_kernel[grid](
        queries, docs, tie_key if use_tie_key else out, out,
        n_queries, n_docs, dim, doc_offset,
        queries.stride(0), docs.stride(0), out.stride(0),
        USE_TIE_KEY=use_tie_key, IEEE=queries.dtype == torch.float32,
        BLOCK_Q=block_q, BLOCK_D=block_d, BLOCK_K=block_k,
        num_warps=8 if queries.is_cuda else 1, num_stages=3 if queries.is_cuda else 1,
    )


def topk_cuda(
    queries: torch.Tensor,
    corpus: Corpus,
    k: int,
    *,
    metric: str,
    block_size: int | None,
    tie_rank: np.ndarray | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The CUDA implementation of ``fastmteb.kernels.topk`` (same contract; torch outputs on the
    queries' device). Also runs on CPU tensors under ``TRITON_INTERPRET=1``."""
    check_2d(queries, "queries")
    device = queries.device
    n_queries, dim = queries.shape
    q = _prepare(queries, metric, device)
    if bool(torch.isnan(q).any()):
        row = int(torch.isnan(q).any(dim=1).nonzero()[0, 0])
        raise SearchInputError(
            f"queries contain NaN (first in row {row}); check the encoder output"
        )
    q_float = q if q.dtype == torch.float32 else None
    known_docs = corpus_length(corpus)
    if known_docs == 0:
        raise empty_corpus_error()
    if known_docs is not None:
        check_tie_rank_length(tie_rank, known_docs)
    block = int(block_size) if block_size else default_gpu_block_size(n_queries)
    query_block = int(max(1, min(n_queries, GPU_KEY_BUFFER_BYTES // (8 * block))))
    tie_key = None
    if tie_rank is not None:
        tie_key_np = unique_tie_key(tie_rank)
        tie_key = torch.from_numpy(tie_key_np).to(device)
    key_buffer = torch.empty(query_block * min(block, known_docs or block), dtype=torch.int64,
                             device=device)
    running: list[torch.Tensor | None] = [None] * triton.cdiv(max(n_queries, 1), query_block)

    n_docs = 0
    for offset, raw in iter_corpus_blocks(corpus, block, dim):
        n_block = raw.shape[0]
        if n_block == 0:
            continue
        if offset + n_block > _INDEX_LIMIT:
            raise SearchInputError(f"corpus has more than {_INDEX_LIMIT} documents; split it")
        if tie_key is not None and offset + n_block > tie_key.shape[0]:
            check_tie_rank_length(tie_rank, offset + n_block)
        if isinstance(raw, np.ndarray) and not raw.flags.writeable:
            raw = np.array(raw)  # e.g. a read-only memmap: torch wants writable memory
        docs = _prepare(torch.as_tensor(raw), metric, device)
        scored = q
        if docs.dtype != q.dtype:  # mixed precisions meet in fp32
            q_float = q.float() if q_float is None else q_float
            scored, docs = q_float, docs.float()
        if key_buffer.numel() < query_block * n_block:
            key_buffer = torch.empty(query_block * n_block, dtype=torch.int64, device=device)
        for part, q0 in enumerate(range(0, n_queries, query_block)):
            q1 = min(q0 + query_block, n_queries)
            keys = key_buffer[: (q1 - q0) * n_block].view(q1 - q0, n_block)
            score_keys(scored[q0:q1], docs, offset, tie_key, keys)
            best = torch.topk(keys, min(k, n_block), dim=1, sorted=False).values
            if running[part] is not None:
                best = torch.cat((running[part], best), dim=1)
                best = torch.topk(best, min(k, best.shape[1]), dim=1, sorted=False).values
            running[part] = best
        n_docs = offset + n_block
    if n_docs == 0:
        raise empty_corpus_error()
    check_tie_rank_length(tie_rank, n_docs)
    if n_queries == 0:
        empty = torch.empty((0, min(k, n_docs)), device=device)
        return empty, empty.long()
    keys = torch.sort(torch.cat(running, dim=0), dim=1, descending=True).values
    scores, indices = decode_keys(keys, tie_key)
    nan_rows = torch.isnan(scores).any(dim=1)
    if bool(nan_rows.any()):
        row = int(nan_rows.nonzero()[0, 0])
        raise nan_error(row, int(indices[row, 0]))
    return scores, indices


def decode_keys(
    keys: torch.Tensor, tie_key: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse of the kernel's packing: float32 scores and int64 corpus indices."""
    ordered = (keys >> 32).to(torch.int32)
    bits = torch.where(ordered < 0, ordered ^ 0x7FFFFFFF, ordered)
    scores = bits.view(torch.float32)
    secondary = keys & 0xFFFFFFFF
    if tie_key is None:
        return scores, _INDEX_LIMIT - secondary
    document_of_key = torch.empty_like(tie_key)
    document_of_key[tie_key] = torch.arange(tie_key.shape[0], device=tie_key.device)
    return scores, document_of_key[secondary]
