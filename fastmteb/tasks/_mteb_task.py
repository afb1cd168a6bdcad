"""Reading an mteb task object without importing mteb, and what each type says about mteb's tasks.

``MtebTaskReader`` is the part of a type object's contract that ``fastmteb.tasks.mteb_adapter``
asks when it turns an mteb task into a ``TaskMetadata``: which of mteb's abstract task classes the
type scores, the type parameters read from the task's class attributes, the columns the task
renames, and why a task of that class cannot be scored. Every type module subclasses it, so the
adapter never branches on a type's name.
"""

from __future__ import annotations

import inspect
from typing import Any, Mapping

__all__ = [
    "MtebTaskReader",
    "has_mteb_base",
    "mteb_bases",
    "own_definition",
    "plain",
    "renamed_columns",
    "renamed_sentence_pair",
    "source_contains",
]


def mteb_bases(task: Any) -> list[str]:
    """Names of mteb's abstract task classes in ``task``'s MRO, most derived first.

    Compared by name: ``isinstance`` checks against mteb's ABCs over its ~1,500 task classes take
    seconds (and need mteb imported); this takes microseconds.
    """
    return [c.__name__ for c in type(task).__mro__ if c.__module__.startswith("mteb.abstasks")]


def has_mteb_base(task: Any, class_name: str) -> bool:
    """``isinstance(task, <mteb's abstract class class_name>)``."""
    return class_name in mteb_bases(task)


def _task_classes(task: Any) -> list[type]:
    """The task's own classes in its MRO, before mteb's abstract task classes."""
    return [
        c
        for c in type(task).__mro__
        if c is not object and not c.__module__.startswith("mteb.abstasks") and c.__module__ != "abc"
    ]


def own_definition(task: Any, name: str) -> Any:
    """The task's own definition of ``name`` (None when only mteb's base classes define it)."""
    for cls in _task_classes(task):
        if name in cls.__dict__:
            return cls.__dict__[name]
    return None


def source_contains(func: Any, text: str) -> bool:
    """True when the source of ``func`` contains ``text`` (False when there is no source)."""
    try:
        return text in inspect.getsource(func)
    except (OSError, TypeError):
        return False


def plain(value: Any) -> Any:
    """mteb's ``PromptType.query`` -> "query" (fastmteb's prompt types are plain strings)."""
    return getattr(value, "value", value)


def renamed_columns(task: Any, attrs: Mapping[str, tuple[str, str]]) -> dict[str, str]:
    """{canonical column: the task's column} for ``attrs`` = {canonical: (class attribute, mteb
    default)}, where the task's class names another column than mteb's default."""
    out: dict[str, str] = {}
    for canonical, (attr, default) in attrs.items():
        actual = getattr(task, attr, default)
        if isinstance(actual, str) and actual != default:
            out[canonical] = actual
    return out


def renamed_sentence_pair(task: Any) -> dict[str, str]:
    """{canonical column: the task's column} from mteb's ``column_names = (first, second)`` (STS,
    BitextMining; mteb's default is ("sentence1", "sentence2"))."""
    names = getattr(task, "column_names", None)
    if not isinstance(names, (tuple, list)) or len(names) != 2:
        return {}
    return {
        canonical: actual
        for canonical, actual in zip(("sentence1", "sentence2"), names, strict=True)
        if isinstance(actual, str) and actual != canonical
    }


class MtebTaskReader:
    """What a task type knows about mteb's task classes (defaults: nothing to read).

    ``mteb_abstasks``: names of the mteb abstract task classes this type scores (the most derived
    one in a task's MRO picks the type, as mteb picks its evaluator by class). ``mteb_model``:
    (sklearn class name, the params it must keep) for the types mteb routes by class rather than
    by ``metadata.type`` (the classification family); a task whose evaluator model differs falls
    back to mteb. ``mteb_columns``: {canonical column: (class attribute, mteb default)}.
    """

    mteb_abstasks: tuple[str, ...] = ()
    mteb_model: tuple[str, Mapping[str, Any]] | None = None
    mteb_columns: Mapping[str, tuple[str, str]] = {}

    def mteb_params(self, task: Any) -> dict[str, Any]:
        """The ``TaskMetadata.params`` this type reads, from ``task``'s class attributes (mteb's
        names and values)."""
        return {}

    def mteb_renamed_columns(self, task: Any) -> dict[str, str]:
        """{canonical column: the task's column} where ``task``'s class reads another column."""
        return renamed_columns(task, self.mteb_columns)

    def mteb_unsupported_reason(self, task: Any) -> str | None:
        """Why this type cannot score ``task`` although it is of its class (None when it can)."""
        return None
