"""torch.distributed scale-out (fastmteb.distributed) on the CPU with gloo.

- ``kernels.merge_topk``: the exact global top-k from per-shard ``kernels.topk`` results equals
  ``kernels.topk`` over the whole corpus, to the bit (random data, exact ties, k larger than a
  shard or the corpus, empty shards).
- ``TorchEncoder.encode_shard``: the ranks' shares put together equal ``encode_tokenized``, to
  the bit (the one-process batches dealt round-robin).
- Two real gloo processes: the collectives; ``evaluate`` with a failure injected on one rank
  (no deadlock, the same outcome on both ranks); and ``torchrun --nproc-per-node 2 -m fastmteb
  run`` writing files equal to a one-process run's except for the timing fields.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch

from fastmteb import kernels
from fastmteb.distributed import Distributed, PeerRankError, shard_bounds
from fastmteb.kernels import sharded

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from toy_models import bag_of_words  # noqa: E402

from shared_data import shared_path  # noqa: E402
TIMING_FIELDS = {"evaluation_time", "date", "evaluation_phases", "kg_co2_emissions"}


# ------------------------------------------------------------------ merge_topk (pure)


def sharded_topk(queries, corpus, k, tie_rank, world_size):
    """Per-shard kernels.topk with global indices, side by side, then merged."""
    bounds = shard_bounds(corpus.shape[0], world_size)
    scores, indices = [], []
    for rank in range(world_size):
        start, stop = bounds[rank], bounds[rank + 1]
        if stop == start:
            continue
        ties = None if tie_rank is None else tie_rank[start:stop]
        s, i = kernels.topk(queries, corpus[start:stop], k, metric="dot", tie_rank=ties)
        scores.append(s)
        indices.append(i + start)
    return kernels.merge_topk(np.concatenate(scores, 1), np.concatenate(indices, 1), k, tie_rank)


def corpus_case(kind: str, rng: np.random.Generator, n_docs: int = 50, n_queries: int = 7):
    if kind == "random":
        q = rng.standard_normal((n_queries, 16)).astype(np.float32)
        d = rng.standard_normal((n_docs, 16)).astype(np.float32)
    else:  # few distinct values, repeated documents: many exactly equal scores
        q = rng.integers(-1, 2, (n_queries, 4)).astype(np.float32)
        d = rng.integers(-1, 2, (n_docs, 4)).astype(np.float32)
        d[n_docs // 2 :] = d[: n_docs - n_docs // 2]
    return q, d


@pytest.mark.parametrize("kind", ["random", "ties"])
@pytest.mark.parametrize("ties", ["none", "permutation", "repeated"])
@pytest.mark.parametrize("world_size,k", [(2, 5), (3, 20), (4, 100), (60, 3), (7, 50)])
def test_merge_topk_equals_topk_over_the_whole_corpus(kind, ties, world_size, k):
    rng = np.random.default_rng(zlib.crc32(f"{kind}{ties}{world_size}{k}".encode()))
    q, d = corpus_case(kind, rng)
    tie_rank = {
        "none": None,
        "permutation": rng.permutation(d.shape[0]).astype(np.int64),
        "repeated": rng.integers(0, 5, d.shape[0]).astype(np.int64),  # falls back to the index
    }[ties]
    want_scores, want_indices = kernels.topk(q, d, k, metric="dot", tie_rank=tie_rank)
    got_scores, got_indices = sharded_topk(q, d, k, tie_rank, world_size)
    assert got_indices.shape == want_indices.shape == (q.shape[0], min(k, d.shape[0]))
    np.testing.assert_array_equal(got_indices, want_indices)
    assert got_scores.dtype == np.float32
    if world_size < d.shape[0] / 2:
        assert got_scores.tobytes() == want_scores.tobytes()  # to the bit
    else:  # 1-document shards: numpy multiplies a 1-row block with gemv, which rounds apart from
        # gemm in the last bits (a limitation of kernels.topk's CPU path, not of the merge)
        np.testing.assert_allclose(got_scores, want_scores, rtol=1e-6, atol=1e-6)


def test_merge_topk_keeps_tensors_and_checks_shapes():
    scores = torch.tensor([[0.5, 0.9, 0.5, 0.1]])
    indices = torch.tensor([[7, 3, 2, 9]])
    s, i = kernels.merge_topk(scores, indices, 3, tie_rank=np.array([0, 0, 1, 0, 0, 0, 0, 5, 0, 0]))
    assert isinstance(s, torch.Tensor) and isinstance(i, torch.Tensor)
    assert i.tolist() == [[3, 7, 2]]  # 0.9, then the 0.5 tie: tie_rank 5 (doc 7) before 1 (doc 2)
    s, i = kernels.merge_topk(scores, indices, 3)
    assert i.tolist() == [[3, 2, 7]]  # no tie_rank: the lower index first
    with pytest.raises(ValueError, match="merge_topk"):
        kernels.merge_topk(scores, indices[:, :2], 3)


def test_shard_bounds_cover_rows_once():
    for n, world in [(0, 3), (5, 8), (10, 3), (1000, 7)]:
        b = shard_bounds(n, world)
        assert b[0] == 0 and b[-1] == n and len(b) == world + 1
        sizes = np.diff(b)
        assert sizes.max() - sizes.min() <= 1 and (np.diff(sizes) <= 0).all()


def test_single_process_context_is_the_identity(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    dist = Distributed.from_env(device="cpu")
    assert not dist.is_distributed and dist.is_main and dist.encoder_device == "cpu"
    rows = np.arange(6, dtype=np.float32).reshape(3, 2)
    assert dist.all_gather_rows(rows)[0] is rows
    assert dist.broadcast_object({"a": 1}) == {"a": 1}
    dist.check_all(None, "nothing")
    with pytest.raises(KeyError):
        dist.check_all(KeyError("own"), "something")
    with pytest.raises(ValueError, match="torchrun"):
        Distributed.from_env(enabled=True)


# ------------------------------------------------------------------ sharded encoding identity


def scifact_texts(n: int) -> list[str]:
    texts = []
    with open(shared_path("SciFact", "corpus.jsonl"), encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            texts.append((row["title"] + " " + row["text"]).strip())
            if len(texts) == n:
                break
    return texts + ["", "short", texts[0][:40], "a " * 600]


@pytest.mark.parametrize("world_size", [2, 3])
@pytest.mark.parametrize("regroup", [False, True])
def test_encode_shard_shares_equal_one_process_bitwise(tiny_bert, monkeypatch, world_size, regroup):
    from fastmteb.encoding import EncodeContext, load_encoder
    from fastmteb.encoding import models

    encoder = load_encoder(str(tiny_bert), device="cpu", dtype="float32", batch_tokens=1024)
    ctx = EncodeContext("SciFact", "Retrieval", "document", "test", "default", None)
    token_ids = encoder.tokenize(scifact_texts(60), ctx)
    whole = encoder.encode_tokenized(token_ids, ctx)
    if regroup:  # a batching rule that would regroup a rank's batches: one call per batch
        real = models.plan_batches
        calls = []

        def plan(lengths, budget, *args):
            calls.append(len(lengths))
            if len(lengths) < len(token_ids):
                return [np.array([i]) for i in range(len(lengths))]
            return real(lengths, budget, *args)

        monkeypatch.setattr(models, "plan_batches", plan)
    n_batches = len(models.plan_batches(np.array([len(t) for t in token_ids]), 1024))
    assert n_batches > 2 * world_size
    seen = np.zeros(len(token_ids), dtype=int)
    assembled = np.full_like(whole, np.nan)
    for rank in range(world_size):
        positions, rows = encoder.encode_shard(token_ids, ctx, rank=rank, world_size=world_size)
        seen[positions] += 1
        assembled[positions] = rows
    assert (seen == 1).all()  # a partition of the rows
    assert assembled.tobytes() == whole.tobytes()  # bitwise the one-process embeddings


# ------------------------------------------------------------------ two gloo processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _collectives_worker(rank: int, world_size: int, port: int) -> None:
    import torch.distributed as tdist

    tdist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                             world_size=world_size)
    try:
        dist = Distributed(rank, world_size, rank, "gloo")
        # variable row counts, one rank empty (with an unknown width)
        rows = np.full((3, 2), rank, np.float32) if rank == 0 else np.zeros((0, 0), np.float32)
        parts = dist.all_gather_rows(rows)
        assert [p.shape for p in parts] == [(3, 2), (0, 2)] and parts[0].sum() == 0
        nothing = dist.all_gather_rows(np.zeros((0, 3), np.int64))
        assert [p.shape for p in nothing] == [(0, 3), (0, 3)]
        tensors = dist.all_gather_rows(torch.arange(rank + 1, dtype=torch.int64))
        assert [t.tolist() for t in tensors] == [[0], [0, 1]]
        assert dist.broadcast_object({"r": rank}) == {"r": 0}
        assert dist.all_true(np.array([True, rank == 0, True])).tolist() == [True, False, True]
        # the exact top-k over the ranks' shards
        rng = np.random.default_rng(5)
        q = rng.integers(-1, 2, (6, 4)).astype(np.float32)
        d = rng.integers(-1, 2, (41, 4)).astype(np.float32)
        tie_rank = rng.permutation(41).astype(np.int64)
        # kernels.sharded_topk over the ranks (parts of 4 rows: both ranks hold a shard)
        got_s, got_i = kernels.sharded_topk(q, d, 30, communicator=dist, metric="dot",
                                            tie_rank=tie_rank, part_rows=4)
        want_s, want_i = kernels.topk(q, d, 30, metric="dot", tie_rank=tie_rank)
        np.testing.assert_array_equal(got_i, want_i)
        assert got_s.tobytes() == want_s.tobytes()
        # a NaN in rank 1's shard: its error there, PeerRankError on rank 0, no hang
        d[40, 0] = np.nan
        try:
            kernels.sharded_topk(q, d, 30, communicator=dist, metric="dot", part_rows=4)
        except PeerRankError as e:
            assert rank == 0 and "rank 1" in str(e) and "NaN" in str(e)
        except ValueError as e:
            assert rank == 1 and "NaN" in str(e)
        else:
            raise AssertionError("sharded_topk did not raise")
        # a failure on one rank reaches the other as PeerRankError, not a hang
        error = RuntimeError("boom on rank 1") if rank == 1 else None
        try:
            dist.check_all(error, "testing")
        except PeerRankError as e:
            assert rank == 0 and "rank 1" in str(e) and "boom" in str(e)
        except RuntimeError as e:
            assert rank == 1 and str(e) == "boom on rank 1"
        else:
            raise AssertionError("check_all did not raise")
        dist.barrier()
    finally:
        tdist.destroy_process_group()


def test_collectives_on_two_gloo_processes():
    torch.multiprocessing.spawn(_collectives_worker, args=(2, free_port()), nprocs=2)


def make_data(folder: Path, n_docs: int = 260, n_queries: int = 40) -> Path:
    """SciFact, STSBenchmark and SICK-R cut down from the shared data, in its layout."""
    (folder / "SciFact" / "qrels").mkdir(parents=True)
    header, *lines = shared_path("SciFact", "qrels", "test.tsv").read_text().splitlines()
    rows = [line.split("\t") for line in lines]
    query_ids = list(dict.fromkeys(r[0] for r in rows))[:n_queries]
    kept = [r for r in rows if r[0] in query_ids]
    (folder / "SciFact" / "qrels" / "test.tsv").write_text(
        "\n".join([header, *("\t".join(r) for r in kept)]) + "\n"
    )
    relevant = {r[1] for r in kept}
    docs = []
    with open(shared_path("SciFact", "corpus.jsonl"), encoding="utf-8") as handle:
        for line in handle:
            if json.loads(line)["_id"] in relevant or len(docs) < n_docs:
                docs.append(line)
    (folder / "SciFact" / "corpus.jsonl").write_text("".join(docs))
    with open(shared_path("SciFact", "queries.jsonl"), encoding="utf-8") as handle:
        queries = [line for line in handle if json.loads(line)["_id"] in set(query_ids)]
    (folder / "SciFact" / "queries.jsonl").write_text("".join(queries))
    for task in ("STSBenchmark", "SICK-R"):
        (folder / task).mkdir()
        with open(shared_path(task, "test.jsonl"), encoding="utf-8") as handle:
            (folder / task / "test.jsonl").write_text("".join(handle.readlines()[:50]))
    return folder


def _failing_rank_worker(rank: int, world_size: int, port: int, data: str, out: str) -> None:
    """evaluate on two ranks; rank 1 cannot load STSBenchmark and its SciFact search fails.
    Then a resumed run on the same process group."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    import fastmteb
    import fastmteb.runner as runner
    from fastmteb.encoding import CallableEncoder

    # corpus shards are whole normalisation parts: small parts give rank 1 a shard of this corpus
    sharded.PART_ROWS = 64
    working = runner.Collaborators.default()
    collaborators = working
    if rank == 1:
        real_topk = sharded.topk

        def load_raw(meta, *args, **kwargs):
            if meta.name == "STSBenchmark":
                raise OSError("disk of rank 1 unreadable")
            return working.load_raw(meta, *args, **kwargs)

        def failing_topk(*args, **kwargs):  # the search of rank 1's shard
            raise MemoryError("out of memory in the search of rank 1")

        collaborators = dataclasses.replace(working, load_raw=load_raw)
        sharded.topk = failing_topk
    results = fastmteb.evaluate(
        CallableEncoder(bag_of_words, name="org/bag-of-words"),
        ["SciFact", "STSBenchmark", "SICK-R"],
        data_dir=data, output_folder=out, progress=False, raise_error=False,
        collaborators=collaborators,
    )
    failures = {f.task_name: f for f in results.failures}
    assert [r.task_name for r in results] == ["SICK-R"], results
    assert failures["STSBenchmark"].phase == "load"
    assert failures["SciFact"].phase == "score"
    if rank == 0:
        load_error, search_error = failures["STSBenchmark"].error, failures["SciFact"].error
        assert "rank 1" in load_error and "unreadable" in load_error
        assert "PeerRankError" in search_error and "rank 1" in search_error
    written = sorted(p.name for p in Path(out).rglob("*.json"))
    assert written == ["SICK-R.json", "model_meta.json"], written

    # Resume, nothing failing now: rank 0 alone reads the output folder (rank 1 is given one it
    # cannot see into), both evaluate the two missing tasks, and the process group is reused.
    if rank == 1:
        sharded.topk = real_topk
    again = fastmteb.evaluate(
        CallableEncoder(bag_of_words, name="org/bag-of-words"),
        ["SciFact", "STSBenchmark", "SICK-R"],
        data_dir=data, output_folder=out if rank == 0 else out + "-rank1", progress=False,
    )
    assert [r.task_name for r in again] == ["SciFact", "STSBenchmark", "SICK-R"]
    assert again.skipped == ["SICK-R"] and not again.failures
    assert again[0].get_score() > 0.05  # bag of words finds SciFact's documents
    assert not Path(out + "-rank1").exists()
    written = sorted(p.name for p in Path(out).rglob("*.json"))
    assert written == ["SICK-R.json", "STSBenchmark.json", "SciFact.json", "model_meta.json"]


