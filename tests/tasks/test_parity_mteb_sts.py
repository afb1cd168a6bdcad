"""Level-1 parity, STS: same data and FakeEncoder embeddings -> fastmteb's scores equal mteb 2.26.24's."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
pytest.importorskip("mteb", reason="the oracle (mteb) is not installed")
import mteb_oracle as mo  # noqa: E402


def _sts_rows(seed: int, n: int, scale: tuple[float, float]) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        s1 = mo.sentence(rng)
        # a third of the pairs repeat an earlier sentence or pair the sentence with itself
        s2 = s1 if i % 9 == 0 else (rows[i // 2]["sentence2"] if i % 3 == 0 and rows else mo.sentence(rng))
        score = float(rng.integers(0, 6)) if i % 2 else round(float(rng.uniform(*scale)), 2)  # many tied gold scores
        rows.append({"sentence1": s1, "sentence2": s2, "score": min(max(score, scale[0]), scale[1])})
    return rows


@pytest.mark.parametrize(
    ("seed", "n", "params"),
    [(0, 150, {}), (1, 80, {"min_score": 1, "max_score": 4})],
    ids=["scale-0-5", "scale-1-4"],
)
def test_sts_matches_mteb(seed, n, params):
    lo, hi = params.get("min_score", 0), params.get("max_score", 5)
    data = {"test": _sts_rows(seed, n, (lo, hi))}
    task = mo.mteb_task("STS", data, params=params)
    expected = mo.run_mteb(task, mo.FakeEncoder())["test"]["default"]
    meta = mo.fastmteb_meta(task, params=params)
    actual = mo.fastmteb_scores(meta, mo.fastmteb_raw(data))
    mo.assert_same_scores(expected, actual)


def test_oracle_detects_a_wrong_score():
    """The comparison itself must fail on a real difference (guards against a test that cannot fail)."""
    data = {"test": _sts_rows(2, 60, (0, 5))}
    expected = mo.run_mteb(mo.mteb_task("STS", data), mo.FakeEncoder())["test"]["default"]
    broken = dict(expected, cosine_spearman=expected["cosine_spearman"] + 2e-6)
    with pytest.raises(AssertionError, match="cosine_spearman"):
        mo.assert_same_scores(expected, broken)
    with pytest.raises(AssertionError, match="key order"):
        mo.assert_same_scores(expected, dict(reversed(list(expected.items()))))
