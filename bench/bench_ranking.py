"""Ranking metrics: fastmteb vs pytrec_eval (what mteb runs) vs ranx, on one synthetic run.

    python bench/bench_ranking.py [--queries 10000] [--depth 1000] [--repeats 3]

Data: ``--queries`` queries x ``--depth`` retrieved documents from a corpus of ``--docs`` ids
(decimal strings, so string order differs from index order); float32 scores; per query 1-10
positive judgments (grades 1-3; about 70 % of them retrieved) plus a few zero-grade ones. All
forty-two metrics of mteb (ndcg/map/recall/precision/mrr/hit_rate at k = 1,3,5,10,20,100,1000).

Timed (best of ``--repeats``, after one warm-up call that compiles/loads the Numba kernels):

- ``pytrec_eval``: ``RelevanceEvaluator(qrels, measures)`` + ``evaluate(run)`` on the dicts,
  exactly what mteb's ``calculate_retrieval_scores`` does (mteb's pure-Python MRR on top is
  timed separately as ``mteb MRR``);
- ``ranx``: ``evaluate(Qrels, Run, metrics)`` on prebuilt objects, and on ranx's pre-converted
  Numba typed lists (its kernel alone);
- ``fastmteb dict``: ``ranking_metrics(qrels_dict, run_dict)``, conversion included;
- ``fastmteb array``: ``ranking_metrics(QrelsCSR, run, run_scores=, doc_rank=)``; the one-time
  preparation of the task (``QrelsCSR.from_dict`` + ``doc_tie_rank`` of the corpus ids) is
  reported on its own line.

Prints a table with ratios and writes ``bench/results/ranking.json``. The means of every metric
are checked against pytrec_eval / mteb's MRR before anything is reported.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

RESULTS_PATH = Path(__file__).resolve().parent / "results" / "ranking.json"


def make_data(n_queries: int, depth: int, n_docs: int, seed: int = 0):
    """Array form (run indices, float32 scores, qrels) and the dicts mteb would build from it."""
    rng = np.random.default_rng(seed)
    run = np.empty((n_queries, depth), dtype=np.int64)
    for row in range(n_queries):  # distinct documents per row
        run[row] = rng.choice(n_docs, size=depth, replace=False)
    scores = rng.standard_normal((n_queries, depth)).astype(np.float32)
    doc_ids = [str(j) for j in range(n_docs)]
    query_ids = [f"q{i}" for i in range(n_queries)]

    qrels: dict[str, dict[str, int]] = {}
    for row, query_id in enumerate(query_ids):
        n_positive = int(rng.integers(1, 11))
        retrieved = rng.random(n_positive) < 0.7
        from_run = run[row, rng.integers(0, depth, n_positive)]
        docs = np.where(retrieved, from_run, rng.integers(0, n_docs, n_positive))
        judged = {doc_ids[d]: int(g) for d, g in zip(docs, rng.integers(1, 4, n_positive))}
        for d in rng.integers(0, n_docs, 3):
            judged.setdefault(doc_ids[d], 0)
        qrels[query_id] = judged
    run_dict = {
        query_id: dict(zip([doc_ids[d] for d in run[row]], scores[row].tolist()))
        for row, query_id in enumerate(query_ids)
    }
    return run, scores, doc_ids, query_ids, qrels, run_dict


def best_time(function, repeats: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--depth", type=int, default=1000)
    parser.add_argument("--docs", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-ranx", action="store_true", help="skip ranx (e.g. not installed)")
    parser.add_argument("--output", type=Path, default=RESULTS_PATH)
    args = parser.parse_args()

    import pytrec_eval
    from mteb._evaluators.retrieval_metrics import mrr as mteb_mrr

    from fastmteb.kernels.ranking import DEFAULT_K_VALUES, QrelsCSR, doc_tie_rank, ranking_metrics

    print(f"data: {args.queries} queries x {args.depth} results, {args.docs} ids", flush=True)
    data = make_data(args.queries, args.depth, args.docs)
    run, scores, doc_ids, query_ids, qrels, run_dict = data
    ks = DEFAULT_K_VALUES
    trec_names = {
        "ndcg": "ndcg_cut",
        "map": "map_cut",
        "recall": "recall",
        "precision": "P",
        "hit_rate": "success",
    }
    measures = {f"{name}.{','.join(map(str, ks))}" for name in trec_names.values()}

    timings: dict[str, float] = {}

    # --- fastmteb (warm-up compiles or loads the cached kernels on tiny inputs)
    tiny = QrelsCSR.from_dict(qrels, query_ids[:2], doc_ids)
    ranking_metrics(tiny, run[:2], ks, run_scores=scores[:2], doc_rank=np.arange(len(doc_ids)))
    first_two = query_ids[:2]
    ranking_metrics({q: qrels[q] for q in first_two}, {q: run_dict[q] for q in first_two}, ks)

    start = time.perf_counter()
    qrels_csr = QrelsCSR.from_dict(qrels, query_ids, doc_ids)
    doc_rank = doc_tie_rank(doc_ids)
    qrels_csr._positives  # noqa: B018  (cached per task, like the two lines above)
    timings["fastmteb array: one-time task preparation"] = time.perf_counter() - start

    timings["fastmteb array"], ours_array = best_time(
        lambda: ranking_metrics(qrels_csr, run, ks, run_scores=scores, doc_rank=doc_rank),
        args.repeats,
    )
    timings["fastmteb dict (conversion included)"], ours_dict = best_time(
        lambda: ranking_metrics(qrels, run_dict, ks), args.repeats
    )

    # --- pytrec_eval, as mteb calls it (fresh evaluator each time)
    def run_pytrec():
        return pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run_dict)

    timings["pytrec_eval (evaluator + evaluate)"], pytrec_scores = best_time(
        run_pytrec, min(args.repeats, 2)
    )
    timings["mteb MRR (pure Python, on top of pytrec)"], mrr_lists = best_time(
        lambda: mteb_mrr(qrels, run_dict, list(ks)), 1
    )

    # --- parity check before reporting anything
    worst = 0.0
    for prefix, trec_name in trec_names.items():
        for k in ks:
            values = [pytrec_scores[q][f"{trec_name}_{k}"] for q in pytrec_scores]
            reference = sum(values) / len(values)
            for result in (ours_array, ours_dict):
                worst = max(worst, abs(result.means[f"{prefix}_at_{k}"] - reference))
    for k in ks:
        reference = sum(mrr_lists[f"MRR@{k}"]) / len(mrr_lists[f"MRR@{k}"])
        for result in (ours_array, ours_dict):
            worst = max(worst, abs(result.means[f"mrr_at_{k}"] - reference))
    assert worst <= 1e-12, f"fastmteb disagrees with pytrec_eval/mteb by {worst}"

    # --- ranx
    ranx_ok = False
    if not args.no_ranx:
        try:
            from ranx import Qrels, Run, evaluate

            ranx_names = ("ndcg", "map", "recall", "precision", "mrr", "hit_rate")
            ranx_metrics = [f"{m}@{k}" for m in ranx_names for k in ks]
            ranx_qrels, ranx_run = Qrels(qrels), Run(run_dict)
            evaluate(Qrels({"a": {"x": 1}}), Run({"a": {"x": 1.0}}), ranx_metrics)  # compile
            typed_qrels, typed_run = ranx_qrels.to_typed_list(), ranx_run.to_typed_list()  # sorts
            timings["ranx evaluate(Qrels, Run)"], _ = best_time(
                lambda: evaluate(ranx_qrels, ranx_run, ranx_metrics, save_results_in_run=False),
                args.repeats,
            )
            timings["ranx evaluate(typed lists) = kernel only"], _ = best_time(
                lambda: evaluate(typed_qrels, typed_run, ranx_metrics), args.repeats
            )
            ranx_ok = True
        except ImportError:
            print("ranx not installed: skipped")

    array_s = timings["fastmteb array"]
    dict_s = timings["fastmteb dict (conversion included)"]
    pytrec_s = timings["pytrec_eval (evaluator + evaluate)"]
    mteb_mrr_s = timings["mteb MRR (pure Python, on top of pytrec)"]
    ratios = {
        "pytrec_eval / fastmteb array": pytrec_s / array_s,
        "pytrec_eval / fastmteb dict": pytrec_s / dict_s,
        "(pytrec_eval + mteb MRR) / fastmteb dict": (pytrec_s + mteb_mrr_s) / dict_s,
    }
    if ranx_ok:
        ranx_s = timings["ranx evaluate(Qrels, Run)"]
        ranx_kernel_s = timings["ranx evaluate(typed lists) = kernel only"]
        ratios["ranx(Qrels, Run) / fastmteb array"] = ranx_s / array_s
        ratios["ranx kernel only / fastmteb array"] = ranx_kernel_s / array_s

    width = max(map(len, list(timings) + list(ratios))) + 2
    print(f"\n{'timing (best of %d)' % args.repeats:<{width}}{'seconds':>10}")
    for name, seconds in timings.items():
        print(f"{name:<{width}}{seconds:>10.4f}")
    print(f"\n{'ratio (higher = fastmteb faster)':<{width}}{'x':>10}")
    for name, ratio in ratios.items():
        print(f"{name:<{width}}{ratio:>10.1f}")
    print(f"\nmax |mean difference| vs pytrec_eval/mteb MRR: {worst:.1e}")

    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(
            {
                "queries": args.queries,
                "depth": args.depth,
                "docs": args.docs,
                "repeats": args.repeats,
                "k_values": ks,
                "seconds": timings,
                "ratios": ratios,
                "max_abs_mean_difference": worst,
                "machine": {
                    "python": sys.version.split()[0],
                    "platform": platform.platform(),
                    "cpus": os.cpu_count(),
                    "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
                },
            },
            indent=2,
        )
    )
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
