"""The evaluation loop of mteb's ``AbsTaskClassification``, shared by the types that keep it.

mteb's ``_evaluate_subset``: the train rows any experiment uses are encoded once, the evaluated
split once; each experiment fits a fresh model on its rows (in the sampler's order), predicts the
evaluated rows and scores them; the result is ``scores_per_experiment`` then the mean of each key.
With ``is_cross_validation`` the evaluated split itself is cut by ``KFold(n_splits,
shuffle=True, random_state=42)``, one experiment per fold (trained on a sample of the fold's train
part, scored on its validation part).

A type (Classification, Regression) says only what differs: its target column, how experiments
sample the training rows, the model, the metrics. Params (mteb's names): ``train_split``
("train"), ``n_experiments`` (10), ``is_cross_validation`` (False), ``n_splits`` (5).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.model_selection import KFold

from fastmteb.tasks._common import (
    SEED,
    RowType,
    TaskTypeError,
    column,
    embedding,
    param,
    split_rows,
    training_splits,
)
from fastmteb.tasks._mteb_task import MtebTaskReader
from fastmteb.tasks.base import TaskMetadata, TextRequest


@dataclass(frozen=True)
class ProbePrepared:
    train_texts: list[str]  # texts of ``train_rows`` (the request)
    train_rows: np.ndarray  # int64, ascending: rows of the train split that are encoded
    train_targets: list[Any]  # targets of the whole train split
    experiments: list[list[int]]  # per experiment: rows (of the train split, or of its fold)
    eval_texts: list[str]
    eval_targets: list[Any]
    folds: list[tuple[np.ndarray, np.ndarray]] | None = None  # cross-validation (train, val) rows

    @classmethod
    def from_experiments(
        cls,
        train_texts: list[str],
        train_targets: list[Any],
        experiments: list[list[int]],
        eval_texts: list[str],
        eval_targets: list[Any],
    ) -> ProbePrepared:
        """Held-out evaluation: only the train rows some experiment uses are encoded."""
        train_rows = union_of_experiments(experiments)
        return cls(
            train_texts=[train_texts[i] for i in train_rows],
            train_rows=train_rows,
            train_targets=train_targets,
            experiments=experiments,
            eval_texts=eval_texts,
            eval_targets=eval_targets,
        )


def union_of_experiments(experiments: list[list[int]]) -> np.ndarray:
    """Train rows any experiment uses, ascending (int64): mteb encodes exactly these, once."""
    return np.asarray(sorted(set().union(*experiments)), dtype=np.int64)


def average_experiments(per_experiment: list[dict[str, Any]], *, skip_none: bool = True) -> dict[str, Any]:
    """mteb's ``_calculate_avg_scores``: ``scores_per_experiment`` first, then the mean of each key
    (with ``skip_none``: over its non-None values, NaN when there are none)."""
    out: dict[str, Any] = {"scores_per_experiment": per_experiment}
    for key in per_experiment[0]:
        values = [s[key] for s in per_experiment if not skip_none or s[key] is not None]
        if skip_none:
            out[key] = float(np.mean(values)) if values else np.nan
        else:
            out[key] = np.mean(values)
    return out


class SupervisedProbe(RowType, MtebTaskReader):
    """A type scored by models fitted on embedded training rows (see the module docstring).

    Subclasses set ``target_column`` and implement ``sample_experiments``, ``fit_predict`` and
    ``metrics``; ``check_eval_targets`` may reject data mteb would fail on late.
    ``mteb_sample_size`` names mteb's class attribute that sizes the training sample.
    """

    target_column: str
    mteb_sample_size = "samples_per_label"

    def mteb_params(self, task: Any) -> dict[str, Any]:
        p = {
            self.mteb_sample_size: getattr(task, self.mteb_sample_size),
            "n_experiments": task.n_experiments,
            "train_split": task.train_split,
            "is_cross_validation": task.is_cross_validation,
        }
        if task.is_cross_validation:
            p["n_splits"] = task.n_splits
        return p

    def sample_experiments(self, meta: TaskMetadata, targets: list[list[Any]]) -> list[list[int]]:
        """Rows each experiment trains on, in mteb's order: ``targets[i]`` are the targets
        experiment ``i`` samples from (the train split, or fold ``i``'s train part)."""
        raise NotImplementedError

    def fit_predict(self, meta: TaskMetadata, x_train: np.ndarray, y_train: list[Any], x_test: np.ndarray) -> Any:
        raise NotImplementedError

    def metrics(self, y_true: list[Any], y_pred: Any) -> dict[str, Any]:
        raise NotImplementedError

    def check_eval_targets(self, meta: TaskMetadata, targets: list[Any]) -> None:
        return None

    def required_splits(self, meta: TaskMetadata) -> tuple[str, ...]:
        return training_splits(meta)

    def _rows(self, meta: TaskMetadata, raw: Mapping[str, Any], split: str) -> tuple[list[str], list[Any]]:
        rows = split_rows(meta, raw, split)
        where = f"split {split!r}"
        return column(meta, rows, "text", where), column(meta, rows, self.target_column, where)

    def prepare(self, meta: TaskMetadata, raw: Mapping[str, Any], split: str, subset: str) -> ProbePrepared:
        train_split = param(meta, "train_split", "train")
        train_texts, train_targets = self._rows(meta, raw, train_split)
        if param(meta, "is_cross_validation", False):
            return self._prepare_cross_validation(meta, split, train_split, train_texts, train_targets)
        eval_texts, eval_targets = self._rows(meta, raw, split)
        self.check_eval_targets(meta, eval_targets)
        experiments = self.sample_experiments(meta, [train_targets] * param(meta, "n_experiments", 10))
        return ProbePrepared.from_experiments(
            train_texts, train_targets, experiments, eval_texts, eval_targets
        )

    def _prepare_cross_validation(
        self, meta: TaskMetadata, split: str, train_split: str, texts: list[str], targets: list[Any]
    ) -> ProbePrepared:
        if split != train_split:
            raise TaskTypeError(
                f"task {meta.name!r}: cross-validation runs on the train split {train_split!r}, "
                f"not {split!r}; set is_cross_validation=False or evaluate {train_split!r}"
            )
        splitter = KFold(n_splits=param(meta, "n_splits", 5), shuffle=True, random_state=SEED)
        folds = [(np.asarray(t), np.asarray(v)) for t, v in splitter.split(range(len(texts)))]
        experiments = self.sample_experiments(meta, [[targets[i] for i in t] for t, _ in folds])
        return ProbePrepared(
            train_texts=texts,
            train_rows=np.arange(len(texts), dtype=np.int64),
            train_targets=targets,
            experiments=experiments,
            eval_texts=[],
            eval_targets=targets,
            folds=folds,
        )

    def requests(self, prepared: ProbePrepared) -> dict[str, TextRequest]:
        out = {"train": TextRequest(prepared.train_texts)}
        if prepared.folds is None:
            out["eval"] = TextRequest(prepared.eval_texts)
        return out

    def score(self, meta: TaskMetadata, prepared: ProbePrepared, embeddings: Mapping[str, Any]) -> dict:
        train = embedding(meta, embeddings, "train", len(prepared.train_rows))
        if prepared.folds is None:
            x_eval = embedding(meta, embeddings, "eval", len(prepared.eval_texts))
        position = {int(row): pos for pos, row in enumerate(prepared.train_rows)}
        per_experiment = []
        for i, selected in enumerate(prepared.experiments):
            if prepared.folds is None:
                rows = [position[j] for j in selected]
                y_train = [prepared.train_targets[j] for j in selected]
                x_test, y_test = x_eval, prepared.eval_targets
            else:
                train_idx, val_idx = prepared.folds[i]
                rows = train_idx[selected]
                y_train = [prepared.train_targets[j] for j in rows]
                x_test, y_test = train[val_idx], [prepared.eval_targets[j] for j in val_idx]
            predicted = self.fit_predict(meta, train[rows], y_train, x_test)
            per_experiment.append(self.metrics(y_test, predicted))
        return average_experiments(per_experiment)
