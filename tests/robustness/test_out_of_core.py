"""Embeddings past ``max_embedding_memory``: spilled to a file, streamed back, same results.

Checks that a spilled corpus gives the in-memory top-k to the bit (ties included), that a real
run (bundled SciFact + SICK-R, a hashed bag-of-words model) writes the same files with and
without a limit, that spill files are deleted (and a killed run's are cleaned up), that a
truncated or foreign spill file is refused, and that streaming keeps the process's RSS far below
the corpus size.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import numpy as np
import pytest

import fastmteb
from fastmteb import kernels
from fastmteb.cli import EXIT_BAD_INPUT, main
from fastmteb.encoding import CallableEncoder, EncodeContext, TextPool
from fastmteb.encoding.store import (
    HEADER_BYTES,
    EmbeddingStore,
    EmbeddingStoreError,
    RowView,
    SpillFile,
    SpillFileError,
    parse_memory_size,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from toy_models import bag_of_words  # noqa: E402

CTX = EncodeContext("SciFact", "Retrieval", "document", "test", "default", None)


def _spilled(x: np.ndarray, folder: Path, dtype: str = "float32") -> RowView:
    store = EmbeddingStore(x.shape[0], x.shape[1], max_bytes=0, folder=folder, dtype=dtype)
    order = np.random.default_rng(1).permutation(x.shape[0])  # rows written out of order
    store[order] = x[order]
    view = store[: x.shape[0]]
    assert isinstance(view, RowView) and store.spilled
    return view


def _corpus_with_ties(n: int, dim: int, seed: int) -> np.ndarray:
    """Random rows, blocks of exact duplicates (equal scores), a zero row, a scaled duplicate."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim)).astype(np.float32)
    x[1000:1300] = x[7]  # 300 exact ties, across kernel blocks below
    x[n - 50 :] = x[3]  # ties at the very end (the last, short block)
    x[11] = 0.0  # normalize's eps path
    x[12] = x[7] * 4.0  # same direction, another norm
    x[:: 97] = np.round(x[:: 97], 1)
    return x


# ---------------------------------------------------------------- settings


@pytest.mark.parametrize(
    "value, expected",
    [(None, None), (0, 0), (1234, 1234), ("2GB", 2 * 10**9), ("512MiB", 512 * 2**20),
     (" 1.5k ", 1536), ("10 mb", 10**7), ("3G", 3 * 2**30), ("7b", 7)],
)
def test_memory_sizes_parse(value, expected):
    assert parse_memory_size(value) == expected


@pytest.mark.parametrize("value", ["-1", "2 parsecs", "GB", "", True, [1], -5, float("nan")])
def test_bad_memory_sizes_are_refused_with_the_setting_named(value):
    with pytest.raises(EmbeddingStoreError, match="max_embedding_memory"):
        parse_memory_size(value)


# ---------------------------------------------------------------- search: spilled == in memory


@pytest.mark.parametrize(
    "n_queries, n_docs, dim",
    [
        (1, 20_000, 384),  # one query: BLAS's gemv, whose last bits depend on the block length
        (37, 70_000, 16),  # more than one 65536-row normalise part; kernel blocks of 16384
        (2100, 70_000, 16),  # kernel blocks of 7936 rows, not aligned with those parts
    ],
)
def test_spilled_search_equals_in_memory_including_ties(tmp_path, n_queries, n_docs, dim):
    corpus = _corpus_with_ties(n_docs, dim, seed=n_queries)
    rng = np.random.default_rng(2)
    queries = rng.standard_normal((n_queries, dim)).astype(np.float32)
    queries[:5] = corpus[7]  # queries that score the 300 tied rows highest
    tie_rank = rng.permutation(corpus.shape[0]).astype(np.int64)
    tie_rank[1000:1150] = 5  # equal tie ranks too: fall back to the index
    view = _spilled(corpus, tmp_path)

    k = n_docs if n_queries == 1 else 100  # one query: compare every score
    expected = kernels.sharded_topk(queries, corpus, k, tie_rank=tie_rank)
    got = kernels.sharded_topk(queries, view, k, tie_rank=tie_rank)
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])
    assert (expected[0][:5, :99] == expected[0][:5, 1:100]).all()  # the ties were really exercised

    # a request's gathered rows: unordered, with repeats (dedup'd texts), as the runner builds them
    request = rng.integers(0, corpus.shape[0], 40_000)
    request[:300] = np.arange(1000, 1300)[::-1]
    expected = kernels.sharded_topk(queries, corpus[request], 50)
    got = kernels.sharded_topk(queries, view[request], 50)
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])


