"""Metadata derived from mteb's task objects equals the hand-written registry it replaced.

``tests/data/hand_registry_snapshot.json`` is the hand copy of mteb 2.26.24's metadata that
``fastmteb/tasks/registry.py`` held before fastmteb read mteb directly (52 tasks: MTEB(eng, v2),
the bundled tasks' sources, FollowIR). Every field must come out of ``metadata_from_task``
unchanged, except the free-text description (the hand copy shortened long ones) and ``local_dir``
(now every task has one: its mteb name, as MANIFEST.md's layout says).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

mteb = pytest.importorskip("mteb")

from fastmteb.tasks.base import TaskMetadata
from fastmteb.tasks.mteb_adapter import (
    UnsupportedTaskError,
    metadata_from_task,
    unsupported_reason,
)

SNAPSHOT = json.loads(
    (Path(__file__).parents[1] / "data" / "hand_registry_snapshot.json").read_text()
)


def _hand(name: str) -> TaskMetadata:
    d = dict(SNAPSHOT[name])
    d["eval_splits"] = tuple(d["eval_splits"])
    d["hf_subsets"] = tuple(d["hf_subsets"])
    d["languages"] = {k: tuple(v) for k, v in d["languages"].items()}
    d["params"] = {k: tuple(v) if isinstance(v, list) else v for k, v in d["params"].items()}
    return TaskMetadata(**d)


def test_snapshot_holds_the_hand_entries():
    assert len(SNAPSHOT) == 52


@pytest.mark.parametrize("name", sorted(SNAPSHOT))
def test_derived_metadata_equals_hand_entry(name):
    hand = _hand(name)
    derived = metadata_from_task(mteb.get_task(name))
    for field in TaskMetadata.__dataclass_fields__:
        if field == "description":
            continue
        want = getattr(hand, field)
        got = getattr(derived, field)
        if field == "local_dir":
            want = want or name
        if field == "languages":
            want, got = dict(want), dict(got)
        if field == "mteb_loader":
            want = False  # fastmteb re-implements every transform these tasks use
        assert got == want, (name, field)


def test_benchmark_narrowing_is_kept():
    bench = mteb.get_benchmark("MTEB(eng, v2)")
    amazon = next(t for t in bench.tasks if t.metadata.name == "AmazonCounterfactualClassification")
    meta = metadata_from_task(amazon)
    assert meta.hf_subsets == ("en",) and meta.eval_splits == ("test",)
    assert dict(meta.languages) == {"en": ("eng-Latn",)}


def test_unsupported_tasks_say_why():
    audio = mteb.get_task("FSD50K")  # audio multilabel: fastmteb encodes text only
    assert unsupported_reason(audio)
    with pytest.raises(UnsupportedTaskError, match="FSD50K"):
        metadata_from_task(audio)
    regression = mteb.get_task("RuSciBenchCitedCountRegression")
    assert unsupported_reason(regression) is None
    assert metadata_from_task(regression).type == "Regression"
    aggregate = mteb.get_task("CQADupstackRetrieval")
    assert "aggregate" in unsupported_reason(aggregate)


def test_custom_loader_needs_mteb():
    # A task with a dataset_transform fastmteb does not re-implement loads through mteb.
    flagged = [
        t.metadata.name
        for t in mteb.get_tasks(modalities=["text"], exclusive_modality_filter=True)
        if unsupported_reason(t) is None and metadata_from_task(t).mteb_loader
    ]
    assert len(flagged) > 100
    assert not metadata_from_task(mteb.get_task("SciFact")).mteb_loader
