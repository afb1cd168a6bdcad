"""Per-batch records taken with torch forward hooks on the model: the same measuring point for
fastmteb and sentence-transformers."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

import torch


@dataclass
class BatchRecord:
    """One forward pass: ``rows × width`` padded positions, ``tokens`` real ones, its wall time."""

    rows: int
    width: int
    tokens: int
    seconds: float


def _batch_features(args: tuple, kwargs: dict) -> Mapping | None:
    """The batch's features: keyword arguments (transformers) or the first positional mapping
    (sentence-transformers passes a dict or a ``BatchEncoding``)."""
    if "input_ids" in kwargs:
        return kwargs
    if args and isinstance(args[0], Mapping) and "input_ids" in args[0]:
        return args[0]
    return None


@contextlib.contextmanager
def record_batches(module: torch.nn.Module, device: torch.device) -> Iterator[list[BatchRecord]]:
    """Record every top-level forward call of ``module`` in the ``with`` body as a ``BatchRecord``."""
    records: list[BatchRecord] = []
    pending: list[tuple[int, int, int, float]] = []
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda *_: None)

    def before(_module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        features = _batch_features(args, kwargs)
        if features is None:
            return
        mask = features.get("attention_mask")
        ids = features["input_ids"]
        rows, width = int(ids.shape[0]), int(ids.shape[1])
        tokens = int(mask.sum().item()) if mask is not None else rows * width
        sync(device)
        pending.append((rows, width, tokens, time.perf_counter()))

    def after(_module: torch.nn.Module, args: tuple, kwargs: dict, _output: Any) -> None:
        if _batch_features(args, kwargs) is None or not pending:
            return
        sync(device)
        rows, width, tokens, started = pending.pop()
        records.append(BatchRecord(rows, width, tokens, time.perf_counter() - started))

    handles = [
        module.register_forward_pre_hook(before, with_kwargs=True),
        module.register_forward_hook(after, with_kwargs=True),
    ]
    try:
        yield records
    finally:
        for handle in handles:
            handle.remove()
