"""The Triton search path (``fastmteb.kernels._triton.search``).

Without a CUDA device the kernels run under ``TRITON_INTERPRET=1`` (set by tests/conftest.py) on
CPU tensors, fp32/fp16 only (bf16 ``tl.dot`` is wrong in the triton 3.7-3.9 interpreter), with
small shapes: the interpreter runs every tile op in numpy. On a GPU machine the same tests run
compiled through the public ``topk`` with CUDA tensors, bf16 included:
``TRITON_INTERPRET=0 pytest -m gpu tests/kernels/test_triton_search.py`` (bench/gpu_check.sh).

Both Triton paths are checked: ``fused`` (the in-kernel top-k, k <= 128) and ``keys`` (a key per
pair + torch.topk, k > 128), and within the fused kernel both merge strategies (bulk sort and
one-at-a-time insertion) forced on their own.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest
import torch
from search_cases import (
    assert_topk_close,
    bytewise_rank,
    mteb_heap_search,
    random_embeddings,
    tied_embeddings,
)

from fastmteb.kernels import topk
from fastmteb.kernels._triton import search as triton_search
from fastmteb.kernels.reference import topk_reference

INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"

DEVICES = [
    pytest.param(
        "cpu", marks=pytest.mark.skipif(not INTERPRETED, reason="needs TRITON_INTERPRET=1")
    ),
    pytest.param("cuda", marks=pytest.mark.gpu),
]


def triton_topk(device: str, queries, corpus, k: int, **kwargs):
    """The Triton path on ``device`` (CPU tensors run interpreted). Without ``path``/``splits``
    CUDA goes through the public ``topk``; otherwise straight to ``topk_cuda``."""
    queries = torch.as_tensor(queries).to(device)
    if device == "cuda" and "path" not in kwargs and "splits" not in kwargs:
        scores, indices = topk(queries, corpus, k, **kwargs)
        assert scores.is_cuda and indices.is_cuda
        return scores.cpu().numpy(), indices.cpu().numpy()
    tie_rank = kwargs.pop("tie_rank", None)
    kwargs.setdefault("metric", "cosine")
    kwargs.setdefault("block_size", None)
    scores, indices = triton_search.topk_cuda(queries, corpus, k, tie_rank=tie_rank, **kwargs)
    assert scores.device == queries.device
    return scores.cpu().numpy(), indices.cpu().numpy()


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return random_embeddings(rng, 19, 24), random_embeddings(rng, 150, 24)


def _dtypes(device):
    return [torch.float32, torch.float16] + ([torch.bfloat16] if device == "cuda" else [])


def _half_to_float(x: torch.Tensor) -> np.ndarray:
    """The reference for half inputs: the same half values, scored in fp32."""
    return x.float().numpy()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("metric", ["cosine", "dot"])
def test_random_matches_reference(device, data, metric):
    """fp32/fp16 (+bf16 on GPU) against brute force on the same values in fp32: equal scores per
    rank up to fp32 rounding (2e-5), the same index wherever a score is isolated. k below the
    tile (fused), k == n and k > n (keys path: k > 128); n = 150 is no multiple of any tile.
    k == n and k > n on the fused path: test_tiny_shapes."""
    for dtype in _dtypes(device):
        queries, corpus = (torch.from_numpy(x).to(dtype) for x in data)
        for k, block_size in ((1, None), (12, 50), (100, None), (150, None), (200, 64)):
            scores, indices = triton_topk(device, queries, corpus.to(device), k, metric=metric,
                                          block_size=block_size)
            assert_topk_close(scores, indices, _half_to_float(queries), _half_to_float(corpus),
                              k, metric)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("metric", ["cosine", "dot"])
@pytest.mark.parametrize("with_tie_rank", [False, True])
def test_exact_ties_match_reference_exactly(device, metric, with_tie_rank):
    """Integer-valued rows: every score is exact in any dtype and summation order, so ties are
    real and the result must equal the reference bit for bit, whatever the split/block layout."""
    rng = np.random.default_rng(1)
    queries = tied_embeddings(rng, 9, 16, distinct=5)
    corpus = tied_embeddings(rng, 141, 16, distinct=6)  # ~24 copies of each document
    tie_rank = rng.permutation(141) if with_tie_rank else None
    cases = [  # (k, block_size, path, splits)
        (1, 64, "fused", None), (40, 5, "fused", None), (40, None, "fused", 3),
        (128, None, "fused", 2), (100, 50, "fused", None), (141, None, "keys", None),
        (300, 64, "keys", None), (7, 100, "keys", None),
    ]
    for dtype in _dtypes(device):
        q = torch.from_numpy(queries).to(dtype)
        # half inputs: the fused and keys kernels once each (the layouts are dtype-independent)
        for k, block_size, path, splits in cases if dtype == torch.float32 else cases[2:6:3]:
            scores, indices = triton_topk(device, q, corpus, k, metric=metric,
                                          block_size=block_size, tie_rank=tie_rank, path=path,
                                          splits=splits)
            ref_scores, ref_indices = topk_reference(queries, corpus, k, metric=metric,
                                                     tie_rank=tie_rank)
            np.testing.assert_array_equal(scores, ref_scores)
            np.testing.assert_array_equal(indices, ref_indices)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("bulk_min", [0, 10**9], ids=["always-bulk", "always-insert"])
def test_each_merge_strategy_alone_is_exact(device, bulk_min, monkeypatch):
    """The fused kernel picks per tile between a bulk sort-merge and one-at-a-time insertion;
    each on its own must give the exact top-k (ties, tie_rank, several splits)."""
    config = triton_search.fused_config

    def forced(k, dtype, on_gpu):
        return dataclasses.replace(config(k, dtype, on_gpu), bulk_min=bulk_min)

    monkeypatch.setattr(triton_search, "fused_config", forced)
    rng = np.random.default_rng(3)
    queries = tied_embeddings(rng, 7, 8, distinct=4)
    corpus = tied_embeddings(rng, 100, 8, distinct=5)
    tie_rank = rng.integers(0, 10, size=100)  # repeated ranks: then the lower index first
    for k, splits in ((3, 2), (20, 1), (64, 3), (100, 2)):
        scores, indices = triton_topk(device, queries, corpus, k, metric="dot", tie_rank=tie_rank,
                                      path="fused", splits=splits)
        ref_scores, ref_indices = topk_reference(queries, corpus, k, metric="dot",
                                                 tie_rank=tie_rank)
        np.testing.assert_array_equal(scores, ref_scores)
        np.testing.assert_array_equal(indices, ref_indices)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("path", ["fused", "keys"])
def test_tiny_shapes(device, path):
    """One document, dim 1, one query; k larger than the corpus; signed zeros tie."""
    rng = np.random.default_rng(4)
    for n_queries, n_docs, dim in ((1, 1, 1), (3, 1, 5), (2, 7, 1), (5, 33, 2)):
        queries = rng.standard_normal((n_queries, dim)).astype(np.float32)
        corpus = rng.standard_normal((n_docs, dim)).astype(np.float32)
        corpus[0] = 0.0  # a zero row: cosine 0 (eps), dot +-0.0
        for k in (1, n_docs, n_docs + 4):
            for metric in ("cosine", "dot"):
                scores, indices = triton_topk(device, queries, corpus, k, metric=metric,
                                              path=path)
                assert_topk_close(scores, indices, queries, corpus, k, metric)
                if n_docs == 1:
                    assert indices.tolist() == [[0]] * n_queries


@pytest.mark.parametrize("device", DEVICES)
def test_tie_rank_reproduces_mteb_heap_merge(device):
    rng = np.random.default_rng(2)
    queries = tied_embeddings(rng, 5, 16, distinct=4)
    corpus = tied_embeddings(rng, 120, 16, distinct=5)
    doc_ids = [f"d{x}" if x % 3 else str(x) for x in rng.permutation(120)]
    for k in (5, 60):
        expected = mteb_heap_search(queries, corpus, doc_ids, k, "cosine")
        scores, indices = triton_topk(device, queries, corpus, k, block_size=64,
                                      tie_rank=bytewise_rank(doc_ids))
        for row, want in enumerate(expected):
            assert [(float(s), doc_ids[i]) for s, i in zip(scores[row], indices[row])] == want


@pytest.mark.parametrize("device", DEVICES)
def test_iterable_and_memmap_corpus(device, data, tmp_path):
    queries, corpus = data
    path = tmp_path / "corpus.f32"
    memmap = np.memmap(path, dtype=np.float32, mode="w+", shape=corpus.shape)
    memmap[:] = corpus
    memmap.flush()
    readonly = np.memmap(path, dtype=np.float32, mode="r", shape=corpus.shape)
    blocks = (readonly[i:i + 60] for i in range(0, corpus.shape[0], 60))
    for source, block_size in ((readonly, 64), (blocks, 30)):
        scores, indices = triton_topk(device, queries, source, 25, block_size=block_size)
        assert_topk_close(scores, indices, queries, corpus, 25, "cosine")


@pytest.mark.parametrize("device", DEVICES)
def test_mixed_dtypes_meet_in_fp32(device, data):
    queries, corpus = data
    q16 = torch.from_numpy(queries).half()
    for metric in ("cosine", "dot"):
        scores, indices = triton_topk(device, q16, corpus, 10, metric=metric)
        assert_topk_close(scores, indices, _half_to_float(q16), corpus, 10, metric)


@pytest.mark.parametrize("device", DEVICES)
def test_huge_block_size_is_one_block(device, data):
    """A block_size far above the corpus (the old 2-D grid overflowed its document axis above
    ~8.4M documents per block; both kernels now launch 1-D grids)."""
    queries, corpus = data
    for path, k in (("fused", 9), ("keys", 9)):
        scores, indices = triton_topk(device, queries, corpus, k, block_size=10**9, path=path)
        assert_topk_close(scores, indices, queries, corpus, k, "cosine")


@pytest.mark.parametrize("device", DEVICES)
def test_nan_and_empty_raise(device, data):
    queries, corpus = data[0], data[1].copy()
    corpus[100, 3] = np.nan
    for path in ("fused", "keys"):
        with pytest.raises(ValueError, match="NaN"):
            triton_topk(device, queries, corpus, 5, block_size=64, path=path)
    with pytest.raises(ValueError, match="corpus is empty"):
        triton_topk(device, queries, corpus[:0], 5)
    with pytest.raises(ValueError, match="path"):
        triton_topk(device, queries, data[1], 129, path="fused")


def test_dispatch_rule():
    assert triton_search.FUSED_K_MAX == 128
    assert triton_search.k_pad_of(1) == 32 and triton_search.k_pad_of(32) == 32
    assert triton_search.k_pad_of(33) == 128 and triton_search.k_pad_of(128) == 128
    for k in (1, 17, 100, 128):
        for on_gpu in (False, True):
            config = triton_search.fused_config(k, torch.float16, on_gpu)
            assert config.block_d >= config.k_pad  # the bulk merge takes K_PAD of one tile


def test_launch_is_guarded_by_the_tensors_device():
    """Tensors on cuda:1 must launch with cuda:1 current (constructing the guard needs no GPU)."""
    guard = triton_search._device_guard(torch.device("cuda", 1))
    assert isinstance(guard, torch.cuda.device) and guard.idx == 1
    assert not isinstance(triton_search._device_guard(torch.device("cpu")), torch.cuda.device)


# ---------------------------------------------------------------- GPU only


@pytest.mark.gpu
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_second_device():
    rng = np.random.default_rng(6)
    queries = torch.from_numpy(random_embeddings(rng, 50, 64))
    corpus = torch.from_numpy(random_embeddings(rng, 5000, 64))
    with torch.cuda.device(0):
        scores, indices = topk(queries.to("cuda:1"), corpus.to("cuda:1"), 10)
    assert scores.device == torch.device("cuda", 1)
    assert_topk_close(scores.cpu().numpy(), indices.cpu().numpy(), queries, corpus, 10, "cosine")


@pytest.mark.gpu
def test_keys_path_above_the_old_grid_limit():
    """9M documents in one block: the old kernel's grid axis 1 (cdiv(9M, 128) > 65535) failed."""
    n_docs = 9_000_000
    corpus = torch.zeros((n_docs, 8), dtype=torch.float16, device="cuda")
    corpus[n_docs - 1, 0] = 1.0
    corpus[12_345, 1] = 2.0
    queries = torch.ones((3, 8), dtype=torch.float16, device="cuda")
    for path in ("keys", "fused"):
        scores, indices = triton_search.topk_cuda(queries, corpus, 2, metric="dot",
                                                  block_size=n_docs, tie_rank=None, path=path)
        assert indices.cpu().tolist() == [[12_345, n_docs - 1]] * 3
        assert scores.cpu().tolist() == [[2.0, 1.0]] * 3


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
def test_cuda_large_agrees_with_cpu(dtype):
    """Full-size shapes on a real GPU: the same top-k as the CPU (Numba) path, up to fp32
    summation order. Unnormalised dot scores here are ~40-80, where two fp32 summation orders
    of 384 terms differ by up to ~1e-4, so the check is relative, not 1e-5 absolute:

    - every GPU score equals the exact (float64) score of the document it names, and the CPU's
      score at the same rank, within ``tol = 64 * eps32 * max|score|`` per query;
    - the ranks agree: where the GPU and CPU name different documents at a rank, both scores are
      within ``tol`` of each other (a near-tie reordered by rounding), and overall > 99% of
      (query, rank) pairs name the same document.
    """
    rng = np.random.default_rng(5)
    queries = torch.from_numpy(random_embeddings(rng, 500, 384)).to(dtype)
    corpus = torch.from_numpy(random_embeddings(rng, 60_000, 384)).to(dtype)
    eps32 = float(np.finfo(np.float32).eps)
    for metric in ("cosine", "dot"):
        for k in (100, 1000):  # fused and keys path
            gpu_scores, gpu_indices = topk(queries.cuda(), corpus.cuda(), k, metric=metric,
                                           block_size=16384)
            gpu_scores, gpu_indices = gpu_scores.cpu().numpy(), gpu_indices.cpu().numpy()
            cpu_scores, cpu_indices = (x.numpy() for x in topk(queries, corpus, k, metric=metric))
            q, d = queries.double(), corpus.double()
            if metric == "cosine":
                q = torch.nn.functional.normalize(q, dim=1)
                d = torch.nn.functional.normalize(d, dim=1)
            exact = torch.einsum("qd,qkd->qk", q, d[torch.from_numpy(gpu_indices)]).numpy()
            tol = 64 * eps32 * np.abs(cpu_scores).max(axis=1, keepdims=True)
            assert np.all(np.abs(gpu_scores - exact) <= tol)
            assert np.all(np.abs(gpu_scores - cpu_scores) <= tol)
            differ = gpu_indices != cpu_indices
            row_tol = np.broadcast_to(tol, differ.shape)
            assert np.all(np.abs(gpu_scores - cpu_scores)[differ] <= row_tol[differ])
            agreement = 1.0 - differ.mean()
            assert agreement > 0.99, (metric, k, agreement)
