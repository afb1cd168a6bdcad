"""``fastmteb.kernels.unit_rows``: rows scaled to unit L2 norm, exactly as mteb scales them."""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

from fastmteb.kernels._numba import search as _threads  # _one_thread_when, SERIAL_MAX_ELEMENTS

NORMALIZE_EPS = 1e-12  # torch.nn.functional.normalize's default, which mteb's cos_sim uses
_TORCH_GRAIN = 1 << 15  # at::internal::GRAIN_SIZE

Rows = TypeVar("Rows", np.ndarray, torch.Tensor)


def unit_rows(x: Rows, *, in_place: bool = False) -> Rows:
    r"""Each row divided by its L2 norm, in float32:

    .. math:: \hat x = x / \max(\lVert x \rVert_2, 10^{-12})

    computed by ``torch.nn.functional.normalize(x.float(), p=2, dim=1, eps=1e-12)`` itself, so the
    float32 result is mteb's (``cos_sim``, the pairwise cosine) to the bit.

    Args:
        x: ``[rows, dim]`` numpy array or torch tensor (any device, any real dtype).
        in_place: write the result into ``x`` (a writable float32 array or tensor) and return it;
            the values are the same as without.

    Returns:
        float32 rows of the same kind as ``x``: a numpy array for numpy input, else a tensor on
        ``x``'s device.
    """
    numpy_in = isinstance(x, np.ndarray)
    if in_place:
        writable_float32 = (x.dtype == np.float32 and x.flags.writeable) if numpy_in else (
            x.dtype == torch.float32)
        if not writable_float32:
            raise ValueError(f"unit_rows(in_place=True) needs writable float32 rows, got {x.dtype}")
        tensor = torch.from_numpy(x) if numpy_in else x
    else:
        tensor = (torch.from_numpy(np.ascontiguousarray(x)) if numpy_in else x).float()
    # a mid-sized CPU input runs on one thread (waking torch's pool costs more than it saves);
    # below torch's own grain size (32768 elements) torch stays on one thread by itself
    small = tensor.device.type == "cpu" and _TORCH_GRAIN <= tensor.numel() < _threads.SERIAL_MAX_ELEMENTS
    with _threads._one_thread_when(small):
        out = torch.nn.functional.normalize(
            tensor, p=2, dim=1, eps=NORMALIZE_EPS, out=tensor if in_place else None)
    return out.numpy() if numpy_in else out
