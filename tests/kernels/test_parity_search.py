"""fastmteb.kernels.topk on the CPU (BLAS + Numba) against a brute-force reference and mteb's
chunk-and-heap merge."""

from __future__ import annotations

import tracemalloc

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

from fastmteb.kernels import search as search_module
from fastmteb.kernels import topk
from fastmteb.kernels.reference import topk_reference
from fastmteb.kernels.search import SearchInputError, default_cpu_block_size

N_QUERIES, N_DOCS, DIM = 23, 301, 24

NUMPY_DTYPES = [np.float32, np.float16, np.float64]
TORCH_DTYPES = [torch.float32, torch.float16, torch.bfloat16]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return random_embeddings(rng, N_QUERIES, DIM), random_embeddings(rng, N_DOCS, DIM)


@pytest.mark.parametrize("metric", ["cosine", "dot"])
@pytest.mark.parametrize("block_size", [1, 37, 300, None])
@pytest.mark.parametrize("dtype", NUMPY_DTYPES, ids=lambda d: np.dtype(d).name)
def test_numpy_matches_reference(data, metric, block_size, dtype):
    queries, corpus = (x.astype(dtype) for x in data)
    for k in (1, 10, N_DOCS + 5):
        scores, indices = topk(queries, corpus, k, metric=metric, block_size=block_size)
        assert isinstance(scores, np.ndarray)
        assert scores.shape == (N_QUERIES, min(k, N_DOCS))
        assert_topk_close(scores, indices, queries, corpus, k, metric)


@pytest.mark.parametrize("metric", ["cosine", "dot"])
@pytest.mark.parametrize("block_size", [64, None])
@pytest.mark.parametrize("dtype", TORCH_DTYPES, ids=str)
def test_torch_cpu_matches_reference(data, metric, block_size, dtype):
    queries, corpus = (torch.from_numpy(x).to(dtype) for x in data)
    scores, indices = topk(queries, corpus, 17, metric=metric, block_size=block_size)
    assert isinstance(scores, torch.Tensor) and scores.device.type == "cpu"
    assert scores.dtype == torch.float32 and indices.dtype == torch.int64
    assert_topk_close(scores.numpy(), indices.numpy(), queries, corpus, 17, metric)


@pytest.mark.parametrize("metric", ["cosine", "dot"])
@pytest.mark.parametrize("block_size", [1, 5, 64, 1000])
@pytest.mark.parametrize("with_tie_rank", [False, True])
def test_exact_ties_match_reference_exactly(metric, block_size, with_tie_rank):
    rng = np.random.default_rng(1)
    queries = tied_embeddings(rng, 11, 16, distinct=5)
    corpus = tied_embeddings(rng, 257, 16, distinct=6)  # ~43 copies of each document
    tie_rank = rng.permutation(257) if with_tie_rank else None
    for k in (1, 3, 40, 100, 300):
        scores, indices = topk(queries, corpus, k, metric=metric, block_size=block_size,
                               tie_rank=tie_rank)
        ref_scores, ref_indices = topk_reference(queries, corpus, k, metric=metric,
                                                 tie_rank=tie_rank)
        np.testing.assert_array_equal(scores, ref_scores)
        np.testing.assert_array_equal(indices, ref_indices)


def test_ties_without_tie_rank_prefer_lower_index():
    queries = np.ones((2, 4), dtype=np.float32)
    corpus = np.ones((10, 4), dtype=np.float32)
    _, indices = topk(queries, corpus, 4, block_size=3)
    np.testing.assert_array_equal(indices, [[0, 1, 2, 3]] * 2)


def test_duplicate_tie_rank_falls_back_to_lower_index():
    queries = np.ones((1, 4), dtype=np.float32)
    corpus = np.ones((6, 4), dtype=np.float32)
    tie_rank = np.array([0, 5, 5, 1, 5, 2])
    _, indices = topk(queries, corpus, 6, block_size=2, tie_rank=tie_rank)
    np.testing.assert_array_equal(indices, [[1, 2, 4, 5, 3, 0]])


@pytest.mark.parametrize("metric", ["cosine", "dot"])
def test_tie_rank_reproduces_mteb_heap_merge(metric):
    """With tie_rank = bytewise rank of the doc ids, the top-k (ids and order) equals mteb's heap
    result ranked as pytrec_eval ranks it — including ties cut at the k boundary."""
    rng = np.random.default_rng(2)
    queries = tied_embeddings(rng, 9, 16, distinct=4)
    corpus = tied_embeddings(rng, 400, 16, distinct=5)
    # Mixed ids where bytewise order differs from numeric order ("9" > "10", "d1" > "9").
    doc_ids = [f"d{x}" if x % 3 else str(x) for x in rng.permutation(400)]
    tie_rank = bytewise_rank(doc_ids)
    for k in (5, 50, 150):
        expected = mteb_heap_search(queries, corpus, doc_ids, k, metric)
        scores, indices = topk(queries, corpus, k, metric=metric, block_size=64, tie_rank=tie_rank)
        for row, want in enumerate(expected):
            got = [(float(s), doc_ids[i]) for s, i in zip(scores[row], indices[row])]
            assert got == want


