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
from dataclasses import dataclass
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
from sklearn.model_selection import KFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import MultiLabelBinarizer

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


@dataclass(frozen=True)
class ClassificationPrepared:
    train_texts: list[str]  # texts of ``train_rows`` (the request)
    train_rows: np.ndarray  # int64, ascending: rows of the train split that are encoded
    train_labels: list[Any]  # labels of the whole train split
    experiments: list[list[int]]  # per experiment: train-split rows in sampling order
    eval_texts: list[str]
    eval_labels: list[Any]
    folds: list[tuple[np.ndarray, np.ndarray]] | None = None  # cross-validation (train, val) rows


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


def _union_of_experiments(experiments: list[list[int]]) -> np.ndarray:
    """Train rows any experiment uses, ascending: mteb encodes exactly these, once."""
    return np.asarray(sorted(set().union(*experiments)), dtype=np.int64)


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


def _average(per_experiment: list[dict[str, Any]], *, skip_none: bool) -> dict[str, Any]:
    """``scores_per_experiment`` first, then the mean of each key (NaN when every value is None)."""
    out: dict[str, Any] = {"scores_per_experiment": per_experiment}
    for key in per_experiment[0]:
        values = [s[key] for s in per_experiment if not skip_none or s[key] is not None]
        if skip_none:
            out[key] = float(np.mean(values)) if values else np.nan
        else:
            out[key] = np.mean(values)
    return out


def _rows(meta: TaskMetadata, raw: Mapping[str, Any], split: str) -> tuple[list[str], list[Any]]:
    rows = split_rows(meta, raw, split)
    return column(meta, rows, "text", f"split {split!r}"), column(meta, rows, "label", f"split {split!r}")


class Classification(RowType):
    columns = {"text": "str", "label": "label"}

    name = "Classification"

    def required_splits(self, meta: TaskMetadata) -> tuple[str, ...]:
        return training_splits(meta)

    def prepare(
        self, meta: TaskMetadata, raw: Mapping[str, Any], split: str, subset: str
    ) -> ClassificationPrepared:
        train_split = param(meta, "train_split", "train")
        train_texts, train_labels = _rows(meta, raw, train_split)
        samples_per_label = param(meta, "samples_per_label", 8)
        if param(meta, "is_cross_validation", False):
            return self._prepare_cross_validation(meta, split, train_split, train_texts, train_labels)
        eval_texts, eval_labels = _rows(meta, raw, split)
        _check_binary_labels(meta, eval_labels)
        experiments, order = [], None
        for _ in range(param(meta, "n_experiments", 10)):
            selected, order = undersample(train_labels, samples_per_label, order)
            experiments.append(selected)
        train_rows = _union_of_experiments(experiments)
        return ClassificationPrepared(
            train_texts=[train_texts[i] for i in train_rows],
            train_rows=train_rows,
            train_labels=train_labels,
            experiments=experiments,
            eval_texts=eval_texts,
            eval_labels=eval_labels,
        )

    @staticmethod
    def _prepare_cross_validation(
        meta: TaskMetadata, split: str, train_split: str, texts: list[str], labels: list[Any]
    ) -> ClassificationPrepared:
        if split != train_split:
            raise TaskTypeError(
                f"task {meta.name!r}: cross-validation runs on the train split {train_split!r}, "
                f"not {split!r}; set is_cross_validation=False or evaluate {train_split!r}"
            )
        splitter = KFold(n_splits=param(meta, "n_splits", 5), shuffle=True, random_state=SEED)
        folds = [(np.asarray(t), np.asarray(v)) for t, v in splitter.split(range(len(texts)))]
        experiments, order = [], None
        samples_per_label = param(meta, "samples_per_label", 8)
        for train_idx, _ in folds:
            # mteb carries the shuffled order over folds of (slightly) different sizes unchanged
            selected, order = undersample([labels[i] for i in train_idx], samples_per_label, order)
            experiments.append(selected)
        return ClassificationPrepared(
            train_texts=texts,
            train_rows=np.arange(len(texts), dtype=np.int64),
            train_labels=labels,
            experiments=experiments,
            eval_texts=[],
            eval_labels=labels,
            folds=folds,
        )

    def requests(self, prepared: ClassificationPrepared) -> dict[str, TextRequest]:
        out = {"train": TextRequest(prepared.train_texts)}
        if prepared.folds is None:
            out["eval"] = TextRequest(prepared.eval_texts)
        return out

    def score(self, meta: TaskMetadata, prepared: ClassificationPrepared, embeddings: Mapping[str, Any]) -> dict:
        """Per experiment: ``LogisticRegression(max_iter=100, random_state=42)`` fitted on that
        experiment's rows (in sampling order), hard predictions on the eval split, sklearn metrics;
        then ``scores_per_experiment`` and the mean of each metric (``ap`` NaN unless binary)."""
        train = embedding(meta, embeddings, "train", len(prepared.train_rows))
        position = {int(row): pos for pos, row in enumerate(prepared.train_rows)}
        per_experiment = []
        for i, selected in enumerate(prepared.experiments):
            if prepared.folds is None:
                rows = [position[j] for j in selected]
                x_eval, y_eval = embedding(meta, embeddings, "eval", len(prepared.eval_texts)), prepared.eval_labels
                y_train = [prepared.train_labels[j] for j in selected]
            else:
                train_idx, val_idx = prepared.folds[i]
                rows = train_idx[selected]
                x_eval, y_eval = train[val_idx], [prepared.eval_labels[j] for j in val_idx]
                y_train = [prepared.train_labels[j] for j in rows]
            classifier = LogisticRegression(max_iter=100, random_state=SEED)
            classifier.fit(train[rows], y_train)
            per_experiment.append(classification_scores(y_eval, classifier.predict(x_eval)))
        return _average(per_experiment, skip_none=True)


