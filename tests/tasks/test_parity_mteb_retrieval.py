"""Level-1 parity, Retrieval and Reranking: same data and FakeEncoder embeddings -> every mteb metric.

Adversarial cases: exact score ties (FakeEncoder maps 1 text in 8 onto 6 shared vectors, plus duplicated
texts), queries whose judgments are all 0, queries without any judgment, empty titles, ids shared by
queries and documents (ignore_identical_ids), a corpus larger than mteb's top-1000 cut (boundary ties),
reranking with top_ranked, and old-format reranking rows converted by fastmteb's loader.
"""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
pytest.importorskip("mteb", reason="the oracle (mteb) is not installed")
import mteb_oracle as mo  # noqa: E402


def _retrieval_data(seed: int, n_docs: int, n_queries: int, *, shared_ids: bool = False, graded: bool = True) -> dict:
    rng = np.random.default_rng(seed)
    corpus = []
    for i in range(n_docs):
        text = corpus[i // 3]["text"] if i % 10 == 7 else mo.sentence(rng, (3, 12))  # duplicated texts
        title = "" if i % 4 else mo.sentence(rng, (1, 3))
        corpus.append({"id": f"d{i}", "title": title, "text": text})
    queries = [{"id": f"q{i}", "text": mo.sentence(rng, (1, 5))} for i in range(n_queries)]
    if shared_ids:  # ArguAna-style: some queries are documents too (same id, same text)
        for i in range(0, n_queries, 3):
            doc = corpus[(7 * i) % n_docs]
            queries[i] = {"id": doc["id"], "text": doc["text"]}
    qrels = []
    for qi, q in enumerate(queries):
        if qi % 11 == 5:
            continue  # no judgment at all: dropped by both loaders
        docs = rng.choice(n_docs, size=int(rng.integers(1, 6)), replace=False)
        for d in docs:
            score = int(rng.integers(0, 3)) if graded else 1
            if qi % 7 == 3:
                score = 0  # every judgment of this query is 0: kept, scores 0
            qrels.append({"query-id": q["id"], "corpus-id": f"d{d}", "score": score})
    if shared_ids:  # a query judged relevant to itself (must vanish under ignore_identical_ids)
        qrels.append({"query-id": queries[0]["id"], "corpus-id": queries[0]["id"], "score": 1})
    return {"corpus": corpus, "queries": queries, "qrels": qrels}


def _check(task_type: str, data: dict, *, params: dict | None = None, main_score: str | None = None) -> None:
    task = mo.mteb_task(task_type, data, params=params, main_score=main_score)
    expected = mo.run_mteb(task, mo.FakeEncoder())["test"]["default"]
    meta = mo.fastmteb_meta(task, params=params)
    actual = mo.fastmteb_scores(meta, mo.fastmteb_raw(data))
    mo.assert_same_scores(expected, actual)


@pytest.mark.parametrize("graded", [True, False], ids=["graded", "binary"])
def test_retrieval_matches_mteb(graded):
    _check("Retrieval", _retrieval_data(10 + graded, 300, 45, graded=graded))


def test_retrieval_ignore_identical_ids_matches_mteb():
    _check("Retrieval", _retrieval_data(20, 200, 30, shared_ids=True), params={"ignore_identical_ids": True})


def test_retrieval_without_ignore_identical_ids_keeps_self_matches():
    _check("Retrieval", _retrieval_data(21, 150, 24, shared_ids=True))


def test_retrieval_top_1000_cut_with_boundary_ties_matches_mteb():
    """1,150 documents: mteb keeps 1,000 per query (heap on (score, doc id)); ties straddle the cut."""
    rng = np.random.default_rng(30)
    data = _retrieval_data(30, 1150, 8)
    for doc in data["corpus"][::2]:  # half the corpus on a handful of texts -> long runs of tied scores
        doc["title"], doc["text"] = "", mo.sentence(rng, (1, 1))
    _check("Retrieval", data)


def test_reranking_top_ranked_matches_mteb():
    data = _retrieval_data(40, 120, 30)
    rng = np.random.default_rng(41)
    judged: dict[str, list[str]] = {}
    for row in data["qrels"]:
        judged.setdefault(row["query-id"], []).append(row["corpus-id"])
    top_ranked = []
    for q in data["queries"]:
        others = [f"d{i}" for i in rng.choice(120, size=15, replace=False)]
        candidates = list(dict.fromkeys(judged.get(q["id"], [])[:2] + others))
        top_ranked.append({"query-id": q["id"], "corpus-ids": candidates})
    data["top_ranked"] = top_ranked
    _check("Reranking", data)


def _old_format_rows(seed: int, n: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        # row 4 has no positive and row 6 no negative: both converters drop them and renumber the rest
        positive = [] if i == 4 else [mo.sentence(rng, (3, 9)) for _ in range(int(rng.integers(1, 4)))]
        negative = [] if i == 6 else [mo.sentence(rng, (3, 9)) for _ in range(int(rng.integers(1, 9)))]
        if i % 5 == 2 and rows:  # a candidate shared with an earlier query, and a duplicate within the row
            negative += [rows[-1]["positive"][0] if rows[-1]["positive"] else "x", negative[0] if negative else "y"]
        rows.append({"query": mo.sentence(rng, (1, 4)), "positive": positive, "negative": negative})
    return rows


def test_reranking_old_format_through_fastmteb_loader_matches_mteb(tmp_path):
    """Old rows (query, positive, negative) -> mteb's transform_old_dataset_format vs fastmteb's load_raw."""
    rows = _old_format_rows(50, 40)
    task = mo.mteb_task("Reranking", {"test": rows}, old_format=True, name="OracleOldFormatReranking")
    expected = mo.run_mteb(task, mo.FakeEncoder())["test"]["default"]

    folder = tmp_path / "OracleOldFormatReranking"
    folder.mkdir()
    (folder / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    meta = mo.fastmteb_meta(task, params={"old_format": True}, local_dir=folder.name)

    def fast():
        from fastmteb.data.loading import load_raw

        raw = load_raw(meta, "default", "test", data_dir=tmp_path)
        return mo.fastmteb_scores(meta, raw)

    mo.assert_same_scores(expected, fast())
