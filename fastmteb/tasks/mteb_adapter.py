"""fastmteb's task description built from mteb's own task objects (the source of truth).

    meta = metadata_from_task(mteb.get_task("SciFact"))        # or a benchmark's narrowed task

What a task *is* (name, type, dataset path and revision, splits, subsets, languages, main score,
prompts) comes from ``task.metadata``; the type parameters (``samples_per_label``, ``k_values``,
``ignore_identical_ids``, ``min_score``/``max_score``, the clustering limits, ``input1/2_prompt_type``,
``abstask_prompt``, ...) from the task's class attributes, with mteb's names. The evaluated splits
and subsets are the *object's* (``task.eval_splits``, ``task.hf_subsets``), so a task taken from a
``mteb.Benchmark`` or narrowed with ``filter_languages`` / ``filter_eval_splits`` keeps that
narrowing.

fastmteb adds only what mteb lacks: which of its own re-implemented dataset transforms a task
uses (``FASTMTEB_TRANSFORMS``: those tasks load without mteb, fastest), local-folder quirks
(``LOCAL_OVERRIDES``), and whether the hub data must come from the task's own ``load_data()``
(``TaskMetadata.mteb_loader``: a custom loader, a ``dataset_transform`` fastmteb does not
re-implement, or extra ``load_dataset`` arguments).

Importing this module does not import mteb; the functions that need it import it when called.
"""

from __future__ import annotations

import inspect
from functools import lru_cache
from typing import Any

from fastmteb.tasks.base import TASK_TYPES, TaskMetadata

__all__ = [
    "AGGREGATE_REASON",
    "EVALUATION_ONLY_REASONS",
    "FASTMTEB_TRANSFORMS",
    "LOCAL_OVERRIDES",
    "UnsupportedTaskError",
    "evaluate_runs_beside",
    "metadata_from_task",
    "unsupported_reason",
]

# The starts of ``unsupported_reason`` texts for tasks fastmteb.evaluate still runs, beside the
# task types (fastmteb.run_extras): an aggregate (its parts run, then mteb combines them), and
# reasons that concern only the evaluation (the task loads and encodes text like any other, so
# mteb's evaluator fed with fastmteb's vectors scores it exactly: fastmteb.fallback).
AGGREGATE_REASON = "aggregate task"
EVALUATION_ONLY_REASONS = (
    "the task replaces mteb's evaluation with its own",
    "main score ",  # a task-specific metric fastmteb does not compute
)

# Tasks whose ``dataset_transform`` fastmteb re-implements (fastmteb.data.transforms.TRANSFORMS).
FASTMTEB_TRANSFORMS: dict[str, str] = {
    "ArXivHierarchicalClusteringP2P": "arxiv_hierarchical",
    "ArXivHierarchicalClusteringS2S": "arxiv_hierarchical",
    "BiorxivClusteringP2P.v2": "check_label_distribution",
    "MedrxivClusteringP2P.v2": "flatten_clusters",
    "MedrxivClusteringS2S.v2": "flatten_clusters",
    "TwentyNewsgroupsClustering.v2": "flatten_clusters",
    "StackExchangeClustering.v2": "flatten_stratified_subsample",
    "StackExchangeClusteringP2P.v2": "flatten_drop_singletons",
    "ToxicConversationsClassification": "stratified_subsample_test",
    "SprintDuplicateQuestions": "rename_sent_columns",
    "TwitterSemEval2015": "rename_sent_columns",
    "TwitterURLCorpus": "rename_sent_columns",
    "SIB200Classification": "sib200_classification",
    "SIB200ClusteringS2S": "sib200_clustering",
}

# Local-folder quirks of ../shared/data (MANIFEST.md): a folder named otherwise than the task, and
# folders that keep their one subset's files flat beside the subset subfolders.
LOCAL_OVERRIDES: dict[str, dict[str, Any]] = {
    "SummEvalSummarization.v2": {"local_dir": "SummEval"},
    "SIB200Classification": {"params": {"local_root_subset": "eng_Latn"}},
    "SIB200ClusteringS2S": {"params": {"local_root_subset": "eng_Latn"}},
    "MasakhaNEWSClusteringS2S": {"params": {"local_root_subset": "eng"}},
    "MasakhaNEWSClusteringP2P": {"params": {"local_root_subset": "eng"}},
}

