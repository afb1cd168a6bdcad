"""Clustering task type: fast (v2) and legacy, on perfectly separated clusters."""

import random

import numpy as np
from datasets import Dataset

from fastmteb.tasks.base import TaskMetadata
from fastmteb.tasks.types import get_task_type


def _meta(**params):
    return TaskMetadata(name="Tiny", type="Clustering", hf_path="x", hf_revision="0", main_score="v_measure", params=params)


def _vector(text):  # "c<k>-<i>": cluster k on its own axis
    k = int(text[1 : text.index("-")])
    vector = np.zeros(8, dtype=np.float32)
    vector[k] = 10.0
    vector[7] = 0.001 * int(text.split("-")[1])
    return vector


def _run(meta, raw):
    tt = get_task_type("Clustering")
    prepared = tt.prepare(meta, raw, "test", "default")
    texts = tt.requests(prepared)["sentences"].texts
    embeddings = {"sentences": np.stack([_vector(t) for t in texts]) if texts else np.zeros((0, 8), np.float32)}
    return tt, prepared, texts, embeddings, tt.score(meta, prepared, embeddings)


def test_fast_separable_clusters_score_one_and_sample_like_mteb():
    rows = [{"sentences": f"c{i % 3}-{i}", "labels": i % 3} for i in range(200)]
    meta = _meta(max_fraction_of_documents_to_embed=0.25, max_documents_per_cluster=64, n_clusters=3)
    tt, prepared, texts, embeddings, out = _run(meta, {"test": Dataset.from_list(rows)})
    expected = random.Random(42).sample(range(200), k=50)  # int(0.25 * 200) documents, in sample order
    assert texts == [rows[i]["sentences"] for i in expected]
    assert list(out) == ["v_measures", "v_measure", "v_measure_std", "ami_scores", "ami", "ami_std"]
    assert out["v_measures"] == {"Level 0": [1.0, 1.0, 1.0]} and out["v_measure"] == 1.0 and out["v_measure_std"] == 0.0
    assert tt.score(meta, prepared, embeddings) == out  # the bootstrap stream restarts from the stored state


def test_fast_hierarchy_keeps_string_minus_one_as_mteb_does():
    # level 1 is missing for some rows; with string labels numpy turns -1 into "-1", which mteb's
    # "!= -1" filter does not drop, so "-1" is one more class at level 1
    rows = [{"sentences": f"c{i % 2}-{i}", "labels": [f"t{i % 2}"] + ([f"s{i % 2}"] if i % 4 < 2 else [])} for i in range(40)]
    meta = _meta(max_fraction_of_documents_to_embed=None, max_documents_per_cluster=32, n_clusters=2)
    _, prepared, _, _, out = _run(meta, {"test": Dataset.from_list(rows)})
    rows_level1, labels_level1 = prepared.levels[1]
    assert len(rows_level1) == 40 and set(labels_level1.tolist()) == {"s0", "s1", "-1"}
    assert list(out["v_measures"]) == ["Level 0", "Level 1"] and out["v_measures"]["Level 0"] == [1.0, 1.0]
    # integer labels: the missing level is dropped
    int_rows = [{"sentences": r["sentences"], "labels": [i % 2] + ([5] if i % 4 < 2 else [])} for i, r in enumerate(rows)]
    _, int_prepared, _, _, _ = _run(meta, {"test": Dataset.from_list(int_rows)})
    assert len(int_prepared.levels[1][0]) == 20


def test_legacy_sets_single_label_set_scores_one_without_encoding():
    sets = [
        {"sentences": [f"c{i % 2}-{i}" for i in range(10)], "labels": [i % 2 for i in range(10)]},
        {"sentences": ["c0-1", "c0-2"], "labels": [3, 3]},
        {"sentences": [f"c{i % 3}-{i}" for i in range(12)], "labels": [i % 3 for i in range(12)]},
    ]
    _, _, texts, _, out = _run(_meta(clustering="legacy"), {"test": Dataset.from_list(sets)})
    assert len(texts) == 22  # the single-label set is not encoded
    assert list(out) == ["v_measure", "v_measure_std", "v_measures"]
    assert out["v_measures"] == [1.0, 1.0, 1.0] and out["v_measure"] == 1.0
