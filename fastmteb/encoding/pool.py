"""TextPool: every distinct (prompt, text) of a run embedded once, handed back as index arrays.

Callers (tasks, the runner, a training callback) ``add`` texts with their ``EncodeContext`` and
keep the returned int64 indices; ``embeddings()`` encodes whatever is not encoded yet and returns
the pool's float32 matrix, so ``embeddings()[indices]`` are a caller's vectors in its own order.
The entry key is ``(encoder.group_key(ctx), text)``: for a torch model the resolved prompt, so a
sentence shared by STS12 and SICK-R is embedded once but a query and a document prompt never mix.
Token ids are computed once per entry and kept across ``reset_embeddings()``, which is what makes
re-encoding after a weight update cheap.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Hashable, Sequence

import numpy as np

from fastmteb.encoding.base import EncodeContext, Encoder
from fastmteb.encoding.batching import EncodeStats
from fastmteb.encoding.cache import EmbeddingCache, entry_digest


class TextPool:
    """Deduplicating, optionally disk-cached embedding pool over one ``Encoder``."""

    def __init__(
        self, encoder: Encoder, *, cache_dir: str | Path | None = None, progress: bool = True
    ) -> None:
        self.encoder = encoder
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.progress = progress
        self._entry_of: dict[tuple[Hashable, str], int] = {}
        self._texts: list[str] = []
        self._group_of_entry: list[int] = []
        self._group_ids: dict[Hashable, int] = {}
        self._groups: list[tuple[Hashable, EncodeContext]] = []
        self._token_ids: list[np.ndarray | None] = []
        self._vectors: np.ndarray | None = None
        self._done = np.zeros(0, dtype=bool)
        self._cache: EmbeddingCache | None = None
        self._requested = 0
        self._cache_hits = 0
        self._encoded = 0
        self._encode_stats = EncodeStats()
        self._seconds = 0.0

    def __len__(self) -> int:
        return len(self._texts)

    def add(self, texts: Sequence[str], ctx: EncodeContext) -> np.ndarray:
        """Register ``texts`` under ``ctx``; int64 pool indices, one per text (repeats share one)."""
        if isinstance(texts, str):
            raise TypeError(
                "TextPool.add expects a sequence of strings, got a single str; wrap it in a list"
            )
        group_key = self.encoder.group_key(ctx)
        group = self._group_ids.get(group_key)
        if group is None:
            group = self._group_ids[group_key] = len(self._groups)
            self._groups.append((group_key, ctx))
        indices = np.empty(len(texts), dtype=np.int64)
        for position, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(
                    f"TextPool.add: text {position} of task {ctx.task_name!r} is {type(text).__name__}, not str; "
                    "mteb passes strings only (None raises there too)"
                )
            key = (group_key, text)
            entry = self._entry_of.get(key)
            if entry is None:
                entry = self._entry_of[key] = len(self._texts)
                self._texts.append(text)
                self._group_of_entry.append(group)
                self._token_ids.append(None)
            indices[position] = entry
        self._requested += len(texts)
        if len(self._done) < len(self._texts):
            self._done = np.concatenate(
                [self._done, np.zeros(len(self._texts) - len(self._done), dtype=bool)]
            )
        return indices

    def reset_embeddings(self) -> None:
        """Forget computed vectors (e.g. after a weight update) but keep texts and token ids."""
        self._done[:] = False
        self._cache = None

    def _disk_cache(self) -> EmbeddingCache | None:
        if self.cache_dir is None:
            return None
        fingerprint = self.encoder.fingerprint
        if self._cache is None or self._cache.fingerprint != fingerprint:
            self._cache = EmbeddingCache(self.cache_dir, fingerprint)
        return self._cache

    def _store_rows(self, entries: np.ndarray, rows: np.ndarray) -> None:
        if self._vectors is None or self._vectors.shape[1] != rows.shape[1]:
            if self._vectors is not None and self._done.any():
                raise ValueError(
                    f"encoder {self.encoder.name!r} returned {rows.shape[1]}-dim vectors after "
                    f"{self._vectors.shape[1]}-dim ones; one pool holds one embedding size"
                )
            self._vectors = np.zeros((len(self._texts), rows.shape[1]), dtype=np.float32)
        if self._vectors.shape[0] < len(self._texts):
            grown = np.zeros((len(self._texts), self._vectors.shape[1]), dtype=np.float32)
            grown[: self._vectors.shape[0]] = self._vectors
            self._vectors = grown
        self._vectors[entries] = rows
        self._done[entries] = True

    def embeddings(self) -> np.ndarray:
        """float32 [len(pool), dim]; encodes only the entries not encoded yet."""
        started = time.perf_counter()
        missing = np.flatnonzero(~self._done[: len(self._texts)])
        cache = self._disk_cache() if len(missing) else None
        digests: dict[int, bytes] = {}
        if cache is not None:
            digests = {
                int(e): entry_digest(self._groups[self._group_of_entry[e]][0], self._texts[e])
                for e in missing
            }
            hits = cache.lookup([digests[int(e)] for e in missing])
            if hits:
                hit_entries = missing[list(hits)]
                self._store_rows(hit_entries, np.stack([hits[p] for p in hits]))
                self._cache_hits += len(hit_entries)
                missing = np.flatnonzero(~self._done[: len(self._texts)])
        groups = (
            np.asarray(self._group_of_entry, dtype=np.int64)[missing]
            if len(missing)
            else np.zeros(0, np.int64)
        )
        for group in np.unique(groups):
            entries = missing[groups == group]
            rows = self._encode_group(int(group), entries)
            self._store_rows(entries, rows)
            self._encoded += len(entries)
            if cache is not None:
                cache.store([digests[int(e)] for e in entries], rows)
        self._seconds += time.perf_counter() - started
        if self._vectors is None:
            return np.zeros((len(self._texts), 0), dtype=np.float32)
        return self._vectors[: len(self._texts)]

    def _encode_group(self, group: int, entries: np.ndarray) -> np.ndarray:
        _, ctx = self._groups[group]
        stats = EncodeStats()
        # duck-typed TokenizingEncoder check: isinstance() on the protocol would evaluate the
        # (weight-hashing) fingerprint property
        tokenizing = all(
            callable(getattr(self.encoder, m, None)) for m in ("tokenize", "encode_tokenized")
        )
        if tokenizing:
            untokenized = [int(e) for e in entries if self._token_ids[e] is None]
            if untokenized:
                tokenized = self.encoder.tokenize([self._texts[e] for e in untokenized], ctx)
                for entry, ids in zip(untokenized, tokenized, strict=True):
                    self._token_ids[entry] = ids
            rows = self.encoder.encode_tokenized(
                [self._token_ids[e] for e in entries], ctx, progress=self.progress, stats=stats
            )
        else:
            rows = self.encoder.encode(
                [self._texts[e] for e in entries], ctx, progress=self.progress
            )
            stats.texts = len(entries)
        self._encode_stats.merge(stats)
        return rows

    @property
    def stats(self) -> dict:
        """Counters since the pool was made: requests, distinct entries, cache hits, tokens, time."""
        s = self._encode_stats
        return {
            "texts_requested": self._requested,
            "distinct": len(self._texts),
            "encoded": self._encoded,
            "cache_hits": self._cache_hits,
            "tokens": s.tokens,
            "padded_tokens": s.padded_tokens,
            "padding_waste": s.padding_waste,
            "batches": s.batches,
            "oom_retries": s.oom_retries,
            "seconds": self._seconds,
        }
