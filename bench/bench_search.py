"""Exact top-k search: fastmteb.kernels.topk against its peers, in one run.

    python bench/bench_search.py [--queries 2000 --docs 200000 --dim 384 --k 1000] [--device cuda]

Peers (same unit-norm float32 embeddings, inner product, k results per query):
- ``faiss_flat_ip``: faiss-cpu ``IndexFlatIP.search`` (BLAS + faiss's heaps);
- ``torch_blocked``: ``torch.matmul`` + ``torch.topk`` per corpus block, merged with ``torch.topk``;
- ``mteb_chunk_heap``: mteb 2.26's ``chunked_full_corpus_search`` merge — per 50,000-doc chunk a
  dense score matrix, ``torch.topk(k + 1)``, then a Python heap of ``(score, doc_id)`` tuples.

Each method runs in its own subprocess (so peak memory is its own): wall time of the search
(after a warm-up on a small slice, so Numba compilation is excluded), peak RSS growth during the
search (``/proc/self/clear_refs`` resets the high-water mark) and, for fastmteb, tracemalloc's peak
of numpy allocations. On CUDA, TFLOP/s = 2 * Q * D * dim / time against the H200's ~790 TFLOP/s
dense bf16. Prints a table with ratios and writes bench/results/search.json.
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
H200_BF16_TFLOPS = 790.0
MTEB_CHUNK = 50_000
TORCH_BLOCK = 16_384
CPU_METHODS = ["fastmteb_topk", "faiss_flat_ip", "torch_blocked", "mteb_chunk_heap"]
CUDA_METHODS = ["fastmteb_topk_bf16", "fastmteb_topk_fp32", "torch_blocked_fp32"]


# ---------------------------------------------------------------- methods (run in the worker)


def run_fastmteb(queries, corpus, k, device, dtype_name="float32"):
    from fastmteb.kernels import topk

    if device == "cuda":
        import torch

        dtype = getattr(torch, dtype_name)
        queries = torch.from_numpy(queries).to("cuda", dtype)
        corpus = torch.from_numpy(corpus).to("cuda", dtype)
    scores, indices = topk(queries, corpus, k, metric="dot")
    return _to_numpy(scores), _to_numpy(indices)


def run_faiss(queries, corpus, k, device):
    import faiss

    index = faiss.IndexFlatIP(corpus.shape[1])
    index.add(corpus)
    return index.search(queries, k)


def run_torch_blocked(queries, corpus, k, device):
    import torch

    q = torch.from_numpy(queries).to(device)
    best_scores = best_indices = None
    for start in range(0, corpus.shape[0], TORCH_BLOCK):
        block = torch.from_numpy(corpus[start:start + TORCH_BLOCK]).to(device)
        scores, indices = torch.topk(q @ block.T, min(k, block.shape[0]), dim=1)
        indices += start
        if best_scores is not None:
            scores = torch.cat((best_scores, scores), dim=1)
            indices = torch.cat((best_indices, indices), dim=1)
            scores, picked = torch.topk(scores, min(k, scores.shape[1]), dim=1)
            indices = torch.gather(indices, 1, picked)
        best_scores, best_indices = scores, indices
    return _to_numpy(best_scores), _to_numpy(best_indices)


def run_mteb_chunk_heap(queries, corpus, k, device):
    """mteb/models/search_wrappers.py::chunked_full_corpus_search, minus the encoding."""
    import torch

    q = torch.from_numpy(queries)
    heaps: list[list[tuple[float, int]]] = [[] for _ in range(q.shape[0])]
    for start in range(0, corpus.shape[0], MTEB_CHUNK):
        scores = q @ torch.from_numpy(corpus[start:start + MTEB_CHUNK]).T
        values, idx = torch.topk(scores, min(k + 1, scores.shape[1]), dim=1, largest=True)
        idx_list, values_list = idx.tolist(), values.tolist()
        del scores, values, idx
        for heap, row_idx, row_values in zip(heaps, idx_list, values_list):
            for doc, score in zip(row_idx, row_values):
                if len(heap) < k:
                    heapq.heappush(heap, (score, start + doc))
                else:
                    heapq.heappushpop(heap, (score, start + doc))
    ranked = [sorted(heap, reverse=True) for heap in heaps]
    return (np.array([[s for s, _ in r] for r in ranked], dtype=np.float32),
            np.array([[d for _, d in r] for r in ranked], dtype=np.int64))


def _to_numpy(x):
    return x.cpu().numpy() if hasattr(x, "cpu") else np.asarray(x)


METHODS = {
    "fastmteb_topk": run_fastmteb,
    "fastmteb_topk_fp32": lambda q, c, k, d: run_fastmteb(q, c, k, d, "float32"),
    "fastmteb_topk_bf16": lambda q, c, k, d: run_fastmteb(q, c, k, d, "bfloat16"),
    "faiss_flat_ip": run_faiss,
    "torch_blocked": run_torch_blocked,
    "torch_blocked_fp32": run_torch_blocked,
    "mteb_chunk_heap": run_mteb_chunk_heap,
}


def _rss_bytes(field: str) -> int:
    from fastmteb.benchmark import proc_status_kib  # lazily, like the other fastmteb imports here

    return (proc_status_kib(field) or 0) * 1024


def worker(args) -> None:
    queries = np.load(Path(args.data) / "queries.npy")
    corpus = np.load(Path(args.data) / "corpus.npy")
    method = METHODS[args.worker]
    method(queries[:8], corpus[: min(4 * args.k, corpus.shape[0])], args.k, args.device)  # warm-up
    sync = _cuda_sync if args.device == "cuda" else (lambda: None)
    if args.device == "cuda":
        import torch

        torch.cuda.reset_peak_memory_stats()
        gpu_base = torch.cuda.memory_allocated()
    from fastmteb.benchmark import reset_peak_rss

    exact_peak = reset_peak_rss()
    rss_before = _rss_bytes("VmRSS")
    hwm_before = _rss_bytes("VmHWM")
    sync()
    start = time.perf_counter()
    scores, indices = method(queries, corpus, args.k, args.device)
    sync()
    seconds = time.perf_counter() - start
    peak = _rss_bytes("VmHWM")
    record = {
        "method": args.worker,
        "seconds": seconds,
        "peak_rss_growth_mb": (peak - (rss_before if exact_peak else hwm_before)) / 2**20,
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if args.device == "cuda":
        import torch

        record["gpu_peak_growth_mb"] = (torch.cuda.max_memory_allocated() - gpu_base) / 2**20
        flops = 2.0 * queries.shape[0] * corpus.shape[0] * corpus.shape[1]
        record["tflops"] = flops / seconds / 1e12
        record["fraction_of_h200_bf16"] = record["tflops"] / H200_BF16_TFLOPS
    if args.worker == "fastmteb_topk":
        import tracemalloc

        tracemalloc.start()
        method(queries, corpus, args.k, args.device)
        record["tracemalloc_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    np.save(Path(args.data) / f"{args.worker}_indices.npy", indices)
    np.save(Path(args.data) / f"{args.worker}_scores.npy", scores)
    print(json.dumps(record))


def _cuda_sync():
    import torch

    torch.cuda.synchronize()


# ---------------------------------------------------------------- driver


def make_data(directory: Path, n_queries: int, n_docs: int, dim: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for name, rows in (("queries", n_queries), ("corpus", n_docs)):
        x = rng.standard_normal((rows, dim), dtype=np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        np.save(directory / f"{name}.npy", x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--docs", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--k", type=int, default=1000)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--methods", nargs="*", help="subset of the methods to run")
    parser.add_argument("--out", type=Path, default=RESULTS / "search.json")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.device == "auto":
        import torch

        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.worker:
        worker(args)
        return

    methods = args.methods or (CUDA_METHODS if args.device == "cuda" else CPU_METHODS)
    load_before = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_search_") as tmp:
        make_data(Path(tmp), args.queries, args.docs, args.dim)
        for method in methods:
            cmd = [sys.executable, __file__, "--worker", method, "--data", tmp,
                   "--k", str(args.k), "--device", args.device]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                print(f"{method} failed:\n{done.stderr[-2000:]}", file=sys.stderr)
                continue
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        reference = rows[0]["method"] if rows else None
        if reference:
            ref_idx = np.load(Path(tmp) / f"{reference}_indices.npy")
            ref_scores = np.load(Path(tmp) / f"{reference}_scores.npy")
            for row in rows:
                idx = np.load(Path(tmp) / f"{row['method']}_indices.npy")
                scores = np.load(Path(tmp) / f"{row['method']}_scores.npy")
                row["same_index_fraction"] = float((idx == ref_idx).mean())
                row["max_score_diff"] = float(np.abs(scores - ref_scores).max())
    base = rows[0]["seconds"] if rows else float("nan")
    for row in rows:
        row["seconds_vs_first"] = row["seconds"] / base
    load_after = os.getloadavg()
    report = {
        "shape": {"queries": args.queries, "docs": args.docs, "dim": args.dim, "k": args.k},
        "device": args.device,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "loadavg_before": load_before, "loadavg_after": load_after},
        "note": "loadavg > cpus means the timings were taken under contention",
        "results": rows,
    }
    _print_table(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


def _print_table(report: dict) -> None:
    shape = report["shape"]
    print(f"top-k search: {shape['queries']} queries x {shape['docs']} docs x {shape['dim']} dims, "
          f"k={shape['k']}, device={report['device']}, "
          f"loadavg {report['machine']['loadavg_before'][0]:.1f} "
          f"on {report['machine']['cpus']} cpus")
    header = f"{'method':<22}{'seconds':>9}{'x first':>9}{'peak RSS +MB':>14}{'same idx':>10}"
    cuda = report["device"] == "cuda"
    if cuda:
        header += f"{'TFLOP/s':>9}{'% H200':>8}"
    print(header)
    for row in report["results"]:
        line = (f"{row['method']:<22}{row['seconds']:>9.3f}{row['seconds_vs_first']:>9.2f}"
                f"{row['peak_rss_growth_mb']:>14.1f}{row.get('same_index_fraction', 1):>10.4f}")
        if cuda:
            line += f"{row['tflops']:>9.1f}{100 * row['fraction_of_h200_bf16']:>7.1f}%"
        print(line)
    fast = next((r for r in report["results"] if r["method"].startswith("fastmteb")), None)
    if fast and "tracemalloc_peak_mb" in fast:
        print("fastmteb_topk tracemalloc peak (numpy allocations): "
              f"{fast['tracemalloc_peak_mb']:.1f} MB")


if __name__ == "__main__":
    main()