# mteb's canonical column names per type; a task whose class names others gets them renamed.
_COLUMN_ATTRS: dict[str, dict[str, tuple[str, str]]] = {
    # type: {canonical column: (class attribute, mteb default)}
    "Classification": {
        "text": ("input_column_name", "text"),
        "label": ("label_column_name", "label"),
    },
    "MultilabelClassification": {
        "text": ("input_column_name", "text"),
        "label": ("label_column_name", "label"),
    },
    "Clustering": {
        "sentences": ("input_column_name", "sentences"),
        "labels": ("label_column_name", "labels"),
    },
    "PairClassification": {
        "sentence1": ("input1_column_name", "sentence1"),
        "sentence2": ("input2_column_name", "sentence2"),
        "labels": ("label_column_name", "labels"),
    },
    "Summarization": {
        "text": ("text_column_name", "text"),
        "human_summaries": ("human_summaries_column_name", "human_summaries"),
        "machine_summaries": ("machine_summaries_column_name", "machine_summaries"),
        "relevance": ("relevancy_column_name", "relevance"),
    },
}

# Methods of a task's own class (not mteb's abstract bases) that change how its data loads.
_LOADING_METHODS = (
    "load_data",
    "dataset_transform",
    "fast_load",
    "_load_corpus",
    "_load_qrels",
    "_load_queries",
)


class UnsupportedTaskError(ValueError):
    """An mteb task fastmteb cannot run (the message says why)."""


def _task_classes(task: Any) -> list[type]:
    """The task's own classes in its MRO, before mteb's abstract task classes."""
    return [
        c
        for c in type(task).__mro__
        if c is not object
        and not c.__module__.startswith("mteb.abstasks")
        and c.__module__ != "abc"
    ]


def _overrides(task: Any, name: str) -> Any:
    """The task's own definition of ``name`` (None when only mteb's base classes define it)."""
    for cls in _task_classes(task):
        if name in cls.__dict__:
            return cls.__dict__[name]
    return None


def _source_contains(func: Any, text: str) -> bool:
    try:
        return text in inspect.getsource(func)
    except (OSError, TypeError):
        return False


@lru_cache(maxsize=1)
def _bases() -> dict[str, type]:
    from mteb.abstasks.aggregated_task import AbsTaskAggregate
    from mteb.abstasks.classification import AbsTaskClassification
    from mteb.abstasks.clustering import AbsTaskClustering
    from mteb.abstasks.clustering_legacy import AbsTaskClusteringLegacy
    from mteb.abstasks.multilabel_classification import AbsTaskMultilabelClassification
    from mteb.abstasks.pair_classification import AbsTaskPairClassification
    from mteb.abstasks.regression import AbsTaskRegression
    from mteb.abstasks.retrieval import AbsTaskRetrieval
    from mteb.abstasks.sts import AbsTaskSTS
    from mteb.abstasks.text.bitext_mining import AbsTaskBitextMining
    from mteb.abstasks.text.summarization import AbsTaskSummarization

    return {
        "aggregate": AbsTaskAggregate,
        "retrieval": AbsTaskRetrieval,
        "multilabel": AbsTaskMultilabelClassification,
        "regression": AbsTaskRegression,
        "classification": AbsTaskClassification,
        "clustering": AbsTaskClustering,
        "clustering_legacy": AbsTaskClusteringLegacy,
        "pair": AbsTaskPairClassification,
        "sts": AbsTaskSTS,
        "bitext": AbsTaskBitextMining,
        "summarization": AbsTaskSummarization,
    }


def _is(task: Any, base: str) -> bool:
    """``isinstance(task, <mteb base class>)`` by the MRO: ABC instance checks over mteb's ~1,500
    task classes take seconds, this takes microseconds."""
    return _bases()[base] in type(task).__mro__


