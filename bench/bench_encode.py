"""Encoding throughput: fastmteb vs SentenceTransformer.encode vs mteb's encode path, same texts.

    python bench/bench_encode.py                          # full: SciFact corpus + STSBenchmark sentences
    python bench/bench_encode.py --limit 400 --dtype float32,bfloat16   # a quick try on a busy machine
    chrt -f 10 python bench/bench_encode.py               # shared machine: hold other work off the CPU

Texts: SciFact documents ((title + " " + text).strip(), as mteb builds them, prompt type
"document") and STSBenchmark sentence1 + sentence2 (prompt type None), with the bundled
all-MiniLM-L6-v2. Every method encodes the same lists once after a warm-up:

* ``fastmteb <dtype>``: ``TorchEncoder.encode`` (token-budget batches, no dedup);
* ``fastmteb pool <dtype>``: ``TextPool`` (dedup of repeated texts on top);
* ``sentence-transformers``: ``SentenceTransformer.encode(batch_size=32)`` (its default), fp32;
* ``mteb encode path``: ``SentenceTransformerEncoderWrapper.encode`` fed a ``DataLoader`` of a
  ``datasets.Dataset`` with batch size 32, as ``mteb.evaluate`` does.

Reported: seconds, texts/s, tokens/s (real tokens after truncation), padding waste (share of
computed positions that are padding; for sentence-transformers from its own batching rule:
character-length sort, batches of 32), peak memory (CUDA: max allocated; CPU: peak RSS growth,
sampled every 2 ms) and the largest deviation from sentence-transformers' embeddings.
The load average is recorded: figures from a shared, busy machine are labelled "contended".
Writes bench/results/encode.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

DATA = Path(os.environ.get("FASTMTEB_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
RESULTS = Path(__file__).resolve().parent / "results" / "encode.json"


def load_texts(limit: int | None) -> dict[str, list[str]]:
    """{"SciFact": documents, "STSBenchmark": sentences}, each cut to ``limit`` when given."""
    documents, sentences = [], []
    with open(DATA / "SciFact" / "corpus.jsonl", encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            title = row.get("title") or ""
            documents.append((title + " " + row["text"]).strip() if title else row["text"].strip())
    with open(DATA / "STSBenchmark" / "test.jsonl", encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            sentences += [row["sentence1"], row["sentence2"]]
    if limit:
        documents, sentences = documents[:limit], sentences[:limit]
    return {"SciFact": documents, "STSBenchmark": sentences}


class PeakMemory:
    """Peak memory growth during a block: CUDA max allocated, else resident set size sampled."""

    def __init__(self, device: str) -> None:
        self.cuda = device.startswith("cuda")
        self.peak_bytes = 0

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def __enter__(self) -> "PeakMemory":
        if self.cuda:
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._base = torch.cuda.memory_allocated()
            return self
        self._base = self._rss()
        self._peak = self._base
        self._stop = threading.Event()

        def sample() -> None:
            while not self._stop.is_set():
                self._peak = max(self._peak, self._rss())
                time.sleep(0.002)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.cuda:
            import torch

            torch.cuda.synchronize()
            self.peak_bytes = torch.cuda.max_memory_allocated() - self._base
        else:
            self._stop.set()
            self._thread.join()
            self.peak_bytes = max(self._peak, self._rss()) - self._base


def st_padded_tokens(texts: list[str], token_lengths: np.ndarray, batch_size: int = 32) -> int:
    """Padded positions sentence-transformers computes: sort by -len(text) (np.argsort), batches of 32."""
    order = np.argsort([-len(t) for t in texts])
    sorted_lengths = token_lengths[order]
    return int(
        sum(
            sorted_lengths[i : i + batch_size].max() * len(sorted_lengths[i : i + batch_size])
            for i in range(0, len(order), batch_size)
        )
    )


def per_source(
    encode_one: Callable[[str], np.ndarray], names: list[str], seconds: dict[str, float]
) -> dict[str, np.ndarray]:
    """Encode each source with ``encode_one(name)``, recording each source's wall time in ``seconds``."""
    outputs = {}
    for name in names:
        started = time.perf_counter()
        outputs[name] = encode_one(name)
        seconds[name] = time.perf_counter() - started
    return outputs


