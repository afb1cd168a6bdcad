"""Bitext mining: match each source sentence to a target sentence and score the matching.

``method="nn"`` is mteb 2.26's ``BitextMiningEvaluator``: row i of ``source`` is matched to
``argmax_j sim(source_i, target_j)``. ``method="margin"`` is the ratio margin of Artetxe &
Schwenk (2019) as LASER's ``mine_bitexts.py`` scores candidates:

    margin(x, y) = sim(x, y) / ( sum_{z in NN_k(x)} sim(x, z) / (2k)
                                + sum_{z in NN_k(y)} sim(y, z) / (2k) )

with NN_k(x) the k nearest targets of x and NN_k(y) the k nearest sources of y; each source
picks, among its k nearest targets, the one with the largest margin.

Both searches are ``fastmteb.kernels.topk`` (blocked GEMM + streaming top-k; Numba merge on the
CPU, Triton on CUDA), whose exact ties go to the lower index; the margin itself is a few
vectorised torch operations on the embeddings' device. No kernel of its own is needed here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from fastmteb.kernels.search import topk

__all__ = ["BitextResult", "bitext_mine"]


@dataclass(frozen=True)
class BitextResult:
    """Predicted target index per source row (int64 [n]) and mteb's metrics for it."""

    predictions: np.ndarray
    accuracy: float
    precision: float
    recall: float
    f1: float


def bitext_mine(
    source: Any,
    target: Any,
    *,
    method: str = "nn",
    metric: str = "cosine",
    k: int = 4,
    gold: Any = None,
    block_size: int | None = None,
) -> BitextResult:
    """Match source rows to target rows and score the matching like mteb's bitext task.

    ``sim`` is cosine (rows L2-normalised, ``x / max(||x||, 1e-12)`` as sentence-transformers'
    ``cos_sim``) or ``"dot"`` (raw inner product); computed in float32. Exact ties in the
    nearest-neighbour argmax go to the lowest target index (mteb's ``torch.topk(k=1)`` leaves
    the choice inside a chunk to torch; its documented rule across chunks is the earlier one).

    Metrics, with ``y_i = gold[i]`` and ``p_i = predictions[i]`` (sklearn, ``average="weighted"``,
    ``zero_division=0``, over the labels present in y or p; ``T_l = #{i: y_i = l}``,
    ``P_l = #{i: p_i = l}``, ``C_l = #{i: y_i = p_i = l}``):

    - accuracy  = ``(1/n) sum_i [p_i = y_i]``
    - precision = ``(1/n) sum_l T_l * C_l / P_l`` (0 where P_l = 0)
    - recall    = ``(1/n) sum_l T_l * C_l / T_l`` (= accuracy)
    - f1        = ``(1/n) sum_l T_l * 2 C_l / (T_l + P_l)``

    Args:
        source: embeddings [n, d] (numpy or torch; CUDA tensors stay on the device).
        target: embeddings [m, d], same d.
        method: ``"nn"`` (mteb) or ``"margin"`` (ratio margin over the k nearest candidates).
        metric: ``"cosine"`` or ``"dot"``.
        k: neighbourhood size for the margin (ignored by ``"nn"``); 1 <= k <= min(n, m).
        gold: gold target index per source row, int [n] (or mteb's list of (i, j) pairs, whose
            j is read by position as mteb does); identity ``gold[i] = i`` when None.
        block_size: corpus rows per block in ``topk`` (default: its memory budget).

    Returns:
        ``BitextResult(predictions, accuracy, precision, recall, f1)``.

    Raises:
        ValueError: bad shapes, NaN/inf embeddings, unknown method/metric, bad k or gold.
    """
    source_rows = _as_embedding_tensor(source, "source")
    target_rows = _as_embedding_tensor(target, "target").to(source_rows.device)
    if source_rows.shape[1] != target_rows.shape[1]:
        raise ValueError(
            f"source and target embeddings differ in dimension: "
            f"{source_rows.shape[1]} != {target_rows.shape[1]}."
        )
    if metric not in ("cosine", "dot"):
        raise ValueError(f"metric must be 'cosine' or 'dot', got {metric!r}.")
    if method not in ("nn", "margin"):
        raise ValueError(f"method must be 'nn' or 'margin', got {method!r}.")
    labels = _gold_labels(gold, source_rows.shape[0])
    if method == "nn":
        _, nearest = topk(source_rows, target_rows, 1, metric=metric, block_size=block_size)
        predictions = nearest[:, 0]
    else:
        n_source, n_target = source_rows.shape[0], target_rows.shape[0]
        if not 1 <= k <= min(n_source, n_target):
            raise ValueError(
                f"k must lie in [1, min(n_source, n_target)] = "
                f"[1, {min(n_source, n_target)}], got {k}."
            )
        predictions = _margin_targets(source_rows, target_rows, k, metric, block_size)
    return _scored(predictions.cpu().numpy().astype(np.int64), labels)


