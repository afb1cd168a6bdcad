"""Evaluation during training, cheap enough to run every few hundred steps.

Three front ends share one core (``TrainingEvaluation``) and one code path with ``fastmteb.evaluate``
(``fastmteb.runner.PreparedRun``):

* ``MTEBEvaluator``: a sentence-transformers evaluator, for ``SentenceTransformerTrainer(evaluator=...)``
  and ``model.fit(evaluator=...)``; returns ``{<task>_<metric>: value}`` (the trainer logs them as
  ``eval_<task>_<metric>``), ``primary_metric = "mean_main_score"``.
* ``MTEBTrainerCallback``: a Hugging Face ``TrainerCallback``; runs on ``on_evaluate`` and/or every N
  steps and logs flat ``eval_<task>_<metric>`` keys (through ``trainer.log`` once ``attach(trainer)``
  was called, so TensorBoard / W&B get them).
* ``MTEBLightningCallback``: a Lightning ``Callback``, defined only when ``lightning`` or
  ``pytorch_lightning`` imports (neither is a dependency); logs to ``trainer.loggers``.

What does not depend on the weights is done once, on the first call (or ``prepare(model)``): data
loading, ``prepare`` (texts, samples, qrels arrays), the text pool and its tokenization. Each later
call re-encodes every text with the model's *current* weights (no disk cache) and scores. A call
whose weights are unchanged since the previous call (an evaluation fired twice at one step, e.g.
every-N-steps and ``on_evaluate`` together) returns that call's scores without encoding
(``reuse_unchanged``; see ``weights_state``). During a call the model is in eval mode under
``no_grad``; its mode and the RNG states of the training loop (python ``random``, numpy's global
generator, torch CPU and CUDA) are restored afterwards.

``max_samples`` / ``max_corpus`` take a fixed (seeded) subsample per task for speed. Scores on a
subsample are NOT comparable with the leaderboard or with a full ``fastmteb.evaluate`` run; they are
meant for following a training run.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from fastmteb.encoding.base import is_encoder
from fastmteb.encoding.models import weights_digest
from fastmteb.runner import Collaborators, PreparedRun, TaskFailure, prepare_run
from fastmteb.tasks.types import get_task_type

if TYPE_CHECKING:
    from fastmteb.results import TaskResult
    from fastmteb.tasks.base import TaskMetadata

try:  # sentence-transformers >= 6
    from sentence_transformers.base.evaluation.evaluator import BaseEvaluator as _SentenceEvaluator
except ImportError:  # pragma: no cover - older sentence-transformers
    from sentence_transformers.evaluation import SentenceEvaluator as _SentenceEvaluator

try:
    from transformers import TrainerCallback as _TrainerCallback
except ImportError:  # pragma: no cover - transformers is a dependency
    _TrainerCallback = object  # type: ignore[assignment,misc]

logger = logging.getLogger("fastmteb")

__all__ = [
    "EvaluationRecord",
    "FixedSubsample",
    "MTEBEvaluator",
    "MTEBTrainerCallback",
    "TrainingEvaluation",
    "CallbackEvaluationError",
    "MEAN_MAIN_SCORE",
]

MEAN_MAIN_SCORE = "mean_main_score"


class CallbackEvaluationError(RuntimeError):
    """Some tasks failed during a callback evaluation (``raise_error=True``); ``.failures`` lists them."""

    def __init__(self, failures: Sequence[TaskFailure]) -> None:
        self.failures = list(failures)
        lines = "\n".join(f"  - {f}" for f in self.failures)
        super().__init__(f"{len(self.failures)} task(s) failed in the training evaluation:\n{lines}")


# ---------------------------------------------------------------------------------------------
# Fixed per-task subsample (not leaderboard-comparable)


def _rows_of(table: Any, column: str) -> list[Any]:
    return list(table[column]) if hasattr(table, "column_names") else [row[column] for row in table]


def _take(table: Any, rows: Sequence[int]) -> Any:
    """Rows ``rows`` of a ``datasets.Dataset`` or a list of dicts, in that order."""
    if hasattr(table, "select"):
        return table.select(list(rows))
    return [table[i] for i in rows]


@dataclass(frozen=True)
class FixedSubsample:
    """A ``RawTransform`` keeping the same seeded subsample of each task on every run.

    Non-retrieval types: at most ``max_samples`` rows of the evaluated split (training splits of
    classification tasks are kept whole). Retrieval family: at most ``max_samples`` judged queries,
    their qrels and ``top_ranked`` rows; with ``max_corpus`` the corpus keeps every document judged or
    ranked for a kept query plus seeded random others, up to ``max_corpus`` documents (never fewer
    than the needed ones). Row order is kept. Not comparable with full-data scores.
    """

    max_samples: int | None = None
    max_corpus: int | None = None
    seed: int = 42

    def __post_init__(self) -> None:
        for name in ("max_samples", "max_corpus"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive int or None, got {value!r}")

    def _rng(self, meta: TaskMetadata, split: str, subset: str) -> np.random.Generator:
        return np.random.default_rng([self.seed, zlib.crc32(f"{meta.name}/{split}/{subset}".encode())])

    def _pick(self, rng: np.random.Generator, n: int, limit: int | None) -> list[int]:
        if limit is None or n <= limit:
            return list(range(n))
        return sorted(int(i) for i in rng.choice(n, size=limit, replace=False))

    def __call__(self, meta: TaskMetadata, raw: Mapping[str, Any], split: str, subset: str) -> dict[str, Any]:
        rng = self._rng(meta, split, subset)
        out = dict(raw)
        if not getattr(get_task_type(meta.type), "retrieval", False):
            if self.max_samples is not None and split in out:
                out[split] = _take(out[split], self._pick(rng, len(out[split]), self.max_samples))
            return out
        qrel_queries = [str(q) for q in _rows_of(raw["qrels"], "query-id")]
        judged = set(qrel_queries)
        query_ids = [str(q) for q in _rows_of(raw["queries"], "id")]
        candidates = [i for i, q in enumerate(query_ids) if q in judged]
        kept_rows = [candidates[i] for i in self._pick(rng, len(candidates), self.max_samples)]
        kept = {query_ids[i] for i in kept_rows}
        out["queries"] = _take(raw["queries"], kept_rows)
        out["qrels"] = _take(raw["qrels"], [i for i, q in enumerate(qrel_queries) if q in kept])
        needed = {str(d) for d in _rows_of(out["qrels"], "corpus-id")}
        for part in ("top_ranked", "instruction"):
            table = raw.get(part)
            if table is None:
                continue
            rows = [i for i, q in enumerate(_rows_of(table, "query-id")) if str(q) in kept]
            out[part] = _take(table, rows)
            if part == "top_ranked":
                needed.update(str(d) for ids in _rows_of(out[part], "corpus-ids") for d in ids)
        if self.max_corpus is not None:
            doc_ids = [str(d) for d in _rows_of(raw["corpus"], "id")]
            must = [i for i, d in enumerate(doc_ids) if d in needed]
            others = [i for i, d in enumerate(doc_ids) if d not in needed]
            fill = max(0, self.max_corpus - len(must))
            extra = [others[i] for i in self._pick(rng, len(others), fill)] if fill else []
            out["corpus"] = _take(raw["corpus"], sorted(must + extra))
        return out

    def describe(self) -> dict[str, Any]:
        return {"max_samples": self.max_samples, "max_corpus": self.max_corpus, "seed": self.seed}


# ---------------------------------------------------------------------------------------------
# Isolation from the training loop


@contextlib.contextmanager
def preserved_training_state(model: Any) -> Iterator[None]:
    """Eval mode and ``no_grad`` inside; afterwards the module's mode and the RNG states (python
    ``random``, numpy's global generator, torch CPU and every initialised CUDA device) are what they
    were, so evaluating does not change what the training loop draws next."""
    module = model if isinstance(model, torch.nn.Module) else None
    was_training = module.training if module is not None else None
    python_state = random.getstate()
    numpy_state = np.random.get_state()
    torch_state = torch.get_rng_state()
    cuda_states = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
    try:
        if module is not None:
            module.eval()
        with torch.no_grad():
            yield
    finally:
        if module is not None:
            module.train(was_training)
        random.setstate(python_state)
        np.random.set_state(numpy_state)
        torch.set_rng_state(torch_state)
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)


def _model_device(model: Any) -> str | None:
    device = getattr(model, "device", None)
    if device is not None:
        return str(device)
    if isinstance(model, torch.nn.Module):
        first = next(iter(model.parameters()), None)
        if first is not None:
            return str(first.device)
    return None


def weights_state(model: Any) -> tuple[Any, ...] | None:
    """What tells whether ``model``'s weights changed between two calls, or None when they cannot
    be seen (a plain callable, an encoder without a torch module).

    Two signals, both must be unchanged for a call to count as "same weights": every parameter's
    and buffer's (identity, storage address, autograd version counter), and ``weights_digest``
    (per-tensor float64 sum, sum of squares and position-weighted sum). Either alone misses real
    updates: fused optimizers (``AdamW(fused=True)``) and writes through ``.data`` do not bump
    version counters; the digest would miss an update that keeps all three sums of every tensor
    to the last bit, which no training step does.
    """
    module = model if isinstance(model, torch.nn.Module) else getattr(model, "module", None)
    if not isinstance(module, torch.nn.Module):
        return None
    tensors = [*module.parameters(), *module.buffers()]
    versions = tuple((id(t), t.data_ptr(), t._version) for t in tensors)
    return versions, weights_digest(module)


# ---------------------------------------------------------------------------------------------
# The core


@dataclass
class EvaluationRecord:
    """One evaluation call: flat metrics (``<task>_<metric>`` and ``mean_main_score``), the per-task
    ``TaskResult`` (mteb's score dicts, as ``fastmteb.evaluate`` returns them) and the wall time."""

    step: int | None
    epoch: float | None
    seconds: float
    metrics: dict[str, float]
    results: dict[str, TaskResult]
    failures: list[TaskFailure] = field(default_factory=list)
    prepared_seconds: float = 0.0  # load + prepare + tokenize, paid in this call (first call only)
    encode_seconds: float = 0.0  # forward passes
    score_seconds: float = 0.0
    reused: bool = False  # weights unchanged since the previous call: its scores, nothing encoded

    def to_json(self, subsample: Mapping[str, Any] | None) -> dict[str, Any]:
        return {
            "step": self.step,
            "epoch": self.epoch,
            "time": time.time(),
            "seconds": self.seconds,
            "prepared_seconds": self.prepared_seconds,
            "encode_seconds": self.encode_seconds,
            "score_seconds": self.score_seconds,
            "reused": self.reused,
            "subsample": dict(subsample) if subsample else None,
            "metrics": self.metrics,
            "scores": {name: result.scores for name, result in self.results.items()},
            "failures": [str(f) for f in self.failures],
        }


def flat_metrics(results: Mapping[str, TaskResult], metrics: Sequence[str] = ("main_score",)) -> dict[str, float]:
    """``{f"{task}_{metric}": mean over the task's (split, subset) entries}`` for each requested
    metric the task has, plus ``mean_main_score`` = mean over tasks of their ``main_score``."""
    flat: dict[str, float] = {}
    mains = []
    for name, result in results.items():
        entries = [entry for split_entries in result.scores.values() for entry in split_entries]
        for metric in dict.fromkeys(["main_score", *metrics]):
            values = [entry[metric] for entry in entries if isinstance(entry.get(metric), (int, float))]
            if not values:
                continue
            value = float(np.mean(values))
            if metric == "main_score":
                mains.append(value)
                if "main_score" not in metrics:
                    continue
            flat[f"{name}_{metric}"] = value
    if mains:
        flat[MEAN_MAIN_SCORE] = float(np.mean(mains))
    return flat


class TrainingEvaluation:
    """Prepared-once evaluation of a model being trained (see the module docstring).

    ``tasks`` / ``benchmark``: as ``fastmteb.evaluate``. ``data_dir``: a local data folder.
    ``max_samples`` / ``max_corpus`` / ``seed``: a ``FixedSubsample`` (not leaderboard-comparable).
    ``metrics``: metric names logged per task besides ``main_score``. ``history_path``: JSON lines,
    one per call. ``dtype`` / ``batch_tokens`` / ``prompts``: as ``load_encoder``.
    ``raise_error``: a task failing raises ``CallbackEvaluationError``; else it is logged and left out.
    ``reuse_unchanged``: a call on the same model object whose weights did not change since the
    previous call (``weights_state``) returns that call's scores without encoding; False: always
    re-encode. ``collaborators``: the registry, loader, model loader and text pool to use
    (default: fastmteb's, ``fastmteb.runner.Collaborators.default()``).
    """

    def __init__(
        self,
        tasks: str | TaskMetadata | Iterable[str | TaskMetadata] | None = None,
        *,
        benchmark: str | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        max_samples: int | None = None,
        max_corpus: int | None = None,
        seed: int = 42,
        metrics: Sequence[str] = ("main_score",),
        history_path: str | os.PathLike[str] | None = None,
        dtype: str = "auto",
        batch_tokens: int = 16384,
        prompts: Mapping[str, str] | None = None,
        raise_error: bool = True,
        progress: bool = False,
        reuse_unchanged: bool = True,
        collaborators: Collaborators | None = None,
    ) -> None:
        if tasks is None and benchmark is None:
            raise ValueError("TrainingEvaluation: pass tasks=[names] or benchmark=NAME")
        self.tasks = tasks
        self.benchmark = benchmark
        self.data_dir = data_dir
        self.subsample = (
            FixedSubsample(max_samples, max_corpus, seed) if (max_samples or max_corpus) else None
        )
        self.metrics = tuple(metrics)
        self.history_path = Path(history_path) if history_path is not None else None
        self.dtype = dtype
        self.batch_tokens = batch_tokens
        self.prompts = prompts
        self.raise_error = raise_error
        self.progress = progress
        self.reuse_unchanged = reuse_unchanged
        self.collaborators = collaborators if collaborators is not None else Collaborators.default()
        self.history: list[EvaluationRecord] = []
        self._run: PreparedRun | None = None
        self._model: Any = None
        self._last: tuple[Any, EvaluationRecord] | None = None  # (weights_state, record) of the last encode

    # -- preparation ------------------------------------------------------------------------
    def _encoder_for(self, model: Any) -> Any:
        if is_encoder(model):
            return model
        return self.collaborators.load_encoder(
            model,
            device=_model_device(model),
            dtype=self.dtype,
            prompts=self.prompts,
            batch_tokens=self.batch_tokens,
        )

    def prepare(self, model: Any) -> PreparedRun:
        """Load and prepare the tasks, fill the text pool for ``model`` and tokenize it (done on
        the first call otherwise). A different model object later gets a new pool over the same
        prepared data (tokenized again: its tokenizer may differ)."""
        if self._run is not None and model is self._model:
            return self._run
        encoder = self._encoder_for(model)
        if self._run is None:
            self._run = prepare_run(
                encoder,
                self.tasks,
                benchmark=self.benchmark,
                data_dir=self.data_dir,
                cache_dir=None,  # never a disk cache: the weights change between calls
                progress=self.progress,
                raw_transform=self.subsample,
                collaborators=self.collaborators,
            )
            if self._run.failures:
                self._report(self._run.failures)
        else:
            self._run.rebind(encoder, progress=self.progress)
        self._run.tokenize()
        self._model = model
        self._last = None
        return self._run

    def _report(self, failures: Sequence[TaskFailure]) -> None:
        if self.raise_error:
            raise CallbackEvaluationError(failures)
        for failure in failures:
            logger.warning("training evaluation: %s", failure)

    # -- one call ---------------------------------------------------------------------------
    def __call__(self, model: Any, *, step: int | None = None, epoch: float | None = None) -> EvaluationRecord:
        """Encode every text with ``model``'s current weights and score every task (or, weights
        unchanged since the previous call and ``reuse_unchanged``, return that call's scores)."""
        started = time.perf_counter()
        with preserved_training_state(model):
            first = self._run is None or model is not self._model
            run = self.prepare(model)
            prepared_seconds = time.perf_counter() - started if first else 0.0
            state = weights_state(model) if self.reuse_unchanged else None
            if state is not None and self._last is not None and self._last[0] == state:
                last = self._last[1]
                record = EvaluationRecord(
                    step=step,
                    epoch=epoch,
                    seconds=time.perf_counter() - started,
                    metrics=dict(last.metrics),
                    results=last.results,
                    reused=True,
                )
            else:
                record = self._encode_and_score(run, step, epoch, started, prepared_seconds)
                self._last = (state, record) if state is not None and not record.failures else None
        if record.failures:
            self._report(record.failures)
        self.history.append(record)
        self.write_history(record)
        return record

    def _encode_and_score(
        self, run: PreparedRun, step: int | None, epoch: float | None, started: float, prepared_seconds: float
    ) -> EvaluationRecord:
        encode_started = time.perf_counter()
        run.embed(reencode=True)
        score_started = time.perf_counter()
        results: dict[str, TaskResult] = {}
        failures: list[TaskFailure] = []
        for meta, outcome in run.scored(progress=self.progress, release=False):
            if isinstance(outcome, TaskFailure):
                failures.append(outcome)
            else:
                results[meta.name] = outcome
        scored = time.perf_counter()
        return EvaluationRecord(
            step=step,
            epoch=epoch,
            seconds=scored - started,
            metrics=flat_metrics(results, self.metrics),
            results=results,
            failures=failures,
            prepared_seconds=prepared_seconds,
            encode_seconds=score_started - encode_started,
            score_seconds=scored - score_started,
        )

    def write_history(self, record: EvaluationRecord, path: str | os.PathLike[str] | None = None) -> None:
        """Append ``record`` as one JSON line to ``path`` (default ``history_path``; none: no-op)."""
        target = Path(path) if path is not None else self.history_path
        if target is None:
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        subsample = self.subsample.describe() if self.subsample else None
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record.to_json(subsample), default=float) + "\n")