def test_topk_streams_a_row_view_directly(tmp_path):
    corpus = _corpus_with_ties(20_000, 24, seed=3)
    queries = np.random.default_rng(4).standard_normal((64, 24)).astype(np.float32)
    view = _spilled(corpus, tmp_path)
    for metric in ("cosine", "dot"):
        expected = kernels.topk(queries, corpus, 30, metric=metric, block_size=3000)
        got = kernels.topk(queries, view, 30, metric=metric, block_size=3000)
        np.testing.assert_array_equal(got[0], expected[0])
        np.testing.assert_array_equal(got[1], expected[1])


def test_float16_spill_equals_search_over_float16_rounded_vectors(tmp_path):
    corpus = _corpus_with_ties(9_000, 32, seed=5)
    queries = np.random.default_rng(6).standard_normal((40, 32)).astype(np.float32)
    view = _spilled(corpus, tmp_path, dtype="float16")
    assert view.store.path.stat().st_size == HEADER_BYTES + corpus.size * 2
    rounded = corpus.astype(np.float16).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(view), rounded)
    expected = kernels.sharded_topk(queries, rounded, 20)
    got = kernels.sharded_topk(queries, view, 20)
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])


def test_row_view_reads_like_numpy_indexing(tmp_path):
    x = np.arange(600, dtype=np.float32).reshape(100, 6)
    view = _spilled(x, tmp_path)
    view.store.block_bytes = 7 * 6 * 4  # 7-row blocks: reads span several blocks
    for key in (slice(None), slice(10, 40), slice(90, 200), np.array([5, 3, 3, 99, -1, 0]),
                np.array([], dtype=np.int64), np.arange(20, 80)):
        np.testing.assert_array_equal(np.asarray(view[key]), x[key])
    nested = view[np.array([9, 8, 7, 50, 51])][np.array([4, 0, 0])]
    np.testing.assert_array_equal(np.asarray(nested), x[[51, 9, 9]])
    blocks = [block.copy() for block in view[10:33].iter_blocks()]
    assert [len(b) for b in blocks] == [7, 7, 7, 2]
    np.testing.assert_array_equal(np.concatenate(blocks), x[10:33])
    with pytest.raises(IndexError):
        view[np.array([100])]


# ---------------------------------------------------------------- the pool


def _hash_model(texts):
    out = np.zeros((len(texts), 8), dtype=np.float32)
    for i, text in enumerate(texts):
        out[i, zlib.crc32(text.encode()) % 8] += 1.0 + len(text) % 5
        out[i, 7] += 0.25
    return out


def test_pool_spills_past_the_limit_and_keeps_every_row(tmp_path):
    texts = [f"document {i}" for i in range(300)]
    reference = TextPool(CallableEncoder(_hash_model, name="hash"), progress=False)
    ref_idx = reference.add(texts, CTX)
    limited = TextPool(CallableEncoder(_hash_model, name="hash"), progress=False,
                       max_embedding_memory=200 * 8 * 4, spill_dir=tmp_path / "spill")
    first = limited.add(texts[:150], CTX)
    in_ram = limited.embeddings()
    assert isinstance(in_ram, np.ndarray) and not limited.spilled  # 150 rows fit in the limit
    second = limited.add(texts[150:], CTX)  # 300 rows do not: the rows move to a file
    vectors = limited.embeddings()
    assert isinstance(vectors, RowView) and limited.spilled
    path = limited._vectors.path
    assert path.parent == tmp_path / "spill"
    expected = reference.embeddings()[ref_idx]
    np.testing.assert_array_equal(np.asarray(vectors[np.concatenate([first, second])]), expected)

    limited.reset_embeddings()  # a re-encode reuses the same file, overwriting every row
    again = limited.embeddings()
    assert limited._vectors.path == path
    np.testing.assert_array_equal(np.asarray(again[np.concatenate([first, second])]), expected)
    del limited, vectors, again
    gc.collect()
    assert not path.exists()


