"""Parity of ``fastmteb.kernels.ranking_metrics`` with pytrec_eval and mteb's own MRR.

Oracles: ``pytrec_eval.RelevanceEvaluator`` (fresh per call, the measures mteb asks for) for
nDCG/MAP/recall/P/success, ``mteb._evaluators.retrieval_metrics.mrr`` for MRR, Python's ``sum``
for the means, and ``kernels.reference.ranking_metrics_reference`` (checked against both).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import pytrec_eval
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mteb._evaluators.retrieval_metrics import mrr as mteb_mrr

from fastmteb.kernels import ranking as ranking_module
from fastmteb.kernels._numba import ranking as ranking_numba
from fastmteb.kernels.ranking import (
    QrelsCSR,
    RankingInputError,
    doc_tie_rank,
    metric_keys,
    ranking_metrics,
)
from fastmteb.kernels.reference import ranking_metrics_reference

K_VALUES = (1, 3, 5, 10, 20, 100, 1000)
TREC_NAMES = {
    "ndcg": "ndcg_cut",
    "map": "map_cut",
    "recall": "recall",
    "precision": "P",
    "hit_rate": "success",
}
TOLERANCE = 1e-12  # the kernel follows trec_eval's operation order; observed difference is 0


# --------------------------------------------------------------------------- oracles


def oracle(qrels, run, ks=K_VALUES) -> dict[str, dict[str, float]]:
    """Per query (pytrec_eval's queries and order): pytrec_eval's measures + mteb's MRR."""
    measures = {f"{name}.{','.join(map(str, ks))}" for name in TREC_NAMES.values()}
    trec = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)
    mrr_lists = mteb_mrr(qrels, {q: run[q] for q in trec}, list(ks))
    per_query = {}
    for i, query_id in enumerate(trec):
        values = {}
        for prefix, trec_name in TREC_NAMES.items():
            for k in ks:
                values[f"{prefix}_at_{k}"] = trec[query_id][f"{trec_name}_{k}"]
        for k in ks:
            values[f"mrr_at_{k}"] = mrr_lists[f"MRR@{k}"][i]
        per_query[query_id] = values
    return per_query


def assert_matches_oracle(result, qrels, run, ks=K_VALUES) -> None:
    expected = oracle(qrels, run, ks)
    assert result.query_ids == list(expected)
    assert list(result.per_query) == metric_keys(ks)
    for key, values in result.per_query.items():
        reference = np.array([expected[q][key] for q in expected])
        np.testing.assert_allclose(values, reference, rtol=0, atol=TOLERANCE, err_msg=key)
        # the mean is what mteb computes before rounding: Python's sum over the list / n
        assert result.means[key] == sum(reference.tolist()) / len(reference), key


def to_array_form(qrels, run, doc_ids, rng, float64_scores=False):
    """The same data as (QrelsCSR, run indices padded with -1, scores, doc_rank), rows shuffled."""
    query_ids = list(run)
    position = {doc_id: j for j, doc_id in enumerate(doc_ids)}
    width = max(1, max(map(len, run.values())))
    indices = np.full((len(query_ids), width), -1, dtype=np.int64)
    scores = np.zeros((len(query_ids), width), dtype=np.float64 if float64_scores else np.float32)
    for row, query_id in enumerate(query_ids):
        items = list(run[query_id].items())
        rng.shuffle(items)
        for column, (doc_id, score) in enumerate(items):
            indices[row, column] = position[doc_id]
            scores[row, column] = score
    csr = QrelsCSR.from_dict(qrels, query_ids, doc_ids)
    return csr, indices, scores, doc_tie_rank(doc_ids)


