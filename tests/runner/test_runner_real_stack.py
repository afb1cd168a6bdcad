"""The runner on the real registry, loader, task types, TextPool and CallableEncoder: a plain
callable model on a tiny local copy of STSBenchmark, checked against scipy and read by mteb."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

import fastmteb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from toy_models import bag_of_words  # noqa: E402

SHARED_STS = Path("/work/shared/data/STSBenchmark/test.jsonl")


@pytest.fixture
def tiny_sts(tmp_path) -> Path:
    rows = [
        {
            "sentence1": "A man plays a guitar.",
            "sentence2": "A man is playing the guitar.",
            "score": 4.6,
        },
        {"sentence1": "A cat sleeps.", "sentence2": "The stock market fell.", "score": 0.0},
        {
            "sentence1": "Two dogs run on grass.",
            "sentence2": "Dogs are running in a field.",
            "score": 3.8,
        },
        {
            "sentence1": "A woman slices an onion.",
            "sentence2": "A woman is cutting an onion.",
            "score": 4.9,
        },
        {"sentence1": "The sky is blue.", "sentence2": "A man plays a guitar.", "score": 0.2},
        {
            "sentence1": "Kids play football.",
            "sentence2": "Children are playing soccer.",
            "score": 4.1,
        },
        {"sentence1": "A cat sleeps.", "sentence2": "A cat is sleeping on the sofa.", "score": 3.5},
        {"sentence1": "Prices rose sharply.", "sentence2": "The sky is blue.", "score": 0.1},
    ]
    folder = tmp_path / "data" / "STSBenchmark"
    folder.mkdir(parents=True)
    (folder / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return tmp_path / "data"


def test_callable_model_on_local_sts_matches_scipy_and_loads_in_mteb(tmp_path, tiny_sts):
    from scipy.stats import spearmanr
    from sklearn.metrics.pairwise import paired_cosine_distances

    try:
        run = fastmteb.evaluate(
            bag_of_words,
            ["STSBenchmark"],
            output_folder=tmp_path / "results",
            data_dir=tiny_sts,
            progress=False,
        )
    except fastmteb.TaskFailedError as e:  # pragma: no cover - another helper's part not landed yet
        if isinstance(e.__cause__, NotImplementedError):
            pytest.skip(f"STS scoring not implemented yet: {e}")
        raise
    (result,) = run
    rows = [
        json.loads(line)
        for line in (tiny_sts / "STSBenchmark" / "test.jsonl").read_text().splitlines()
    ]
    a = bag_of_words([r["sentence1"] for r in rows])
    b = bag_of_words([r["sentence2"] for r in rows])
    # mteb's STS: 1 - sklearn paired cosine distance (rows 2 and 8 are a float32 near-tie: the way
    # the cosine is computed decides their order, so the oracle must compute it as mteb does)
    cosine = 1 - paired_cosine_distances(a, b)
    expected = spearmanr([r["score"] for r in rows], cosine).statistic
    assert result.scores["test"][0]["main_score"] == pytest.approx(round(expected, 6), abs=1e-9)

    path = tmp_path / "results" / "bag_of_words" / "no_revision_available" / "STSBenchmark.json"
    mteb_result = pytest.importorskip("mteb.results.task_result").TaskResult.from_disk(path)
    assert mteb_result.get_score() == result.get_score()

    again = fastmteb.evaluate(
        bag_of_words,
        ["STSBenchmark"],
        output_folder=tmp_path / "results",
        data_dir=tiny_sts,
        progress=False,
    )
    assert again.skipped == ["STSBenchmark"] and again[0].scores == result.scores


def test_missing_split_is_a_named_error_and_writes_nothing(tmp_path, tiny_sts):
    (tiny_sts / "STSBenchmark" / "test.jsonl").rename(tiny_sts / "STSBenchmark" / "dev.jsonl")
    run = fastmteb.evaluate(
        bag_of_words,
        ["STSBenchmark"],
        output_folder=tmp_path / "results",
        data_dir=tiny_sts,
        progress=False,
        raise_error=False,
    )
    (failure,) = run.failures
    assert (
        failure.task_name == "STSBenchmark" and failure.phase == "load" and "test" in failure.error
    )
    assert not list((tmp_path / "results").rglob("*.json"))
