"""The registry: mteb's tasks and benchmarks read from mteb, plus fastmteb's own few.

(The field-by-field proof that the derived metadata equals the old hand-written table is
tests/tasks/test_mteb_adapter.py.)"""

from __future__ import annotations

import pytest

from fastmteb.tasks.types import TASK_TYPES
from fastmteb.tasks.registry import (
    BENCHMARKS,
    TASKS,
    UnknownTaskError,
    get_benchmark,
    get_task,
    get_tasks,
)


@pytest.fixture(scope="module")
def mteb():
    return pytest.importorskip("mteb")


def test_benchmark_matches_mteb(mteb):
    bench = mteb.get_benchmark("MTEB(eng, v2)")
    assert "MTEB(eng)" in bench.aliases
    ours = get_benchmark("MTEB(eng, v2)")
    assert [t.name for t in ours] == [t.metadata.name for t in bench.tasks]
    for meta, task in zip(ours, bench.tasks, strict=True):
        assert meta.eval_splits == tuple(task.eval_splits), meta.name
        assert meta.hf_subsets == tuple(task.hf_subsets), meta.name
    assert [t.name for t in get_benchmark("MTEB(eng)")] == [t.name for t in ours]


def test_benchmark_shape():
    eng = get_benchmark("MTEB(eng, v2)")
    assert len(eng) == 41 and list(BENCHMARKS) == ["fastmteb-mini"]
    counts = {}
    for meta in eng:
        counts[meta.type] = counts.get(meta.type, 0) + 1
        assert meta.eval_splits == ("test",)
        assert set(meta.languages) == set(meta.hf_subsets)
    assert counts == {
        "Retrieval": 10,
        "Reranking": 2,
        "Classification": 8,
        "Clustering": 8,
        "PairClassification": 3,
        "STS": 9,
        "Summarization": 1,
    }
    amazon = next(m for m in eng if m.name == "AmazonCounterfactualClassification")
    assert amazon.hf_subsets == ("en",) and TASKS[amazon.name].hf_subsets != ("en",)


def test_quirks_recorded():
    assert get_task("ToxicConversationsClassification").params["samples_per_label"] == 16
    assert (
        get_task("StackExchangeClustering.v2").params["max_fraction_of_documents_to_embed"] is None
    )
    assert get_task("STS22.v2").params["min_score"] == 1
    assert get_task("MindSmallReranking").params["max_over_subqueries"] is True
    for name in ("ArguAna", "FEVERHardNegatives", "FiQA2018"):
        assert get_task(name).params["ignore_identical_ids"] is True
    assert get_task("SIB200ClusteringS2S").params["max_document_to_embed"] == 1004
    assert get_task("MasakhaNEWSClusteringS2S").params["clustering"] == "legacy"
    reranking = get_task("SciFactReranking")
    assert reranking.type == "Reranking" and reranking.main_score == "map_at_1000"


def test_unknown_names_raise_with_suggestions():
    with pytest.raises(UnknownTaskError, match="SciFact"):
        get_task("scifact")
    with pytest.raises(UnknownTaskError, match="Banking77Classification"):
        get_task("Banking77Clasification")
    with pytest.raises(UnknownTaskError, match="benchmark"):
        get_benchmark("MTEB(xyz)")
    with pytest.raises(UnknownTaskError, match="FSD50K"):  # audio: fastmteb encodes text only
        get_task("FSD50K")
    with pytest.raises(ValueError, match="unknown task type"):
        get_tasks(types=["Retreival"])


def test_get_tasks_filters_and_keeps_order():
    assert [m.name for m in get_tasks(["STS12", "SciFact"])] == ["STS12", "SciFact"]
    sts = get_tasks(types=["STS"])
    assert sts and all(m.type == "STS" for m in sts)
    assert {m.type for m in get_tasks()} <= set(TASK_TYPES)
    assert len(get_tasks()) == len(TASKS)
    assert "SciFactReranking" in TASKS and TASKS.get("NotATask") is None


def test_objects_and_benchmark_objects(mteb):
    task = mteb.get_task("STS22.v2", hf_subsets=["de-en"])
    meta = get_task(task)
    assert meta.hf_subsets == ("de-en",) and get_task(meta) is meta
    bench = mteb.get_benchmark("NanoBEIR")
    assert [m.name for m in get_benchmark(bench)] == [t.metadata.name for t in bench.tasks]


def test_evaluate_accepts_mteb_objects(mteb):
    from fastmteb.runner import resolve_tasks

    assert [m.name for m in resolve_tasks(mteb.get_tasks(tasks=["STS12", "SciFact"]))] == [
        "STS12",
        "SciFact",
    ]
    (sts17,) = resolve_tasks(mteb.get_task("STS17", hf_subsets=["en-en"]))
    assert sts17.hf_subsets == ("en-en",)
    nano = mteb.get_benchmark("NanoBEIR")
    assert len(resolve_tasks(nano)) == len(resolve_tasks(benchmark=nano)) == len(nano.tasks)
    mixed = resolve_tasks(["SciFactReranking", mteb.get_task("SICK-R")], benchmark="fastmteb-mini")
    assert [m.name for m in mixed][-1] == "Tatoeba"  # duplicates keep their first occurrence
