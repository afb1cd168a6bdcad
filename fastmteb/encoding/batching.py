"""Token-budget batching (the TEI queue rule) with prefetch, OOM back-off and a token progress bar.

Sequences are sorted by token length, longest first, and cut into batches whose *padded* cost
``max_len(batch) × n(batch)`` stays under ``budget`` tokens (at least one sequence per batch, so a
single sequence longer than the budget still runs). Longest first means an out-of-memory error
shows up on the first batch, not after an hour. While batch ``k`` runs its forward pass, a helper
thread pads batch ``k+1`` (and pins it for an asynchronous host-to-device copy on CUDA).
"""

from __future__ import annotations

import logging
import time
import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch

logger = logging.getLogger(__name__)

DEFAULT_MAX_WASTE = 0.2  # padding share at which a batch is cut (once it holds MIN_BATCH_ROWS rows)
CPU_MAX_PADDING_WASTE = 0.02  # a CPU gains nothing from fuller batches (see TorchEncoder)
MIN_BATCH_ROWS = 16


@dataclass
class EncodeStats:
    """Counters of one or more encodes: real tokens, padded tokens, batches, OOM retries, seconds."""

    texts: int = 0
    tokens: int = 0
    padded_tokens: int = 0
    batches: int = 0
    oom_retries: int = 0
    seconds: float = 0.0
    final_budget: int | None = None

    @property
    def padding_waste(self) -> float:
        """Share of the computed positions that were padding: ``1 - tokens / padded_tokens``."""
        return 0.0 if self.padded_tokens == 0 else 1.0 - self.tokens / self.padded_tokens

    def merge(self, other: "EncodeStats") -> None:
        self.texts += other.texts
        self.tokens += other.tokens
        self.padded_tokens += other.padded_tokens
        self.batches += other.batches
        self.oom_retries += other.oom_retries
        self.seconds += other.seconds
        self.final_budget = (
            other.final_budget if other.final_budget is not None else self.final_budget
        )


def length_order(lengths: np.ndarray) -> np.ndarray:
    """Indices sorting ``lengths`` longest first; ties keep input order (stable, deterministic)."""
    return np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")


