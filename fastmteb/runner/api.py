"""The public entry points: ``evaluate`` (a whole run, written to disk), ``prepare_run`` (a run kept
in memory, e.g. by a training callback) and ``resolve_tasks`` (what the ``tasks``/``benchmark``
arguments name)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastmteb import provenance
from fastmteb.inputs import check_run_inputs
from fastmteb.results import TaskResult, model_result_dir
from fastmteb.run_extras import finish_extras, split_extras
from fastmteb.runner.agreement import agree_on_loaded_tasks, distributed_context, from_main_rank
from fastmteb.runner.collaborators import Collaborators
from fastmteb.runner.outcome import Outcome, RunResults, TaskFailedError
from fastmteb.runner.prepared import Clock, PreparedRun, RawTransform, _is_spilled
from fastmteb.runner.resume import folder_of_model, plan
from fastmteb.runner.writing import write_results

if TYPE_CHECKING:
    from fastmteb.encoding.base import Encoder
    from fastmteb.tasks.base import TaskMetadata

logger = logging.getLogger("fastmteb")

__all__ = ["evaluate", "prepare_run", "resolve_tasks"]


def resolve_tasks(
    tasks: Any = None,
    benchmark: Any = None,
    *,
    collaborators: Collaborators | None = None,
) -> list[TaskMetadata]:
    """Tasks -> metadata list, first occurrence order.

    ``tasks``: a task name (any mteb task fastmteb can run, or a fastmteb-only one), an mteb task
    object, a ``TaskMetadata``, an ``mteb.Benchmark``, or an iterable of these. ``benchmark``: a
    benchmark name (every mteb benchmark, or "fastmteb-mini") or an ``mteb.Benchmark``; its tasks
    come narrowed to the benchmark's splits and subsets.

    Unknown names raise the registry's ``UnknownTaskError`` (a ValueError listing close matches)
    before any work starts. ``collaborators``: the registry to ask (default: fastmteb's).
    """
    from fastmteb.tasks.base import TaskMetadata

    if collaborators is None:
        collaborators = Collaborators.default()

    def is_benchmark(obj: Any) -> bool:
        return hasattr(obj, "tasks") and hasattr(obj, "name") and not isinstance(obj, str)

    requested: list[TaskMetadata] = []
    if benchmark is not None:
        requested.extend(collaborators.get_benchmark(benchmark))
    if tasks is not None:
        single = isinstance(tasks, (str, TaskMetadata)) or hasattr(tasks, "metadata")
        items = [tasks] if single or is_benchmark(tasks) else list(tasks)
        for item in items:
            if isinstance(item, TaskMetadata):
                collaborators.get_task_type(item.type)  # an unknown type fails now, naming close ones
                requested.append(item)
            elif is_benchmark(item):
                requested.extend(collaborators.get_benchmark(item))
            elif isinstance(item, str) or hasattr(item, "metadata"):
                requested.append(collaborators.get_task(item))
            else:
                raise TypeError(
                    f"tasks: expected task names, mteb task or benchmark objects, or "
                    f"TaskMetadata, got {type(item).__name__}: {item!r}"
                )
    unique: dict[str, TaskMetadata] = {}
    for meta in requested:
        unique.setdefault(meta.name, meta)
    return list(unique.values())


def _local_selection(
    metas: list[TaskMetadata],
    data_dir: str | os.PathLike[str] | None,
    collaborators: Collaborators,
) -> list[TaskMetadata]:
    """With a data_dir: each task narrowed to the subsets/splits its folder holds, said in the log."""
    if data_dir is None:
        return metas
    out = []
    for meta in metas:
        kept = collaborators.local_selection(meta, data_dir)
        if kept is not meta:
            logger.warning(
                "%s: %s holds %d of %d subset(s) and %d of %d split(s); evaluating only those "
                "(subsets %s, splits %s)",
                meta.name,
                data_dir,
                len(kept.hf_subsets),
                len(meta.hf_subsets),
                len(kept.eval_splits),
                len(meta.eval_splits),
                ", ".join(kept.hf_subsets[:10]) + (" ..." if len(kept.hf_subsets) > 10 else ""),
                ", ".join(kept.eval_splits),
            )
        out.append(kept)
    return out


def _partial_local_data(
    requested: Sequence[TaskMetadata], evaluated: Sequence[TaskMetadata]
) -> dict[str, dict[str, list[str]]]:
    """{task: {"subsets": [...], "splits": [...]}} for tasks evaluated on part of their data."""
    return {
        new.name: {"subsets": list(new.hf_subsets), "splits": list(new.eval_splits)}
        for old, new in zip(requested, evaluated, strict=True)
        if new != old
    }


def prepare_run(
    encoder: Encoder,
    tasks: str | TaskMetadata | Iterable[str | TaskMetadata] | None = None,
    *,
    benchmark: str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = False,
    raw_transform: RawTransform | None = None,
    collaborators: Collaborators | None = None,
) -> PreparedRun:
    """Load and prepare every (split, subset) of ``tasks``/``benchmark`` for ``encoder`` (an
    ``Encoder``, e.g. from ``load_encoder``); nothing is encoded yet. Unknown names raise at once;
    tasks that fail to load are in ``PreparedRun.failures``. ``collaborators``: the registry,
    loader and text pool to use (default: fastmteb's, ``Collaborators.default()``)."""
    if collaborators is None:
        collaborators = Collaborators.default()
    requested = resolve_tasks(tasks, benchmark, collaborators=collaborators)
    metas = _local_selection(requested, data_dir, collaborators)
    if not metas:
        raise ValueError("no tasks to prepare: pass tasks=[names] or benchmark=NAME")
    check_run_inputs(data_dir=data_dir, cache_dir=cache_dir)
    pending = [
        (meta, None, [(split, subset) for split in meta.eval_splits for subset in meta.hf_subsets])
        for meta in metas
    ]
    return PreparedRun.load(
        encoder,
        pending,
        collaborators=collaborators,
        data_dir=data_dir,
        cache_dir=cache_dir,
        progress=progress,
        raw_transform=raw_transform,
    )


# ---------------------------------------------------------------------------------------------
# The entry point


def evaluate(
    model: Any = None,
    tasks: str | TaskMetadata | Iterable[str | TaskMetadata] | None = None,
    *,
    benchmark: str | None = None,
    output_folder: str | os.PathLike[str] = "results",
    data_dir: str | os.PathLike[str] | None = None,
    device: str | None = None,
    dtype: str = "auto",
    batch_tokens: int = 16384,
    cache_dir: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    progress: bool = True,
    prompts: Mapping[str, str] | None = None,
    trust_remote_code: bool = False,
    raise_error: bool = True,
    max_embedding_memory: int | str | None = None,
    spill_dtype: str = "float32",
    distributed: bool | None = None,
    dist_backend: str | None = None,
    collaborators: Collaborators | None = None,
    resident: bool | None = None,
) -> RunResults:
    """Evaluate ``model`` on ``tasks`` and/or ``benchmark``; write one mteb result file per task.

    ``model``: None (bundled all-MiniLM-L6-v2), a name or path, a model object, a callable
    ``texts -> array``, or a ready ``Encoder``. Every text of every task goes into one
    ``TextPool`` and is encoded once. Results go to
    ``{output_folder}/{org}__{model}/{revision}/{Task}.json`` (mteb's layout and schema; tasks
    mteb does not have in ``{revision}/fastmteb-only/``; ``{revision}`` is
    ``fp-<model fingerprint>`` for a model without a revision, and gets a ``-fp-<...>`` suffix
    when the folder already holds results of other weights under the same name and revision).
    A task with a complete file there is read back instead of evaluated, unless ``overwrite``, or
    unless that file was scored by other weights, another dtype / spill_dtype / prompts, or other
    data (hub revision, or the hashes of the local files): then it is evaluated again, the reason
    is logged and listed in ``RunResults.reevaluated``. ``device``, ``batch_tokens`` and
    ``max_embedding_memory`` are recorded but do not block resume.

    ``cache_dir``: verified on-disk embedding cache, written shard by shard while encoding, so a
    rerun (also after Ctrl-C or a crash) encodes only what is not there. A plain callable or an
    mteb-protocol model is cached only under a fingerprint its user gives
    (``fastmteb.encoding.CallableEncoder(fn, fingerprint=...)``, ``ProtocolEncoder(model,
    fingerprint=...)`` or a ``fastmteb_fingerprint`` attribute): without one nothing is cached and
    a ``CacheDisabledWarning`` says so (fastmteb cannot see such a model's weights).

    ``evaluation_time`` of a task = its loading + preparing + scoring time + its share of the shared
    encoding time (share = tokens of the texts it requested, as encoded, i.e. cut at the model's
    max length / those of all tasks; characters for a model without a tokenizer; a text two tasks
    request counts for both, a cache hit for neither).

    A task that fails is recorded in ``RunResults.failures`` and writes nothing; the other tasks
    go on. With ``raise_error`` (default) a ``TaskFailedError`` is raised at the end if any failed.
    Unknown task names, and a ``data_dir``/``output_folder``/``cache_dir``/``device``/model path
    that cannot work (``fastmteb.inputs.InputError``), raise before any work starts.

    ``max_embedding_memory`` (bytes, or a string such as ``"2GB"``/``"512MiB"``; None = no limit):
    past it the embeddings are written to a spill file in ``{cache_dir}/.fastmteb-spill`` (else
    ``{output_folder}/.fastmteb-spill``), retrieval streams its corpus from there block by block
    and the other requests are read one task at a time; the file is deleted at the end. Scores
    are the same as in memory. ``spill_dtype="float16"`` halves the file and the disk reads; the
    spilled vectors are then rounded to float16, so scores may move in their last digits (not for
    parity runs).

    ``distributed`` (None = auto): under ``torchrun`` (``WORLD_SIZE > 1``) every rank loads the
    tasks, encodes its share of the text pool and searches its share of each retrieval corpus;
    rank 0 writes the files and every rank returns its ``RunResults``. Call from every rank.
    ``True`` also shards over a process group the caller initialised; ``False``: this process
    alone. ``dist_backend``: "nccl" (default when encoding on CUDA) or "gloo" (CPU).

    ``collaborators``: the task registry, data loader, model loader and text pool the run uses
    (default: fastmteb's own, ``Collaborators.default()``).

    ``resident`` (None = auto: on for a torch model on CUDA whose vectors fit in a quarter of the
    free device memory, unless they spilled past ``max_embedding_memory``): the embeddings stay a
    float32 tensor on the encoding device from the forward pass to the scoring kernels (Triton
    top-k, torch correlations and threshold sweeps); only what sklearn fits (classification,
    clustering, regression) and the top-k lists go to the CPU. ``True`` forces it (on the CPU
    too), ``False`` keeps the numpy path.
    """
    from fastmteb.encoding.base import is_encoder

    if collaborators is None:
        collaborators = Collaborators.default()
    tasks, benchmark, extras = split_extras(tasks, benchmark)  # aggregates, mteb-evaluator fallback
    requested = resolve_tasks(tasks, benchmark, collaborators=collaborators)
    metas = _local_selection(requested, data_dir, collaborators)
    partial = _partial_local_data(requested, metas)
    if not metas and not extras:
        raise ValueError("no tasks to evaluate: pass tasks=[names] or benchmark=NAME")
    # paths, device and model path that cannot work fail now, not after the model has loaded or
    # the whole run has finished (nothing is loaded or written before this)
    check_run_inputs(
        model=model,
        data_dir=data_dir,
        output_folder=output_folder,
        cache_dir=cache_dir,
        device=None if is_encoder(model) else device,  # a ready encoder keeps its own device
    )
    spill = _spill_settings(max_embedding_memory, cache_dir, output_folder, spill_dtype)
    dist = distributed_context(model, device, distributed, dist_backend)
    progress = progress and dist.is_main
    encoder = (
        model
        if is_encoder(model)
        else collaborators.load_encoder(
            model,
            device=dist.encoder_device,
            dtype=dtype,
            prompts=prompts,
            trust_remote_code=trust_remote_code,
            batch_tokens=batch_tokens,
        )
    )
    clock = Clock()  # phases are timed from here: loading the model is not part of any task
    model_fp, fingerprint = provenance.encoder_fingerprints(encoder)
    settings = provenance.encoder_settings(
        encoder, device=device, batch_tokens=batch_tokens, spill=spill
    )
    record = {
        "version": provenance.version(),
        "model": {
            "name": encoder.name,
            "revision": encoder.revision,
            "model_fingerprint": model_fp,
            "fingerprint": fingerprint,
        },
        "settings": settings,
    }
    out_dir = model_result_dir(
        output_folder,
        encoder.name,
        provenance.revision_folder_name(encoder.revision, model_fp),
    )
    if dist.is_main:
        out_dir = folder_of_model(out_dir, model_fp)
    if dist.is_distributed:
        out_dir = dist.broadcast_object(out_dir)

    def reuse_problem(meta: TaskMetadata, result: TaskResult) -> str | None:
        return provenance.reuse_problem(
            result.provenance,
            model_fingerprint=model_fp,
            fingerprint=fingerprint,
            settings=settings,
            meta=meta,
            data_dir=data_dir,
        )

    outcome = Outcome()
    pending = plan(metas, out_dir, overwrite, outcome, dist, reuse_problem)
    if pending:
        run = PreparedRun.load(
            encoder,
            pending,
            collaborators=collaborators,
            data_dir=data_dir,
            cache_dir=cache_dir,
            progress=progress,
            clock=clock,
            spill=spill,
            fingerprint=fingerprint or None,  # hashed once above: the pool's cache key too
            communicator=dist if dist.is_distributed else None,
        )
        agree_on_loaded_tasks(run, dist)
        outcome.failures.extend(run.failures)
        if run.tasks:
            try:
                run.embed(resident=resident)
                run.release_pool()
                settings["resident"] = run.embeddings_device  # recorded only, as device
                run_settings = {
                    "device": device,
                    "dtype": dtype,
                    "batch_tokens": batch_tokens,
                    "encoder_fingerprint": fingerprint,
                    "model_fingerprint": model_fp,
                }
                if partial:  # tasks evaluated on the subsets/splits data_dir holds
                    run_settings["partial_local_data"] = partial
                if spill:
                    run_settings["max_embedding_memory"] = spill["max_embedding_memory"]
                    run_settings["spill_dtype"] = spill["spill_dtype"]
                write_results(
                    run, encoder, out_dir, run_settings, progress, outcome, dist, record
                )
            finally:
                if _is_spilled(run.embeddings):
                    run.embeddings.close()  # deletes the spill file now, not when GC finds it

    finish_extras(
        extras, encoder, out_dir, outcome,
        overwrite=overwrite, cache_dir=cache_dir, progress=progress, dist=dist,
        fingerprint=fingerprint or None,
    )
    dist.barrier()
    names = [*(meta.name for meta in metas), *extras.names()]
    order = {name: i for i, name in enumerate(names)}
    run_results = RunResults(
        (outcome.results[name] for name in names if name in outcome.results),
        failures=sorted(outcome.failures, key=lambda f: order[f.task_name]),
        skipped=outcome.skipped,
        output_dir=out_dir,
        reevaluated=outcome.reevaluated,
    )
    if dist.is_distributed:  # every rank returns what rank 0 wrote
        run_results = from_main_rank(dist, run_results)
    if run_results.failures and raise_error:
        error = TaskFailedError(run_results)
        if len(run_results.failures) == 1 and run_results.failures[0].exception is not None:
            raise error from run_results.failures[0].exception
        raise error
    return run_results


def _spill_settings(
    max_embedding_memory: int | str | None,
    cache_dir: str | os.PathLike[str] | None,
    output_folder: str | os.PathLike[str],
    spill_dtype: str = "float32",
) -> dict[str, Any]:
    """``TextPool`` keywords for a memory limit (validated now, before any work); {} for none."""
    from fastmteb.encoding.store import parse_memory_size
    from fastmteb.encoding.store import spill_dtype as checked_spill_dtype

    limit = parse_memory_size(max_embedding_memory)
    dtype = checked_spill_dtype(spill_dtype).name
    if limit is None:
        if dtype != "float32":
            raise ValueError(
                f"spill_dtype={spill_dtype!r} only applies past a memory limit: also pass "
                "max_embedding_memory (e.g. '2GB'; CLI: --max-embedding-memory 2GB), or drop spill_dtype"
            )
        return {}
    folder = Path(cache_dir if cache_dir is not None else output_folder) / ".fastmteb-spill"
    return {"max_embedding_memory": limit, "spill_dir": folder, "spill_dtype": dtype}
