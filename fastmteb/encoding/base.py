"""The encoding contract shared by the text pool, the runner and the model wrappers."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Hashable, Mapping, Protocol, Sequence, runtime_checkable

import numpy as np

from fastmteb.prompt_type import PromptType


@dataclass(frozen=True)
class EncodeContext:
    """Why a text is embedded: mteb resolves prompts and instructions from exactly these fields."""

    task_name: str
    task_type: str
    prompt_type: PromptType | None = None
    hf_split: str = "test"
    hf_subset: str = "default"
    task_prompt: str | Mapping[str, str] | None = None


@runtime_checkable
class Encoder(Protocol):
    """What the text pool needs from a model wrapper.

    Two texts are encoded once when ``group_key`` of their contexts is equal and the strings are
    equal. For a torch model this key is the resolved prompt string, so the same sentence asked for
    by STS12 and SICK-R is embedded once; an opaque mteb-protocol model gets a key with the task's
    name, split, subset and prompt type, since it may embed differently per task.
    """

    name: str
    revision: str
    # stable across processes: model identity, weights, dtype, pooling, max length. The disk cache
    # folder's key; None when the encoder cannot tell its weights apart (a callable or
    # mteb-protocol model without a user-given fingerprint): then nothing is cached.
    fingerprint: str | None

    def group_key(self, ctx: EncodeContext) -> Hashable: ...

    def encode(self, texts: Sequence[str], ctx: EncodeContext, *, progress: bool = False) -> np.ndarray:
        """float32 [len(texts), dim], row i the embedding of texts[i]."""
        ...


@runtime_checkable
class TokenizingEncoder(Encoder, Protocol):
    """An ``Encoder`` the text pool can feed token ids (added by the encoding engine).

    ``tokenize`` returns the ids of ``prompt + text`` per text (truncated, no padding);
    ``encode_tokenized`` embeds such ids, so a pool tokenizes each distinct string once and a
    training callback re-encodes after a weight update without re-tokenizing.
    """

    def tokenize(self, texts: Sequence[str], ctx: EncodeContext) -> list[np.ndarray]: ...

    def encode_tokenized(
        self, token_ids: Sequence[np.ndarray], ctx: EncodeContext, *, progress: bool = False, stats: Any = None
    ) -> np.ndarray: ...


_ENCODER_MEMBERS = ("name", "revision", "fingerprint", "group_key", "encode")


def is_encoder(obj: Any) -> bool:
    """True for a ready ``Encoder``: it has every member of the protocol (a SentenceTransformer,
    a plain callable or an mteb-protocol model lacks some, and is wrapped by ``load_encoder``).

    Looked up without running properties: a torch encoder's ``fingerprint`` hashes its weights.
    """
    missing = object()
    return all(
        inspect.getattr_static(obj, member, missing) is not missing for member in _ENCODER_MEMBERS
    )
