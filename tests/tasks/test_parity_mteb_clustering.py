"""Level-1 parity, Clustering: v2 "fast" (document sampling + 10 bootstrapped MiniBatchKMeans rounds,
flat and hierarchical labels) and legacy (one k-means per cluster set, single-label sets skipped)."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
pytest.importorskip("mteb", reason="the oracle (mteb) is not installed")
import mteb_oracle as mo  # noqa: E402


def _fast_rows(seed: int, n: int, hierarchical: bool) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        top = int(rng.integers(0, 4))
        label = [f"t{top}", f"t{top}.s{int(rng.integers(0, 3))}"] if hierarchical else top
        if hierarchical and i % 5 == 0:
            label = [f"t{top}"]  # single-level row: absent from level 1
        text = rows[i - 1]["sentences"] if i % 8 == 0 and rows else mo.sentence(rng, (3, 9))
        rows.append({"sentences": text, "labels": label})
    return rows


FAST_CASES = {
    "flat-4pct": (0, 300, False, {}),
    "flat-all-docs": (1, 120, False, {"max_fraction_of_documents_to_embed": None}),
    "hierarchical-fixed-count": (2, 250, True, {"max_fraction_of_documents_to_embed": None, "max_document_to_embed": 60}),
}


@pytest.mark.parametrize("case", list(FAST_CASES))
def test_fast_clustering_matches_mteb(case):
    seed, n, hierarchical, params = FAST_CASES[case]
    data = {"test": _fast_rows(seed, n, hierarchical)}
    task = mo.mteb_task("Clustering", data, params={**params, "n_clusters": 4, "max_documents_per_cluster": 2048})
    expected = mo.run_mteb(task, mo.FakeEncoder())["test"]["default"]
    meta = mo.fastmteb_meta(task, params={**params, "n_clusters": 4, "max_documents_per_cluster": 2048, "clustering": "fast"})
    actual = mo.fastmteb_scores(meta, mo.fastmteb_raw(data))
    mo.assert_same_scores(expected, actual)


def test_legacy_clustering_matches_mteb():
    rng = np.random.default_rng(3)
    sets = []
    for size, k in ((60, 4), (45, 3), (30, 1), (50, 5)):  # the 1-label set scores 1.0 without encoding
        labels = [int(x) for x in rng.integers(0, k, size=size)]
        sets.append({"sentences": [mo.sentence(rng, (2, 7)) for _ in range(size)], "labels": labels})
    data = {"test": sets}
    task = mo.mteb_task("ClusteringLegacy", data)
    expected = mo.run_mteb(task, mo.FakeEncoder())["test"]["default"]
    meta = mo.fastmteb_meta(task, params={"clustering": "legacy"})
    actual = mo.fastmteb_scores(meta, mo.fastmteb_raw(data))
    mo.assert_same_scores(expected, actual)
