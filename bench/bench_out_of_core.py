"""Retrieval over a corpus larger than memory: the streamed top-k from a spill file, peak RSS.

    python bench/bench_out_of_core.py [--docs 2000000 --dim 384 --queries 1000 --k 100]
                                      [--memory 256MB] [--dtype float16] [--folder /tmp]
                                      [--cache cold|warm] [--check-queries 20] [--keep]

1. A synthetic corpus (Gaussian rows, a few exact duplicates for ties) is written in chunks of
   ``--chunk`` rows to a spill file (``fastmteb.encoding.store`` layout: a .npy header, then the
   rows as ``--dtype``), so it is never whole in memory: 2,000,000 x 384 float16 = 1.5 GB.
2. ``EmbeddingStore.open(file, max_bytes=--memory)[:]`` is searched exactly as a spilled pool's
   corpus is by the retrieval task (``kernels.sharded_topk``: cosine, parts normalised as they
   are read, top ``--k``). With ``--cache cold`` (default) the file's pages are evicted from the
   page cache first (fsync + ``posix_fadvise(DONTNEED)``) so the rows come from the disk.
3. Measured: RSS before the search (``VmRSS``), peak RSS during it (``VmHWM``, reset through
   ``/proc/self/clear_refs`` just before), wall time, GB of the file streamed per second; and a
   read-only pass over the file (``iter_blocks``) for the disk/page-cache rate alone.
4. Correctness: for ``--check-queries`` queries, a brute force over the file (every score, float32
   ``torch`` normalisation and ``numpy`` products, sorted by score then index) must give the same
   documents and scores within 1e-6 (scores can differ by an ulp with the block shape).

Writes bench/results/out_of_core.json (``--out``) and deletes the corpus file unless ``--keep``.
Figures taken while other processes share the CPUs should be labelled (``--label``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from fastmteb.benchmark import proc_status_kib, reset_peak_rss

RESULTS = Path(__file__).resolve().parent / "results"


def rss_mb(field: str) -> float:
    """``VmRSS`` / ``VmHWM`` / ... of this process in MiB, from /proc/self/status."""
    kib = proc_status_kib(field)
    if kib is None:
        raise RuntimeError(f"{field} not in /proc/self/status")
    return kib / 1024


def evict_from_page_cache(path: Path) -> bool:
    """Ask the kernel to drop the file's cached pages, so the next read comes from the disk."""
    if not hasattr(os, "posix_fadvise"):
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    return True


def write_corpus(folder: Path, docs: int, dim: int, dtype: str, chunk: int, seed: int):
    """A spill file of ``docs`` synthetic rows written ``chunk`` rows at a time; its path."""
    from fastmteb.encoding.store import SpillFile

    spill = SpillFile.create(folder, docs, dim, dtype)
    rng = np.random.default_rng(seed)
    for start in range(0, docs, chunk):
        stop = min(start + chunk, docs)
        rows = rng.standard_normal((stop - start, dim), dtype=np.float32)
        if start == 0:
            rows[1 : min(64, stop)] = rows[0]  # exact duplicates: tied scores across the top-k
        spill.write_rows(np.arange(start, stop), rows)
    path = spill.keep()
    spill.close()
    return path


