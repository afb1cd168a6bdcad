"""The benchmark report as a rich table, ``bench.json`` and plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import numpy as np

from fastmteb.benchmark.measure import contention_note
from fastmteb.benchmark.settings import ENGINE_FASTMTEB, ENGINE_ST


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
    paths.append(_save(fig, output_dir / "throughput.png"))

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
    paths.append(_save(fig, output_dir / "memory.png"))
    return paths


def write_report(report: dict[str, Any], output_dir: str | Path) -> list[Path]:
    """``bench.json`` + the two plots in ``output_dir``; returns the paths written."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / "bench.json"
    path.write_text(json.dumps(report, indent=2, allow_nan=True) + "\n", encoding="utf-8")
    return [path, *write_plots(report, output_dir)]


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
