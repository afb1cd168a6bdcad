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
    retrieval,
    sts,
    summarization,
)
from fastmteb.tasks._common import TaskTypeError
from fastmteb.tasks.base import TaskMetadata, TextRequest

__all__ = ["TaskType", "TaskTypeError", "UnknownTaskTypeError", "get_task_type", "TASK_TYPE_OBJECTS"]


class TaskType(Protocol):
    """What every task type provides (see the module docstring)."""

    name: str

    def prepare(self, meta: TaskMetadata, raw: Mapping[str, Any], split: str, subset: str) -> Any: ...

    def requests(self, prepared: Any) -> dict[str, TextRequest]: ...

    def score(self, meta: TaskMetadata, prepared: Any, embeddings: Mapping[str, Any]) -> dict: ...


class UnknownTaskTypeError(ValueError):
    """A type name fastmteb does not implement."""


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
}


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
