"""STS task type: gold normalisation, negated distances, correlations, key order."""

import numpy as np
import pytest
from datasets import Dataset
from scipy.stats import pearsonr

from fastmteb.tasks.base import TaskMetadata
from fastmteb.tasks.types import TaskTypeError, get_task_type


def _meta(**params):
    return TaskMetadata(name="Tiny", type="STS", hf_path="x", hf_revision="0", main_score="cosine_spearman", params=params)


def test_monotone_cosine_gives_spearman_one():
    # sentence2 at angle 0, 30, 60, 90 degrees from sentence1; gold 5, 4, 2, 0
    angles = {"s0": 0, "s30": 30, "s60": 60, "s90": 90}
    rows = [{"sentence1": "base", "sentence2": k, "score": g} for k, g in zip(angles, (5, 4, 2, 0))]
    meta = _meta(min_score=0, max_score=5)
    tt = get_task_type("STS")
    prepared = tt.prepare(meta, {"test": Dataset.from_list(rows)}, "test", "default")
    assert prepared.gold == [1.0, 0.8, 0.4, 0.0]
    e1 = np.tile(np.float32([1, 0]), (4, 1))
    e2 = np.asarray([[np.cos(np.radians(a)), np.sin(np.radians(a))] for a in angles.values()], dtype=np.float32)
    out = tt.score(meta, prepared, {"sentence1": e1, "sentence2": e2})
    assert list(out) == ["pearson", "spearman", "cosine_pearson", "cosine_spearman", "manhattan_pearson",
                         "manhattan_spearman", "euclidean_pearson", "euclidean_spearman"]
    assert out["cosine_spearman"] == pytest.approx(1.0) and out["spearman"] == pytest.approx(1.0)
    assert out["euclidean_spearman"] == pytest.approx(1.0)  # negated distance: closer = higher
    cosines = np.cos(np.radians(list(angles.values())))
    assert out["cosine_pearson"] == pytest.approx(pearsonr([1.0, 0.8, 0.4, 0.0], cosines)[0], abs=1e-6)


def test_missing_embedding_is_a_clear_error():
    rows = [{"sentence1": "a", "sentence2": "b", "score": 1.0}, {"sentence1": "c", "sentence2": "d", "score": 2.0}]
    tt = get_task_type("STS")
    prepared = tt.prepare(_meta(), {"test": Dataset.from_list(rows)}, "test", "default")
    with pytest.raises(TaskTypeError, match="expected \\[2, dim\\]"):
        tt.score(_meta(), prepared, {"sentence1": np.ones((3, 2), np.float32), "sentence2": np.ones((2, 2), np.float32)})
    with pytest.raises(TaskTypeError, match="split 'dev' not in the loaded data"):
        tt.prepare(_meta(), {"test": Dataset.from_list(rows)}, "dev", "default")
