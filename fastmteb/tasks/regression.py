"""Regression (mteb ``AbsTaskRegression``): a linear regressor fitted on embedded train rows.

mteb's ``AbsTaskRegression`` subclasses ``AbsTaskClassification`` and keeps its evaluation loop
(``_evaluate_subset``: encode the union of every experiment's train rows once, encode the evaluated
split, fit/predict per experiment, average); it changes the sampler, the model and the metrics:

- ``_undersample_data``: when the train split has more than ``n_samples`` rows, experiment ``i``
  keeps ``n_samples`` rows drawn by ``stratified_subsampling`` — the target binned into 10 quantile
  bins (``pd.qcut(duplicates="drop")``), cast to ``ClassLabel``, and Hugging Face
  ``train_test_split(test_size=n_samples, seed=42 + i, stratify_by_column=...)["test"]`` — in that
  split's row order; otherwise every row, in order. Experiments do not share a random stream, and
  neither do subsets.
- ``evaluator_model = LinearRegression()`` (sklearn defaults), fitted on float32 embeddings.
- ``_calculate_scores``: ``mse``, ``mae``, ``r2`` (sklearn), ``kendalltau`` (scipy ``.statistic``,
  NaN for constant predictions or targets), ``rmse = sqrt(mse)`` — in that order.
- ``_calculate_avg_scores`` (inherited): ``scores_per_experiment`` then the mean of each key.

Params (mteb names/defaults): ``train_split`` ("train"), ``n_experiments`` (10), ``n_samples``
(2048), ``is_cross_validation`` (False; ``n_splits`` 5-fold ``KFold(shuffle=True,
random_state=42)``, fold ``i`` subsampled with seed ``42 + i``). mteb's instruction for the type
(``abstask_prompt``) is "Predict the value of the user passage."; prompt type None.
Data: each split has the columns ``text`` (str) and ``value`` (number).
Requests: ``train`` — the union of every experiment's train rows, ascending — and ``eval`` — the
evaluated split; cross-validation requests ``train`` only (the whole split).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import kendalltau
from sklearn.linear_model import LinearRegression
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
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
from fastmteb.tasks.base import TaskMetadata, TextRequest

N_BINS = 10  # mteb's stratified_subsampling default


@dataclass(frozen=True)
class RegressionPrepared:
    train_texts: list[str]  # texts of ``train_rows`` (the request)
    train_rows: np.ndarray  # int64, ascending: rows of the train split that are encoded
    train_values: list[Any]  # targets of the whole train split
    experiments: list[
        list[int]
    ]  # per experiment: rows (of the train split, or of its fold) in mteb's order
    eval_texts: list[str]
    eval_values: list[Any]
    folds: list[tuple[np.ndarray, np.ndarray]] | None = None  # cross-validation (train, val) rows


def subsample_rows(meta: TaskMetadata, values: list[Any], n_samples: int, seed: int) -> list[int]:
    """Rows mteb's ``AbsTaskRegression._undersample_data`` keeps, in its order.

    All rows when ``n_samples >= len(values)``; else the ``test`` side of a Hugging Face stratified
    ``train_test_split`` over the 10 quantile bins of ``values``, built with the same calls as mteb's
    ``stratified_subsampling`` (so the same ``default_rng(seed)`` draws and the same failures).
    """
    if n_samples >= len(values):
        return list(range(len(values)))
    import datasets
    import pandas as pd

    binned = pd.qcut(values, q=N_BINS, labels=False, duplicates="drop")
    if np.isnan(np.asarray(binned, dtype=np.float64)).any():
        raise TaskTypeError(
            f"task {meta.name!r}: the train targets cannot be binned into quantiles (constant or "
            f"missing values), which mteb's stratified subsampling to n_samples={n_samples} needs; "
            "mteb fails on this data too: give varied targets or set n_samples >= the train size"
        )
    # mteb adds the bins then casts them to ClassLabel; building the column with that feature is the
    # same table (and the same range check) without a casting pass
    features = datasets.Features(
        {
            "__idx__": datasets.Value("int64"),
            "bin": datasets.ClassLabel(names=np.unique(binned).tolist()),
        }
    )
    rows = datasets.Dataset.from_dict(
        {"__idx__": list(range(len(values))), "bin": binned.tolist()}, features=features
    )
    try:
        picked = rows.train_test_split(test_size=n_samples, seed=seed, stratify_by_column="bin")[
            "test"
        ]
    except ValueError as e:
        raise TaskTypeError(
            f"task {meta.name!r}: mteb's stratified subsampling of the train split to {n_samples} rows "
            f"fails on this data ({e}); mteb fails too: give more rows per target quantile"
        ) from e
    return [int(i) for i in picked["__idx__"]]


def regression_scores(y_true: list[Any], y_pred: np.ndarray) -> dict[str, Any]:
    """mteb's ``AbsTaskRegression._calculate_scores``, same calls and key order."""
    mse = mean_squared_error(y_true, y_pred)
    return {
        "mse": mse,
        "mae": mean_absolute_error(y_true, y_pred),
        "r2": r2_score(y_true, y_pred),
        "kendalltau": kendalltau(y_true, y_pred).statistic,
        "rmse": np.sqrt(mse),
    }


