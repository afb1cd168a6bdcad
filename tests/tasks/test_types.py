"""The task-type registry."""

import pytest

from fastmteb.tasks.base import TASK_TYPES
from fastmteb.tasks.types import UnknownTaskTypeError, get_task_type


def test_every_declared_type_has_an_implementation():
    for name in TASK_TYPES:
        task_type = get_task_type(name)
        assert task_type.name == name
        assert all(callable(getattr(task_type, f)) for f in ("prepare", "requests", "score"))


def test_unknown_type_names_close_matches():
    with pytest.raises(UnknownTaskTypeError, match="Clustering"):
        get_task_type("Clusterin")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Banking77Classification", "Classification"),
        ("RuSciBenchCitedCountRegression", "Regression"),
        ("RuSciBenchYearPublRegression", "Regression"),
        ("BrazilianToxicTweetsClassification", "MultilabelClassification"),
        ("RuToxicOKMLCUPMultilabelClassification", "MultilabelClassification"),  # metadata.type is "Classification"
        ("FSD50K", None),  # audio; MultiOutputClassifier(LogisticRegression())
        ("VOC2007.v2", None),  # image
        ("SciFact", "Retrieval"),
        ("StatcanDialogueDatasetRetrieval", "Retrieval"),
    ],
)
def test_mteb_tasks_are_routed_by_class(name, expected):
    mteb = pytest.importorskip("mteb")
    from fastmteb.tasks.types import mteb_task_type

    assert mteb_task_type(mteb.get_task(name)) == expected


def test_every_mteb_classification_family_text_task_has_a_route():
    """Every text task of mteb's classification classes gets a fastmteb scorer (none falls back)."""
    mteb = pytest.importorskip("mteb")
    from mteb.abstasks.classification import AbsTaskClassification

    from fastmteb.tasks.types import mteb_task_type

    tasks = [
        t for t in mteb.get_tasks(exclude_superseded=False)
        if isinstance(t, AbsTaskClassification) and list(t.metadata.modalities) == ["text"]
    ]
    assert len(tasks) > 400
    assert [t.metadata.name for t in tasks if mteb_task_type(t) is None] == []
