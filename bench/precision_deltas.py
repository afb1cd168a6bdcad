"""What half precision does to the scores: every task of the shared data at float32 and bfloat16.

Runs the bundled all-MiniLM-L6-v2 over the tasks of ``bench/parity_vs_mteb.py`` (same splits and
subsets as its mteb baseline) once per dtype, each in one ``fastmteb.evaluate`` call, and prints the
main-score delta per task and the largest delta over every metric, with that metric's key. float32
is mteb's precision (the default); bfloat16 runs under ``torch.autocast`` (on this CPU:
AVX512-BF16).

    python bench/precision_deltas.py                       # all tasks, float32 vs bfloat16
    python bench/precision_deltas.py --tasks STS12 SciFact --dtypes float32 float16

Outputs bench/results/precision_deltas.json and .md; rows of tasks measured in earlier runs are
kept unless --fresh (each run's wall times are listed with the tasks it covered).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import parity_vs_mteb as pv  # noqa: E402

OUT = pv.RESULTS / "precision_deltas"


def _scores_by_task(results) -> dict[str, dict]:
    out = {}
    for result in results:
        name, scores, _ = pv._fastmteb_scores(result)
        entries = [entry for subsets in scores.values() for entry in subsets.values()]
        out[name] = {
            "main": sum(e["main_score"] for e in entries) / len(entries),
            "metrics": entries,
        }
    return out


def _largest_metric_delta(a: list[dict], b: list[dict]) -> tuple[str | None, float]:
    """(metric key, |delta|) of the numeric metric that moves most between the two runs, over every
    (split, subset) entry; (None, 0.0) when no metric moves."""
    worst_key, worst = None, 0.0
    for x, y in zip(a, b):
        for key, value in x.items():
            other = y.get(key)
            if isinstance(value, (int, float)) and isinstance(other, (int, float)) and not isinstance(value, bool):
                if not (math.isnan(value) or math.isnan(other)) and abs(value - other) > worst:
                    worst_key, worst = key, abs(value - other)
    return worst_key, worst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", nargs="*", default=None, help=f"subset of: {' '.join(pv.TASKS)}")
    ap.add_argument("--dtypes", nargs=2, default=["float32", "bfloat16"], metavar=("REFERENCE", "OTHER"))
    ap.add_argument("--data-dir", type=Path, default=pv.DEFAULT_DATA)
    ap.add_argument("--fresh", action="store_true", help="drop rows of earlier runs from the outputs")
    args = ap.parse_args()

    import fastmteb
    from fastmteb.encoding import load_encoder

    baseline = pv.load_baseline()
    names = [n for n in (args.tasks or list(pv.TASKS)) if n in baseline["tasks"]]
    metas = [pv.fastmteb_meta_like_baseline(n, baseline["tasks"][n]) for n in names]
    runs = {}
    for dtype in args.dtypes:
        encoder = load_encoder(None, device="cpu", dtype=dtype)
        started = time.perf_counter()
        out_dir = tempfile.mkdtemp(prefix=f"fastmteb-precision-{dtype}-")
        try:
            results = fastmteb.evaluate(
                model=encoder, tasks=metas, data_dir=str(args.data_dir), device="cpu",
                output_folder=out_dir, overwrite=True, progress=False,
            )
        finally:
            shutil.rmtree(out_dir, ignore_errors=True)
        runs[dtype] = {"seconds": time.perf_counter() - started, "tasks": _scores_by_task(results)}
        print(f"{dtype}: {runs[dtype]['seconds']:.1f} s", flush=True)

    ref, other = args.dtypes
    rows = []
    for name in runs[ref]["tasks"]:
        a, b = runs[ref]["tasks"][name], runs[other]["tasks"].get(name)
        if b is None:
            continue
        key, largest = _largest_metric_delta(a["metrics"], b["metrics"])
        rows.append({
            "task": name, "type": pv.fastmteb_meta_like_baseline(name, baseline["tasks"][name]).type,
            ref: a["main"], other: b["main"], "delta": b["main"] - a["main"],
            "max_metric_delta": largest, "max_metric_key": key,
        })
    batch = {"tasks": [r["task"] for r in rows], "seconds": {d: runs[d]["seconds"] for d in runs}}
    write_outputs(rows, batch, args.dtypes, fresh=args.fresh)


def write_outputs(rows: list[dict], batch: dict, dtypes: list[str], *, fresh: bool = False) -> None:
    """Write the table; rows of other tasks from earlier runs (same dtypes) are kept unless
    ``fresh``, each run's wall times listed with the tasks it covered."""
    ref, other = dtypes
    batches = [batch]
    json_path = OUT.with_suffix(".json")
    if not fresh and json_path.is_file():
        earlier = json.loads(json_path.read_text(encoding="utf-8"))
        if earlier.get("dtypes") == list(dtypes):
            mine = {r["task"] for r in rows}
            rows = [r for r in earlier["rows"] if r["task"] not in mine] + rows
            batches = [b for b in earlier.get("runs", []) if set(b["tasks"]) - mine] + batches
    header = (f"| task | type | {ref} | {other} | delta (main) | max delta, any metric "
              "| that metric |\n|---|---|---|---|---|---|---|\n")
    lines = [  # rows of runs before the key was recorded say so
        f"| {r['task']} | {r['type']} | {r[ref]:.6f} | {r[other]:.6f} | {r['delta']:+.2e} | "
        f"{r['max_metric_delta']:.2e} | {r.get('max_metric_key', 'not recorded')} |"
        for r in rows
    ]
    deltas = [abs(r["delta"]) for r in rows]
    summary = (
        f"{len(rows)} tasks; |delta| of the main score: mean {sum(deltas) / len(deltas):.2e}, "
        f"max {max(deltas):.2e}.\n"
    )
    for b in batches:
        seconds = b["seconds"]
        summary += (
            f"\nWall time over {len(b['tasks'])} task(s) ({', '.join(b['tasks'])}): {ref} "
            f"{seconds[ref]:.0f} s, {other} {seconds[other]:.0f} s ({seconds[ref] / seconds[other]:.2f}x).\n"
        )
    table = header + "\n".join(lines) + "\n\n" + summary
    print(table)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.with_suffix(".md").write_text(table, encoding="utf-8")
    json_path.write_text(json.dumps({
        "machine": platform.processor() or platform.machine(), "model": "all-MiniLM-L6-v2 (bundled)",
        "dtypes": list(dtypes), "rows": rows, "runs": batches,
    }, indent=2), encoding="utf-8")

if __name__ == "__main__":
    main()
