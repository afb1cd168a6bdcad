"""Level-1 parity, task-specific score hooks (``AbsTaskRetrieval.task_specific_scores``) without markers.

fastmteb hands its ranked lists, per-query metrics and qrels to the task's own hook in the shape mteb
passes them (``fastmteb.tasks.task_scores_bridge``). Same data, same FakeEncoder vectors: every key,
the hook's included (LMEB's ``R_cap_at_K``, IFIR's ``level_scores``), equals mteb's.
"""

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import mteb_oracle as mo  # noqa: E402
from test_parity_mteb_retrieval import _retrieval_data  # noqa: E402

mteb = pytest.importorskip("mteb")

from fastmteb.tasks.mteb_adapter import metadata_from_task  # noqa: E402


def _check(name: str, data: dict, subset: str) -> dict:
    real = metadata_from_task(mteb.get_task(name))
    assert real.params["task_specific_scores"] == "mteb_hook"
    task = mo.mteb_task(name, data_by_subset={subset: data})
    expected = mo.run_mteb(task, mo.FakeEncoder())["test"][subset]
    meta = replace(mo.fastmteb_meta(task), params=dict(real.params))
    actual = mo.fastmteb_scores(meta, mo.fastmteb_raw(data), subset=subset)
    mo.assert_same_scores(expected, actual)
    return expected


def test_lmeb_recall_cap_matches_mteb():
    expected = _check("CovidQA", _retrieval_data(41, 260, 40), "Covid-QA")
    assert {f"R_cap_at_{k}" for k in (1, 3, 5, 10, 20, 25, 50, 100, 1000)} <= set(expected)


def test_ifir_level_scores_match_mteb():
    data = _retrieval_data(43, 200, 36)
    rename = {q["id"]: f"{q['id']}_v{1 + i % 3}" for i, q in enumerate(data["queries"])}
    data["queries"] = [{**q, "id": rename[q["id"]]} for q in data["queries"]]
    data["qrels"] = [{**r, "query-id": rename[r["query-id"]]} for r in data["qrels"]]
    expected = _check("IFIRScifact", data, "default")
    assert set(expected["level_scores"]) == {"level_1", "level_2", "level_3"}


def test_no_runnable_task_leaves_extra_scores_out():
    from fastmteb.tasks.registry import coverage

    runnable, _ = coverage()
    hooked = [m.name for m in runnable.values() if m.params.get("task_specific_scores") == "mteb_hook"]
    assert len(hooked) >= 25  # the 22 LMEB tasks, IFIR, ...
    assert not any(m.params.get("extra_scores_not_computed") for m in runnable.values())
