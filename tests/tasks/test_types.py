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


def _mteb_like_task(abstask: str, **class_attrs):
    """A task object shaped like mteb's: its class derives from a class named ``abstask`` that
    lives in ``mteb.abstasks`` (where the adapter looks for mteb's abstract task classes)."""
    from types import SimpleNamespace

    base = type(abstask, (), {"__module__": "mteb.abstasks.toy"})
    task_class = type("ToyTask", (base,), {"__module__": "mteb.tasks.toy", **class_attrs})
    task = task_class()
    task.metadata = SimpleNamespace(
        name="ToyTask", type="Toy", dataset={"path": "org/toy", "revision": "abc"},
        main_score="accuracy", modalities=["text"], eval_langs=["eng-Latn"], is_multilingual=False,
        prompt=None, license=None, description="", reference=None,
    )
    task.eval_splits, task.hf_subsets = ["test"], ["default"]
    return task


def test_a_new_type_is_its_module_plus_one_registration(monkeypatch):
    """The adapter, the router and the loader learn a type from its object alone: no name branches."""
    from fastmteb.data.loading import canonical_columns
    from fastmteb.tasks import types
    from fastmteb.tasks._common import RowType
    from fastmteb.tasks._mteb_task import MtebTaskReader
    from fastmteb.tasks.mteb_adapter import metadata_from_task
    from fastmteb.tasks.registry import get_task

    class Toy(RowType, MtebTaskReader):
        name = "Toy"
        columns = {"text": "str", "grade": "number"}
        mteb_abstasks = ("AbsTaskToy",)
        mteb_columns = {"text": ("input_column_name", "text")}

        def mteb_params(self, task):
            return {"scale": task.scale}

    monkeypatch.setitem(types.TASK_TYPE_OBJECTS, "Toy", Toy())
    task = _mteb_like_task("AbsTaskToy", scale=3, input_column_name="sentence")
    assert types.mteb_task_type(task) == "Toy"
    meta = metadata_from_task(task)
    assert meta.type == "Toy"
    assert meta.params["scale"] == 3 and meta.params["columns"] == {"text": "sentence"}
    assert canonical_columns(meta) == {"text": "str", "grade": "number"}
    assert get_task(meta) is meta


def test_the_most_derived_mteb_class_picks_the_type():
    from fastmteb.tasks.types import type_of_mteb_class

    classification = type("AbsTaskClassification", (), {"__module__": "mteb.abstasks.classification"})
    regression = type("AbsTaskRegression", (classification,), {"__module__": "mteb.abstasks.regression"})
    task = type("SomeRegression", (regression,), {"__module__": "mteb.tasks.x"})()
    assert type_of_mteb_class(task) is get_task_type("Regression")
    assert type_of_mteb_class(object()) is None


@pytest.mark.parametrize("type_name", ["STS", "BitextMining"])
def test_sentence_pair_types_rename_by_column_names(type_name):
    task = _mteb_like_task("AbsTaskToy", column_names=("query", "sentence2"))
    assert get_task_type(type_name).mteb_renamed_columns(task) == {"sentence1": "query"}
    assert get_task_type(type_name).mteb_renamed_columns(_mteb_like_task("AbsTaskToy")) == {}


def test_a_task_metadata_of_an_unknown_type_is_refused_at_the_registry():
    from fastmteb.tasks.base import TaskMetadata
    from fastmteb.tasks.registry import get_task

    with pytest.raises(UnknownTaskTypeError, match="STS"):
        get_task(TaskMetadata("T", "STSS", "p", "r", "main"))


def test_task_types_are_the_registration():
    from fastmteb.tasks.types import TASK_TYPE_OBJECTS

    assert TASK_TYPES == tuple(TASK_TYPE_OBJECTS)


def test_each_type_reads_every_column_attribute_its_mteb_classes_have():
    """mteb is the oracle: each ``*_column_name`` attribute of a type's mteb abstract classes is in
    the type's ``mteb_columns`` with mteb's default, so a task that renames a column is followed."""
    pytest.importorskip("mteb")
    import importlib
    import pkgutil

    import mteb.abstasks as abstasks

    from fastmteb.tasks.types import TASK_TYPE_OBJECTS

    classes = {
        name: obj
        for info in pkgutil.walk_packages(abstasks.__path__, "mteb.abstasks.")
        for name, obj in vars(importlib.import_module(info.name)).items()
        if isinstance(obj, type)
    }
    checked = 0
    for task_type in {id(t): t for t in TASK_TYPE_OBJECTS.values()}.values():
        declared = {attr: default for attr, default in getattr(task_type, "mteb_columns", {}).values()}
        for class_name in task_type.mteb_abstasks:
            cls = classes[class_name]
            mteb_attrs = {
                a: getattr(cls, a) for a in dir(cls)
                if a.endswith("_column_name") and isinstance(getattr(cls, a), str)
            }
            for attr, default in mteb_attrs.items():
                if task_type.name in ("STS", "BitextMining") and attr.startswith("input"):
                    continue  # these rename through column_names (test above)
                assert declared.get(attr) == default, (task_type.name, class_name, attr, default)
                checked += 1
    assert checked >= 10


def test_evaluate_refuses_a_task_metadata_of_an_unknown_type_before_loading_a_model(tmp_path):
    """Bad input fails before the model loads, not as a task failure after it."""
    import dataclasses

    import fastmteb
    from fastmteb.runner import Collaborators
    from fastmteb.tasks.base import TaskMetadata

    loads = []
    collaborators = dataclasses.replace(
        Collaborators.default(), load_encoder=lambda *a, **k: loads.append(a)
    )
    with pytest.raises(UnknownTaskTypeError, match="STS"):
        fastmteb.evaluate(None, [TaskMetadata("T", "STSS", "p", "r", "main")],
                          output_folder=tmp_path, collaborators=collaborators)
    assert loads == [] and not any(tmp_path.iterdir())
