"""Level-1 parity, BitextMining: nearest neighbour by cosine (earliest index wins exact ties), weighted
precision/recall/F1 and accuracy, two subsets evaluated together as mteb does."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
pytest.importorskip("mteb", reason="the oracle (mteb) is not installed")
import mteb_oracle as mo  # noqa: E402


def _pairs(seed: int, n: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        s1 = mo.sentence(rng, (2, 6))
        s2 = s1 if i % 4 == 0 else mo.sentence(rng, (2, 6))  # many exact matches
        if i % 9 == 0 and rows:
            s2 = rows[0]["sentence2"]  # repeated targets: tied nearest neighbours
        rows.append({"sentence1": s1, "sentence2": s2})
    return rows


def test_bitext_mining_matches_mteb():
    by_subset = {"aaa-eng": {"test": _pairs(0, 120)}, "bbb-eng": {"test": _pairs(1, 75)}}
    task = mo.mteb_task("BitextMining", data_by_subset=by_subset)
    expected = mo.run_mteb(task, mo.FakeEncoder())["test"]
    meta = mo.fastmteb_meta(task)
    for subset, data in by_subset.items():
        actual = mo.fastmteb_scores(meta, mo.fastmteb_raw(data), "test", subset)
        mo.assert_same_scores(expected[subset], actual)
