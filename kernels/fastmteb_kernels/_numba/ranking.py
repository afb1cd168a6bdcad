"""Numba kernels behind ``fastmteb.kernels.ranking_metrics`` on the CPU.

A query row is a run of documents (``run_doc``) with scores, plus the query's *positive*
judgments (grade > 0) sorted by document index. The kernel never sorts a row: only the ranks of
the retrieved positives matter, and the rank of a positive ``f`` is

    1 + #{entries e : score_e > score_f} + #{entries e : score_e == score_f and tie_e > tie_f}

(trec_eval's order: score descending, then document id descending; ``tie = doc_rank[doc]``).

- Pass 1 (``_find_positives``) validates the row (padding, range, NaN, duplicates through an
  open-addressing set) and finds the retrieved positives (a bit filter over the positives' hashes,
  then a binary search).
- Pass 2 (``_count_above``) counts, for each distinct positive score, the entries above and equal
  to it: one branch-free sweep per score when there are few, else one sweep with a binary search
  into the sorted scores. Tie keys are read only for groups where an equal score occurs
  (``_break_ties``), so ``doc_rank`` is touched only on actual ties.

Cost per row: O(L) for a few positives (O(L log m) for many), for L retrieved documents.
Metrics per cut-off k follow trec_eval 9 / pytrec_eval operation by operation
(``_metrics_from_ranks``): DCG accumulates ``grade / log2(rank + 1)`` over retrieved positives in
rank order, the ideal DCG ``grade / log2(i + 2)`` over the positive grades sorted descending, AP
``hits_so_far / rank``; see ``fastmteb.kernels.ranking`` for the formulas.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from fastmteb.kernels._numba.common import lower_bound, neumaier_add

# Per-row status written by the kernel; the public wrapper turns them into errors.
STATUS_OK = 0
STATUS_NAN_SCORE = 1
STATUS_DOC_OUT_OF_RANGE = 2
STATUS_PADDING_NOT_AT_END = 3
STATUS_DUPLICATE_DOC = 4
STATUS_TIE_RANK_NOT_UNIQUE = 5
STATUS_NEEDS_TIE_RANK = 6  # a tie had to be broken and doc_rank of a tied entry is < 0

# Metric axis of the output array [n_rows, N_METRICS, n_k].
NDCG, MAP, RECALL, PRECISION, MRR, HIT_RATE = 0, 1, 2, 3, 4, 5
N_METRICS = 6

_PADDING = -1
_HASH_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)
_SWEEP_GROUPS = 16  # up to this many distinct positive scores, count by full sweeps


@njit(cache=True, inline="always")
def _search_sorted(values: np.ndarray, lo: int, hi: int, target: np.int64) -> int:
    """Index of ``target`` in the ascending ``values[lo:hi]``, or -1."""
    at = lower_bound(values, lo, hi, target)
    if at < hi and values[at] == target:
        return at
    return -1


@njit(cache=True, inline="always")
def _log2_table_size(n: int, minimum: int) -> int:
    bits = minimum
    while (1 << bits) < n:
        bits += 1
    return bits


@njit(cache=True)
def _find_positives(
    start: int,
    cap: int,
    run_doc: np.ndarray,
    doc_is_position: bool,
    check_duplicates: bool,
    scores: np.ndarray,
    n_docs: int,
    pos_doc: np.ndarray,
    pos_grade: np.ndarray,
    pos_lo: int,
    pos_hi: int,
    found_entry: np.ndarray,
    found_grade: np.ndarray,
) -> tuple[int, int, int]:
    """Pass 1 over a row: validate it, measure it, find its retrieved positives.

    Returns (status, row length, number of positives found). A Bloom-style bit filter over the
    positives' hashes rejects almost every entry before the binary search; duplicates are caught
    by an open-addressing set of the row's documents.
    """
    n_pos = pos_hi - pos_lo
    filter_bits = _log2_table_size(8 * n_pos, 8)
    pos_filter = np.zeros((1 << filter_bits) >> 6, dtype=np.uint64)
    filter_shift = np.uint64(64 - filter_bits)
    for p in range(pos_lo, pos_hi):
        h = (np.uint64(pos_doc[p]) * _HASH_MULTIPLIER) >> filter_shift
        pos_filter[h >> np.uint64(6)] |= np.uint64(1) << (h & np.uint64(63))
    if check_duplicates:
        table_bits = _log2_table_size(4 * cap, 4)
        seen = np.zeros(1 << table_bits, dtype=np.uint32)  # holds (doc + 1) mod 2**32; 0 = empty
    else:
        table_bits = 4
        seen = np.empty(0, dtype=np.uint32)
    seen_shift = np.uint64(64 - table_bits)
    seen_mask = np.int64((1 << table_bits) - 1)

    length = 0
    n_found = 0
    for entry in range(start, start + cap):
        doc = np.int64(entry) if doc_is_position else run_doc[entry]
        if doc == _PADDING:
            break
        if doc < 0 or doc >= n_docs:
            return STATUS_DOC_OUT_OF_RANGE, 0, 0
        if scores[entry] != scores[entry]:
            return STATUS_NAN_SCORE, 0, 0
        hashed = np.uint64(doc) * _HASH_MULTIPLIER
        if check_duplicates:
            slot = np.int64(hashed >> seen_shift)
            tag = np.uint32(doc + 1)
            while True:
                held = seen[slot]
                if held == 0:
                    seen[slot] = tag
                    break
                if held == tag:  # tags are exact: n_docs < 2**32 - 1 (checked by the caller)
                    return STATUS_DUPLICATE_DOC, 0, 0
                slot = (slot + np.int64(1)) & seen_mask
        length += 1
        h = hashed >> filter_shift
        if (pos_filter[h >> np.uint64(6)] >> (h & np.uint64(63))) & np.uint64(1):
            hit = _search_sorted(pos_doc, pos_lo, pos_hi, doc)
            if hit >= 0:
                found_entry[n_found] = entry
                found_grade[n_found] = pos_grade[hit]
                n_found += 1
    if not doc_is_position:
        for entry in range(start + length, start + cap):
            if run_doc[entry] != _PADDING:
                return STATUS_PADDING_NOT_AT_END, 0, 0
    return STATUS_OK, length, n_found


@njit(cache=True)
def _count_above(
    row_scores: np.ndarray,
    distinct: np.ndarray,
    n_groups: int,
    greater: np.ndarray,
    equal: np.ndarray,
) -> None:
    """greater[t] = #{x > distinct[t]}, equal[t] = #{x == distinct[t]} over the row
    (``distinct`` strictly descending). Few groups: one branch-free (SIMD) sweep per group;
    many: one sweep with a binary search per entry into the groups and a prefix sum."""
    if n_groups <= _SWEEP_GROUPS:
        for t in range(n_groups):
            value = distinct[t]
            above = 0
            same = 0
            for x in row_scores:
                above += x > value
                same += x == value
            greater[t] = above
            equal[t] = same
        return
    bucket = np.zeros(n_groups + 1, dtype=np.int64)
    equal[:n_groups] = 0
    for x in row_scores:
        lo = 0
        hi = n_groups
        while lo < hi:
            mid = (lo + hi) >> 1
            if distinct[mid] > x:
                lo = mid + 1
            else:
                hi = mid
        if lo < n_groups and distinct[lo] == x:
            equal[lo] += 1
            bucket[lo + 1] += 1
        else:
            bucket[lo] += 1
    beaten_by = 0
    for t in range(n_groups):
        beaten_by += bucket[t]
        greater[t] = beaten_by


@njit(cache=True)
def _score_row(
    out_row: np.ndarray,
    start: int,
    cap: int,
    run_doc: np.ndarray,
    doc_is_position: bool,
    check_duplicates: bool,
    scores: np.ndarray,
    doc_rank: np.ndarray,
    pos_doc: np.ndarray,
    pos_grade: np.ndarray,
    pos_lo: int,
    pos_hi: int,
    k_values: np.ndarray,
) -> int:
    """All metrics of one query row into ``out_row[N_METRICS, n_k]``; returns a status code."""
    max_found = min(cap, pos_hi - pos_lo)
    found_entry = np.empty(max_found, dtype=np.int64)
    found_grade = np.empty(max_found, dtype=np.int64)
    status, length, n_found = _find_positives(
        start, cap, run_doc, doc_is_position, check_duplicates, scores, doc_rank.shape[0],
        pos_doc, pos_grade, pos_lo, pos_hi, found_entry, found_grade,
    )  # fmt: skip
    if status != STATUS_OK:
        return status

    # Pass 2: rank of every retrieved positive.
    ranks = np.empty(n_found, dtype=np.int64)
    if n_found > 0:
        found_scores = np.empty(n_found, dtype=scores.dtype)
        for t in range(n_found):
            found_scores[t] = scores[found_entry[t]]
        by_score = np.argsort(found_scores)[::-1]  # positives grouped by equal score, best first
        distinct = np.empty(n_found, dtype=scores.dtype)  # distinct positive scores, descending
        group_lo = np.empty(n_found + 1, dtype=np.int64)
        n_groups = 0
        for t in range(n_found):
            value = found_scores[by_score[t]]
            if n_groups == 0 or value != distinct[n_groups - 1]:
                distinct[n_groups] = value
                group_lo[n_groups] = t
                n_groups += 1
        group_lo[n_groups] = n_found
        greater = np.empty(n_groups, dtype=np.int64)
        equal = np.empty(n_groups, dtype=np.int64)
        _count_above(scores[start : start + length], distinct, n_groups, greater, equal)

        ahead_by_tie = np.zeros(n_found, dtype=np.int64)  # indexed like by_score
        for group in range(n_groups):
            if equal[group] > 1:
                status = _break_ties(
                    group_lo[group], group_lo[group + 1], distinct[group], by_score, found_entry,
                    start, length, run_doc, doc_is_position, scores, doc_rank, ahead_by_tie,
                )  # fmt: skip
                if status != STATUS_OK:
                    return status
            for t in range(group_lo[group], group_lo[group + 1]):
                ranks[by_score[t]] = greater[group] + ahead_by_tie[t] + 1

    _metrics_from_ranks(out_row, ranks, found_grade[:n_found], pos_grade[pos_lo:pos_hi], k_values)
    return STATUS_OK


@njit(cache=True)
def _break_ties(
    group_start: int,
    group_end: int,
    value,
    by_score: np.ndarray,
    found_entry: np.ndarray,
    start: int,
    length: int,
    run_doc: np.ndarray,
    doc_is_position: bool,
    scores: np.ndarray,
    doc_rank: np.ndarray,
    ahead_by_tie: np.ndarray,
) -> int:
    """Among the entries scoring exactly ``value``, count for each positive of the group
    (``by_score[group_start:group_end]``) how many have a higher ``doc_rank`` (trec_eval: the
    larger id ranks first). O(L log group) via a difference array over the group's sorted ranks."""
    size = group_end - group_start
    group_tie = np.empty(size, dtype=np.int64)
    for t in range(size):
        entry = found_entry[by_score[group_start + t]]
        doc = np.int64(entry) if doc_is_position else run_doc[entry]
        group_tie[t] = doc_rank[doc]
        if group_tie[t] < 0:
            return STATUS_NEEDS_TIE_RANK
    tie_order = np.argsort(group_tie)
    sorted_tie = group_tie[tie_order]
    behind = np.zeros(size + 1, dtype=np.int64)  # behind[i]: entries beating sorted positives < i
    for entry in range(start, start + length):
        if scores[entry] != value:
            continue
        doc = np.int64(entry) if doc_is_position else run_doc[entry]
        tie = doc_rank[doc]
        if tie < 0:
            return STATUS_NEEDS_TIE_RANK
        lo = lower_bound(sorted_tie, 0, size, tie)
        if lo < size and sorted_tie[lo] == tie:
            if found_entry[by_score[group_start + tie_order[lo]]] != entry:
                return STATUS_TIE_RANK_NOT_UNIQUE
        behind[0] += 1
        behind[lo] -= 1
    running = 0
    for i in range(size):
        running += behind[i]
        ahead_by_tie[group_start + tie_order[i]] = running
    return STATUS_OK


