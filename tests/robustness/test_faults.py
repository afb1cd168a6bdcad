"""Faults other than a kill: a cache file cut short, CUDA out of memory, a task that fails."""

from __future__ import annotations

import dataclasses
import functools
import json
import warnings

import numpy as np
import pytest
import torch

from fastmteb.encoding import CacheCorruptionWarning, CallableEncoder, EncodeContext, TextPool

CTX = EncodeContext("SICK-R", "STS", None, "test", "default", None)


def _counting_model():
    calls = []

    def model(texts):
        calls.append(len(texts))
        rng = np.random.default_rng([len(t) for t in texts] or [0])
        vectors = np.stack([np.frombuffer(t.encode().ljust(16, b"\0")[:16], np.uint8) for t in texts])
        return vectors.astype(np.float32) + rng.random((len(texts), 16), dtype=np.float32) * 0

    return model, calls


TEXTS = [f"sentence number {i} " + "x" * (i % 7) for i in range(60)]


def _embed(cache_dir, model):
    # a callable is cached only under a fingerprint its user gives
    encoder = CallableEncoder(model, name="tiny", fingerprint="tiny-v1")
    pool = TextPool(encoder, cache_dir=cache_dir, progress=False)
    idx = pool.add(TEXTS, CTX)
    return pool.embeddings()[idx], pool


