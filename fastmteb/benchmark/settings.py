"""Defaults of ``fastmteb bench``, its engine names and its option error."""

from __future__ import annotations

DEFAULT_TASKS = ("SciFact", "SICK-R")
DEFAULT_DTYPES = ("float32", "bfloat16")
DEFAULT_BATCH_TOKENS = (2048, 4096, 8192, 16384)
DEFAULT_BUCKET_EDGES = (32, 128)
DEFAULT_LIMIT = 1000
DEFAULT_ST_BATCH_SIZE = 32  # SentenceTransformer.encode's default
ALL_BUCKET = "all"
ENGINE_FASTMTEB = "fastmteb"
ENGINE_ST = "sentence-transformers"


class BenchConfigError(ValueError):
    """A benchmark option that cannot be used; the message names the option and the fix."""
