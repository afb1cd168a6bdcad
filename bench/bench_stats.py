"""Speed of the small statistics kernels against the code mteb runs.

    python bench/bench_stats.py               # full size (1M-pair correlations, 100k-pair sweeps)
    python bench/bench_stats.py --scale 0.1   # a quick try on a busy machine

Prints a table and writes bench/results/stats.json. Each figure is the best wall time of
``--repeats`` runs after one warm-up (Numba compiles or loads its cache there). The load average
is recorded next to the figures: numbers taken on a shared, busy machine are labelled as such.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "stats.json"


def best_seconds(function: Callable[[], Any], repeats: int) -> tuple[float, float]:
    """Best wall time and best CPU time (all threads of the process) over ``repeats`` runs.

    On a busy machine the CPU time is the steadier figure; on an idle one the wall time counts.
    """
    function()
    best_wall = best_cpu = float("inf")
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        function()
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return best_wall, best_cpu


def sts_like(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gold on a 0.2 grid scaled to [0, 1] (float64, many ties), float32 cosine-like scores."""
    gold = np.round(rng.uniform(0, 5, n) / 0.2) * 0.2 / 5
    return gold, (gold + rng.normal(0, 0.3, n)).astype(np.float32)


def correlation_cases(n: int, repeats: int) -> list[dict[str, Any]]:
    import scipy.stats

    from fastmteb.kernels import pearson, spearman

    rng = np.random.default_rng(0)
    x = rng.standard_normal(n)
    inputs = {
        "float64 random": (x, x + rng.standard_normal(n)),
        "STS-like (gold grid f64, f32 scores)": sts_like(rng, n),
    }
    rows = []
    for label, (a, b) in inputs.items():
        for name, ours, theirs in (
            ("spearman", spearman, scipy.stats.spearmanr),
            ("pearson", pearson, scipy.stats.pearsonr),
        ):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                difference = abs(ours(a, b) - theirs(a, b).statistic)
            rows.append({
                "case": f"{name}, {label}", "n": n,
                "fastmteb": best_seconds(lambda: ours(a, b), repeats),
                "reference": f"scipy.stats.{theirs.__name__}",
                "reference_timing": best_seconds(lambda: theirs(a, b), repeats),
                "max_abs_difference": float(difference),
            })
    return rows