@dataclass(frozen=True)
class MultilabelPrepared:
    train_texts: list[str]
    train_rows: np.ndarray  # int64 ascending
    train_labels: list[list[Any]]
    experiments: list[list[int]]
    eval_texts: list[str]
    eval_labels: list[list[Any]]


class MultilabelClassification(RowType):
    columns = {"text": "str", "label": "list"}
    name = "MultilabelClassification"

    def prepare(self, meta: TaskMetadata, raw: Mapping[str, Any], split: str, subset: str) -> MultilabelPrepared:
        """Train rows per experiment drawn with one stateful ``default_rng(42)`` (a fresh one per
        prepare, i.e. per subset: mteb continues one stream across a task's subsets)."""
        train_texts, train_labels = _rows(meta, raw, param(meta, "train_split", "train"))
        eval_texts, eval_labels = _rows(meta, raw, split)
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
        train_rows = _union_of_experiments(experiments)
        return MultilabelPrepared(
            train_texts=[train_texts[i] for i in train_rows],
            train_rows=train_rows,
            train_labels=train_labels,
            experiments=experiments,
            eval_texts=eval_texts,
            eval_labels=eval_labels,
        )

    def requests(self, prepared: MultilabelPrepared) -> dict[str, TextRequest]:
        return {"train": TextRequest(prepared.train_texts), "eval": TextRequest(prepared.eval_texts)}

    def score(self, meta: TaskMetadata, prepared: MultilabelPrepared, embeddings: Mapping[str, Any]) -> dict:
        """Per experiment: ``KNeighborsClassifier(5)`` on binarised labels (binariser fitted on the
        eval labels); ``accuracy`` = exact-match ``score``, ``lrap`` on hard predictions, macro
        ``f1``, ``hamming`` = mean |true ∧ pred| / |true ∨ pred| (1 when both empty)."""
        train = embedding(meta, embeddings, "train", len(prepared.train_rows))
        x_eval = embedding(meta, embeddings, "eval", len(prepared.eval_texts))
        position = {int(row): pos for pos, row in enumerate(prepared.train_rows)}
        binarizer = MultiLabelBinarizer()
        y_eval = binarizer.fit_transform(prepared.eval_labels)
        per_experiment = []
        for selected in prepared.experiments:
            classifier = KNeighborsClassifier(n_neighbors=5)
            classifier.fit(
                train[[position[j] for j in selected]],
                binarizer.transform([prepared.train_labels[j] for j in selected]),
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
        return _average(per_experiment, skip_none=False)


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
