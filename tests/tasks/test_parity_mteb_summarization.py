"""Level-1 parity, Summarization (SummEvalSummarization.v2 evaluator): per-document max-over-human-summary
similarities, documents skipped when gold or predictions are constant, means of Pearson/Spearman."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
pytest.importorskip("mteb", reason="the oracle (mteb) is not installed")
import mteb_oracle as mo  # noqa: E402


def test_summarization_matches_mteb():
    rng = np.random.default_rng(0)
    rows = []
    for d in range(18):
        human = [mo.sentence(rng, (4, 10)) for _ in range(int(rng.integers(2, 5)))]
        machine = [mo.sentence(rng, (4, 10)) for _ in range(int(rng.integers(4, 8)))]
        relevance = [float(x) for x in rng.integers(1, 6, size=len(machine))]  # tied gold values
        if d == 3:
            relevance = [3.0] * len(machine)  # constant gold: document skipped
        if d == 5:
            machine = [machine[0]] * len(machine)  # constant predictions: document skipped
        if d == 7:
            machine[1] = human[0]  # a machine summary equal to a human one: cosine 1
        rows.append({"text": mo.sentence(rng, (10, 20)), "human_summaries": human, "machine_summaries": machine, "relevance": relevance})
    data = {"test": rows}
    task = mo.mteb_task("Summarization", data)
    expected = mo.run_mteb(task, mo.FakeEncoder())["test"]["default"]
    meta = mo.fastmteb_meta(task)
    actual = mo.fastmteb_scores(meta, mo.fastmteb_raw(data))
    mo.assert_same_scores(expected, actual)
