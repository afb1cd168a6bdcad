"""The texts a benchmark encodes: a task's texts (those its type asks to embed), deduplicated,
bucketed by token length and sampled per bucket."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from fastmteb.benchmark.settings import DEFAULT_TASKS, BenchConfigError


def task_texts(task_name: str, *, data_dir: str | Path | None = None) -> list[str]:
    """Every text task ``task_name`` asks to embed (all its eval splits and subsets), as its task
    type assembles them (e.g. retrieval documents are "title text"), in first-seen order, unique."""
    from fastmteb.data import load_raw
    from fastmteb.tasks.registry import get_task
    from fastmteb.tasks.types import get_task_type

    meta = get_task(task_name)
    task_type = get_task_type(meta.type)
    seen: dict[str, None] = {}
    for split in meta.eval_splits:
        for subset in meta.hf_subsets:
            raw = load_raw(meta, subset, split, data_dir=data_dir)
            prepared = task_type.prepare(meta, raw, split, subset)
            for request in task_type.requests(prepared).values():
                seen.update(dict.fromkeys(request.texts))
    return list(seen)


def load_bench_texts(
    tasks: Sequence[str] | None = None, *, data_dir: str | Path | None = None
) -> tuple[list[str], list[str]]:
    """(unique texts, task names they came from); default tasks: bundled SciFact + SICK-R."""
    names = list(tasks) if tasks else list(DEFAULT_TASKS)
    seen: dict[str, None] = {}
    for name in names:
        seen.update(dict.fromkeys(task_texts(name, data_dir=data_dir)))
    if not seen:
        raise BenchConfigError(f"tasks {names} gave no texts to encode; pick a task with data (--task NAME)")
    return list(seen), names


def parse_bucket_edges(spec: str | Sequence[int] | None) -> tuple[int, ...]:
    """Token-length bucket edges from "32,128" (or "none" / "" for no buckets); strictly increasing."""
    if spec is None:
        return ()
    if isinstance(spec, str):
        if spec.strip().lower() in ("", "none"):
            return ()
        try:
            spec = [int(part) for part in spec.split(",") if part.strip()]
        except ValueError:
            raise BenchConfigError(
                f"--length-buckets {spec!r}: expected comma-separated token counts such as 32,128 (or none)"
            ) from None
    edges = tuple(int(e) for e in spec)
    if any(e < 1 for e in edges) or any(b <= a for a, b in zip(edges, edges[1:])):
        raise BenchConfigError(
            f"--length-buckets {list(edges)}: edges must be positive and strictly increasing, e.g. 32,128"
        )
    return edges


def bucket_names(edges: Sequence[int]) -> list[str]:
    """Names of the ``len(edges) + 1`` buckets: short/medium/long for two edges, short/long for one,
    else ``"lo-hi"`` token ranges (``hi`` exclusive)."""
    if len(edges) == 2:
        return ["short", "medium", "long"]
    if len(edges) == 1:
        return ["short", "long"]
    bounds = [0, *edges, None]
    return [f"{lo}-{hi}" if hi is not None else f">={lo}" for lo, hi in zip(bounds, bounds[1:])]


def bucket_of(lengths: np.ndarray, edges: Sequence[int]) -> np.ndarray:
    """Bucket number of each length: ``b`` such that ``edges[b-1] <= length < edges[b]``."""
    return np.searchsorted(np.asarray(edges, dtype=np.int64), np.asarray(lengths, dtype=np.int64), side="right")


def sample_positions(candidates: np.ndarray, limit: int | None, rng: np.random.Generator) -> np.ndarray:
    """At most ``limit`` of ``candidates`` drawn without replacement, kept in input order."""
    if limit is None or len(candidates) <= limit:
        return np.asarray(candidates, dtype=np.int64)
    return np.sort(rng.choice(candidates, size=limit, replace=False)).astype(np.int64)
