"""Timed encodes of every configuration (engine x dtype x batch token budget x length bucket)
and the report they make (see ``fastmteb.benchmark`` for the formulas)."""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from fastmteb.benchmark.batches import BatchRecord, record_batches
from fastmteb.benchmark.memory import MemoryReading, peak_memory
from fastmteb.benchmark.settings import (
    ALL_BUCKET,
    DEFAULT_BATCH_TOKENS,
    DEFAULT_BUCKET_EDGES,
    DEFAULT_DTYPES,
    DEFAULT_LIMIT,
    DEFAULT_ST_BATCH_SIZE,
    ENGINE_FASTMTEB,
    ENGINE_ST,
    BenchConfigError,
)
from fastmteb.benchmark.texts import bucket_names, bucket_of, load_bench_texts, parse_bucket_edges, sample_positions
from fastmteb.encoding import EncodeContext, EncodeStats, load_encoder
from fastmteb.encoding.models import DTYPES, TorchEncoder
from fastmteb.inputs import check_run_inputs


def _spread(values: Sequence[float]) -> dict[str, float]:
    """median, min, max, stdev (0 for one value) and ``rel_spread = (max - min) / median``."""
    median = statistics.median(values)
    return {
        "median": median,
        "min": min(values),
        "max": max(values),
        "stdev": statistics.stdev(values) if len(values) > 1 else 0.0,
        "rel_spread": (max(values) - min(values)) / median if median else 0.0,
    }


def _percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if len(values) else float("nan")


@dataclass
class RunMeasurement:
    """One timed encode: wall seconds, the batches it ran, and (fastmteb only) its EncodeStats."""

    seconds: float
    batches: list[BatchRecord]
    stats: EncodeStats | None = None
    tokenize_seconds: float | None = None


@dataclass
class ConfigResult:
    """Medians and spread of one configuration over its timed repeats (see the module docstring)."""

    engine: str
    dtype: str
    bucket: str
    batch_tokens: int | None
    batch_size: int | None
    texts: int
    tokens: int
    padded_tokens: int
    batches: int
    seconds: list[float]
    texts_per_s: dict[str, float]
    tokens_per_s: dict[str, float]
    batch_latency_ms: dict[str, float]
    tokenize_seconds: float | None
    oom_retries: int
    memory: dict[str, Any]
    batch_shapes: list[list[int]] = field(default_factory=list)

    @property
    def padding_ratio(self) -> float:
        return self.padded_tokens / self.tokens if self.tokens else float("nan")

    @property
    def peak_memory_bytes(self) -> int | None:
        """The headline figure: CUDA peak allocated on a GPU, peak RSS on the CPU."""
        return self.memory.get("cuda_peak") if self.memory.get("cuda_peak") is not None else self.memory.get("rss_peak")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["padding_ratio"] = self.padding_ratio
        out["padding_share"] = 1.0 - self.tokens / self.padded_tokens if self.padded_tokens else 0.0
        out["peak_memory_bytes"] = self.peak_memory_bytes
        return out


def _summarise(engine: str, dtype: str, bucket: str, batch_tokens: int | None, batch_size: int | None,
               n_texts: int, runs: list[RunMeasurement], memory: MemoryReading) -> ConfigResult:
    first = runs[0]
    for run in runs[1:]:  # every repeat encodes the same texts the same way
        if [(b.rows, b.width, b.tokens) for b in run.batches] != [(b.rows, b.width, b.tokens) for b in first.batches]:
            raise RuntimeError(f"{engine} {dtype} {bucket}: repeats ran different batches; the benchmark is not deterministic")
    tokens = sum(b.tokens for b in first.batches)
    seconds = [r.seconds for r in runs]
    latencies = [b.seconds * 1e3 for r in runs for b in r.batches]
    tokenize = [r.tokenize_seconds for r in runs if r.tokenize_seconds is not None]
    return ConfigResult(
        engine=engine,
        dtype=dtype,
        bucket=bucket,
        batch_tokens=batch_tokens,
        batch_size=batch_size,
        texts=n_texts,
        tokens=tokens,
        padded_tokens=sum(b.rows * b.width for b in first.batches),
        batches=len(first.batches),
        seconds=seconds,
        texts_per_s=_spread([n_texts / s for s in seconds]),
        tokens_per_s=_spread([tokens / s for s in seconds]),
        batch_latency_ms={"median": _percentile(latencies, 50), "p90": _percentile(latencies, 90),
                          "max": max(latencies) if latencies else float("nan")},
        tokenize_seconds=statistics.median(tokenize) if tokenize else None,
        oom_retries=sum(r.stats.oom_retries for r in runs if r.stats is not None),
        memory=memory.to_dict(),
        batch_shapes=[[b.rows, b.width] for b in first.batches],
    )


def _autocast(device: torch.device, dtype: str) -> contextlib.AbstractContextManager:
    if dtype == "float32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=getattr(torch, dtype))


