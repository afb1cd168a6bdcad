"""Bad input, fuzzed (hypothesis): loaders, task types and kernels get empty texts, None, bytes that
are not UTF-8, very long texts, NaN/inf embeddings, a wrong embedding dimension, duplicate ids,
qrels for unknown documents, labels of mixed types.

Every case ends in one of two ways: a clear error (a ``ValueError`` subclass whose message names
the problem; never an IndexError/TypeError/Numba error from deep inside a kernel), or a result
equal to the oracle's (scipy, pytrec_eval, brute force). The number of cases tried is printed at
the end of the session (``conftest.pytest_terminal_summary``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats

import fastmteb
from fastmteb import kernels
from fastmteb.kernels.reference import topk_reference

from _robustness_counts import count_example

FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

WEIRD_FLOATS = st.sampled_from([0.0, -0.0, 1.0, -1.0, 1e-30, 1e30, float("nan"), float("inf"),
                                float("-inf")])


def _clear_error(error: BaseException) -> None:
    """The error contract: a ValueError subclass with a message (TypeError for a wrong Python type)."""
    assert isinstance(error, (ValueError, TypeError)), f"{type(error).__name__}: {error}"
    assert str(error).strip(), f"{type(error).__name__} without a message"


def _matrix(draw, rows, dim, weird: bool):
    values = draw(st.lists(st.floats(-4, 4, width=32), min_size=rows * dim, max_size=rows * dim))
    matrix = np.asarray(values, dtype=np.float32).reshape(rows, dim)
    if weird and rows * dim and draw(st.booleans()):
        r, c = draw(st.integers(0, rows - 1)), draw(st.integers(0, dim - 1))
        matrix[r, c] = draw(WEIRD_FLOATS)
    return matrix


# ---------------------------------------------------------------------------------------------
# Kernels


@FUZZ
@given(data=st.data())
def test_fuzz_topk(data):
    count_example("kernels.topk")
    nq, nd = data.draw(st.integers(0, 6)), data.draw(st.integers(0, 12))
    dim = data.draw(st.integers(1, 5))
    corpus_dim = dim if data.draw(st.integers(0, 5)) else dim + 1  # sometimes a wrong dimension
    queries = _matrix(data.draw, nq, dim, weird=True)
    corpus = _matrix(data.draw, nd, corpus_dim, weird=True)
    # duplicate documents: equal scores, the tie order must still be the documented one
    if nd > 2 and data.draw(st.booleans()):
        corpus[1] = corpus[0]
    k = data.draw(st.integers(-1, 15))
    metric = data.draw(st.sampled_from(["cosine", "dot"]))
    try:
        scores, idx = kernels.topk(queries, corpus, k, metric=metric)
    except Exception as e:  # noqa: BLE001
        _clear_error(e)
        return
    assert corpus_dim == dim and k >= 1 and nd > 0, "invalid input accepted"
    assert np.isfinite(queries).all() and np.isfinite(corpus).all() or np.isfinite(scores).all()
    want_scores, want_idx = topk_reference(queries, corpus, k, metric=metric)
    np.testing.assert_allclose(np.asarray(scores), want_scores, rtol=1e-5, atol=1e-5)
    exact = np.asarray(scores) == want_scores  # where float rounding can reorder, skip the index
    np.testing.assert_array_equal(np.asarray(idx)[exact], want_idx[exact])


@FUZZ
@given(data=st.data())
def test_fuzz_correlation(data):
    count_example("kernels.spearman/pearson")
    n = data.draw(st.integers(0, 12))
    m = n if data.draw(st.integers(0, 6)) else data.draw(st.integers(0, 12))
    x = np.asarray(data.draw(st.lists(st.one_of(st.floats(-5, 5), WEIRD_FLOATS), min_size=n, max_size=n)))
    y = np.asarray(data.draw(st.lists(st.sampled_from([0.0, 1.0, 2.5, 5.0]) | st.floats(-5, 5),
                                      min_size=m, max_size=m)))
    for name, ours, theirs in (("spearman", kernels.spearman, scipy_stats.spearmanr),
                               ("pearson", kernels.pearson, scipy_stats.pearsonr)):
        try:
            got = ours(x, y)
        except Exception as e:  # noqa: BLE001
            _clear_error(e)
            continue
        assert n == m, f"{name} accepted lengths {n}, {m}"  # n < 2 gives NaN, as scipy
        with _quiet():
            try:
                want = float(theirs(x, y)[0])
            except ValueError:
                want = math.nan
        if math.isnan(want):
            assert math.isnan(got) or not np.isfinite(x).all(), (name, x, y, got)
        else:
            assert got == pytest.approx(want, abs=1e-9), (name, x, y)


class _quiet:
    def __enter__(self):
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore")

    def __exit__(self, *exc):
        return self._ctx.__exit__(*exc)


MIXED_LABELS = st.sampled_from([0, 1, 1, 0, 2, -1, "1", "a", True, 0.5, None])


@FUZZ
@given(data=st.data())
def test_fuzz_pair_sweep(data):
    count_example("kernels.pair_sweep")
    n = data.draw(st.integers(0, 10))
    scores = np.asarray(data.draw(st.lists(st.one_of(st.floats(-1, 1), WEIRD_FLOATS), min_size=n, max_size=n)))
    labels = data.draw(st.lists(st.one_of(st.sampled_from([0, 1]), MIXED_LABELS), min_size=n,
                                max_size=n + data.draw(st.sampled_from([0, 0, 0, 1]))))
    try:
        got = kernels.pair_sweep(scores, labels)
    except Exception as e:  # noqa: BLE001
        _clear_error(e)
        return
    assert len(labels) == n and np.isfinite(scores).all(), "invalid input accepted"
    assert set(map(int, labels)) <= {0, 1} and all(l in (0, 1) for l in labels)
    y = np.asarray(labels, dtype=int)
    if 0 < y.sum() < n:
        from sklearn.metrics import average_precision_score

        assert got.ap == pytest.approx(average_precision_score(y, scores), abs=1e-9)
    assert 0.0 <= got.accuracy <= 1.0 and 0.0 <= got.f1 <= 1.0


@FUZZ
@given(data=st.data())
def test_fuzz_bitext(data):
    count_example("kernels.bitext_mine")
    n = data.draw(st.integers(0, 6))
    dim = data.draw(st.integers(1, 4))
    source = _matrix(data.draw, n, dim, weird=True)
    target = _matrix(data.draw, data.draw(st.integers(0, 6)), dim if data.draw(st.integers(0, 5)) else dim + 1,
                     weird=True)
    try:
        got = kernels.bitext_mine(source, target)
    except Exception as e:  # noqa: BLE001
        _clear_error(e)
        return
    assert source.shape[1] == target.shape[1] and len(target) > 0  # n != m is allowed (documented)
    assert np.isfinite(source).all() and np.isfinite(target).all(), "NaN/inf embeddings accepted"
    sims = _cos(source) @ _cos(target).T
    want = np.argmax(sims, axis=1)
    close = np.sort(sims, axis=1)[:, -1] - np.sort(sims, axis=1)[:, -2] > 1e-5 if sims.shape[1] > 1 else np.ones(len(sims), bool)
    np.testing.assert_array_equal(np.asarray(got.predictions)[close], want[close])


def _cos(x):
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


@FUZZ
@given(data=st.data())
def test_fuzz_ranking_metrics_against_pytrec_eval(data):
    import pytrec_eval

    count_example("kernels.ranking_metrics")
    docs = [f"d{i}" for i in range(data.draw(st.integers(1, 6)))]
    unknown = ["ghost1", "ghost2"]  # judged but not in any run: counts in R and the ideal DCG
    queries = [f"q{i}" for i in range(data.draw(st.integers(1, 4)))]
    qrels = {q: {d: data.draw(st.integers(-1, 2)) for d in data.draw(st.lists(st.sampled_from(docs + unknown), unique=True, max_size=4))}
             for q in queries}
    qrels = {q: v for q, v in qrels.items() if v}
    run = {q: {d: data.draw(st.one_of(st.sampled_from([0.5, 0.25, 1.0]), st.floats(-1, 1), WEIRD_FLOATS))
               for d in data.draw(st.lists(st.sampled_from(docs), unique=True, max_size=6))}
           for q in queries}
    try:
        got = kernels.ranking_metrics(qrels, run, k_values=(1, 3, 10))
    except Exception as e:  # noqa: BLE001
        _clear_error(e)
        return
    assume(qrels)
    assert all(not math.isnan(s) for r in run.values() for s in r.values()), "NaN score accepted"
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "map_cut.10", "recall.10"})
    want = evaluator.evaluate(run)
    if not want:
        return
    assert got.query_ids == list(want), (got.query_ids, list(want))
    for ours, theirs in (("ndcg_at_10", "ndcg_cut_10"), ("map_at_10", "map_cut_10"),
                         ("recall_at_10", "recall_10")):
        expected = [want[q][theirs] for q in got.query_ids]
        np.testing.assert_allclose(got.per_query[ours], expected, rtol=0, atol=1e-6, err_msg=ours)


# ---------------------------------------------------------------------------------------------
# Loaders and task types, end to end on a local data folder


def _tiny(texts):
    table = np.random.default_rng(7).standard_normal((256, 6)).astype(np.float32)
    return np.stack([table[list(t.encode("utf-8", "surrogatepass")[:200])].sum(0) if t else np.zeros(6, np.float32)
                     for t in texts]) if texts else np.zeros((0, 6), np.float32)


GOOD_TEXTS = st.one_of(st.text(max_size=30), st.just(""), st.just(" "), st.just("long " * 3000),
                       st.just("émoji 🙂 ünïcödé"), st.just("same text"))
BAD_TEXTS = st.one_of(st.none(), st.integers(0, 3), st.just(["a", "list"]))
FUZZ_DATA = settings(max_examples=60, deadline=None, derandomize=True,
                     suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _with_fault(draw, rows, field_values):
    """Half the cases stay valid; the others get one bad value in one field of one row."""
    if not rows or draw(st.booleans()):
        return rows, None
    row = draw(st.integers(0, len(rows) - 1))
    field = draw(st.sampled_from(sorted(field_values)))
    rows[row] = {**rows[row], field: draw(field_values[field])}
    return rows, field


def _write_jsonl(path: Path, rows, corrupt: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = b"".join(json.dumps(r, allow_nan=True).encode() + b"\n" for r in rows)
    if corrupt and data:
        data = data[: len(data) // 2] + b"\xff\xfe\x80" + data[len(data) // 2 :]
    path.write_bytes(data)


def _run_task(meta, data_dir):
    from fastmteb.data.loading import load_raw
    from fastmteb.tasks.types import get_task_type

    task_type = get_task_type(meta.type)
    raw = load_raw(meta, "default", "test", data_dir=data_dir)
    prepared = task_type.prepare(meta, raw, "test", "default")
    requests = task_type.requests(prepared)
    embeddings = {name: _tiny(request.texts) for name, request in requests.items()}
    return prepared, requests, embeddings, task_type.score(meta, prepared, embeddings)


@FUZZ_DATA
@given(data=st.data())
def test_fuzz_sts_local_data(tmp_path_factory, data):
    count_example("loader+STS")
    meta = fastmteb.get_task("SICK-R")
    rows = data.draw(st.lists(st.fixed_dictionaries(
        {"sentence1": GOOD_TEXTS, "sentence2": GOOD_TEXTS, "score": st.floats(0, 5) | st.integers(0, 5)}),
        min_size=2, max_size=8))
    rows, fault = _with_fault(data.draw, rows, {
        "sentence1": BAD_TEXTS, "sentence2": BAD_TEXTS,
        "score": st.sampled_from([None, "4.0", float("nan"), float("inf"), [1.0]])})
    corrupt = bool(rows) and fault is None and data.draw(st.integers(0, 4)) == 0
    data_dir = tmp_path_factory.mktemp("sts")
    _write_jsonl(data_dir / meta.local_dir / "test.jsonl", rows, corrupt)
    try:
        _, requests, embeddings, scores = _run_task(meta, data_dir)
    except Exception as e:  # noqa: BLE001
        _clear_error(e)
        if corrupt:
            assert "UTF-8" in str(e) and "test.jsonl" in str(e), e
        return
    count_example("loader+STS accepted")
    assert not corrupt, "bytes that are not UTF-8 were accepted"
    assert all(isinstance(r["sentence1"], str) and isinstance(r["sentence2"], str) for r in rows)
    gold = np.asarray([float(r["score"]) for r in rows])
    assert np.isfinite(gold).all(), "a missing or NaN gold score was accepted"
    from sklearn.metrics.pairwise import paired_cosine_distances

    e1, e2 = (embeddings[name] for name in requests)
    cosine = 1 - paired_cosine_distances(e1, e2)  # mteb's "cosine" (zero vectors: cosine 1)
    with _quiet():
        want = scipy_stats.spearmanr(cosine, gold)[0] if len(gold) > 1 else math.nan
    got = scores["cosine_spearman"]
    assert (math.isnan(want) and math.isnan(got)) or got == pytest.approx(want, abs=1e-6)


@settings(FUZZ_DATA, max_examples=25)  # each case fits 10 logistic regressions
@given(data=st.data())
def test_fuzz_classification_labels_of_mixed_types(tmp_path_factory, data):
    count_example("loader+Classification")
    meta = fastmteb.get_task("Banking77Classification")
    label_kind = data.draw(st.sampled_from([st.integers(0, 2), st.sampled_from(["a", "b", "c"])]))
    row = st.fixed_dictionaries({"text": GOOD_TEXTS, "label": label_kind})
    train = data.draw(st.lists(row, min_size=3, max_size=12))
    test = data.draw(st.lists(row, min_size=1, max_size=6))
    train, fault = _with_fault(data.draw, train, {
        "text": BAD_TEXTS, "label": st.sampled_from([None, 1.5, "1", 1, True, ["a"]])})
    data_dir = tmp_path_factory.mktemp("cls")
    _write_jsonl(data_dir / meta.local_dir / "train.jsonl", train)
    _write_jsonl(data_dir / meta.local_dir / "test.jsonl", test)
    try:
        _, _, _, scores = _run_task(meta, data_dir)
    except Exception as e:  # noqa: BLE001
        _clear_error(e)
        return
    count_example("loader+Classification accepted")
    labels = [r["label"] for r in train + test]
    assert len({type(label) for label in labels}) == 1, f"mixed label types accepted: {labels}"
    assert None not in labels and all(isinstance(r["text"], str) for r in train + test)
    assert 0.0 <= scores["accuracy"] <= 1.0


@FUZZ_DATA
@given(data=st.data())
def test_fuzz_retrieval_local_data(tmp_path_factory, data):
    count_example("loader+Retrieval")
    meta = fastmteb.get_task("SciFact")
    doc_ids = data.draw(st.lists(st.sampled_from(["d1", "d2", "d3", "1", "01", "d 4"]), min_size=1,
                                 max_size=5, unique=data.draw(st.booleans())))
    corpus = [{"_id": i, "title": data.draw(GOOD_TEXTS), "text": data.draw(GOOD_TEXTS)} for i in doc_ids]
    corpus, fault = _with_fault(data.draw, corpus, {"text": BAD_TEXTS, "title": st.none()})
    queries = [{"_id": q, "text": data.draw(GOOD_TEXTS)} for q in ("q1", "q2")]
    qrels = data.draw(st.lists(st.tuples(st.sampled_from(["q1", "q2", "q9"]),
                                         st.sampled_from([*doc_ids, "ghost"]),
                                         st.sampled_from(["1", "0", "2", "-1", "x"])),
                               min_size=1, max_size=5))
    folder = tmp_path_factory.mktemp("ret") / meta.local_dir
    _write_jsonl(folder / "corpus.jsonl", corpus)
    _write_jsonl(folder / "queries.jsonl", queries)
    (folder / "qrels").mkdir(parents=True)
    (folder / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{s}\n" for q, d, s in qrels))
    try:
        _, _, _, scores = _run_task(meta, folder.parent)
    except Exception as e:  # noqa: BLE001
        _clear_error(e)
        return
    count_example("loader+Retrieval accepted")
    assert len(doc_ids) == len(set(doc_ids)), "duplicate corpus ids accepted"
    assert all(s != "x" for _, _, s in qrels), "a non-integer relevance grade accepted"
    for key, value in scores.items():
        if key.startswith(("ndcg_at", "map_at", "recall_at", "precision_at", "mrr_at")):
            assert 0.0 <= value <= 1.0 or math.isnan(value), (key, value)


# ---------------------------------------------------------------------------------------------
# Broken models


def test_wrong_embedding_dimension_between_calls_is_a_clear_error():
    from fastmteb.encoding import CallableEncoder, EncodeContext, TextPool

    count_example("model.dimension-change")
    dims = iter([8, 16])

    def model(texts):
        return np.ones((len(texts), next(dims)), np.float32)

    pool = TextPool(CallableEncoder(model, name="shifty"), progress=False)
    ctx = EncodeContext("SICK-R", "STS", None, "test", "default", None)
    pool.add(["a", "b"], ctx)
    pool.embeddings()
    pool.add(["c"], ctx)
    with pytest.raises(ValueError, match="16-dim vectors after 8-dim"):
        pool.embeddings()


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nan_or_inf_embeddings_never_become_a_score(tmp_path, bad):
    """A broken model returning NaN/inf: the task fails with a clear error; no file is written."""
    count_example("model.nan-inf")

    def broken(texts):
        out = _tiny(texts)
        out[::3] = bad
        return out

    metas = [m for m in fastmteb.get_benchmark("fastmteb-mini") if m.name in ("SICK-R", "SciFactReranking")]
    result = fastmteb.evaluate(broken, metas, output_folder=tmp_path, progress=False, raise_error=False)
    written = sorted(p.name for p in tmp_path.rglob("*.json") if p.name != "model_meta.json")
    assert written == [] and len(result.failures) == 2, (written, result.failures)
    for failure in result.failures:
        assert isinstance(failure.exception, ValueError), failure
        assert "nan" in failure.error.lower() or "finite" in failure.error.lower() or "inf" in failure.error.lower()


def test_binary_classification_with_string_labels(tmp_path):
    count_example("loader+Classification string binary")
    meta = fastmteb.get_task("Banking77Classification")
    train = [{"text": f"text {i} " + "ab"[i % 2] * i, "label": "ac"[i % 2]} for i in range(10)]
    test = [{"text": f"query {i}", "label": "ac"[i % 2]} for i in range(4)]
    _write_jsonl(tmp_path / meta.local_dir / "train.jsonl", train)
    _write_jsonl(tmp_path / meta.local_dir / "test.jsonl", test)
    try:
        _, _, _, scores = _run_task(meta, tmp_path)
    except ValueError as e:
        assert meta.name in str(e) and "label" in str(e), f"unclear error: {e}"
        return
    assert 0.0 <= scores["accuracy"] <= 1.0
