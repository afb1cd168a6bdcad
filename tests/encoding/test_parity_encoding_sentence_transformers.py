"""Embeddings equal sentence-transformers' and mteb's encode path for the bundled model."""

import numpy as np
import pytest
import torch

from fastmteb.encoding import EncodeContext, load_encoder

STS = EncodeContext("STSBenchmark", "STS")


def test_fp32_equals_sentence_transformers_encode(bundled, sentence_transformer, real_texts):
    ours = bundled.encode(real_texts, STS)
    reference = sentence_transformer.encode(real_texts, batch_size=32, convert_to_numpy=True)
    assert ours.dtype == np.float32 and ours.shape == reference.shape
    np.testing.assert_allclose(ours, reference, atol=1e-5, rtol=0)


def test_empty_and_overlong_texts_behave_like_sentence_transformers(bundled, sentence_transformer):
    texts = ["", "a " * 5000, "short"]
    ids = bundled.tokenize(texts, STS)
    assert len(ids[0]) == 2  # [CLS] [SEP], as the tokenizer makes it
    assert len(ids[1]) == bundled.max_length == sentence_transformer.max_seq_length == 256
    features = sentence_transformer.preprocess(texts)
    for row, seq in enumerate(ids):
        expected = features["input_ids"][row][features["attention_mask"][row].bool()].numpy()
        np.testing.assert_array_equal(seq, expected)
    np.testing.assert_allclose(
        bundled.encode(texts, STS), sentence_transformer.encode(texts), atol=1e-5, rtol=0
    )


def test_text_inside_a_dynamic_batch_equals_text_alone_fp32(bundled, real_texts):
    together = bundled.encode(real_texts, STS)
    for i in (0, 5, 61, len(real_texts) - 3):
        alone = bundled.encode([real_texts[i]], STS)
        np.testing.assert_allclose(together[i], alone[0], atol=1e-5, rtol=0)


def test_bf16_inside_a_batch_matches_alone_and_fp32(real_texts):
    bf16 = load_encoder(device="cpu", dtype="bfloat16")
    assert (
        bf16.compute_dtype == torch.bfloat16
        and bf16.fingerprint != load_encoder(device="cpu").fingerprint
    )
    texts = real_texts[:30] + real_texts[-7:]
    together = bf16.encode(texts, STS)
    assert together.dtype == np.float32
    for i in (0, 17, len(texts) - 3):
        alone = bf16.encode([texts[i]], STS)[0]
        cosine = together[i] @ alone / (np.linalg.norm(together[i]) * np.linalg.norm(alone))
        assert cosine >= 0.999
    fp32 = bf16.sentence_transformer.encode(texts)
    cosines = np.sum(together * fp32, 1) / (
        np.linalg.norm(together, axis=1) * np.linalg.norm(fp32, axis=1)
    )
    assert cosines.min() >= 0.99


PROMPTS = {
    "query": "query: ",
    "document": "passage: ",
    "STS": "sts prompt: ",
    "SciFact-query": "scifact q: ",
}


@pytest.fixture(scope="module")
def prompted():
    return load_encoder(device="cpu", dtype="float32", prompts=PROMPTS)


def _mteb_encode(st_model, texts, task_name, prompt_type):
    """What mteb 2.x runs: SentenceTransformerEncoderWrapper fed a DataLoader of a HF Dataset (batch 32)."""
    import mteb
    from datasets import Dataset
    from mteb.models.sentence_transformer_wrapper import SentenceTransformerEncoderWrapper
    from mteb.types import PromptType
    from torch.utils.data import DataLoader

    wrapper = SentenceTransformerEncoderWrapper(st_model, model_prompts=PROMPTS)
    loader = DataLoader(Dataset.from_dict({"text": texts}), batch_size=32)
    return np.asarray(
        wrapper.encode(
            loader,
            task_metadata=mteb.get_task(task_name).metadata,
            hf_split="test",
            hf_subset="default",
            prompt_type=PromptType(prompt_type) if prompt_type else None,
            batch_size=32,
            show_progress_bar=False,
        )
    )


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize(
    "task_name,task_type,prompt_type,expected_prompt",
    [
        ("SciFact", "Retrieval", "query", "scifact q: "),
        ("SciFact", "Retrieval", "document", "passage: "),
        ("STSBenchmark", "STS", None, "sts prompt: "),
        ("Banking77Classification", "Classification", None, ""),
    ],
)
def test_prompts_match_mteb_encode_path(
    prompted, real_texts, task_name, task_type, prompt_type, expected_prompt
):
    ctx = EncodeContext(task_name, task_type, prompt_type=prompt_type)
    assert prompted.group_key(ctx) == expected_prompt
    texts = real_texts[:10] + real_texts[60:61] + real_texts[-7:]
    ours = prompted.encode(texts, ctx)
    reference = _mteb_encode(prompted.sentence_transformer, texts, task_name, prompt_type)
    np.testing.assert_allclose(ours, reference, atol=1e-5, rtol=0)