def unsupported_reason(task: Any) -> str | None:
    """Why fastmteb cannot run ``task`` (None when it can)."""
    m = task.metadata
    if _is(task, "aggregate"):
        return (
            f"{AGGREGATE_REASON} (its score is the mean of other tasks' results: fastmteb.evaluate "
            "runs its parts and combines them; elsewhere run the parts)"
        )
    if m.type not in TASK_TYPES:
        return f"task type {m.type!r} is not scored by fastmteb yet"
    if list(m.modalities) != ["text"]:
        return f"modalities {list(m.modalities)}: fastmteb encodes text only"
    if _overrides(task, "_evaluate_subset") is not None or _overrides(task, "evaluate") is not None:
        return (
            f"{EVALUATION_ONLY_REASONS[0]} (_evaluate_subset): fastmteb.evaluate "
            "scores it with mteb's evaluator and fastmteb's embeddings"
        )
    if _is(task, "retrieval") and m.main_score not in _retrieval_keys(task):
        metric = f"{m.main_score!r} is a task-specific metric fastmteb does not compute"
        return f"{EVALUATION_ONLY_REASONS[1]}{metric}"
    return None


def evaluate_runs_beside(reason: str | None) -> bool:
    """True when ``fastmteb.evaluate`` runs a task that ``unsupported_reason`` rejected with
    ``reason`` anyway, beside the task types (an aggregate, or an evaluation-only reason)."""
    return reason is not None and reason.startswith((AGGREGATE_REASON, *EVALUATION_ONLY_REASONS))


def _retrieval_keys(task: Any) -> set[str]:
    """The score keys fastmteb's retrieval scorer can give this task."""
    keys = {
        f"{family}_at_{k}"
        for family in ("ndcg", "map", "recall", "precision", "mrr", "hit_rate")
        for k in task.k_values
    }
    keys |= {f"max_over_subqueries_{key}" for key in keys} | {"accuracy"}
    kind = _task_scores_kind(_overrides(task, "task_specific_scores"))
    keys |= {key for _, k, key in _TASK_SCORE_MARKERS if k == kind}
    return keys


_TASK_SCORE_MARKERS = (
    # (text in the task's task_specific_scores source, fastmteb's scorer, the score key it adds)
    ("evaluate_p_mrr_change", "p_mrr", "p-MRR"),
    ("robustness_at_10", "robustness_at_10", "robustness_at_10"),
    ("paired_accuracy", "paired_accuracy", "paired_accuracy"),
)


def _task_scores_kind(extra: Any) -> str | None:
    if extra is not None:
        for marker, kind, _ in _TASK_SCORE_MARKERS:
            if _source_contains(extra, marker):
                return kind
    return None


def _type_params(task: Any) -> dict[str, Any]:
    """The type parameters fastmteb's scorers read, with mteb's attribute names and values."""
    m = task.metadata
    p: dict[str, Any] = {}
    if _is(task, "retrieval"):
        p.update(
            ignore_identical_ids=task.ignore_identical_ids,
            k_values=tuple(task.k_values),
            skip_first_result=task.skip_first_result,
        )
        if m.main_score.startswith("max_over_subqueries"):
            p["max_over_subqueries"] = True
        extra = _overrides(task, "task_specific_scores")
        kind = _task_scores_kind(extra)
        if kind is not None:
            p["task_specific_scores"] = kind
        elif extra is not None and not p.get("max_over_subqueries"):
            # metrics of this task's own (e.g. capped recall, level scores): its own hook is
            # called with fastmteb's results (fastmteb.tasks.task_scores_bridge)
            p["task_specific_scores"] = "mteb_hook"
    elif _is(task, "classification"):  # multilabel and regression (a subclass) included
        # the sampler's size: rows per label, or rows in all for a regression
        if _is(task, "regression"):
            p["n_samples"] = task.n_samples
        else:
            p["samples_per_label"] = task.samples_per_label
        p.update(
            n_experiments=task.n_experiments,
            train_split=task.train_split,
            is_cross_validation=task.is_cross_validation,
        )
        if task.is_cross_validation:
            p["n_splits"] = task.n_splits
        if _is(task, "multilabel") and task.max_eval_samples != 3000:
            p["max_eval_samples"] = task.max_eval_samples
    elif _is(task, "clustering"):
        fraction = task.max_fraction_of_documents_to_embed
        transform = _overrides(task, "dataset_transform")
        if transform is not None and _source_contains(
            transform, "max_fraction_of_documents_to_embed = None"
        ):
            fraction = None  # the transform resets it after loading
        p.update(
            clustering="fast",
            max_fraction_of_documents_to_embed=fraction,
            max_document_to_embed=task.max_document_to_embed,
            max_documents_per_cluster=task.max_documents_per_cluster,
            n_clusters=task.n_clusters,
            k_mean_batch_size=task.k_mean_batch_size,
            max_depth=task.max_depth,
        )
    elif _is(task, "clustering_legacy"):
        p["clustering"] = "legacy"
    elif _is(task, "pair"):
        p.update(
            input1_prompt_type=_plain(task.input1_prompt_type),
            input2_prompt_type=_plain(task.input2_prompt_type),
        )
    elif _is(task, "sts") or _is(task, "summarization"):
        p.update(min_score=task.min_score, max_score=task.max_score)
        if _is(task, "sts"):
            for attr in ("input1_prompt_type", "input2_prompt_type"):
                if getattr(task, attr, None) is not None:
                    p[attr] = _plain(getattr(task, attr))
    elif _is(task, "bitext"):
        p["parallel_subsets"] = task.parallel_subsets
    columns = _renamed_columns(task, m.type)
    if columns:
        p["columns"] = columns
    if getattr(task, "fast_loading", False):
        p["fast_loading"] = True
    p["abstask_prompt"] = getattr(task, "abstask_prompt", None)
    return p


