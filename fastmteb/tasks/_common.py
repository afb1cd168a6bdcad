"""Helpers shared by the task-type modules: input checks, parameters, pairwise scores, id order.

Nothing here knows a task type; each function is used by at least two of them.

Embeddings reach ``score`` as numpy arrays, or as torch tensors on the encoding device when the
run is device-resident (``fastmteb.evaluate(resident=...)``). The one place the two meet is here:
``embedding`` hands sklearn-fitting types float32 numpy (the host copy they need), while
``device_embedding`` keeps a tensor where it is for the types whose scoring has a device path, and
``paired_scores`` computes the per-pair scores with numpy/sklearn or, for tensors, torch.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import torch
from sklearn.metrics.pairwise import (
    paired_cosine_distances,
    paired_euclidean_distances,
    paired_manhattan_distances,
)

from fastmteb.kernels import unit_rows
from fastmteb.tasks.base import TaskMetadata, TextRequest

SEED = 42  # mteb's task seed (AbsTask(seed=42)); every sampler below starts from it


class TaskTypeError(ValueError):
    """Bad input to a task type: the message names the task, the field and the fix."""


class RowType:
    """The data contract of the non-retrieval types (each type module subclasses it).

    ``raw`` is keyed by split; every split has the columns of ``schema(meta, subset)`` with the
    kinds the loader checks ("str", "number", "label", "binary", "labels", "list[str]",
    "list[number]", "list"). ``normalise`` turns one subset's loaded splits (local files or the hub,
    before the dataset transform) into canonical column names; ``finalise_split`` runs on each
    split after it; ``required_splits`` names splits the type needs beside the evaluated one.
    ``retrieval`` tells the runner whether the type's data and scoring are the retrieval family's
    (queries/corpus/qrels, corpus-sharded search).
    """

    retrieval = False
    columns: Mapping[str, str] = {}

    def schema(self, meta: TaskMetadata, subset: str) -> dict[str, str]:
        return dict(self.columns)

    def normalise(self, meta: TaskMetadata, splits: Any) -> Any:
        return splits

    def finalise_split(self, meta: TaskMetadata, rows: Any) -> Any:
        return rows

    def required_splits(self, meta: TaskMetadata) -> tuple[str, ...]:
        return ()


def training_splits(meta: TaskMetadata) -> tuple[str, ...]:
    """The split a classifier or regressor is fitted on (``train_split``), needed beside the
    evaluated one; none when the task is cross-validated on folds of the evaluated split."""
    if param(meta, "is_cross_validation", False):
        return ()
    return (param(meta, "train_split", "train"),)


def param(meta: TaskMetadata, name: str, default: Any) -> Any:
    """``meta.params[name]`` with mteb's class default when the task does not override it."""
    return meta.params.get(name, default)


def column(meta: TaskMetadata, rows: Any, name: str, what: str) -> list:
    """A column of a ``datasets.Dataset`` (or dict of lists) as a list, or a clear error."""
    names = rows.column_names if hasattr(rows, "column_names") else list(rows)
    if name not in names:
        raise TaskTypeError(
            f"task {meta.name!r}: {what} has no column {name!r} (columns: {sorted(names)}); "
            "the loader must return the canonical columns of its type (see fastmteb.tasks.base)"
        )
    if hasattr(rows, "with_format"):  # a datasets.Dataset: read the Arrow column, not row by row
        return rows.with_format("arrow")[name].to_pylist()
    return list(rows[name])


def split_rows(meta: TaskMetadata, raw: Mapping[str, Any], split: str) -> Any:
    """``raw[split]`` for the non-retrieval types (raw is keyed by split name)."""
    if split not in raw:
        raise TaskTypeError(
            f"task {meta.name!r}: split {split!r} not in the loaded data (have {sorted(raw)}); "
            "pass one of the task's eval_splits"
        )
    return raw[split]


def embedding(
    meta: TaskMetadata, embeddings: Mapping[str, Any], name: str, n_rows: int
) -> np.ndarray:
    """``embeddings[name]`` as a float32 numpy array with ``n_rows`` rows (half precision upcast;
    a torch tensor is copied to the host).

    mteb hands sklearn/scipy float32 arrays (its wrapper upcasts half precision), so every
    non-retrieval score is computed from exactly that.
    """
    array = device_embedding(meta, embeddings, name, n_rows)
    if isinstance(array, torch.Tensor):
        return array.detach().cpu().numpy()
    return np.asarray(array, dtype=np.float32)


def device_embedding(
    meta: TaskMetadata, embeddings: Mapping[str, Any], name: str, n_rows: int
) -> np.ndarray | torch.Tensor | Any:
    """``embeddings[name]`` with ``n_rows`` rows, in float32, left where it lives: a torch tensor
    stays on its device, a lazy 2-D array (a spilled pool's ``RowView``: rows read on slicing)
    stays lazy, anything else becomes a numpy array."""
    if name not in embeddings:
        raise TaskTypeError(
            f"task {meta.name!r}: embeddings has no entry {name!r} (have {sorted(embeddings)}); "
            "pass one array per request returned by requests()"
        )
    array = embeddings[name]
    if not hasattr(array, "shape"):
        array = np.asarray(array)
    if len(array.shape) != 2 or array.shape[0] != n_rows:
        raise TaskTypeError(
            f"task {meta.name!r}: embeddings[{name!r}] has shape {tuple(array.shape)}, expected "
            f"[{n_rows}, dim] (one row per text of the request, in order)"
        )
    if isinstance(array, torch.Tensor):
        return array.detach().float()
    if isinstance(array, np.ndarray) and array.dtype != np.float32:
        return array.astype(np.float32)
    return array


