"""Level-1 parity, PairClassification: best accuracy/F1 walks (tie skipping), AP, max_* over 5 similarities."""

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
        s1 = mo.sentence(rng)
        if i % 7 == 0:
            s2 = s1  # identical pair: cosine 1, distance 0
        elif i % 5 == 0 and rows:
            s1, s2 = rows[-1]["sentence1"], rows[-1]["sentence2"]  # duplicated pair, maybe another label
        else:
            s2 = mo.sentence(rng)
        rows.append({"sentence1": s1, "sentence2": s2, "labels": int(rng.random() < 0.35)})
    return rows


@pytest.mark.parametrize(("seed", "n"), [(0, 200), (1, 57)])
def test_pair_classification_matches_mteb(seed, n):
    data = {"test": _pairs(seed, n)}
    task = mo.mteb_task("PairClassification", data)
    expected = mo.run_mteb(task, mo.FakeEncoder())["test"]["default"]
    meta = mo.fastmteb_meta(task)
    actual = mo.fastmteb_scores(meta, mo.fastmteb_raw(data))
    mo.assert_same_scores(expected, actual)
