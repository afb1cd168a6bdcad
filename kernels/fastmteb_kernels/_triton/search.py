"""``fastmteb.kernels.topk`` on CUDA: a fused, blocked top-k in Triton.

Two paths, one contract (``fastmteb.kernels.search.topk``; inputs checked and the corpus
streamed by ``fastmteb.kernels._inputs``, as on the CPU):

- **fused** (``k <= FUSED_K_MAX = 128``): each program owns ``BLOCK_Q`` queries and one contiguous
  *split* of the corpus block, and walks that split in tiles of ``BLOCK_D`` documents. A tile's
  scores are computed in registers (``tl.dot``) and packed into sort keys (below); a running
  buffer of the ``K_PAD`` best keys per query (``K_PAD`` = 32 for k <= 32, else 128)
  absorbs them. Only those ``K_PAD`` keys per (query, split) leave the kernel; ``torch.topk`` on
  the device merges the splits and the corpus blocks. Inside the kernel a tile is merged one of
  two ways, chosen per tile from the number of keys that beat the buffer's worst (its *floor*):
  more than ``BULK_MIN`` (the first tiles of a split): the tile is sorted (``tl.sort``), its best
  ``K_PAD`` taken, and merged with the ascending-sorted buffer by one bitonic step
  (``max(desc_i, asc_i)`` holds the ``K_PAD`` largest of both); otherwise (the steady state: a tile
  rarely holds more than a few new candidates per query) the candidates are inserted one at a
  time, best first, each replacing the buffer's current worst.
- **keys** (``k > FUSED_K_MAX``): a Triton kernel writes the key of every (query, document) pair of
  a query block x corpus block and ``torch.topk`` selects from them (a larger in-register buffer
  spills, and at such k a split's output is no smaller than the block's keys). See ``DISPATCH``.

Why int64 keys: ``torch.topk`` picks arbitrarily among equal values, which would make ties (and
so retrieval metrics) depend on the block layout. The key is

    key = (ordered_bits(score) << 32) | secondary,   secondary in [0, 2**31)

where ``ordered_bits`` maps float32 to int32 monotonically (negative floats get their magnitude
bits flipped; -0.0 is folded into +0.0; NaN becomes the largest key so it surfaces and raises),
and ``secondary`` is the unique tie key (``2**31 - 1 - index`` without ``tie_rank``: lower index
first). Keys are unique, so every selection is exact and deterministic whatever the split or
block layout; scores and indices are decoded from the final keys. ``EMPTY = -2**63`` (below every
real key: no float maps to ordered bits ``-2**31``) fills unused buffer slots and masked lanes.

Scores are float32. fp32 inputs use IEEE fp32 ``tl.dot`` (no TF32) on rows normalised first by
``torch.nn.functional.normalize`` for cosine (the CPU path's exact rows). fp16/bf16 inputs go to
the tensor cores as they are (``tl.dot`` on the native dtype: products exact, fp32 accumulation);
for cosine the kernel scales the fp32 dot by ``1 / max(||q||, eps)`` and ``1 / max(||d||, eps)``
(norms computed in fp32 from the same half rows), so no fp32 copy of the corpus is made and the
score differs from normalise-then-dot only by fp32 rounding. Mixed query/corpus dtypes meet in fp32.

Runs on CPU tensors under ``TRITON_INTERPRET=1`` (the tests do; bf16 ``tl.dot`` is wrong in the
triton 3.7-3.9 interpreter, so bf16 is tested only on a GPU).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch
import triton
import triton.language as tl

from fastmteb.kernels._inputs import (
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
from fastmteb.kernels.normalize import NORMALIZE_EPS, unit_rows

# DISPATCH: k <= FUSED_K_MAX runs the fused kernel, larger k the keys path. The fused kernel
# holds K_PAD int64 keys per query in registers next to a [BLOCK_Q, BLOCK_D] tile of keys.
# Compiled for sm_90 by triton 3.6 (the GPU image's; bench/aot_compile_check.py), K_PAD = 128 at
# 32 x 128 tiles takes 218-250 registers and no stack (triton 3.9: 248 bytes of stack); an
# earlier 64 x 128 tile spilled 312 bytes, and K_PAD = 256 spilled 240-560 bytes at 16-32 x 256
# tiles and compiled 3x slower. At k ~ 1000 each split would hand back about as many keys as
# the keys path writes per block row anyway, so torch.topk over the block's keys is the tool.
FUSED_K_MAX = 128
FUSED_BLOCK = 2**20  # default documents per corpus block on the fused path (cosine fp32 copies it)
FUSED_OUT_BYTES = 2**28  # int64 candidates handed back by one fused launch
GPU_KEY_BUFFER_BYTES = 2**30  # int64 keys of one query block x corpus block (keys path)
_MIN_BLOCK, _MAX_BLOCK, _BLOCK_ALIGN = 4096, 262144, 256
_INDEX_LIMIT = 2**31 - 1  # secondary keys live in the low 31 bits
_EMPTY = -(2**63)
_HALF = (torch.float16, torch.bfloat16)
_EMPTY_KEY = tl.constexpr(_EMPTY)  # the kernels' name for EMPTY
_FULL_KEY = tl.constexpr(2**63 - 1)


@triton.jit
def _sort_rows(x, ROWS: tl.constexpr, LOG_N: tl.constexpr, DESCENDING: tl.constexpr,
               NATIVE: tl.constexpr):
    """Sort each row of ``x`` ([ROWS, 2**LOG_N]).

    Compiled (NATIVE): ``tl.sort``. Interpreted: the same bitonic network written with
    reshape/permute/split/join and elementwise min/max, because ``tl.sort``'s xor-sum partner
    lookup is a Python-level reduction in the interpreter (~1 s per [16, 32] tile) and every
    reduction re-patches ``tl`` there. Compare-and-swap along bit i of the column index: the
    pair's min goes left, except in the runs that bit ``stage`` of the position marks descending
    (the last stage: all runs in the requested order)."""
    if NATIVE:
        return tl.sort(x, dim=1, descending=DESCENDING)
    else:
        N: tl.constexpr = 1 << LOG_N
        for stage in tl.static_range(1, LOG_N + 1):
            for step in tl.static_range(stage):
                i: tl.constexpr = stage - 1 - step
                A: tl.constexpr = ROWS * N >> (i + 1)
                B: tl.constexpr = 1 << i
                pairs = tl.permute(tl.reshape(x, (A, 2, B)), (0, 2, 1))
                left, right = tl.split(pairs)
                lo = tl.minimum(left, right)
                hi = tl.maximum(left, right)
                if stage < LOG_N:
                    flip = ((tl.arange(0, A) >> (stage - i - 1)) & 1)[:, None] != 0
                    left = tl.where(flip, hi, lo)
                    right = tl.where(flip, lo, hi)
                elif DESCENDING:
                    left = hi
                    right = lo
                else:
                    left = lo
                    right = hi
                x = tl.reshape(tl.permute(tl.join(left, right), (0, 2, 1)), (ROWS, N))
        return x


@triton.jit
def _score_tile(q_ptr, d_ptr, q_scale, d_scale_ptr, rows64, row_ok, cols64, col_ok, dim,
                stride_q, stride_d, IEEE: tl.constexpr,
                BLOCK_Q: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_K: tl.constexpr):
    """float32 scores [BLOCK_Q, BLOCK_D] of one query block x document tile, times the rows'
    scales (inverse norms for cosine on half inputs, else 1: exact)."""
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
    d_scale = tl.load(d_scale_ptr + cols64, mask=col_ok, other=0.0)
    return acc * q_scale[:, None] * d_scale[None, :]


@triton.jit
def _pack_keys(acc, secondary_ptr, cols64, col_ok):
    """int64 sort keys of a float32 score tile (see the module docstring)."""
    acc = tl.where(acc == 0.0, 0.0, acc)  # -0.0 and +0.0 must tie
    bits = acc.to(tl.int32, bitcast=True)
    ordered = tl.where(bits < 0, bits ^ 0x7FFFFFFF, bits)
    ordered = tl.where(acc != acc, 0x7FFFFFFF, ordered)  # NaN: above +inf, decodes to NaN
    secondary = tl.load(secondary_ptr + cols64, mask=col_ok, other=0)
    return (ordered.to(tl.int64) << 32) | secondary.to(tl.int64)[None, :]


@triton.jit
def _fused_topk_kernel(
    q_ptr, d_ptr, q_scale_ptr, d_scale_ptr, secondary_ptr, out_ptr,
    n_queries, n_docs, dim, n_qblocks, docs_per_split,
    stride_q, stride_d, stride_out,
    IEEE: tl.constexpr,
    BLOCK_Q: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_K: tl.constexpr,
    K_PAD: tl.constexpr, BULK_MIN: tl.constexpr,
    LOG_D: tl.constexpr, LOG_K: tl.constexpr, NATIVE_SORT: tl.constexpr,
):
    """out[row, split * K_PAD : (split + 1) * K_PAD] = the K_PAD best keys of query ``row`` among
    the documents of corpus split ``split`` (unordered; EMPTY in unused slots).

    1-D grid: program id = split * n_qblocks + query block, so the programs running together share
    a corpus split (it stays in L2) and the grid has no 65535 limit on any axis.
    """
    pid = tl.program_id(0)
    qblock = pid % n_qblocks
    split = pid // n_qblocks
    rows = qblock * BLOCK_Q + tl.arange(0, BLOCK_Q)
    rows64 = rows.to(tl.int64)
    row_ok = rows < n_queries
    lanes = tl.arange(0, BLOCK_D)
    slots = tl.arange(0, K_PAD)
    doc_begin = split * docs_per_split
    doc_end = tl.minimum(doc_begin + docs_per_split, n_docs)
    q_scale = tl.load(q_scale_ptr + rows64, mask=row_ok, other=0.0)
    empty_tile = tl.full((BLOCK_Q, BLOCK_D), _EMPTY_KEY, tl.int64)
    best = tl.full((BLOCK_Q, K_PAD), _EMPTY_KEY, tl.int64)
    floor, worst = tl.min(best, axis=1, return_indices=True)  # the buffer's worst per query
    for tile in range(doc_begin, doc_end, BLOCK_D):
        cols = tile + lanes
        cols64 = cols.to(tl.int64)
        col_ok = cols < doc_end
        acc = _score_tile(q_ptr, d_ptr, q_scale, d_scale_ptr, rows64, row_ok, cols64, col_ok,
                          dim, stride_q, stride_d, IEEE, BLOCK_Q, BLOCK_D, BLOCK_K)
        keys = _pack_keys(acc, secondary_ptr, cols64, col_ok)
        keys = tl.where(row_ok[:, None] & col_ok[None, :], keys, empty_tile)
        live = keys > floor[:, None]
        n_live = tl.max(tl.sum(live.to(tl.int32), axis=1), axis=0)
        if n_live > BULK_MIN:
            # the tile's K_PAD best, descending: a full sort, then group 0 of K_PAD
            ranked = _sort_rows(keys, BLOCK_Q, LOG_D, True, NATIVE_SORT)
            if BLOCK_D > K_PAD:
                ranked = tl.reshape(ranked, (BLOCK_Q, BLOCK_D // K_PAD, K_PAD))
                group = tl.arange(0, BLOCK_D // K_PAD)
                ranked = tl.max(tl.where(group[None, :, None] == 0, ranked, _EMPTY_KEY), axis=1)
            # descending (+) ascending, elementwise max: the K_PAD largest of both
            best = tl.maximum(ranked, _sort_rows(best, BLOCK_Q, LOG_K, False, NATIVE_SORT))
            floor, worst = tl.min(best, axis=1, return_indices=True)
        else:
            # insert the candidates one at a time, best first, each over the buffer's worst;
            # keys >= ceiling are already in (or were pushed out again). n_live rounds suffice:
            # each round takes a row's best remaining candidate or that row has none left.
            # (A `while any(live)` loop fails triton 3.6's RemoveLayoutConversions pass.)
            ceiling = tl.full((BLOCK_Q,), _FULL_KEY, tl.int64)
            for _ in range(0, n_live):
                live = (keys > floor[:, None]) & (keys < ceiling[:, None])
                pick = tl.max(tl.where(live, keys, empty_tile), axis=1)
                take = pick > floor
                best = tl.where((slots[None, :] == worst[:, None]) & take[:, None],
                                pick[:, None], best)
                floor = tl.min(best, axis=1)
                worst = tl.min(tl.where(best == floor[:, None], slots[None, :], K_PAD), axis=1)
                ceiling = tl.where(take, pick, ceiling)
    out = out_ptr + rows64[:, None] * stride_out + split * K_PAD + slots[None, :]
    tl.store(out, best, mask=row_ok[:, None])


@triton.jit
def _score_keys_kernel(
    q_ptr, d_ptr, q_scale_ptr, d_scale_ptr, secondary_ptr, keys_ptr,
    n_queries, n_docs, dim, n_qblocks,
    stride_q, stride_d, stride_keys,
    IEEE: tl.constexpr,
    BLOCK_Q: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_K: tl.constexpr,
):
    """keys[i, j] = key(score(queries[i], docs[j]), secondary[j]); 1-D grid."""
    pid = tl.program_id(0)
    rows = (pid % n_qblocks) * BLOCK_Q + tl.arange(0, BLOCK_Q)
    cols = (pid // n_qblocks) * BLOCK_D + tl.arange(0, BLOCK_D)
    rows64 = rows.to(tl.int64)
    cols64 = cols.to(tl.int64)
    row_ok = rows < n_queries
    col_ok = cols < n_docs
    q_scale = tl.load(q_scale_ptr + rows64, mask=row_ok, other=0.0)
    acc = _score_tile(q_ptr, d_ptr, q_scale, d_scale_ptr, rows64, row_ok, cols64, col_ok,
                      dim, stride_q, stride_d, IEEE, BLOCK_Q, BLOCK_D, BLOCK_K)
    keys = _pack_keys(acc, secondary_ptr, cols64, col_ok)
    tl.store(keys_ptr + rows64[:, None] * stride_keys + cols64[None, :], keys,
             mask=row_ok[:, None] & col_ok[None, :])


# ---------------------------------------------------------------- launch geometry


@dataclass(frozen=True)
class FusedConfig:
    """Tile sizes of one fused launch (see ``fused_config``)."""

    k_pad: int
    block_q: int
    block_d: int
    block_k: int
    bulk_min: int
    num_warps: int
    num_stages: int


def _log2(n: int) -> int:
    assert n > 0 and n & (n - 1) == 0, n
    return n.bit_length() - 1


def k_pad_of(k: int) -> int:
    """The fused buffer per query: 32 keys for k <= 32, else 128 (two sizes, so a GPU run
    compiles two kernels per dtype, not five; a larger buffer than k only costs insertions)."""
    return 32 if k <= 32 else 128


def fused_config(k: int, dtype: torch.dtype, on_gpu: bool) -> FusedConfig:
    """GPU: 32 queries x 128 documents per tile, 8 warps: the int64 buffer [32, K_PAD <= 128] and
    the tile's keys take 32 + 32 registers per thread. ptxas (sm_90, triton 3.6) reports 250-255
    registers and no stack for fp16/bf16, 64 bytes of stack for fp32 at K_PAD = 32 (a 64 x 128
    tile spilled 312 bytes). The depth step is 64 for half inputs (one 128-byte row segment) and
    32 for fp32. BLOCK_D >= K_PAD always (the bulk merge takes the best K_PAD of one sorted tile).
    Each corpus tile is read by every query block of a split (from L2: the programs of a split
    run together), so 32-row query blocks may leave the kernel L2-bound rather than tensor-core
    bound. Interpreted (CPU tensors): small tiles, the same code paths.
    Untuned: chosen without a GPU from compile reports only (see bench/gpu_check.sh)."""
    k_pad = k_pad_of(k)
    if on_gpu:
        block_k = 32 if dtype == torch.float32 else 64
        return FusedConfig(k_pad, 32, max(128, k_pad), block_k, bulk_min=16, num_warps=8,
                           num_stages=3)
    return FusedConfig(k_pad, 16, max(32, k_pad), 16, bulk_min=4, num_warps=1, num_stages=1)


def fused_splits(n_rows: int, n_docs: int, config: FusedConfig, on_gpu: bool,
                 device: torch.device | None = None) -> tuple[int, int]:
    """``(splits, docs_per_split)`` for one launch: enough programs to fill the GPU (4 per SM),
    but every split at least 16 tiles (so its buffer filters: a split hands back K_PAD keys per
    query) and no empty split. ``docs_per_split`` is a multiple of ``BLOCK_D``."""
    tiles = triton.cdiv(n_docs, config.block_d)
    n_qblocks = triton.cdiv(max(n_rows, 1), config.block_q)
    if on_gpu:
        sms = torch.cuda.get_device_properties(device).multi_processor_count
        target, min_tiles = 4 * sms, 16
    else:
        target, min_tiles = 4, 2  # interpreted: still several splits on small shapes
    splits = max(1, min(triton.cdiv(target, n_qblocks), tiles // min_tiles))
    docs_per_split = triton.cdiv(tiles, splits) * config.block_d
    return triton.cdiv(n_docs, docs_per_split), docs_per_split


def default_gpu_block_size(n_queries: int) -> int:
    """Corpus block of the keys path: all queries x one block of int64 keys in 1 GiB."""
    docs = GPU_KEY_BUFFER_BYTES // (8 * max(n_queries, 1))
    docs = docs // _BLOCK_ALIGN * _BLOCK_ALIGN
    return int(min(max(docs, _MIN_BLOCK), _MAX_BLOCK))


@dataclass
class _Operand:
    """A prepared query or document block: the matrix the kernel reads and the per-row scale it
    multiplies scores by (inverse norms for cosine on half inputs, else ones: exact)."""

    x: torch.Tensor
    scale: torch.Tensor

    def rows(self, r0: int, r1: int) -> _Operand:
        return _Operand(self.x[r0:r1], self.scale[r0:r1])


def _prepare(x: torch.Tensor, metric: str, device: torch.device) -> _Operand:
    x = x.detach().to(device, non_blocking=True)
    if x.dtype in _HALF:
        x = x.contiguous()
        if metric == "cosine":
            norm = torch.linalg.vector_norm(x.float(), dim=1).clamp_min(NORMALIZE_EPS)
            return _Operand(x, norm.reciprocal())
    elif metric == "cosine":
        x = unit_rows(x).contiguous()
    else:
        x = x.float().contiguous()
    return _Operand(x, torch.ones(x.shape[0], dtype=torch.float32, device=device))


def _as_float(op: _Operand) -> _Operand:
    """Mixed dtypes meet in fp32: a half operand as fp32 rows (scaled: normalised for cosine)."""
    if op.x.dtype == torch.float32:
        return op
    return _Operand((op.x.float() * op.scale[:, None]).contiguous(), torch.ones_like(op.scale))


def block_secondary(tie_key: torch.Tensor | None, offset: int, n_block: int,
                    device: torch.device) -> torch.Tensor:
    """The low 31 bits of the keys of documents ``offset .. offset + n_block - 1``: their unique
    tie keys, or ``2**31 - 1 - index`` (lower index first) without ``tie_rank``."""
    if tie_key is not None:
        return tie_key[offset:offset + n_block]
    return (_INDEX_LIMIT - offset) - torch.arange(n_block, dtype=torch.int64, device=device)


def _device_guard(device: torch.device):
    return torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()


def fused_candidates(
    q: _Operand, d: _Operand, secondary: torch.Tensor, k: int, splits: int | None = None,
) -> torch.Tensor:
    """``[n_queries, splits * K_PAD]`` int64 keys: per query the K_PAD best of each split of
    ``d`` (EMPTY where a split has fewer documents). ``splits`` forces the split count (tests)."""
    n_rows, dim = q.x.shape
    n_docs = d.x.shape[0]
    on_gpu = q.x.is_cuda
    config = fused_config(k, q.x.dtype, on_gpu)
    if splits is None:
        splits, docs_per_split = fused_splits(n_rows, n_docs, config, on_gpu, q.x.device)
    else:
        docs_per_split = triton.cdiv(triton.cdiv(n_docs, config.block_d), splits) * config.block_d
        splits = triton.cdiv(n_docs, docs_per_split)
    width = splits * config.k_pad
    out = torch.empty((n_rows, width), dtype=torch.int64, device=q.x.device)
    rows_per_launch = max(config.block_q, FUSED_OUT_BYTES // (8 * width)
                          // config.block_q * config.block_q)
    for r0 in range(0, n_rows, rows_per_launch):
        r1 = min(r0 + rows_per_launch, n_rows)
        n_qblocks = triton.cdiv(r1 - r0, config.block_q)
        _fused_topk_kernel[(n_qblocks * splits,)](
            q.x[r0:r1], d.x, q.scale[r0:r1], d.scale, secondary, out[r0:r1],
            r1 - r0, n_docs, dim, n_qblocks, docs_per_split,
            q.x.stride(0), d.x.stride(0), out.stride(0),
            IEEE=q.x.dtype == torch.float32,
            BLOCK_Q=config.block_q, BLOCK_D=config.block_d, BLOCK_K=config.block_k,
            K_PAD=config.k_pad, BULK_MIN=config.bulk_min,
            LOG_D=_log2(config.block_d), LOG_K=_log2(config.k_pad), NATIVE_SORT=on_gpu,
            num_warps=config.num_warps, num_stages=config.num_stages,
        )
    return out


def score_keys(
    q: _Operand, d: _Operand, secondary: torch.Tensor, out: torch.Tensor,
) -> None:
    """out[i, j] = key(score(q[i], d[j]), secondary[j]) (the keys path)."""
    n_queries, dim = q.x.shape
    n_docs = d.x.shape[0]
    on_gpu = q.x.is_cuda
    block_q, block_d = (64, 128) if on_gpu else (32, 64)
    block_k = 32 if not on_gpu or q.x.dtype == torch.float32 else 64
    n_qblocks = triton.cdiv(n_queries, block_q)
    _score_keys_kernel[(n_qblocks * triton.cdiv(n_docs, block_d),)](
        q.x, d.x, q.scale, d.scale, secondary, out,
        n_queries, n_docs, dim, n_qblocks,
        q.x.stride(0), d.x.stride(0), out.stride(0),
        IEEE=q.x.dtype == torch.float32,
        BLOCK_Q=block_q, BLOCK_D=block_d, BLOCK_K=block_k,
        num_warps=8 if on_gpu else 1, num_stages=3 if on_gpu else 1,
    )


# ---------------------------------------------------------------- the public entry


def topk_cuda(
    queries: torch.Tensor,
    corpus: Corpus,
    k: int,
    *,
    metric: str,
    block_size: int | None,
    tie_rank: np.ndarray | None,
    path: str | None = None,
    splits: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The CUDA implementation of ``fastmteb.kernels.topk`` (same contract; torch outputs on the
    queries' device). Also runs on CPU tensors under ``TRITON_INTERPRET=1``.

    ``path`` ("fused" or "keys") overrides the dispatch rule and ``splits`` the fused kernel's
    split count: both for tests and benchmarks only."""
    check_2d(queries, "queries")
    device = queries.device
    with _device_guard(device):
        return _topk_on_device(queries, corpus, k, metric, block_size, tie_rank, path, splits)


