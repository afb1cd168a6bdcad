"""Classification and MultilabelClassification (mteb ``AbsTaskClassification`` /
``AbsTaskMultilabelClassification``): a classifier fitted on a few embedded train rows per label.

Params (mteb names/defaults): ``train_split`` ("train"), ``samples_per_label`` (8),
``n_experiments`` (10), ``is_cross_validation`` (False; 5-fold ``n_splits``), multilabel:
``max_eval_samples`` (3000).
Requests: ``train`` — the union of every experiment's sampled train rows, in ascending row order —
and ``eval`` — the evaluated split (multilabel: after its stratified subsample). Cross-validation
requests ``train`` only (the whole split).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Mapping

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    f1_score,
    label_ranking_average_precision_score,
    precision_score,
    recall_score,
)
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import MultiLabelBinarizer

from fastmteb.tasks._common import SEED, TaskTypeError, embedding, param
from fastmteb.tasks._supervised import (
    ProbePrepared,
    SupervisedProbe,
    average_experiments,
)
from fastmteb.tasks.base import TaskMetadata


def undersample(labels: list[Any], samples_per_label: int, idxs: list[int] | None) -> tuple[list[int], list[int]]:
    """mteb's ``_undersample_data``: a fresh ``RandomState(42)`` shuffles the carried-over order,
    then the first ``samples_per_label`` rows of each label are kept in walk order.

    Returns ``(selected rows, shuffled order)``; pass the order back in for the next experiment.
    """
    if idxs is None:
        idxs = list(range(len(labels)))
    np.random.RandomState(SEED).shuffle(idxs)
    counts: dict[Any, int] = defaultdict(int)
    selected = []
    for i in idxs:
        if counts[labels[i]] < samples_per_label:
            selected.append(i)
            counts[labels[i]] += 1
    return selected, idxs


def _check_binary_labels(meta: TaskMetadata, labels: list[Any]) -> None:
    """mteb scores binary tasks with sklearn's ``average_precision_score`` (pos_label=1), which fails
    deep inside sklearn unless 1 is one of the two labels: say so before anything is encoded."""
    distinct = set(labels)
    if len(distinct) == 2 and 1 not in distinct:
        raise TaskTypeError(
            f"task {meta.name!r}: the binary field 'label' has values {sorted(map(repr, distinct))}; "
            "mteb's average precision needs the positive class to be 1: map the labels to 0/1 integers"
        )


def classification_scores(y_true: list[Any], y_pred: np.ndarray) -> dict[str, Any]:
    """mteb's ``_calculate_scores``: sklearn metrics on hard predictions; ``ap`` only when binary."""
    scores: dict[str, Any] = {
        "accuracy": accuracy_score(y_true, y_pred),
        "f1": f1_score(y_true, y_pred, average="macro"),
        "f1_weighted": f1_score(y_true, y_pred, average="weighted"),
        "precision": precision_score(y_true, y_pred, average="macro"),
        "precision_weighted": precision_score(y_true, y_pred, average="weighted"),
        "recall": recall_score(y_true, y_pred, average="macro"),
        "recall_weighted": recall_score(y_true, y_pred, average="weighted"),
        "ap": None,
        "ap_weighted": None,
    }
    if len(np.unique(y_true)) == 2:
        scores["ap"] = average_precision_score(y_true, y_pred, average="macro")
        scores["ap_weighted"] = average_precision_score(y_true, y_pred, average="weighted")
    return scores


class Classification(SupervisedProbe):
    """``LogisticRegression(max_iter=100, random_state=42)`` on ``samples_per_label`` rows per
    label; sklearn metrics on hard predictions (``ap`` NaN unless binary)."""

    name = "Classification"
    columns = {"text": "str", "label": "label"}
    target_column = "label"
    mteb_abstasks = ("AbsTaskClassification",)
    mteb_model = ("LogisticRegression", {"max_iter": 100})
    mteb_columns = {"text": ("input_column_name", "text"), "label": ("label_column_name", "label")}

    def sample_experiments(self, meta: TaskMetadata, targets: list[list[Any]]) -> list[list[int]]:
        # mteb carries the shuffled order from one experiment (or fold) to the next unchanged
        samples_per_label = param(meta, "samples_per_label", 8)
        experiments, order = [], None
        for labels in targets:
            selected, order = undersample(labels, samples_per_label, order)
            experiments.append(selected)
        return experiments

    def check_eval_targets(self, meta: TaskMetadata, targets: list[Any]) -> None:
        _check_binary_labels(meta, targets)

    def fit_predict(self, meta: TaskMetadata, x_train: np.ndarray, y_train: list[Any], x_test: np.ndarray) -> Any:
        classifier = LogisticRegression(max_iter=100, random_state=SEED)
        classifier.fit(x_train, y_train)
        return classifier.predict(x_test)

    def metrics(self, y_true: list[Any], y_pred: Any) -> dict[str, Any]:
        return classification_scores(y_true, y_pred)