def test_a_limited_pool_encodes_in_pieces_with_the_same_batches(tiny_bert, tmp_path, monkeypatch):
    """Past the limit the pool encodes runs of whole planned batches and stores each before the
    next: no encode holds the whole group, and every vector is bitwise the unlimited one."""
    from fastmteb.encoding import load_encoder

    texts = [f"document number {i} " + "word " * (i % 37) for i in range(400)]
    encoder = load_encoder(str(tiny_bert), device="cpu", dtype="float32", batch_tokens=512)
    whole = TextPool(encoder, progress=False)
    whole_index = whole.add(texts, CTX)
    expected = whole.embeddings()[whole_index]
    calls = []
    original = type(encoder).encode_tokenized
    monkeypatch.setattr(
        type(encoder), "encode_tokenized",
        lambda self, ids, *a, **k: calls.append(len(ids)) or original(self, ids, *a, **k),
    )
    limited = TextPool(encoder, progress=False, max_embedding_memory=60 * 32 * 4 * 4,
                       spill_dir=tmp_path / "spill")
    index = limited.add(texts, CTX)
    vectors = limited.embeddings()
    assert len(calls) > 3 and max(calls) <= 60 and sum(calls) == 400
    assert np.asarray(vectors[index]).tobytes() == expected.tobytes()


# ---------------------------------------------------------------- spill files: lifetime, damage


def test_spill_file_is_deleted_on_close_and_by_the_garbage_collector(tmp_path):
    folder = tmp_path / "spill"
    view = _spilled(np.ones((10, 4), np.float32), folder)
    path = view.store.path
    assert path.exists()
    view.close()
    assert not path.exists() and not folder.exists()  # the emptied folder goes too
    with pytest.raises(SpillFileError, match="closed"):
        np.asarray(view)
    view = _spilled(np.ones((10, 4), np.float32), folder)
    path = view.store.path
    del view
    gc.collect()
    assert not path.exists()
    folder.mkdir()  # a folder that was there before is left in place
    _spilled(np.ones((10, 4), np.float32), folder).close()
    assert folder.is_dir() and not list(folder.iterdir())


def test_a_killed_runs_spill_file_is_removed_and_live_ones_are_kept(tmp_path):
    folder = tmp_path / "spill"
    folder.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_pid = int(dead.stdout)
    host = SpillFile.create(tmp_path / "probe", 1, 1).path.name.split("-")[1]
    stale = folder / f"spill-{host}-{dead_pid}-abc123.npy"
    live = folder / f"spill-{host}-{os.getppid()}-abc123.npy"
    foreign_host = folder / f"spill-otherhost-{dead_pid}-abc123.npy"
    for path in (stale, live, foreign_host):
        path.write_bytes(b"x")
    view = _spilled(np.ones((3, 2), np.float32), folder)
    assert not stale.exists() and live.exists() and foreign_host.exists()
    assert view.store.path.name.startswith(f"spill-{host}-{os.getpid()}-")


@pytest.mark.parametrize("damage", ["truncate_rows", "truncate_header", "grow"])
def test_a_damaged_spill_file_is_detected_not_read_as_zeros(tmp_path, damage):
    x = np.random.default_rng(0).standard_normal((500, 8)).astype(np.float32)
    view = _spilled(x, tmp_path)
    path = view.store.path
    size = path.stat().st_size
    new_size = {"truncate_rows": size - 100, "truncate_header": 50, "grow": size + 32}[damage]
    os.truncate(path, new_size)
    with pytest.raises(SpillFileError, match="bytes, expected"):
        np.asarray(view)
    with pytest.raises(SpillFileError):
        kernels.sharded_topk(x[:3], view, 5)
    with pytest.raises(SpillFileError):
        SpillFile.open(path)


