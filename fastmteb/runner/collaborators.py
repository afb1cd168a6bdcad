"""The parts of fastmteb a run calls, in one object that ``evaluate`` / ``prepare_run`` take."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastmteb.encoding.base import Encoder
    from fastmteb.encoding.pool import TextPool
    from fastmteb.tasks.base import TaskMetadata

__all__ = ["Collaborators"]


@dataclass(frozen=True)
class Collaborators:
    """What a run asks of the task registry, the data loader and the encoding engine.

    ``Collaborators.default()`` is fastmteb's own; a caller (a test, an embedding service) may pass
    another, e.g. ``dataclasses.replace(Collaborators.default(), load_raw=my_loader)``. Each field
    has the signature of the function ``default()`` puts there.
    """

    # fastmteb.tasks.registry
    get_task: Callable[[Any], TaskMetadata]
    get_benchmark: Callable[[Any], list[TaskMetadata]]
    # fastmteb.tasks.types: the object with prepare / requests / score for a type name
    get_task_type: Callable[[str], Any]
    # fastmteb.data.loading: load_raw(meta, subset, split, *, data_dir) -> raw rows;
    # local_selection(meta, data_dir) -> meta narrowed to what the folder holds;
    # release_loader_data(): every task is prepared, drop what the loader kept for later subsets
    load_raw: Callable[..., Any]
    local_selection: Callable[[TaskMetadata, Any], TaskMetadata]
    release_loader_data: Callable[[], None]
    # fastmteb.encoding: load_encoder(model, **settings) -> Encoder;
    # make_pool(encoder, *, cache_dir, progress, fingerprint, communicator, **spill) -> TextPool
    load_encoder: Callable[..., Encoder]
    make_pool: Callable[..., TextPool]

    @classmethod
    def default(cls) -> Collaborators:
        """fastmteb's registry, loader and encoding engine (imported now: ``import fastmteb``
        does not load torch or datasets, a run does)."""
        from fastmteb.data.loading import load_raw, local_selection, release_mteb_data
        from fastmteb.encoding import TextPool, load_encoder
        from fastmteb.tasks.registry import get_benchmark, get_task
        from fastmteb.tasks.types import get_task_type

        return cls(
            get_task=get_task,
            get_benchmark=get_benchmark,
            get_task_type=get_task_type,
            load_raw=load_raw,
            local_selection=local_selection,
            release_loader_data=release_mteb_data,
            load_encoder=load_encoder,
            make_pool=TextPool,
        )
