"""Encoding engine: model wrappers, token-budget batching, the deduplicating text pool, the disk cache."""

from fastmteb.encoding.base import EncodeContext, Encoder, TokenizingEncoder
from fastmteb.encoding.batching import EncodeStats, plan_batches
from fastmteb.encoding.cache import CacheCorruptionWarning, CacheDisabledWarning, EmbeddingCache
from fastmteb.encoding.models import (
    BUNDLED_MODEL_NAME,
    CallableEncoder,
    ModelLoadError,
    ProtocolEncoder,
    TorchEncoder,
    load_encoder,
    pool_hidden_states,
)
from fastmteb.encoding.pool import TextPool
from fastmteb.encoding.prompts import prompt_name_for, resolve_prompt

__all__ = [
    "BUNDLED_MODEL_NAME",
    "CacheCorruptionWarning",
    "CacheDisabledWarning",
    "CallableEncoder",
    "EmbeddingCache",
    "EncodeContext",
    "EncodeStats",
    "Encoder",
    "ModelLoadError",
    "ProtocolEncoder",
    "TextPool",
    "TokenizingEncoder",
    "TorchEncoder",
    "load_encoder",
    "plan_batches",
    "pool_hidden_states",
    "prompt_name_for",
    "resolve_prompt",
]