def test_a_foreign_file_is_refused(tmp_path):
    np.save(tmp_path / "float64.npy", np.zeros((4, 4)))
    header = b"{'descr': os.system}" * 8  # not a literal: never evaluated
    (tmp_path / "garbage.npy").write_bytes(b"\x93NUMPY\x01\x00" + b"\x76\x00" + header)
    for name in ("float64.npy", "garbage.npy"):
        with pytest.raises(SpillFileError, match="cannot be used"):
            SpillFile.open(tmp_path / name)


def test_a_spill_file_opens_with_numpy_and_round_trips(tmp_path):
    x = np.random.default_rng(1).standard_normal((40, 5)).astype(np.float32)
    view = _spilled(x, tmp_path)
    np.testing.assert_array_equal(np.load(view.store.path, mmap_mode="r"), x)
    reopened = SpillFile.open(view.store.path)
    assert (reopened.n_rows, reopened.dim, reopened.dtype) == (40, 5, np.float32)
    reopened.close()
    assert view.store.path.exists()  # a file opened, not created, is not deleted


# ---------------------------------------------------------------- a real run


def _result_files(folder: Path) -> dict[str, dict]:
    files = {}
    for path in sorted(folder.rglob("*.json")):
        data = json.loads(path.read_text())
        # fastmteb's provenance records the memory limit and spill dtype, which differ by design
        for key in ("evaluation_time", "date", "evaluation_phases", "fastmteb"):
            data.pop(key, None)
        files[path.name] = data
    return files


def test_evaluate_with_a_tiny_limit_writes_the_same_files(tmp_path, monkeypatch):
    reads = []
    original_read = RowView.read
    monkeypatch.setattr(
        RowView, "read", lambda self, a, b: reads.append(b - a) or original_read(self, a, b)
    )
    tasks = ["SciFact", "SICK-R"]  # a streamed corpus, and requests read back into memory
    fastmteb.evaluate(bag_of_words, tasks, output_folder=tmp_path / "memory", progress=False)
    assert reads == []
    cache = tmp_path / "cache"
    fastmteb.evaluate(bag_of_words, tasks, output_folder=tmp_path / "spilled", progress=False,
                      cache_dir=cache, max_embedding_memory="64KiB")
    assert sum(reads) >= 5183  # SciFact's whole corpus came from the spill file
    memory, spilled = _result_files(tmp_path / "memory"), _result_files(tmp_path / "spilled")
    assert set(memory) == {"SciFact.json", "SICK-R.json", "model_meta.json"} and memory == spilled
    assert not (cache / ".fastmteb-spill").exists()
    assert not list((tmp_path / "spilled").rglob("spill-*"))


def thirds(texts: list[str]) -> np.ndarray:
    """bag_of_words / 3: values float16 cannot hold exactly (bag_of_words itself it can)."""
    return bag_of_words(texts) / np.float32(3.0)


def test_a_float16_spill_scores_the_float16_rounded_vectors(tmp_path):
    tasks = ["SciFact", "SICK-R"]

    def rounded(texts):
        return thirds(texts).astype(np.float16).astype(np.float32)

    fastmteb.evaluate(CallableEncoder(rounded, name="thirds"), tasks, output_folder=tmp_path / "rounded",
                      progress=False)
    fastmteb.evaluate(CallableEncoder(thirds, name="thirds"), tasks, output_folder=tmp_path / "exact",
                      progress=False)
    fastmteb.evaluate(CallableEncoder(thirds, name="thirds"), tasks, output_folder=tmp_path / "spilled",
                      progress=False, max_embedding_memory="64KiB", spill_dtype="float16")
    spilled = _result_files(tmp_path / "spilled")
    rounded = _result_files(tmp_path / "rounded")
    # another callable, so another model fingerprint: model_meta.json names another fp- revision
    assert spilled.pop("model_meta.json")["revision"] != rounded.pop("model_meta.json")["revision"]
    assert spilled == rounded
    exact = _result_files(tmp_path / "exact")["SciFact.json"]["scores"]["test"][0]
    assert exact != spilled["SciFact.json"]["scores"]["test"][0]  # the rounding is real
    assert not list((tmp_path / "spilled").rglob("spill-*"))