def test_a_failure_on_one_rank_fails_the_task_everywhere_then_resume(tmp_path):
    data = make_data(tmp_path / "data")
    torch.multiprocessing.spawn(
        _failing_rank_worker,
        args=(2, free_port(), str(data), str(tmp_path / "out")),
        nprocs=2,
    )


def comparable(path: Path) -> object:
    if path.suffix == ".json":
        content = json.loads(path.read_text())
        return {k: v for k, v in content.items() if k not in TIMING_FIELDS}
    return path.read_text()


def test_torchrun_two_processes_write_what_one_process_writes(tmp_path, tiny_bert):
    import fastmteb

    data = make_data(tmp_path / "data")
    tasks = ["SciFact", "STSBenchmark"]
    options = dict(data_dir=str(data), device="cpu", batch_tokens=2048)
    fastmteb.evaluate(str(tiny_bert), tasks, output_folder=str(tmp_path / "one"), progress=False,
                      **options)
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "fastmteb", "run", "-m", str(tiny_bert), "-t", *tasks, "--data-dir", str(data),
        "--output-folder", str(tmp_path / "two"), "--device", "cpu", "--batch-tokens", "2048",
        "--dist-backend", "gloo", "-q",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "TRITON_INTERPRET": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stdout.count("Scores per task (x100)") == 1  # only rank 0 prints
    one = {p.relative_to(tmp_path / "one"): p for p in (tmp_path / "one").rglob("*") if p.is_file()}
    two = {p.relative_to(tmp_path / "two"): p for p in (tmp_path / "two").rglob("*") if p.is_file()}
    assert sorted(one) == sorted(two) and len(one) == 4  # 2 tasks, model_meta, run_settings
    for relative, path in one.items():
        assert comparable(two[relative]) == comparable(path), relative
    scifact = json.loads(next(p for r, p in two.items() if r.name == "SciFact.json").read_text())
    assert scifact["scores"]["test"][0]["ndcg_at_1000"] > 0  # the merged search found documents


