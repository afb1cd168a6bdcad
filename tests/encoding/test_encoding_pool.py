"""TextPool: dedup, index arrays, prompt-aware keys, tokenize-once, and the verified disk cache."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from fastmteb.encoding import CacheCorruptionWarning, EncodeContext, TextPool, load_encoder

STS = EncodeContext("STSBenchmark", "STS")
SICK = EncodeContext("SICK-R", "STS")
QUERY = EncodeContext("SciFact", "Retrieval", prompt_type="query")
DOC = EncodeContext("SciFact", "Retrieval", prompt_type="document")


class CountingEncoder:
    """Deterministic fake torch-style encoder: counts tokenize calls and encoded rows."""

    name, revision = "counting", "r1"

    def __init__(self, prompts=None):
        self.prompts = prompts or {}
        self.tokenized, self.encoded, self.version = 0, 0, 0

    @property
    def fingerprint(self):
        return f"counting-v{self.version}"

    def group_key(self, ctx):
        return self.prompts.get(ctx.prompt_type or "", "")

    def tokenize(self, texts, ctx):
        self.tokenized += len(texts)
        prompt = self.group_key(ctx)
        return [
            np.frombuffer((prompt + t).encode(), dtype=np.uint8).astype(np.int32) + 1 for t in texts
        ]

    def encode_tokenized(self, token_ids, ctx, *, progress=False, stats=None):
        self.encoded += len(token_ids)
        return np.array(
            [[len(t), t.sum() % 997, self.version] for t in token_ids], dtype=np.float32
        )

    def encode(self, texts, ctx, *, progress=False):
        return self.encode_tokenized(self.tokenize(texts, ctx), ctx)


def test_dedup_and_indices_with_the_real_model(bundled):
    pool = TextPool(bundled, progress=False)
    a = pool.add(["a cat sits", "a dog runs", "a cat sits", ""], STS)
    b = pool.add(["a dog runs", "new one"], SICK)  # same (empty) prompt -> shared entries
    assert a.dtype == np.int64 and a.tolist() == [0, 1, 0, 2] and b.tolist() == [1, 3]
    vectors = pool.embeddings()
    assert vectors.shape == (4, 384) and vectors.dtype == np.float32
    np.testing.assert_array_equal(vectors[a[0]], vectors[a[2]])
    direct = bundled.encode(["a cat sits", "a dog runs", "", "new one"], STS)
    np.testing.assert_allclose(vectors, direct, atol=1e-5, rtol=0)
    stats = pool.stats
    assert stats["texts_requested"] == 6 and stats["distinct"] == 4 and stats["encoded"] == 4
    assert stats["tokens"] > 0 and stats["padded_tokens"] >= stats["tokens"]


def test_query_and_document_prompts_never_share_an_entry():
    encoder = CountingEncoder({"query": "q: ", "document": "d: "})
    pool = TextPool(encoder, progress=False)
    q = pool.add(["same text"], QUERY)
    d = pool.add(["same text"], DOC)
    s = pool.add(["same text"], STS)
    assert len({int(q[0]), int(d[0]), int(s[0])}) == 3
    vectors = pool.embeddings()
    assert vectors[q[0], 0] == len("q: same text") and vectors[s[0], 0] == len("same text")


def test_add_and_embeddings_alternate_and_reset_keeps_tokenization():
    encoder = CountingEncoder()
    pool = TextPool(encoder, progress=False)
    first = pool.add(["x", "yy", "x"], STS)
    pool.embeddings()
    second = pool.add(["zzz", "yy"], STS)
    vectors = pool.embeddings()
    assert encoder.encoded == 3 and encoder.tokenized == 3  # only the new text was encoded
    assert vectors[second].tolist()[0][0] == 3 and second[1] == first[1]
    encoder.version = 1  # a training step changed the weights
    pool.reset_embeddings()
    vectors = pool.embeddings()
    assert encoder.encoded == 6 and encoder.tokenized == 3  # re-encoded, not re-tokenized
    assert np.all(vectors[:, 2] == 1)


def test_tokenize_all_tokenizes_each_new_text_once_per_prompt_group():
    encoder = CountingEncoder(prompts={"query": "q: "})
    pool = TextPool(encoder, progress=False)
    pool.add(["a", "bb", "a"], QUERY)
    pool.add(["a", "ccc"], DOC)  # another prompt: "a" is another entry here
    assert pool.tokenize_all() == 4 and encoder.tokenized == 4
    assert pool.tokenize_all() == 0 and encoder.tokenized == 4
    pool.add(["dddd"], DOC)
    assert pool.tokenize_all() == 1
    pool.embeddings()
    assert encoder.tokenized == 5 and encoder.encoded == 5  # embeddings() ran the model only
    assert TextPool(CallableEncoderLike(), progress=False).tokenize_all() == 0


class CallableEncoderLike:
    """An encoder without a tokenizer."""

    name, revision, fingerprint = "plain", "r1", "plain"

    def group_key(self, ctx):
        return None

    def encode(self, texts, ctx, *, progress=False):
        return np.array([[len(t), 1.0] for t in texts], dtype=np.float32)


def test_encode_costs_are_the_encoded_tokens_and_nothing_for_cache_hits(tmp_path):
    encoder = CountingEncoder(prompts={"query": "q: "})
    pool = TextPool(encoder, cache_dir=tmp_path, progress=False)
    pool.add(["alpha", "be"], QUERY)
    pool.embeddings()
    assert pool.encode_costs().tolist() == [len("q: alpha"), len("q: be")]  # the prompt is encoded too
    pool.add(["gamma"], QUERY)
    pool.embeddings()
    assert pool.encode_costs().tolist() == [0, 0, len("q: gamma")]  # only what this call encoded
    again = TextPool(encoder, cache_dir=tmp_path, progress=False)
    again.add(["be", "delta"], QUERY)
    again.embeddings()
    assert again.encode_costs().tolist() == [0, len("q: delta")]  # a cache hit costs nothing
    plain = TextPool(CallableEncoderLike(), progress=False)
    plain.add(["four", "sixsix"], STS)
    plain.embeddings()
    assert plain.encode_costs().tolist() == [4, 6]  # no tokenizer: characters


def test_callable_and_protocol_models_are_keyed_as_specified():
    calls = []

    def embed(texts):
        calls.append(list(texts))
        return np.array([[len(t), 1.0] for t in texts])

    encoder = load_encoder(embed)
    assert encoder.group_key(QUERY) is None
    pool = TextPool(encoder, progress=False)
    pool.add(["ab", "ab"], QUERY)
    pool.add(["ab"], STS)
    assert pool.embeddings().tolist() == [[2.0, 1.0]] and calls == [["ab"]]

    class MtebStyle:
        def encode(self, inputs, *, task_metadata, hf_split, hf_subset, prompt_type=None, **kwargs):
            texts = [t for batch in inputs for t in batch["text"]]
            calls.append(
                (task_metadata.name, hf_split, hf_subset, prompt_type, kwargs["batch_size"], texts)
            )
            return np.array([[len(t), float(prompt_type is not None)] for t in texts])

    protocol = load_encoder(MtebStyle())
    pool = TextPool(protocol, progress=False)
    q = pool.add(["abc", "abc"], QUERY)
    d = pool.add(["abc"], DOC)
    vectors = pool.embeddings()
    assert q[0] == q[1] and q[0] != d[0]
    assert vectors[q[0]].tolist() == [3.0, 1.0]
    assert (
        calls[1][:5] == ("SciFact", "test", "default", "query", 32) and calls[1][3].value == "query"
    )


def test_bad_inputs_are_clear_errors():
    pool = TextPool(CountingEncoder(), progress=False)
    with pytest.raises(TypeError, match="single str"):
        pool.add("oops", STS)
    with pytest.raises(TypeError, match="not str"):
        pool.add(["ok", None], STS)
    with pytest.raises(ValueError, match="shape"):
        load_encoder(lambda texts: np.zeros(3)).encode(["a", "b"], STS)


def test_disk_cache_hits_and_uses_no_pickle(tmp_path):
    encoder = CountingEncoder()
    pool = TextPool(encoder, cache_dir=tmp_path, progress=False)
    pool.add(["alpha", "beta"], STS)
    first = pool.embeddings().copy()
    files = list(tmp_path.rglob("*"))
    assert any(f.suffix == ".safetensors" for f in files)
    assert not any(f.suffix in (".pkl", ".pickle", ".npy") for f in files)
    again = TextPool(encoder, cache_dir=tmp_path, progress=False)
    again.add(["beta", "alpha", "gamma"], STS)
    vectors = again.embeddings()
    assert again.stats["cache_hits"] == 2 and again.stats["encoded"] == 1
    np.testing.assert_array_equal(vectors[:2], first[::-1])
    encoder.version = 5  # new weights -> new fingerprint -> no stale hits
    fresh = TextPool(encoder, cache_dir=tmp_path, progress=False)
    fresh.add(["alpha"], STS)
    assert fresh.embeddings()[0, 2] == 5 and fresh.stats["cache_hits"] == 0


def test_a_given_fingerprint_is_the_cache_key_until_the_embeddings_are_reset(tmp_path):
    """The runner hands the pool the fingerprint it computed (hashing a torch model's weights is
    slow): the pool does not read it again, and forgets it once told the weights may change."""
    reads = []

    class Watched(CountingEncoder):
        @property
        def fingerprint(self):
            reads.append(self.version)
            return f"counting-v{self.version}"

    encoder = Watched()
    pool = TextPool(encoder, cache_dir=tmp_path, progress=False, fingerprint="counting-v0")
    pool.add(["alpha"], STS)
    pool.embeddings()
    assert reads == [] and [p.name for p in tmp_path.iterdir()] == ["counting-v0"]
    encoder.version = 1
    pool.reset_embeddings()
    assert pool.embeddings()[0, 2] == 1 and reads and sorted(p.name for p in tmp_path.iterdir()) == [
        "counting-v0", "counting-v1"
    ]


@pytest.mark.parametrize("damage", ["truncate", "flip", "foreign", "garbage"])
def test_disk_cache_rejects_damaged_files(tmp_path, damage):
    encoder = CountingEncoder()
    pool = TextPool(encoder, cache_dir=tmp_path, progress=False)
    pool.add(["alpha", "beta"], STS)
    expected = pool.embeddings().copy()
    (shard,) = list(tmp_path.rglob("shard-*.safetensors"))
    data = bytearray(shard.read_bytes())
    if damage == "truncate":
        data = data[: len(data) - 7]
    elif damage == "flip":
        data[-3] ^= 0xFF  # inside the embeddings payload: parses, but the checksum fails
    elif damage == "foreign":
        other = CountingEncoder()
        other.version = 9
        foreign_pool = TextPool(other, cache_dir=tmp_path / "x", progress=False)
        foreign_pool.add(["alpha", "beta"], STS)
        foreign_pool.embeddings()
        data = bytearray(next((tmp_path / "x").rglob("shard-*.safetensors")).read_bytes())
    else:
        data = bytearray(b"\x80\x04not a safetensors file")
    shard.write_bytes(bytes(data))
    reader = TextPool(encoder, cache_dir=tmp_path, progress=False)
    reader.add(["alpha", "beta"], STS)
    with pytest.warns(CacheCorruptionWarning):
        vectors = reader.embeddings()
    assert reader.stats["cache_hits"] == 0 and reader.stats["encoded"] == 2
    np.testing.assert_array_equal(vectors, expected)
    assert list(tmp_path.glob("*/*.corrupt"))


def test_cache_survives_a_process_restart(tmp_path, bundled):
    texts = ["the cache survives", "a restart"]
    writer = TextPool(bundled, cache_dir=tmp_path, progress=False)
    writer.add(texts, STS)
    written = writer.embeddings().copy()
    assert writer.stats["cache_hits"] == 0
    script = textwrap.dedent(
        f"""
        import numpy as np
        from fastmteb.encoding import EncodeContext, TextPool, load_encoder
        pool = TextPool(load_encoder(device="cpu", dtype="float32"), cache_dir={str(tmp_path)!r}, progress=False)
        pool.add({texts!r}, EncodeContext("STSBenchmark", "STS"))
        np.save({str(tmp_path / "out.npy")!r}, pool.embeddings())
        print("hits", pool.stats["cache_hits"], "encoded", pool.stats["encoded"])
        """
    )
    reader = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert "hits 2 encoded 0" in reader.stdout
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), written)
