"""Retrieval / Reranking task type: hand-computed ranks and metrics on tiny corpora."""

import math

import numpy as np
import pytest
from datasets import Dataset

from fastmteb.tasks.base import TaskMetadata
from fastmteb.tasks.retrieval import confidences, nauc, Run
from fastmteb.tasks.types import TaskTypeError, get_task_type


def _meta(type_name="Retrieval", **params):
    params.setdefault("k_values", (1, 3))
    return TaskMetadata(name="Tiny", type=type_name, hf_path="x", hf_revision="0", main_score="ndcg_at_10", params=params)


def _raw(corpus, queries, qrels, top_ranked=None):
    raw = {
        "corpus": Dataset.from_list(corpus),
        "queries": Dataset.from_list(queries),
        "qrels": Dataset.from_list([{"query-id": q, "corpus-id": d, "score": s} for q, d, s in qrels]),
    }
    if top_ranked is not None:
        raw["top_ranked"] = Dataset.from_list([{"query-id": q, "corpus-ids": c} for q, c in top_ranked.items()])
    return raw


def _score(meta, raw, vectors):
    """``vectors`` maps a text to its embedding."""
    tt = get_task_type(meta.type)
    prepared = tt.prepare(meta, raw, "test", "default")
    requests = tt.requests(prepared)
    embeddings = {name: np.asarray([vectors[t] for t in r.texts], dtype=np.float32) for name, r in requests.items()}
    return tt, prepared, requests, embeddings, tt.score(meta, prepared, embeddings)


CORPUS = [{"id": "d1", "title": "", "text": "one"}, {"id": "d2", "title": "", "text": "two"}, {"id": "d3", "title": "", "text": "three"}]
VECTORS = {"one": [1, 0], "two": [0.8, 0.6], "three": [0, 1], "qa": [1, 0], "qb": [0, 1]}


def test_three_documents_hand_computed_metrics():
    # qa ranks d1 (1.0), d2 (0.8), d3 (0.0); qb ranks d3, d2, d1.
    # qa: only d2 relevant (grade 2). qb: d3 relevant and dX (absent from the corpus) relevant -> R = 2.
    raw = _raw(CORPUS, [{"id": "a", "text": "qa"}, {"id": "b", "text": "qb"}], [("a", "d2", 2), ("b", "d3", 1), ("b", "dX", 1)])
    *_, out = _score(_meta(), raw, VECTORS)
    ndcg3_a = (2 / math.log2(3)) / 2
    ndcg3_b = 1 / (1 + 1 / math.log2(3))
    assert out["ndcg_at_1"] == 0.5
    assert out["ndcg_at_3"] == round((ndcg3_a + ndcg3_b) / 2, 5)
    assert out["map_at_3"] == round((0.5 + 0.5) / 2, 5)
    assert out["recall_at_1"] == round((0 + 0.5) / 2, 5) == out["accuracy"]
    assert out["recall_at_3"] == round((1 + 0.5) / 2, 5)
    assert out["precision_at_3"] == round((1 / 3 + 1 / 3) / 2, 5)
    assert out["mrr_at_1"] == 0.5 and out["mrr_at_3"] == (0.5 + 1) / 2
    assert out["hit_rate_at_1"] == 0.5 and out["hit_rate_at_3"] == 1.0


def test_key_order_is_mteb_make_score_dict():
    raw = _raw(CORPUS, [{"id": "a", "text": "qa"}, {"id": "b", "text": "qb"}], [("a", "d2", 1), ("b", "d3", 1)])
    *_, out = _score(_meta(), raw, VECTORS)
    ks = (1, 3)
    expected = [f"{f}_at_{k}" for f in ("ndcg", "map", "recall") for k in ks] + ["accuracy"]
    expected += [f"precision_at_{k}" for k in ks] + [f"mrr_at_{k}" for k in ks]
    expected += [f"nauc_{f}_at_{k}_{c}" for f in ("ndcg", "map", "recall", "precision", "mrr") for k in ks for c in ("max", "std", "diff1")]
    expected += [f"hit_rate_at_{k}" for k in ks]
    assert list(out) == expected


def test_score_ties_break_by_document_id_descending():
    # "9" > "10" as strings: at equal score "9" ranks first, so the relevant "10" is at rank 2.
    corpus = [{"id": "10", "title": "", "text": "same"}, {"id": "9", "title": "", "text": "same "}]
    vectors = {"same": [1, 0], "q": [1, 0]}
    raw = _raw(corpus, [{"id": "q", "text": "q"}], [("q", "10", 1)])
    *_, out = _score(_meta(), raw, vectors)
    assert out["mrr_at_1"] == 0.0 and out["mrr_at_3"] == 0.5


def test_text_assembly_title_instruction_and_query_filtering():
    corpus = [{"id": "d1", "title": "T", "text": " body "}, {"id": "d2", "title": "", "text": " plain "}]
    queries = [{"id": "a", "text": "qa ", "instruction": "be brief"}, {"id": "b", "text": "qb", "instruction": None},
               {"id": "c", "text": "unjudged", "instruction": "x"}]
    raw = _raw(corpus, queries, [("a", "d1", 1), ("b", "d2", 0)])
    tt = get_task_type("InstructionRetrieval")
    requests = tt.requests(tt.prepare(_meta("InstructionRetrieval"), raw, "test", "default"))
    assert requests["corpus"].texts == ["T  body", "plain"] and requests["corpus"].prompt_type == "document"
    assert requests["queries"].texts == ["qa  be brief", "qb"] and requests["queries"].prompt_type == "query"


