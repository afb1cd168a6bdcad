"""Numba kernels behind ``fastmteb.kernels.spearman``, ``pearson`` and ``pair_sweep`` on the CPU.

Spearman and the pair sweep need the sorted order of a score vector and its runs of tied values.
Floats are mapped to unsigned integers that order like them (``order_keys``: IEEE-754 bits with
the sign handled; ``-0.0`` folded onto ``+0.0``; uint32 when the data are float32-exact, as scores
from float32 embeddings are). ``_sorted_words`` radix sorts those keys with each element's index
packed into the low bits of the same 64-bit word, so one 8-byte array moves per pass and no
comparison sort is involved; the sort also marks where each group of tied values starts.

The kernels run one row at a time and release the GIL; the drivers at the bottom
(``spearman_rows``, ``pearson_rows``, ``pair_sweep_rows``) share rows among threads when the
work is large. Numba's own ``parallel=True`` is not used: on a busy machine its thread pool
turned sub-millisecond calls into tens of milliseconds.

Inputs reaching these kernels are C-contiguous, without NaN (the public wrappers check).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import numpy as np
from numba import njit

from fastmteb.kernels._numba.common import float32_exact, neumaier_add

# Digits of at most 10 bits: with 2048 buckets (11 bits) a scatter pass over 1M words measured
# about twice as slow (bucket heads and write streams leave L1 and the TLB), more than the pass
# saved; a 44-bit sort takes 5 passes of 9 bits, a 32-bit one 4 passes of 8.
_MAX_DIGIT_BITS = 10
_THREADED_MIN_ELEMENTS = 400_000  # below this, handing rows to threads costs more than it saves

_SIGN_64 = np.uint64(1) << np.uint64(63)
_ALL_64 = np.uint64(0xFFFFFFFFFFFFFFFF)
_SIGN_32 = np.uint32(1) << np.uint32(31)
_ALL_32 = np.uint32(0xFFFFFFFF)


@njit(cache=True, nogil=True)
def _order_keys(bits: np.ndarray, sign: np.unsignedinteger, ones: np.unsignedinteger,
                out: np.ndarray) -> None:
    """Unsigned keys that sort like the IEEE-754 floats whose ``bits`` are given (uint32 or
    uint64 words), with ``-0.0`` folded onto ``+0.0``."""
    for i in range(bits.shape[0]):
        key = bits[i]
        if key == sign:
            key = ones ^ ones
        out[i] = key ^ ones if key & sign else key | sign


def order_keys(values: np.ndarray) -> np.ndarray:
    """Sort keys for a float array (any shape): uint32 when every value is float32-exact
    (four 8-bit radix passes on 1M elements), else uint64 (five 9-bit passes)."""
    flat = np.ascontiguousarray(values).reshape(-1)
    if flat.dtype == np.float32 or float32_exact(flat):
        keys = np.empty(flat.shape, dtype=np.uint32)
        _order_keys(flat.astype(np.float32, copy=False).view(np.uint32), _SIGN_32, _ALL_32, keys)
    else:
        keys = np.empty(flat.shape, dtype=np.uint64)
        _order_keys(flat.astype(np.float64, copy=False).view(np.uint64), _SIGN_64, _ALL_64, keys)
    return keys.reshape(values.shape)


@njit(cache=True, inline="always")
def _digit(word: np.uint64, shift: int, mask: np.uint64) -> np.int64:
    return np.int64((word >> np.uint64(shift)) & mask)


@njit(cache=True, nogil=True)
def _radix_sort_words(
    words: np.ndarray, low_bits: int, digit_bits: int, histograms: np.ndarray
) -> np.ndarray:
    """Stable LSD radix sort of uint64 words on their bits ``low_bits .. 63``, in digits of
    ``digit_bits`` (``64 - low_bits`` must be a multiple).

    ``histograms[d, b]`` counts the words whose digit d is b (filled by the caller while it
    builds the words, which saves a pass). A digit on which every word agrees is skipped (no
    pass). Returns the sorted array, which is either ``words`` (overwritten) or a new buffer.
    """
    n = words.shape[0]
    radix = 1 << digit_bits
    mask = np.uint64(radix - 1)
    buffer = np.empty_like(words)
    offsets = np.empty(radix, dtype=np.int64)
    for digit in range(histograms.shape[0]):
        shift = low_bits + digit * digit_bits
        if histograms[digit, _digit(words[0], shift, mask)] == n:
            continue  # every word has the same digit here: the pass would move nothing
        running = 0
        for bucket in range(radix):
            offsets[bucket] = running
            running += histograms[digit, bucket]
        for i in range(n):
            word = words[i]
            bucket = _digit(word, shift, mask)
            buffer[offsets[bucket]] = word
            offsets[bucket] += 1
        words, buffer = buffer, words
    return words


@njit(cache=True, inline="always")
def _full_key(
    words: np.ndarray, keys: np.ndarray, index_mask: np.uint64, position: int
) -> np.uint64:
    return np.uint64(keys[np.int64(words[position] & index_mask)])


@njit(cache=True, nogil=True)
def _refine_run(words: np.ndarray, keys: np.ndarray, index_mask: np.uint64,
                starts_group: np.ndarray, start: int, end: int) -> None:
    """Order ``words[start:end]`` (equal in their kept key bits) by the full 64-bit keys and
    mark where the full keys change."""
    first = _full_key(words, keys, index_mask, start)
    all_equal = True
    for i in range(start + 1, end):
        if _full_key(words, keys, index_mask, i) != first:
            all_equal = False
            break
    if all_equal:
        return  # a genuine tie: one group, nothing to reorder
    if end - start <= 16:
        for i in range(start + 1, end):
            word = words[i]
            key = _full_key(words, keys, index_mask, i)
            j = i - 1
            while j >= start and _full_key(words, keys, index_mask, j) > key:
                words[j + 1] = words[j]
                j -= 1
            words[j + 1] = word
    else:
        run_keys = np.empty(end - start, dtype=np.uint64)
        for i in range(start, end):
            run_keys[i - start] = _full_key(words, keys, index_mask, i)
        words[start:end] = words[start:end][np.argsort(run_keys)]
    for i in range(start + 1, end):
        starts_group[i] = (
            _full_key(words, keys, index_mask, i) != _full_key(words, keys, index_mask, i - 1)
        )


@njit(cache=True, nogil=True)
def _sorted_words(keys: np.ndarray) -> tuple[np.ndarray, np.uint64, np.ndarray]:
    """Sort ``keys`` (uint32 or uint64): sorted words, index mask, and group starts.

    Word i holds the i-th smallest key, left-aligned, with its lowest bits replaced by the
    element's index (``word & index_mask``; as few bits as n needs, so at most 32). A 32-bit key
    fits whole beside the index; a 64-bit key loses its lowest bits, so runs of words that agree on
    the kept bits are then reordered on the full keys. ``starts_group[i]`` is True when the
    i-th smallest key differs from the one before it (ties form the groups). Equal keys keep an
    arbitrary order, which no caller depends on.
    """
    n = keys.shape[0]
    if n > (1 << 32):
        raise ValueError("fastmteb sorts at most 2**32 values per vector")
    index_bits = 1
    while (1 << index_bits) < n:
        index_bits += 1
    index_mask = np.uint64((1 << index_bits) - 1)
    key_mask = ~index_mask
    wide = keys.itemsize == 8
    align = np.uint64(0 if wide else 32)
    # Bits to sort: the kept key bits (a 32-bit key leaves bits index_bits..31 zero). They are
    # split into the fewest digits of at most _MAX_DIGIT_BITS, as even as possible; a digit may
    # reach down into the index bits, which only orders equal keys by index.
    sort_bits = 64 - index_bits if wide else 32
    n_digits = (sort_bits + _MAX_DIGIT_BITS - 1) // _MAX_DIGIT_BITS
    digit_bits = (sort_bits + n_digits - 1) // n_digits
    low_bits = 64 - n_digits * digit_bits
    mask = np.uint64((1 << digit_bits) - 1)
    histograms = np.zeros((n_digits, 1 << digit_bits), dtype=np.int64)
    words = np.empty(n, dtype=np.uint64)
    for i in range(n):
        word = ((np.uint64(keys[i]) << align) & key_mask) | np.uint64(i)
        words[i] = word
        for digit in range(n_digits):
            histograms[digit, _digit(word, low_bits + digit * digit_bits, mask)] += 1
    starts_group = np.ones(n, dtype=np.bool_)
    if n == 0:
        return words, index_mask, starts_group
    words = _radix_sort_words(words, low_bits, digit_bits, histograms)
    run_start = 0
    for i in range(1, n + 1):
        if i < n:
            starts_group[i] = (words[i] | index_mask) != (words[i - 1] | index_mask)
        if i == n or starts_group[i]:
            if wide and i - run_start > 1:
                _refine_run(words, keys, index_mask, starts_group, run_start, i)
            run_start = i
    return words, index_mask, starts_group


@njit(cache=True, inline="always")
def _exact_chunk(n: int) -> int:
    """How many integer products of centred doubled ranks (each below ``(n - 1)**2``) an int64
    can sum without overflow."""
    largest = max(1, (n - 1) * (n - 1))
    return max(1, (1 << 62) // largest)


@njit(cache=True, inline="always")
def _add_integer(
    partial: np.int64, count: int, chunk: int, total: float, compensation: float, term: np.int64
) -> tuple[np.int64, int, float, float]:
    """Add ``term`` to an exact int64 partial sum, moved into a compensated float64 sum every
    ``chunk`` terms (so the int64 never overflows)."""
    partial += term
    count += 1
    if count == chunk:
        total, compensation = neumaier_add(total, compensation, float(partial))
        partial = np.int64(0)
        count = 0
    return partial, count, total, compensation


@njit(cache=True, nogil=True)
def _rank_rows(keys: np.ndarray, out: np.ndarray, varies: np.ndarray, squares: np.ndarray) -> None:
    """Per row: ``out = 2 * rank - (n + 1)`` (1-based ranks, ties share their mean rank).

    These are integers (``out`` is an int array), so products are exact and sums of them are
    kept in int64 chunks (``_add_integer``). ``squares[row] = sum(out[row] ** 2)`` and
    ``varies[row]`` is False when all values of the row are equal.
    """
    n = keys.shape[1]
    chunk = _exact_chunk(n)
    for row in range(keys.shape[0]):
        words, index_mask, starts_group = _sorted_words(keys[row])
        partial, count, total, compensation = np.int64(0), 0, 0.0, 0.0
        start = 0
        while start < n:
            end = start
            while end + 1 < n and not starts_group[end + 1]:
                end += 1
            # ranks start+1 .. end+1 share their mean (start + end + 2) / 2
            centred = np.int64(start + end + 1 - n)
            for position in range(start, end + 1):
                out[row, np.int64(words[position] & index_mask)] = centred
                partial, count, total, compensation = _add_integer(
                    partial, count, chunk, total, compensation, centred * centred
                )
            if start == 0:
                varies[row] = end < n - 1
            start = end + 1
        squares[row] = total + compensation + float(partial)


@njit(cache=True, nogil=True)
def _correlate_rank_rows(
    x: np.ndarray, y: np.ndarray, x_squares: np.ndarray, y_squares: np.ndarray,
    x_varies: np.ndarray, y_varies: np.ndarray,
) -> np.ndarray:
    """Per y row j: ``sum(x*y) / sqrt(sum(x*x) * sum(y*y))`` of integer centred ranks with x row
    j (or the only x row), clipped to [-1, 1]; NaN where a side is constant."""
    n_rows, n = y.shape
    n_x = x.shape[0]
    chunk = _exact_chunk(n)
    result = np.empty(n_rows, dtype=np.float64)
    for row in range(n_rows):
        x_row = row % n_x  # 0 when x is shared
        if not (x_varies[x_row] and y_varies[row]):
            result[row] = np.nan
            continue
        partial, count, total, compensation = np.int64(0), 0, 0.0, 0.0
        for i in range(n):
            partial, count, total, compensation = _add_integer(
                partial, count, chunk, total, compensation,
                np.int64(x[x_row, i]) * np.int64(y[row, i]),
            )
        products = total + compensation + float(partial)
        r = products / np.sqrt(x_squares[x_row] * y_squares[row])
        result[row] = min(1.0, max(-1.0, r))
    return result


@njit(cache=True, nogil=True)
def _centre_and_scale_rows(
    values: np.ndarray, out: np.ndarray, constant: np.ndarray, nearly_constant: np.ndarray
) -> None:
    """Per row: ``out = (values - mean) / max|values - mean|``, and scipy's constant flags.

    Scaling by the largest deviation keeps squares finite near the float64 limit, as scipy
    does; "nearly constant" is scipy's test ``norm(x - mean) < eps**0.75 * |mean|``.
    """
    n = values.shape[1]
    threshold = np.finfo(np.float64).eps ** 0.75
    for row in range(values.shape[0]):
        constant[row] = True
        nearly_constant[row] = False
        for i in range(1, n):
            if values[row, i] != values[row, 0]:
                constant[row] = False
                break
        if constant[row]:
            continue
        total = compensation = 0.0
        for i in range(n):
            total, compensation = neumaier_add(total, compensation, values[row, i])
        mean = (total + compensation) / n
        largest = 0.0
        for i in range(n):
            out[row, i] = values[row, i] - mean
            largest = max(largest, abs(out[row, i]))
        squares = compensation = 0.0
        for i in range(n):
            out[row, i] /= largest
            squares, compensation = neumaier_add(squares, compensation, out[row, i] ** 2)
        nearly_constant[row] = largest * np.sqrt(squares + compensation) < threshold * abs(mean)


@njit(cache=True, nogil=True)
def _correlate_centred_rows(
    x: np.ndarray, y: np.ndarray, x_defined: np.ndarray, y_defined: np.ndarray
) -> np.ndarray:
    """Per y row j: ``sum(x*y) / sqrt(sum(x*x) * sum(y*y))`` of centred rows, clipped to
    [-1, 1], with x row j (or the only x row); NaN where a side is not defined."""
    n_rows, n = y.shape
    n_x = x.shape[0]
    result = np.empty(n_rows, dtype=np.float64)
    for row in range(n_rows):
        x_row = row % n_x  # 0 when x is shared
        if not (x_defined[x_row] and y_defined[row]):
            result[row] = np.nan
            continue
        sxy = cxy = sxx = cxx = syy = cyy = 0.0
        for i in range(n):
            a = x[x_row, i]
            b = y[row, i]
            sxy, cxy = neumaier_add(sxy, cxy, a * b)
            sxx, cxx = neumaier_add(sxx, cxx, a * a)
            syy, cyy = neumaier_add(syy, cyy, b * b)
        r = (sxy + cxy) / np.sqrt((sxx + cxx) * (syy + cyy))
        result[row] = min(1.0, max(-1.0, r))
    return result


@njit(cache=True, nogil=True)
def _sweep_one(
    scores: np.ndarray, keys: np.ndarray, labels: np.ndarray, higher_is_better: bool
) -> np.ndarray:
    """mteb's threshold walks and sklearn's average precision over one score vector.

    Walks the pairs from most to least similar (descending scores, or ascending distances),
    counting positives so far and negatives left. A cut is considered after position i only
    when score[i] != score[i + 1] and i < n - 1 (mteb never splits a tie and never evaluates
    the cut after the last pair); accuracy and F1 keep their strict maximum starting from 0.
    Average precision is sklearn's step integral ``sum_k (R_k - R_{k-1}) P_k`` over the same
    groups of tied scores, which is exactly AP on the negated distances.

    Returns [accuracy, accuracy_threshold, f1, f1_threshold, precision, recall, ap].
    """
    n = scores.shape[0]
    words, index_mask, starts_group = _sorted_words(keys)
    total_positives = 0
    for i in range(n):
        total_positives += labels[i]
    remaining_negatives = n - total_positives

    best_accuracy = 0.0
    accuracy_threshold = -1.0
    best_f1 = best_precision = best_recall = 0.0
    f1_threshold = 0.0
    ap = ap_compensation = previous_recall = 0.0
    positives_so_far = 0
    for i in range(n):
        position = n - 1 - i if higher_is_better else i
        following = position - 1 if higher_is_better else position + 1
        element = np.int64(words[position] & index_mask)
        if labels[element] == 1:
            positives_so_far += 1
        else:
            remaining_negatives -= 1
        last = i == n - 1
        tied_with_following = (
            not starts_group[position] if higher_is_better else not starts_group[following]
        )
        if not last and tied_with_following:
            continue
        if total_positives > 0:
            recall_here = positives_so_far / total_positives
            term = (recall_here - previous_recall) * (positives_so_far / (i + 1))
            ap, ap_compensation = neumaier_add(ap, ap_compensation, term)
            previous_recall = recall_here
        if last:
            break
        midpoint = (scores[element] + scores[np.int64(words[following] & index_mask)]) / 2
        accuracy = (positives_so_far + remaining_negatives) / n
        if accuracy > best_accuracy:
            best_accuracy = accuracy
            accuracy_threshold = midpoint
        if positives_so_far > 0:
            precision = positives_so_far / (i + 1)
            recall = positives_so_far / total_positives
            f1 = 2 * precision * recall / (precision + recall)
            if f1 > best_f1:
                best_f1 = f1
                best_precision = precision
                best_recall = recall
                f1_threshold = midpoint
    out = np.empty(7, dtype=np.float64)
    out[0] = best_accuracy
    out[1] = accuracy_threshold
    out[2] = best_f1
    out[3] = f1_threshold
    out[4] = best_precision
    out[5] = best_recall
    out[6] = max(0.0, ap + ap_compensation)
    return out


@njit(cache=True, nogil=True)
def _sweep_rows(
    scores: np.ndarray, keys: np.ndarray, labels: np.ndarray, higher_is_better: bool,
    out: np.ndarray,
) -> None:
    """``_sweep_one`` for every row of ``scores`` into ``out`` [rows, 7]."""
    for row in range(scores.shape[0]):
        out[row] = _sweep_one(scores[row], keys[row], labels, higher_is_better)


# --- drivers: split rows over threads (the kernels release the GIL) when the work is large ---

_executor: ThreadPoolExecutor | None = None


def _for_row_blocks(n_rows: int, n_columns: int, work: Callable[[slice], None]) -> None:
    """Call ``work(rows)`` on blocks of rows, in threads when there is enough to share."""
    global _executor
    workers = min(os.cpu_count() or 1, n_rows)
    if workers < 2 or n_rows * n_columns < _THREADED_MIN_ELEMENTS:
        work(slice(0, n_rows))
        return
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=os.cpu_count(), thread_name_prefix="fastmteb")
    bounds = np.linspace(0, n_rows, workers + 1).astype(int)
    blocks = [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]
    for future in [_executor.submit(work, block) for block in blocks]:
        future.result()


def _ranked(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integer centred ranks of each row, the sums of their squares, and whether a row varies."""
    keys = order_keys(rows)
    ranks = np.empty(rows.shape, dtype=np.int32 if rows.shape[1] < 2**31 else np.int64)
    squares = np.empty(rows.shape[0], dtype=np.float64)
    varies = np.empty(rows.shape[0], dtype=np.bool_)
    _for_row_blocks(*rows.shape, lambda b: _rank_rows(keys[b], ranks[b], varies[b], squares[b]))
    return ranks, squares, varies


