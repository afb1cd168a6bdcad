"""Level-1 parity, the mteb-evaluator fallback: tasks whose scoring fastmteb lacks (StakeholderGrounding's
own ``_evaluate_subset``) are scored by mteb's evaluator fed with fastmteb's embeddings.

Same data, same FakeEncoder vectors: ``mteb.evaluate`` with mteb's model object vs ``fastmteb.evaluate``
with a plain callable (fastmteb's encoding path: its text pool, token budget, dedup). Every key equal.
"""

import json
import logging
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import mteb_oracle as mo  # noqa: E402

mteb = pytest.importorskip("mteb")

from datasets import Dataset, DatasetDict  # noqa: E402

from fastmteb import runner  # noqa: E402
from fastmteb.fallback import SCORED_BY, mteb_fallback_task  # noqa: E402


def _stakeholder_task(seed: int = 0):
    from mteb.tasks.sts.dan.stakeholder_grounding import _arrangements_to_pairs

    rng = np.random.default_rng(seed)
    rows = {"round_id": [], "texts": [], "x": [], "y": []}
    for r in range(5):
        # texts shared between rounds and FakeEncoder's shared vectors give exact similarity ties
        texts = list(dict.fromkeys([mo.sentence(rng, (2, 5)) for _ in range(9)]))
        rows["round_id"].append(f"r{r}")
        rows["texts"].append(texts)
        rows["x"].append(rng.random(len(texts)).tolist())
        rows["y"].append(rng.random(len(texts)).tolist())
    task = mteb.get_task("StakeholderGrounding")
    task.dataset = {"rai": DatasetDict({"test": _arrangements_to_pairs(Dataset.from_dict(rows))})}
    task.data_loaded = True
    return task


class CountingFake:
    """A plain callable (fastmteb wraps it as a CallableEncoder) counting how often each text is encoded."""

    def __init__(self):
        self.counts = Counter()

    def __call__(self, texts):
        self.counts.update(texts)
        return mo.fake_embeddings(texts)


def test_only_evaluation_reasons_fall_back():
    assert mteb_fallback_task("StakeholderGrounding") is not None
    assert mteb_fallback_task("SciFact") is None  # scored by fastmteb itself
    assert mteb_fallback_task("CQADupstackRetrieval") is None  # an aggregate, not a fallback
    assert mteb_fallback_task("RuSciBenchCitedCountRegression") is None  # a type fastmteb lacks


@pytest.mark.parametrize("seed", [0, 1])
def test_fallback_matches_mteb(seed, tmp_path, caplog):
    expected = mo.run_mteb(_stakeholder_task(seed), mo.FakeEncoder(), rounded=False)
    model = CountingFake()
    with caplog.at_level(logging.INFO, logger="fastmteb"), mo._thread_limit(True):
        results = runner.evaluate(model, [_stakeholder_task(seed)], output_folder=tmp_path, progress=False)
    (result,) = results
    assert result.task_name == "StakeholderGrounding" and result.scored_by == SCORED_BY
    (entry,) = result.scores["test"]
    actual = {k: v for k, v in entry.items() if k not in ("main_score", "hf_subset", "languages", "mteb_version")}
    mo.assert_same_scores(expected["test"]["rai"], actual)
    assert entry["main_score"] == entry["alpha_auc"] and entry["languages"] == ["dan-Latn"]
    assert any(SCORED_BY in r.getMessage() for r in caplog.records)
    # each distinct text went through fastmteb's encoder once
    assert model.counts and max(model.counts.values()) == 1
    # the file: mteb's TaskResult (mteb reads it back) plus "scored_by"
    (path,) = tmp_path.rglob("StakeholderGrounding.json")
    data = json.loads(path.read_text())
    assert data["scored_by"] == SCORED_BY
    assert mteb.TaskResult.from_disk(path).get_score() == pytest.approx(entry["main_score"], abs=1e-6)
    settings = (path.parent / "run_settings.jsonl").read_text()
    assert SCORED_BY in settings
    # a rerun reads the file back instead of evaluating again
    again = runner.evaluate(CountingFake(), [_stakeholder_task(seed)], output_folder=tmp_path, progress=False)
    assert again.skipped == ["StakeholderGrounding"] and again[0].scores == result.scores
    assert again[0].scored_by == SCORED_BY