def _measure(run_once: Callable[[], RunMeasurement], warmup: int, repeats: int,
             device: torch.device) -> tuple[list[RunMeasurement], MemoryReading]:
    for _ in range(warmup):
        run_once()
    with peak_memory(device) as memory:
        runs = [run_once() for _ in range(repeats)]
    return runs, memory


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _fastmteb_run(encoder: TorchEncoder, texts: list[str], ctx: EncodeContext) -> RunMeasurement:
    device = encoder.device
    with record_batches(encoder.module, device) as batches:
        _sync(device)
        started = time.perf_counter()
        token_ids = encoder.tokenize(texts, ctx)
        tokenized = time.perf_counter()
        stats = EncodeStats()
        encoder.encode_tokenized(token_ids, ctx, stats=stats)
        _sync(device)
        finished = time.perf_counter()
    return RunMeasurement(finished - started, list(batches), stats, tokenized - started)


def _sentence_transformers_run(model: Any, texts: list[str], prompt: str | None, batch_size: int,
                               device: torch.device, dtype: str) -> RunMeasurement:
    with record_batches(model, device) as batches, _autocast(device, dtype):
        _sync(device)
        started = time.perf_counter()
        model.encode(texts, prompt=prompt, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False)
        _sync(device)
        finished = time.perf_counter()
    return RunMeasurement(finished - started, list(batches))


def _as_torch_encoder(model: Any, device: str | None) -> TorchEncoder:
    encoder = load_encoder(model, device=device, dtype="float32")
    if not isinstance(encoder, TorchEncoder):
        raise BenchConfigError(
            f"fastmteb bench needs a torch model it can tokenize and run itself (a sentence-transformers or "
            f"transformers model); got {type(encoder).__name__} for {model!r}"
        )
    return encoder


def contention_note(machine: dict[str, Any]) -> str | None:
    """A warning when the 1-minute load average at the start exceeded the core count, unless the
    benchmark ran at realtime priority (``chrt -f``: the other processes were held off the CPU)."""
    load, cores = machine.get("load_average"), machine.get("cpu_count")
    if machine.get("realtime_priority"):
        return None
    if load and cores and load[0] > cores:
        return f"BUSY MACHINE (load {load[0]:.1f} on {cores} cores): figures not representative"
    return None


