"""Result files: mteb reads them, rounding and NaN as mteb's, atomic writes, aggregation."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from fastmteb import load_results, summarize  # the public ones: task types from the registry
from fastmteb import results as results_module
from fastmteb.results import (
    TaskResult,
    compare,
    comparison_tables,
    round_scores,
    write_json_atomic,
    write_model_meta,
)
from fastmteb.tasks.base import TaskMetadata


def sts_entry(score: float, subset: str = "default", **extra) -> dict:
    return {
        "cosine_pearson": score + 0.01,
        "cosine_spearman": score,
        **extra,
        "main_score": score,
        "hf_subset": subset,
        "languages": ["eng-Latn"],
        "mteb_version": "2.26.24",
    }


def result(
    task: str, score: float, *, revision: str = "rev", split: str = "test", subsets=("default",)
) -> TaskResult:
    return TaskResult(
        dataset_revision=revision,
        task_name=task,
        mteb_version="2.26.24",
        scores={split: [sts_entry(score, s) for s in subsets]},
        evaluation_time=1.5,
        date=1.8e9,
        evaluation_phases=[
            {"name": "Scoring", "start": 0.0, "end": 1.5, "split": split, "subset": ""}
        ],
    )


# --------------------------------------------------------------------------------------------
# Rounding and NaN


def test_rounding_nan_and_numpy_values_on_disk(tmp_path):
    scores = {
        "test": [
            sts_entry(
                0.123456789,
                ap=float("nan"),
                f1=np.float32(0.5),
                n=np.int64(3),
                flag=np.bool_(True),
                scores_per_experiment=[{"accuracy": 0.98765432}, 0.1111119],
                v_measures={"Level 0": np.array([0.33333333, 0.6666666666])},
                nested=[[0.1234567]],
            )
        ]
    }
    r = TaskResult("rev", "STS12", "2.26.24", scores, evaluation_time=2.123456789)
    path = tmp_path / "STS12.json"
    r.to_disk(path)
    text = path.read_text()
    assert '"ap": NaN' in text and "\n  " in text and "\n    " in text  # indent 2
    entry = json.loads(text)["scores"]["test"][0]
    assert entry["cosine_spearman"] == 0.123457 and entry["main_score"] == 0.123457
    assert (
        math.isnan(entry["ap"]) and entry["f1"] == 0.5 and entry["n"] == 3 and entry["flag"] is True
    )
    assert entry["scores_per_experiment"] == [{"accuracy": 0.987654}, 0.111112]
    assert entry["v_measures"] == {"Level 0": [0.333333, 0.666667]}
    assert entry["nested"] == [[0.1234567]]  # mteb does not round a list inside a list either
    assert json.loads(text)["evaluation_time"] == 2.123456789  # only scores are rounded
    assert r.scores["test"][0]["cosine_spearman"] == 0.123456789  # the object is left as it was


def test_round_scores_matches_mteb_byte_for_byte(tmp_path):
    mteb_results = pytest.importorskip("mteb.results.task_result")
    rng = np.random.default_rng(0)
    adversarial = [
        0.5,
        1 / 3,
        2.675,
        0.1234565,
        1e-7,
        -0.0000005,
        float("nan"),
        float("inf"),
        1.0,
        0.0,
    ]
    entry = sts_entry(
        0.3,
        **{f"m{i}": v for i, v in enumerate([*adversarial, *rng.random(20).tolist()])},
        per_exp=[{"a": float(x)} for x in rng.random(5)],
        levels={"L0": rng.random(4).tolist()},
    )
    ours = TaskResult("rev", "STS12", "2.26.24", {"test": [entry]}, evaluation_time=1.0, date=1.8e9)
    ours.to_disk(tmp_path / "ours.json")
    theirs = mteb_results.TaskResult.from_disk(tmp_path / "ours.json")
    theirs.to_disk(tmp_path / "theirs.json")
    assert (tmp_path / "ours.json").read_text() == (tmp_path / "theirs.json").read_text()
    plain = {"x": [1.23456789, {"y": 2.0000004}], "z": 0.1234565}
    round_scores(plain)
    assert plain == {"x": [1.234568, {"y": 2.0}], "z": round(0.1234565, 6)}


# --------------------------------------------------------------------------------------------
# mteb reads our files


def test_mteb_task_result_loads_our_file(tmp_path):
    mteb_results = pytest.importorskip("mteb.results.task_result")
    path = tmp_path / "STSBenchmark.json"
    result(
        "STSBenchmark", 0.8123456789, revision="b0fddb56ed78048fa8b90373c8a3cfc37b684831"
    ).to_disk(path)
    loaded = mteb_results.TaskResult.from_disk(path, load_historic_data=False)
    assert loaded.task_name == "STSBenchmark" and loaded.mteb_version == "2.26.24"
    assert loaded.get_score() == pytest.approx(0.812346, abs=1e-12)
    assert loaded.evaluation_phases[0]["name"] == "Scoring" and loaded.date.timestamp() == 1.8e9
    assert loaded.validate_and_filter_scores().get_score() == pytest.approx(0.812346, abs=1e-12)


def test_mteb_result_cache_loads_our_output_folder(tmp_path):
    mteb = pytest.importorskip("mteb")
    folder = tmp_path / "results" / "org__model" / "abc123"
    write_model_meta(folder, name="org/model", revision="abc123", embed_dim=8)
    result("STSBenchmark", 0.8, revision="b0fddb56ed78048fa8b90373c8a3cfc37b684831").to_disk(
        folder / "STSBenchmark.json"
    )
    result("BIOSSES", 0.7, revision="d3fb88f8f02e40887cd149695127462bbcf29b4a").to_disk(
        folder / "BIOSSES.json"
    )
    cache = mteb.ResultCache(cache_path=tmp_path)
    bench = cache.load_results(
        models=["org/model"], tasks=["STSBenchmark", "BIOSSES"], require_model_meta=True
    )
    (model_result,) = bench.model_results
    assert model_result.model_name == "org/model" and model_result.model_revision == "abc123"
    assert {r.task_name: r.get_score() for r in model_result.task_results} == {
        "STSBenchmark": 0.8,
        "BIOSSES": 0.7,
    }


# --------------------------------------------------------------------------------------------
# Atomic writes


def test_atomic_write_cleans_up_on_error_and_keeps_the_old_file(tmp_path, monkeypatch):
    import fastmteb.results as results_mod

    path = tmp_path / "T.json"
    write_json_atomic(path, {"v": 1})
    with pytest.raises(TypeError):
        write_json_atomic(
            path, {"v": object()}
        )  # not serialisable: fails before any file is touched
    monkeypatch.setattr(
        results_mod.os, "fsync", lambda fd: (_ for _ in ()).throw(OSError("disk full"))
    )
    with pytest.raises(OSError, match="disk full"):
        write_json_atomic(path, {"v": 2})
    assert json.loads(path.read_text()) == {"v": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["T.json"]


def test_hard_crash_between_write_and_rename_leaves_no_result(tmp_path):
    """A killed process (os._exit, no cleanup) leaves only a hidden .tmp file; readers ignore it."""
    folder = tmp_path / "results" / "org__m" / "r"
    code = f"""