@pytest.mark.parametrize("damage", ["truncate_half", "truncate_to_header", "empty", "flip_byte"])
def test_cache_shard_cut_short_is_detected_and_recomputed(tmp_path, damage):
    model, calls = _counting_model()
    first, _ = _embed(tmp_path, model)
    (shard,) = list(tmp_path.rglob("shard-*.safetensors"))
    data = shard.read_bytes()
    if damage == "truncate_half":
        shard.write_bytes(data[: len(data) // 2])
    elif damage == "truncate_to_header":
        shard.write_bytes(data[:8])
    elif damage == "empty":
        shard.write_bytes(b"")
    else:  # same size, one value changed: only the checksum can see it
        pos = len(data) - 5
        shard.write_bytes(data[:pos] + bytes([data[pos] ^ 0x55]) + data[pos + 1 :])
    calls.clear()
    with pytest.warns(CacheCorruptionWarning, match="recomputed"):
        again, pool = _embed(tmp_path, model)
    np.testing.assert_array_equal(again, first)
    assert sum(calls) == len(TEXTS) and pool.stats["cache_hits"] == 0  # recomputed, not read
    assert list(tmp_path.rglob("*.corrupt")), "the damaged shard is set aside"
    calls.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheCorruptionWarning)
        third, pool = _embed(tmp_path, model)  # the rewritten shard is good again
    np.testing.assert_array_equal(third, first)
    assert calls == [] and pool.stats["cache_hits"] == len(TEXTS)


def test_cuda_oom_shrinks_the_batch_and_gives_the_same_embeddings(monkeypatch):
    """A real TorchEncoder (bundled MiniLM) whose forward pass 'runs out of memory' above a padded
    token count: the budget halves until batches fit, and the vectors equal an OOM-free run."""
    from fastmteb.encoding import load_encoder

    encoder = load_encoder(None, device="cpu", batch_tokens=4096)
    texts = [("word " * (3 + i % 40)).strip() + f" {i}" for i in range(48)]
    expected = encoder.encode(texts, CTX)
    real_forward = encoder._forward
    seen = []

    def forward_with_oom(batch):
        seen.append(batch.padded_tokens)
        if batch.padded_tokens > 200:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 MiB")
        return real_forward(batch)

    monkeypatch.setattr(encoder, "_forward", forward_with_oom)
    with pytest.warns(RuntimeWarning, match="out of memory"):
        got = encoder.encode(texts, CTX)
    assert encoder.last_stats.oom_retries >= 1
    assert max(s for s in seen[-3:]) <= 200  # it went on with smaller batches
    np.testing.assert_allclose(got, expected, rtol=0, atol=2e-5)


def test_oom_budget_halves_once_and_is_remembered_by_later_calls(monkeypatch):
    """An injected OOM above a padded-token size: the first call backs off (one warning), the
    encoder keeps the budget that fit, and a second call runs with it and never OOMs again."""
    from fastmteb.encoding import load_encoder

    encoder = load_encoder(None, device="cpu", batch_tokens=1024)
    texts = ["word " * 12 + "abcdefghijklmnopqrstuvwxyz"[i % 26] for i in range(80)]  # equal lengths
    real_forward = encoder._forward
    ooms = []

    def forward_with_oom(batch):
        if batch.padded_tokens > 512:
            ooms.append(batch.padded_tokens)
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 MiB")
        return real_forward(batch)

    monkeypatch.setattr(encoder, "_forward", forward_with_oom)
    with pytest.warns(RuntimeWarning, match="out of memory"):
        first = encoder.encode(texts, CTX)
    assert len(ooms) == 1 and encoder.last_stats.oom_retries == 1  # halved once: 1024 -> 512
    assert encoder.run_budget == 512 and encoder.batch_tokens == 1024
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second back-off would warn
        second = encoder.encode(texts + ["another text"], CTX)
    assert len(ooms) == 1 and encoder.last_stats.oom_retries == 0
    np.testing.assert_array_equal(second[: len(texts)], first)
    encoder.batch_tokens = 2048  # an explicit new budget starts over
    assert encoder.run_budget == 2048


@pytest.mark.gpu
def test_real_cuda_oom_backs_off():  # pragma: no cover - needs a GPU
    from fastmteb.encoding import load_encoder

    encoder = load_encoder(None, device="cuda", dtype="float32", batch_tokens=1 << 22)
    texts = [("token " * 250).strip()] * 4096
    torch.cuda.empty_cache()
    free, _ = torch.cuda.mem_get_info()
    fraction = min(1.0, (torch.cuda.memory_allocated() + 2 * 2**30) / torch.cuda.get_device_properties(0).total_memory)
    torch.cuda.set_per_process_memory_fraction(fraction)  # this process only; the device is untouched
    try:
        got = encoder.encode(texts, CTX)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
    assert encoder.last_stats.oom_retries >= 1
    assert np.isfinite(got).all() and got.shape == (4096, 384)


def test_a_failing_task_does_not_stop_the_others(tmp_path, monkeypatch, capsys):
    """CLI: one task cannot load (not bundled, hub offline), another (SICK-R, STS scorer broken on
    purpose) fails while scoring; the third is written, both errors are listed at the end, exit status 1."""
    import fastmteb.runner as runner
    from fastmteb import cli
    from fastmteb.encoding import CallableEncoder as Callable_

    def tiny(texts):
        rng = np.random.default_rng(0)
        table = rng.standard_normal((256, 8)).astype(np.float32)
        return np.stack([table[[b for b in t.encode()[:64]]].sum(0) for t in texts])

    default = runner.Collaborators.default()
    real_get_task_type = default.get_task_type

    def get_task_type(type_name):
        task_type = real_get_task_type(type_name)
        if type_name != "STS":
            return task_type

        class Broken:
            name = task_type.name
            prepare = staticmethod(task_type.prepare)
            requests = staticmethod(task_type.requests)

            @staticmethod
            def score(meta, prepared, embeddings):
                raise FloatingPointError("scorer blew up on purpose")

        return Broken()

    collaborators = dataclasses.replace(
        default,
        load_encoder=lambda model, **kw: Callable_(tiny, name="tiny"),
        get_task_type=get_task_type,
    )
    monkeypatch.setattr(
        runner, "evaluate", functools.partial(runner.evaluate, collaborators=collaborators)
    )
    monkeypatch.setenv("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    out = tmp_path / "out"
    status = cli.main(["run", "-t", "STS12", "SummEvalSummarization.v2", "-t", "SICK-R",
                       "--output-folder", str(out), "-q"])
    captured = capsys.readouterr()
    assert status == cli.EXIT_TASK_FAILED == 1
    files = sorted(p.name for p in out.rglob("*.json"))
    assert files == ["SummEvalSummarization.v2.json", "model_meta.json"]
    assert "2 task(s) failed" in captured.err
    assert "STS12" in captured.err and "(load)" in captured.err
    assert "SICK-R" in captured.err and "(score)" in captured.err
    assert "scorer blew up on purpose" in captured.err
    assert "Traceback" not in captured.err + captured.out
    assert captured.out.index("SummEvalSummarization.v2") >= 0  # the finished task is in the table
    (path,) = out.glob("tiny/*/SummEvalSummarization.v2.json")  # tiny/fp-<model fingerprint>/
    data = json.loads(path.read_text())
    assert data["scores"]["test"][0]["main_score"] == data["scores"]["test"][0]["cosine_spearman"]


def test_temporaries_of_killed_writers_are_removed_on_the_next_write(tmp_path):
    """A SIGKILLed writer leaves ``.X.json.<pid>.<hex>.tmp``; the next write of X.json removes it
    (its process is gone) but keeps a live process's temporary (a concurrent writer)."""
    import os
    import subprocess
    import sys

    from fastmteb.results import write_json_atomic

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_pid = int(dead.stdout)
    stale = tmp_path / f".Task.json.{dead_pid}.0badc0de.tmp"
    live = tmp_path / f".Task.json.{os.getppid()}.0123abcd.tmp"
    other = tmp_path / f".Other.json.{dead_pid}.0badc0de.tmp"
    for path in (stale, live, other):
        path.write_text('{"half": ')
    write_json_atomic(tmp_path / "Task.json", {"done": True})
    assert json.loads((tmp_path / "Task.json").read_text()) == {"done": True}
    assert not stale.exists() and live.exists() and other.exists()