def pair_sweep_cases(n: int, repeats: int) -> list[dict[str, Any]]:
    from mteb.abstasks.pair_classification import AbsTaskPairClassification

    from fastmteb.kernels import pair_sweep

    class MtebMetrics:
        _compute_metrics_values = AbsTaskPairClassification._compute_metrics_values
        _find_best_acc_and_threshold = AbsTaskPairClassification._find_best_acc_and_threshold
        _find_best_f1_and_threshold = AbsTaskPairClassification._find_best_f1_and_threshold

    mteb = MtebMetrics()
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, n)
    scores = (rng.normal(0, 1, n) + labels).astype(np.float32)
    rows_of_five = np.stack([scores, -scores, np.abs(scores), scores * 2, np.round(scores, 2)])

    def mteb_single() -> dict[str, float]:
        return mteb._compute_metrics_values(scores.tolist(), labels, True)

    def mteb_five() -> None:
        for row in rows_of_five:
            mteb._compute_metrics_values(row.tolist(), labels, True)

    ours = pair_sweep(scores, labels)
    expected = mteb_single()
    difference = max(abs(getattr(ours, key) - expected[key]) for key in expected)
    return [
        {
            "case": "pair_sweep, 1 scoring function", "n": n,
            "fastmteb": best_seconds(lambda: pair_sweep(scores, labels), repeats),
            "reference": "mteb _compute_metrics_values",
            "reference_timing": best_seconds(mteb_single, max(1, repeats // 2)),
            "max_abs_difference": float(difference),
        },
        {
            "case": "pair_sweep, 5 scoring functions (one 2-D call)", "n": n,
            "fastmteb": best_seconds(lambda: pair_sweep(rows_of_five, labels), repeats),
            "reference": "mteb _compute_metrics_values x5",
            "reference_timing": best_seconds(mteb_five, 1),
            "max_abs_difference": None,
        },
    ]


def bitext_cases(n: int, dim: int, repeats: int) -> list[dict[str, Any]]:
    import torch
    from mteb._evaluators.text.bitext_mining_evaluator import BitextMiningEvaluator
    from sentence_transformers.util import cos_sim

    from fastmteb.kernels import bitext_mine

    class CosineModel:
        def similarity(self, first: Any, second: Any) -> Any:
            return cos_sim(first, second)

    rng = np.random.default_rng(2)
    source = rng.standard_normal((n, dim)).astype(np.float32)
    target = (source + rng.standard_normal((n, dim))).astype(np.float32)
    search = BitextMiningEvaluator._similarity_search

    def mteb_search() -> list[dict[str, float]]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return search(None, torch.from_numpy(source), torch.from_numpy(target), CosineModel())

    expected = np.array([match["corpus_id"] for match in mteb_search()])
    agreement = float((bitext_mine(source, target).predictions == expected).mean())
    return [
        {
            "case": f"bitext_mine nn, d={dim}", "n": n,
            "fastmteb": best_seconds(lambda: bitext_mine(source, target), repeats),
            "reference": "mteb BitextMiningEvaluator._similarity_search",
            "reference_timing": best_seconds(mteb_search, 1),
            "max_abs_difference": 1.0 - agreement,
        },
        {
            "case": f"bitext_mine margin k=4, d={dim}", "n": n,
            "fastmteb": best_seconds(lambda: bitext_mine(source, target, method="margin"), repeats),
            "reference": None, "reference_timing": None, "max_abs_difference": None,
        },
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full sizes")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--output", type=Path, default=RESULTS)
    arguments = parser.parse_args()
    size = lambda full: max(10, int(full * arguments.scale))  # noqa: E731

    load_before = os.getloadavg()
    started = time.perf_counter()
    rows = correlation_cases(size(1_000_000), arguments.repeats)
    rows += pair_sweep_cases(size(100_000), arguments.repeats)
    rows += bitext_cases(size(10_000), 384, max(1, arguments.repeats // 2))
    load_after = os.getloadavg()
    cores = os.cpu_count() or 1
    contended = max(load_before[0], load_after[0]) > 0.5 * cores

    print(f"{'case':50s} {'n':>8s} {'ours ms':>9s} {'ref ms':>9s} {'wall x':>7s} "
          f"{'ours cpu':>9s} {'ref cpu':>9s} {'cpu x':>7s}")
    for row in rows:
        ours_wall, ours_cpu = row.pop("fastmteb")
        reference = row.pop("reference_timing")
        row.update(fastmteb_wall_s=ours_wall, fastmteb_cpu_s=ours_cpu)
        line = f"{row['case']:50s} {row['n']:>8d} {ours_wall * 1e3:>9.2f} "
        if reference is None:
            row.update(reference_wall_s=None, reference_cpu_s=None,
                       speedup_wall=None, speedup_cpu=None)
            line += f"{'-':>9s} {'-':>7s} {ours_cpu * 1e3:>9.2f} {'-':>9s} {'-':>7s}"
        else:
            row.update(reference_wall_s=reference[0], reference_cpu_s=reference[1],
                       speedup_wall=reference[0] / ours_wall,
                       speedup_cpu=reference[1] / max(ours_cpu, 1e-9))
            line += (f"{reference[0] * 1e3:>9.2f} {row['speedup_wall']:>6.1f}x "
                     f"{ours_cpu * 1e3:>9.2f} {reference[1] * 1e3:>9.2f} "
                     f"{row['speedup_cpu']:>6.1f}x")
        print(line)
    label = "CONTENDED (shared machine, load average above half the cores)" if contended else "idle"
    print(f"\nload average before/after: {load_before[0]:.2f} / {load_after[0]:.2f} "
          f"on {cores} cores -> {label}")

    arguments.output.parent.mkdir(parents=True, exist_ok=True)
    arguments.output.write_text(json.dumps({
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "cpu_count": cores, "numba_threads": os.environ.get("NUMBA_NUM_THREADS")},
        "load_average_before": load_before, "load_average_after": load_after,
        "contended": contended, "scale": arguments.scale, "repeats": arguments.repeats,
        "total_seconds": time.perf_counter() - started, "results": rows,
    }, indent=2))
    print(f"wrote {arguments.output}")


if __name__ == "__main__":
    main()
