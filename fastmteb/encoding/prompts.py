"""Prompt resolution exactly as mteb 2.x + sentence-transformers apply it (mteb's
``models/sentence_transformer_wrapper.py`` and ``abs_encoder.get_prompt_name``).

mteb's ``SentenceTransformerEncoderWrapper`` looks a prompt *name* up in the model's prompt dict
(``abs_encoder.get_prompt_name``) in this order, first hit wins:

    1. "{task_name}-{prompt_type}"   2. task_name   3. "{task_type}-{prompt_type}"
    4. task_type                    5. prompt_type ("query" / "document")

and passes the prompt *string* to ``encode_query`` / ``encode_document`` / ``encode``. When it finds
nothing it passes ``prompt=None`` and sentence-transformers then falls back on its own rules:
``encode_query`` uses ``prompts["query"]``, ``encode_document`` the first of
``prompts["document"|"passage"|"corpus"]``, and any of the three uses ``default_prompt_name`` when
no name was chosen. The prompt is prepended to the text as a plain string.
"""

from __future__ import annotations

from typing import Mapping

from fastmteb.encoding.base import EncodeContext

_DOCUMENT_PROMPT_NAMES = ("document", "passage", "corpus")


def prompt_name_for(prompts: Mapping[str, str | None] | None, ctx: EncodeContext) -> str | None:
    """The key of ``prompts`` mteb's ``get_prompt_name`` picks for ``ctx`` (None when none applies)."""
    if not prompts:
        return None
    task_name, task_type, prompt_type = ctx.task_name, ctx.task_type, ctx.prompt_type
    if task_name and prompt_type and f"{task_name}-{prompt_type}" in prompts:
        return f"{task_name}-{prompt_type}"
    if task_name and task_name in prompts:
        return task_name
    if task_type and prompt_type and f"{task_type}-{prompt_type}" in prompts:
        return f"{task_type}-{prompt_type}"
    if task_type and task_type in prompts:
        return task_type
    if prompt_type and prompt_type in prompts:
        return prompt_type
    return None


def sentence_transformers_prompt(
    prompts: Mapping[str, str | None], prompt_type: str | None, default_prompt_name: str | None
) -> str:
    """What ``encode_query`` / ``encode_document`` / ``encode`` prepend when called with ``prompt=None``."""
    name = None
    if prompt_type == "query" and "query" in prompts:
        name = "query"
    elif prompt_type == "document":
        name = next((c for c in _DOCUMENT_PROMPT_NAMES if c in prompts), None)
    if name is None:
        name = default_prompt_name
    return (prompts.get(name) or "") if name is not None else ""


def resolve_prompt(
    prompts: Mapping[str, str | None] | None,
    ctx: EncodeContext,
    *,
    st_prompts: Mapping[str, str | None] | None = None,
    default_prompt_name: str | None = None,
) -> str:
    """The prompt string prepended to every text of ``ctx`` ("" when none applies).

    ``prompts`` is the dict mteb's lookup searches. ``st_prompts`` (the sentence-transformers
    model's own prompts; None for a plain Hugging Face model) adds what sentence-transformers does
    when mteb's lookup finds nothing (see the module docstring).
    """
    name = prompt_name_for(prompts, ctx)
    if name is not None:
        return prompts.get(name) or ""
    if st_prompts is None:
        return ""
    return sentence_transformers_prompt(st_prompts, ctx.prompt_type, default_prompt_name)
