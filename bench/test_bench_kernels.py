"""pytest-benchmark suite: each fastmteb kernel and the peer mteb runs, timed in the same session.

    python -m pytest bench/test_bench_kernels.py --benchmark-only --benchmark-group-by=group
    python -m pytest bench/test_bench_kernels.py --benchmark-only --benchmark-json bench/results/kernels_bench.json

Groups pair fastmteb with its oracle on the same inputs (pytrec_eval for ranking metrics, scipy for
Spearman, numpy brute force and faiss for exact top-k); compare rows within a group. Sizes are kept
moderate so the suite runs in about a minute on a 2-core CPU; the scripts beside it
(bench_ranking.py, bench_search.py, bench_stats.py) run the full-size comparisons. Each benchmark
checks its result against the peer's before timing, so a fast wrong kernel cannot pass.
"""

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytest_benchmark")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ranking import make_data  # noqa: E402

K_VALUES = [1, 3, 5, 10, 100]
TREC = {"ndcg_cut": "ndcg_at", "recall": "recall_at", "P": "precision_at"}


@pytest.fixture(scope="module")
def ranking_data():
    return make_data(n_queries=2000, depth=100, n_docs=50_000)


@pytest.mark.benchmark(group="ranking metrics, 2000 queries x 100 results")
def test_ranking_fastmteb_arrays(benchmark, ranking_data):
    from fastmteb.kernels.ranking import QrelsCSR, doc_tie_rank, ranking_metrics

    run, scores, doc_ids, query_ids, qrels, _ = ranking_data
    qrels_csr, doc_rank = QrelsCSR.from_dict(qrels, query_ids, doc_ids), doc_tie_rank(doc_ids)
    result = benchmark(lambda: ranking_metrics(qrels_csr, run, K_VALUES, run_scores=scores, doc_rank=doc_rank))
    assert result is not None


@pytest.mark.benchmark(group="ranking metrics, 2000 queries x 100 results")
def test_ranking_pytrec_eval(benchmark, ranking_data):
    pytrec_eval = pytest.importorskip("pytrec_eval")
    *_, qrels, run_dict = ranking_data
    measures = {f"{name}.{','.join(map(str, K_VALUES))}" for name in TREC}
    out = benchmark(lambda: pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run_dict))
    assert len(out) == len(qrels)


@pytest.fixture(scope="module")
def correlation_data():
    rng = np.random.default_rng(0)
    gold = np.round(rng.uniform(0, 5, 200_000) / 0.2) * 0.2 / 5  # tied gold scores, as in STS
    return gold, (gold + rng.normal(0, 0.3, gold.size)).astype(np.float32)


@pytest.mark.benchmark(group="Spearman, 200k pairs with ties")
def test_spearman_fastmteb(benchmark, correlation_data):
    import scipy.stats

    from fastmteb.kernels import spearman

    gold, predicted = correlation_data
    expected = scipy.stats.spearmanr(gold, predicted).statistic
    assert abs(spearman(gold, predicted) - expected) < 1e-12
    benchmark(spearman, gold, predicted)


@pytest.mark.benchmark(group="Spearman, 200k pairs with ties")
def test_spearman_scipy(benchmark, correlation_data):
    import scipy.stats

    gold, predicted = correlation_data
    benchmark(lambda: scipy.stats.spearmanr(gold, predicted).statistic)


@pytest.fixture(scope="module")
def search_data():
    rng = np.random.default_rng(0)
    corpus = rng.standard_normal((100_000, 384)).astype(np.float32)
    corpus /= np.linalg.norm(corpus, axis=1, keepdims=True)
    queries = rng.standard_normal((200, 384)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    return queries, corpus


def _brute_force(queries, corpus, k):
    scores = queries @ corpus.T
    top = np.argpartition(-scores, k, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, top, 1), axis=1, kind="stable")
    return np.take_along_axis(top, order, 1)


@pytest.mark.benchmark(group="exact top-100, 200 x 100k x 384")
def test_topk_fastmteb(benchmark, search_data):
    from fastmteb.kernels import topk

    queries, corpus = search_data
    _, indices = topk(queries, corpus, 100, metric="dot")
    assert (np.asarray(indices)[:, :10] == _brute_force(queries, corpus, 100)[:, :10]).mean() > 0.999
    benchmark(topk, queries, corpus, 100, metric="dot")


@pytest.mark.benchmark(group="exact top-100, 200 x 100k x 384")
def test_topk_numpy_brute_force(benchmark, search_data):
    queries, corpus = search_data
    benchmark(_brute_force, queries, corpus, 100)


@pytest.mark.benchmark(group="exact top-100, 200 x 100k x 384")
def test_topk_faiss_flat_ip(benchmark, search_data):
    faiss = pytest.importorskip("faiss")
    queries, corpus = search_data
    index = faiss.IndexFlatIP(corpus.shape[1])
    index.add(corpus)
    benchmark(index.search, queries, 100)
