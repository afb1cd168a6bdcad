"""Numba helpers shared by the CPU kernels (``ranking``, ``stats``): one definition each."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def float32_exact(values: np.ndarray) -> bool:
    """True when every float64 value survives a round trip through float32.

    NaN counts as surviving (``float32(nan)`` is NaN): ranking runs may carry NaN scores in their
    padding, which must not force a float64 pass; the correlation kernels never see NaN."""
    for x in values:
        if np.float64(np.float32(x)) != x and x == x:
            return False
    return True


@njit(cache=True, inline="always")
def neumaier_add(total: float, compensation: float, term: float) -> tuple[float, float]:
    """One step of Neumaier's compensated sum (CPython's ``sum`` of floats from 3.12 on):
    ``total + compensation`` carries the running sum to about 1 ulp."""
    new_total = total + term
    if abs(total) >= abs(term):
        compensation += (total - new_total) + term
    else:
        compensation += (term - new_total) + total
    return new_total, compensation


@njit(cache=True, inline="always")
def lower_bound(values: np.ndarray, lo: int, hi: int, target) -> int:
    """The first index ``i`` in ``[lo, hi)`` of the ascending ``values`` with
    ``values[i] >= target`` (``hi`` when there is none)."""
    while lo < hi:
        mid = (lo + hi) >> 1
        if values[mid] < target:
            lo = mid + 1
        else:
            hi = mid
    return lo