@njit(cache=True)
def _metrics_from_ranks(
    out_row: np.ndarray,
    ranks: np.ndarray,
    grades: np.ndarray,
    all_positive_grades: np.ndarray,
    k_values: np.ndarray,
) -> None:
    """trec_eval's ndcg_cut, map_cut, recall, P, success and mteb's MRR for every k."""
    n_found = ranks.shape[0]
    n_relevant = all_positive_grades.shape[0]
    order = np.argsort(ranks)
    max_k = 0
    for k in k_values:
        max_k = max(max_k, k)

    # Running sums in rank order (prefix t = over the t best-ranked retrieved positives).
    sorted_ranks = np.empty(n_found, dtype=np.int64)
    dcg_prefix = np.zeros(n_found + 1)
    ap_prefix = np.zeros(n_found + 1)
    dcg = 0.0
    precision_sum = 0.0
    for t in range(n_found):
        rank = ranks[order[t]]
        sorted_ranks[t] = rank
        dcg += np.float64(grades[order[t]]) / math.log2(np.float64(rank + 1))
        precision_sum += np.float64(t + 1) / np.float64(rank)
        dcg_prefix[t + 1] = dcg
        ap_prefix[t + 1] = precision_sum

    n_ideal = min(max_k, n_relevant)
    ideal_grades = np.sort(all_positive_grades)[::-1]
    ideal_prefix = np.zeros(n_ideal + 1)
    ideal = 0.0
    for i in range(n_ideal):
        ideal += np.float64(ideal_grades[i]) / math.log2(np.float64(i + 2))
        ideal_prefix[i + 1] = ideal

    first_rank = sorted_ranks[0] if n_found > 0 else 0
    for ki in range(k_values.shape[0]):
        k = k_values[ki]
        hits = 0
        while hits < n_found and sorted_ranks[hits] <= k:
            hits += 1
        ideal_at_k = ideal_prefix[min(k, n_relevant)]
        ndcg = dcg_prefix[hits]
        if ideal_at_k > 0.0:
            ndcg = ndcg / ideal_at_k
        out_row[NDCG, ki] = ndcg
        if n_relevant > 0:
            out_row[MAP, ki] = ap_prefix[hits] / np.float64(n_relevant)
            out_row[RECALL, ki] = np.float64(hits) / np.float64(n_relevant)
        else:
            out_row[MAP, ki] = 0.0
            out_row[RECALL, ki] = 0.0
        out_row[PRECISION, ki] = np.float64(hits) / np.float64(k)
        out_row[HIT_RATE, ki] = 1.0 if hits > 0 else 0.0
        out_row[MRR, ki] = 1.0 / np.float64(first_rank) if hits > 0 else 0.0