def test_ignore_identical_ids_drops_the_self_match_after_the_cut():
    corpus = CORPUS + [{"id": "a", "title": "", "text": "qa"}]
    raw = _raw(corpus, [{"id": "a", "text": "qa"}], [("a", "d1", 1), ("a", "a", 1)])
    meta = _meta(ignore_identical_ids=True, k_values=(1, 3))
    tt, prepared, _, embeddings, out = _score(meta, raw, VECTORS)
    # without the self match d1 is first; "a" stays in the qrels (R = 2) as in mteb
    assert out["mrr_at_1"] == 1.0 and out["recall_at_1"] == 0.5
    meta_keep = _meta(ignore_identical_ids=False, k_values=(1, 3))
    *_, kept = _score(meta_keep, raw, VECTORS)
    assert kept["recall_at_3"] == 1.0  # "a" (tied with d1 at 1.0, larger id) and d1 both retrieved


def test_reranking_scores_only_the_candidates():
    # d1 would rank first for qa, but it is not a candidate; a query without top_ranked gets an empty run
    raw = _raw(CORPUS, [{"id": "a", "text": "qa"}, {"id": "b", "text": "qb"}], [("a", "d2", 1), ("b", "d3", 1)],
               top_ranked={"a": ["d3", "d2", "d3"]})
    tt, prepared, requests, _, out = _score(_meta("Reranking"), raw, VECTORS)
    assert requests["corpus"].texts == ["two", "three"]  # only ranked documents are encoded
    assert out["mrr_at_1"] == 0.5 and out["recall_at_3"] == 0.5


def test_max_over_subqueries_merges_by_max_score():
    # impression "i": sub-queries i_1 (likes d1) and i_2 (likes d3); merged run: d1 1.0, d3 1.0, d2 0.8
    raw = _raw(CORPUS, [{"id": "i_1", "text": "qa"}, {"id": "i_2", "text": "qb"}],
               [("i_1", "d2", 1), ("i_2", "d2", 1)], top_ranked={"i_1": ["d1", "d2", "d3"], "i_2": ["d1", "d2", "d3"]})
    *_, out = _score(_meta("Reranking", max_over_subqueries=True), raw, VECTORS)
    assert out["max_over_subqueries_mrr_at_3"] == 1 / 3  # d3 > d1 at the tie, then d2
    assert out["max_over_subqueries_map_at_1"] == 0.0
    assert list(out)[-1] == "max_over_subqueries_hit_rate_at_3"


def test_confidences_and_nauc_follow_mteb_definitions():
    run = Run(indptr=np.array([0, 3, 3, 4]), docs=np.array([0, 1, 2, 0]), scores=np.array([0.9, 0.5, 0.1, 0.7], dtype=np.float32))
    conf = confidences(run)
    values = np.array([0.9, 0.5, 0.1], dtype=np.float32).astype(np.float64)
    assert conf["max"].tolist() == [values[0], 0.0, np.float32(0.7)]
    assert conf["std"][0] == np.std(values) and conf["std"][1] == 0.0 and conf["std"][2] == 0.0
    assert conf["diff1"].tolist() == [values[0] - values[1], 0.0, 0.0]
    metric = np.array([0.0, 0.2, 0.5, 1.0])
    assert nauc(metric, metric) == pytest.approx(1.0)  # the oracle itself
    assert np.isnan(nauc(np.arange(4.0), np.ones(4)))  # flat metric: oracle = flat


def test_score_is_deterministic_and_does_not_change_prepared():
    raw = _raw(CORPUS, [{"id": "a", "text": "qa"}, {"id": "b", "text": "qb"}], [("a", "d2", 1), ("b", "d3", 1)])
    tt, prepared, _, embeddings, first = _score(_meta(), raw, VECTORS)
    assert tt.score(_meta(), prepared, embeddings) == first


def test_bad_inputs_raise_clear_errors():
    raw = _raw(CORPUS, [{"id": "a", "text": "qa"}], [("a", "d2", 1)])
    tt = get_task_type("Retrieval")
    prepared = tt.prepare(_meta(), raw, "test", "default")
    with pytest.raises(TaskTypeError, match="embeddings has no entry 'corpus'"):
        tt.score(_meta(), prepared, {"queries": np.ones((1, 2), np.float32)})
    with pytest.raises(TaskTypeError, match="no query"):
        tt.prepare(_meta(), _raw(CORPUS, [{"id": "z", "text": "qa"}], [("a", "d2", 1)]), "test", "default")
    with pytest.raises(TaskTypeError, match="not in the corpus"):
        tt.prepare(_meta("Reranking"), _raw(CORPUS, [{"id": "a", "text": "qa"}], [("a", "d2", 1)], {"a": ["nope"]}), "test", "default")


def test_paired_accuracy_and_robustness_at_10():
    queries = [{"id": "k_q1", "text": "qa"}, {"id": "k_q2", "text": "qb"}, {"id": "m_q1", "text": "qa"}, {"id": "m_q2", "text": "qb"}]
    qrels = [("k_q1", "d1", 1), ("k_q2", "d3", 1), ("m_q1", "d3", 1), ("m_q2", "d3", 1)]
    raw = _raw(CORPUS, queries, qrels)
    *_, out = _score(_meta(task_specific_scores="paired_accuracy", k_values=(1, 3, 10)), raw, VECTORS)
    assert out["paired_accuracy"] == 0.5  # pair k: both right at rank 1; pair m: m_q1 ranks d3 last
    *_, out = _score(_meta(task_specific_scores="robustness_at_10", k_values=(1, 3, 10)), raw, VECTORS)
    assert out["robustness_at_10"] == (1.0 + 0.5) / 2  # min nDCG@10 per prefix: k -> 1, m -> 1/log2(4)
    with pytest.raises(TaskTypeError, match="p-MRR"):
        _score(_meta(task_specific_scores="p-MRR"), raw, VECTORS)