def random_case(rng, n_queries=60, n_docs=200, max_depth=40, n_levels=None, id_style="int"):
    """Random run/qrels with graded, zero and negative judgments, empty runs, judged docs missing
    from the corpus, queries without judgments and qrels queries without a run."""
    if id_style == "int":
        doc_ids = [str(j) for j in range(n_docs)]
    else:
        alphabet = list("ab9Zé") + ["10", "1"]
        words = {"".join(rng.choice(alphabet, size=rng.integers(1, 5))) for _ in range(n_docs)}
        doc_ids = sorted(words)
    run, qrels = {}, {}
    for i in range(n_queries):
        depth = int(rng.integers(0, max_depth + 1))
        docs = rng.choice(len(doc_ids), size=min(depth, len(doc_ids)), replace=False)
        if n_levels is None:
            scores = rng.standard_normal(len(docs))
        else:  # heavy ties
            scores = rng.integers(0, n_levels, len(docs)) / 4
        run[f"q{i}"] = {doc_ids[d]: float(s) for d, s in zip(docs, scores)}
        n_judged = int(rng.integers(0, 12))
        judged = {}
        for _ in range(n_judged):
            if len(docs) and rng.random() < 0.6:
                doc_id = doc_ids[docs[rng.integers(0, len(docs))]]
            elif rng.random() < 0.8:
                doc_id = doc_ids[rng.integers(0, len(doc_ids))]
            else:
                doc_id = f"absent-{rng.integers(0, 1000)}"  # judged but not in the corpus
            judged[doc_id] = int(rng.integers(-1, 4))
        if i % 7 == 3:
            judged = {doc_id: min(grade, 0) for doc_id, grade in judged.items()}  # no positives
        if i % 11 != 5:  # some run queries have no qrels entry at all
            qrels[f"q{i}"] = judged
    qrels["only-in-qrels"] = {doc_ids[0]: 1}
    return qrels, run, doc_ids


# --------------------------------------------------------------------------- parity


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("n_levels", [None, 3])
def test_random_dict_form_equals_pytrec_and_mteb_mrr(seed, n_levels):
    qrels, run, _ = random_case(np.random.default_rng(seed), n_levels=n_levels)
    assert_matches_oracle(ranking_metrics(qrels, run, K_VALUES), qrels, run)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("id_style", ["int", "mixed"])
def test_random_array_form_equals_dict_form(seed, id_style):
    rng = np.random.default_rng(seed)
    qrels, run, doc_ids = random_case(rng, n_levels=3, id_style=id_style)
    from_dicts = ranking_metrics(qrels, run, K_VALUES)
    csr, indices, scores, doc_rank = to_array_form(qrels, run, doc_ids, rng)
    from_arrays = ranking_metrics(csr, indices, K_VALUES, run_scores=scores, doc_rank=doc_rank)
    assert from_arrays.query_ids is None
    assert [list(run)[i] for i in from_arrays.query_index] == from_dicts.query_ids
    for key in from_dicts.per_query:
        np.testing.assert_array_equal(
            from_arrays.per_query[key], from_dicts.per_query[key], err_msg=key
        )
        assert from_arrays.means[key] == from_dicts.means[key]


def test_reference_equals_pytrec_and_mteb_mrr():
    qrels, run, _ = random_case(np.random.default_rng(5), n_levels=3, id_style="mixed")
    expected = oracle(qrels, run)
    reference = ranking_metrics_reference(qrels, run, K_VALUES)
    assert list(reference) == list(expected)
    for query_id, values in expected.items():
        for key, value in values.items():
            assert reference[query_id][key] == pytest.approx(value, abs=TOLERANCE), (query_id, key)


def test_10k_random_queries_equal_pytrec():
    rng = np.random.default_rng(42)
    qrels, run, doc_ids = random_case(rng, n_queries=10_000, n_docs=5000, max_depth=100)
    result = ranking_metrics(qrels, run, K_VALUES)
    assert len(result.query_ids) > 8000
    assert_matches_oracle(result, qrels, run)
    csr, indices, scores, doc_rank = to_array_form(qrels, run, doc_ids, rng)
    arrays = ranking_metrics(csr, indices, K_VALUES, run_scores=scores, doc_rank=doc_rank)
    for key in result.per_query:
        assert np.max(np.abs(arrays.per_query[key] - result.per_query[key])) <= 1e-6


