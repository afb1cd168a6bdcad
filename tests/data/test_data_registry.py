"""The static registry against mteb 2.26.24's own task metadata (the proof of the table)."""

from __future__ import annotations

import inspect

import pytest

from fastmteb.tasks.base import TASK_TYPES
from fastmteb.tasks.registry import (
    BENCHMARKS,
    TASKS,
    UnknownTaskError,
    get_benchmark,
    get_task,
    get_tasks,
)

# Keys only fastmteb uses (local layouts, derived data); mteb has no counterpart.
LOCAL_ONLY_PARAMS = {"local_root_subset", "old_format", "local_only"}
NOT_IN_MTEB = {"SciFactReranking"}
MTEB_TASKS = sorted(set(TASKS) - NOT_IN_MTEB)


@pytest.fixture(scope="module")
def mteb():
    return pytest.importorskip("mteb")


def _expected_params(task) -> dict:
    from mteb.abstasks.classification import AbsTaskClassification
    from mteb.abstasks.clustering import AbsTaskClustering
    from mteb.abstasks.clustering_legacy import AbsTaskClusteringLegacy
    from mteb.abstasks.pair_classification import AbsTaskPairClassification
    from mteb.abstasks.retrieval import AbsTaskRetrieval
    from mteb.abstasks.sts import AbsTaskSTS
    from mteb.abstasks.text.bitext_mining import AbsTaskBitextMining
    from mteb.abstasks.text.summarization import AbsTaskSummarization

    p: dict = {}
    if isinstance(task, AbsTaskRetrieval):
        p.update(
            ignore_identical_ids=task.ignore_identical_ids,
            k_values=tuple(task.k_values),
            skip_first_result=task.skip_first_result,
        )
        if task.metadata.main_score.startswith("max_over_subqueries"):
            p["max_over_subqueries"] = True
        extra = type(task).__dict__.get("task_specific_scores")
        if extra is not None and "evaluate_p_mrr_change" in inspect.getsource(extra):
            p["task_specific_scores"] = "p_mrr"
    elif isinstance(task, AbsTaskClassification):
        p.update(
            samples_per_label=task.samples_per_label,
            n_experiments=task.n_experiments,
            train_split=task.train_split,
            is_cross_validation=task.is_cross_validation,
        )
    elif isinstance(task, AbsTaskClustering):
        fraction = task.max_fraction_of_documents_to_embed
        transform = type(task).__dict__.get("dataset_transform")
        if (
            transform is not None
            and "max_fraction_of_documents_to_embed = None" in inspect.getsource(transform)
        ):
            fraction = None
        p.update(
            clustering="fast",
            max_fraction_of_documents_to_embed=fraction,
            max_document_to_embed=task.max_document_to_embed,
            max_documents_per_cluster=task.max_documents_per_cluster,
            n_clusters=task.n_clusters,
            k_mean_batch_size=task.k_mean_batch_size,
            max_depth=task.max_depth,
        )
    elif isinstance(task, AbsTaskClusteringLegacy):
        p["clustering"] = "legacy"
    elif isinstance(task, AbsTaskPairClassification):
        p.update(
            input1_prompt_type=task.input1_prompt_type, input2_prompt_type=task.input2_prompt_type
        )
    elif isinstance(task, (AbsTaskSTS, AbsTaskSummarization)):
        p.update(min_score=task.min_score, max_score=task.max_score)
    elif isinstance(task, AbsTaskBitextMining):
        p["parallel_subsets"] = task.parallel_subsets
    if getattr(task, "fast_loading", False):
        p["fast_loading"] = True
    p["abstask_prompt"] = getattr(task, "abstask_prompt", None)
    return p


@pytest.mark.parametrize("name", MTEB_TASKS)
def test_entry_matches_mteb_metadata(mteb, name):
    ours = TASKS[name]
    task = mteb.get_task(name)
    m = task.metadata
    langs = m.eval_langs if isinstance(m.eval_langs, dict) else {"default": m.eval_langs}
    assert ours.type == m.type
    assert ours.hf_path == m.dataset["path"]
    assert ours.hf_revision == m.dataset["revision"]
    assert set(m.dataset) <= {"path", "revision"}  # no `name`/`trust_remote_code` to carry
    assert ours.main_score == m.main_score
    assert ours.eval_splits == tuple(m.eval_splits)
    assert ours.hf_subsets == tuple(m.hf_subsets)
    assert dict(ours.languages) == {k: tuple(v) for k, v in langs.items()}
    assert ours.multilingual == m.is_multilingual
    assert ours.prompt == m.prompt
    assert ours.license == m.license
    assert ours.reference == m.reference
    params = {k: v for k, v in ours.params.items() if k not in LOCAL_ONLY_PARAMS}
    assert params == _expected_params(task)
    # A transform is named exactly when mteb's class overrides dataset_transform.
    overrides = "dataset_transform" in type(task).__dict__
    assert (ours.transform is not None) == overrides, (ours.transform, overrides)


def test_benchmark_matches_mteb(mteb):
    bench = mteb.get_benchmark("MTEB(eng, v2)")
    assert "MTEB(eng)" in bench.aliases
    ours = get_benchmark("MTEB(eng, v2)")
    assert [t.name for t in ours] == [t.metadata.name for t in bench.tasks]
    for meta, task in zip(ours, bench.tasks, strict=True):
        assert meta.eval_splits == tuple(task.eval_splits), meta.name
        assert meta.hf_subsets == tuple(task.hf_subsets), meta.name
    assert [t.name for t in get_benchmark("MTEB(eng)")] == [t.name for t in ours]


def test_benchmark_shape_without_mteb():
    eng = get_benchmark("MTEB(eng, v2)")
    assert len(eng) == 41 and len(BENCHMARKS["MTEB(eng, v2)"]) == 41
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
    with pytest.raises(ValueError, match="unknown task type"):
        get_tasks(types=["Retreival"])


def test_get_tasks_filters_and_keeps_order():
    assert [m.name for m in get_tasks(["STS12", "SciFact"])] == ["STS12", "SciFact"]
    sts = get_tasks(types=["STS"])
    assert sts and all(m.type == "STS" for m in sts)
    assert {m.type for m in get_tasks()} <= set(TASK_TYPES)
    assert len(get_tasks()) == len(TASKS)
