"""The runner on fakes (tests/runner/conftest.py): layout, schema, resume, failures, atomicity."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

import fastmteb.results as results_mod
from fastmteb.results import TaskResult
from fastmteb.runner import TaskFailedError

MODEL_DIR = Path("fake-org__fake-model") / "r1"
SUBSET_KEYS = [
    "cosine_pearson",
    "cosine_spearman",
    "manhattan_pearson",
    "pearson",
    "spearman",
    "main_score",
    "hf_subset",
    "languages",
    "mteb_version",
]


def result_dir(tmp_path: Path) -> Path:
    return tmp_path / "results" / MODEL_DIR


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_writes_mteb_layout_schema_and_order(tmp_path, fake_stack):
    run = fake_stack.run(tmp_path, ["TaskA", "TaskC"])
    folder = result_dir(tmp_path)
    assert listing(folder) == ["TaskA.json", "TaskC.json", "model_meta.json", "run_settings.jsonl"]
    assert [r.task_name for r in run] == ["TaskA", "TaskC"] and not run.failures
    assert run.output_dir == folder

    data = json.loads((folder / "TaskC.json").read_text())
    assert list(data) == [
        "dataset_revision",
        "task_name",
        "mteb_version",
        "scores",
        "evaluation_time",
        "kg_co2_emissions",
        "date",
        "evaluation_phases",
        "fastmteb",  # provenance: mteb's TaskResult ignores the extra key
    ]
    assert data["dataset_revision"] == "rev-taskc" and data["task_name"] == "TaskC"
    assert data["mteb_version"] == "2.26.24" and data["kg_co2_emissions"] is None
    entries = data["scores"]["test"]
    assert [e["hf_subset"] for e in entries] == ["en", "de"]  # metadata order
    for entry in entries:
        assert list(entry) == SUBSET_KEYS
        assert entry["main_score"] == entry["cosine_spearman"]
        assert entry["languages"] == ["eng-Latn"]
    phases = {(p["name"], p["subset"]) for p in data["evaluation_phases"]}
    assert {
        ("Data loading", "en"),
        ("Preparing", "de"),
        ("Encoding", ""),
        ("Scoring", "de"),
    } <= phases
    assert all(p["end"] >= p["start"] >= 0 for p in data["evaluation_phases"])
    assert data["evaluation_time"] > 0 and data["date"] > 1.7e9

    settings = [
        json.loads(line) for line in (folder / "run_settings.jsonl").read_text().splitlines()
    ]
    assert [(r["task"], r["splits"], r["subsets"]) for r in settings] == [
        ("TaskA", ["test"], ["default"]),
        ("TaskC", ["test"], ["de", "en"]),
    ]
    assert (
        settings[0]["version"]["fastmteb"] and settings[0]["encode_kwargs"]["batch_tokens"] == 16384
    )

    meta = json.loads((folder / "model_meta.json").read_text())
    assert (
        meta["name"] == "fake-org/fake-model"
        and meta["revision"] == "r1"
        and meta["embed_dim"] == 8
    )
    # the file text shows rounding to 6 decimals (mteb's to_disk)
    for value in entries[0].values():
        if isinstance(value, float):
            assert value == round(value, 6)


def test_scores_are_those_of_the_task_type_on_the_right_rows(tmp_path, fake_stack):
    fake_stack.run(tmp_path, ["TaskB"])
    rows = fake_stack.rows["TaskB"]
    prepared = {
        "s1": [r["sentence1"] for r in rows],
        "s2": [r["sentence2"] for r in rows],
        "gold": np.array([r["score"] for r in rows]),
    }
    embed = fake_stack.embed
    expected = fake_stack.task_type.score(
        fake_stack.tasks["TaskB"],
        prepared,
        {
            "sentence1": np.stack([embed(t) for t in prepared["s1"]]),
            "sentence2": np.stack([embed(t) for t in prepared["s2"]]),
        },
    )
    entry = TaskResult.from_disk(result_dir(tmp_path) / "TaskB.json").scores["test"][0]
    for key, value in expected.items():
        assert entry[key] == round(float(value), 6)


def test_every_distinct_text_is_encoded_once_across_tasks(tmp_path, fake_stack):
    fake_stack.rows["TaskB"] = fake_stack.rows["TaskA"]  # B repeats every text of A
    fake_stack.run(tmp_path, ["TaskA", "TaskB", "TaskC"])
    encoded = fake_stack.calls.encoded_texts
    distinct = {
        r[k]
        for name in ("TaskA", "TaskC")
        for r in fake_stack.rows[name]
        for k in ("sentence1", "sentence2")
    }
    assert sorted(encoded) == sorted(distinct)


def test_raw_data_is_freed_before_encoding(tmp_path, fake_stack):
    fake_stack.run(tmp_path, ["TaskA", "TaskB", "TaskC"])
    assert len(fake_stack.calls.raw_refs) == 4  # TaskC has two subsets
    assert fake_stack.calls.raw_alive_at_encoding == 0


def test_resume_skips_finished_tasks_and_overwrite_redoes_them(tmp_path, fake_stack):
    first = fake_stack.run(tmp_path, ["TaskA", "TaskB"])
    calls = fake_stack.calls
    assert calls.load == {"TaskA": 1, "TaskB": 1} and calls.score == {"TaskA": 1, "TaskB": 1}
    mtime = (result_dir(tmp_path) / "TaskA.json").stat().st_mtime_ns

    second = fake_stack.run(tmp_path, ["TaskA", "TaskB", "TaskC"])
    assert calls.load == {"TaskA": 1, "TaskB": 1, "TaskC": 2} and calls.score["TaskA"] == 1
    assert second.skipped == ["TaskA", "TaskB"]
    assert [r.scores for r in second][:2] == [r.scores for r in first]
    assert (result_dir(tmp_path) / "TaskA.json").stat().st_mtime_ns == mtime

    fake_stack.run(tmp_path, ["TaskA"], overwrite=True)
    assert calls.load["TaskA"] == 2 and calls.score["TaskA"] == 2


def test_resume_evaluates_only_missing_subsets_and_merges(tmp_path, fake_stack):
    fake_stack.run(tmp_path, ["TaskC"])
    path = result_dir(tmp_path) / "TaskC.json"
    full = json.loads(path.read_text())
    partial = dict(full, scores={"test": [full["scores"]["test"][1]]})  # only "de" left
    path.write_text(json.dumps(partial))
    fake_stack.run(tmp_path, ["TaskC"])
    assert fake_stack.calls.load["TaskC"] == 3  # 2 + the missing "en"
    merged = json.loads(path.read_text())
    assert merged["scores"] == full["scores"]


def test_unreadable_or_foreign_revision_file_is_redone(tmp_path, fake_stack):
    fake_stack.run(tmp_path, ["TaskA", "TaskB"])
    (result_dir(tmp_path) / "TaskA.json").write_text('{"task_name": "TaskA", "scores": ')
    data = json.loads((result_dir(tmp_path) / "TaskB.json").read_text())
    (result_dir(tmp_path) / "TaskB.json").write_text(
        json.dumps(dict(data, dataset_revision="older"))
    )
    run = fake_stack.run(tmp_path, ["TaskA", "TaskB"])
    assert run.skipped == [] and fake_stack.calls.score == {"TaskA": 2, "TaskB": 2}
    assert "unreadable" in run.reevaluated["TaskA"] and "'older'" in run.reevaluated["TaskB"]
    assert TaskResult.from_disk(result_dir(tmp_path) / "TaskB.json").dataset_revision == "rev-taskb"


def test_failing_task_is_recorded_and_the_others_are_written(tmp_path, fake_stack):
    fake_stack.fail_score.add("TaskB")
    fake_stack.fail_prepare.add("TaskC")
    with pytest.raises(TaskFailedError) as info:
        fake_stack.run(tmp_path, ["TaskA", "TaskB", "TaskC"])
    run = info.value.results
    assert [r.task_name for r in run] == ["TaskA"]
    assert [(f.task_name, f.phase) for f in run.failures] == [
        ("TaskB", "score"),
        ("TaskC", "prepare"),
    ]
    assert (
        "scorer exploded on TaskB" in run.failures[0].error
        and "RuntimeError" in run.failures[0].error
    )
    assert "'score' is missing" in run.failures[1].error
    assert "TaskB (score)" in str(info.value)
    assert listing(result_dir(tmp_path)) == [
        "TaskA.json",
        "model_meta.json",
        "run_settings.jsonl",
    ]  # nothing partial, no temp file

    quiet = fake_stack.run(tmp_path, ["TaskA", "TaskB"], raise_error=False)
    assert quiet.skipped == ["TaskA"] and [f.task_name for f in quiet.failures] == ["TaskB"]


def test_scorer_without_the_main_score_is_a_named_error(tmp_path, fake_stack, monkeypatch):
    fake_stack.tasks["TaskA"] = type(fake_stack.tasks["TaskA"])(
        **{**fake_stack.tasks["TaskA"].__dict__, "main_score": "ndcg_at_10"}
    )
    run = fake_stack.run(tmp_path, ["TaskA"], raise_error=False)
    (failure,) = run.failures
    assert "ndcg_at_10" in failure.error and "TaskA" in failure.error and failure.phase == "score"
    assert not (result_dir(tmp_path) / "TaskA.json").exists()


def test_malformed_rows_name_task_request_and_row(tmp_path, fake_stack):
    fake_stack.rows["TaskA"][3]["sentence2"] = None
    run = fake_stack.run(tmp_path, ["TaskA", "TaskB"], raise_error=False)
    (failure,) = run.failures
    assert failure.phase == "requests"
    assert (
        "'TaskA'" in failure.error and "'sentence2'" in failure.error and "row 3" in failure.error
    )
    assert listing(result_dir(tmp_path)) == ["TaskB.json", "model_meta.json", "run_settings.jsonl"]


def test_unknown_task_fails_before_any_work(tmp_path, fake_stack):
    with pytest.raises(ValueError, match="NoSuchTask"):
        fake_stack.run(tmp_path, ["TaskA", "NoSuchTask"])
    assert fake_stack.encoder_loads == [] and not (tmp_path / "results").exists()
    with pytest.raises(ValueError, match="no tasks"):
        fake_stack.run(tmp_path, [])


def test_crash_between_write_and_rename_leaves_the_old_file(tmp_path, fake_stack, monkeypatch):
    fake_stack.run(tmp_path, ["TaskA"])
    path = result_dir(tmp_path) / "TaskA.json"
    before = path.read_bytes()

    real_replace = results_mod.os.replace
    crashed = []

    def crash(src, dst):
        if Path(dst).name != "TaskA.json":
            return real_replace(src, dst)
        assert (
            json.loads(Path(src).read_text()) and Path(src).parent == Path(dst).parent
        )  # complete, same folder
        crashed.append(dst)
        raise KeyboardInterrupt

    monkeypatch.setattr(results_mod.os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        fake_stack.run(tmp_path, ["TaskA", "TaskB"], overwrite=True)
    assert crashed and path.read_bytes() == before
    assert listing(result_dir(tmp_path)) == ["TaskA.json", "model_meta.json", "run_settings.jsonl"]


def test_same_run_twice_gives_the_same_scores(tmp_path, fake_stack):
    a = fake_stack.run(tmp_path / "one", ["TaskA", "TaskC"])
    b = fake_stack.run(tmp_path / "two", ["TaskA", "TaskC"])
    assert [r.to_dict(rounded=True)["scores"] for r in a] == [
        r.to_dict(rounded=True)["scores"] for r in b
    ]
    assert (tmp_path / "one/results" / MODEL_DIR / "TaskC.json").exists()


def test_benchmark_and_tasks_are_merged_in_order_without_duplicates(tmp_path, fake_stack):
    run = fake_stack.run(tmp_path, ["TaskC", "TaskA"], benchmark="fake-bench")
    assert [r.task_name for r in run] == ["TaskA", "TaskB", "TaskC"]


def test_encoder_options_are_passed_through(tmp_path, fake_stack):
    fake_stack.run(
        tmp_path, ["TaskA"], device="cpu", dtype="float16", batch_tokens=512, trust_remote_code=True
    )
    ((model, kwargs),) = fake_stack.encoder_loads
    assert model == "fake"
    assert kwargs == {
        "device": "cpu",
        "dtype": "float16",
        "prompts": None,
        "trust_remote_code": True,
        "batch_tokens": 512,
    }


def test_evaluation_time_shares_the_encoding_time(tmp_path, fake_stack):
    run = fake_stack.run(tmp_path, ["TaskA", "TaskB"])
    for result in run:
        phases = result.evaluation_phases
        own = sum(p["end"] - p["start"] for p in phases if p["name"] != "Encoding")
        (encoding,) = [p for p in phases if p["name"] == "Encoding"]
        assert own <= result.evaluation_time <= own + (encoding["end"] - encoding["start"]) + 0.05
        assert not math.isnan(result.get_score())


def test_a_cached_run_computes_the_fingerprint_once(tmp_path, fake_stack):
    """With cache_dir the pool's cache key is the fingerprint the run recorded, not a second
    hash of the weights (a torch encoder's fingerprint hashes them)."""
    from fastmteb.encoding import TextPool

    from tests.runner.conftest import FakeEncoder

    reads = []

    class Watched(FakeEncoder):
        @property
        def fingerprint(self):
            reads.append(1)
            return "watched"

    fake_stack.replace(load_encoder=lambda model, **kw: Watched(fake_stack.calls), make_pool=TextPool)
    run = fake_stack.run(tmp_path, ["TaskA"], cache_dir=tmp_path / "cache")
    assert [r.task_name for r in run] == ["TaskA"] and len(reads) == 1
    assert (tmp_path / "cache" / "watched").is_dir()  # the pool cached under that fingerprint

