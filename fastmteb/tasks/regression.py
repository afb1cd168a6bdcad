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

from typing import Any

import numpy as np
from scipy.stats import kendalltau
from sklearn.linear_model import LinearRegression
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

from fastmteb.tasks._common import SEED, TaskTypeError, param
from fastmteb.tasks._supervised import SupervisedProbe
from fastmteb.tasks.base import TaskMetadata

N_BINS = 10  # mteb's stratified_subsampling default


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


class Regression(SupervisedProbe):
    """``LinearRegression()`` per experiment on ``n_samples`` stratified rows; mteb's five metrics."""

    name = "Regression"
    columns = {"text": "str", "value": "number"}
    target_column = "value"
    mteb_abstasks = ("AbsTaskRegression",)
    mteb_model = ("LinearRegression", {})
    mteb_columns = {"text": ("input_column_name", "text"), "value": ("label_column_name", "value")}
    mteb_sample_size = "n_samples"

    def sample_experiments(self, meta: TaskMetadata, targets: list[list[Any]]) -> list[list[int]]:
        # each experiment (or fold) draws with its own seed: no random stream is shared
        n_samples = param(meta, "n_samples", 2048)
        return [subsample_rows(meta, values, n_samples, SEED + i) for i, values in enumerate(targets)]

    def fit_predict(self, meta: TaskMetadata, x_train: np.ndarray, y_train: list[Any], x_test: np.ndarray) -> Any:
        model = LinearRegression()
        model.fit(x_train, y_train)
        return model.predict(x_test)

    def metrics(self, y_true: list[Any], y_pred: Any) -> dict[str, Any]:
        return regression_scores(y_true, y_pred)
