"""Bad data -> TaskDataError naming the task, the field and a fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fastmteb.data.loading import TaskDataError, load_raw
from fastmteb.tasks.registry import UnknownTaskError, get_task


def _write(path: Path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = rows if isinstance(rows, str) else "".join(json.dumps(r) + "\n" for r in rows)
    path.write_text(text, encoding="utf-8")


def _beir(root: Path, corpus, queries, qrels_lines) -> Path:
    folder = root / "SciFact"
    _write(folder / "corpus.jsonl", corpus)
    _write(folder / "queries.jsonl", queries)
    _write(folder / "qrels" / "test.tsv", "query-id\tcorpus-id\tscore\n" + "".join(qrels_lines))
    return root


GOOD_CORPUS = [{"_id": "d1", "title": "", "text": "a"}, {"_id": "d2", "title": "T", "text": "b"}]
GOOD_QUERIES = [{"_id": "q1", "text": "x"}]


def test_unknown_task():
    with pytest.raises(UnknownTaskError, match="Did you mean: STS12"):
        get_task("STS-12")


def test_missing_split(tmp_path):
    _write(tmp_path / "STS12" / "test.jsonl", [{"sentence1": "a", "sentence2": "b", "score": 1.0}])
    with pytest.raises(TaskDataError, match=r"STS12: split 'validation' not found.*fix"):
        load_raw(get_task("STS12"), "default", "validation", data_dir=tmp_path)


def test_missing_train_split_for_classification(tmp_path):
    _write(tmp_path / "Banking77Classification" / "test.jsonl", [{"text": "a", "label": "x"}])
    with pytest.raises(
        TaskDataError, match=r"Banking77Classification: training split 'train'.*fix"
    ):
        load_raw(get_task("Banking77Classification"), "default", "test", data_dir=tmp_path)


def test_missing_task_folder_and_subset(tmp_path):
    with pytest.raises(TaskDataError, match=r"STS12: folder .* not found; fix"):
        load_raw(get_task("STS12"), "default", "test", data_dir=tmp_path)
    (tmp_path / "Tatoeba").mkdir()
    with pytest.raises(TaskDataError, match=r"Tatoeba: subset 'deu-eng' not found.*fix"):
        load_raw(get_task("Tatoeba"), "deu-eng", "test", data_dir=tmp_path)
    with pytest.raises(TaskDataError, match=r"unknown subset 'xx'"):
        load_raw(get_task("Tatoeba"), "xx", "test", data_dir=tmp_path)
    # Every task has a local layout now (its mteb name), not only the ones with shared data.
    with pytest.raises(TaskDataError, match=r"ArguAna: folder .*ArguAna not found; fix"):
        load_raw(get_task("ArguAna"), "default", "test", data_dir=tmp_path)


@pytest.mark.parametrize(
    ("rows", "pattern"),
    [
        ([{"sentence1": "a", "score": 1.0}], r"field\(s\) \['sentence2'\] missing"),
        (
            [{"sentence1": "a", "sentence2": None, "score": 1.0}],
            r"row 0: field 'sentence2' is None",
        ),
        (
            [{"sentence1": "a", "sentence2": "b", "score": "high"}],
            r"row 0: field 'score' is 'high'",
        ),
        (
            [{"sentence1": "a", "sentence2": "b", "score": 1}, {"sentence1": "c", "score": 2}],
            r"row 1 has fields .*differing: \['sentence2'\]",
        ),
        (
            '{"sentence1": "a", "sentence2": "b", "score": 1}\nnot json\n',
            r"STS12/test\.jsonl line 2 is not valid JSON at column 1 \(Expecting value\)",
        ),
        (  # a cut line: the column points at where the object breaks off
            '{"sentence1": "a", "sentence2": "b", "score": 1}\n{"sentence1": "c", "sentence2"\n',
            r"STS12/test\.jsonl line 2 is not valid JSON at column 31 .*fix: make that line one",
        ),
        ([{"sentence1": 3, "sentence2": "b", "score": 1.0}], r"field 'sentence1' is 3 \(int\)"),
    ],
)
def test_malformed_rows(tmp_path, rows, pattern):
    _write(tmp_path / "STS12" / "test.jsonl", rows)
    with pytest.raises(TaskDataError, match="STS12") as info:
        load_raw(get_task("STS12"), "default", "test", data_dir=tmp_path)
    assert "fix" in str(info.value)
    assert __import__("re").search(pattern, str(info.value)), str(info.value)


def test_pair_labels_must_be_binary(tmp_path):
    _write(
        tmp_path / "TwitterURLCorpus" / "test.jsonl",
        [{"sentence1": "a", "sentence2": "b", "label": 2}],
    )
    with pytest.raises(
        TaskDataError, match=r"TwitterURLCorpus: split 'test' row 0: field 'labels' is 2.*0 or 1"
    ):
        load_raw(get_task("TwitterURLCorpus"), "default", "test", data_dir=tmp_path)


def test_empty_corpus(tmp_path):
    _beir(tmp_path, "", GOOD_QUERIES, ["q1\td1\t1\n"])
    with pytest.raises(TaskDataError, match=r"SciFact: the corpus \(test\) is empty; fix"):
        load_raw(get_task("SciFact"), "default", "test", data_dir=tmp_path)


def test_none_document_text(tmp_path):
    _beir(tmp_path, [{"_id": "d1", "title": "", "text": None}], GOOD_QUERIES, ["q1\td1\t1\n"])
    with pytest.raises(
        TaskDataError, match=r"SciFact: corpus \(test\) row 0: field 'text' is None"
    ):
        load_raw(get_task("SciFact"), "default", "test", data_dir=tmp_path)


def test_bad_qrels_line_and_header(tmp_path):
    _beir(tmp_path, GOOD_CORPUS, GOOD_QUERIES, ["q1\td1\n"])
    with pytest.raises(TaskDataError, match=r"test.tsv line 2: expected 3 tab-separated fields"):
        load_raw(get_task("SciFact"), "default", "test", data_dir=tmp_path)
    _write(tmp_path / "SciFact" / "qrels" / "test.tsv", "q1\td1\t1\n")
    with pytest.raises(TaskDataError, match=r"header is .*fix"):
        load_raw(get_task("SciFact"), "default", "test", data_dir=tmp_path)


def test_qrels_without_matching_queries(tmp_path):
    _beir(tmp_path, GOOD_CORPUS, GOOD_QUERIES, ["q9\td1\t1\n"])
    with pytest.raises(TaskDataError, match=r"no query of split 'test' has qrels"):
        load_raw(get_task("SciFact"), "default", "test", data_dir=tmp_path)


def test_qrels_naming_unknown_documents_warn_and_are_kept(tmp_path):
    # mteb does not check; pytrec_eval counts such documents as relevant-but-unretrieved.
    _beir(tmp_path, GOOD_CORPUS, GOOD_QUERIES, ["q1\td1\t1\n", "q1\tghost\t1\n"])
    with pytest.warns(
        UserWarning, match=r"SciFact: 1 qrels document id\(s\) are not in the corpus"
    ):
        raw = load_raw(get_task("SciFact"), "default", "test", data_dir=tmp_path)
    assert list(raw["qrels"]["corpus-id"]) == ["d1", "ghost"]


def test_missing_qrels_split(tmp_path):
    _beir(tmp_path, GOOD_CORPUS, GOOD_QUERIES, ["q1\td1\t1\n"])
    _write(tmp_path / "SciFact" / "qrels" / "dev.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    with pytest.raises(TaskDataError, match=r"qrels for split 'validation' not found.*fix"):
        load_raw(get_task("SciFact"), "default", "validation", data_dir=tmp_path)


def test_old_format_reranking_rows(tmp_path):
    folder = tmp_path / "derived" / "SciFactReranking"
    _write(folder / "test.jsonl", [{"query": "q", "positive": "not a list", "negative": []}])
    with pytest.raises(
        TaskDataError, match=r"SciFactReranking: .* field 'positive' missing or not list"
    ):
        load_raw(get_task("SciFactReranking"), "default", "test", data_dir=tmp_path)
    # Rows without positives or negatives are dropped and ids count the kept rows (as mteb).
    _write(
        folder / "test.jsonl",
        [
            {"query": "q0", "positive": [], "negative": ["n"]},
            {"query": "q1", "positive": ["p"], "negative": ["n1", "n2"]},
        ],
    )
    raw = load_raw(get_task("SciFactReranking"), "default", "test", data_dir=tmp_path)
    assert list(raw["queries"]["id"]) == ["test_query0"] and list(raw["queries"]["text"]) == ["q1"]
    assert list(raw["corpus"]["id"]) == [
        "apositive_test_query0_00000",
        "negative_test_query0_00000",
        "negative_test_query0_00001",
    ]
    assert list(raw["qrels"]["score"]) == [1, 0, 0]


def test_clustering_set_length_mismatch(tmp_path):
    _write(
        tmp_path / "SIB200ClusteringS2S" / "test.jsonl",
        [{"sentences": ["a", "b"], "labels": ["x"]}],
    )
    with pytest.raises(
        TaskDataError, match=r"SIB200ClusteringS2S: 'sentences' and 'labels' lists differ"
    ):
        load_raw(get_task("SIB200ClusteringS2S"), "eng_Latn", "test", data_dir=tmp_path)


def test_null_inside_a_list_is_found(tmp_path):
    folder = tmp_path / "MasakhaNEWSClusteringS2S"
    _write(folder / "test.jsonl", [{"sentences": ["a", None, "c"], "labels": ["x", "y", "x"]}])
    with pytest.raises(
        TaskDataError, match=r"MasakhaNEWSClusteringS2S: split 'test' row 0: field 'sentences'"
    ):
        load_raw(get_task("MasakhaNEWSClusteringS2S"), "eng", "test", data_dir=tmp_path)
    summ = tmp_path / "SummEval"
    row = {"text": "t", "human_summaries": ["h"], "machine_summaries": ["m"], "relevance": [None]}
    _write(summ / "test.jsonl", [row])
    with pytest.raises(TaskDataError, match=r"field 'relevance' is \[None\].*list of numbers"):
        load_raw(get_task("SummEvalSummarization.v2"), "default", "test", data_dir=tmp_path)
