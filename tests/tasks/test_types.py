"""The task-type registry."""

import pytest

from fastmteb.tasks.types import TASK_TYPES, UnknownTaskTypeError, get_task_type


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


def test_each_type_owns_its_data_contract():
    """Schema, raw normalisation, required splits and the runner's retrieval flag live on the type."""
    from fastmteb.tasks.base import TaskMetadata

    def meta(type_name, **params):
        return TaskMetadata("T", type_name, "p", "r", "main", params=params)

    retrieval = {"Retrieval", "Reranking", "InstructionRetrieval", "InstructionReranking", "Any2AnyRetrieval"}
    for name in TASK_TYPES:
        task_type = get_task_type(name)
        assert task_type.retrieval == (name in retrieval), name
        if name not in retrieval:
            schema = task_type.schema(meta(name), "default")
            assert schema and all(isinstance(k, str) for k in schema.values()), name
            assert callable(task_type.normalise) and callable(task_type.finalise_split)
    assert get_task_type("STS").schema(meta("STS"), "default") == {
        "sentence1": "str", "sentence2": "str", "score": "number"
    }
    assert get_task_type("Clustering").schema(meta("Clustering", clustering="legacy"), "x") == {
        "sentences": "list[str]", "labels": "list"
    }
    bitext = get_task_type("BitextMining")
    assert bitext.schema(meta("BitextMining", parallel_subsets=True), "eng_Latn-deu_Latn") == {
        "eng_Latn": "str", "deu_Latn": "str"
    }
    classification = get_task_type("Classification")
    assert classification.required_splits(meta("Classification")) == ("train",)
    assert classification.required_splits(meta("Classification", is_cross_validation=True)) == ()


def test_a_type_object_without_the_contract_gets_row_defaults(monkeypatch):
    """A type written elsewhere (e.g. a new Regression module) that only declares ``columns``
    still loads: the loader fills in RowType's defaults for the rest."""
    from fastmteb.data import loading
    from fastmteb.tasks import types
    from fastmteb.tasks.base import TaskMetadata

    class Bare:
        name = "STS"
        columns = {"sentence1": "str", "sentence2": "str", "score": "number"}

    monkeypatch.setitem(types.TASK_TYPE_OBJECTS, "STS", Bare())
    meta = TaskMetadata("T", "STS", "p", "r", "cosine_spearman")
    tt = loading._task_type(meta)
    assert tt.schema(meta, "default") == Bare.columns
    assert tt.required_splits(meta) == () and tt.retrieval is False
    assert tt.name == "STS"
