"""Which implementation the public kernel entries run: ``use_backend("triton" | "numba" | "auto")``.

- ``"auto"`` (default): CUDA torch tensors take the device path (Triton kernels for ``topk``,
  torch operations on the device for the correlations and the pair sweep), everything else the
  Numba path.
- ``"triton"``: every torch tensor takes the device path, CPU tensors included. For ``topk`` on CPU
  tensors that means the Triton interpreter, so ``TRITON_INTERPRET=1`` must be set before triton is
  imported (the tests do: it is how the GPU code path is checked on a machine without a GPU).
- ``"numba"``: the Numba path for every input (CUDA tensors are read back to the host).

The choice is a ``contextvars.ContextVar``: it holds for the current thread (and asyncio task) inside
the ``with`` block only.
"""

from __future__ import annotations

import contextlib
import os
from contextvars import ContextVar
from typing import Any, Iterator, Literal

import torch

Backend = Literal["auto", "triton", "numba"]
BACKENDS: tuple[str, ...] = ("auto", "triton", "numba")

_backend: ContextVar[str] = ContextVar("fastmteb_kernels_backend", default="auto")


@contextlib.contextmanager
def use_backend(name: Backend) -> Iterator[None]:
    """Run the kernels inside the block on backend ``name`` (see the module docstring)."""
    if name not in BACKENDS:
        raise ValueError(f"unknown kernel backend {name!r}; use one of {BACKENDS}")
    token = _backend.set(name)
    try:
        yield
    finally:
        _backend.reset(token)


def current_backend() -> str:
    """The backend in force here: "auto", "triton" or "numba"."""
    return _backend.get()


def on_device_path(*values: Any) -> bool:
    """True when inputs ``values`` take the device path (torch on their device; Triton for ``topk``):
    under "auto" when one is a CUDA tensor, under "triton" when one is a torch tensor."""
    backend = _backend.get()
    if backend == "numba":
        return False
    tensors = [value for value in values if isinstance(value, torch.Tensor)]
    return any(t.is_cuda for t in tensors) if backend == "auto" else bool(tensors)


def on_triton_path(queries: Any) -> bool:
    """``on_device_path`` for an entry that launches Triton kernels on ``queries``' device; raises
    when "triton" is forced on CPU tensors without the interpreter (``TRITON_INTERPRET=1``)."""
    if not on_device_path(queries):
        return False
    if not queries.is_cuda and os.environ.get("TRITON_INTERPRET") != "1":
        raise RuntimeError(
            "fastmteb.kernels: the 'triton' backend got CPU tensors; Triton runs on the CPU only "
            "interpreted: set TRITON_INTERPRET=1 before importing fastmteb, or use CUDA tensors"
        )
    return True