@pytest.mark.slow
def test_10k_queries_depth_1000_equal_pytrec():
    rng = np.random.default_rng(7)
    qrels, run, _ = random_case(rng, n_queries=10_000, n_docs=20_000, max_depth=1000)
    assert_matches_oracle(ranking_metrics(qrels, run, K_VALUES), qrels, run)


def test_many_positives_per_query_use_the_bucket_path():
    """More distinct positive scores than the sweep threshold: the binary-search counting path."""
    rng = np.random.default_rng(3)
    doc_ids = [f"d{j}" for j in range(400)]
    run, qrels = {}, {}
    for i in range(30):
        docs = rng.choice(400, size=300, replace=False)
        run[f"q{i}"] = {doc_ids[d]: float(rng.integers(0, 40)) for d in docs}  # ties too
        judged = rng.choice(400, 200, replace=False)
        qrels[f"q{i}"] = {doc_ids[d]: int(rng.integers(0, 4)) for d in judged}
    assert ranking_numba._SWEEP_GROUPS < 40
    assert_matches_oracle(ranking_metrics(qrels, run, K_VALUES), qrels, run)
    csr, indices, scores, doc_rank = to_array_form(qrels, run, doc_ids, rng)
    arrays = ranking_metrics(csr, indices, K_VALUES, run_scores=scores, doc_rank=doc_rank)
    expected = ranking_metrics(qrels, run, K_VALUES)
    for key in expected.per_query:
        np.testing.assert_array_equal(arrays.per_query[key], expected.per_query[key])


ids = st.sampled_from(["1", "9", "10", "100", "a", "b", "ab", "B", "é", "z", "~"])
score_values = st.sampled_from([0.0, -0.0, 0.5, 1.0, 0.3, 0.3 + 1e-8, 0.3 + 3e-8, -2.0])
grade_values = st.integers(-1, 3)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    run=st.dictionaries(
        st.sampled_from(["q1", "q2", "q3"]),
        st.dictionaries(ids, score_values),
        min_size=1,
    ),
    qrels=st.dictionaries(
        st.sampled_from(["q1", "q2", "q3", "q4"]), st.dictionaries(ids, grade_values), min_size=1
    ),
    ks=st.lists(st.integers(1, 12), min_size=1, max_size=4, unique=True),
)
def test_adversarial_ties_ids_and_grades(run, qrels, ks):
    """Tiny alphabets force ties at float64 and at float32 only, '9' vs '10', -0.0 vs 0.0,
    unicode ids, negative grades, empty runs and k beyond the run."""
    if not any(qrels.get(q) for q in run):
        with pytest.raises(RankingInputError):
            ranking_metrics(qrels, run, ks)
        return
    assert_matches_oracle(ranking_metrics(qrels, run, ks), qrels, run, tuple(ks))


# --------------------------------------------------------------------------- semantics


def test_ties_break_on_the_id_string_descending():
    run = {"q": {"9": 1.0, "10": 1.0, "100": 1.0}}
    assert ranking_metrics({"q": {"9": 1}}, run, (1,)).means["precision_at_1"] == 1.0
    assert ranking_metrics({"q": {"100": 1}}, run, (1,)).means["mrr_at_1"] == 0.0
    assert ranking_metrics({"q": {"100": 1}}, run, (2,)).means["mrr_at_2"] == 0.5


def test_float32_ties_for_trec_measures_float64_order_for_mrr():
    """0.3 + 1e-8 and 0.3 are one float32: pytrec breaks the tie by id ('b' first), mteb's MRR
    sorts the float64 values ('a' first). Both are reproduced."""
    qrels, run = {"q": {"a": 1}}, {"q": {"a": 0.3 + 1e-8, "b": 0.3}}
    result = ranking_metrics(qrels, run, (1, 2))
    assert result.means["precision_at_1"] == 0.0 and result.means["mrr_at_1"] == 1.0
    assert_matches_oracle(result, qrels, run, (1, 2))
    separated = {"q": {"a": 0.3 + 3e-8, "b": 0.3}}
    assert ranking_metrics(qrels, separated, (1,)).means["precision_at_1"] == 1.0

    rng = np.random.default_rng(0)
    csr, indices, scores, doc_rank = to_array_form(qrels, run, ["a", "b"], rng, float64_scores=True)
    arrays = ranking_metrics(csr, indices, (1, 2), run_scores=scores, doc_rank=doc_rank)
    for key in result.per_query:
        np.testing.assert_array_equal(arrays.per_query[key], result.per_query[key])


