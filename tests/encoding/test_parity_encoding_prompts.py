"""Prompt resolution equals mteb's get_prompt_name + sentence-transformers' prompt=None fallbacks."""

import itertools

import mteb
import pytest
from mteb.models.abs_encoder import get_prompt_name
from mteb.types import PromptType

from fastmteb.encoding import EncodeContext, load_encoder, resolve_prompt

TASKS = ["SciFact", "STSBenchmark", "Banking77Classification", "TwitterURLCorpus"]
KEYS = [
    "SciFact-query",
    "SciFact",
    "Retrieval-document",
    "Retrieval",
    "STS",
    "query",
    "document",
    "passage",
    "STSBenchmark-query",
    "Classification-query",
]


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("task_name", TASKS)
def test_prompt_name_lookup_equals_mteb(task_name, seed):
    metadata = mteb.get_task(task_name).metadata
    keys = [k for i, k in enumerate(KEYS) if (seed >> (i % 10)) & 1 or (seed * 7 + i) % 3 == 0]
    prompts = {key: f"<{key}> " for key in keys}
    for prompt_type in (None, "query", "document"):
        ctx = EncodeContext(metadata.name, metadata.type, prompt_type=prompt_type)
        name = get_prompt_name(prompts, metadata, PromptType(prompt_type) if prompt_type else None)
        assert resolve_prompt(prompts, ctx) == (prompts[name] if name else "")


PROMPT_SETS = [
    {},
    {"query": "q: "},
    {"passage": "p: ", "corpus": "c: "},
    {"corpus": "c: ", "instruct": "i: "},
    {"query": "", "document": ""},
    {"STS": "sts: ", "document": "d: "},
]


@pytest.mark.parametrize(
    "prompts,default_name",
    [
        (p, d)
        for p, d in itertools.product(PROMPT_SETS, [None, "instruct", "corpus"])
        if d is None or d in p
    ],
)
def test_sentence_transformers_fallbacks_match_encode_query_and_document(
    sentence_transformer, prompts, default_name
):
    """Oracle: what SentenceTransformer.encode_query / encode_document / encode resolve for prompt=None."""
    saved = sentence_transformer.prompts, sentence_transformer.default_prompt_name
    resolved = {}

    def capture(inputs, prompt_name=None, prompt=None, **kwargs):
        return sentence_transformer._resolve_prompt(prompt, prompt_name)

    try:
        sentence_transformer.prompts, sentence_transformer.default_prompt_name = (
            dict(prompts),
            default_name,
        )
        sentence_transformer.encode = capture  # instance attribute shadows the method
        resolved = {
            "query": sentence_transformer.encode_query(["x"]),
            "document": sentence_transformer.encode_document(["x"]),
            None: sentence_transformer.encode(["x"]),
        }
        encoder = load_encoder(sentence_transformer, device="cpu")
    finally:
        del sentence_transformer.encode
        sentence_transformer.prompts, sentence_transformer.default_prompt_name = saved
    task = {
        "query": ("SciFact", "Retrieval"),
        "document": ("SciFact", "Retrieval"),
        None: ("Banking77Classification", "Classification"),
    }
    for prompt_type, expected in resolved.items():
        name, task_type = task[prompt_type]
        ctx = EncodeContext(name, task_type, prompt_type=prompt_type)
        expected = expected or ""
        if name in prompts or task_type in prompts:
            continue  # mteb's own lookup hits first; covered above
        assert encoder.resolved_prompt(ctx) == expected, (prompts, default_name, prompt_type)
