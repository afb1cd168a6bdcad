"""Cost of a training-callback evaluation vs a standalone run, on the bundled fastmteb-mini benchmark.

    python bench/bench_callback.py                                   # full: every fastmteb-mini task
    python bench/bench_callback.py --tasks SICK-R,SIB200ClusteringS2S --max-samples 100   # quick try
    chrt -f 10 python bench/bench_callback.py                        # shared machine: hold other work off

Model: the bundled all-MiniLM-L6-v2 as a live ``SentenceTransformer`` (put in train mode, as a
trainer leaves it). Measured, in one process, after the model is loaded:

* ``standalone``: ``fastmteb.evaluate`` of the same tasks with the same encoder (load + prepare +
  tokenize + encode + score + write), into a temporary folder;
* ``callback call 1``: ``TrainingEvaluation`` on its first call (load + prepare + tokenize +
  encode + score; the prepared state is kept);
* ``callback call 2``: the same weights again (an evaluation fired twice at one step): the
  previous scores are returned without encoding (``reuse_unchanged``);
* ``callback call 3`` and ``4``: each after a weight update (a small perturbation under
  ``no_grad``): forward passes + scoring only, on the prepared state. They must give new
  embeddings, so they also show that nothing stale is served; two of them give the spread.

``--pairs N`` measures only the prepared state, in N (first call, next call) pairs: each pair is a
fresh ``TrainingEvaluation``'s first call (load + prepare + tokenize + encode + score) and, after a
weight update, its second call (encode + score). The two calls of a pair run back to back, so a
drift of the machine's speed hits both alike; the median paired difference is the time the
prepared state saves. No standalone run; writes bench/results/callback_pairs.json.

Without ``--max-samples`` / ``--max-corpus`` the callback's scores must equal the standalone run's
(checked, printed as "parity"); with a subsample they are not comparable (by design). The load
average is recorded: figures from a shared, busy machine are labelled "contended".
Writes bench/results/callback.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

RESULTS = Path(__file__).resolve().parent / "results" / "callback.json"
PAIRS_RESULTS = Path(__file__).resolve().parent / "results" / "callback_pairs.json"


def _largest_difference(a: object, b: object) -> float:
    """Largest |a - b| over the numbers of two nested score structures (inf if their shapes differ)."""
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return float("inf")
        return max((_largest_difference(a[k], b[k]) for k in a), default=0.0)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            return float("inf")
        return max((_largest_difference(x, y) for x, y in zip(a, b)), default=0.0)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return 0.0 if a == b or (a != a and b != b) else abs(float(a) - float(b))
    return 0.0 if a == b else float("inf")


def _perturb(model: torch.nn.Module) -> None:
    """A small weight update under ``no_grad``: the next call must encode again."""
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(1e-3 * torch.randn_like(parameter))


def _priority_label() -> tuple[bool, str]:
    realtime = os.sched_getscheduler(0) in (os.SCHED_FIFO, os.SCHED_RR)
    return realtime, ("realtime priority (chrt -f: other processes held off the CPU)" if realtime
                      else "normal priority (timings may include other processes' work)")


def _time_pairs(args, metas, encoder, model, training_evaluation, model_seconds: float) -> None:
    """``--pairs``: the time the prepared state saves, from back-to-back (first, next) call pairs."""
    pairs = []
    for i in range(args.pairs):
        evaluation = training_evaluation(metas, data_dir=args.data_dir, max_samples=args.max_samples,
                                         max_corpus=args.max_corpus)
        first = evaluation(model, step=2 * i)
        _perturb(model)
        second = evaluation(model, step=2 * i + 1)
        assert not first.reused and not second.reused and second.prepared_seconds == 0.0
        pairs.append({name: {"seconds": r.seconds, "prepare_and_tokenize": r.prepared_seconds,
                             "encode": r.encode_seconds, "score": r.score_seconds}
                      for name, r in (("first", first), ("next", second))})
        print(f"  pair {i + 1}: first {first.seconds:7.2f} s (load+prepare+tokenize {first.prepared_seconds:.2f}),"
              f" next {second.seconds:7.2f} s, saved {first.seconds - second.seconds:+.2f} s", flush=True)
    saved = np.array([p["first"]["seconds"] - p["next"]["seconds"] for p in pairs])
    firsts = np.array([p["first"]["seconds"] for p in pairs])
    prepared = np.array([p["first"]["prepare_and_tokenize"] for p in pairs])
    realtime, label = _priority_label()
    print(f"fastmteb callback, prepared state - {args.benchmark}: {len(metas)} task(s), device {encoder.device}, "
          f"{label}; subsample max_samples={args.max_samples}, max_corpus={args.max_corpus}")
    print(f"  first call median {np.median(firsts):.2f} s, of which load+prepare+tokenize median {np.median(prepared):.2f} s")
    print(f"  next call faster than the first in {int((saved > 0).sum())} of {len(pairs)} pairs; "
          f"saved median {np.median(saved):.2f} s (min {saved.min():.2f}, max {saved.max():.2f}) "
          f"= {np.median(saved / firsts):.1%} of the first call")
    report = {
        "benchmark": args.benchmark, "tasks": [m.name for m in metas], "device": str(encoder.device),
        "torch_threads": torch.get_num_threads(), "platform": platform.platform(), "cores": os.cpu_count(),
        "realtime_priority": realtime, "max_samples": args.max_samples, "max_corpus": args.max_corpus,
        "model_load_seconds": model_seconds, "pairs": pairs,
        "next_faster_in": int((saved > 0).sum()), "saved_seconds_median": float(np.median(saved)),
        "saved_seconds_min": float(saved.min()), "saved_seconds_max": float(saved.max()),
        "prepare_and_tokenize_median": float(np.median(prepared)),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.output}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--benchmark", default="fastmteb-mini")
    parser.add_argument("--tasks", default=None, help="comma-separated task names of the benchmark (default: all)")
    parser.add_argument("--max-samples", type=int, default=None, help="callback subsample (not comparable)")
    parser.add_argument("--max-corpus", type=int, default=None, help="callback corpus cap (not comparable)")
    parser.add_argument("--device", default=None, help="cpu | cuda (default: cuda when available)")
    parser.add_argument("--data-dir", default=None, help="local data folder (default: bundled copies)")
    parser.add_argument("--pairs", type=int, default=None,
                        help="only time N (first call, next call after a weight update) pairs")
    parser.add_argument("--output", type=Path, default=None,
                        help=f"default {RESULTS.name} ({PAIRS_RESULTS.name} with --pairs)")
    args = parser.parse_args()
    args.output = args.output or (PAIRS_RESULTS if args.pairs else RESULTS)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import fastmteb
    from fastmteb.callbacks import TrainingEvaluation
    from fastmteb.encoding import load_encoder
    from fastmteb.tasks.registry import get_benchmark

    metas = get_benchmark(args.benchmark)
    if args.tasks:
        wanted = args.tasks.split(",")
        metas = [m for m in metas if m.name in wanted]
        missing = set(wanted) - {m.name for m in metas}
        if missing:
            raise SystemExit(f"not in {args.benchmark}: {sorted(missing)}")
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    encoder = load_encoder(None, device=args.device)
    model = encoder.sentence_transformer
    model.train()
    model_seconds = time.perf_counter() - t0

    if args.pairs:
        _time_pairs(args, metas, encoder, model, TrainingEvaluation, model_seconds)
        return

    rows: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory() as folder:
        t0 = time.perf_counter()
        standalone = fastmteb.evaluate(encoder, metas, data_dir=args.data_dir, output_folder=folder,
                                       progress=False, overwrite=True)
        rows.append(("standalone fastmteb.evaluate", time.perf_counter() - t0))

    evaluation = TrainingEvaluation(metas, data_dir=args.data_dir, max_samples=args.max_samples,
                                    max_corpus=args.max_corpus)
    records = []
    for label in ("callback call 1 (prepares)", "callback call 2 (same weights: reused)"):
        records.append(evaluation(model, step=len(records)))
        rows.append((label, records[-1].seconds))
    changed = True
    for label in ("callback call 3 (after a weight update)", "callback call 4 (after another update)"):
        embeddings_before = evaluation._run.embeddings.copy()
        _perturb(model)
        records.append(evaluation(model, step=len(records)))
        rows.append((label, records[-1].seconds))
        changed = changed and not records[-1].reused and not np.allclose(embeddings_before, evaluation._run.embeddings)
    load_after = os.getloadavg()

    comparable = args.max_samples is None and args.max_corpus is None
    parity = None
    differences: dict[str, float] = {}
    if comparable:
        for r in standalone:
            gap = _largest_difference(records[0].results[r.task_name].scores, r.scores)
            if gap != 0.0:
                differences[r.task_name] = gap
        parity = not differences

    cores = os.cpu_count() or 1
    realtime, label = _priority_label()
    contended = not realtime and max(load_before[0], load_after[0]) > 0.5 * cores
    if not realtime:
        label = "CONTENDED (shared, busy machine)" if contended else "idle machine"
    device = str(encoder.device)
    print(f"fastmteb training-callback overhead - {args.benchmark}: {len(metas)} task(s), device {device}, "
          f"{label}; load average {load_before[0]:.1f} -> {load_after[0]:.1f} on {cores} cores")
    if not comparable:
        print(f"callback subsample: max_samples={args.max_samples}, max_corpus={args.max_corpus} "
              "(NOT comparable with the standalone scores)")
    print(f"model load (not counted anywhere): {model_seconds:.1f} s")
    width = max(len(name) for name, _ in rows)
    for name, seconds in rows:
        print(f"  {name:<{width}}  {seconds:8.2f} s   {seconds / rows[0][1]:6.2f} x standalone")
    first = rows[1][1]
    print(f"  second call (same weights) / first call: {rows[2][1] / first:.4f}")
    print(f"  calls after a weight update / first call: {rows[3][1] / first:.3f}, {rows[4][1] / first:.3f} "
          f"(first - mean of them: {first - (rows[3][1] + rows[4][1]) / 2:.2f} s)")
    for i, record in enumerate(records, 1):
        print(f"  call {i}: load+prepare+tokenize {record.prepared_seconds:.2f} s, "
              f"encode {record.encode_seconds:.2f} s, score {record.score_seconds:.2f} s, reused {record.reused}")
    print(f"  embeddings changed after each weight update: {changed}")
    if parity is not None:
        print(f"  parity (callback scores == standalone scores): {parity}")
        for name, gap in differences.items():
            print(f"    {name}: largest |difference| over its metrics {gap:.3g}")

    report = {
        "benchmark": args.benchmark,
        "tasks": [m.name for m in metas],
        "device": device,
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "cores": cores,
        "load_average_before": load_before,
        "load_average_after": load_after,
        "contended": contended,
        "realtime_priority": realtime,
        "max_samples": args.max_samples,
        "max_corpus": args.max_corpus,
        "model_load_seconds": model_seconds,
        "seconds": dict(rows),
        "calls": [{"prepare_and_tokenize": r.prepared_seconds, "encode": r.encode_seconds,
                   "score": r.score_seconds, "reused": r.reused} for r in records],
        "embeddings_changed_after_each_update": changed,
        "parity_with_standalone": parity,
        "largest_difference_by_task": differences,
        "metrics_call_1": records[0].metrics,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
