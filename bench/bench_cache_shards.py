"""What writing the embedding cache in shards costs: the same encode with no cache, the cache in
one shard per prompt group (as before issue 11), the default shards and small shards.

    python bench/bench_cache_shards.py [--texts 65536] [--dim 384] [--repeats 3]

The model is a hashed bag of words (microseconds per text), so the figures are the cache's own
cost (hashing keys, sha256, safetensors, fsync, rename), not a model's; a real model spends far
longer per shard encoding it.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from toy_models import bag_of_words  # noqa: E402

from fastmteb.encoding import CallableEncoder, EncodeContext, TextPool  # noqa: E402


def run(texts: list[str], dim: int, cache: Path | None, rows: int | None) -> tuple[float, int]:
    encoder = CallableEncoder(lambda t: bag_of_words(t, dim), name="bow", fingerprint=f"bow{dim}")
    pool = TextPool(encoder, cache_dir=cache, progress=False, cache_shard_rows=rows)
    pool.add(texts, EncodeContext("STSBenchmark", "STS"))
    started = time.perf_counter()
    pool.embeddings()
    seconds = time.perf_counter() - started
    shards = len(list(cache.rglob("shard-*.safetensors"))) if cache is not None else 0
    return seconds, shards


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--texts", type=int, default=65536)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    texts = [f"text number {i} with some words {i % 97} {i % 13}" for i in range(args.texts)]
    configs = [("no cache", None), ("one shard per group", 1 << 40),
               ("default shards", None), ("1024-row shards", 1024)]
    print(f"{args.texts} texts x {args.dim} dims, best of {args.repeats}")
    for label, rows in configs:
        best, shards = float("inf"), 0
        for _ in range(args.repeats):
            folder = Path(tempfile.mkdtemp(prefix="fastmteb-bench-cache-"))
            try:
                seconds, shards = run(texts, args.dim, None if label == "no cache" else folder, rows)
            finally:
                shutil.rmtree(folder)
            best = min(best, seconds)
        print(f"{label:>32}: {best:7.3f} s  ({shards} shards)")


if __name__ == "__main__":
    main()
