"""On-disk embedding cache: safetensors shards, written atomically, verified on every read.

Layout: ``<cache_dir>/<fingerprint>/shard-<sha256 of its keys>.safetensors`` holding two tensors,
``keys`` (uint8 [n, 32], the sha256 of ``json([group_key, text])``) and ``embeddings`` (float32
[n, dim]), with header metadata ``format``, ``fingerprint`` and ``sha256`` (of both tensors' bytes).
A shard that is truncated, unreadable, from another model or whose checksum does not match is
renamed ``*.corrupt``, reported with a warning and recomputed; it is never used. No pickle.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Hashable, Sequence

import numpy as np

CACHE_FORMAT = "fastmteb-embeddings-v1"


class CacheCorruptionWarning(RuntimeWarning):
    """A cache shard failed verification and was set aside (its vectors are recomputed)."""


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
        from fastmteb.results import safe_path_component  # a user's encoder sets the fingerprint

        self.fingerprint = safe_path_component(fingerprint, "encoder fingerprint")
        self.folder = Path(cache_dir) / self.fingerprint
        self._index: dict[bytes, tuple[np.ndarray, int]] | None = None
        self.rejected: list[Path] = []

    def _load_index(self) -> dict[bytes, tuple[np.ndarray, int]]:
        if self._index is None:
            self._index = {}
            if self.folder.is_dir():
                for path in sorted(self.folder.glob("shard-*.safetensors")):
                    self._add_shard(path)
        return self._index

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