def measure(
    label: str,
    device: str,
    run: Callable[[], dict[str, np.ndarray]],
    n_texts: int,
    n_tokens: int,
    reference: dict[str, np.ndarray] | None,
    padded: int | None,
) -> tuple[dict, dict[str, np.ndarray]]:
    import gc

    gc.collect()
    with PeakMemory(device) as memory:
        started = time.perf_counter()
        outputs = run()
        seconds = time.perf_counter() - started
    row = {
        "method": label,
        "seconds": seconds,
        "texts_per_s": n_texts / seconds,
        "tokens_per_s": n_tokens / seconds,
        "padding_waste": None if padded is None else 1.0 - n_tokens / padded,
        "peak_memory_mb": memory.peak_bytes / 2**20,
    }
    if reference is not None:
        diffs, cosines = [], []
        for name, ref in reference.items():
            ours = np.asarray(outputs[name], dtype=np.float64)
            diffs.append(np.abs(ours - ref).max())
            cosines.append(
                (
                    np.sum(ours * ref, 1)
                    / (np.linalg.norm(ours, axis=1) * np.linalg.norm(ref, axis=1))
                ).min()
            )
        row["max_abs_diff_vs_st"] = float(max(diffs))
        row["min_cosine_vs_st"] = float(min(cosines))
    return row, outputs


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--limit", type=int, default=None, help="texts per source (default: all)")
    parser.add_argument(
        "--dtype", default="float32,bfloat16", help="fastmteb dtypes, comma-separated"
    )
    parser.add_argument("--device", default=None, help="cpu | cuda (default: cuda when available)")
    parser.add_argument("--batch-tokens", type=int, default=16384)
    parser.add_argument("--skip-mteb", action="store_true", help="leave out mteb's encode path")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import torch
    from datasets import Dataset
    from torch.utils.data import DataLoader

    from fastmteb.encoding import EncodeContext, TextPool, load_encoder

    load_before = os.getloadavg()
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    sources = load_texts(args.limit)
    contexts = {
        "SciFact": EncodeContext("SciFact", "Retrieval", prompt_type="document"),
        "STSBenchmark": EncodeContext("STSBenchmark", "STS"),
    }
    encoders = {
        dtype: load_encoder(device=device, dtype=dtype, batch_tokens=args.batch_tokens)
        for dtype in args.dtype.split(",")
    }
    st_model = next(iter(encoders.values())).sentence_transformer
    fp32 = load_encoder(st_model, device=device, dtype="float32")
    lengths = {
        name: np.array([len(ids) for ids in fp32.tokenize(texts, contexts[name])])
        for name, texts in sources.items()
    }
    n_texts = sum(len(t) for t in sources.values())
    n_tokens = int(sum(counts.sum() for counts in lengths.values()))
    st_padded = sum(st_padded_tokens(sources[name], lengths[name]) for name in sources)

    warm = {name: texts[:64] for name, texts in sources.items()}
    for encoder in encoders.values():
        for name, texts in warm.items():
            encoder.encode(texts, contexts[name])
    st_model.encode(warm["STSBenchmark"], batch_size=32)

    source_seconds: dict[str, dict[str, float]] = {}

    def run_st() -> dict[str, np.ndarray]:
        encode = {"SciFact": st_model.encode_document, "STSBenchmark": st_model.encode}
        return per_source(
            lambda name: encode[name](sources[name], batch_size=32),
            list(sources),
            source_seconds.setdefault("sentence-transformers", {}),
        )

    rows = []
    st_row, reference = measure(
        "sentence-transformers (batch 32, fp32)", device, run_st, n_texts, n_tokens, None, st_padded
    )
    st_row["per_source_seconds"] = source_seconds["sentence-transformers"]
    reference = {k: np.asarray(v, dtype=np.float64) for k, v in reference.items()}
    rows.append(st_row)

    if not args.skip_mteb:
        import mteb
        from mteb.models.sentence_transformer_wrapper import SentenceTransformerEncoderWrapper
        from mteb.types import PromptType

        wrapper = SentenceTransformerEncoderWrapper(st_model)
        metadata = {name: mteb.get_task(name).metadata for name in sources}
        prompt_types = {"SciFact": PromptType.document, "STSBenchmark": None}

        def run_mteb() -> dict[str, np.ndarray]:
            return {
                name: np.asarray(
                    wrapper.encode(
                        DataLoader(Dataset.from_dict({"text": texts}), batch_size=32),
                        task_metadata=metadata[name],
                        hf_split="test",
                        hf_subset="default",
                        prompt_type=prompt_types[name],
                        batch_size=32,
                        show_progress_bar=False,
                    )
                )
                for name, texts in sources.items()
            }

        rows.append(
            measure(
                "mteb encode path (ST wrapper, DataLoader 32)",
                device,
                run_mteb,
                n_texts,
                n_tokens,
                reference,
                st_padded,
            )[0]
        )

    for dtype, encoder in encoders.items():
        encoder.last_stats = None
        padded_counter = {"padded": 0}

        seconds_by_source = source_seconds.setdefault(dtype, {})

        def run_fast(encoder=encoder, counter=padded_counter, seconds=seconds_by_source) -> dict[str, np.ndarray]:
            def encode_one(name: str) -> np.ndarray:
                vectors = encoder.encode(sources[name], contexts[name])
                counter["padded"] += encoder.last_stats.padded_tokens
                return vectors

            return per_source(encode_one, list(sources), seconds)

        row, _ = measure(
            f"fastmteb {dtype} ({encoder.compute_dtype})",
            device,
            run_fast,
            n_texts,
            n_tokens,
            reference,
            None,
        )
        row["padding_waste"] = 1.0 - n_tokens / padded_counter["padded"]
        row["per_source_seconds"] = seconds_by_source
        row["per_source_speedup_vs_st"] = {
            name: source_seconds["sentence-transformers"][name] / seconds
            for name, seconds in seconds_by_source.items()
        }
        rows.append(row)

        def run_pool(encoder=encoder) -> dict[str, np.ndarray]:
            pool = TextPool(encoder, progress=False)
            indices = {name: pool.add(texts, contexts[name]) for name, texts in sources.items()}
            vectors = pool.embeddings()
            run_pool.stats = pool.stats
            return {name: vectors[index] for name, index in indices.items()}

        row, _ = measure(
            f"fastmteb pool {dtype} (dedup)", device, run_pool, n_texts, n_tokens, reference, None
        )
        row["padding_waste"] = run_pool.stats["padding_waste"]
        row["distinct_texts"] = run_pool.stats["distinct"]
        rows.append(row)

    base = rows[0]["seconds"]
    for row in rows:
        row["speedup_vs_st"] = base / row["seconds"]
    load_after = os.getloadavg()
    realtime = os.sched_getscheduler(0) in (os.SCHED_FIFO, os.SCHED_RR)
    contended = max(load_before[0], load_after[0]) > 0.5 * (os.cpu_count() or 1)
    result = {
        "label": "realtime priority (chrt -f: other processes held off the CPU)"
        if realtime
        else "contended (shared machine, figures indicative only)"
        if contended
        else "idle machine",
        "load_average_before_after": [load_before, load_after],
        "device": device if device == "cpu" else torch.cuda.get_device_name(),
        "cpu": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "texts": {name: len(t) for name, t in sources.items()},
        "tokens": n_tokens,
        "batch_tokens": args.batch_tokens,
        "rows": rows,
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2))
    print(
        f"{n_texts} texts, {n_tokens} tokens on {result['device']} ({result['label']}; "
        f"load {load_before[0]:.1f} -> {load_after[0]:.1f})"
    )
    header = f"{'method':48} {'s':>8} {'texts/s':>9} {'tok/s':>9} {'pad%':>6} {'peakMB':>8} {'xST':>6} {'maxdiff':>9} {'mincos':>8}"
    print(header)
    print("-" * len(header))
    for row in rows:
        pad = "" if row["padding_waste"] is None else f"{100 * row['padding_waste']:.1f}"
        diff = row.get("max_abs_diff_vs_st")
        cos = row.get("min_cosine_vs_st")
        print(
            f"{row['method']:48} {row['seconds']:8.2f} {row['texts_per_s']:9.1f} {row['tokens_per_s']:9.0f} "
            f"{pad:>6} {row['peak_memory_mb']:8.1f} {row['speedup_vs_st']:6.2f} "
            f"{'' if diff is None else f'{diff:.1e}':>9} {'' if cos is None else f'{cos:.5f}':>8}"
        )
    for row in rows:
        if "per_source_speedup_vs_st" in row:
            detail = ", ".join(
                f"{name} {row['per_source_seconds'][name]:.1f} s ({speedup:.2f}x ST)"
                for name, speedup in row["per_source_speedup_vs_st"].items()
            )
            print(f"  {row['method']}: {detail}")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
