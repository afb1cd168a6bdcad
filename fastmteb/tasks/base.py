"""Task metadata and the contract every task-type module follows.

A task is metadata plus its type's functions (docs/architecture.md, "Task types"):

    prepare(meta, raw, split, subset) -> Prepared     # everything that does not depend on a model
    requests(prepared) -> dict[str, TextRequest]     # which texts must be embedded, with which prompt type
    score(meta, prepared, embeddings) -> dict         # embeddings[name] is float32 [len(texts), dim]

``raw`` is a ``RawData``: for the retrieval family the keys are "corpus", "queries", "qrels" and,
when present, "top_ranked" and "instruction" (each a ``datasets.Dataset`` for the evaluated split);
for every other type the keys are split names ("train", "validation", "test") with the canonical
columns of that type (see ``fastmteb.data``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

from fastmteb.prompt_type import PromptType


@dataclass(frozen=True)
class TaskMetadata:
    """Everything fastmteb needs to load and score one task, mirroring mteb's ``TaskMetadata``.

    ``params`` holds type-specific settings with mteb's names and defaults spelled out, e.g.
    ``samples_per_label``, ``n_experiments``, ``ignore_identical_ids``, ``min_score``/``max_score``,
    ``max_fraction_of_documents_to_embed``, ``clustering="fast"|"legacy"``, ``max_over_subqueries``.
    ``transform`` names a dataset transform in ``fastmteb.data.transforms`` (e.g. the stratified
    2048-row subsample of ToxicConversations).
    """

    name: str
    type: str  # mteb's type name, a key of fastmteb.tasks.types.TASK_TYPE_OBJECTS
    hf_path: str
    hf_revision: str
    main_score: str
    eval_splits: tuple[str, ...] = ("test",)
    hf_subsets: tuple[str, ...] = ("default",)
    languages: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    multilingual: bool = False  # load_dataset(..., name=subset) per subset when True
    prompt: str | Mapping[str, str] | None = None
    license: str | None = None
    local_dir: str | None = None  # folder name under a --data-dir (layout of ../shared/data)
    transform: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    reference: str | None = None
    # False for a fastmteb-only task that mteb's registry does not have (e.g. SciFactReranking):
    # its result file goes to <revision>/fastmteb-only/, where mteb's result readers do not look.
    mteb_task: bool = True
    # True when hub data must come from the mteb task's own ``load_data()`` (custom loader, a
    # dataset_transform fastmteb does not re-implement, extra load_dataset arguments).
    mteb_loader: bool = False

    def narrowed(self, eval_splits: Sequence[str], hf_subsets: Sequence[str]) -> TaskMetadata:
        """This task evaluated on ``eval_splits`` and ``hf_subsets`` only (their languages kept);
        ``self`` when nothing changes."""
        if tuple(eval_splits) == self.eval_splits and tuple(hf_subsets) == self.hf_subsets:
            return self
        return replace(
            self,
            eval_splits=tuple(eval_splits),
            hf_subsets=tuple(hf_subsets),
            languages={s: self.languages[s] for s in hf_subsets if s in self.languages},
        )


@dataclass(frozen=True)
class TextRequest:
    """Texts one task needs embedded, in the order its ``score`` expects them."""

    texts: list[str]
    prompt_type: PromptType | None = None
