"""``fastmteb bench`` and ``python -m fastmteb.benchmark``: options, run, output."""

from __future__ import annotations

import argparse
from typing import Callable, Sequence

from fastmteb.benchmark.measure import run_benchmark
from fastmteb.benchmark.report import bench_table, write_report
from fastmteb.benchmark.settings import (
    DEFAULT_BATCH_TOKENS,
    DEFAULT_BUCKET_EDGES,
    DEFAULT_DTYPES,
    DEFAULT_LIMIT,
    DEFAULT_ST_BATCH_SIZE,
)
from fastmteb.benchmark.texts import parse_bucket_edges
from fastmteb.inputs import check_run_inputs

DESCRIPTION = "Encoding throughput and peak memory of one model on real texts."


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
    parser = argparse.ArgumentParser(prog="fastmteb bench", description=DESCRIPTION)
    add_bench_arguments(parser)
    return run_bench(parser.parse_args(argv))
