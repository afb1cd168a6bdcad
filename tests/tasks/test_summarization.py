"""Summarization task type: max over human summaries, skip rule, means over documents."""

import numpy as np
import pytest
from datasets import Dataset
from scipy.stats import spearmanr

from fastmteb.tasks.base import TaskMetadata
from fastmteb.tasks.types import get_task_type

META = TaskMetadata(name="Tiny", type="Summarization", hf_path="x", hf_revision="0", main_score="cosine_spearman",
                    params={"min_score": 0, "max_score": 5})
VECTORS = {"h1": [1, 0], "h2": [0, 1], "m_close": [1, 0.1], "m_mid": [1, 1], "m_far": [-1, 0.2], "m_same": [1, 0.1]}


def _run(rows):
    tt = get_task_type("Summarization")
    prepared = tt.prepare(META, {"test": Dataset.from_list(rows)}, "test", "default")
    requests = tt.requests(prepared)
    embeddings = {n: np.asarray([VECTORS[t] for t in r.texts], dtype=np.float32) for n, r in requests.items()}
    return prepared, tt.score(META, prepared, embeddings)


def test_skip_rule_and_max_over_human_summaries():
    kept = {"text": "doc", "human_summaries": ["h1", "h2"], "machine_summaries": ["m_close", "m_mid", "m_far"],
            "relevance": [5.0, 1.0, 3.0]}
    flat_gold = dict(kept, relevance=[2.0, 2.0, 2.0])  # all human scores equal: skipped
    same_pred = dict(kept, machine_summaries=["m_close", "m_same", "m_close"])  # all predictions equal: skipped
    prepared, out = _run([kept, flat_gold, same_pred])
    assert prepared.human == ["h1", "h2"] * 3 and prepared.gold[0] == [1.0, 0.2, 0.6]
    assert list(out) == ["pearson", "spearman", "cosine_spearman", "cosine_pearson", "dot_pearson", "dot_spearman"]
    # max cosine over h1/h2: m_close ~0.995, m_mid ~0.707, m_far ~0.196 -> ranks 3, 2, 1 vs gold 3, 1, 2
    assert out["cosine_spearman"] == pytest.approx(spearmanr([5, 1, 3], [3, 2, 1])[0])
    assert out["spearman"] == out["cosine_spearman"]
    # max dot: 1, 1, 0.2 -> tie between the first two
    assert out["dot_spearman"] == pytest.approx(spearmanr([5, 1, 3], [1, 1, 0.2])[0])
