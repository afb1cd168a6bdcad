"""The sharded embedding cache under two gloo processes: rank 0 alone writes each shard, the
shards hold the one-process vectors, and a second distributed run reads them all back."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import numpy as np
import torch

TEXTS = [f"text {i} " + " ".join(f"w{(i * j) % 41}" for j in range(i % 11 + 1)) for i in range(90)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world_size: int, port: int, model: str, cache: str, out: str) -> None:
    import torch.distributed as tdist

    from fastmteb.distributed import Distributed
    from fastmteb.encoding import EncodeContext, TextPool, load_encoder
    from fastmteb.encoding import cache as cache_module

    tdist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                             world_size=world_size)
    real_store = cache_module.EmbeddingCache.store
    writes = []

    def store(self, digests, embeddings):
        writes.append(len(digests))
        return real_store(self, digests, embeddings)

    cache_module.EmbeddingCache.store = store
    try:
        encoder = load_encoder(model, device="cpu", dtype="float32", batch_tokens=256)
        report = {}
        ranks = Distributed(rank, world_size, rank, "gloo")
        for attempt in ("first", "second"):
            pool = TextPool(encoder, cache_dir=cache, progress=False, cache_shard_rows=8,
                            communicator=ranks)
            pool.add(TEXTS, EncodeContext("STSBenchmark", "STS"))
            np.save(Path(out) / f"{attempt}-{rank}.npy", pool.embeddings())
            report[attempt] = {"writes": list(writes), **pool.stats}
            writes.clear()
        (Path(out) / f"report-{rank}.json").write_text(json.dumps(report))
        tdist.barrier()
    finally:
        cache_module.EmbeddingCache.store = real_store
        tdist.destroy_process_group()


def test_rank_zero_alone_writes_the_shards(tmp_path, tiny_bert):
    from fastmteb.encoding import EncodeContext, TextPool, load_encoder

    cache, out = tmp_path / "cache", tmp_path / "out"
    out.mkdir()
    torch.multiprocessing.spawn(
        _worker, args=(2, free_port(), str(tiny_bert), str(cache), str(out)), nprocs=2
    )
    one = TextPool(load_encoder(str(tiny_bert), device="cpu", dtype="float32", batch_tokens=256),
                   progress=False)
    one.add(TEXTS, EncodeContext("STSBenchmark", "STS"))
    want = one.embeddings()
    reports = [json.loads((out / f"report-{r}.json").read_text()) for r in (0, 1)]
    assert reports[1]["first"]["writes"] == []  # rank 1 never writes
    written = reports[0]["first"]["writes"]
    assert len(written) > 1 and sum(written) == len(TEXTS)  # in shards, while encoding
    assert len(list(cache.rglob("shard-*.safetensors"))) == len(written)
    for rank in (0, 1):
        assert np.load(out / f"first-{rank}.npy").tobytes() == want.tobytes()
        assert np.load(out / f"second-{rank}.npy").tobytes() == want.tobytes()
        second = reports[rank]["second"]
        assert second["encoded"] == 0 and second["cache_hits"] == len(TEXTS)
        assert second["writes"] == []
