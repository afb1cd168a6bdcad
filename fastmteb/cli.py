"""Command line: ``fastmteb run | tasks | results | bench`` (also ``python -m fastmteb``).

    fastmteb run                   # bundled model on the bundled "fastmteb-mini" -> ./results
    fastmteb run -m sentence-transformers/all-MiniLM-L6-v2 -b "MTEB(eng, v2)" --output-folder out
    fastmteb run -m MODEL -t STS12 -t SciFact --data-dir ../shared/data
    torchrun --nproc-per-node 4 -m fastmteb run -m MODEL -b "MTEB(eng, v2)"   # one process per GPU
    fastmteb tasks -b "MTEB(eng, v2)" --type Retrieval
    fastmteb results results/ other_results/ --json

Exit status: 0 on success, 1 when a task failed (the others are written), 2 on bad input (one
line naming the argument and the fix, before any model loads or any file is written), 130 on
Ctrl-C (result files are written atomically: none is left half-written).

Everything printed is plain text: task names, paths and messages are never read as rich markup.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from fastmteb.tasks.base import TaskMetadata

DEFAULT_BENCHMARK = "fastmteb-mini"
EXIT_OK, EXIT_TASK_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130

# The libraries whose progress bars and log lines ``-q`` silences: environment variables they read
# when imported, and the calls that do the same once they are.
_QUIET_ENV = {
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",  # huggingface_hub, and transformers ("Loading weights")
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "HF_HUB_VERBOSITY": "error",
    "TRANSFORMERS_VERBOSITY": "error",
    "DATASETS_VERBOSITY": "error",
}
_QUIET_LOGGERS = ("huggingface_hub", "transformers", "datasets", "sentence_transformers")


def _console(stderr: bool = False) -> Console:
    """A console that prints text as given: no markup (``[x]`` in a task name or path stays),
    no emoji codes."""
    from rich.console import Console

    console = Console(stderr=stderr, markup=False, emoji=False)
    if (
        not console.is_terminal
    ):  # piped or captured: rich assumes 80 columns and would cut task names
        console = Console(stderr=stderr, markup=False, emoji=False, width=max(console.width, 200))
    return console


def _print_error(message: str) -> None:
    """``error: <message>`` on stderr, the message printed verbatim."""
    from rich.text import Text

    _console(stderr=True).print(
        Text.assemble(("error:", "bold red"), " ", str(message)), highlight=False, soft_wrap=True
    )


def _build_parser() -> argparse.ArgumentParser:
    from fastmteb.version import __version__

    parser = argparse.ArgumentParser(
        prog="fastmteb", description="mteb 2.x scores, many times faster."
    )
    parser.add_argument("--version", action="version", version=f"fastmteb {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser(
        "run",
        help="evaluate a model; one mteb result file per task",
        description="Without -t/-b: the benchmark 'fastmteb-mini' (bundled data).",
    )
    run.add_argument(
        "-m",
        "--model",
        default=None,
        help="model name or path (default: the bundled all-MiniLM-L6-v2)",
    )
    run.add_argument(
        "-t",
        "--task",
        dest="tasks",
        action="extend",
        nargs="+",
        default=None,
        metavar="TASK",
        help="task name (repeatable)",
    )
    run.add_argument(
        "-b",
        "--benchmark",
        default=None,
        help='any mteb benchmark name, e.g. "MTEB(eng, v2)", "MTEB(Multilingual, v2)", "NanoBEIR"',
    )
    for flag, what in (
        ("--subsets", "only these hf subsets (e.g. en de-en)"),
        ("--languages", "only subsets in these languages (eng or eng-Latn), as mteb's filter"),
        ("--splits", "only these evaluation splits (e.g. test)"),
    ):
        run.add_argument(
            flag, action="extend", nargs="+", default=None, metavar=flag[2:-1].upper(), help=what
        )
    run.add_argument(
        "--output-folder", default="results", help="where result files go (default: ./results)"
    )
    run.add_argument(
        "--data-dir",
        default=None,
        help="local data folder (layout of shared/data) instead of the hub",
    )
    run.add_argument(
        "--device", default=None, help="cuda, cuda:1, cpu... (default: cuda if available)"
    )
    run.add_argument("--dtype", default="auto", help="auto | float32 | float16 | bfloat16")
    run.add_argument(
        "--batch-tokens", type=int, default=16384, help="token budget of one batch (default 16384)"
    )
    run.add_argument("--cache-dir", default=None, help="embedding cache folder (default: no cache)")
    run.add_argument(
        "--max-embedding-memory",
        default=None,
        metavar="SIZE",
        help="keep at most SIZE bytes of embeddings in RAM (e.g. 2GB, 512MiB); past it they "
        "spill to a file in the cache folder (else the output folder) and retrieval streams "
        "them from disk (default: no limit)",
    )
    run.add_argument(
        "--spill-dtype",
        default="float32",
        choices=("float32", "float16"),
        help="type of the spilled embeddings: float16 halves the file and the reads but rounds "
        "the vectors, so scores may move in their last digits (default float32: exact)",
    )
    run.add_argument(
        "--resident",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="keep the embeddings on the encoding device from the forward pass to the scoring "
        "kernels (default: on for a model on CUDA; --no-resident: score from numpy on the CPU)",
    )
    run.add_argument(
        "--overwrite", action="store_true", help="evaluate again tasks that already have results"
    )
    run.add_argument(
        "--trust-remote-code", action="store_true", help="allow the model's own code (HF)"
    )
    run.add_argument("-q", "--quiet", action="store_true", help="no progress bars or log lines")
    run.add_argument(
        "--dist-backend",
        default=None,
        choices=("nccl", "gloo"),
        help="under torchrun: torch.distributed backend (default: nccl on CUDA, gloo on CPU)",
    )

    tasks = sub.add_parser("tasks", help="list the supported tasks")
    tasks.add_argument("-b", "--benchmark", default=None, help="only the tasks of this benchmark")
    tasks.add_argument(
        "--type",
        dest="types",
        action="extend",
        nargs="+",
        default=None,
        metavar="TYPE",
        help="only tasks of this type (repeatable)",
    )

    results = sub.add_parser("results", help="tables of result folders, models side by side")
    results.add_argument(
        "dirs", nargs="+", metavar="DIR", help="output folder(s), model or revision folder(s)"
    )
    results.add_argument(
        "-b",
        "--benchmark",
        default=None,
        help="score over this benchmark's tasks (missing tasks make the means empty)",
    )
    results.add_argument("--json", action="store_true", help="machine-readable output")

    from fastmteb.benchmark import add_bench_arguments

    add_bench_arguments(
        sub.add_parser("bench", help="encoding throughput and peak memory across dtypes and budgets")
    )
    return parser


# ---------------------------------------------------------------------------------------------
# run


def _configure_logging(quiet: bool) -> None:
    """fastmteb's own log lines (resume, failures) on stderr; ``quiet`` also silences the
    progress bars and info/warning lines of the Hugging Face libraries."""
    log = logging.getLogger("fastmteb")
    log.setLevel(logging.WARNING if quiet else logging.INFO)
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("fastmteb: %(message)s"))
        log.addHandler(handler)
    if quiet:
        _quiet_libraries()


def _quiet_libraries() -> None:
    """No progress bars and only errors from huggingface_hub, transformers, datasets and
    sentence-transformers, whether they are imported already or later in this process."""
    import warnings

    os.environ.update(_QUIET_ENV)
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    with warnings.catch_warnings():  # they warn when an environment variable said otherwise
        warnings.simplefilter("ignore")
        if "huggingface_hub" in sys.modules:
            from huggingface_hub.utils import disable_progress_bars

            disable_progress_bars()
        if "transformers" in sys.modules:
            from transformers.utils import logging as transformers_logging

            transformers_logging.set_verbosity_error()
            transformers_logging.disable_progress_bar()
        if "datasets" in sys.modules:
            import datasets

            datasets.logging.set_verbosity_error()
            datasets.disable_progress_bars()


def _cmd_run(args: argparse.Namespace) -> int:
    import fastmteb
    from fastmteb.distributed import launch_rank
    from fastmteb.results import compare, comparison_tables
    from fastmteb.runner import evaluate
    from fastmteb.tasks.registry import TASKS

    main = launch_rank() == 0  # under torchrun only rank 0 prints; every rank evaluates
    _configure_logging(args.quiet or not main)
    benchmark = args.benchmark
    if benchmark is None and not args.tasks:
        benchmark = DEFAULT_BENCHMARK
    tasks_arg: Any = args.tasks
    selected = None
    if args.subsets or args.languages or args.splits:  # narrow each task as mteb's filters do
        selected = _filtered_tasks(args, benchmark)
        tasks_arg, benchmark = selected, None
    run = evaluate(
        args.model,
        tasks_arg,
        benchmark=benchmark,
        output_folder=args.output_folder,
        data_dir=args.data_dir,
        device=args.device,
        dtype=args.dtype,
        batch_tokens=args.batch_tokens,
        cache_dir=args.cache_dir,
        max_embedding_memory=args.max_embedding_memory,
        spill_dtype=args.spill_dtype,
        resident=args.resident,
        overwrite=args.overwrite,
        progress=not args.quiet,
        trust_remote_code=args.trust_remote_code,
        raise_error=False,
        dist_backend=args.dist_backend,
    )
    if not main:
        return EXIT_TASK_FAILED if run.failures else EXIT_OK
    console = _console()
    if run:
        label = run.output_dir.parent.name.replace("__", "/") if run.output_dir else "model"
        # Score each task over the splits/subsets it was evaluated on (a benchmark narrows them).
        evaluated = {r.task_name for r in run}
        if selected is not None:
            metas = selected
        else:
            metas = (
                fastmteb.get_benchmark(benchmark) if benchmark else fastmteb.get_tasks(args.tasks)
            )
        if args.data_dir is not None:  # score over what the folder held, as the run did
            from fastmteb.data.loading import local_selection

            metas = [local_selection(m, args.data_dir) for m in metas]
        summaries = compare(
            {label: {r.task_name: r for r in run}},
            tasks=[m for m in metas if m.name in evaluated] or [r.task_name for r in run],
            known_tasks=TASKS,
        )
        for table in comparison_tables(summaries):
            console.print(table)
        console.print(
            f"{len(run) - len(run.skipped)} task(s) evaluated, "
            f"{len(run.skipped)} read from earlier runs"
        )
        for task, reason in run.reevaluated.items():
            # the earlier file was another model's, dtype's or data's (also logged on stderr)
            console.print(f"  {task}: evaluated again, {reason}", markup=False, highlight=False)
    if run and run.output_dir is not None:
        console.print(f"result files: {run.output_dir}")
    if run.failures:
        from rich.text import Text

        err = _console(stderr=True)
        err.print(f"{len(run.failures)} task(s) failed:", style="bold red", highlight=False)
        # soft_wrap: one line per failure, never cut at the console width
        for failure in run.failures:
            err.print(
                Text.assemble(
                    "  ", (failure.task_name, "red"), f" ({failure.phase}): {failure.error}"
                ),
                highlight=False,
                soft_wrap=True,
            )
        return EXIT_TASK_FAILED
    return EXIT_OK


def _filtered_tasks(args: argparse.Namespace, benchmark: str | None) -> list[TaskMetadata]:
    """The run's tasks narrowed by --subsets / --languages / --splits; tasks left with nothing
    are dropped, and a run left with no task at all is bad input."""
    from fastmteb.runner import resolve_tasks
    from fastmteb.tasks.registry import narrow

    out = []
    for meta in resolve_tasks(args.tasks, benchmark):
        kept = narrow(
            meta, eval_splits=args.splits, hf_subsets=args.subsets, languages=args.languages
        )
        if kept is not None:
            out.append(kept)
    if not out:
        raise ValueError(
            "no task has the requested --subsets/--languages/--splits; fix: check them against "
            "`fastmteb tasks` (splits and subsets columns)"
        )
    return out


# ---------------------------------------------------------------------------------------------
# tasks


def _task_size(meta: TaskMetadata) -> str:
    """Number of evaluated samples, when the registry knows it."""
    for key in ("n_samples", "size", "num_samples"):
        value = getattr(meta, key, None)
        if value is None:
            value = meta.params.get(key)
        if value is not None:
            if isinstance(value, dict):
                value = sum(v for v in value.values() if isinstance(v, (int, float)))
            return f"{value:,}" if isinstance(value, (int, float)) else str(value)
    return ""


def _is_bundled(meta: TaskMetadata) -> bool:
    """True when the package ships the data of every evaluated subset (no download needed)."""
    try:
        from fastmteb.data.loading import bundled_source
    except ImportError:
        return False
    return all(bundled_source(meta, subset) is not None for subset in meta.hf_subsets)


def _cmd_tasks(args: argparse.Namespace) -> int:
    import fastmteb
    from fastmteb.tasks.registry import benchmark_tasks, coverage

    if args.benchmark:
        metas, skipped = benchmark_tasks(args.benchmark)
    else:
        metas, skipped = fastmteb.get_tasks(), coverage()[1]
    if args.types:
        from fastmteb.tasks.types import TASK_TYPES

        known = {t.lower(): t for t in TASK_TYPES}
        unknown = [t for t in args.types if t.lower() not in known]
        if unknown:
            raise ValueError(
                f"--type {', '.join(unknown)}: unknown task type; "
                f"choose from {', '.join(TASK_TYPES)}"
            )
        wanted = {known[t.lower()] for t in args.types}
        metas = [m for m in metas if m.type in wanted]
        skipped = {}
    title = f"{len(metas)} task(s)" + (f" in {args.benchmark}" if args.benchmark else "")
    from fastmteb.run_extras import run_by_extras

    not_runnable = [
        f"runs as {run_by_extras(why)}: {name}" if run_by_extras(why) else f"not runnable: {name} ({why})"
        for name, why in skipped.items()
    ]
    rows = [
        (
            m.name,
            m.type,
            ",".join(m.eval_splits),
            _subsets_cell(m),
            _task_size(m),
            m.license or "",
            "yes" if _is_bundled(m) else "",
        )
        for m in metas
    ]
    columns = ["name", "type", "splits", "subsets", "size", "license", "bundled"]
    if not any(row[4] for row in rows):  # the registry knows no sizes: no empty column
        columns.remove("size")
        rows = [(*row[:4], *row[5:]) for row in rows]
    if not sys.stdout.isatty():  # piped: plain tab-separated lines, every name whole
        print("\t".join(columns))
        for row in rows:
            print("\t".join(row))
        print(f"# {title}")
        for line in not_runnable:
            print(f"# {line}")
        return EXIT_OK
    from rich.table import Table

    table = Table(title=title, caption="\n".join(not_runnable) or None)
    for column in columns:
        table.add_column(column, justify="right" if column == "size" else "left", no_wrap=True)
    for row in rows:
        table.add_row(*row)
    _console().print(table)
    return EXIT_OK


def _subsets_cell(meta: TaskMetadata) -> str:
    """The evaluated subsets ("default" tasks: empty), shortened past 4 as "a,b,c,d +N"."""
    subsets = list(meta.hf_subsets)
    if subsets == ["default"]:
        return ""
    shown = ",".join(subsets[:4])
    return shown + (f" +{len(subsets) - 4}" if len(subsets) > 4 else "")


# ---------------------------------------------------------------------------------------------
# results


def _json_safe(value: Any) -> Any:
    """NaN/inf are not JSON; machine output writes them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def _cmd_results(args: argparse.Namespace) -> int:
    from fastmteb.results import compare, comparison_tables, load_results
    from fastmteb.tasks.registry import TASKS

    by_model = load_results(*args.dirs, known_tasks=TASKS)
    if not by_model:
        _print_error(f"no result files under {', '.join(args.dirs)}")
        return EXIT_BAD_INPUT
    tasks = None
    if args.benchmark:
        import fastmteb

        tasks = fastmteb.get_benchmark(args.benchmark)
    summaries = compare(by_model, tasks, known_tasks=TASKS)
    if args.json:
        print(
            json.dumps(_json_safe({model: s.to_dict() for model, s in summaries.items()}), indent=2)
        )
        return EXIT_OK
    console = _console()
    for table in comparison_tables(
        summaries, title=f"Scores per task (x100){' — ' + args.benchmark if args.benchmark else ''}"
    ):
        console.print(table)
    return EXIT_OK


def _cmd_bench(args: argparse.Namespace) -> int:
    from fastmteb.benchmark import run_bench

    if args.quiet:
        _quiet_libraries()
    return run_bench(args)


# ---------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fastmteb`` console script; returns the exit status."""
    commands = {"run": _cmd_run, "tasks": _cmd_tasks, "results": _cmd_results, "bench": _cmd_bench}
    try:
        args = _build_parser().parse_args(argv)
        return commands[args.command](args)
    except (ValueError, FileNotFoundError) as e:  # bad input: a clear message, no traceback
        _print_error(str(e))
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        # Result files are written atomically (a temporary file renamed over the target) and a
        # spill file is deleted with its last reference: nothing is left half-written.
        _print_error("interrupted (Ctrl-C); result files already written are complete")
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