# ---------------------------------------------------------------------------------------------
# sentence-transformers


class MTEBEvaluator(_SentenceEvaluator):
    """A sentence-transformers evaluator: ``SentenceTransformerTrainer(evaluator=MTEBEvaluator([...]))``
    or ``model.fit(..., evaluator=...)``. Keyword arguments are ``TrainingEvaluation``'s.

    ``__call__(model, output_path, epoch, steps)`` returns ``{<task>_<metric>: value,
    "mean_main_score": value}`` (prefixed by ``name_`` when ``name`` is set); the trainer adds
    ``eval_``. Without ``history_path``, history goes to ``{output_path}/fastmteb_history.jsonl``
    when the trainer gives an ``output_path``.
    """

    def __init__(
        self,
        tasks: str | TaskMetadata | Iterable[str | TaskMetadata] | None = None,
        *,
        name: str = "",
        **kwargs: Any,
    ) -> None:
        super().__init__()
        self.evaluation = TrainingEvaluation(tasks, **kwargs)
        self.name = name
        self.primary_metric = MEAN_MAIN_SCORE
        self.greater_is_better = True

    def __call__(
        self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        record = self.evaluation(
            model,
            step=None if steps == -1 else int(steps),
            epoch=None if epoch == -1 else float(epoch),
        )
        if self.evaluation.history_path is None and output_path is not None:
            self.evaluation.write_history(record, Path(output_path) / "fastmteb_history.jsonl")
        metrics = self.prefix_name_to_metrics(record.metrics, self.name)
        with contextlib.suppress(Exception):  # the model card is a nicety, never a reason to fail
            self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics

    @property
    def last_record(self) -> EvaluationRecord | None:
        return self.evaluation.history[-1] if self.evaluation.history else None

    def get_config_dict(self) -> dict[str, Any]:
        config: dict[str, Any] = {}
        if self.evaluation.subsample is not None:
            config.update(self.evaluation.subsample.describe())
        return config


# ---------------------------------------------------------------------------------------------
# Hugging Face Trainer


def _prefixed(metrics: Mapping[str, float], prefix: str = "eval_") -> dict[str, float]:
    return {key if key.startswith(prefix) else prefix + key: value for key, value in metrics.items()}


class MTEBTrainerCallback(_TrainerCallback):
    """A ``transformers.TrainerCallback`` (also for ``SentenceTransformerTrainer``).

    Runs on ``on_evaluate`` (``on_evaluate=True``) and/or every ``every_n_steps`` optimizer steps.
    Metrics are flat ``eval_<task>_<metric>`` keys (plus ``eval_mean_main_score``): merged into the
    trainer's eval metrics (so ``metric_for_best_model`` can use them), and logged with
    ``trainer.log`` when the trainer is known (``MTEBTrainerCallback(...).attach(trainer)`` or
    ``trainer=``), which is how TensorBoard / W&B callbacks see them; without it they only go to
    ``state.log_history``. ``model_getter(model)`` picks the module to encode with (default: the
    trainer's model). Keyword arguments are ``TrainingEvaluation``'s. Only the main process runs it.
    """

    def __init__(
        self,
        tasks: str | TaskMetadata | Iterable[str | TaskMetadata] | None = None,
        *,
        every_n_steps: int | None = None,
        on_evaluate: bool = True,
        trainer: Any = None,
        model_getter: Callable[[Any], Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if every_n_steps is not None and every_n_steps < 1:
            raise ValueError(f"every_n_steps must be a positive int or None, got {every_n_steps!r}")
        self.evaluation = TrainingEvaluation(tasks, **kwargs)
        self.every_n_steps = every_n_steps
        self.run_on_evaluate = on_evaluate
        self.trainer = trainer
        self.model_getter = model_getter
        self._last_step: int | None = None

    def attach(self, trainer: Any) -> MTEBTrainerCallback:
        """``trainer.add_callback(self)`` and remember the trainer for ``trainer.log``."""
        trainer.add_callback(self)
        self.trainer = trainer
        return self

    def _evaluate(self, state: Any, model: Any, into: dict[str, float] | None) -> dict[str, float] | None:
        if not getattr(state, "is_world_process_zero", True) or model is None:
            return None
        target = self.model_getter(model) if self.model_getter is not None else model
        record = self.evaluation(target, step=state.global_step, epoch=state.epoch)
        self._last_step = state.global_step
        metrics = _prefixed(record.metrics)
        if into is not None:
            into.update(metrics)
        if self.trainer is not None:
            self.trainer.log(dict(metrics))
        else:
            state.log_history.append({**metrics, "step": state.global_step})
        return metrics

    def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if self.every_n_steps and state.global_step % self.every_n_steps == 0:
            self._evaluate(state, model, None)

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: Any = None, model: Any = None,
                    **kwargs: Any) -> None:
        if self.run_on_evaluate and self._last_step != state.global_step:
            self._evaluate(state, model, metrics)
        elif self.run_on_evaluate and metrics is not None and self.evaluation.history:
            metrics.update(_prefixed(self.evaluation.history[-1].metrics))  # already ran this step


# ---------------------------------------------------------------------------------------------
# Lightning (optional; defined on first access when lightning / pytorch_lightning imports)


def _lightning_callback_base() -> type:
    import importlib

    for module_name in ("lightning.pytorch", "pytorch_lightning"):
        try:
            return importlib.import_module(module_name).Callback
        except ImportError:
            continue
    raise ImportError(
        "MTEBLightningCallback needs Lightning: pip install lightning (or pytorch_lightning); "
        "fastmteb does not depend on it"
    )


def _make_lightning_callback(base: type) -> type:
    class MTEBLightningCallback(base):  # type: ignore[misc,valid-type]
        """A Lightning ``Callback``: evaluates at the end of each validation epoch
        (``on_validation=True``, sanity check skipped) and/or every ``every_n_steps`` training
        steps; metrics ``eval_<task>_<metric>`` go to every ``trainer.loggers`` entry and to
        ``trainer.callback_metrics`` (so ``ModelCheckpoint(monitor=...)`` can use them).
        ``model_getter(pl_module)`` gives the module to encode with (default ``pl_module.model``
        when present, else ``pl_module``). Keyword arguments are ``TrainingEvaluation``'s."""

        def __init__(
            self,
            tasks: str | TaskMetadata | Iterable[str | TaskMetadata] | None = None,
            *,
            every_n_steps: int | None = None,
            on_validation: bool = True,
            model_getter: Callable[[Any], Any] | None = None,
            **kwargs: Any,
        ) -> None:
            super().__init__()
            if every_n_steps is not None and every_n_steps < 1:
                raise ValueError(f"every_n_steps must be a positive int or None, got {every_n_steps!r}")
            self.evaluation = TrainingEvaluation(tasks, **kwargs)
            self.every_n_steps = every_n_steps
            self.on_validation = on_validation
            self.model_getter = model_getter

        def _evaluate(self, trainer: Any, pl_module: Any) -> dict[str, float] | None:
            if not getattr(trainer, "is_global_zero", True):
                return None
            model = self.model_getter(pl_module) if self.model_getter else getattr(pl_module, "model", pl_module)
            step = int(trainer.global_step)
            record = self.evaluation(model, step=step, epoch=float(trainer.current_epoch))
            metrics = _prefixed(record.metrics)
            for lightning_logger in getattr(trainer, "loggers", None) or []:
                lightning_logger.log_metrics(metrics, step=step)
            callback_metrics = getattr(trainer, "callback_metrics", None)
            if callback_metrics is not None:
                callback_metrics.update({k: torch.tensor(v) for k, v in metrics.items()})
            return metrics

        def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any,
                               batch_idx: int) -> None:
            if self.every_n_steps and trainer.global_step and trainer.global_step % self.every_n_steps == 0:
                self._evaluate(trainer, pl_module)

        def on_validation_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            if self.on_validation and not getattr(trainer, "sanity_checking", False):
                self._evaluate(trainer, pl_module)

    return MTEBLightningCallback


_LIGHTNING_CLASS: dict[type, type] = {}


def __getattr__(name: str) -> Any:
    if name == "MTEBLightningCallback":
        base = _lightning_callback_base()
        if base not in _LIGHTNING_CLASS:
            _LIGHTNING_CLASS[base] = _make_lightning_callback(base)
        return _LIGHTNING_CLASS[base]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
