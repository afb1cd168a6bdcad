"""``fastmteb bench``: encoding throughput and peak memory of one model on real texts.

For every configuration (engine × dtype × batch token budget × text-length bucket) the benchmark
runs ``warmup`` untimed encodes, then ``repeats`` timed ones, and reports medians and spread:

* ``texts/s = n_texts / seconds`` and ``tokens/s = tokens / seconds``, where ``seconds`` is the wall
  time of one whole encode (tokenization + padding + forward passes + copy back; CUDA-synchronised)
  and ``tokens = sum_i len(ids_i)`` counts the real (non-padding) tokens the model saw, special
  tokens included, after truncation at the model's ``max_length``;
* ``padding_ratio = padded_tokens / tokens`` with ``padded_tokens = sum_b rows_b × width_b`` over
  the batches actually run (1.0 = no padding), and ``padding_share = 1 - tokens / padded_tokens``;
* ``batch latency``: wall time of each forward pass of the model (CUDA-synchronised before and
  after), read with torch forward hooks on the model, so fastmteb and sentence-transformers are
  timed at the same place;
* peak memory, see ``PeakMemory``: on CUDA ``torch.cuda.max_memory_allocated`` after
  ``reset_peak_memory_stats``; on the CPU the process's peak resident set size during the timed
  repeats, read from Linux's ``VmHWM`` after resetting it through ``/proc/self/clear_refs``.

Texts come from real data: a task's texts (exactly those its type asks to embed) or, by default, a
mix of the bundled SciFact (queries, title + abstract documents) and SICK-R sentences. They are
deduplicated (the text pool encodes a string once), bucketed by token length with the model's own
tokenizer, and each bucket (plus "all", the whole mix) is sampled to at most ``limit`` texts.

Outputs: a rich table, ``bench.json``, ``throughput.png`` (texts/s and tokens/s vs budget, one line
per dtype) and ``memory.png`` (peak memory vs budget). With ``vs_sentence_transformers`` the same
texts also go through ``SentenceTransformer.encode`` (its own batch size, same autocast dtype).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import ctypes.util
import gc
import json
import os
import platform
import re
import statistics
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch

from fastmteb.encoding import EncodeContext, EncodeStats, load_encoder
from fastmteb.encoding.models import DTYPES, TorchEncoder
from fastmteb.inputs import check_run_inputs

DEFAULT_TASKS = ("SciFact", "SICK-R")
DEFAULT_DTYPES = ("float32", "bfloat16")
DEFAULT_BATCH_TOKENS = (2048, 4096, 8192, 16384)
DEFAULT_BUCKET_EDGES = (32, 128)
DEFAULT_LIMIT = 1000
DEFAULT_ST_BATCH_SIZE = 32  # SentenceTransformer.encode's default
ALL_BUCKET = "all"
ENGINE_FASTMTEB = "fastmteb"
ENGINE_ST = "sentence-transformers"


class BenchConfigError(ValueError):
    """A benchmark option that cannot be used; the message names the option and the fix."""


# ---------------------------------------------------------------------------------------------
# Peak memory
# ---------------------------------------------------------------------------------------------

_PROC_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def proc_status_kib(field_name: str) -> int | None:
    """``field_name`` (e.g. "VmRSS", "VmHWM") of /proc/self/status in KiB; None where absent."""
    try:
        match = re.search(rf"^{field_name}:\s+(\d+)\s+kB", _PROC_STATUS.read_text(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) if match else None


def reset_peak_rss() -> bool:
    """Reset Linux's peak-RSS counter (VmHWM) to the current RSS; False where not possible."""
    try:
        with open(_CLEAR_REFS, "w") as handle:
            handle.write("5")
    except OSError:
        return False
    return proc_status_kib("VmHWM") is not None


def _current_rss_bytes() -> int | None:
    kib = proc_status_kib("VmRSS")
    if kib is not None:
        return kib * 1024
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except Exception:  # noqa: BLE001 - psutil absent or unsupported platform
        return None