class MultilabelClassification(SupervisedProbe):
    """k-NN on binarised label sets (mteb's own loop: one stateful sampler, no cross-validation)."""

    columns = {"text": "str", "label": "list"}
    name = "MultilabelClassification"
    target_column = "label"
    mteb_abstasks = ("AbsTaskMultilabelClassification",)
    mteb_model = ("KNeighborsClassifier", {"n_neighbors": 5})
    mteb_columns = Classification.mteb_columns

    def mteb_params(self, task: Any) -> dict[str, Any]:
        p = super().mteb_params(task)
        if task.max_eval_samples != 3000:  # mteb's default
            p["max_eval_samples"] = task.max_eval_samples
        return p

    def prepare(self, meta: TaskMetadata, raw: Mapping[str, Any], split: str, subset: str) -> ProbePrepared:
        """Train rows per experiment drawn with one stateful ``default_rng(42)`` (a fresh one per
        prepare, i.e. per subset: mteb continues one stream across a task's subsets)."""
        train_texts, train_labels = self._rows(meta, raw, param(meta, "train_split", "train"))
        eval_texts, eval_labels = self._rows(meta, raw, split)
        samples_per_label = param(meta, "samples_per_label", 8)
        rng = np.random.default_rng(SEED)
        experiments = []
        for _ in range(param(meta, "n_experiments", 10)):
            idxs = list(np.arange(len(train_labels)))
            rng.shuffle(idxs)
            counts: dict[Any, int] = defaultdict(int)
            selected = []
            for i in idxs:
                if any(counts[label] < samples_per_label for label in train_labels[i]):
                    selected.append(int(i))
                    for label in train_labels[i]:
                        counts[label] += 1
            experiments.append(selected)
        max_eval = param(meta, "max_eval_samples", 3000)
        if max_eval is not None and len(eval_texts) > max_eval:
            keep = _multilabel_subsample(eval_labels, max_eval)
            eval_texts = [eval_texts[i] for i in keep]
            eval_labels = [eval_labels[i] for i in keep]
        return ProbePrepared.from_experiments(
            train_texts, train_labels, experiments, eval_texts, eval_labels
        )

    def score(self, meta: TaskMetadata, prepared: ProbePrepared, embeddings: Mapping[str, Any]) -> dict:
        """Per experiment: ``KNeighborsClassifier(5)`` on binarised labels (binariser fitted on the
        eval labels); ``accuracy`` = exact-match ``score``, ``lrap`` on hard predictions, macro
        ``f1``, ``hamming`` = mean |true ∧ pred| / |true ∨ pred| (1 when both empty)."""
        train = embedding(meta, embeddings, "train", len(prepared.train_rows))
        x_eval = embedding(meta, embeddings, "eval", len(prepared.eval_texts))
        position = {int(row): pos for pos, row in enumerate(prepared.train_rows)}
        binarizer = MultiLabelBinarizer()
        y_eval = binarizer.fit_transform(prepared.eval_targets)
        per_experiment = []
        for selected in prepared.experiments:
            classifier = KNeighborsClassifier(n_neighbors=5)
            classifier.fit(
                train[[position[j] for j in selected]],
                binarizer.transform([prepared.train_targets[j] for j in selected]),
            )
            y_pred = classifier.predict(x_eval)
            per_experiment.append(
                {
                    "accuracy": classifier.score(x_eval, y_eval),
                    "lrap": label_ranking_average_precision_score(y_eval, y_pred),
                    "f1": f1_score(y_eval, y_pred, average="macro"),
                    "hamming": _hamming(y_eval, y_pred),
                }
            )
        return average_experiments(per_experiment, skip_none=False)


def _hamming(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    true, pred = np.asarray(y_true).astype(bool), np.asarray(y_pred).astype(bool)
    union = (true | pred).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.where(union == 0, 1.0, (true & pred).sum(axis=1) / union).mean())


def _multilabel_subsample(labels: list[list[Any]], n_samples: int) -> np.ndarray:
    """Rows kept by mteb's iterative stratified multilabel subsample (``random_state=42``)."""
    from fastmteb.tasks._stratification import iterative_train_test_split

    x = np.arange(len(labels)).reshape((-1, 1))
    y = MultiLabelBinarizer().fit_transform(labels)
    _, test_idx = iterative_train_test_split(x, y, test_size=n_samples / len(labels), random_state=SEED)
    return np.asarray(test_idx).reshape(-1)
