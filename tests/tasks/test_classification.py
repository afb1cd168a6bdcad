"""Classification / MultilabelClassification task types: sampling and scoring on tiny separable data."""

import math

import numpy as np
from datasets import Dataset

from fastmteb.tasks.base import TaskMetadata
from fastmteb.tasks.classification import _hamming, undersample
from fastmteb.tasks.types import get_task_type


def _meta(type_name="Classification", **params):
    return TaskMetadata(name="Tiny", type=type_name, hf_path="x", hf_revision="0", main_score="accuracy", params=params)


def _run(meta, raw, embed):
    tt = get_task_type(meta.type)
    prepared = tt.prepare(meta, raw, "test", "default")
    requests = tt.requests(prepared)
    embeddings = {name: np.asarray([embed(t) for t in r.texts], dtype=np.float32) for name, r in requests.items()}
    return tt, prepared, requests, embeddings, tt.score(meta, prepared, embeddings)


def _separable(text):  # "label:i" -> a point near the label's axis
    label, i = text.split(":")
    vector = np.zeros(4)
    vector[int(label)] = 1.0
    vector[3] = 0.01 * int(i)
    return vector


def test_undersample_reshuffles_the_carried_over_order_with_the_same_seed():
    labels = [0, 1] * 10
    first, order0 = undersample(labels, 2, None)
    second, order1 = undersample(labels, 2, list(order0))
    permutation = np.random.RandomState(42).permutation(20)
    assert order0 == permutation.tolist()
    assert order1 == [order0[j] for j in permutation]  # same swaps applied again
    assert first == [i for i in order0 if sum(labels[j] == labels[i] for j in order0[: order0.index(i)]) < 2]
    assert len(second) == 4 and sorted(labels[i] for i in second) == [0, 0, 1, 1]


def test_binary_separable_scores_and_keys():
    rows = lambda n: [{"text": f"{i % 2}:{i}", "label": i % 2} for i in range(n)]  # noqa: E731
    raw = {"train": Dataset.from_list(rows(40)), "test": Dataset.from_list(rows(10))}
    meta = _meta(samples_per_label=3, n_experiments=4)
    _, prepared, requests, _, out = _run(meta, raw, _separable)
    assert list(out) == ["scores_per_experiment", "accuracy", "f1", "f1_weighted", "precision",
                         "precision_weighted", "recall", "recall_weighted", "ap", "ap_weighted"]
    assert out["accuracy"] == 1.0 and out["ap"] == 1.0 and len(out["scores_per_experiment"]) == 4
    union = sorted(set().union(*prepared.experiments))
    assert requests["train"].texts == [f"{i % 2}:{i}" for i in union] and requests["train"].prompt_type is None
    assert requests["eval"].texts == [r["text"] for r in rows(10)]


def test_multiclass_ap_is_nan_and_none_per_experiment():
    rows = lambda n: [{"text": f"{i % 3}:{i}", "label": i % 3} for i in range(n)]  # noqa: E731
    raw = {"train": Dataset.from_list(rows(30)), "test": Dataset.from_list(rows(9))}
    tt, prepared, _, embeddings, out = _run(_meta(samples_per_label=2, n_experiments=2), raw, _separable)
    assert math.isnan(out["ap"]) and math.isnan(out["ap_weighted"])
    assert all(s["ap"] is None for s in out["scores_per_experiment"])
    again = tt.score(_meta(samples_per_label=2, n_experiments=2), prepared, embeddings)
    assert again["scores_per_experiment"] == out["scores_per_experiment"]  # deterministic


def test_multilabel_separable_and_hamming():
    def rows(n):
        return [{"text": f"{i % 3}:{i}", "label": [i % 3] + ([2] if i % 3 == 0 else [])} for i in range(n)]
    raw = {"train": Dataset.from_list(rows(30)), "test": Dataset.from_list(rows(9))}
    _, _, requests, _, out = _run(_meta("MultilabelClassification", samples_per_label=5, n_experiments=2), raw, _separable)
    assert list(out) == ["scores_per_experiment", "accuracy", "lrap", "f1", "hamming"]
    assert out["accuracy"] == 1.0 and out["hamming"] == 1.0
    # hamming: |true & pred| / |true | pred| per row, 1 when both are empty
    assert _hamming(np.array([[1, 0, 1], [0, 0, 0]]), np.array([[1, 1, 0], [0, 0, 0]])) == (1 / 3 + 1) / 2