def _release_freed_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc), so the next
    configuration's RSS baseline does not carry the previous one's freed buffers."""
    gc.collect()
    libc_name = ctypes.util.find_library("c")
    if libc_name:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(libc_name).malloc_trim(0)
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


class _RssSampler(threading.Thread):
    """Fallback where VmHWM cannot be reset: poll the RSS every ``interval_s`` and keep the max
    (misses spikes shorter than the interval)."""

    def __init__(self, interval_s: float = 0.002) -> None:
        super().__init__(daemon=True, name="fastmteb-rss-sampler")
        self.interval_s = interval_s
        self.peak = _current_rss_bytes() or 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.peak = max(self.peak, _current_rss_bytes() or 0)
            self._stop_event.wait(self.interval_s)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        self.peak = max(self.peak, _current_rss_bytes() or 0)
        return self.peak


@dataclass
class MemoryReading:
    """Peak memory of one measured region (bytes; None where not measurable).

    ``rss_peak``: the process's peak resident set size in the region (model weights, Python and
    libraries included); ``rss_delta = rss_peak - rss_start`` is what the region added on top of
    what was resident when it began (a lower bound on its working memory, since pages freed earlier
    and still held by the allocator are reused). ``cuda_peak``: ``max_memory_allocated`` in the
    region; ``cuda_delta = cuda_peak - memory_allocated at start`` (the activations, the weights
    excluded).
    """

    rss_method: str
    rss_start: int | None = None
    rss_peak: int | None = None
    cuda_start: int | None = None
    cuda_peak: int | None = None

    @property
    def rss_delta(self) -> int | None:
        return None if self.rss_peak is None or self.rss_start is None else self.rss_peak - self.rss_start

    @property
    def cuda_delta(self) -> int | None:
        return None if self.cuda_peak is None or self.cuda_start is None else self.cuda_peak - self.cuda_start

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rss_delta": self.rss_delta, "cuda_delta": self.cuda_delta}


@contextlib.contextmanager
def peak_memory(device: torch.device) -> Iterator[MemoryReading]:
    """Measure the peak memory of the ``with`` body (see ``MemoryReading``).

    CPU: Linux ``VmHWM`` reset via ``/proc/self/clear_refs`` (exact, kernel-tracked) when the
    kernel allows it; else a 2 ms RSS sampling thread (``rss_method`` says which). CUDA: the
    caching allocator's ``max_memory_allocated`` after ``reset_peak_memory_stats``.
    """
    _release_freed_memory()
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    exact = reset_peak_rss()
    reading = MemoryReading(rss_method="vmhwm-reset" if exact else "sampled-2ms")
    reading.rss_start = _current_rss_bytes()
    reading.cuda_start = torch.cuda.memory_allocated(device) if cuda else None
    sampler = None if exact else _RssSampler()
    if sampler is not None:
        sampler.start()
    try:
        yield reading
    finally:
        if cuda:
            torch.cuda.synchronize(device)
            reading.cuda_peak = torch.cuda.max_memory_allocated(device)
        if sampler is not None:
            reading.rss_peak = sampler.stop() if reading.rss_start is not None else None
        else:
            kib = proc_status_kib("VmHWM")
            reading.rss_peak = kib * 1024 if kib is not None else None


# ---------------------------------------------------------------------------------------------
# Per-batch records (forward hooks: the same measuring point for both engines)
# ---------------------------------------------------------------------------------------------


@dataclass
class BatchRecord:
    """One forward pass: ``rows × width`` padded positions, ``tokens`` real ones, its wall time."""

    rows: int
    width: int
    tokens: int
    seconds: float


def _batch_features(args: tuple, kwargs: dict) -> Mapping | None:
    """The batch's features: keyword arguments (transformers) or the first positional mapping
    (sentence-transformers passes a dict or a ``BatchEncoding``)."""
    if "input_ids" in kwargs:
        return kwargs
    if args and isinstance(args[0], Mapping) and "input_ids" in args[0]:
        return args[0]
    return None


@contextlib.contextmanager
def record_batches(module: torch.nn.Module, device: torch.device) -> Iterator[list[BatchRecord]]:
    """Record every top-level forward call of ``module`` in the ``with`` body as a ``BatchRecord``."""
    records: list[BatchRecord] = []
    pending: list[tuple[int, int, int, float]] = []
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda *_: None)

    def before(_module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        features = _batch_features(args, kwargs)
        if features is None:
            return
        mask = features.get("attention_mask")
        ids = features["input_ids"]
        rows, width = int(ids.shape[0]), int(ids.shape[1])
        tokens = int(mask.sum().item()) if mask is not None else rows * width
        sync(device)
        pending.append((rows, width, tokens, time.perf_counter()))

    def after(_module: torch.nn.Module, args: tuple, kwargs: dict, _output: Any) -> None:
        if _batch_features(args, kwargs) is None or not pending:
            return
        sync(device)
        rows, width, tokens, started = pending.pop()
        records.append(BatchRecord(rows, width, tokens, time.perf_counter() - started))

    handles = [
        module.register_forward_pre_hook(before, with_kwargs=True),
        module.register_forward_hook(after, with_kwargs=True),
    ]
    try:
        yield records
    finally:
        for handle in handles:
            handle.remove()


# ---------------------------------------------------------------------------------------------
# Texts
# ---------------------------------------------------------------------------------------------


def task_texts(task_name: str, *, data_dir: str | Path | None = None) -> list[str]:
    """Every text task ``task_name`` asks to embed (all its eval splits and subsets), as its task
    type assembles them (e.g. retrieval documents are "title text"), in first-seen order, unique."""
    from fastmteb.data import load_raw
    from fastmteb.tasks.registry import get_task
    from fastmteb.tasks.types import get_task_type

    meta = get_task(task_name)
    task_type = get_task_type(meta.type)
    seen: dict[str, None] = {}
    for split in meta.eval_splits:
        for subset in meta.hf_subsets:
            raw = load_raw(meta, subset, split, data_dir=data_dir)
            prepared = task_type.prepare(meta, raw, split, subset)
            for request in task_type.requests(prepared).values():
                seen.update(dict.fromkeys(request.texts))
    return list(seen)


def load_bench_texts(
    tasks: Sequence[str] | None = None, *, data_dir: str | Path | None = None
) -> tuple[list[str], list[str]]:
    """(unique texts, task names they came from); default tasks: bundled SciFact + SICK-R."""
    names = list(tasks) if tasks else list(DEFAULT_TASKS)
    seen: dict[str, None] = {}
    for name in names:
        seen.update(dict.fromkeys(task_texts(name, data_dir=data_dir)))
    if not seen:
        raise BenchConfigError(f"tasks {names} gave no texts to encode; pick a task with data (--task NAME)")
    return list(seen), names


def parse_bucket_edges(spec: str | Sequence[int] | None) -> tuple[int, ...]:
    """Token-length bucket edges from "32,128" (or "none" / "" for no buckets); strictly increasing."""
    if spec is None:
        return ()
    if isinstance(spec, str):
        if spec.strip().lower() in ("", "none"):
            return ()
        try:
            spec = [int(part) for part in spec.split(",") if part.strip()]
        except ValueError:
            raise BenchConfigError(
                f"--length-buckets {spec!r}: expected comma-separated token counts such as 32,128 (or none)"
            ) from None
    edges = tuple(int(e) for e in spec)
    if any(e < 1 for e in edges) or any(b <= a for a, b in zip(edges, edges[1:])):
        raise BenchConfigError(
            f"--length-buckets {list(edges)}: edges must be positive and strictly increasing, e.g. 32,128"
        )
    return edges


def bucket_names(edges: Sequence[int]) -> list[str]:
    """Names of the ``len(edges) + 1`` buckets: short/medium/long for two edges, short/long for one,
    else ``"lo-hi"`` token ranges (``hi`` exclusive)."""
    if len(edges) == 2:
        return ["short", "medium", "long"]
    if len(edges) == 1:
        return ["short", "long"]
    bounds = [0, *edges, None]
    return [f"{lo}-{hi}" if hi is not None else f">={lo}" for lo, hi in zip(bounds, bounds[1:])]


def bucket_of(lengths: np.ndarray, edges: Sequence[int]) -> np.ndarray:
    """Bucket number of each length: ``b`` such that ``edges[b-1] <= length < edges[b]``."""
    return np.searchsorted(np.asarray(edges, dtype=np.int64), np.asarray(lengths, dtype=np.int64), side="right")


def sample_positions(candidates: np.ndarray, limit: int | None, rng: np.random.Generator) -> np.ndarray:
    """At most ``limit`` of ``candidates`` drawn without replacement, kept in input order."""
    if limit is None or len(candidates) <= limit:
        return np.asarray(candidates, dtype=np.int64)
    return np.sort(rng.choice(candidates, size=limit, replace=False)).astype(np.int64)


# ---------------------------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# Output: table, JSON, plots
# ---------------------------------------------------------------------------------------------


def _mib(value: int | None) -> str:
    return "-" if value is None else f"{value / 2**20:,.0f}"


_SHORT_DTYPE = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}


def bench_table(report: dict[str, Any]) -> Any:
    """A rich ``Table`` with one row per configuration."""
    from rich.table import Table

    model = report["model"]
    machine = report["machine"]
    cuda = machine["device"].startswith("cuda")
    table = Table(title=f"fastmteb bench: {model['name']} on {machine.get('gpu', machine['device'])}, "
                        f"median of {report['settings']['repeats']} repeats (± half range)")
    headers = ("engine", "dtype", "bucket", "batch", "texts", "tokens", "pad×", "batches", "texts/s", "±",
               "ktok/s", "batch ms p50/p90", "CUDA peak MiB" if cuda else "peak RSS MiB", "Δ MiB")
    for header in headers:
        table.add_column(header, justify="left" if header in ("engine", "dtype", "bucket") else "right")
    for row in report["results"]:
        batch = f"{row['batch_tokens']} tok" if row["batch_tokens"] else f"{row['batch_size']} txt"
        memory = row["memory"]
        delta = memory["cuda_delta"] if cuda else memory["rss_delta"]
        table.add_row(
            "ST" if row["engine"] == ENGINE_ST else row["engine"], _SHORT_DTYPE.get(row["dtype"], row["dtype"]),
            row["bucket"], batch, f"{row['texts']:,}", f"{row['tokens']:,}", f"{row['padding_ratio']:.2f}",
            str(row["batches"]), f"{row['texts_per_s']['median']:,.1f}",
            f"{row['texts_per_s']['rel_spread'] / 2:.0%}", f"{row['tokens_per_s']['median'] / 1e3:,.1f}",
            f"{row['batch_latency_ms']['median']:.1f}/{row['batch_latency_ms']['p90']:.1f}",
            _mib(row["peak_memory_bytes"]), _mib(delta),
        )
    notes = ["ST = SentenceTransformer.encode (batches by count)"] if any(
        r["engine"] == ENGINE_ST for r in report["results"]) else []
    notes += [note] if (note := contention_note(machine)) else []
    table.caption = "; ".join(notes) or None
    return table


def _rows(report: dict[str, Any], engine: str, dtype: str, bucket: str) -> list[dict[str, Any]]:
    rows = [r for r in report["results"] if r["engine"] == engine and r["dtype"] == dtype and r["bucket"] == bucket]
    return sorted(rows, key=lambda r: r["batch_tokens"] or 0)


def write_plots(report: dict[str, Any], output_dir: str | Path) -> list[Path]:
    """``throughput.png`` (texts/s and tokens/s vs batch token budget, a line per dtype, one column
    per length bucket, error bars = min..max over repeats) and ``memory.png`` (peak memory vs budget).
    sentence-transformers, which batches by count, is a dashed horizontal line in its dtype's colour."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    buckets = list(report["data"]["buckets"])
    dtypes = report["settings"]["dtypes"]
    colours = {d: plt.get_cmap("tab10")(i) for i, d in enumerate(dtypes)}
    cuda = report["machine"]["device"].startswith("cuda")
    where = report["machine"].get("gpu") or f"CPU ({report['machine']['cpu_count']} cores)"
    title = f"{report['model']['name']} — {where}"
    budgets = report["settings"]["batch_tokens"]
    busy = f" — {contention_note(report['machine'])}" if contention_note(report["machine"]) else ""

    def panel(ax: Any, metric: Callable[[dict], tuple[float, float, float]], bucket: str, ylabel: str) -> None:
        for dtype in dtypes:
            rows = _rows(report, ENGINE_FASTMTEB, dtype, bucket)
            if rows:
                mid, low, high = zip(*(metric(r) for r in rows))
                ax.errorbar([r["batch_tokens"] for r in rows], mid,
                            yerr=[np.subtract(mid, low), np.subtract(high, mid)],
                            marker="o", capsize=3, color=colours[dtype], label=f"fastmteb {dtype}")
            for row in _rows(report, ENGINE_ST, dtype, bucket):
                ax.axhline(metric(row)[0], linestyle="--", color=colours[dtype],
                           label=f"sentence-transformers {dtype} (batch {row['batch_size']})")
        ax.set_xscale("log", base=2)
        ax.set_xticks(budgets, [str(b) for b in budgets])
        ax.set_ylim(bottom=0)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)

    def spread(key: str, scale: float = 1.0) -> Callable[[dict], tuple[float, float, float]]:
        return lambda r: (r[key]["median"] * scale, r[key]["min"] * scale, r[key]["max"] * scale)

    paths = []
    fig, axes = plt.subplots(2, len(buckets), figsize=(4.2 * len(buckets), 7), squeeze=False)
    for column, bucket in enumerate(buckets):
        info = report["data"]["buckets"][bucket]
        axes[0][column].set_title(f"{bucket}: {info['texts']} texts, {info['min_tokens']}-{info['max_tokens']} tok")
        panel(axes[0][column], spread("texts_per_s"), bucket, "texts/s")
        panel(axes[1][column], spread("tokens_per_s", 1e-3), bucket, "thousand tokens/s")
        axes[1][column].set_xlabel("batch budget (padded tokens)")
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"Encoding throughput — {title}\nmedian of {report['settings']['repeats']} repeats, "
                 f"bars = min..max{busy}")
    fig.tight_layout()
    paths.append(output_dir / "throughput.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(1, len(buckets), figsize=(4.2 * len(buckets), 3.8), squeeze=False)
    delta_key = "cuda_delta" if cuda else "rss_delta"
    start_key = "cuda_start" if cuda else "rss_start"
    starts = [r["memory"][start_key] for r in report["results"] if r["memory"][start_key] is not None]
    for column, bucket in enumerate(buckets):
        ax = axes[0][column]
        added = lambda r: (r["memory"][delta_key] / 2**20,) * 3  # noqa: E731 - one peak over all repeats
        panel(ax, added, bucket, "peak allocated above start (MiB)" if cuda else "peak RSS above start (MiB)")
        ax.set_title(bucket)
        ax.set_xlabel("batch budget (padded tokens)")
    axes[0][0].legend(fontsize=7)
    baseline = f"at start {min(starts) / 2**20:,.0f}-{max(starts) / 2**20:,.0f} MiB" if starts else ""
    what = "CUDA max_memory_allocated" if cuda else f"peak RSS ({report['results'][0]['memory']['rss_method']})"
    fig.suptitle(f"Peak memory over the timed repeats — {title}\n{what} minus the value at start ({baseline})"
                 f"{busy}")
    fig.tight_layout()
    paths.append(output_dir / "memory.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    return paths


def write_report(report: dict[str, Any], output_dir: str | Path) -> list[Path]:
    """``bench.json`` + the two plots in ``output_dir``; returns the paths written."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / "bench.json"
    path.write_text(json.dumps(report, indent=2, allow_nan=True) + "\n", encoding="utf-8")
    return [path, *write_plots(report, output_dir)]


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------


def _int_list(option: str) -> Callable[[str], list[int]]:
    def parse(value: str) -> list[int]:
        try:
            return [int(v) for v in value.split(",") if v.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"{option}: expected comma-separated integers, got {value!r}") from None

    return parse


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``fastmteb bench`` (see ``run_benchmark``)."""
    parser.add_argument("-m", "--model", default=None,
                        help="model path or hub id (default: the bundled all-MiniLM-L6-v2)")
    parser.add_argument("--task", dest="tasks", action="append", default=None, metavar="NAME",
                        help="take the texts of this task (repeatable; default: bundled SciFact + SICK-R)")
    parser.add_argument("--data-dir", default=None, help="folder with task data (layout of shared/data)")
    parser.add_argument("--dtypes", type=lambda v: [d.strip() for d in v.split(",") if d.strip()],
                        default=list(DEFAULT_DTYPES), help="comma-separated, e.g. float32,bfloat16")
    parser.add_argument("--batch-tokens", type=_int_list("--batch-tokens"), default=list(DEFAULT_BATCH_TOKENS),
                        help="comma-separated padded-token budgets per batch")
    parser.add_argument("--length-buckets", default=",".join(map(str, DEFAULT_BUCKET_EDGES)),
                        help="token-length edges: 32,128 = short <32, medium 32-127, long >=128 (none: no buckets)")
    parser.add_argument("--limit", type=int, default=DEFAULT_LIMIT,
                        help="at most this many texts per length bucket (0: all)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per configuration")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs before the repeats")
    parser.add_argument("--device", default=None, help="cuda, cuda:1, cpu (default: cuda when available)")
    parser.add_argument("--output-folder", "--output", dest="output_folder", default="bench-results",
                        help="folder for bench.json, throughput.png, memory.png (--output: same; "
                             "--output-folder is the name fastmteb run and mteb use)")
    parser.add_argument("--vs-sentence-transformers", action="store_true",
                        help="also time SentenceTransformer.encode on the same texts")
    parser.add_argument("--st-batch-size", type=int, default=DEFAULT_ST_BATCH_SIZE,
                        help="batch size of the sentence-transformers comparison")
    parser.add_argument("--seed", type=int, default=0, help="seed of the per-bucket text sample")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines")


def run_bench(args: argparse.Namespace) -> int:
    """Run ``fastmteb bench`` from parsed arguments: table on stdout, files in
    ``args.output_folder``."""
    from rich.console import Console

    # markup off: model names, task names and paths are printed as given
    console = Console(markup=False, emoji=False)
    if not console.is_terminal:  # piped: rich would wrap the table at 80 columns
        console = Console(markup=False, emoji=False, width=170)
    err = Console(stderr=True, markup=False, emoji=False, highlight=False)
    try:
        # a file where the output folder should be fails now, not after the whole benchmark
        check_run_inputs(output_folder=args.output_folder, output_option="--output-folder / --output")
        report = run_benchmark(
            args.model,
            tasks=args.tasks,
            data_dir=args.data_dir,
            dtypes=args.dtypes,
            batch_tokens=args.batch_tokens,
            bucket_edges=parse_bucket_edges(args.length_buckets),
            limit=args.limit or None,
            repeats=args.repeats,
            warmup=args.warmup,
            device=args.device,
            vs_sentence_transformers=args.vs_sentence_transformers,
            st_batch_size=args.st_batch_size,
            seed=args.seed,
            progress=None if args.quiet else (lambda message: err.print(f"bench: {message}", style="dim")),
        )
    except ValueError as error:  # BenchConfigError, UnknownTaskError, TaskDataError, ModelLoadError, InputError
        err.print(f"fastmteb bench: {error}", style="red", soft_wrap=True)
        return 2
    paths = write_report(report, args.output_folder)
    console.print(bench_table(report))
    console.print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m fastmteb.benchmark`` (the same options as ``fastmteb bench``)."""
    parser = argparse.ArgumentParser(prog="fastmteb bench", description=__doc__.split("\n\n")[0])
    add_bench_arguments(parser)
    return run_bench(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