import os, fastmteb.results as R
from pathlib import Path
R.write_model_meta(Path({str(folder)!r}), name="org/m", revision="r")
R.os.replace = lambda src, dst: os._exit(3)
R.TaskResult("rev", "T", "2.26.24", {{"test": []}}).to_disk(Path({str(folder)!r}) / "T.json")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3, proc.stderr
    names = sorted(p.name for p in folder.iterdir())
    assert (
        "T.json" not in names
        and len(names) == 2
        and names[0].startswith(".T.json.")
        and names[0].endswith(".tmp")
    )
    assert load_results(tmp_path / "results") == {}


# --------------------------------------------------------------------------------------------
# Loading folders and aggregation


def test_load_results_keys_models_and_revisions(tmp_path):
    root = tmp_path / "results"
    for model, revision, score in (
        ("org/a", "r1", 0.5),
        ("org/b", "r1", 0.6),
        ("org/b", "r2", 0.7),
    ):
        folder = root / model.replace("/", "__") / revision
        write_model_meta(folder, name=model, revision=revision)
        result("STS12", score).to_disk(folder / "STS12.json")
    bare = (
        tmp_path / "other" / "org__c" / "no_revision_available"
    )  # no model_meta.json: names from folders
    result("STS12", 0.1).to_disk(bare / "STS12.json")
    loaded = load_results(root, tmp_path / "other")
    assert sorted(loaded) == ["org/a", "org/b@r1", "org/b@r2", "org/c"]
    assert loaded["org/b@r2"]["STS12"].get_score() == 0.7
    assert (
        load_results(root / "org__a")["org/a"]["STS12"].task_type == "STS"
    )  # type from the registry
    with pytest.raises(FileNotFoundError):
        load_results(tmp_path / "missing")


def test_load_results_names_the_bad_file_and_field(tmp_path):
    from fastmteb.results import ResultFileError

    bad = tmp_path / "m" / "r" / "X.json"
    bad.parent.mkdir(parents=True)
    bad.write_text(
        json.dumps(
            {"task_name": "X", "scores": {"test": [{"hf_subset": "default", "languages": []}]}}
        )
    )
    with pytest.raises(ResultFileError, match=r"X\.json.*'main_score'"):
        load_results(tmp_path)


