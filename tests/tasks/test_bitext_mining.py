"""BitextMining task type: nearest neighbour and sklearn's weighted metrics, hand-computed."""

import numpy as np
import pytest
from datasets import Dataset

from fastmteb.tasks.base import TaskMetadata
from fastmteb.tasks.types import get_task_type


def _meta(**params):
    return TaskMetadata(name="Tiny", type="BitextMining", hf_path="x", hf_revision="0", main_score="f1", params=params)


VECTORS = {"x0": [1, 0, 0], "x1": [0.9, 0.1, 0], "x2": [0, 0, 1], "y0": [1, 0, 0], "y1": [0, 1, 0], "y2": [0, 0, 1]}


def _score(meta, rows, subset="default"):
    tt = get_task_type("BitextMining")
    prepared = tt.prepare(meta, {"test": Dataset.from_list(rows)}, "test", subset)
    requests = tt.requests(prepared)
    embeddings = {n: np.asarray([VECTORS[t] for t in r.texts], dtype=np.float32) for n, r in requests.items()}
    return tt.score(meta, prepared, embeddings)


def test_one_wrong_match_hand_computed():
    # predictions 0, 0, 2 against gold 0, 1, 2
    out = _score(_meta(), [{"sentence1": f"x{i}", "sentence2": f"y{i}"} for i in range(3)])
    assert list(out) == ["precision", "recall", "f1", "accuracy"]
    assert out["accuracy"] == pytest.approx(2 / 3) and out["recall"] == pytest.approx(2 / 3)
    assert out["precision"] == pytest.approx((0.5 + 0 + 1) / 3)  # label 0: 1 of 2 predicted correct
    assert out["f1"] == pytest.approx((2 / 3 + 0 + 1) / 3)


def test_parallel_subsets_read_the_language_columns():
    rows = [{"fra": f"x{i}", "eng": f"y{i}"} for i in range(3)]
    out = _score(_meta(parallel_subsets=True), rows, subset="fra-eng")
    assert out["accuracy"] == pytest.approx(2 / 3)
