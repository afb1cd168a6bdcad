"""Threshold sweep for pair classification: best accuracy, best F1 and average precision.

Equal to mteb 2.26's ``AbsTaskPairClassification._compute_metrics_values`` (its
``_find_best_acc_and_threshold``, ``_find_best_f1_and_threshold`` and sklearn's
``average_precision_score`` on the scores, negated for distances), in one O(n) walk after one
radix sort. CPU inputs go to ``_numba/stats.py``; CUDA tensors are swept on their device with
torch operations (sort, cumulative sums, first-occurrence argmax), no Triton kernel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from fastmteb.kernels._numba.stats import pair_sweep_rows
from fastmteb.kernels.backend import on_device_path

__all__ = ["PairSweep", "pair_sweep"]


@dataclass(frozen=True)
class PairSweep:
    """The metrics of one score vector (thresholds in the units of the scores given).

    ``accuracy_threshold`` is -1.0 and ``f1_threshold`` 0.0 when no cut improves on 0, as mteb.
    """

    accuracy: float
    accuracy_threshold: float
    f1: float
    f1_threshold: float
    precision: float
    recall: float
    ap: float


def pair_sweep(
    scores: Any, labels: Any, *, higher_is_better: bool = True
) -> PairSweep | list[PairSweep]:
    """Best accuracy / F1 over thresholds and average precision, exactly as mteb computes them.

    Sort the pairs from most to least similar (scores descending, or ascending when
    ``higher_is_better=False``, e.g. distances). For each position i = 0 .. n-2 whose score
    differs from the next one (a threshold never splits tied scores; the cut after the last
    pair is never evaluated), with ``P_i`` positives among the first i+1 pairs, ``P`` positives
    and ``N`` negatives in all:

    - ``accuracy_i = (P_i + (N - (i + 1 - P_i))) / n``
    - ``precision_i = P_i / (i + 1)``, ``recall_i = P_i / P``,
      ``F1_i = 2 precision_i recall_i / (precision_i + recall_i)`` (only where ``P_i > 0``)

    and keep the first strict maximum of each, starting from 0; the threshold reported is the
    midpoint of the scores on both sides of the cut. Average precision (sklearn's step-wise
    ``average_precision_score`` on ``scores``, or on ``-scores`` for distances) is
    ``AP = sum_k (R_k - R_{k-1}) * Prec_k`` over the groups k of tied scores in the same order
    (0 when there is no positive pair, where sklearn warns).

    Args:
        scores: float [n], or [n_funcs, n] for several scoring functions over the same pairs.
        labels: 0/1 (or bool) [n].
        higher_is_better: False for distances (lower = more similar).

    Returns:
        A ``PairSweep``, or a list of them (one per row) for 2-D ``scores``.

    Raises:
        ValueError: empty input, NaN/inf scores, labels other than 0/1, length mismatch.
    """
    if on_device_path(scores):
        return _pair_sweep_torch(scores, labels, higher_is_better=higher_is_better)
    rows, label_array, single = _checked_inputs(scores, labels)
    metrics = pair_sweep_rows(rows, label_array, bool(higher_is_better))
    sweeps = [PairSweep(*map(float, row)) for row in metrics]
    return sweeps[0] if single else sweeps


def _checked_inputs(scores: Any, labels: Any) -> tuple[np.ndarray, np.ndarray, bool]:
    """Scores as contiguous float64 rows [n_funcs, n], labels as int64 [n] of 0/1."""
    if hasattr(scores, "detach"):
        scores = scores.detach().cpu().numpy()
    if hasattr(labels, "detach"):
        labels = labels.detach().cpu().numpy()
    score_array = np.asarray(scores)
    if score_array.dtype.kind not in "biuf":
        raise ValueError(f"scores must be real numbers, got dtype {score_array.dtype}.")
    if score_array.ndim not in (1, 2):
        raise ValueError(f"scores must be [n] or [n_funcs, n], got shape {score_array.shape}.")
    single = score_array.ndim == 1
    rows = np.ascontiguousarray(np.atleast_2d(score_array), dtype=np.float64)
    if rows.shape[1] == 0:
        raise ValueError("scores is empty: pair classification needs at least one pair.")
    if not np.isfinite(rows).all():
        raise ValueError("scores contain NaN or inf; every pair needs a finite score.")
    label_array = np.asarray(labels)
    if label_array.ndim != 1 or label_array.shape[0] != rows.shape[1]:
        raise ValueError(
            f"labels must be 1-D with one entry per pair ({rows.shape[1]}), "
            f"got shape {label_array.shape}."
        )
    if label_array.dtype.kind not in "biuf" or not np.isin(label_array, (0, 1)).all():
        raise ValueError("labels must be 0 (dissimilar) or 1 (similar); other values found.")
    return rows, label_array.astype(np.int64), single


def _pair_sweep_torch(
    scores: Any, labels: Any, *, higher_is_better: bool
) -> PairSweep | list[PairSweep]:
    """The sweep with torch operations on the scores' device (float64 throughout)."""
    import torch

    device = scores.device
    rows = torch.atleast_2d(torch.as_tensor(scores, device=device)).to(torch.float64)
    single = torch.as_tensor(scores).ndim == 1
    label_rows = torch.as_tensor(labels, device=device)
    if rows.ndim != 2 or rows.shape[1] == 0 or label_rows.shape != (rows.shape[1],):
        raise ValueError(
            f"scores must be [n] or [n_funcs, n] with n >= 1 and labels [n]; "
            f"got {tuple(rows.shape)} and {tuple(label_rows.shape)}."
        )
    if not torch.isfinite(rows).all():
        raise ValueError("scores contain NaN or inf; every pair needs a finite score.")
    if not torch.isin(label_rows, torch.tensor([0, 1], device=device)).all():
        raise ValueError("labels must be 0 (dissimilar) or 1 (similar); other values found.")
    n = rows.shape[1]
    sorted_scores, order = torch.sort(rows, dim=1, descending=higher_is_better, stable=True)
    sorted_labels = label_rows.to(torch.int64)[order]
    positives_so_far = sorted_labels.cumsum(dim=1)
    seen = torch.arange(1, n + 1, device=device, dtype=torch.int64).expand_as(positives_so_far)
    total_positives = positives_so_far[:, -1:]
    total_negatives = n - total_positives
    # a cut after position i is allowed where the next score differs (never after the last)
    cut = torch.zeros_like(sorted_labels, dtype=torch.bool)
    cut[:, :-1] = sorted_scores[:, 1:] != sorted_scores[:, :-1]
    group_end = cut.clone()
    group_end[:, -1] = True
    midpoints = torch.zeros_like(sorted_scores)
    midpoints[:, :-1] = (sorted_scores[:, :-1] + sorted_scores[:, 1:]) / 2

    accuracy = (positives_so_far + (total_negatives - (seen - positives_so_far))).double() / n
    accuracy = torch.where(cut, accuracy, 0.0)
    precision = positives_so_far.double() / seen
    recall = positives_so_far.double() / total_positives.clamp_min(1)
    f1 = 2 * precision * recall / (precision + recall)
    f1 = torch.where(cut & (positives_so_far > 0), f1, 0.0)

    end_recall = torch.where(group_end, recall, 0.0).cummax(dim=1).values
    previous_recall = torch.zeros_like(end_recall)
    previous_recall[:, 1:] = end_recall[:, :-1]
    ap_terms = torch.where(group_end, (recall - previous_recall) * precision, 0.0)
    ap = torch.where(total_positives[:, 0] > 0, ap_terms.sum(dim=1), 0.0).clamp_min(0.0)

    best_accuracy_at = accuracy.argmax(dim=1, keepdim=True)
    best_f1_at = f1.argmax(dim=1, keepdim=True)
    best_accuracy = accuracy.gather(1, best_accuracy_at)[:, 0]
    best_f1 = f1.gather(1, best_f1_at)[:, 0]
    improved_accuracy = best_accuracy > 0
    improved_f1 = best_f1 > 0
    table = torch.stack(
        [
            best_accuracy,
            torch.where(improved_accuracy, midpoints.gather(1, best_accuracy_at)[:, 0], -1.0),
            best_f1,
            torch.where(improved_f1, midpoints.gather(1, best_f1_at)[:, 0], 0.0),
            torch.where(improved_f1, precision.gather(1, best_f1_at)[:, 0], 0.0),
            torch.where(improved_f1, recall.gather(1, best_f1_at)[:, 0], 0.0),
            ap,
        ],
        dim=1,
    ).cpu().numpy()
    sweeps = [PairSweep(*map(float, row)) for row in table]
    return sweeps[0] if single else sweeps
