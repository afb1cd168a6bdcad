"""TextPool: every distinct (prompt, text) of a run embedded once, handed back as index arrays.

Callers (tasks, the runner, a training callback) ``add`` texts with their ``EncodeContext`` and
keep the returned int64 indices; ``embeddings()`` encodes whatever is not encoded yet and returns
the pool's float32 matrix, so ``embeddings()[indices]`` are a caller's vectors in its own order.
``embeddings(resident=True)`` keeps that matrix a torch tensor on the encoder's device (the
forward passes write into it there; nothing goes through the host but the disk cache's rows).
The entry key is ``(encoder.group_key(ctx), text)``: for a torch model the resolved prompt, so a
sentence shared by STS12 and SICK-R is embedded once but a query and a document prompt never mix.
Token ids are computed once per entry and kept across ``reset_embeddings()``, which is what makes
re-encoding after a weight update cheap.

With a ``cache_dir`` each prompt group is encoded in pieces of about ``cache_shard_rows`` rows
(whole token-budget batches for a tokenizing encoder, so every vector is bitwise what one call
would give) and each piece goes to the disk cache as one shard as soon as it is encoded: a rerun
after Ctrl-C or a crash reads the finished pieces back and encodes only the rest.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any, Callable, Hashable, Sequence

import numpy as np
import torch

from fastmteb.distributed import SINGLE_PROCESS, Distributed, shard_bounds
from fastmteb.encoding.base import EncodeContext, Encoder
from fastmteb.encoding.batching import EncodeStats
from fastmteb.encoding.cache import CacheDisabledWarning, EmbeddingCache, entry_digest, shard_rows
from fastmteb.encoding.store import EmbeddingStore, RowView, parse_memory_size
from fastmteb.encoding.store import spill_dtype as _checked_spill_dtype


class TextPool:
    """Deduplicating, optionally disk-cached embedding pool over one ``Encoder``."""

    def __init__(
        self,
        encoder: Encoder,
        *,
        cache_dir: str | Path | None = None,
        progress: bool = True,
        max_embedding_memory: int | str | None = None,
        spill_dir: str | Path | None = None,
        spill_dtype: str = "float32",
        cache_shard_rows: int | None = None,
        fingerprint: str | None = None,
        communicator: Distributed | None = None,
    ) -> None:
        """``cache_dir``: verified on-disk embedding cache (``fastmteb.encoding.cache``), used only
        for an encoder whose ``fingerprint`` is not None (a callable or mteb-protocol model needs
        a user-given one, see ``CallableEncoder``); otherwise it is ignored with a
        ``CacheDisabledWarning``. ``cache_shard_rows``: rows per cache shard (None: ``shard_rows``
        of the embedding size, about 32 MiB of vectors; times the world size under torchrun).
        ``fingerprint``: ``encoder.fingerprint`` when the caller has it already (hashing a torch
        model's weights takes a while); used until ``reset_embeddings`` (the weights may change).
        ``communicator``: the ranks of a torchrun run (``fastmteb.distributed.Distributed``), which
        share the encoding and all get every row; None: this process alone.

        ``max_embedding_memory`` (bytes, or "2GB"/"512MiB"; None = no limit): past it the
        vectors live in a spill file (``fastmteb.encoding.store``) in ``spill_dir`` (default
        ``<cache_dir>/.fastmteb-spill``, else the temp folder) as ``spill_dtype`` ("float32", or
        "float16": half the disk, rounded vectors), and ``embeddings()`` returns a lazy
        ``RowView`` instead of an ndarray."""
        self.encoder = encoder
        self.communicator = communicator if communicator is not None else SINGLE_PROCESS
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.progress = progress
        self.max_embedding_bytes = parse_memory_size(max_embedding_memory)
        if spill_dir is None and self.cache_dir is not None:
            spill_dir = self.cache_dir / ".fastmteb-spill"
        self.spill_dir = Path(spill_dir) if spill_dir is not None else None
        self.spill_dtype = _checked_spill_dtype(spill_dtype).name
        self._entry_of: dict[tuple[Hashable, str], int] = {}
        self._texts: list[str] = []
        self._group_of_entry: list[int] = []
        self._group_ids: dict[Hashable, int] = {}
        self._groups: list[tuple[Hashable, EncodeContext]] = []
        self._token_ids: list[np.ndarray | None] = []
        # float32 ndarray without a memory limit (a torch tensor on ``_device`` when resident); an
        # EmbeddingStore (RAM or spill file) with one
        self._vectors: np.ndarray | torch.Tensor | EmbeddingStore | None = None
        self._device: torch.device | None = None  # where _vectors lives when it is a tensor
        self._done = np.zeros(0, dtype=bool)
        self._encoded_last = np.zeros(0, dtype=bool)  # entries the last embeddings() call encoded
        self._cache: EmbeddingCache | None = None
        self._known_fingerprint = fingerprint
        self._cache_disabled_warned = False
        if cache_shard_rows is not None and cache_shard_rows < 1:
            raise ValueError(f"cache_shard_rows must be >= 1, got {cache_shard_rows}")
        self.cache_shard_rows = cache_shard_rows
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
        self._known_fingerprint = None

    def _disk_cache(self) -> EmbeddingCache | None:
        if self.cache_dir is None:
            return None
        fingerprint = self._known_fingerprint or self.encoder.fingerprint
        if fingerprint is None:
            if not self._cache_disabled_warned:
                self._cache_disabled_warned = True
                warnings.warn(
                    f"fastmteb cache: not caching embeddings of model {self.encoder.name!r} in "
                    f"{str(self.cache_dir)!r}: fastmteb cannot see the weights of a plain callable "
                    "or an mteb-protocol model, so different models would share vectors. Give it "
                    "a fingerprint that changes with its weights: CallableEncoder(fn, "
                    "fingerprint=...) / ProtocolEncoder(model, fingerprint=...) from "
                    "fastmteb.encoding, or a 'fastmteb_fingerprint' attribute on the model",
                    CacheDisabledWarning,
                    stacklevel=3,
                )
            return None
        if self._cache is None or self._cache.fingerprint != fingerprint:
            self._cache = EmbeddingCache(self.cache_dir, fingerprint)
        return self._cache

    def _store_rows(self, entries: np.ndarray, rows: np.ndarray | torch.Tensor) -> None:
        if self._vectors is None or self._vectors.shape[1] != rows.shape[1]:
            if self._vectors is not None and self._done.any():
                raise ValueError(
                    f"encoder {self.encoder.name!r} returned {rows.shape[1]}-dim vectors after "
                    f"{self._vectors.shape[1]}-dim ones; one pool holds one embedding size"
                )
            if isinstance(self._vectors, EmbeddingStore):
                self._vectors.close()
            self._vectors = self._new_vectors(rows.shape[1])
        if self._vectors.shape[0] < len(self._texts):
            if isinstance(self._vectors, EmbeddingStore):
                self._vectors.resize(len(self._texts))
            else:
                grown = self._new_vectors(self._vectors.shape[1])
                grown[: self._vectors.shape[0]] = self._vectors
                self._vectors = grown
        if isinstance(self._vectors, torch.Tensor):
            where = torch.from_numpy(entries).to(self._device)
            self._vectors[where] = torch.as_tensor(rows).to(self._device, torch.float32)
        else:
            self._vectors[entries] = _on_host(rows)
        self._done[entries] = True

    def _new_vectors(self, dim: int) -> np.ndarray | torch.Tensor | EmbeddingStore:
        if self.max_embedding_bytes is None:
            if self._device is not None:
                return torch.zeros((len(self._texts), dim), dtype=torch.float32, device=self._device)
            return np.zeros((len(self._texts), dim), dtype=np.float32)
        return EmbeddingStore(len(self._texts), dim, max_bytes=self.max_embedding_bytes,
                              folder=self.spill_dir, dtype=self.spill_dtype)

    @property
    def spilled(self) -> bool:
        """True when the vectors live in a spill file (``max_embedding_memory`` exceeded)."""
        return isinstance(self._vectors, EmbeddingStore) and self._vectors.spilled

    def embeddings(self, *, resident: bool | None = False) -> np.ndarray | torch.Tensor | RowView:
        """float32 [len(pool), dim]; encodes only the entries not encoded yet.

        ``resident``: False: a numpy array. True: a torch tensor on the encoder's device
        (``encoder.device``; the CPU for an encoder without one) that a torch encoder's forward
        passes fill on the device, with no copy to the host (the disk cache alone gets host rows).
        None (auto): True for a torch encoder on CUDA whose vectors fit in a quarter of the free
        device memory, else False. A pool with ``max_embedding_memory`` keeps its vectors on the
        host: a lazy ``RowView`` once spilled (whatever ``resident``), else (resident) copied to
        the device once at the end.
        """
        started = time.perf_counter()
        target = self._resident_device(resident)
        self._keep_vectors_on(target if self.max_embedding_bytes is None else None)
        self._encoded_last = np.zeros(len(self._texts), dtype=bool)
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
        dist = self.communicator
        if dist.is_distributed:
            # all ranks must encode the same entries in the same batches: one missed by any
            # rank's cache is encoded again everywhere
            missing = np.flatnonzero(~dist.all_true(self._done[: len(self._texts)]))
        groups = (
            np.asarray(self._group_of_entry, dtype=np.int64)[missing]
            if len(missing)
            else np.zeros(0, np.int64)
        )
        for group in np.unique(groups):
            pieces = self._chunks(int(group), missing[groups == group], dist, cache is not None)
            for entries in self._pieces_progress(int(group), pieces):
                rows = self._encode_group(int(group), entries, keep_on_device=self._device is not None)
                self._store_rows(entries, rows)
                self._encoded += len(entries)
                self._encoded_last[entries] = True
                if cache is not None and dist.is_main:  # one writer per cache folder
                    cache.store(
                        [
                            digests.get(int(e))
                            or entry_digest(self._groups[self._group_of_entry[e]][0], self._texts[e])
                            for e in entries
                        ],
                        _on_host(rows),
                    )
        self._seconds += time.perf_counter() - started
        if self._vectors is None:
            vectors = np.zeros((len(self._texts), 0), dtype=np.float32)
        else:
            vectors = self._vectors[: len(self._texts)]
        if target is not None and isinstance(vectors, np.ndarray):  # a store in RAM, or no vectors
            return torch.from_numpy(vectors).to(target)
        return vectors

    def _resident_device(self, resident: bool | None) -> torch.device | None:
        """The device ``embeddings(resident=...)`` returns a tensor on; None: numpy."""
        if resident is False:
            return None
        device = getattr(self.encoder, "device", None)
        device = device if isinstance(device, torch.device) else torch.device("cpu")
        if resident:
            return device
        if device.type != "cuda":
            return None
        held = self._vectors.numel() * 4 if isinstance(self._vectors, torch.Tensor) else 0
        needed = len(self._texts) * self._embedding_dim() * 4
        free, _ = torch.cuda.mem_get_info(device)
        # leave the rest to the forward passes and to the scoring kernels' blocks
        return device if needed <= (free + held) // 4 else None

    def _keep_vectors_on(self, device: torch.device | None) -> None:
        """Keep the encoded vectors (ndarray without a memory limit) as a tensor on ``device``, or
        as numpy when None: a later call with another ``resident`` moves them once."""
        self._device = device
        if isinstance(self._vectors, torch.Tensor) and device is None:
            self._vectors = self._vectors.cpu().numpy()
        elif isinstance(self._vectors, (np.ndarray, torch.Tensor)) and device is not None:
            self._vectors = torch.as_tensor(self._vectors).to(device)

    def _pieces_progress(self, group: int, pieces: list[np.ndarray]) -> Any:
        """``pieces``, under a progress bar of pieces when there are several (each piece's encode
        shows its own token bar)."""
        if not self.progress or len(pieces) < 2:
            return pieces
        from tqdm.auto import tqdm

        name = self._groups[group][1].task_name
        return tqdm(pieces, desc=f"Encoding {name} in pieces", unit="piece", leave=False)

    def encode_costs(self) -> np.ndarray:
        """int64 per entry: what encoding it in the last ``embeddings()`` call cost, as its token
        count (prompt included, truncated at the model's max length, as encoded), or its
        characters for an encoder without a tokenizer; 0 for entries that call did not encode
        (cache hits, earlier calls). Used to share the encoding time among tasks."""
        costs = np.zeros(len(self._texts), dtype=np.int64)
        for entry in np.flatnonzero(self._encoded_last[: len(self._texts)]):
            ids = self._token_ids[entry]
            costs[entry] = len(ids) if ids is not None else len(self._texts[entry])
        return costs

    def tokenize_all(self) -> int:
        """Tokenize every registered text not tokenized yet (a no-op for an encoder without a
        tokenizer), so that a later ``embeddings()`` runs forward passes only; returns how many
        texts were tokenized. Token ids depend on the tokenizer, not on the weights: a training
        callback pays this once."""
        if not all(callable(getattr(self.encoder, m, None)) for m in ("tokenize", "encode_tokenized")):
            return 0
        groups = np.asarray(self._group_of_entry, dtype=np.int64)
        pending = np.fromiter((ids is None for ids in self._token_ids), bool, len(self._token_ids))
        for group in np.unique(groups[pending]):
            self._tokenize(np.flatnonzero(pending & (groups == group)), self._groups[int(group)][1])
        return int(pending.sum())

    def _tokenize(self, entries: np.ndarray, ctx: EncodeContext) -> None:
        untokenized = [int(e) for e in entries if self._token_ids[e] is None]
        if untokenized:
            tokenized = self.encoder.tokenize([self._texts[e] for e in untokenized], ctx)
            for entry, ids in zip(untokenized, tokenized, strict=True):
                self._token_ids[entry] = ids

    def _embedding_dim(self) -> int:
        known = self._vectors.shape[1] if self._vectors is not None else 0
        return getattr(self.encoder, "embedding_dim", None) or known or 1024

    def _shard_piece_rows(self, dist: Distributed) -> int:
        """Rows of one cache shard (``cache_shard_rows`` or ``shard_rows`` of the embedding size),
        times the world size under torchrun: each rank's share is then about one shard."""
        rows = self.cache_shard_rows or shard_rows(self._embedding_dim())
        return rows * max(1, dist.world_size)

    def _piece_rows(self, dist: Distributed, caching: bool) -> int | None:
        """Most rows one encode call may cover: a quarter of ``max_embedding_memory`` (one process)
        and, with a disk cache, one shard (so each finished shard is on disk before the next
        starts; rank 0 writes it under torchrun). None: no limit."""
        limits = []
        if self.max_embedding_bytes is not None and not dist.is_distributed:
            limits.append(max(1, self.max_embedding_bytes // 4 // (4 * self._embedding_dim())))
        if caching:
            limits.append(self._shard_piece_rows(dist))
        return min(limits) if limits else None

    def _chunks(
        self, group: int, entries: np.ndarray, dist: Distributed, caching: bool = False
    ) -> list[np.ndarray]:
        """``entries`` in pieces of at most ``_piece_rows`` rows, so an encode never holds more
        than a quarter of ``max_embedding_memory`` before the rows go to the store, and, with a
        disk cache, each piece is written as a shard as soon as it is encoded. For a tokenizing
        encoder pieces are runs of whole token-budget batches of the plan ``encode_tokenized``
        makes for all ``entries`` (it re-plans each piece to the same batches, and a rerun after
        an interruption re-plans the missing pieces to the same batches), so every vector is
        computed in the same batch, and is bitwise the same, as in one call. An encoder that
        batches itself (callable, mteb protocol) gets contiguous runs of entries."""
        rows_per_piece = self._piece_rows(dist, caching)
        if rows_per_piece is None or len(entries) <= rows_per_piece:
            return [entries]
        plan = getattr(self.encoder, "plan", None)
        if not callable(plan) or not callable(getattr(self.encoder, "tokenize", None)):
            if not caching:
                return [entries]
            rows = self._shard_piece_rows(dist)
            return [entries[start : start + rows] for start in range(0, len(entries), rows)]
        self._tokenize(entries, self._groups[group][1])
        lengths = np.fromiter((len(self._token_ids[e]) for e in entries), np.int64, len(entries))
        pieces, current, size = [], [], 0
        for batch in plan(lengths):
            if current and size + len(batch) > rows_per_piece:
                pieces.append(entries[np.concatenate(current)])
                current, size = [], 0
            current.append(batch)
            size += len(batch)
        pieces.append(entries[np.concatenate(current)])
        return pieces

    def _encode_group(
        self, group: int, entries: np.ndarray, keep_on_device: bool = False
    ) -> np.ndarray | torch.Tensor:
        """float32 rows of ``entries`` (one group). Under torch.distributed each rank encodes its
        share (``encode_shard``: the one-process batches dealt round-robin; an encoder without it:
        a contiguous chunk) and every rank gets all rows. ``keep_on_device``: a tokenizing
        encoder's rows of one process stay a tensor on its device."""
        _, ctx = self._groups[group]
        stats = EncodeStats()
        dist = self.communicator
        # duck-typed TokenizingEncoder check: isinstance() on the protocol would evaluate the
        # (weight-hashing) fingerprint property
        tokenizing = all(
            callable(getattr(self.encoder, m, None)) for m in ("tokenize", "encode_tokenized")
        )
        if tokenizing:
            self._tokenize(entries, ctx)
            token_ids = [self._token_ids[e] for e in entries]
            if dist.is_distributed and callable(getattr(self.encoder, "encode_shard", None)):
                positions, local = self.encoder.encode_shard(
                    token_ids, ctx, rank=dist.rank, world_size=dist.world_size,
                    progress=self.progress, stats=stats,
                )
            elif dist.is_distributed:
                positions, local = self._encode_chunk(
                    dist, len(entries),
                    lambda chunk: self.encoder.encode_tokenized(
                        [token_ids[i] for i in chunk], ctx, progress=self.progress, stats=stats
                    ),
                )
            else:
                rows = self.encoder.encode_tokenized(
                    token_ids, ctx, progress=self.progress, stats=stats,
                    # asked only when resident: an encoder of the numpy path needs no such keyword
                    **({"keep_on_device": True} if keep_on_device else {}),
                )
        else:
            encode = lambda chunk: self.encoder.encode(  # noqa: E731
                [self._texts[entries[i]] for i in chunk], ctx, progress=self.progress
            )
            if dist.is_distributed:
                positions, local = self._encode_chunk(dist, len(entries), encode)
            else:
                rows = encode(np.arange(len(entries)))
            stats.texts = len(entries)
        if dist.is_distributed:
            rows = _assemble(dist, len(entries), positions, local)
        self._encode_stats.merge(stats)
        return rows

    @staticmethod
    def _encode_chunk(
        dist: Distributed, n: int, encode: Callable[[np.ndarray], Any]
    ) -> tuple[np.ndarray, np.ndarray]:
        """This rank's contiguous chunk of ``n`` entries for an encoder that batches itself: the
        vectors equal a one-process run's only if the model's output does not depend on what
        else is in its batches."""
        bounds = shard_bounds(n, dist.world_size)
        chunk = np.arange(bounds[dist.rank], bounds[dist.rank + 1], dtype=np.int64)
        return chunk, np.asarray(encode(chunk), dtype=np.float32)

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


def _on_host(rows: np.ndarray | torch.Tensor) -> np.ndarray:
    return rows.cpu().numpy() if isinstance(rows, torch.Tensor) else rows


def _assemble(dist: Distributed, n: int, positions: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """All ranks' ``rows`` (at their ``positions``) as one float32 [n, dim] on every rank."""
    where = np.concatenate(dist.all_gather_rows(np.asarray(positions, dtype=np.int64)))
    parts = np.concatenate(dist.all_gather_rows(np.asarray(rows, dtype=np.float32)))
    if where.shape[0] != n or parts.shape[0] != n:
        raise RuntimeError(f"distributed encoding returned {parts.shape[0]} rows for {n} entries")
    out = np.empty((n, parts.shape[1]), dtype=np.float32)
    out[where] = parts
    return out
