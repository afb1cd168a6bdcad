"""Spearman and Pearson correlation, equal to ``scipy.stats.spearmanr`` / ``pearsonr``.

One vector pair gives a float; column-wise batches give one coefficient per column:

- ``x`` [n], ``y`` [n]        -> float
- ``x`` [n, m], ``y`` [n, m]  -> float64 [m], entry j = corr(x[:, j], y[:, j])
- ``x`` [n], ``y`` [n, m]     -> float64 [m], entry j = corr(x, y[:, j])   (and the mirror case)

CPU arrays (numpy, lists, CPU torch tensors) go to the Numba kernels in ``_numba/stats.py``
(radix-sort ranks, compensated sums); CUDA tensors stay on their device and are handled with
torch operations (sort, cumulative max/min for tie groups, float64 sums), no Triton kernel.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy.stats import ConstantInputWarning, NearConstantInputWarning

from fastmteb.kernels._numba.stats import pearson_rows, spearman_rows
from fastmteb.kernels.backend import on_device_path

__all__ = ["pearson", "spearman"]

_CONSTANT_MESSAGE = "An input array is constant; the correlation coefficient is not defined."
_TOO_SHORT_MESSAGE = "pearson: x and y must have length at least 2 (as scipy.stats.pearsonr)."
_NEARLY_CONSTANT_MESSAGE = (
    "An input array is nearly constant; the computed correlation coefficient may be inaccurate."
)


def spearman(x: Any, y: Any) -> float | np.ndarray:
    """Spearman rank correlation, as ``scipy.stats.spearmanr(x, y).statistic``.

    ``rho = sum_i (r_i - rbar)(s_i - sbar) / sqrt(sum_i (r_i - rbar)^2 * sum_i (s_i - sbar)^2)``
    where ``r``, ``s`` are the 1-based ranks of x and y, tied values sharing the mean of their
    ranks (scipy's ``rankdata(method="average")``), and ``rbar = sbar = (n + 1) / 2``.

    Args:
        x, y: real arrays [n] or [n, m] (see the module docstring for batching), numpy,
            lists or torch tensors. ``+-inf`` is allowed (it ranks like scipy ranks it).

    Returns:
        A float for two vectors, else a float64 array [m]. NaN where a column is constant
        (with scipy's ``ConstantInputWarning``) and when n == 1 (as scipy, no warning).

    Raises:
        ValueError: NaN in the input, mismatched shapes, empty input or more than 2 dims.
    """
    if on_device_path(x, y):
        return _spearman_torch(x, y)
    x_rows, y_rows, single = _paired_rows(x, y, allow_infinite=True)
    if x_rows.shape[1] == 1:
        return _shaped(np.full(y_rows.shape[0], np.nan), single)
    result = spearman_rows(x_rows, y_rows)
    _warn_if_constant(result)
    return _shaped(result, single)


def pearson(x: Any, y: Any) -> float | np.ndarray:
    """Pearson correlation, as ``scipy.stats.pearsonr(x, y).statistic``.

    ``r = sum_i (x_i - xbar)(y_i - ybar) / sqrt(sum_i (x_i - xbar)^2 * sum_i (y_i - ybar)^2)``,
    clipped to [-1, 1]; computed in float64 with compensated sums after centring and scaling
    each vector by its largest deviation (scipy's guard against overflow).

    Args:
        x, y: real, finite arrays [n] or [n, m] with n >= 2 (see the module docstring).

    Returns:
        A float for two vectors, else a float64 array [m]. NaN where a column is constant
        (with scipy's ``ConstantInputWarning``); scipy's ``NearConstantInputWarning`` when a
        column is nearly constant. Inputs of float32 are upcast: scipy computes two float32
        inputs in float32, this always in float64 (the mteb inputs are float64 already).

    Raises:
        ValueError: NaN or inf in the input (scipy would return NaN), n < 2 (as scipy),
            mismatched shapes, or more than 2 dims.
    """
    if on_device_path(x, y):
        return _pearson_torch(x, y)
    x_rows, y_rows, single = _paired_rows(x, y, allow_infinite=False)
    if x_rows.shape[1] < 2:
        raise ValueError(_TOO_SHORT_MESSAGE)
    result, nearly_constant = pearson_rows(
        x_rows.astype(np.float64, copy=False), y_rows.astype(np.float64, copy=False)
    )
    _warn_if_constant(result)
    if nearly_constant:
        warnings.warn(NearConstantInputWarning(_NEARLY_CONSTANT_MESSAGE), stacklevel=2)
    return _shaped(result, single)


def _as_real_array(values: Any, name: str) -> np.ndarray:
    """A numpy view of ``values`` (torch CPU tensors included), float32 or float64."""
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    array = np.asarray(values)
    if array.dtype == np.float16:
        array = array.astype(np.float32)
    elif array.dtype.kind in "biu":
        array = array.astype(np.float64)
    elif array.dtype.kind != "f":
        raise ValueError(f"{name} must hold real numbers, got dtype {array.dtype}.")
    if array.ndim not in (1, 2):
        raise ValueError(f"{name} must be 1-D [n] or 2-D [n, m], got shape {array.shape}.")
    if array.shape[0] == 0:
        raise ValueError(f"{name} is empty: correlations need at least one observation.")
    return array


def _check_values(array: np.ndarray, name: str, *, allow_infinite: bool) -> None:
    if np.isnan(array).any():
        where = np.argwhere(np.isnan(array))[0].tolist()
        raise ValueError(f"{name} contains NaN (first at index {where}); drop or impute it first.")
    if not allow_infinite and np.isinf(array).any():
        where = np.argwhere(np.isinf(array))[0].tolist()
        raise ValueError(
            f"{name} contains inf (first at index {where}); pearson needs finite values."
        )


def _paired_rows(
    x: Any, y: Any, *, allow_infinite: bool
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Contiguous rows to correlate: x [1 or m, n], y [m, n], and whether the input was 1-D pairs.

    Pearson and Spearman are symmetric, so a shared 1-D ``y`` against a 2-D ``x`` is swapped.
    """
    x_array = _as_real_array(x, "x")
    y_array = _as_real_array(y, "y")
    if x_array.shape[0] != y_array.shape[0]:
        raise ValueError(
            f"x and y need the same number of observations (first axis): "
            f"{x_array.shape[0]} != {y_array.shape[0]}."
        )
    if x_array.ndim == 2 and y_array.ndim == 2 and x_array.shape != y_array.shape:
        raise ValueError(
            f"2-D x and y must have the same shape (one column per correlation): "
            f"{x_array.shape} != {y_array.shape}."
        )
    _check_values(x_array, "x", allow_infinite=allow_infinite)
    _check_values(y_array, "y", allow_infinite=allow_infinite)
    single = x_array.ndim == 1 and y_array.ndim == 1
    if x_array.ndim == 2 and y_array.ndim == 1:
        x_array, y_array = y_array, x_array
    x_rows = np.ascontiguousarray(x_array.T if x_array.ndim == 2 else x_array[None])
    y_rows = np.ascontiguousarray(y_array.T if y_array.ndim == 2 else y_array[None])
    return x_rows, y_rows, single


def _shaped(result: np.ndarray, single: bool) -> float | np.ndarray:
    return float(result[0]) if single else result


def _warn_if_constant(result: np.ndarray) -> None:
    if np.isnan(result).any():
        warnings.warn(ConstantInputWarning(_CONSTANT_MESSAGE), stacklevel=3)


# --- torch path (CUDA tensors; the tests also drive it with CPU tensors) -----------------------


def _torch_rows(x: Any, y: Any, *, allow_infinite: bool) -> tuple[Any, Any, bool]:
    """The torch twin of ``_paired_rows``: float64 rows on the tensors' device."""
    import torch

    device = x.device if isinstance(x, torch.Tensor) else y.device
    x_tensor = torch.as_tensor(x, device=device)
    y_tensor = torch.as_tensor(y, device=device)
    for tensor, name in ((x_tensor, "x"), (y_tensor, "y")):
        if tensor.is_complex():
            raise ValueError(f"{name} must hold real numbers, got dtype {tensor.dtype}.")
        if tensor.ndim not in (1, 2) or tensor.shape[0] == 0:
            raise ValueError(
                f"{name} must be non-empty 1-D [n] or 2-D [n, m], got {tuple(tensor.shape)}."
            )
        if torch.isnan(tensor).any():
            raise ValueError(f"{name} contains NaN; drop or impute it first.")
        if not allow_infinite and torch.isinf(tensor).any():
            raise ValueError(f"{name} contains inf; pearson needs finite values.")
    if x_tensor.shape[0] != y_tensor.shape[0] or (
        x_tensor.ndim == 2 and y_tensor.ndim == 2 and x_tensor.shape != y_tensor.shape
    ):
        raise ValueError(
            f"x and y shapes do not pair up: {tuple(x_tensor.shape)} vs {tuple(y_tensor.shape)}."
        )
    single = x_tensor.ndim == 1 and y_tensor.ndim == 1
    if x_tensor.ndim == 2 and y_tensor.ndim == 1:
        x_tensor, y_tensor = y_tensor, x_tensor
    x_rows = (x_tensor.T if x_tensor.ndim == 2 else x_tensor[None]).to(torch.float64).contiguous()
    y_rows = (y_tensor.T if y_tensor.ndim == 2 else y_tensor[None]).to(torch.float64).contiguous()
    return x_rows, y_rows, single


def _torch_centered_doubled_ranks(rows: Any) -> Any:
    """``2 * rank - (n + 1)`` per element of each row (average ranks for ties), float64."""
    import torch

    n = rows.shape[1]
    sorted_values, order = torch.sort(rows, dim=1)
    positions = torch.arange(n, device=rows.device).expand_as(order)
    starts_group = torch.ones_like(order, dtype=torch.bool)
    starts_group[:, 1:] = sorted_values[:, 1:] != sorted_values[:, :-1]
    ends_group = torch.ones_like(starts_group)
    ends_group[:, :-1] = starts_group[:, 1:]
    group_start = torch.where(starts_group, positions, 0).cummax(dim=1).values
    group_end = torch.where(ends_group, positions, n).flip(1).cummin(dim=1).values.flip(1)
    centered = (group_start + group_end + 1 - n).to(torch.float64)
    return torch.empty_like(centered).scatter_(1, order, centered)


def _torch_correlation_of_centered(x_rows: Any, y_rows: Any) -> Any:
    import torch

    products = (x_rows * y_rows).sum(dim=1)
    denominators = torch.sqrt((x_rows * x_rows).sum(dim=1) * (y_rows * y_rows).sum(dim=1))
    return (products / denominators).clamp(-1.0, 1.0)


def _torch_finish(x_rows: Any, y_rows: Any, result: Any, single: bool) -> float | np.ndarray:
    """NaN for constant columns (with scipy's warning), back to numpy."""
    x_constant = (x_rows == x_rows[:, :1]).all(dim=1)
    y_constant = (y_rows == y_rows[:, :1]).all(dim=1)
    constant = (x_constant | y_constant).cpu().numpy()
    values = result.cpu().numpy().astype(np.float64)
    values[constant] = np.nan
    _warn_if_constant(values)
    return _shaped(values, single)


def _spearman_torch(x: Any, y: Any) -> float | np.ndarray:
    x_rows, y_rows, single = _torch_rows(x, y, allow_infinite=True)
    if x_rows.shape[1] == 1:
        return _shaped(np.full(y_rows.shape[0], np.nan), single)
    x_ranks = _torch_centered_doubled_ranks(x_rows)
    y_ranks = _torch_centered_doubled_ranks(y_rows)
    result = _torch_correlation_of_centered(x_ranks.expand_as(y_ranks), y_ranks)
    return _torch_finish(x_rows, y_rows, result, single)


def _pearson_torch(x: Any, y: Any) -> float | np.ndarray:
    x_rows, y_rows, single = _torch_rows(x, y, allow_infinite=False)
    if x_rows.shape[1] < 2:
        raise ValueError(_TOO_SHORT_MESSAGE)

    def centred_scaled(rows: Any) -> Any:
        centred = rows - rows.mean(dim=1, keepdim=True)
        largest = centred.abs().amax(dim=1, keepdim=True)
        return centred / largest.clamp_min(np.finfo(np.float64).tiny)

    result = _torch_correlation_of_centered(
        centred_scaled(x_rows).expand(y_rows.shape[0], -1), centred_scaled(y_rows)
    )
    return _torch_finish(x_rows, y_rows, result, single)
