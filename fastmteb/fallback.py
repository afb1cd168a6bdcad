"""mteb's own evaluator, fed with fastmteb's embeddings, for tasks whose scoring fastmteb lacks.

Some mteb tasks replace mteb's evaluation with their own (StakeholderGrounding's ``_evaluate_subset``)
or report a main score fastmteb does not compute. For those, fastmteb does not guess: it runs
``mteb.evaluate`` on the task with ``MtebBridgeEncoder``, an object that speaks mteb's encoder
protocol (``encode(DataLoader, *, task_metadata, hf_split, hf_subset, prompt_type)``) and serves
vectors made by fastmteb's encoder:

* every ``encode`` call goes through one ``TextPool`` over fastmteb's ``Encoder`` (token-budget
  batches, each distinct (resolved prompt, text) encoded once, the on-disk cache when the run has
  a ``cache_dir``), with the same ``EncodeContext`` fastmteb's own tasks use, so the vectors equal
  those a fastmteb task would get for the same texts;
* encoding is **on demand**: mteb's evaluator decides the texts while it runs (a task's own
  ``_evaluate_subset`` may build them from anything), so they cannot be added to the run's shared
  text pool up front; a text repeated across the fallback's calls or tasks is still encoded once.

Data comes from the task's own ``load_data()`` (the hub), as in mteb; a ``--data-dir`` does not
apply to these tasks. The scores are mteb's, computed by mteb's code. The result file is mteb's
``TaskResult`` plus a top-level ``"scored_by": "mteb evaluator (fallback)"`` (mteb's loader ignores
unknown fields); the run log says so too.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from fastmteb.results import TaskResult
from fastmteb.tasks.mteb_adapter import EVALUATION_ONLY_REASONS

logger = logging.getLogger("fastmteb")

__all__ = [
    "SCORED_BY",
    "MtebBridgeEncoder",
    "evaluate_with_mteb",
    "is_fallback",
    "mteb_fallback_task",
]

SCORED_BY = "mteb evaluator (fallback)"


def _evaluation_only(reason: str | None) -> bool:
    return reason is not None and reason.startswith(EVALUATION_ONLY_REASONS)


def is_fallback(name: str) -> bool:
    """True when fastmteb runs ``name`` through mteb's evaluator (read from the cached catalogue)."""
    from fastmteb.tasks.registry import FASTMTEB_TASKS, coverage

    if name in FASTMTEB_TASKS:
        return False
    try:
        return _evaluation_only(coverage()[1].get(name))
    except ImportError:  # no mteb installed: no mteb task to run
        return False


def mteb_fallback_task(item: Any) -> Any | None:
    """mteb's task object for ``item`` (a name or an mteb task object) when fastmteb scores it with
    mteb's evaluator; None otherwise."""
    if isinstance(item, str):
        if not is_fallback(item):
            return None
        import mteb

        return mteb.get_task(item)
    if hasattr(item, "metadata") and hasattr(item, "eval_splits"):
        from fastmteb.tasks.mteb_adapter import unsupported_reason

        return item if _evaluation_only(unsupported_reason(item)) else None
    return None


def _model_meta(encoder: Any) -> Any:
    from mteb.models.model_meta import ModelMeta, ScoringFunction

    name = str(getattr(encoder, "name", "") or "fastmteb/encoder")
    if "/" not in name:
        name = f"fastmteb/{name}"
    return ModelMeta.create_empty(
        overwrites={
            "name": name,
            "revision": str(getattr(encoder, "revision", None) or "no_revision_available"),
            "similarity_fn_name": ScoringFunction.COSINE,  # fastmteb's scorers use cosine
            "framework": [],
        }
    )


def _bridge_class() -> type:
    from mteb.models.abs_encoder import AbsEncoder

    class MtebBridgeEncoder(AbsEncoder):
        """mteb's ``EncoderProtocol`` over a fastmteb ``Encoder`` and a ``TextPool``."""

        def __init__(self, encoder: Any, pool: Any = None) -> None:
            from fastmteb.encoding import TextPool

            self.encoder = encoder
            self.pool = pool if pool is not None else TextPool(encoder, progress=False)
            self.model = None
            self.mteb_model_meta = _model_meta(encoder)
            self.calls: list[tuple[str, str, str, str | None, int]] = []

        def encode(
            self,
            inputs: Any,
            *,
            task_metadata: Any,
            hf_split: str,
            hf_subset: str,
            prompt_type: Any = None,
            **kwargs: Any,
        ) -> np.ndarray:
            from fastmteb.encoding.base import EncodeContext

            texts: list[str] = []
            for batch in inputs:
                texts.extend(batch["text"])
            kind = getattr(prompt_type, "value", prompt_type)
            ctx = EncodeContext(
                task_name=task_metadata.name,
                task_type=task_metadata.type,
                prompt_type=kind,
                hf_split=hf_split,
                hf_subset=hf_subset,
                task_prompt=task_metadata.prompt,
            )
            self.calls.append((task_metadata.name, hf_split, hf_subset, kind, len(texts)))
            indices = self.pool.add(texts, ctx)
            vectors = self.pool.embeddings()
            return np.asarray(vectors[indices], dtype=np.float32)

    return MtebBridgeEncoder


def MtebBridgeEncoder(encoder: Any, pool: Any = None) -> Any:  # noqa: N802 - a class made on demand
    """mteb-protocol encoder serving ``encoder``'s vectors through ``pool`` (a ``TextPool``; a new
    one when None). mteb is imported only when this is called."""
    return _bridge_class()(encoder, pool)


def evaluate_with_mteb(task: Any, encoder: Any, *, pool: Any = None, bridge: Any = None) -> TaskResult:
    """``task`` (an mteb task object) scored by ``mteb.evaluate`` with fastmteb's vectors.

    Returns fastmteb's ``TaskResult`` with ``scored_by`` set; raises what mteb raises.
    """
    import mteb

    from fastmteb.aggregate import from_mteb_result

    bridge = bridge if bridge is not None else MtebBridgeEncoder(encoder, pool)
    name = task.metadata.name
    logger.info("%s: scored by the %s, with fastmteb's embeddings", name, SCORED_BY)
    started = time.monotonic()
    outcome = mteb.evaluate(
        bridge,
        task,
        cache=None,
        co2_tracker=False,
        raise_error=True,
        show_progress_bar=False,
        encode_kwargs={"batch_size": 32, "show_progress_bar": False},
        overwrite_strategy="always",
    )
    if outcome.exceptions:
        raise RuntimeError(f"mteb's evaluator failed on {name}: {outcome.exceptions}")
    (mteb_result,) = outcome.task_results
    result = from_mteb_result(mteb_result, task_type=task.metadata.type)
    if result.evaluation_time is None:
        result.evaluation_time = time.monotonic() - started
    result.scored_by = SCORED_BY  # type: ignore[attr-defined]
    return result


def write(result: TaskResult, path: Any) -> None:
    """The result file: mteb's ``TaskResult`` JSON plus ``"scored_by"``."""
    from fastmteb.results import write_json_atomic

    data = result.to_dict(rounded=True)
    data["scored_by"] = getattr(result, "scored_by", SCORED_BY)
    write_json_atomic(path, data)