def test_encoder_fingerprint_does_not_depend_on_the_thread_count(tiny_bert):
    """torchrun gives each process one OpenMP thread; run_settings.jsonl and the cache keys carry
    the fingerprint, so it must not change with the thread count."""
    from fastmteb.encoding import load_encoder

    encoder = load_encoder(str(tiny_bert), device="cpu")
    threads = torch.get_num_threads()
    try:
        fingerprints = set()
        for count in (1, 2, 3):
            torch.set_num_threads(count)
            fingerprints.add(encoder.fingerprint)
    finally:
        torch.set_num_threads(threads)
    assert len(fingerprints) == 1


class ThreadRanks:
    """``world_size`` ranks as threads of this process, with the two collectives of
    ``kernels.Communicator`` (one exchange slot per rank, between barriers)."""

    def __init__(self, world_size: int) -> None:
        self.world_size = world_size
        self.barrier = threading.Barrier(world_size, timeout=60)
        self.slots: list = [None] * world_size

    def run(self, work):
        """``work(communicator)`` on every rank; the per-rank results, in rank order."""
        with ThreadPoolExecutor(self.world_size) as pool:
            return list(pool.map(lambda rank: work(_ThreadRank(self, rank)), range(self.world_size)))


class _ThreadRank:
    def __init__(self, group: ThreadRanks, rank: int) -> None:
        self.group, self.rank, self.world_size = group, rank, group.world_size

    def all_gather_rows(self, rows):
        group = self.group
        group.barrier.wait()
        group.slots[self.rank] = rows
        group.barrier.wait()
        gathered = list(group.slots)
        group.barrier.wait()
        return gathered

    def check_all(self, error, what):
        reports = self.all_gather_rows(error)
        if error is not None:
            raise error
        for rank, report in enumerate(reports):
            if report is not None:
                raise PeerRankError(f"rank {rank} failed while {what}: {report}")