def test_which_queries_are_scored():
    qrels = {"judged": {"x": 1}, "zero-only": {"x": 0, "y": -1}, "empty": {}, "not-run": {"x": 1}}
    run = {"zero-only": {"x": 1.0}, "no-qrels": {"x": 1.0}, "empty": {"x": 1.0}, "judged": {}}
    result = ranking_metrics(qrels, run, (1, 10))
    assert result.query_ids == ["zero-only", "judged"]  # run order; empty run scored as zeros
    assert result.query_index.tolist() == [0, 3]
    assert all(np.all(values == 0.0) for values in result.per_query.values())
    assert_matches_oracle(result, qrels, run, (1, 10))


def test_judged_documents_missing_from_the_corpus_count_in_r_and_ideal_dcg():
    qrels = {"q": {"d1": 1, "gone": 3}}
    run = {"q": {"d1": 2.0, "d2": 1.0}}
    csr = QrelsCSR.from_dict(qrels, ["q"], ["d1", "d2"])
    assert csr.doc_index.tolist() == [0, 2] and csr.grade.tolist() == [1, 3]
    scores = np.array([[2.0, 1.0]], np.float32)
    doc_rank = doc_tie_rank(["d1", "d2"])
    result = ranking_metrics(csr, np.array([[0, 1]]), (1, 10), run_scores=scores, doc_rank=doc_rank)
    assert result.means["recall_at_10"] == 0.5
    assert result.means["ndcg_at_1"] == pytest.approx(1 / 3)
    assert_matches_oracle(ranking_metrics(qrels, run, (1, 10)), qrels, run, (1, 10))
    for key, value in ranking_metrics(qrels, run, (1, 10)).per_query.items():
        assert result.per_query[key][0] == value[0]


def test_array_rows_without_judgments_are_skipped_and_padding_means_fewer_results():
    csr = QrelsCSR(np.array([0, 1, 1, 2]), np.array([2, 0]), np.array([2, 1], np.int32))
    run = np.array([[1, 2, -1], [0, 1, 2], [-1, -1, -1]])
    scores = np.array([[0.5, 0.4, 0], [1, 1, 1], [0, 0, 0]], np.float32)
    result = ranking_metrics(csr, run, (1, 2, 5), run_scores=scores, doc_rank=np.arange(3))
    assert result.query_index.tolist() == [0, 2]
    assert result.per_query["precision_at_5"].tolist() == [0.2, 0.0]
    assert result.per_query["mrr_at_2"].tolist() == [0.5, 0.0]


def test_k_values_keep_order_and_drop_duplicates():
    result = ranking_metrics({"q": {"a": 1}}, {"q": {"a": 1.0}}, (10, 1, 10))
    assert list(result.per_query)[:2] == ["ndcg_at_10", "ndcg_at_1"]
    assert len(result.per_query) == 12


def test_means_follow_python_sum():
    values = np.array([1e16, 1.0, -1e16])
    assert ranking_numba.python_sum_mean(values, False) == sum([1e16, 1.0, -1e16]) / 3 == 0.0
    assert ranking_numba.python_sum_mean(values, True) == 1.0 / 3  # CPython >= 3.12 (Neumaier)
    python_is_compensated = math.fsum([1e16, 1.0, -1e16]) == sum([1e16, 1.0, -1e16])
    assert ranking_module._PYTHON_SUM_IS_COMPENSATED == python_is_compensated