def next_batch_end(
    sorted_lengths: np.ndarray, start: int, budget: int, max_waste: float = DEFAULT_MAX_WASTE
) -> int:
    """End (exclusive) of the batch starting at ``start`` in a longest-first order.

    The batch is padded to its first (longest) sequence ``L``, so it may hold at most
    ``max(1, budget // L)`` sequences (the TEI rule). It is also cut before its padding share
    ``1 - sum(len) / (L × n)`` would exceed ``max_waste`` once it holds ``MIN_BATCH_ROWS`` rows:
    compute grows with padded tokens, and a long head must not pad a tail of short texts.
    """
    longest = max(int(sorted_lengths[start]), 1)
    end = min(len(sorted_lengths), start + max(1, budget // longest))
    if end - start <= MIN_BATCH_ROWS:
        return end
    rows = np.arange(1, end - start + 1)
    waste = 1.0 - np.cumsum(sorted_lengths[start:end]) / (longest * rows)
    over = np.flatnonzero((waste > max_waste) & (rows > MIN_BATCH_ROWS))
    return start + int(over[0]) if len(over) else end


def plan_batches(
    lengths: np.ndarray, budget: int, max_waste: float = DEFAULT_MAX_WASTE
) -> list[np.ndarray]:
    """Token-budget batches of input positions (longest first), each costing ``<= budget`` padded
    tokens unless it holds a single longer sequence."""
    if budget < 1:
        raise ValueError(f"batch token budget must be >= 1, got {budget}")
    order = length_order(lengths)
    sorted_lengths = np.asarray(lengths)[order]
    batches, start = [], 0
    while start < len(order):
        end = next_batch_end(sorted_lengths, start, budget, max_waste)
        batches.append(order[start:end])
        start = end
    return batches


@dataclass
class PaddedBatch:
    """One padded batch: ``input_ids``/``attention_mask`` [n, max_len] and the positions it covers."""

    positions: np.ndarray
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    tokens: int
    extra: dict = field(default_factory=dict)

    @property
    def padded_tokens(self) -> int:
        return int(self.input_ids.numel())


def pad_token_ids(
    sequences: Sequence[np.ndarray], pad_id: int, padding_side: str = "right", pin: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack variable-length id arrays into ``input_ids`` and ``attention_mask`` (int64)."""
    lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
    width = int(lengths.max()) if len(lengths) else 0
    ids = np.full((len(sequences), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(sequences), width), dtype=np.int64)
    for row, seq in enumerate(sequences):
        n = len(seq)
        if padding_side == "left":
            ids[row, width - n :] = seq
            mask[row, width - n :] = 1
        else:
            ids[row, :n] = seq
            mask[row, :n] = 1
    input_ids, attention_mask = torch.from_numpy(ids), torch.from_numpy(mask)
    if pin:
        input_ids, attention_mask = input_ids.pin_memory(), attention_mask.pin_memory()
    return input_ids, attention_mask


# cuBLAS/cuDNN report a failed workspace allocation as a plain RuntimeError, not OutOfMemoryError.
_OOM_MESSAGES = ("out of memory", "cublas_status_alloc_failed", "cudnn_status_alloc_failed")


def _is_oom(error: BaseException) -> bool:
    text = str(error).lower()
    return isinstance(error, torch.OutOfMemoryError) or any(m in text for m in _OOM_MESSAGES)


def run_token_batches(
    token_ids: Sequence[np.ndarray],
    forward: Callable[[PaddedBatch], torch.Tensor],
    *,
    budget: int,
    pad_id: int,
    padding_side: str = "right",
    pin_memory: bool = False,
    progress: bool = False,
    description: str = "Encoding",
    stats: EncodeStats | None = None,
    on_oom: Callable[[], None] | None = None,
    max_waste: float = DEFAULT_MAX_WASTE,
    keep_on_device: bool = False,
) -> np.ndarray | torch.Tensor:
    """Run ``forward`` over token-budget batches of ``token_ids``; rows back in input order (float32).

    On an out-of-memory error the batch is retried with half the budget (down to one sequence per
    batch); the first back-off is reported once with a warning, and ``stats.final_budget`` tells
    the caller the budget that worked (encoders keep it for their next call). ``on_oom`` (e.g.
    ``torch.cuda.empty_cache``) runs after the failed batch's exception, and with it every tensor
    its traceback held, has been released.

    Rows stay on the device ``forward`` returns them on until all batches are done: one copy to
    the host at the end instead of a synchronising copy after every batch, or none with
    ``keep_on_device`` (then a float32 torch tensor on that device is returned).
    """
    if budget < 1:
        raise ValueError(f"batch token budget must be >= 1, got {budget}")
    started = time.perf_counter()
    stats = stats if stats is not None else EncodeStats()
    n = len(token_ids)
    lengths = np.fromiter((len(t) for t in token_ids), dtype=np.int64, count=n)
    order = length_order(lengths)
    sorted_lengths = lengths[order]
    out: torch.Tensor | None = None

    def batch_end(first: int) -> int:
        return next_batch_end(sorted_lengths, first, budget, max_waste)  # reads the current budget

    def build(start: int, end: int) -> PaddedBatch:
        positions = order[start:end]
        ids, mask = pad_token_ids(
            [token_ids[i] for i in positions], pad_id, padding_side, pin_memory
        )
        return PaddedBatch(positions, ids, mask, int(sorted_lengths[start:end].sum()))

    bar = None
    if progress and n:
        from tqdm.auto import tqdm

        bar = tqdm(
            total=int(lengths.sum()), desc=description, unit="tok", unit_scale=True, leave=False
        )
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="fastmteb-pad") as pool:
        start = 0
        pending: Future | None = pool.submit(build, 0, batch_end(0)) if n else None
        while start < n:
            batch = pending.result()
            end = start + len(batch.positions)
            pending = pool.submit(build, end, batch_end(end)) if end < n else None
            result = None
            try:
                result = forward(batch)
            except Exception as error:  # noqa: BLE001 - only OOM is handled, the rest re-raised
                if not _is_oom(error) or len(batch.positions) == 1:
                    raise
            if result is None:
                # Out of the except block: the exception and the frames (activations) its
                # traceback held are gone, so on_oom can really return their memory.
                if pending is not None:
                    pending.cancel()
                if on_oom is not None:
                    on_oom()
                new_budget = max(1, budget // 2)
                if stats.oom_retries == 0:
                    message = (
                        f"fastmteb: out of memory on a batch of {len(batch.positions)} x "
                        f"{batch.input_ids.shape[1]} tokens; halving the batch token budget "
                        f"{budget} -> {new_budget} and retrying (reported once)"
                    )
                    warnings.warn(message, RuntimeWarning, stacklevel=2)
                    logger.warning(message)
                stats.oom_retries += 1
                budget = new_budget
                pending = pool.submit(build, start, batch_end(start))
                continue
            rows = result.detach().float()
            if out is None:
                out = torch.empty((n, rows.shape[1]), dtype=torch.float32, device=rows.device)
            out[torch.from_numpy(batch.positions).to(rows.device, non_blocking=True)] = rows
            stats.batches += 1
            stats.tokens += batch.tokens
            stats.padded_tokens += batch.padded_tokens
            if bar is not None:
                bar.update(batch.tokens)
            start = end
    if bar is not None:
        bar.close()
    stats.texts += n
    stats.final_budget = budget
    stats.seconds += time.perf_counter() - started
    if out is None:
        out = torch.zeros((0, 0), dtype=torch.float32)
    return out if keep_on_device else out.cpu().numpy()
