"""Checks of the arguments a run is given, done before any model is loaded or any file written.

``evaluate`` (Python API and ``fastmteb run``) and ``fastmteb bench`` call ``check_run_inputs``
first: a path or device that cannot work fails in a second with one line naming the argument
(as the CLI option and the keyword) and the fix, instead of after the model has loaded or the
whole run has finished. Nothing here imports torch unless a device is given.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = [
    "InputError",
    "check_data_dir",
    "check_device",
    "check_model_path",
    "check_output_folder",
    "check_run_inputs",
    "looks_like_local_path",
]


class InputError(ValueError):
    """An argument that cannot work; the message names it and the fix (the CLI exits 2)."""


def check_run_inputs(
    *,
    model: Any = None,
    data_dir: str | os.PathLike[str] | None = None,
    output_folder: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    device: Any = None,
    output_option: str = "--output-folder / output_folder=",
) -> None:
    """Raise ``InputError`` for the first argument that cannot work; writes and loads nothing."""
    if isinstance(model, (str, os.PathLike)):
        check_model_path(os.fspath(model))
    if data_dir is not None:
        check_data_dir(data_dir)
    if output_folder is not None:
        check_output_folder(output_folder, "output folder", output_option)
    if cache_dir is not None:
        check_output_folder(cache_dir, "cache folder", "--cache-dir / cache_dir=")
    if device is not None:
        check_device(device)


def looks_like_local_path(spec: str) -> bool:
    """A hub id is "name" or "org/name"; anything else (absolute, relative, deeper) is a path."""
    return (
        spec.startswith(("/", ".", "~"))
        or spec.count("/") > 1
        or os.path.exists(os.path.expanduser(spec))
    )


def check_model_path(spec: str) -> None:
    """A model given as a local path must be a folder holding a model (hub ids are not checked:
    they are looked up when the model loads)."""
    where = "(-m / model=)"
    if not spec.strip():
        raise InputError(
            f"model name {spec!r} {where} is empty; fix: pass a model folder or hub id, or leave "
            "it out for the bundled all-MiniLM-L6-v2"
        )
    if not looks_like_local_path(spec):
        return
    expanded = Path(os.path.expanduser(spec))
    absolute = os.path.abspath(expanded)
    shown = repr(spec) if absolute == spec else f"{spec!r} ({absolute})"
    if not expanded.exists():
        raise InputError(
            f"model path {shown} {where} does not exist; fix: pass an existing folder (with "
            "modules.json for a sentence-transformers model or config.json for a Hugging Face "
            "model), a hub id cached locally, or leave it out for the bundled all-MiniLM-L6-v2"
        )
    if not expanded.is_dir():
        raise InputError(
            f"model path {shown} {where} is a file; fix: pass the folder holding the model files"
        )
    if not (expanded / "modules.json").is_file() and not (expanded / "config.json").is_file():
        raise InputError(
            f"model folder {shown} {where} has neither modules.json (sentence-transformers) nor "
            "config.json (Hugging Face); fix: point it at the folder holding the model files"
        )


def check_data_dir(data_dir: str | os.PathLike[str]) -> None:
    """The local data folder must exist and be a folder."""
    path = Path(data_dir)
    where = "(--data-dir / data_dir=)"
    fix = (
        "fix: pass the folder holding one sub-folder per task (layout of shared/data), or leave "
        "it out to use the bundled data and the Hugging Face hub"
    )
    if not path.exists():
        raise InputError(f"data folder {str(path)!r} {where} does not exist; {fix}")
    if not path.is_dir():
        raise InputError(f"data folder {str(path)!r} {where} is a file, not a folder; {fix}")


def check_output_folder(folder: str | os.PathLike[str], what: str, option: str) -> None:
    """A folder fastmteb will write into: it is a folder, or can be made one, and is writable."""
    path = Path(folder)
    where = f"{what} {str(path)!r} ({option})"
    if path.exists() and not path.is_dir():
        raise InputError(
            f"{where} is an existing file; fix: pass a folder path (created if missing) or move "
            "the file away"
        )
    existing = path
    while not existing.exists():  # the first ancestor that exists is the one mkdir starts from
        if existing.parent == existing:
            break
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise InputError(
            f"{where} cannot be created: {str(existing)!r} is a file; fix: pass a path whose "
            "parents are folders"
        )
    if existing.is_dir() and not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(
            f"{where} is not writable (no write permission on {str(existing)!r}); fix: pass a "
            "folder you can write to"
        )


def check_device(device: Any) -> None:
    """``device`` must be a device torch knows, and present on this machine for cuda / mps."""
    import torch

    text = str(device)
    where = f"device {text!r} (--device / device=)"
    fix = "fix: pass cpu, cuda or cuda:N, or leave it out (cuda when available, else cpu)"
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise InputError(f"{where} is not a device torch knows; {fix}") from None
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(
                f"{where}: no CUDA GPU is visible to torch on this machine "
                "(torch.cuda.is_available() is False); fix: use --device cpu / device='cpu', or "
                "leave it out (cuda when available, else cpu)"
            )
        count = torch.cuda.device_count()
        if parsed.index is not None and parsed.index >= count:
            raise InputError(
                f"{where}: this machine has {count} CUDA GPU(s) (cuda:0 to cuda:{count - 1}); "
                f"fix: pass one of those, or cuda"
            )
    elif parsed.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise InputError(f"{where}: Apple MPS is not available on this machine; {fix}")
