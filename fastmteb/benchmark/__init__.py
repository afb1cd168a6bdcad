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

One module per part: ``settings`` (defaults, engine names, the option error), ``memory`` (peak
memory probes), ``batches`` (per-batch records through forward hooks), ``texts`` (task texts,
length buckets, sampling), ``measure`` (the timed runs and the report they make), ``report``
(table, JSON, plots) and ``command`` (the ``fastmteb bench`` options and entry point).
"""

from __future__ import annotations


from fastmteb.benchmark.batches import BatchRecord, record_batches
from fastmteb.benchmark.command import add_bench_arguments, main, run_bench
from fastmteb.benchmark.measure import ConfigResult, RunMeasurement, contention_note, run_benchmark
from fastmteb.benchmark.memory import MemoryReading, peak_memory, proc_status_kib, reset_peak_rss
from fastmteb.benchmark.report import bench_table, write_plots, write_report
from fastmteb.benchmark.settings import (
    ALL_BUCKET,
    DEFAULT_BATCH_TOKENS,
    DEFAULT_BUCKET_EDGES,
    DEFAULT_DTYPES,
    DEFAULT_LIMIT,
    DEFAULT_ST_BATCH_SIZE,
    DEFAULT_TASKS,
    ENGINE_FASTMTEB,
    ENGINE_ST,
    BenchConfigError,
)
from fastmteb.benchmark.texts import (
    bucket_names,
    bucket_of,
    load_bench_texts,
    parse_bucket_edges,
    sample_positions,
    task_texts,
)

__all__ = [
    "ALL_BUCKET",
    "DEFAULT_BATCH_TOKENS",
    "DEFAULT_BUCKET_EDGES",
    "DEFAULT_DTYPES",
    "DEFAULT_LIMIT",
    "DEFAULT_ST_BATCH_SIZE",
    "DEFAULT_TASKS",
    "ENGINE_FASTMTEB",
    "ENGINE_ST",
    "BatchRecord",
    "BenchConfigError",
    "ConfigResult",
    "MemoryReading",
    "RunMeasurement",
    "add_bench_arguments",
    "bench_table",
    "bucket_names",
    "bucket_of",
    "contention_note",
    "load_bench_texts",
    "main",
    "parse_bucket_edges",
    "peak_memory",
    "proc_status_kib",
    "record_batches",
    "reset_peak_rss",
    "run_bench",
    "run_benchmark",
    "sample_positions",
    "task_texts",
    "write_plots",
    "write_report",
]
