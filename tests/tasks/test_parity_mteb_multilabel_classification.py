"""Level-1 parity, MultilabelClassification: stateful np_rng train sampling, k-NN, lrap/f1/hamming."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
pytest.importorskip("mteb", reason="the oracle (mteb) is not installed")
import mteb_oracle as mo  # noqa: E402


def _rows(rng: np.random.Generator, n: int) -> list[dict]:
    rows = []
    for i in range(n):
        k = int(rng.integers(0, 3))  # 0, 1 or 2 labels; empty label lists included
        labels = sorted({int(x) for x in rng.integers(0, 5, size=k)})
        rows.append({"text": mo.sentence(rng, (2, 8)) if i % 7 else "shared text", "label": labels})
    return rows


def test_multilabel_classification_matches_mteb():
    rng = np.random.default_rng(0)
    data = {"train": _rows(rng, 150), "test": _rows(rng, 60)}
    params = {"samples_per_label": 6, "n_experiments": 4}
    task = mo.mteb_task("MultilabelClassification", data, params=params, main_score="accuracy")
    expected = mo.run_mteb(task, mo.FakeEncoder())["test"]["default"]
    meta = mo.fastmteb_meta(task, params=params)
    actual = mo.fastmteb_scores(meta, mo.fastmteb_raw(data))
    mo.assert_same_scores(expected, actual)


def test_multilabel_task_declared_as_classification_matches_mteb():
    """RuToxicOKMLCUPMultilabelClassification: metadata.type "Classification", class AbsTaskMultilabelClassification.

    mteb scores it with the multilabel evaluator; routed by class, fastmteb's multilabel scorer gives mteb's numbers.
    """
    from dataclasses import replace

    from fastmteb.tasks.types import mteb_task_type

    rng = np.random.default_rng(1)
    data = {"train": _rows(rng, 120), "test": _rows(rng, 50)}
    params = {"samples_per_label": 5, "n_experiments": 3}
    task = mo.mteb_task("RuToxicOKMLCUPMultilabelClassification", data, params=params)
    assert task.metadata.type == "Classification"
    expected = mo.run_mteb(task, mo.FakeEncoder())["test"]["default"]
    meta = replace(mo.fastmteb_meta(task, params=params), type=mteb_task_type(task))
    assert meta.type == "MultilabelClassification"
    mo.assert_same_scores(expected, mo.fastmteb_scores(meta, mo.fastmteb_raw(data)))