def _topk_on_device(queries, corpus, k, metric, block_size, tie_rank, path, splits):
    device = queries.device
    n_queries, dim = queries.shape
    if path is None:
        path = "fused" if k <= FUSED_K_MAX else "keys"
    if path not in ("fused", "keys") or (path == "fused" and k > FUSED_K_MAX):
        raise SearchInputError(f"path must be 'fused' (k <= {FUSED_K_MAX}) or 'keys', got {path!r}")
    q = _prepare(queries, metric, device)
    if bool(torch.isnan(q.x).any()):
        row = int(torch.isnan(q.x).any(dim=1).nonzero()[0, 0])
        raise SearchInputError(
            f"queries contain NaN (first in row {row}); check the encoder output"
        )
    q_float: _Operand | None = None
    known_docs = corpus_length(corpus)
    if known_docs == 0:
        raise empty_corpus_error()
    if known_docs is not None:
        check_tie_rank_length(tie_rank, known_docs)
    if block_size:
        block = int(block_size)
    else:
        block = FUSED_BLOCK if path == "fused" else default_gpu_block_size(n_queries)
    query_block = n_queries if path == "fused" else int(
        max(1, min(n_queries, GPU_KEY_BUFFER_BYTES // (8 * block))))
    tie_key = None
    if tie_rank is not None:
        tie_key = torch.from_numpy(unique_tie_key(tie_rank)).to(device)
    key_buffer = None
    running: list[torch.Tensor | None] = [None] * triton.cdiv(max(n_queries, 1),
                                                              max(query_block, 1))

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
        d = _prepare(torch.as_tensor(raw), metric, device)
        scored = q
        if d.x.dtype != q.x.dtype:  # mixed precisions meet in fp32
            q_float = _as_float(q) if q_float is None else q_float
            scored, d = q_float, _as_float(d)
        if n_queries == 0:
            n_docs = offset + n_block
            continue
        secondary = block_secondary(tie_key, offset, n_block, device)
        for part, q0 in enumerate(range(0, n_queries, query_block)):
            q1 = min(q0 + query_block, n_queries)
            part_q = scored.rows(q0, q1)
            if path == "fused":
                candidates = fused_candidates(part_q, d, secondary, k, splits)
            else:
                if key_buffer is None or key_buffer.numel() < (q1 - q0) * n_block:
                    key_buffer = torch.empty((q1 - q0) * n_block, dtype=torch.int64,
                                             device=device)
                candidates = key_buffer[: (q1 - q0) * n_block].view(q1 - q0, n_block)
                score_keys(part_q, d, secondary, candidates)
            best = torch.topk(candidates, min(k, candidates.shape[1]), dim=1, sorted=False).values
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
    # the k best of the candidates, best first (EMPTY keys are never among them: every query
    # saw n_docs real keys)
    keys = torch.sort(torch.cat(running, dim=0), dim=1, descending=True).values
    keys = keys[:, : min(k, n_docs)]
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
