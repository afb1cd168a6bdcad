"""Level-1 parity, Classification: 10 undersampled logistic-regression experiments, every mteb metric.

Binary (ap / ap_weighted reported) and multiclass (ap is NaN, per-experiment ap is None), int and string
labels, duplicated texts across train and test, a class missing from the test split.
"""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
pytest.importorskip("mteb", reason="the oracle (mteb) is not installed")
import mteb_oracle as mo  # noqa: E402


def _rows(rng: np.random.Generator, n: int, labels: list, pool: list[str]) -> list[dict]:
    rows = []
    for i in range(n):
        text = pool[int(rng.integers(len(pool)))] if i % 6 == 0 else mo.sentence(rng, (2, 8))
        rows.append({"text": text, "label": labels[int(rng.integers(len(labels)))]})
    return rows


def _data(seed: int, labels: list, n_train: int, n_test: int) -> dict:
    rng = np.random.default_rng(seed)
    pool = [mo.sentence(rng) for _ in range(15)]
    train, test = _rows(rng, n_train, labels, pool), _rows(rng, n_test, labels, pool)
    if len(labels) > 2:  # one class only in train
        test = [r for r in test if r["label"] != labels[-1]]
    return {"train": train, "test": test}


CASES = {
    "binary-int": (0, [0, 1], 160, 70, {"samples_per_label": 16}),
    "multiclass-int": (1, [0, 1, 2, 3, 4], 200, 80, {"samples_per_label": 8}),
    "multiclass-str": (2, ["cat", "dog", "ant", "bee"], 120, 60, {"samples_per_label": 4, "n_experiments": 3}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_classification_matches_mteb(case):
    seed, labels, n_train, n_test, params = CASES[case]
    data = _data(seed, labels, n_train, n_test)
    task = mo.mteb_task("Classification", data, params=params)
    expected = mo.run_mteb(task, mo.FakeEncoder())["test"]["default"]
    meta = mo.fastmteb_meta(task, params=params)
    actual = mo.fastmteb_scores(meta, mo.fastmteb_raw(data))
    mo.assert_same_scores(expected, actual)
