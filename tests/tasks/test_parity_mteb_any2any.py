"""Level-1 parity, text-only Any2AnyRetrieval (WebQAT2TRetrieval): fastmteb's retrieval type, mteb's numbers.

mteb 2.26 types WebQAT2TRetrieval ``Any2AnyRetrieval`` but its modalities are ``["text"]``: its loader gives
the usual ``id``/``title``/``text`` corpus and ``id``/``text`` queries, and its evaluator compares the ``text``
column only, so fastmteb scores it with the retrieval type (keeping the type name, which prompt lookup uses).
"""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import mteb_oracle as mo  # noqa: E402
from test_parity_mteb_retrieval import _retrieval_data  # noqa: E402

mteb = pytest.importorskip("mteb")


def test_webqa_t2t_is_runnable_as_retrieval():
    from fastmteb.tasks.mteb_adapter import metadata_from_task, unsupported_reason
    from fastmteb.tasks.types import get_task_type

    task = mteb.get_task("WebQAT2TRetrieval")
    assert unsupported_reason(task) is None
    meta = metadata_from_task(task)
    assert meta.type == "Any2AnyRetrieval" and meta.main_score == "ndcg_at_10"
    assert get_task_type(meta.type).name == "Any2AnyRetrieval"
    # an Any2AnyRetrieval task with an image modality stays out
    other = next(
        t for t in mteb.get_tasks(task_types=["Any2AnyRetrieval"]) if list(t.metadata.modalities) != ["text"]
    )
    assert "modalities" in unsupported_reason(other)


def test_webqa_t2t_matches_mteb():
    data = _retrieval_data(31, 120, 25)
    task = mo.mteb_task("WebQAT2TRetrieval", data)
    expected = mo.run_mteb(task, mo.FakeEncoder())["test"]["default"]
    meta = mo.fastmteb_meta(task)
    actual = mo.fastmteb_scores(meta, mo.fastmteb_raw(data))
    mo.assert_same_scores(expected, actual)
    assert len(expected) > 50