@pytest.mark.parametrize("world_size", [2, 3, 5])
@pytest.mark.parametrize("n_queries", [1, 3, 40])
def test_corpus_shards_give_the_one_process_scores_to_the_bit(world_size, n_queries):
    """Shards of whole normalisation parts: every score is computed in the same sgemm shape as in
    one process, also for one query (gemv) and short last blocks, so scores match to the bit."""
    rng = np.random.default_rng(world_size * 100 + n_queries)
    q = rng.standard_normal((n_queries, 48)).astype(np.float32)
    d = rng.standard_normal((96 * 4 + 7, 48)).astype(np.float32)
    tie_rank = rng.permutation(d.shape[0]).astype(np.int64)
    options = dict(tie_rank=tie_rank, block_size=40, part_rows=96)  # several parts, short blocks
    want_s, want_i = kernels.sharded_topk(q, d, 50, **options)
    bounds = kernels.corpus_shard_bounds(d.shape[0], world_size, 96)
    assert bounds[0] == 0 and bounds[-1] == d.shape[0] and all(b % 96 == 0 for b in bounds[:-1])
    results = ThreadRanks(world_size).run(
        lambda communicator: kernels.sharded_topk(q, d, 50, communicator=communicator, **options))
    for got_s, got_i in results:  # every rank holds the global result
        np.testing.assert_array_equal(got_i, want_i)
        assert got_s.tobytes() == want_s.tobytes()


def test_nccl_contexts_wait_and_exchange_objects_on_the_gloo_wait_group(monkeypatch):
    """With NCCL, barriers and object collectives go through the gloo wait group (blocking), never
    an NCCL barrier (which polls on the GPU and a CPU thread while rank 0 scores)."""
    import torch.distributed as dist

    calls = []
    monkeypatch.setattr(dist, "barrier", lambda **kw: calls.append(("barrier", kw)))
    monkeypatch.setattr(dist, "broadcast_object_list", lambda box, **kw: calls.append(("broadcast", kw)))
    monkeypatch.setattr(dist, "all_gather_object", lambda out, obj, **kw: calls.append(("gather", kw)))
    group = object()
    context = Distributed(
        rank=0, world_size=2, backend="nccl", comm_device=torch.device("cuda", 0), wait_group=group
    )
    context.barrier()
    context.broadcast_object("x")
    context.all_gather_object("x")
    assert calls == [
        ("barrier", {"group": group}),
        ("broadcast", {"src": 0, "group": group}),
        ("gather", {"group": group}),
    ]