def test_doc_tie_rank_is_bytewise_string_order(monkeypatch):
    doc_ids = ["9", "10", "b", "a", "é", "ab", "B", "", "z~"]
    expected = np.empty(len(doc_ids), dtype=np.int64)
    by_utf8 = sorted(range(len(doc_ids)), key=lambda j: doc_ids[j].encode())
    expected[by_utf8] = np.arange(len(doc_ids))
    np.testing.assert_array_equal(doc_tie_rank(doc_ids), expected)
    monkeypatch.setattr(ranking_module, "_MAX_UNICODE_SORT_BYTES", 0)  # the pure-Python path
    np.testing.assert_array_equal(doc_tie_rank(doc_ids), expected)
    with pytest.raises(RankingInputError, match="twice"):
        doc_tie_rank(["a", "b", "a"])


# --------------------------------------------------------------------------- errors


TIED = np.array([[0.3, 0.3, 0.1]], np.float32)


def _array_inputs():
    csr = QrelsCSR(np.array([0, 1]), np.array([0]), np.array([1], np.int32))
    return csr, np.array([[0, 1, 2]]), np.array([[0.3, 0.2, 0.1]], np.float32), np.arange(3)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r, s, d: (r, np.where(r == 1, np.nan, s).astype(np.float32), d), "NaN"),
        (lambda r, s, d: (np.array([[0, 1, 0]]), s, d), "same document twice"),
        (lambda r, s, d: (np.array([[0, -1, 2]]), s, d), "padding"),
        (lambda r, s, d: (np.array([[0, 1, 3]]), s, d), "outside"),
        (lambda r, s, d: (r, TIED, np.array([0, 0, 1])), "doc_rank"),
        (lambda r, s, d: (r, TIED, np.array([-1, 0, 1])), "negative"),
        (lambda r, s, d: (r, s[:, :2], d), "shape"),
        (lambda r, s, d: (r.astype(np.float64), s, d), "integer"),
    ],
)
def test_array_form_errors_are_clear(change, message):
    csr, run, scores, doc_rank = _array_inputs()
    run, scores, doc_rank = change(run, scores, doc_rank)
    with pytest.raises(RankingInputError, match=message):
        ranking_metrics(csr, run, (1,), run_scores=scores, doc_rank=doc_rank)


def test_dict_form_errors_are_clear():
    with pytest.raises(RankingInputError, match=r"run\['q'\]\['b'\] is NaN"):
        ranking_metrics({"q": {"a": 1}}, {"q": {"a": 1.0, "b": math.nan}})
    with pytest.raises(RankingInputError, match="integers"):
        ranking_metrics({"q": {"a": 1.5}}, {"q": {"a": 1.0}})
    with pytest.raises(RankingInputError, match="nothing to score"):
        ranking_metrics({"other": {"a": 1}}, {"q": {"a": 1.0}})
    with pytest.raises(RankingInputError, match="positive integers"):
        ranking_metrics({"q": {"a": 1}}, {"q": {"a": 1.0}}, (0, 5))
    with pytest.raises(RankingInputError, match="array form"):
        ranking_metrics({"q": {"a": 1}}, {"q": {"a": 1.0}}, run_scores=np.zeros((1, 1)))


def test_qrels_csr_errors_are_clear():
    with pytest.raises(RankingInputError, match="twice"):
        QrelsCSR(np.array([0, 2]), np.array([4, 4]), np.array([1, 0], np.int32))._positives
    with pytest.raises(RankingInputError, match="non-decreasing"):
        QrelsCSR(np.array([0, 2, 1]), np.array([4, 4]), np.array([1, 0], np.int32))
    with pytest.raises(RankingInputError, match="agree"):
        QrelsCSR(np.array([0, 3]), np.array([4, 4]), np.array([1, 0], np.int32))
    with pytest.raises(RankingInputError, match="duplicate"):
        QrelsCSR.from_dict({"q": {"a": 1}}, ["q"], ["a", "a"])
    csr, run, scores, doc_rank = _array_inputs()
    with pytest.raises(RankingInputError, match="row i of the run"):
        two_rows = np.vstack([scores, scores])
        ranking_metrics(csr, np.vstack([run, run]), (1,), run_scores=two_rows, doc_rank=doc_rank)