def brute_force(path: Path, queries: np.ndarray, k: int, chunk: int):
    """Every score of ``queries`` over the file; the k best per query (score desc, index asc)."""
    import torch

    from fastmteb.encoding.store import EmbeddingStore

    view = EmbeddingStore.open(path)[:]
    unit_queries = torch.nn.functional.normalize(torch.from_numpy(queries), p=2, dim=1).numpy()
    scores = np.empty((queries.shape[0], view.shape[0]), dtype=np.float32)
    for start, block in zip(range(0, view.shape[0], chunk), view.iter_blocks(chunk)):
        unit = torch.nn.functional.normalize(torch.from_numpy(block), p=2, dim=1).numpy()
        scores[:, start : start + block.shape[0]] = unit_queries @ unit.T
    view.close()
    top_scores, top_docs = [], []
    for row in scores:
        candidates = np.argpartition(-row, k)[: k * 4] if row.size > 4 * k else np.arange(row.size)
        best = candidates[np.lexsort((candidates, -row[candidates]))][:k]
        threshold = row[best[-1]]
        assert (row > threshold).sum() <= k  # the 4k candidates held every document above the cut
        top_docs.append(best)
        top_scores.append(row[best])
    return np.stack(top_scores), np.stack(top_docs), scores


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=2_000_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--memory", default="256MB", help="max_embedding_memory (default 256MB)")
    parser.add_argument("--dtype", default="float16", choices=["float16", "float32"])
    parser.add_argument("--chunk", type=int, default=32_768, help="rows per write chunk")
    parser.add_argument("--folder", default="/tmp/fastmteb-out-of-core", help="where the file goes")
    parser.add_argument("--cache", default="cold", choices=["cold", "warm"],
                        help="cold: evict the file from the page cache before each pass")
    parser.add_argument("--check-queries", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the corpus file")
    parser.add_argument("--label", default="",
                        help="conditions, e.g. 'idle' or 'under nice, shared CPUs'")
    parser.add_argument("--out", default=str(RESULTS / "out_of_core.json"))
    args = parser.parse_args(argv)

    import torch

    from fastmteb import kernels
    from fastmteb.encoding.store import EmbeddingStore, parse_memory_size

    limit = parse_memory_size(args.memory)
    folder = Path(args.folder)
    rng = np.random.default_rng(args.seed + 1)
    queries = rng.standard_normal((args.queries, args.dim), dtype=np.float32)
    kernels.topk(queries[:4], np.ones((64, args.dim), np.float32), 5)  # Numba compiles here
    rss_start = rss_mb("VmRSS")  # imports, queries and compiled kernels; no corpus yet

    started = time.perf_counter()
    path = write_corpus(folder, args.docs, args.dim, args.dtype, args.chunk, args.seed)
    write_seconds = time.perf_counter() - started
    file_bytes = path.stat().st_size
    queries[0] = np.random.default_rng(args.seed).standard_normal(args.dim, dtype=np.float32)
    # query 0 is the duplicated row 0 (before float16 rounding): its top-64 are exact ties
    try:
        store = EmbeddingStore.open(path, max_bytes=limit)
        view = store[:]

        # the search, exactly as a spilled retrieval corpus is searched
        evicted = [evict_from_page_cache(path)] if args.cache == "cold" else []
        rss_before = rss_mb("VmRSS")
        peak_reset = reset_peak_rss()
        started = time.perf_counter()
        scores, indices = kernels.sharded_topk(queries, view, args.k)
        search_seconds = time.perf_counter() - started
        peak_search = rss_mb("VmHWM")
        del view  # frees its read buffer

        # a read-only pass (its own view and buffer): the disk (cold) or page-cache (warm) rate
        if args.cache == "cold":
            evicted.append(evict_from_page_cache(path))
        reset_peak_rss()
        started = time.perf_counter()
        for _ in store[:].iter_blocks():
            pass
        stream_seconds = time.perf_counter() - started
        stream_peak = rss_mb("VmHWM")

        check = None
        if args.check_queries:
            n_check = min(args.check_queries, args.queries)
            sample = np.linspace(0, args.queries - 1, n_check).astype(int)
            sample[0] = 0
            started = time.perf_counter()
            ref_scores, ref_docs, every = brute_force(path, queries[sample], args.k, 65_536)
            same_docs = [bool(np.array_equal(ref_docs[i], indices[q]))
                         for i, q in enumerate(sample)]
            # the k best scores agree (nothing better was missed) and each returned document has
            # the score returned for it; documents may swap only within an ulp-level near-tie
            score_diff = float(np.abs(ref_scores - scores[sample]).max())
            own_diff = float(max(np.abs(every[i][indices[q]] - scores[q]).max()
                                 for i, q in enumerate(sample)))
            check = {
                "queries": sample.tolist(),
                "same_documents_in_order": int(sum(same_docs)),
                "max_abs_score_difference": score_diff,
                "max_abs_returned_document_score_difference": own_diff,
                "ties_in_query_0": int((scores[0][:-1] == scores[0][1:]).sum()),
                "ok": bool(score_diff <= 1e-6 and own_diff <= 1e-6 and all(
                    len(set(indices[q].tolist())) == indices.shape[1] for q in sample)),
                "seconds": time.perf_counter() - started,
            }
        store.close()
    finally:
        if not args.keep:
            path.unlink(missing_ok=True)
            try:
                folder.rmdir()
            except OSError:
                pass

    gb = file_bytes / 1e9
    result = {
        "label": args.label,
        "config": {
            "docs": args.docs, "dim": args.dim, "dtype": args.dtype, "queries": args.queries,
            "k": args.k, "max_embedding_memory": args.memory, "max_embedding_bytes": limit,
            "block_bytes": store.block_bytes, "cache": args.cache, "write_chunk_rows": args.chunk,
        },
        "file_bytes": file_bytes,
        "corpus_float32_bytes": args.docs * args.dim * 4,
        "write_seconds": write_seconds,
        "page_cache_evicted": bool(evicted) and all(evicted),
        "rss_at_start_mib": rss_start,
        "stream_only": {"seconds": stream_seconds, "gb_per_s": gb / stream_seconds,
                        "peak_rss_mib": stream_peak},
        "search": {
            "seconds": search_seconds,
            "gb_per_s": gb / search_seconds,
            "docs_per_s": args.docs / search_seconds,
            "rss_before_mib": rss_before,
            "peak_rss_mib": peak_search,
            "peak_growth_mib": peak_search - rss_before,
            "peak_growth_since_start_mib": peak_search - rss_start,
            "peak_reset": peak_reset,
        },
        "check": check,
        "machine": {
            "cpus": os.cpu_count(), "platform": platform.platform(),
            "python": sys.version.split()[0], "numpy": np.__version__, "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
        },
        "file_kept": str(path) if args.keep else None,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    s = result["search"]
    print(f"{args.docs:,} x {args.dim} {args.dtype} ({gb:.2f} GB file), {args.queries} queries, "
          f"k={args.k}, limit {args.memory}, cache {args.cache}")
    print(f"  write {write_seconds:.1f} s | read-only pass {stream_seconds:.2f} s "
          f"({result['stream_only']['gb_per_s']:.3g} GB/s)")
    print(f"  search {s['seconds']:.2f} s ({s['gb_per_s']:.3g} GB/s, "
          f"{s['docs_per_s']:,.0f} docs/s)")
    print(f"  RSS at start {rss_start:.0f} MiB, before search {s['rss_before_mib']:.0f} MiB, peak "
          f"during it {s['peak_rss_mib']:.0f} MiB (growth {s['peak_growth_mib']:.0f} MiB; corpus "
          f"as float32 would be {args.docs * args.dim * 4 / 2**20:.0f} MiB)")
    if check:
        print(f"  brute force on {len(check['queries'])} queries: "
              f"{check['same_documents_in_order']} identical rankings, max |score diff| "
              f"{check['max_abs_score_difference']:.2e} -> {'OK' if check['ok'] else 'MISMATCH'}")
    print(f"  -> {out}")
    return 0 if check is None or check["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
