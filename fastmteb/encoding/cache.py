"""On-disk embedding cache: safetensors shards, written atomically, verified on every read.

Layout: ``<cache_dir>/<fingerprint>/shard-<sha256 of its keys>.safetensors`` holding two tensors,
``keys`` (uint8 [n, 32], the sha256 of ``json([group_key, text])``) and ``embeddings`` (float32
[n, dim]), with header metadata ``format``, ``fingerprint`` and ``sha256`` (of both tensors' bytes).
A shard that is truncated, unreadable, from another model or whose checksum does not match is
renamed ``*.corrupt``, reported with a warning and recomputed; it is never used. No pickle.

Shards: ``TextPool`` writes one shard per piece of a prompt group as soon as that piece is encoded
(``shard_rows``: the largest power of two of rows whose float32 vectors fit ``SHARD_BYTES``, 32 MiB,
within [``MIN_SHARD_ROWS``, ``MAX_SHARD_ROWS``]), so an interrupted encode (Ctrl-C, a crash, a
kill) keeps every finished shard and a rerun encodes only the rest. A temporary file a killed
writer left behind is deleted by a later reader once it is 15 minutes old.

Which encoders are cached: only those whose ``fingerprint`` is not None. fastmteb derives it from
the weights for the torch models it drives; a plain callable or an mteb-protocol object gets one
only from its user (``CallableEncoder(fn, fingerprint=...)``, ``ProtocolEncoder(model,
fingerprint=...)`` or a ``fastmteb_fingerprint`` attribute on the object), since fastmteb cannot
see its weights. Without one the pool does not cache and says so once (``CacheDisabledWarning``).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import Hashable, Sequence

import numpy as np

from fastmteb.paths import safe_path_component

CACHE_FORMAT = "fastmteb-embeddings-v1"

SHARD_BYTES = 32 * 1024 * 1024
MIN_SHARD_ROWS = 1024
MAX_SHARD_ROWS = 65536
STALE_TEMPORARY_SECONDS = 15 * 60


class CacheCorruptionWarning(RuntimeWarning):
    """A cache shard failed verification and was set aside (its vectors are recomputed)."""


class CacheDisabledWarning(UserWarning):
    """A ``cache_dir`` was given for an encoder without a fingerprint: nothing is cached."""


def shard_rows(dim: int | None) -> int:
    """Rows per cache shard for ``dim``-dimensional vectors: the largest power of two whose float32
    vectors fit ``SHARD_BYTES`` (32 MiB), clipped to [1024, 65536] (16,384 rows at 384 dims, 8,192
    at 1024, 2,048 at 4096). A power of two keeps an encoder that batches itself in the same
    batches (any power-of-two batch size up to 1024) whether or not its group is split."""
    dim = max(1, int(dim or 1024))
    rows = 1 << max(0, (SHARD_BYTES // (4 * dim)).bit_length() - 1)
    return int(min(MAX_SHARD_ROWS, max(MIN_SHARD_ROWS, rows)))


def entry_digest(group_key: Hashable, text: str) -> bytes:
    """sha256 of ``json([group_key, text])``: the cache key of one (prompt, text) entry."""
    payload = json.dumps([group_key, text], ensure_ascii=False, default=str)
    return hashlib.sha256(payload.encode("utf-8")).digest()


def _content_sha(keys: np.ndarray, embeddings: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(keys).tobytes())
    h.update(np.ascontiguousarray(embeddings, dtype=np.float32).tobytes())
    return h.hexdigest()


class EmbeddingCache:
    """Embeddings of one model fingerprint, looked up by ``entry_digest``."""

    def __init__(self, cache_dir: str | Path, fingerprint: str) -> None:
        self.fingerprint = safe_path_component(  # a user's encoder sets the fingerprint
            fingerprint, "encoder fingerprint", inside="the cache folder"
        )
        self.folder = Path(cache_dir) / self.fingerprint
        self._index: dict[bytes, tuple[np.ndarray, int]] | None = None
        self.rejected: list[Path] = []

    def _load_index(self) -> dict[bytes, tuple[np.ndarray, int]]:
        if self._index is None:
            self._index = {}
            if self.folder.is_dir():
                self._remove_stale_temporaries()
                for path in sorted(self.folder.glob("shard-*.safetensors")):
                    self._add_shard(path)
        return self._index

    def _remove_stale_temporaries(self) -> None:
        """Delete temporary shard files a killed writer left (older than
        ``STALE_TEMPORARY_SECONDS``: a live writer, e.g. another run on a shared folder, renames
        its file within seconds)."""
        now = time.time()
        for path in self.folder.glob(".tmp-*.safetensors"):
            try:
                if now - path.stat().st_mtime > STALE_TEMPORARY_SECONDS:
                    path.unlink()
            except OSError:
                pass

    def _add_shard(self, path: Path) -> None:
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="np") as handle:
                meta = handle.metadata() or {}
                keys = handle.get_tensor("keys")
                embeddings = handle.get_tensor("embeddings")
            problem = None
            if meta.get("format") != CACHE_FORMAT:
                problem = f"format {meta.get('format')!r} is not {CACHE_FORMAT!r}"
            elif meta.get("fingerprint") != self.fingerprint:
                problem = "it belongs to another model fingerprint"
            elif (
                keys.dtype != np.uint8
                or keys.ndim != 2
                or keys.shape[1] != 32
                or embeddings.ndim != 2
                or embeddings.dtype != np.float32
                or keys.shape[0] != embeddings.shape[0]
            ):
                problem = "its tensors have unexpected shapes or dtypes"
            elif meta.get("sha256") != _content_sha(keys, embeddings):
                problem = "its checksum does not match its contents"
        except Exception as error:  # noqa: BLE001 - truncated or foreign files fail to parse
            problem = f"it cannot be read ({type(error).__name__}: {error})"
        if problem is not None:
            self._reject(path, problem)
            return
        for row, key in enumerate(keys):
            self._index[key.tobytes()] = (embeddings, row)

    def _reject(self, path: Path, problem: str) -> None:
        warnings.warn(
            f"fastmteb cache: ignoring {path} because {problem}; its embeddings will be recomputed "
            f"(file renamed to {path.name}.corrupt)",
            CacheCorruptionWarning,
            stacklevel=4,
        )
        self.rejected.append(path)
        try:
            os.replace(path, path.with_name(path.name + ".corrupt"))
        except OSError:
            pass

    def lookup(self, digests: Sequence[bytes]) -> dict[int, np.ndarray]:
        """Position in ``digests`` -> cached vector, for the digests present in the cache."""
        index = self._load_index()
        found = {}
        for position, digest in enumerate(digests):
            hit = index.get(digest)
            if hit is not None:
                found[position] = hit[0][hit[1]]
        return found

    def store(self, digests: Sequence[bytes], embeddings: np.ndarray) -> Path | None:
        """Write one shard atomically (temporary file + fsync + rename) and index it."""
        if len(digests) == 0:
            return None
        from safetensors.numpy import save_file

        keys = np.frombuffer(b"".join(digests), dtype=np.uint8).reshape(len(digests), 32)
        embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
        name = f"shard-{hashlib.sha256(keys.tobytes()).hexdigest()[:32]}.safetensors"
        self.folder.mkdir(parents=True, exist_ok=True)
        metadata = {
            "format": CACHE_FORMAT,
            "fingerprint": self.fingerprint,
            "sha256": _content_sha(keys, embeddings),
        }
        handle, temporary = tempfile.mkstemp(prefix=".tmp-", suffix=".safetensors", dir=self.folder)
        os.close(handle)
        try:
            save_file({"keys": keys, "embeddings": embeddings}, temporary, metadata=metadata)
            with open(temporary, "rb+") as written:
                os.fsync(written.fileno())
            target = self.folder / name
            os.replace(temporary, target)
        except BaseException:
            if os.path.exists(temporary):
                os.unlink(temporary)
            raise
        index = self._load_index()
        for row, key in enumerate(keys):
            index[key.tobytes()] = (embeddings, row)
        return target