def pair_prompt_types(meta: TaskMetadata) -> tuple[Any, Any]:
    """The prompt types of a sentence pair's two sides (mteb's ``input1_prompt_type`` and
    ``input2_prompt_type``, default None: no query/document prompt)."""
    return param(meta, "input1_prompt_type", None), param(meta, "input2_prompt_type", None)


def sentence_pair_requests(prepared: Any) -> dict[str, TextRequest]:
    """``sentence1`` and ``sentence2`` of a prepared pair task (STS, pair classification), each with
    its side's prompt type (``prepared.prompt_types``)."""
    return {
        "sentence1": TextRequest(prepared.sentence1, prepared.prompt_types[0]),
        "sentence2": TextRequest(prepared.sentence2, prepared.prompt_types[1]),
    }


def paired_scores(
    e1: np.ndarray | torch.Tensor, e2: np.ndarray | torch.Tensor
) -> dict[str, np.ndarray | torch.Tensor]:
    r"""The per-pair similarity vectors STS and pair classification report, as mteb computes them.

    For pair i, with float32 rows :math:`x = e1_i`, :math:`y = e2_i`:

    - ``similarity``: :math:`\langle \hat x, \hat y \rangle` with torch (mteb's pairwise cosine,
      which is the model similarity of a cosine encoder — fastmteb's encoders all score by cosine);
    - ``cosine``: :math:`1 - \tfrac12 \lVert \hat x - \hat y \rVert^2` (sklearn
      ``paired_cosine_distances``);
    - ``manhattan``: :math:`\lVert x - y \rVert_1` and ``euclidean``: :math:`\lVert x - y \rVert_2`
      (sklearn paired distances: distances, lower = more similar);
    - ``dot``: :math:`\langle x, y \rangle` (``np.dot`` row by row, as mteb; BLAS sdot).

    All are float32 (sklearn keeps float32 input as float32), in the order mteb reports them.
    Torch tensors (a device-resident run) get the same formulas as torch operations on their
    device (torch tensors back): equal to the numpy values up to float32 summation order.
    """
    if isinstance(e1, torch.Tensor):
        return _paired_scores_torch(e1, e2.to(e1.device))
    similarity = (unit_rows(torch.from_numpy(e1)) * unit_rows(torch.from_numpy(e2))).sum(dim=-1).numpy()
    dot = np.asarray([np.dot(e1[i], e2[i]) for i in range(e1.shape[0])], dtype=e1.dtype)
    return {
        "similarity": similarity,
        "cosine": 1 - paired_cosine_distances(e1, e2),
        "manhattan": paired_manhattan_distances(e1, e2),
        "euclidean": paired_euclidean_distances(e1, e2),
        "dot": dot.reshape(e1.shape[0]),
    }


def _paired_scores_torch(e1: torch.Tensor, e2: torch.Tensor) -> dict[str, torch.Tensor]:
    """``paired_scores`` for float32 tensors, each formula as sklearn writes it (``row_norms`` is
    ``sqrt(sum x*x)``; ``normalize`` leaves a zero row as it is)."""

    def row_norms(x: torch.Tensor) -> torch.Tensor:
        return torch.sqrt((x * x).sum(dim=1))

    def sklearn_normalize(x: torch.Tensor) -> torch.Tensor:
        norms = row_norms(x)
        return x / torch.where(norms == 0, torch.ones_like(norms), norms)[:, None]

    difference = e1 - e2
    unit_difference = sklearn_normalize(e1) - sklearn_normalize(e2)
    return {
        "similarity": (unit_rows(e1) * unit_rows(e2)).sum(dim=-1),
        "cosine": 1 - 0.5 * (unit_difference * unit_difference).sum(dim=1),
        "manhattan": difference.abs().sum(dim=1),
        "euclidean": row_norms(difference),
        "dot": (e1 * e2).sum(dim=1),
    }


def float64(values: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """``values`` in float64, a tensor on its device (what the correlation kernels take)."""
    return values.double() if isinstance(values, torch.Tensor) else values.astype(np.float64)


def string_order_rank(ids: Sequence[str]) -> np.ndarray:
    """A unique rank per id in bytewise (= code point) string order: ``rank[i] > rank[j]`` if ids[i] > ids[j].

    pytrec_eval and mteb's MRR break score ties by document id descending, so the larger rank
    wins a tie. Repeated ids (not expected) are ranked by position.
    """
    ids = list(ids)
    if not ids:
        return np.zeros(0, dtype=np.int64)
    # numpy's unicode sort compares code points, which is the bytewise order of UTF-8
    order = np.argsort(np.asarray(ids, dtype=str), kind="stable")
    rank = np.empty(len(ids), dtype=np.int64)
    rank[order] = np.arange(len(ids), dtype=np.int64)
    return rank
