"""Issue 11, embedding cache: keys that know the weights, and shards that survive an interruption.

- A plain callable or an mteb-protocol model is cached only under a fingerprint its user gives
  (fastmteb cannot see its weights); without one a ``cache_dir`` is ignored with one
  ``CacheDisabledWarning``, so two such models sharing a folder never share vectors.
- A torch model's fingerprint is derived from its weights: any change, a permutation included,
  changes it.
- A prompt group is written in shards as it is encoded: an encode interrupted after some batches
  (an exception, Ctrl-C) leaves the finished shards, and the rerun encodes only the rest, giving
  the vectors an uninterrupted run gives (bitwise for a torch model).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import fastmteb
from fastmteb.encoding import (
    CacheDisabledWarning,
    CallableEncoder,
    EncodeContext,
    ProtocolEncoder,
    TextPool,
    load_encoder,
)
from fastmteb.encoding.cache import shard_rows

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from toy_models import bag_of_words  # noqa: E402

STS = EncodeContext("STSBenchmark", "STS")
TEXTS = [f"sentence {i} about " + " ".join(f"w{(i * j) % 37}" for j in range(i % 9 + 1)) for i in range(100)]


def make_model(seed: int):
    """Closures with one qualified name and different weights: what a sweep over checkpoints
    or seeds looks like to fastmteb."""
    table = np.random.default_rng(seed).standard_normal((256, 16)).astype(np.float32)

    def embed(texts):
        return np.stack([table[list(t.encode()[:64])].sum(0) for t in texts])

    return embed


def _scores(run) -> float:
    (result,) = list(run)
    return result.get_score()


# ---------------------------------------------------------------------------------------------
# Fingerprints


def test_two_callables_sharing_a_cache_dir_do_not_share_vectors(tmp_path):
    first, second = make_model(1), make_model(2)
    assert first.__qualname__ == second.__qualname__
    options = dict(progress=False)
    alone = _scores(fastmteb.evaluate(second, ["SICK-R"], output_folder=tmp_path / "alone", **options))
    with pytest.warns(CacheDisabledWarning, match="fingerprint"):
        one = _scores(fastmteb.evaluate(first, ["SICK-R"], output_folder=tmp_path / "a",
                                        cache_dir=tmp_path / "cache", **options))
    with pytest.warns(CacheDisabledWarning, match="fastmteb_fingerprint"):
        two = _scores(fastmteb.evaluate(second, ["SICK-R"], output_folder=tmp_path / "b",
                                        cache_dir=tmp_path / "cache", **options))
    assert one != alone  # the two models do score apart
    assert two == alone  # the second model's own vectors, not the first's
    assert not list((tmp_path / "cache").rglob("*.safetensors"))  # nothing cached without a key


def _pool(encoder, cache, texts=TEXTS):
    pool = TextPool(encoder, cache_dir=cache, progress=False)
    pool.add(texts, STS)
    return pool, pool.embeddings().copy()


def test_user_fingerprints_key_the_cache(tmp_path):
    first, second = make_model(1), make_model(2)
    cache = tmp_path / "cache"
    want = [_pool(CallableEncoder(m), None)[1] for m in (first, second)]
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheDisabledWarning)
        _, one = _pool(CallableEncoder(first, fingerprint="seed-1"), cache)
        second.fastmteb_fingerprint = "seed-2"  # the attribute form
        _, two = _pool(load_encoder(second), cache)
        # the same model and fingerprint again: every vector comes from the cache
        again, three = _pool(CallableEncoder(first, fingerprint="seed-1"), cache)
    np.testing.assert_array_equal(one, want[0])
    np.testing.assert_array_equal(two, want[1])
    np.testing.assert_array_equal(three, want[0])
    assert len([p for p in cache.iterdir() if p.is_dir() and not p.name.startswith(".")]) == 2
    assert again.stats["cache_hits"] == len(TEXTS) and again.stats["encoded"] == 0
    # another function under the same user string gets its own folder: no hits
    calls = []

    def wrapper(texts):
        calls.append(len(texts))
        return first(texts)

    pool, _ = _pool(CallableEncoder(wrapper, fingerprint="seed-1"), cache)
    assert calls == [len(TEXTS)] and pool.stats["cache_hits"] == 0


def test_callable_and_protocol_fingerprints():
    embed = make_model(3)
    assert CallableEncoder(embed).fingerprint is None
    assert load_encoder(embed).fingerprint is None
    a, b = CallableEncoder(embed, fingerprint="x"), CallableEncoder(embed, fingerprint="y")
    assert a.fingerprint and a.fingerprint != b.fingerprint
    assert a.fingerprint == CallableEncoder(embed, fingerprint="x").fingerprint  # stable
    a.fingerprint = "y"
    assert a.fingerprint == b.fingerprint
    with pytest.raises(TypeError, match="non-empty str"):
        CallableEncoder(embed, fingerprint="").fingerprint  # noqa: B018

    class MtebStyle:
        def encode(self, inputs, *, task_metadata, hf_split, hf_subset, prompt_type=None, **kw):
            return np.ones((sum(len(b["text"]) for b in inputs), 2))

    model = MtebStyle()
    assert load_encoder(model).fingerprint is None
    model.fastmteb_fingerprint = "ckpt-1"
    wrapped = load_encoder(model)
    assert isinstance(wrapped, ProtocolEncoder) and wrapped.fingerprint is not None
    model.fastmteb_fingerprint = "ckpt-2"  # read at each use: a retrained model keys anew
    assert wrapped.fingerprint != ProtocolEncoder(model, fingerprint="ckpt-1").fingerprint
    assert ProtocolEncoder(MtebStyle(), fingerprint="ckpt-1").fingerprint is not None


def test_protocol_model_without_fingerprint_is_not_cached_and_warned_once(tmp_path):
    class MtebStyle:
        def __init__(self):
            self.texts = 0

        def encode(self, inputs, *, task_metadata, hf_split, hf_subset, prompt_type=None, **kw):
            texts = [t for batch in inputs for t in batch["text"]]
            self.texts += len(texts)
            return bag_of_words(texts)

    model = MtebStyle()
    pool = TextPool(load_encoder(model), cache_dir=tmp_path, progress=False)
    pool.add(TEXTS[:10], STS)
    with pytest.warns(CacheDisabledWarning) as caught:
        pool.embeddings()
        pool.add(TEXTS[10:20], STS)
        pool.embeddings()
    assert len([w for w in caught if w.category is CacheDisabledWarning]) == 1
    assert model.texts == 20 and not list(tmp_path.rglob("*.safetensors"))


def test_torch_fingerprint_follows_the_weights(tiny_bert):
    encoder = load_encoder(str(tiny_bert), device="cpu", dtype="float32")
    base = encoder.fingerprint
    assert encoder.fingerprint == base  # stable
    weight = encoder.module.encoder.layer[1].output.dense.weight
    saved = weight.detach().clone()
    seen = {base}
    with torch.no_grad():
        weight[3, 5] += 1e-6  # one tiny step
        seen.add(encoder.fingerprint)
        weight.copy_(saved)
        weight[[0, 1]] = saved[[1, 0]]  # swap two rows: same sum and sum of squares
        seen.add(encoder.fingerprint)
        weight.copy_(saved.flatten()[torch.randperm(saved.numel())].view_as(saved))  # shuffle
        seen.add(encoder.fingerprint)
        weight.copy_(saved)
    assert len(seen) == 4
    assert encoder.fingerprint == base  # back to the same weights, back to the same key
    other = load_encoder(str(tiny_bert), device="cpu", dtype="float32", max_length=64)
    assert other.fingerprint != base  # encoding settings are part of it too


def test_sentence_transformer_fingerprint_follows_the_weights(bundled):
    base = bundled.fingerprint
    weight = bundled.sentence_transformer[0].auto_model.embeddings.word_embeddings.weight
    with torch.no_grad():
        row = weight[1000].clone()
        weight[1000] = weight[1001]
        weight[1001] = row  # two tokens swapped: a permutation of the tensor's values
        try:
            assert bundled.fingerprint != base
        finally:
            weight[1001] = weight[1000]
            weight[1000] = row
    assert bundled.fingerprint == base


# ---------------------------------------------------------------------------------------------
# Shards: an interrupted encode keeps what it finished


def test_shard_rows_rule():
    assert shard_rows(384) == 16384 and shard_rows(768) == 8192 and shard_rows(1024) == 8192
    assert shard_rows(4096) == 2048 and shard_rows(None) == 8192
    assert shard_rows(8) == 65536 and shard_rows(100_000) == 1024
    for dim in (1, 37, 384, 1000, 4096):
        rows = shard_rows(dim)
        assert rows & (rows - 1) == 0  # a power of two


class Interrupted(Exception):
    pass


def _failing_callable(fail_on_call: int | None, error: type[BaseException] = Interrupted):
    texts_seen: list[str] = []
    calls = [0]

    def embed(texts):
        calls[0] += 1
        if fail_on_call is not None and calls[0] == fail_on_call:
            raise error("injected")
        texts_seen.extend(texts)
        return bag_of_words(texts)

    return embed, texts_seen, calls


@pytest.mark.parametrize("error", [Interrupted, KeyboardInterrupt])
def test_interrupted_callable_encode_resumes_from_finished_shards(tmp_path, error):
    reference = TextPool(CallableEncoder(bag_of_words), progress=False)
    reference.add(TEXTS, STS)
    want = reference.embeddings().copy()

    embed, seen, calls = _failing_callable(fail_on_call=3, error=error)
    encoder = CallableEncoder(embed, name="bow", fingerprint="bow-v1")
    pool = TextPool(encoder, cache_dir=tmp_path, progress=False, cache_shard_rows=16)
    pool.add(TEXTS, STS)
    with pytest.raises(error):
        pool.embeddings()
    assert calls[0] == 3 and len(seen) == 32  # two 16-row pieces done, the third failed
    shards = sorted(tmp_path.rglob("shard-*.safetensors"))
    assert len(shards) == 2
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and ".tmp" in p.name]

    embed, seen_again, _ = _failing_callable(fail_on_call=None)
    again = TextPool(CallableEncoder(embed, name="bow", fingerprint="bow-v1"), cache_dir=tmp_path,
                     progress=False, cache_shard_rows=16)
    again.add(TEXTS, STS)
    got = again.embeddings()
    assert sorted(seen_again) == sorted(set(TEXTS) - set(seen))  # only the missing texts
    assert again.stats["cache_hits"] == 32 and again.stats["encoded"] == len(TEXTS) - 32
    np.testing.assert_array_equal(got, want)
    assert len(list(tmp_path.rglob("shard-*.safetensors"))) == 7  # ceil(100 / 16)


def test_interrupted_torch_encode_resumes_bitwise(tmp_path, tiny_bert):
    texts = TEXTS + [t + " " + t for t in TEXTS[:40]]
    uninterrupted = load_encoder(str(tiny_bert), device="cpu", dtype="float32", batch_tokens=256)
    plain = TextPool(uninterrupted, progress=False)
    plain.add(texts, STS)
    want = plain.embeddings().copy()
    batches_whole = plain.stats["batches"]

    encoder = load_encoder(str(tiny_bert), device="cpu", dtype="float32", batch_tokens=256)
    forwards = [0]

    def hook(module, args):
        forwards[0] += 1
        if forwards[0] == 7:
            raise Interrupted("crash in batch 7")

    handle = encoder.module.register_forward_pre_hook(hook)
    pool = TextPool(encoder, cache_dir=tmp_path, progress=False, cache_shard_rows=24)
    pool.add(texts, STS)
    try:
        with pytest.raises(Interrupted):
            pool.embeddings()
    finally:
        handle.remove()
    shards = list(tmp_path.rglob("shard-*.safetensors"))
    assert shards, "finished pieces are on disk"
    from safetensors import safe_open

    finished = 0
    for shard in shards:
        with safe_open(str(shard), framework="np") as f:
            finished += f.get_tensor("keys").shape[0]
    assert 0 < finished < len(texts)

    again = TextPool(encoder, cache_dir=tmp_path, progress=False, cache_shard_rows=24)
    again.add(texts, STS)
    got = again.embeddings()
    assert again.stats["cache_hits"] == finished
    assert again.stats["encoded"] == len(texts) - finished  # only the rest was encoded
    assert got.tobytes() == want.tobytes()  # the same batches as one uninterrupted call
    # the finished and the resumed pieces together ran the batches of one call
    assert pool.stats["batches"] + again.stats["batches"] == batches_whole

    third = TextPool(encoder, cache_dir=tmp_path, progress=False, cache_shard_rows=24)
    third.add(texts, STS)
    assert third.embeddings().tobytes() == want.tobytes() and third.stats["encoded"] == 0


def test_temporaries_of_a_killed_writer_are_removed_when_stale(tmp_path):
    import os
    import time

    encoder = CallableEncoder(bag_of_words, fingerprint="bow-v1")
    _pool(encoder, tmp_path, TEXTS[:5])
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    stale, fresh = folder / ".tmp-killed.safetensors", folder / ".tmp-writing.safetensors"
    stale.write_bytes(b"half a shard")
    fresh.write_bytes(b"being written")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    pool, _ = _pool(encoder, tmp_path, TEXTS[:5])
    assert pool.stats["cache_hits"] == 5
    assert not stale.exists() and fresh.exists()  # a live writer's file is left alone
