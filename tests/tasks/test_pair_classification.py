"""PairClassification task type: hand-checked sweeps over the five score vectors."""

import numpy as np
from datasets import Dataset

from fastmteb.tasks._common import paired_scores
from fastmteb.tasks.base import TaskMetadata
from fastmteb.tasks.types import get_task_type

META = TaskMetadata(name="Tiny", type="PairClassification", hf_path="x", hf_revision="0", main_score="max_ap")
VECTORS = {"a": [1, 0], "a2": [2, 0.2], "b": [0, 1], "c": [0.6, 0.8], "d": [-1, 0]}


def _run(raw):
    tt = get_task_type("PairClassification")
    prepared = tt.prepare(META, raw, "test", "default")
    requests = tt.requests(prepared)
    embeddings = {n: np.asarray([VECTORS[t] for t in r.texts], dtype=np.float32) for n, r in requests.items()}
    return tt, prepared, embeddings, tt.score(META, prepared, embeddings)


ROWS = [("a", "a2", 1), ("a", "c", 1), ("a", "b", 0), ("a", "d", 0)]


def test_pairs_separated_by_cosine_and_keys():
    raw = {"test": Dataset.from_list([{"sentence1": s1, "sentence2": s2, "labels": y} for s1, s2, y in ROWS])}
    tt, prepared, embeddings, out = _run(raw)
    names = ("similarity", "cosine", "manhattan", "euclidean", "dot")
    assert list(out) == [f"{n}_{m}" for n in names for m in ("accuracy", "f1", "precision", "recall", "ap")] + [
        f"max_{m}" for m in ("accuracy", "f1", "precision", "recall", "ap")]
    assert out["cosine_accuracy"] == 1.0 and out["cosine_ap"] == 1.0 and out["cosine_f1"] == 1.0
    # manhattan distances 1.2, 1.2, 2, 2: lower = similar, so the two positives come first
    assert out["manhattan_ap"] == 1.0 and out["manhattan_accuracy"] == 1.0
    # dot 2, 0.6, 0, -1: separable too
    assert out["dot_ap"] == 1.0
    assert out["max_ap"] == 1.0
    assert tt.score(META, prepared, embeddings) == out


def test_legacy_single_row_of_lists_is_unpacked():
    s1, s2, y = (list(x) for x in zip(*ROWS))
    raw = {"test": Dataset.from_list([{"sentence1": s1, "sentence2": s2, "labels": y}])}
    _, prepared, _, out = _run(raw)
    assert prepared.sentence1 == s1 and prepared.labels.tolist() == y and out["cosine_ap"] == 1.0


def test_paired_scores_definitions():
    e1 = np.asarray([[3, 4], [1, 0]], dtype=np.float32)
    e2 = np.asarray([[4, 3], [0, 2]], dtype=np.float32)
    scores = paired_scores(e1, e2)
    assert list(scores) == ["similarity", "cosine", "manhattan", "euclidean", "dot"]
    np.testing.assert_allclose(scores["cosine"], [24 / 25, 0.0], atol=1e-6)
    np.testing.assert_allclose(scores["similarity"], [24 / 25, 0.0], atol=1e-6)
    np.testing.assert_allclose(scores["manhattan"], [2, 3])
    np.testing.assert_allclose(scores["euclidean"], [2 ** 0.5, 5 ** 0.5], rtol=1e-6)
    np.testing.assert_allclose(scores["dot"], [24, 0])
    assert all(v.dtype == np.float32 for v in scores.values())