def spearman_rows(x_rows: np.ndarray, y_rows: np.ndarray) -> np.ndarray:
    """Spearman of each y row with the matching x row (or the single x row); NaN if constant.

    For one x row and one y row, the two rankings run side by side in threads.
    """
    if x_rows.shape[0] == 1 and y_rows.shape[0] == 1:
        both = [x_rows, y_rows]
        ranked: list = [None, None]

        def rank_one(rows: slice) -> None:
            for i in range(rows.start, rows.stop):
                ranked[i] = _ranked(both[i])

        _for_row_blocks(2, x_rows.shape[1], rank_one)
        (x_ranks, x_squares, x_varies), (y_ranks, y_squares, y_varies) = ranked
    else:
        x_ranks, x_squares, x_varies = _ranked(x_rows)
        y_ranks, y_squares, y_varies = _ranked(y_rows)
    return _correlate_rank_rows(x_ranks, y_ranks, x_squares, y_squares, x_varies, y_varies)


def _centred(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    centred = np.empty(rows.shape, dtype=np.float64)
    constant = np.empty(rows.shape[0], dtype=np.bool_)
    nearly_constant = np.empty(rows.shape[0], dtype=np.bool_)
    _for_row_blocks(
        *rows.shape,
        lambda b: _centre_and_scale_rows(rows[b], centred[b], constant[b], nearly_constant[b]),
    )
    return centred, constant, nearly_constant


def pearson_rows(x_rows: np.ndarray, y_rows: np.ndarray) -> tuple[np.ndarray, bool]:
    """Pearson of each y row with the matching x row (or the single x row), float64 rows.

    Returns the coefficients (NaN where a side is constant) and whether a defined coefficient
    had a nearly constant side (scipy warns then).
    """
    x_centred, x_constant, x_nearly = _centred(x_rows)
    y_centred, y_constant, y_nearly = _centred(y_rows)
    result = _correlate_centred_rows(x_centred, y_centred, ~x_constant, ~y_constant)
    x_index = np.arange(y_rows.shape[0]) % x_rows.shape[0]
    inaccurate = (x_nearly[x_index] | y_nearly) & ~np.isnan(result)
    return result, bool(inaccurate.any())


def pair_sweep_rows(scores: np.ndarray, labels: np.ndarray, higher_is_better: bool) -> np.ndarray:
    """[rows, 7] sweep results for float64 score rows and int64 0/1 labels."""
    keys = order_keys(scores)
    out = np.empty((scores.shape[0], 7), dtype=np.float64)
    _for_row_blocks(
        *scores.shape, lambda b: _sweep_rows(scores[b], keys[b], labels, higher_is_better, out[b])
    )
    return out