def _average(per_experiment: list[dict[str, Any]]) -> dict[str, Any]:
    """mteb's inherited ``_calculate_avg_scores``: ``scores_per_experiment`` first, then the mean
    of each key over its non-None values (NaN propagates, as in ``np.mean``)."""
    out: dict[str, Any] = {"scores_per_experiment": per_experiment}
    for key in per_experiment[0]:
        values = [s[key] for s in per_experiment if s[key] is not None]
        out[key] = float(np.mean(values)) if values else np.nan
    return out


def _rows(meta: TaskMetadata, raw: Mapping[str, Any], split: str) -> tuple[list[str], list[Any]]:
    rows = split_rows(meta, raw, split)
    return column(meta, rows, "text", f"split {split!r}"), column(
        meta, rows, "value", f"split {split!r}"
    )


class Regression(RowType):
    name = "Regression"
    columns = {"text": "str", "value": "number"}

    def required_splits(self, meta: TaskMetadata) -> tuple[str, ...]:
        return training_splits(meta)

    def prepare(
        self, meta: TaskMetadata, raw: Mapping[str, Any], split: str, subset: str
    ) -> RegressionPrepared:
        train_split = param(meta, "train_split", "train")
        train_texts, train_values = _rows(meta, raw, train_split)
        n_samples = param(meta, "n_samples", 2048)
        if param(meta, "is_cross_validation", False):
            return self._prepare_cross_validation(
                meta, split, train_split, train_texts, train_values, n_samples
            )
        eval_texts, eval_values = _rows(meta, raw, split)
        experiments = [
            subsample_rows(meta, train_values, n_samples, SEED + i)
            for i in range(param(meta, "n_experiments", 10))
        ]
        train_rows = np.asarray(sorted(set().union(*experiments)), dtype=np.int64)
        return RegressionPrepared(
            train_texts=[train_texts[i] for i in train_rows],
            train_rows=train_rows,
            train_values=train_values,
            experiments=experiments,
            eval_texts=eval_texts,
            eval_values=eval_values,
        )

    @staticmethod
    def _prepare_cross_validation(
        meta: TaskMetadata,
        split: str,
        train_split: str,
        texts: list[str],
        values: list[Any],
        n_samples: int,
    ) -> RegressionPrepared:
        if split != train_split:
            raise TaskTypeError(
                f"task {meta.name!r}: cross-validation runs on the train split {train_split!r}, "
                f"not {split!r}; set is_cross_validation=False or evaluate {train_split!r}"
            )
        splitter = KFold(n_splits=param(meta, "n_splits", 5), shuffle=True, random_state=SEED)
        folds = [(np.asarray(t), np.asarray(v)) for t, v in splitter.split(range(len(texts)))]
        experiments = [
            subsample_rows(meta, [values[j] for j in train_idx], n_samples, SEED + i)
            for i, (train_idx, _) in enumerate(folds)
        ]
        return RegressionPrepared(
            train_texts=texts,
            train_rows=np.arange(len(texts), dtype=np.int64),
            train_values=values,
            experiments=experiments,
            eval_texts=[],
            eval_values=values,
            folds=folds,
        )

    def requests(self, prepared: RegressionPrepared) -> dict[str, TextRequest]:
        out = {"train": TextRequest(prepared.train_texts)}
        if prepared.folds is None:
            out["eval"] = TextRequest(prepared.eval_texts)
        return out

    def score(
        self, meta: TaskMetadata, prepared: RegressionPrepared, embeddings: Mapping[str, Any]
    ) -> dict:
        """Per experiment: ``LinearRegression()`` fitted on that experiment's rows (in mteb's
        order), predictions on the evaluated rows, mteb's five metrics; then
        ``scores_per_experiment`` and the mean of each metric."""
        train = embedding(meta, embeddings, "train", len(prepared.train_rows))
        if prepared.folds is None:
            x_eval = embedding(meta, embeddings, "eval", len(prepared.eval_texts))
        position = {int(row): pos for pos, row in enumerate(prepared.train_rows)}
        per_experiment = []
        for i, selected in enumerate(prepared.experiments):
            if prepared.folds is None:
                rows = [position[j] for j in selected]
                y_train = [prepared.train_values[j] for j in selected]
                x_test, y_test = x_eval, prepared.eval_values
            else:
                train_idx, val_idx = prepared.folds[i]
                rows = train_idx[selected]
                y_train = [prepared.train_values[j] for j in rows]
                x_test, y_test = train[val_idx], [prepared.eval_values[j] for j in val_idx]
            model = LinearRegression()
            model.fit(train[rows], y_train)
            per_experiment.append(regression_scores(y_test, model.predict(x_test)))
        return _average(per_experiment)