def test_iterable_blocks_and_memmap(tmp_path, data):
    queries, corpus = data
    ref = topk(queries, corpus, 20, block_size=10**6)
    uneven = [corpus[:5], corpus[5:5], corpus[5:120], corpus[120:]]
    for blocks, block_size in ((uneven, None), (uneven, 50), (iter(uneven), 7)):
        scores, indices = topk(queries, blocks, 20, block_size=block_size)
        np.testing.assert_array_equal(indices, ref[1])
        np.testing.assert_allclose(scores, ref[0], atol=1e-6)
    torch_blocks = (torch.from_numpy(corpus[i:i + 64]).half() for i in range(0, N_DOCS, 64))
    scores, indices = topk(queries, torch_blocks, 20)
    assert_topk_close(scores, indices, queries, torch.from_numpy(corpus).half(), 20, "cosine",
                      atol=2e-3)

    path = tmp_path / "corpus.f32"
    memmap = np.memmap(path, dtype=np.float32, mode="w+", shape=corpus.shape)
    memmap[:] = corpus
    memmap.flush()
    readonly = np.memmap(path, dtype=np.float32, mode="r", shape=corpus.shape)
    for metric in ("cosine", "dot"):
        scores, indices = topk(queries, readonly, 20, metric=metric, block_size=64)
        assert_topk_close(scores, indices, queries, corpus, 20, metric)


def test_corpus_larger_than_default_block(monkeypatch):
    monkeypatch.setattr(search_module, "CPU_SCORE_BUFFER_BYTES", 2**16)
    assert default_cpu_block_size(50) == 1024  # the floor: 2.5k docs take three blocks
    rng = np.random.default_rng(3)
    queries = random_embeddings(rng, 50, 8)
    corpus = random_embeddings(rng, 2500, 8)
    scores, indices = topk(queries, corpus, 7)
    assert_topk_close(scores, indices, queries, corpus, 7, "cosine")


def test_memory_stays_at_block_size():
    """tracemalloc sees numpy's buffers: the peak is far below one full queries x docs matrix."""
    rng = np.random.default_rng(4)
    queries = random_embeddings(rng, 200, 16)
    corpus = random_embeddings(rng, 20_000, 16)
    topk(queries[:2], corpus[:2000], 10, block_size=512)  # compile outside the trace
    tracemalloc.start()
    topk(queries, corpus, 10, block_size=512)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    full_matrix = 200 * 20_000 * 4
    assert peak < full_matrix / 8, peak


@pytest.mark.parametrize("k", [0, -3, 2.5, True])
def test_bad_k(data, k):
    with pytest.raises(ValueError, match="k must be a positive int"):
        topk(data[0], data[1], k)


@pytest.mark.parametrize(
    "corpus",
    [np.zeros((0, DIM), np.float32), [], iter([np.zeros((0, DIM), np.float32)])],
    ids=["array", "list", "generator"],
)
def test_empty_corpus(data, corpus):
    with pytest.raises(ValueError, match="corpus is empty.*pass at least one document"):
        topk(data[0], corpus, 5)


@pytest.mark.parametrize("where", ["queries", "corpus", "inf_corpus"])
def test_nan_raises(data, where):
    queries, corpus = data[0].copy(), data[1].copy()
    if where == "queries":
        queries[3, 2] = np.nan
    elif where == "corpus":
        corpus[250, 0] = np.nan
    else:
        corpus[250, 0] = np.inf  # cosine: inf / inf -> NaN scores
    with pytest.raises(ValueError, match="NaN"):
        topk(queries, corpus, 5, block_size=100)


def test_bad_shapes_and_arguments(data):
    queries, corpus = data
    with pytest.raises(ValueError, match="corpus dim 23 != queries dim 24"):
        topk(queries, corpus[:, :23], 5)
    with pytest.raises(ValueError, match="queries must be 2-D"):
        topk(queries[0], corpus, 5)
    with pytest.raises(ValueError, match="metric must be"):
        topk(queries, corpus, 5, metric="l2")
    with pytest.raises(ValueError, match="block_size"):
        topk(queries, corpus, 5, block_size=0)
    with pytest.raises(ValueError, match="tie_rank has 300 entries but the corpus has 301"):
        topk(queries, corpus, 5, tie_rank=np.arange(300))
    with pytest.raises(ValueError, match="tie_rank has 300 entries but the corpus has 301"):
        topk(queries, [corpus[:200], corpus[200:]], 5, tie_rank=np.arange(300))
    with pytest.raises(ValueError, match="tie_rank must be a 1-D integer"):
        topk(queries, corpus, 5, tie_rank=np.zeros(301))
    with pytest.raises(ValueError, match="corpus must be"):
        topk(queries, "not a corpus", 5)
    assert issubclass(SearchInputError, ValueError)