def _machine_info(device: torch.device) -> dict[str, Any]:
    info: dict[str, Any] = {
        "device": str(device),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "realtime_priority": os.sched_getscheduler(0) in (os.SCHED_FIFO, os.SCHED_RR),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def run_benchmark(
    model: Any = None,
    *,
    tasks: Sequence[str] | None = None,
    texts: Sequence[str] | None = None,
    data_dir: str | Path | None = None,
    dtypes: Sequence[str] = DEFAULT_DTYPES,
    batch_tokens: Sequence[int] = DEFAULT_BATCH_TOKENS,
    bucket_edges: Sequence[int] = DEFAULT_BUCKET_EDGES,
    limit: int | None = DEFAULT_LIMIT,
    repeats: int = 3,
    warmup: int = 1,
    device: str | None = None,
    vs_sentence_transformers: bool = False,
    st_batch_size: int = DEFAULT_ST_BATCH_SIZE,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Measure ``model``'s encoding over dtypes × budgets × length buckets; returns the report dict
    written as ``bench.json`` (see the module docstring for every figure's definition).

    ``texts`` (if given) replaces the task data; otherwise ``tasks`` (default SciFact + SICK-R,
    bundled) are loaded with ``load_raw(..., data_dir=data_dir)``. ``limit`` caps the texts of each
    bucket (None: all). The configurations run in the order dtype → bucket → budget.
    """
    for dtype in dtypes:
        if dtype not in DTYPES or dtype == "auto":
            raise BenchConfigError(f"--dtypes: {dtype!r} is not a dtype; use some of {DTYPES[1:]}")
    if not dtypes or not batch_tokens:
        raise BenchConfigError("--dtypes and --batch-tokens each need at least one value")
    if any(b < 1 for b in batch_tokens):
        raise BenchConfigError(f"--batch-tokens {list(batch_tokens)}: every budget must be >= 1 token")
    if repeats < 1 or warmup < 0:
        raise BenchConfigError(f"--repeats must be >= 1 and --warmup >= 0 (got {repeats}, {warmup})")
    if limit is not None and limit < 1:
        raise BenchConfigError(f"--limit must be >= 1 (got {limit})")
    if st_batch_size < 1:
        raise BenchConfigError(f"--st-batch-size must be >= 1 (got {st_batch_size})")
    check_run_inputs(model=model, data_dir=data_dir, device=device)  # before the model loads
    say = progress or (lambda _message: None)
    edges = parse_bucket_edges(bucket_edges)

    base = _as_torch_encoder(model, device)
    torch_device = base.device
    machine = _machine_info(torch_device)  # load average before the benchmark's own work
    if vs_sentence_transformers and base.sentence_transformer is None:
        raise BenchConfigError(
            f"--vs-sentence-transformers: {base.name} is not a sentence-transformers model (no modules.json); "
            "drop the flag or pass a sentence-transformers model"
        )
    source: dict[str, Any]
    ctx = EncodeContext(task_name="fastmteb-bench", task_type="STS")
    if texts is not None:
        pool, source = list(dict.fromkeys(texts)), {"kind": "texts"}
    else:
        say("loading texts")
        pool, task_names = load_bench_texts(tasks, data_dir=data_dir)
        source = {"kind": "tasks", "tasks": task_names, "data_dir": str(data_dir) if data_dir else "bundled"}
        if len(task_names) == 1:  # the model's prompt for this task, as a run would resolve it
            from fastmteb.tasks.registry import get_task

            ctx = EncodeContext(task_name=task_names[0], task_type=get_task(task_names[0]).type)
    prompt = base.resolved_prompt(ctx)

    say(f"tokenizing {len(pool)} texts for the length buckets")
    lengths = np.fromiter((len(ids) for ids in base.tokenize(pool, ctx)), dtype=np.int64, count=len(pool))
    rng = np.random.default_rng(seed)
    assignment = bucket_of(lengths, edges)
    bounds = [0, *edges, None]
    candidates = {ALL_BUCKET: (np.arange(len(pool)), [0, None])}
    for number, name in enumerate(bucket_names(edges) if edges else []):
        candidates[name] = (np.flatnonzero(assignment == number), bounds[number:number + 2])
    buckets: dict[str, np.ndarray] = {}
    bucket_info: dict[str, dict[str, Any]] = {}
    for name, (available, token_range) in candidates.items():
        chosen = sample_positions(available, limit, rng)
        if not len(chosen):
            continue
        buckets[name] = chosen
        bucket_info[name] = {"texts": int(len(chosen)), "available": int(len(available)),
                             "token_range": token_range, "min_tokens": int(lengths[chosen].min()),
                             "mean_tokens": float(lengths[chosen].mean()), "max_tokens": int(lengths[chosen].max())}

    results: list[ConfigResult] = []
    for dtype in dtypes:
        encoder = load_encoder(base.module, device=str(torch_device), dtype=dtype)
        for bucket, positions in buckets.items():
            bucket_texts = [pool[i] for i in positions]
            for budget in batch_tokens:
                say(f"fastmteb {dtype} {bucket} budget={budget}")
                encoder.batch_tokens = int(budget)
                runs, memory = _measure(lambda: _fastmteb_run(encoder, bucket_texts, ctx), warmup, repeats,
                                        torch_device)
                results.append(_summarise(ENGINE_FASTMTEB, dtype, bucket, int(budget), None, len(bucket_texts),
                                          runs, memory))
            if vs_sentence_transformers:
                say(f"sentence-transformers {dtype} {bucket} batch_size={st_batch_size}")
                runs, memory = _measure(
                    lambda: _sentence_transformers_run(base.sentence_transformer, bucket_texts, prompt or None,
                                                       st_batch_size, torch_device, dtype),
                    warmup, repeats, torch_device,
                )
                results.append(_summarise(ENGINE_ST, dtype, bucket, None, st_batch_size, len(bucket_texts),
                                          runs, memory))

    from fastmteb.version import __version__

    return {
        "fastmteb_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine,
        "model": {"name": base.name, "revision": base.revision, "max_length": base.max_length,
                  "prompt": prompt},
        "settings": {"dtypes": list(dtypes), "batch_tokens": [int(b) for b in batch_tokens],
                     "bucket_edges": list(edges), "limit": limit, "repeats": repeats, "warmup": warmup,
                     "seed": seed, "vs_sentence_transformers": vs_sentence_transformers,
                     "st_batch_size": st_batch_size},
        "data": {**source, "unique_texts": len(pool), "buckets": bucket_info},
        "definitions": {
            "seconds": "wall time of one whole encode (tokenize + pad + forward + copy back), CUDA-synchronised",
            "tokens": "real (non-padding) tokens incl. special tokens, after truncation at max_length",
            "padding_ratio": "padded_tokens / tokens, padded_tokens = sum over batches of rows x width",
            "batch_latency_ms": "wall time of one model forward pass (torch forward hooks, CUDA-synchronised)",
            "memory": "cuda_peak: torch.cuda.max_memory_allocated over the timed repeats (after "
                      "reset_peak_memory_stats); rss_peak: peak resident set size of this process over the "
                      "timed repeats (rss_method vmhwm-reset: Linux VmHWM reset via /proc/self/clear_refs; "
                      "sampled-2ms: RSS polled every 2 ms); deltas are over the value at the start of the repeats",
        },
        "results": [r.to_dict() for r in results],
    }
