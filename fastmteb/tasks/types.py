"""The task types: one object per mteb task type, each with ``prepare``, ``requests`` and ``score``.

    tt = get_task_type(meta.type)
    prepared = tt.prepare(meta, raw, split, subset)   # model-independent: texts, samples, qrels arrays
    texts = tt.requests(prepared)                      # {name: TextRequest}
    scores = tt.score(meta, prepared, {name: float32 [len(texts[name].texts), dim]})

``scores`` is exactly mteb 2.26's per-subset score dict (same keys, order and rounding), without
``main_score``, ``hf_subset`` and ``languages``. ``prepare`` is deterministic and ``score`` does not
change ``prepared``, so scoring again (e.g. from a training callback) gives the same dict.

Type-specific settings come from ``meta.params`` with mteb's attribute names (defaults = mteb's
class defaults); each module's docstring lists the ones it reads.
"""

from __future__ import annotations

import difflib
from typing import Any, Mapping, Protocol

from fastmteb.tasks import (
    bitext_mining,
    classification,
    clustering,
    pair_classification,
    regression,
    retrieval,
    sts,
    summarization,
)
from fastmteb.tasks._common import TaskTypeError
from fastmteb.tasks._mteb_task import mteb_bases
from fastmteb.tasks.base import TaskMetadata, TextRequest

__all__ = [
    "TASK_TYPES",
    "TaskType",
    "TaskTypeError",
    "UnknownTaskTypeError",
    "get_task_type",
    "mteb_task_type",
    "type_of_mteb_class",
    "TASK_TYPE_OBJECTS",
]


class TaskType(Protocol):
    """What every task type provides (see the module docstring)."""

    name: str

    def prepare(self, meta: TaskMetadata, raw: Mapping[str, Any], split: str, subset: str) -> Any: ...

    def requests(self, prepared: Any) -> dict[str, TextRequest]: ...

    def score(self, meta: TaskMetadata, prepared: Any, embeddings: Mapping[str, Any]) -> dict: ...

    # The type's data contract (``fastmteb.tasks._common.RowType`` for the row types): the loader
    # and the runner read these instead of branching on the type name.
    # queries/corpus/qrels data; corpus-sharded search: scored on every rank, and its score()
    # takes ``communicator=`` (the run's ``fastmteb.distributed`` context)
    retrieval: bool
    # Row types only: ``schema(meta, subset)`` column -> kind, ``normalise(meta, splits)`` to
    # canonical names, ``finalise_split(meta, rows)``, ``required_splits(meta)``.

    # What the type reads from mteb's task objects (``fastmteb.tasks._mteb_task.MtebTaskReader``,
    # asked by ``mteb_adapter``): the mteb abstract classes it scores, the sklearn model of a type
    # routed by class, the columns a task may rename, and the type parameters.
    mteb_abstasks: tuple[str, ...]
    mteb_model: tuple[str, Mapping[str, Any]] | None

    def mteb_params(self, task: Any) -> dict[str, Any]: ...

    def mteb_renamed_columns(self, task: Any) -> dict[str, str]: ...

    def mteb_unsupported_reason(self, task: Any) -> str | None: ...


class UnknownTaskTypeError(ValueError):
    """A type name fastmteb does not implement."""


# The registration: one entry per mteb type name fastmteb scores (``TaskMetadata.type``).
TASK_TYPE_OBJECTS: dict[str, TaskType] = {
    "Retrieval": retrieval.Retrieval("Retrieval"),
    "Reranking": retrieval.Retrieval("Reranking"),
    "InstructionRetrieval": retrieval.Retrieval("InstructionRetrieval"),
    "InstructionReranking": retrieval.Retrieval("InstructionReranking"),
    "Any2AnyRetrieval": retrieval.Retrieval("Any2AnyRetrieval"),  # text-only ones (mteb_adapter)
    "Classification": classification.Classification(),
    "MultilabelClassification": classification.MultilabelClassification(),
    "Clustering": clustering.Clustering(),
    "PairClassification": pair_classification.PairClassification(),
    "STS": sts.STS(),
    "Summarization": summarization.Summarization(),
    "BitextMining": bitext_mining.BitextMining(),
    "Regression": regression.Regression(),
}
TASK_TYPES: tuple[str, ...] = tuple(TASK_TYPE_OBJECTS)  # the type names, in registration order


def get_task_type(type_name: str) -> TaskType:
    """The task-type object for ``type_name`` (mteb's ``TaskMetadata.type``, e.g. ``"STS"``)."""
    try:
        return TASK_TYPE_OBJECTS[type_name]
    except KeyError:
        close = difflib.get_close_matches(type_name, list(TASK_TYPE_OBJECTS), n=3)
        hint = f"; did you mean {close}?" if close else ""
        raise UnknownTaskTypeError(
            f"unknown task type {type_name!r}{hint} Known types: {sorted(TASK_TYPE_OBJECTS)}"
        ) from None


def type_of_mteb_class(task: Any) -> TaskType | None:
    """The type object for the mteb task object ``task``'s class: the one whose ``mteb_abstasks``
    holds the most derived of mteb's abstract classes in its MRO (``AbsTaskRegression`` before the
    ``AbsTaskClassification`` it subclasses), or None. mteb is not imported here."""
    for base in mteb_bases(task):
        for task_type in TASK_TYPE_OBJECTS.values():
            if base in task_type.mteb_abstasks:
                return task_type
    return None


def mteb_task_type(task: Any) -> str | None:
    """The fastmteb type that scores the mteb task object ``task`` as mteb does, or None (then fall
    back to mteb's evaluator).

    mteb picks the evaluation by the task's *class*, not by ``metadata.type``: e.g.
    ``RuToxicOKMLCUPMultilabelClassification`` is declared ``type="Classification"`` but is an
    ``AbsTaskMultilabelClassification`` (k-NN, lrap/f1/hamming), and ``AbsTaskRegression``
    subclasses ``AbsTaskClassification``. A task of a type with an ``mteb_model`` (the
    classification family) is routed by class, and only when it is text-only and keeps the sklearn
    model fastmteb's type fits (mteb's audio multilabel tasks use
    ``MultiOutputClassifier(LogisticRegression())``: None). Any other task: its ``metadata.type``
    when fastmteb implements it, else None. mteb is not imported here.
    """
    text_only = list(getattr(task.metadata, "modalities", ["text"])) == ["text"]
    by_class = type_of_mteb_class(task)
    if by_class is not None and by_class.mteb_model is not None:
        model_name, model_params = by_class.mteb_model
        model = getattr(task, "evaluator_model", None)
        if not text_only or type(model).__name__ != model_name:
            return None
        defaults = type(model)().get_params()
        wanted = {**defaults, **model_params}
        have = model.get_params()
        # mteb's evaluate() sets random_state=42 on the shared class-level model, so ignore it
        if any(have.get(k) != v for k, v in wanted.items() if k != "random_state"):
            return None
        return by_class.name
    return task.metadata.type if task.metadata.type in TASK_TYPE_OBJECTS and text_only else None