@njit(cache=True, parallel=True)
def score_rows(
    rows: np.ndarray,
    row_start: np.ndarray,
    row_cap: np.ndarray,
    run_doc: np.ndarray,
    doc_is_position: bool,
    check_duplicates: bool,
    scores: np.ndarray,
    doc_rank: np.ndarray,
    pos_indptr: np.ndarray,
    pos_doc: np.ndarray,
    pos_grade: np.ndarray,
    k_values: np.ndarray,
    out: np.ndarray,
    status: np.ndarray,
) -> None:
    """Score the query rows listed in ``rows`` (parallel over rows).

    Row ``r`` is ``run_doc[row_start[r] : row_start[r] + row_cap[r]]`` (``-1`` pads the end) with
    ``scores`` at the same flat positions; with ``doc_is_position`` the document of flat entry
    ``e`` is ``e`` itself and ``run_doc`` is not read. Its positives are
    ``pos_doc/pos_grade[pos_indptr[r] : pos_indptr[r + 1]]`` (ascending documents). Writes
    ``out[r, metric, k_index]`` and ``status[r]``.
    """
    for i in prange(rows.shape[0]):
        row = rows[i]
        status[row] = _score_row(
            out[row],
            row_start[row],
            row_cap[row],
            run_doc,
            doc_is_position,
            check_duplicates,
            scores,
            doc_rank,
            pos_doc,
            pos_grade,
            pos_indptr[row],
            pos_indptr[row + 1],
            k_values,
        )


