"""What the provenance hash of the data files costs: load a task from ``--data-dir`` as the runner
does, then hash the files the loader read (cold: the per-process cache emptied; warm: cached).

    python bench/bench_data_hash.py                     # SciFact from ../shared/data, 5 repeats
    python bench/bench_data_hash.py --task STS12 --repeats 3

Prints the load time and both hash times in milliseconds, per repeat and as the median.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")

DATA = Path(os.environ.get("FASTMTEB_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="SciFact")
    parser.add_argument("--data-dir", default=str(DATA))
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    import fastmteb
    from fastmteb import provenance
    from fastmteb.data.loading import load_raw

    meta = fastmteb.get_task(args.task)
    rows = []
    for _ in range(args.repeats):
        provenance._hash_cache.clear()
        t0 = time.perf_counter()
        with provenance.record_reads() as read:
            for split in meta.eval_splits:
                for subset in meta.hf_subsets:
                    load_raw(meta, subset, split, data_dir=args.data_dir)
        t1 = time.perf_counter()
        record = provenance.data_record(meta, args.data_dir, read)
        t2 = time.perf_counter()
        provenance.data_record(meta, args.data_dir, read)
        t3 = time.perf_counter()
        rows.append((1000 * (t1 - t0), 1000 * (t2 - t1), 1000 * (t3 - t2)))
        print(f"load {rows[-1][0]:8.1f} ms   hash cold {rows[-1][1]:7.2f} ms   hash cached {rows[-1][2]:6.3f} ms")
    size = sum((Path(record["folder"]) / name).stat().st_size for name in record["files"])
    load, cold, warm = (statistics.median(column) for column in zip(*rows))
    print(f"{args.task}: {len(record['files'])} files, {size / 1e6:.1f} MB; median load {load:.1f} ms, "
          f"hash cold {cold:.2f} ms ({100 * cold / load:.1f}% of loading), cached {warm:.3f} ms")


if __name__ == "__main__":
    main()
