"""Where a result came from, and whether an earlier result may be reused (resume).

Every result file fastmteb writes carries a top-level ``"fastmteb"`` object (mteb's
``TaskResult`` ignores keys it does not know, so mteb still reads the file)::

    "fastmteb": {
      "version": "0.1.0",                              # fastmteb that wrote the file
      "model": {"name", "revision", "model_fingerprint", "fingerprint"},
      "settings": {"dtype", "spill_dtype", "prompts",  # these decide resume
                   "device", "batch_tokens", "max_embedding_memory",    # recorded only
                   "resident"},  # the device the vectors were scored on, null: host arrays
      "data": {"source": "hub", "hf_path", "revision"}
            | {"source": "local" | "bundled", "folder", "files": {relative path: sha256}, "sha256"}
    }

``model_fingerprint`` identifies the model without the run settings (weights, pooling, max
length...), ``fingerprint`` is the encoder's own (it adds the compute dtype). A result is reused
on a rerun only if its model fingerprint, the settings in ``RESUME_SETTINGS`` and its data are
those of the new run; otherwise the task is evaluated again and the reason is logged.

The data hash is of the bytes of every file the loader read for the task (``note_read`` is called
by ``fastmteb.data.loading``, see ``fastmteb.data.reads``); each file is hashed once per process
(keyed on path, size and modification time).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastmteb.data.reads import note_read, record_reads
from fastmteb.results import NO_REVISION, PROVENANCE_KEY
from fastmteb.version import __version__

if TYPE_CHECKING:
    from fastmteb.tasks.base import TaskMetadata

__all__ = ["PROVENANCE_KEY", "RESUME_SETTINGS", "record_reads", "note_read", "reuse_problem"]

#: Settings that change scores: a stored result with other values is evaluated again.
#: ``dtype`` is the compute dtype the encoder used (None for a model fastmteb does not run itself),
#: ``spill_dtype`` float16 rounds the embeddings, ``prompts`` are the prompts the encoder applies.
#: Not deciding (recorded only): ``device``, ``batch_tokens``, ``max_embedding_memory``,
#: ``resident`` (where the vectors were scored: a device, or null for host arrays) - they
#: change how the work is cut, not what is computed (float32 reduction order aside, the same noise
#: as between two runs of mteb with different batch sizes), so a run that ran out of memory can be
#: resumed with a smaller batch budget or on another device.
RESUME_SETTINGS = ("dtype", "spill_dtype", "prompts")
_HEX = re.compile(r"[0-9a-f]{16,}")
_CHUNK = 1 << 20


# ---------------------------------------------------------------------------------------------
# Model identity and the result folder


def encoder_fingerprints(encoder: Any) -> tuple[str, str]:
    """(model fingerprint, encoder fingerprint) of ``encoder``, computed once.

    The model fingerprint leaves out run settings such as the compute dtype; an encoder that
    does not tell it apart (a user's own ``Encoder``) gives its fingerprint for both.
    """
    both = getattr(encoder, "fingerprints", None)
    if callable(both):
        model_fp, fp = both()
        return str(model_fp), str(fp)
    fp = str(getattr(encoder, "fingerprint", "") or "")
    return str(getattr(encoder, "model_fingerprint", None) or fp), fp


def short_fingerprint(fingerprint: str) -> str:
    """16 hex characters naming a fingerprint in a folder name."""
    if _HEX.fullmatch(fingerprint):
        return fingerprint[:16]
    return hashlib.sha256(fingerprint.encode()).hexdigest()[:16]


def revision_folder_name(revision: str | None, model_fingerprint: str) -> str:
    """The revision component of the result folder: the model's revision when it has one
    (hub commit, mteb metadata), else ``fp-<16 hex of the model fingerprint>`` so that two
    models of the same name without a revision (``./a/final`` and ``./b/final``, or one folder
    retrained in place) never share a folder."""
    if revision and revision != NO_REVISION:
        return revision
    return f"fp-{short_fingerprint(model_fingerprint)}"


def encoder_settings(
    encoder: Any,
    *,
    device: str | None,
    batch_tokens: int,
    spill: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The ``settings`` record of a run (see ``RESUME_SETTINGS`` for which decide resume)."""
    compute_dtype = getattr(encoder, "compute_dtype", None)
    dtype = str(compute_dtype).removeprefix("torch.") if compute_dtype is not None else None
    prompts = getattr(encoder, "prompts", None)
    encoder_device = getattr(encoder, "device", None)
    spill = spill or {}
    settings = {
        "dtype": dtype,
        "spill_dtype": spill.get("spill_dtype", "float32"),
        "prompts": dict(prompts) if isinstance(prompts, Mapping) and prompts else None,
        "device": str(encoder_device) if encoder_device is not None else device,
        "batch_tokens": getattr(encoder, "batch_tokens", batch_tokens),
        "max_embedding_memory": spill.get("max_embedding_memory"),
    }
    # as it will read back from the file (string keys, lists), so that comparing is exact
    return json.loads(json.dumps(settings, default=str))


def version() -> str:
    return __version__


# ---------------------------------------------------------------------------------------------
# Files the loader reads, and their hashes

_hash_cache: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 of the file's bytes, computed once per (path, size, modification time)."""
    path = Path(path).resolve()
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    digest = _hash_cache.get(key)
    if digest is None:
        h = hashlib.sha256()
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                h.update(chunk)
        digest = _hash_cache[key] = h.hexdigest()
    return digest


def combined_sha256(files: Mapping[str, str]) -> str:
    """One hash of {relative path: sha256}: changes when any file, or the set of files, does."""
    text = "".join(f"{name}\t{files[name]}\n" for name in sorted(files))
    return hashlib.sha256(text.encode()).hexdigest()


def _relative(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            pass
    return path.resolve().as_posix()


def data_source(meta: TaskMetadata, data_dir: str | os.PathLike[str] | None) -> tuple[str, Path | None]:
    """Where the loader takes ``meta``'s rows from: ("local", task folder under ``data_dir``),
    ("bundled", the package's copy) or ("hub", None); the loader's own rule."""
    if data_dir is not None:
        return "local", Path(data_dir) / meta.local_dir if meta.local_dir else Path(data_dir)
    if meta.local_dir is None:
        return "hub", None
    from fastmteb.data.loading import BUNDLED_DIR, bundled_source

    if any(bundled_source(meta, subset) is not None for subset in meta.hf_subsets):
        return "bundled", BUNDLED_DIR / meta.local_dir
    return "hub", None


def data_record(
    meta: TaskMetadata, data_dir: str | os.PathLike[str] | None, files_read: list[Path]
) -> dict[str, Any]:
    """The ``data`` record of a task: the hub revision, or the folder and the hash of each file
    read from it."""
    kind, root = data_source(meta, data_dir)
    if kind == "hub" and not files_read:
        return {"source": "hub", "hf_path": meta.hf_path, "revision": meta.hf_revision}
    files = {_relative(p, root): file_sha256(p) for p in dict.fromkeys(files_read)}
    return {
        "source": kind,
        "folder": _folder_label(kind, root),
        "files": dict(sorted(files.items())),
        "sha256": combined_sha256(files),
    }


def _folder_label(kind: str, root: Path | None) -> str | None:
    if root is None:
        return None
    if kind == "bundled":
        from fastmteb.data.loading import BUNDLED_DIR

        return "fastmteb/data/bundled/" + _relative(root, BUNDLED_DIR)
    return root.resolve().as_posix()


def merge_data_records(
    earlier: Mapping[str, Any] | None, new: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """Data record of a result built from an earlier one plus newly evaluated (split, subset)s."""
    if not earlier or not new:
        return dict(new or earlier or {}) or None
    if earlier.get("source") != new.get("source") or "files" not in new:
        return dict(new)
    files = {**earlier.get("files", {}), **new["files"]}
    return {**new, "files": dict(sorted(files.items())), "sha256": combined_sha256(files)}


# ---------------------------------------------------------------------------------------------
# Resume: may a stored result be reused?


def _describe(record: Mapping[str, Any]) -> str:
    source = record.get("source")
    if source == "hub":
        return f"hub {record.get('hf_path')}@{str(record.get('revision'))[:12]}"
    return f"{source} folder {record.get('folder')}"


def data_difference(
    stored: Mapping[str, Any] | None, meta: TaskMetadata, data_dir: str | os.PathLike[str] | None
) -> str | None:
    """Why the stored data record is not the data this run would read, or None when it is.

    Local and bundled files are hashed again (once per process each); the files are those the
    stored result read, found under this run's folder.
    """
    if not stored or "source" not in stored:
        return None  # nothing recorded: cannot tell, the result is kept
    kind, root = data_source(meta, data_dir)
    if stored["source"] != kind:
        now = {"source": kind, "hf_path": meta.hf_path, "revision": meta.hf_revision,
               "folder": _folder_label(kind, root)}
        return f"data source was {_describe(stored)}, now {_describe(now)}"
    if kind == "hub":
        if stored.get("revision") not in (None, meta.hf_revision):
            return f"dataset revision was {stored.get('revision')}, now {meta.hf_revision}"
        return None
    changed = []
    for name, digest in (stored.get("files") or {}).items():
        path = Path(name) if Path(name).is_absolute() else (root or Path()) / name
        if not path.is_file():
            changed.append(f"{name} (missing)")
        elif file_sha256(path) != digest:
            changed.append(name)
    if changed:
        shown = ", ".join(changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")
        return f"data files differ from those scored: {shown}"
    return None


def settings_difference(stored: Mapping[str, Any] | None, current: Mapping[str, Any]) -> str | None:
    """Why the stored settings give other scores than ``current``'s, or None. Keys the stored
    record lacks are not compared."""
    if not stored:
        return None
    changed = [
        f"{key} {stored[key]!r} -> {current.get(key)!r}"
        for key in RESUME_SETTINGS
        if key in stored and stored[key] != current.get(key)
    ]
    return ", ".join(changed) or None


def reuse_problem(
    stored: Mapping[str, Any] | None,
    *,
    model_fingerprint: str,
    fingerprint: str,
    settings: Mapping[str, Any],
    meta: TaskMetadata,
    data_dir: str | os.PathLike[str] | None,
) -> str | None:
    """Why a stored result (its provenance record ``stored``) must not be reused by this run, or
    None when it may. In order: other weights (model fingerprint), a setting of
    ``RESUME_SETTINGS``, other encoder settings (encoder fingerprint), other data."""
    if not stored:
        return None
    model = stored.get("model") or {}
    if model.get("model_fingerprint") not in (None, model_fingerprint):
        return (
            "scored by other weights (model fingerprint "
            f"{short_fingerprint(str(model['model_fingerprint']))}, now {short_fingerprint(model_fingerprint)})"
        )
    problem = settings_difference(stored.get("settings"), settings)
    if problem:
        return problem
    if model.get("fingerprint") not in (None, fingerprint):
        return "scored with other encoder settings (encoder fingerprint differs)"
    return data_difference(stored.get("data"), meta, data_dir)