def test_a_float16_spill_without_a_limit_is_refused_with_the_fix(tmp_path):
    with pytest.raises(ValueError, match="max_embedding_memory"):
        fastmteb.evaluate(bag_of_words, ["SICK-R"], output_folder=tmp_path, spill_dtype="float16")
    with pytest.raises(ValueError, match="spill_dtype"):
        fastmteb.evaluate(bag_of_words, ["SICK-R"], output_folder=tmp_path, max_embedding_memory="1MB",
                          spill_dtype="int8")
    assert not list(tmp_path.rglob("*.json"))  # refused before any work


def test_cli_passes_the_limit_and_refuses_a_bad_one(monkeypatch, tmp_path):
    seen = {}

    def fake_evaluate(*args, **kwargs):
        seen.update(kwargs)
        return fastmteb.RunResults()

    monkeypatch.setattr("fastmteb.runner.evaluate", fake_evaluate)
    assert main(["run", "-t", "SciFact", "--max-embedding-memory", "2GB", "-q",
                 "--output-folder", str(tmp_path)]) == 0
    assert seen["max_embedding_memory"] == "2GB" and seen["spill_dtype"] == "float32"
    assert main(["run", "-t", "SciFact", "--max-embedding-memory", "2GB", "--spill-dtype", "float16", "-q",
                 "--output-folder", str(tmp_path)]) == 0
    assert seen["spill_dtype"] == "float16"
    monkeypatch.undo()
    assert main(["run", "-t", "SciFact", "--spill-dtype", "float16", "-q",
                 "--output-folder", str(tmp_path)]) == EXIT_BAD_INPUT
    assert main(["run", "-t", "SciFact", "--max-embedding-memory", "lots", "-q",
                 "--output-folder", str(tmp_path)]) == EXIT_BAD_INPUT


# ---------------------------------------------------------------- memory


def test_streaming_a_spilled_corpus_keeps_rss_far_below_its_size(tmp_path):
    """A 77 MB spill file searched with an 8 MiB limit, then as an np.memmap: the process
    grows by a few blocks only (each would grow by > 77 MB if the file were read whole)."""
    script = textwrap.dedent(f"""
        import numpy as np
        from fastmteb import kernels
        from fastmteb.encoding.store import EmbeddingStore

        def rss_mb(field):
            for line in open("/proc/self/status"):
                if line.startswith(field):
                    return int(line.split()[1]) / 1024

        n, dim = 300_000, 64
        store = EmbeddingStore(n, dim, max_bytes=8 << 20, folder={str(tmp_path)!r})
        rng = np.random.default_rng(0)
        for start in range(0, n, 20_000):  # written in chunks: never whole in memory
            store[np.arange(start, start + 20_000)] = rng.standard_normal((20_000, dim), np.float32)
        queries = rng.standard_normal((50, dim)).astype(np.float32)
        kernels.topk(queries, np.zeros((100, dim), np.float32), 10)  # compile before measuring
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")  # restart VmHWM from the current RSS
        before = rss_mb("VmRSS")
        scores, _ = kernels.sharded_topk(queries, store[:n], 100)
        print(before, rss_mb("VmHWM"), scores.shape[1])

        # the same file as a read-only np.memmap: the kernel unmaps each block once searched
        mapped = np.load(store.path, mmap_mode="r")
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        before = rss_mb("VmRSS")
        scores, _ = kernels.topk(queries, mapped, 100, metric="dot")
        print(before, rss_mb("VmHWM"), scores.shape[1])
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    for line in out.stdout.splitlines():  # the spill file, then the memmap
        before, peak, width = map(float, line.split())
        assert width == 100
        assert peak - before < 40, (before, peak)  # the file is 77 MB