MIXED = {
    "STS12": ("STS", 0.8),
    "BIOSSES": ("STS", 0.6),
    "Banking77Classification": ("Classification", 0.5),
    "SciFact": ("Retrieval", 0.7),
}


def test_summarize_means_over_tasks_and_types():
    results = {name: result(name, score) for name, (_, score) in MIXED.items()}
    s = summarize(results)
    assert s.per_task == {name: score for name, (_, score) in MIXED.items()}
    assert s.per_type == {"Classification": 0.5, "Retrieval": 0.7, "STS": pytest.approx(0.7)}
    assert s.mean_task == pytest.approx(0.65) and s.mean_task_type == pytest.approx(
        (0.5 + 0.7 + 0.7) / 3
    )

    missing = summarize(results, [*MIXED, "STS13"])
    assert missing.per_task["STS13"] is None and missing.per_type["STS"] is None
    assert (
        missing.per_type["Retrieval"] == 0.7
        and missing.mean_task is None
        and missing.mean_task_type is None
    )

    with_nan = dict(results, SciFact=result("SciFact", float("nan")))
    assert summarize(with_nan).per_task["SciFact"] is None and summarize(with_nan).mean_task is None


def test_summary_equals_mteb_benchmark_aggregation(tmp_path):
    metrics = pytest.importorskip("mteb.benchmarks._benchmark_metrics")
    from mteb.results.task_result import TaskResult as MtebTaskResult

    rng = np.random.default_rng(1)
    ours, theirs = {}, []
    for name in MIXED:
        r = result(name, float(rng.random()))
        r.to_disk(tmp_path / f"{name}.json")
        ours[name] = TaskResult.from_disk(tmp_path / f"{name}.json")
        theirs.append(MtebTaskResult.from_disk(tmp_path / f"{name}.json"))
    s = summarize(ours)
    assert s.mean_task == pytest.approx(metrics._compute_mean_task(theirs), abs=1e-12)
    assert s.mean_task_type == pytest.approx(metrics._compute_mean_task_type(theirs), abs=1e-12)
    assert s.per_type == pytest.approx(metrics._compute_task_types(theirs), abs=1e-12)


def test_task_score_uses_only_the_benchmark_subsets():

    meta = TaskMetadata(
        name="AmazonCounterfactualClassification",
        type="Classification",
        hf_path="p",
        hf_revision="r",
        main_score="accuracy",
        hf_subsets=("en",),
    )
    r = result("AmazonCounterfactualClassification", 0.5, subsets=("en", "de"))
    r.scores["test"][1]["main_score"] = 0.9
    assert summarize({r.task_name: r}, [meta]).per_task[r.task_name] == 0.5
    # the registry's full task has 4 subsets: with 2 of them the task counts as missing
    assert summarize({r.task_name: r}).per_task[r.task_name] is None
    unknown = result("NotRegistered", 0.5, subsets=("en", "de"))
    unknown.scores["test"][1]["main_score"] = 0.9
    assert summarize({"NotRegistered": unknown}).per_task["NotRegistered"] == pytest.approx(0.7)


def test_results_take_task_types_only_from_the_metadata_they_are_given(tmp_path):
    folder = tmp_path / "org__a" / "r1"
    write_model_meta(folder, name="org/a", revision="r1")
    result("STS12", 0.5).to_disk(folder / "STS12.json")
    known = {"STS12": TaskMetadata(name="STS12", type="STS", hf_path="p", hf_revision="r",
                                   main_score="cosine_spearman")}
    assert results_module.load_results(tmp_path)["org/a"]["STS12"].task_type is None
    typed = results_module.load_results(tmp_path, known_tasks=known)
    assert typed["org/a"]["STS12"].task_type == "STS"
    one = {"STS12": result("STS12", 0.5)}
    assert results_module.summarize(one).task_types == {"STS12": "Unknown"}
    assert results_module.summarize(one, known_tasks=known).task_types == {"STS12": "STS"}
    assert compare({"m": one}, known_tasks=known)["m"].per_type == {"STS": 0.5}


def test_comparison_tables_put_models_side_by_side():
    from rich.console import Console

    summaries = compare(
        {
            "org/a": {"STS12": result("STS12", 0.81234)},
            "org/b": {"STS12": result("STS12", 0.5), "SciFact": result("SciFact", 0.25)},
        }
    )
    console = Console(record=True, width=200)
    for table in comparison_tables(summaries):
        console.print(table)
    text = console.export_text()
    assert "org/a" in text and "org/b" in text and "81.23" in text and "25.00" in text
    assert "Mean (TaskType)" in text and "—" in text  # org/a lacks SciFact
