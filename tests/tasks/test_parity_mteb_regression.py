"""Level-1 parity, Regression: stratified quantile subsampling (seed 42 + i), LinearRegression, every mteb metric.

Cases: subsampled train (n_samples < train size), whole train (n_samples >= train size), integer targets with
heavy ties (quantile bins dropped as duplicates), duplicated texts with different targets, a constant evaluated
split (r2 / kendalltau degenerate: NaN == NaN), constant train targets, two subsets, cross-validation; and the
data on which mteb's own sampler fails gives a clear error instead.
"""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
pytest.importorskip("mteb", reason="the oracle (mteb) is not installed")
import mteb_oracle as mo  # noqa: E402


def _rows(rng: np.random.Generator, n: int, kind: str, pool: list[str]) -> list[dict]:
    rows = []
    for i in range(n):
        text = pool[int(rng.integers(len(pool)))] if i % 5 == 0 else mo.sentence(rng, (2, 8))
        if kind == "float":
            value = float(rng.normal(3.0, 2.0))
        elif kind == "int":  # years: many ties, so some quantile edges coincide
            value = int(rng.choice([2001, 2001, 2001, 2005, 2010, 2010, 2015, 2020]))
        else:  # constant
            value = 1.5
        rows.append({"text": text, "value": value})
    return rows


def _data(
    seed: int, n_train: int, n_test: int, train_kind: str = "float", test_kind: str = "float"
) -> dict:
    rng = np.random.default_rng(seed)
    pool = [
        mo.sentence(rng) for _ in range(12)
    ]  # duplicated texts, across splits, with different targets
    return {
        "train": _rows(rng, n_train, train_kind, pool),
        "test": _rows(rng, n_test, test_kind, pool),
    }


CASES = {
    "subsampled": (0, 260, 70, "float", "float", {"n_samples": 90, "n_experiments": 4}),
    "whole-train": (1, 60, 40, "float", "float", {"n_experiments": 2}),
    "int-ties": (2, 220, 50, "int", "int", {"n_samples": 64, "n_experiments": 3}),
    "constant-test": (3, 150, 30, "float", "constant", {"n_samples": 50, "n_experiments": 2}),
    "constant-train": (4, 40, 30, "constant", "float", {"n_experiments": 2}),
}


def _compare(task, data_by_subset: dict, params: dict, split: str = "test") -> int:
    expected = mo.run_mteb(task, mo.FakeEncoder())[split]
    meta = mo.fastmteb_meta(task, params=params)
    n_keys = 0
    for subset, data in data_by_subset.items():
        actual = mo.fastmteb_scores(meta, mo.fastmteb_raw(data), split, subset)
        mo.assert_same_scores(expected[subset], actual)
        n_keys += (
            len(expected[subset])
            - 1
            + sum(len(s) for s in expected[subset]["scores_per_experiment"])
        )
    return n_keys


@pytest.mark.parametrize("case", list(CASES))
def test_regression_matches_mteb(case):
    seed, n_train, n_test, train_kind, test_kind, params = CASES[case]
    data = _data(seed, n_train, n_test, train_kind, test_kind)
    task = mo.mteb_task("Regression", data, params=params)
    assert _compare(task, {"default": data}, params) == 5 + 5 * params["n_experiments"]


def test_regression_two_subsets_match_mteb():
    """Each subset starts its experiments from seed 42 again (no stream shared across subsets)."""
    by_subset = {"cited_count_ru": _data(5, 180, 40), "cited_count_en": _data(6, 150, 35)}
    params = {"n_samples": 70, "n_experiments": 3}
    task = mo.mteb_task("RuSciBenchCitedCountRegression", data_by_subset=by_subset, params=params)
    assert _compare(task, by_subset, params) == 2 * (5 + 5 * 3)


def test_regression_cross_validation_matches_mteb():
    data = {"train": _data(7, 200, 1)["train"]}
    params = {"is_cross_validation": True, "n_samples": 80}
    task = mo.mteb_task("Regression", data, params=params, eval_splits=["train"])
    assert _compare(task, {"default": data}, params, split="train") == 5 + 5 * 5


def test_unbinnable_train_targets_fail_like_mteb():
    """Constant train targets cannot be cut into quantiles: mteb's sampler raises, fastmteb says why."""
    from fastmteb.tasks.types import TaskTypeError

    data = _data(8, 120, 20, "constant", "float")
    params = {"n_samples": 50, "n_experiments": 1}
    task = mo.mteb_task("Regression", data, params=params)
    with pytest.raises(ValueError):  # pyarrow: "Float value nan was truncated" casting the NaN bins
        mo.run_mteb(task, mo.FakeEncoder())
    meta = mo.fastmteb_meta(task, params=params)
    with pytest.raises(TaskTypeError, match="quantiles"):
        mo.fastmteb_scores(meta, mo.fastmteb_raw(data))
