"""Toy models shared by tests that need a deterministic model without a tokenizer or weights.

Import like ``mteb_oracle``: ``sys.path.insert(0, <tests folder>); from toy_models import bag_of_words``.
Processes spawned by ``torch.multiprocessing`` inherit that ``sys.path``, so they can unpickle it.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np


def bag_of_words(texts: Sequence[str], dim: int = 64) -> np.ndarray:
    """Hashed word counts, float32 [len(texts), dim]: deterministic, similar texts get similar
    vectors (many ties), and the last column is 0.5 more so that no vector is zero."""
    out = np.zeros((len(texts), dim), dtype=np.float32)
    for i, text in enumerate(texts):
        for word in text.lower().split():
            out[i, zlib.crc32(word.encode()) % dim] += 1.0
        out[i, dim - 1] += 0.5
    return out