def _plain(value: Any) -> Any:
    """mteb's ``PromptType.query`` -> "query" (fastmteb's prompt types are plain strings)."""
    return getattr(value, "value", value)


def _renamed_columns(task: Any, type_name: str) -> dict[str, str]:
    """{canonical column: the task's column} where the task's class names another column."""
    out: dict[str, str] = {}
    attrs = dict(_COLUMN_ATTRS.get(type_name, {}))
    if type_name in ("STS", "BitextMining"):
        names = getattr(task, "column_names", None)
        if names is None and type_name == "BitextMining":
            names = ("sentence1", "sentence2")
        if isinstance(names, (tuple, list)) and len(names) == 2:
            for canonical, actual in zip(("sentence1", "sentence2"), names, strict=True):
                if isinstance(actual, str) and actual != canonical:
                    out[canonical] = actual
        if type_name == "STS":
            attrs = {}
    for canonical, (attr, default) in attrs.items():
        actual = getattr(task, attr, default)
        if isinstance(actual, str) and actual != default:
            out[canonical] = actual
    return out


def needs_mteb_loader(task: Any) -> bool:
    """True when the hub data must come from the task's own ``load_data()``."""
    name = task.metadata.name
    if set(task.metadata.dataset) - {"path", "revision"}:
        return True  # extra load_dataset arguments (config name, split, trust_remote_code)
    if name in FASTMTEB_TRANSFORMS:
        return False
    return any(_overrides(task, method) is not None for method in _LOADING_METHODS)


def metadata_from_task(task: Any) -> TaskMetadata:
    """fastmteb's ``TaskMetadata`` for an mteb task object (narrowed splits/subsets kept)."""
    reason = unsupported_reason(task)
    if reason is not None:
        raise UnsupportedTaskError(f"{task.metadata.name}: {reason}")
    m = task.metadata
    hf_subsets = tuple(task.hf_subsets)
    langs = m.eval_langs if isinstance(m.eval_langs, dict) else {"default": m.eval_langs}
    languages = {s: tuple(langs[s]) for s in hf_subsets if s in langs}
    override = LOCAL_OVERRIDES.get(m.name, {})
    params = {**_type_params(task), **override.get("params", {})}
    from fastmteb.tasks.types import mteb_task_type

    return TaskMetadata(
        name=m.name,
        # by the task's class, as mteb chooses its evaluation (not always metadata.type)
        type=mteb_task_type(task) or m.type,
        hf_path=m.dataset["path"],
        hf_revision=m.dataset["revision"],
        main_score=m.main_score,
        eval_splits=tuple(task.eval_splits),
        hf_subsets=hf_subsets,
        languages=languages,
        multilingual=bool(m.is_multilingual),
        prompt=m.prompt,
        license=m.license,
        local_dir=override.get("local_dir", m.name),
        transform=FASTMTEB_TRANSFORMS.get(m.name),
        params=params,
        description=m.description or "",
        reference=m.reference,
        mteb_loader=needs_mteb_loader(task),
    )