def _as_embedding_tensor(embeddings: Any, name: str) -> torch.Tensor:
    """A float32 2-D torch tensor (zero-copy for float32 numpy / CPU tensors)."""
    tensor = torch.as_tensor(embeddings)
    if tensor.ndim != 2 or tensor.shape[0] == 0:
        raise ValueError(
            f"{name} must be non-empty 2-D [rows, dim], got shape {tuple(tensor.shape)}."
        )
    if not (tensor.is_floating_point() or tensor.dtype in (torch.int32, torch.int64)):
        raise ValueError(f"{name} must hold real numbers, got dtype {tensor.dtype}.")
    tensor = tensor.to(torch.float32)
    if not torch.isfinite(tensor).all():
        raise ValueError(f"{name} contains NaN or inf embeddings.")
    return tensor


def _gold_labels(gold: Any, n_source: int) -> np.ndarray:
    """Gold target per source row: identity by default, mteb's (i, j) pairs read by position."""
    if gold is None:
        return np.arange(n_source, dtype=np.int64)
    labels = np.asarray(gold)
    if labels.ndim == 2 and labels.shape[1] == 2:
        labels = labels[:, 1]
    if labels.ndim != 1 or labels.shape[0] != n_source or labels.dtype.kind not in "iu":
        raise ValueError(
            f"gold must be integer target indices [n_source={n_source}] or (i, j) pairs "
            f"[n_source, 2]; got shape {np.asarray(gold).shape} dtype {labels.dtype}."
        )
    if (labels < 0).any():
        raise ValueError("gold holds negative target indices.")
    return labels.astype(np.int64)


def _margin_targets(
    source_rows: torch.Tensor, target_rows: torch.Tensor, k: int, metric: str,
    block_size: int | None,
) -> torch.Tensor:
    """Ratio-margin choice among each source's k nearest targets."""
    forward_sims, forward_ids = topk(
        source_rows, target_rows, k, metric=metric, block_size=block_size
    )
    backward_sims, _ = topk(target_rows, source_rows, k, metric=metric, block_size=block_size)
    forward_share = forward_sims.sum(dim=1, dtype=torch.float64) / (2 * k)
    backward_share = backward_sims.sum(dim=1, dtype=torch.float64) / (2 * k)
    # candidates by ascending target id, so equal margins go to the lowest id
    candidate_ids, by_id = torch.sort(forward_ids, dim=1)
    candidate_sims = forward_sims.gather(1, by_id).to(torch.float64)
    margins = candidate_sims / (forward_share[:, None] + backward_share[candidate_ids])
    return candidate_ids.gather(1, margins.argmax(dim=1, keepdim=True))[:, 0]


def _scored(predictions: np.ndarray, labels: np.ndarray) -> BitextResult:
    """sklearn's weighted precision/recall/F1 (zero_division=0) and accuracy, by counting."""
    n = labels.shape[0]
    size = int(max(labels.max(), predictions.max())) + 1
    true_count = np.bincount(labels, minlength=size).astype(np.float64)
    predicted_count = np.bincount(predictions, minlength=size).astype(np.float64)
    correct = predictions == labels
    correct_count = np.bincount(labels[correct], minlength=size).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision_per_label = np.where(predicted_count > 0, correct_count / predicted_count, 0.0)
        recall_per_label = np.where(true_count > 0, correct_count / true_count, 0.0)
        f1_per_label = np.where(
            true_count + predicted_count > 0,
            2 * correct_count / (true_count + predicted_count),
            0.0,
        )
    support = true_count.sum()
    return BitextResult(
        predictions=predictions,
        accuracy=float(correct.sum() / n),
        precision=float((precision_per_label * true_count).sum() / support),
        recall=float((recall_per_label * true_count).sum() / support),
        f1=float((f1_per_label * true_count).sum() / support),
    )
