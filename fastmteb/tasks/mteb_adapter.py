"""fastmteb's task description built from mteb's own task objects (the source of truth).

    meta = metadata_from_task(mteb.get_task("SciFact"))        # or a benchmark's narrowed task

What a task *is* (name, type, dataset path and revision, splits, subsets, languages, main score,
prompts) comes from ``task.metadata``; the type parameters (``samples_per_label``, ``k_values``,
``ignore_identical_ids``, ``min_score``/``max_score``, the clustering limits, ``input1/2_prompt_type``,
``abstask_prompt``, ...) from the task's class attributes, with mteb's names: the type object
that scores the task's class reads them (``mteb_params``, ``mteb_renamed_columns``, see
``fastmteb.tasks._mteb_task.MtebTaskReader``), so no type is named here. The evaluated splits
and subsets are the *object's* (``task.eval_splits``, ``task.hf_subsets``), so a task taken from a
``mteb.Benchmark`` or narrowed with ``filter_languages`` / ``filter_eval_splits`` keeps that
narrowing.

fastmteb adds only what mteb lacks: which of its own re-implemented dataset transforms a task
uses (``FASTMTEB_TRANSFORMS``: those tasks load without mteb, fastest), local-folder quirks
(``LOCAL_OVERRIDES``), and whether the hub data must come from the task's own ``load_data()``
(``TaskMetadata.mteb_loader``: a custom loader, a ``dataset_transform`` fastmteb does not
re-implement, or extra ``load_dataset`` arguments).

Nothing here imports mteb: mteb's classes are recognised by name in the task's MRO.
"""

from __future__ import annotations

from typing import Any

from fastmteb.tasks._mteb_task import has_mteb_base, own_definition
from fastmteb.tasks.base import TaskMetadata
from fastmteb.tasks.types import TASK_TYPE_OBJECTS, mteb_task_type, type_of_mteb_class

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
    # a task-specific metric fastmteb does not compute (the type's ``mteb_unsupported_reason``)
    "main score ",
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


def unsupported_reason(task: Any) -> str | None:
    """Why fastmteb cannot run ``task`` (None when it can)."""
    m = task.metadata
    if has_mteb_base(task, "AbsTaskAggregate"):
        return (
            f"{AGGREGATE_REASON} (its score is the mean of other tasks' results: fastmteb.evaluate "
            "runs its parts and combines them; elsewhere run the parts)"
        )
    if m.type not in TASK_TYPE_OBJECTS:
        return f"task type {m.type!r} is not scored by fastmteb yet"
    if list(m.modalities) != ["text"]:
        return f"modalities {list(m.modalities)}: fastmteb encodes text only"
    if own_definition(task, "_evaluate_subset") is not None or own_definition(task, "evaluate") is not None:
        return (
            f"{EVALUATION_ONLY_REASONS[0]} (_evaluate_subset): fastmteb.evaluate "
            "scores it with mteb's evaluator and fastmteb's embeddings"
        )
    task_type = type_of_mteb_class(task)
    return None if task_type is None else task_type.mteb_unsupported_reason(task)


def evaluate_runs_beside(reason: str | None) -> bool:
    """True when ``fastmteb.evaluate`` runs a task that ``unsupported_reason`` rejected with
    ``reason`` anyway, beside the task types (an aggregate, or an evaluation-only reason)."""
    return reason is not None and reason.startswith((AGGREGATE_REASON, *EVALUATION_ONLY_REASONS))


def _type_params(task: Any) -> dict[str, Any]:
    """The type parameters fastmteb's scorers read, with mteb's attribute names and values: those
    of the type that scores the task's class, then the ones every task has."""
    task_type = type_of_mteb_class(task)
    p: dict[str, Any] = {}
    if task_type is not None:
        p.update(task_type.mteb_params(task))
        columns = task_type.mteb_renamed_columns(task)
        if columns:
            p["columns"] = columns
    if getattr(task, "fast_loading", False):
        p["fast_loading"] = True
    p["abstask_prompt"] = getattr(task, "abstask_prompt", None)
    return p


def needs_mteb_loader(task: Any) -> bool:
    """True when the hub data must come from the task's own ``load_data()``."""
    name = task.metadata.name
    if set(task.metadata.dataset) - {"path", "revision"}:
        return True  # extra load_dataset arguments (config name, split, trust_remote_code)
    if name in FASTMTEB_TRANSFORMS:
        return False
    return any(own_definition(task, method) is not None for method in _LOADING_METHODS)


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