@njit(cache=True, parallel=True)
def locate_by_score(
    scores: np.ndarray,
    row_start: np.ndarray,
    row_len: np.ndarray,
    query_row: np.ndarray,
    target_score: np.ndarray,
) -> np.ndarray:
    """Flat position of the entry of row ``query_row[i]`` whose score is exactly
    ``target_score[i]``: -1 if the target is NaN (not retrieved), -2 if several entries match."""
    n = query_row.shape[0]
    position = np.full(n, -1, dtype=np.int64)
    for i in prange(n):
        target = target_score[i]
        if target != target:
            continue
        row = query_row[i]
        for entry in range(row_start[row], row_start[row] + row_len[row]):
            if scores[entry] == target:
                if position[i] >= 0:
                    position[i] = -2
                    break
                position[i] = entry
    return position


@njit(cache=True)
def python_sum_mean(values: np.ndarray, compensated: bool) -> float:
    """``sum(values) / len(values)`` exactly as CPython computes it on a list of floats:
    a plain left-to-right sum before 3.12, Neumaier's compensated sum from 3.12 on."""
    total = 0.0
    compensation = 0.0
    for x in values:
        if compensated:
            total, compensation = neumaier_add(total, compensation, x)
        else:
            total += x
    if compensated and compensation != 0.0 and math.isfinite(compensation):
        total += compensation
    return total / values.shape[0]
