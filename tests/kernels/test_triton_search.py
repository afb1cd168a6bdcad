"""The Triton search path (``fastmteb.kernels._triton.search``).

On the CPU the kernel runs under ``TRITON_INTERPRET=1`` (set by tests/conftest.py) on CPU tensors,
fp32/fp16 only (bf16 ``tl.dot`` is wrong in the triton 3.7 interpreter). On a GPU machine run the
same tests for real through the public ``topk`` with CUDA tensors, bf16 included:
``TRITON_INTERPRET=0 pytest -m gpu tests/kernels/test_triton_search.py``.
"""

from __future__ import annotations

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
from fastmteb.kernels.reference import topk_reference

INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"

DEVICES = [
    pytest.param(
        "cpu", marks=pytest.mark.skipif(not INTERPRETED, reason="needs TRITON_INTERPRET=1")
    ),
    pytest.param("cuda", marks=pytest.mark.gpu),
]


def triton_topk(device: str, queries, corpus, k: int, **kwargs):
    """The Triton path: via the public entry for CUDA, directly for interpreted CPU tensors."""
    queries = torch.as_tensor(queries).to(device)
    if device == "cuda":
        scores, indices = topk(queries, corpus, k, **kwargs)
        assert scores.is_cuda and indices.is_cuda
        return scores.cpu().numpy(), indices.cpu().numpy()
    from fastmteb.kernels._triton.search import topk_cuda

    tie_rank = kwargs.pop("tie_rank", None)
    kwargs.setdefault("metric", "cosine")
    kwargs.setdefault("block_size", None)
    scores, indices = topk_cuda(queries, corpus, k, tie_rank=tie_rank, **kwargs)
    return scores.numpy(), indices.numpy()


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return random_embeddings(rng, 37, 40), random_embeddings(rng, 333, 40)


def _dtypes(device):
    return [torch.float32, torch.float16] + ([torch.bfloat16] if device == "cuda" else [])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("metric", ["cosine", "dot"])
@pytest.mark.parametrize("block_size", [50, None])
def test_random_matches_reference(device, data, metric, block_size):
    for dtype in _dtypes(device):
        queries, corpus = (torch.from_numpy(x).to(dtype) for x in data)
        for k in (1, 12, 400):
            scores, indices = triton_topk(device, queries, corpus.to(device), k, metric=metric,
                                          block_size=block_size)
            assert_topk_close(scores, indices, queries, corpus, k, metric)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("metric", ["cosine", "dot"])
@pytest.mark.parametrize("with_tie_rank", [False, True])
def test_exact_ties_match_reference_exactly(device, metric, with_tie_rank):
    rng = np.random.default_rng(1)
    queries = tied_embeddings(rng, 11, 16, distinct=5)
    corpus = tied_embeddings(rng, 257, 16, distinct=6)
    tie_rank = rng.permutation(257) if with_tie_rank else None
    for k, block_size in ((1, 64), (40, 5), (100, 64), (300, None)):
        scores, indices = triton_topk(device, queries, corpus, k, metric=metric,
                                      block_size=block_size, tie_rank=tie_rank)
        ref_scores, ref_indices = topk_reference(queries, corpus, k, metric=metric,
                                                 tie_rank=tie_rank)
        np.testing.assert_array_equal(scores, ref_scores)
        np.testing.assert_array_equal(indices, ref_indices)


@pytest.mark.parametrize("device", DEVICES)
def test_tie_rank_reproduces_mteb_heap_merge(device):
    rng = np.random.default_rng(2)
    queries = tied_embeddings(rng, 9, 16, distinct=4)
    corpus = tied_embeddings(rng, 300, 16, distinct=5)
    doc_ids = [f"d{x}" if x % 3 else str(x) for x in rng.permutation(300)]
    for k in (5, 120):
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
    blocks = (readonly[i:i + 100] for i in range(0, corpus.shape[0], 100))
    for source, block_size in ((readonly, 64), (blocks, 30)):
        scores, indices = triton_topk(device, queries, source, 25, block_size=block_size)
        assert_topk_close(scores, indices, queries, corpus, 25, "cosine")


@pytest.mark.parametrize("device", DEVICES)
def test_nan_and_empty_raise(device, data):
    queries, corpus = data[0], data[1].copy()
    corpus[100, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        triton_topk(device, queries, corpus, 5, block_size=64)
    with pytest.raises(ValueError, match="corpus is empty"):
        triton_topk(device, queries, corpus[:0], 5)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
def test_cuda_large_agrees_with_cpu(dtype):
    """Full-size shapes on a real GPU: the same top-k as the CPU (Numba) path."""
    rng = np.random.default_rng(5)
    queries = torch.from_numpy(random_embeddings(rng, 500, 384)).to(dtype)
    corpus = torch.from_numpy(random_embeddings(rng, 60_000, 384)).to(dtype)
    for metric in ("cosine", "dot"):
        gpu_scores, gpu_indices = topk(queries.cuda(), corpus.cuda(), 1000, metric=metric,
                                       block_size=16384)
        cpu_scores, cpu_indices = topk(queries, corpus, 1000, metric=metric)
        np.testing.assert_allclose(gpu_scores.cpu().numpy(), cpu_scores.numpy(), atol=1e-5)
        agreement = (gpu_indices.cpu() == cpu_indices).float().mean().item()
        assert agreement > 0.99, agreement
