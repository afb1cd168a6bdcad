"""``fastmteb run | tasks | results | bench`` in process (fakes for the model and data) and once as
``python -m fastmteb``."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest

from fastmteb.cli import main


@pytest.fixture(autouse=True)
def _restore_fastmteb_logger():
    """`run` configures the "fastmteb" logger; other tests must not inherit that."""
    log = logging.getLogger("fastmteb")
    saved = (log.level, list(log.handlers), log.propagate)
    yield
    log.setLevel(saved[0])
    log.handlers[:] = saved[1]
    log.propagate = saved[2]


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_run_end_to_end_then_results(tmp_path, fake_stack, capsys):
    out_dir = str(tmp_path / "out")
    code, out, err = run_cli(
        capsys,
        "run",
        "-m",
        "fake",
        "-t",
        "TaskA",
        "-t",
        "TaskC",
        "--output-folder",
        out_dir,
        "--dtype",
        "float16",
        "--batch-tokens",
        "999",
        "-q",
    )
    assert code == 0, err
    folder = tmp_path / "out" / "fake-org__fake-model" / "r1"
    assert sorted(p.name for p in folder.iterdir()) == [
        "TaskA.json",
        "TaskC.json",
        "model_meta.json",
        "run_settings.jsonl",
    ]
    assert "TaskA" in out and "TaskC" in out and "Mean (Task)" in out and str(folder) in out
    ((model, kwargs),) = fake_stack.encoder_loads
    assert model == "fake" and kwargs["dtype"] == "float16" and kwargs["batch_tokens"] == 999

    score_a = json.loads((folder / "TaskA.json").read_text())["scores"]["test"][0]["main_score"]
    code, out, _ = run_cli(capsys, "results", out_dir)
    assert code == 0 and "fake-org/fake-model" in out and f"{100 * score_a:.2f}" in out

    code, out, _ = run_cli(capsys, "results", out_dir, "--json")
    summary = json.loads(out)["fake-org/fake-model"]
    assert summary["per_task"]["TaskA"] == score_a and summary["task_types"] == {
        "TaskA": "Unknown",
        "TaskC": "Unknown",
    }  # not in the registry
    assert summary["mean_task"] == pytest.approx((score_a + summary["per_task"]["TaskC"]) / 2)


def test_run_resumes_and_overwrite_redoes(tmp_path, fake_stack, capsys):
    args = ["run", "-m", "fake", "-t", "TaskA", "--output-folder", str(tmp_path), "-q"]
    assert run_cli(capsys, *args)[0] == 0
    code, out, _ = run_cli(capsys, *args)
    assert code == 0 and "1 read from earlier runs" in out and fake_stack.calls.score["TaskA"] == 1
    assert run_cli(capsys, *args, "--overwrite")[0] == 0 and fake_stack.calls.score["TaskA"] == 2


def test_run_exits_non_zero_when_a_task_fails_and_writes_the_others(tmp_path, fake_stack, capsys):
    fake_stack.fail_score.add("TaskB")
    code, out, err = run_cli(
        capsys, "run", "-m", "fake", "-t", "TaskA", "TaskB", "--output-folder", str(tmp_path), "-q"
    )
    assert code == 1
    assert "1 task(s) failed" in err and "TaskB" in err and "scorer exploded" in err
    assert (tmp_path / "fake-org__fake-model" / "r1" / "TaskA.json").exists()
    assert not (tmp_path / "fake-org__fake-model" / "r1" / "TaskB.json").exists()


def test_run_bad_input_exits_2_with_a_message(tmp_path, fake_stack, capsys):
    code, _, err = run_cli(
        capsys, "run", "-m", "fake", "-t", "Nope", "--output-folder", str(tmp_path), "-q"
    )
    assert code == 2 and "Nope" in err and fake_stack.encoder_loads == []


def test_plain_run_uses_the_bundled_benchmark_and_model(tmp_path, fake_stack, capsys, monkeypatch):
    import fastmteb.runner as runner

    asked = []
    monkeypatch.setattr(
        runner, "_get_benchmark", lambda name: asked.append(name) or [fake_stack.tasks["TaskA"]]
    )
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "run", "-q")
    assert code == 0, err
    assert asked == ["fastmteb-mini"] and fake_stack.encoder_loads[0][0] is None
    assert (tmp_path / "results" / "fake-org__fake-model" / "r1" / "TaskA.json").exists()


def test_tasks_lists_the_registry_with_filters(capsys):
    code, out, _ = run_cli(capsys, "tasks", "--type", "sts")
    assert code == 0 and "STSBenchmark" in out and "SICK-R" in out and "SciFact" not in out
    code, out, _ = run_cli(capsys, "tasks", "-b", "fastmteb-mini")
    assert code == 0 and "SciFact" in out and "Banking77Classification" in out and "yes" in out
    assert "STS12" not in out
    code, _, err = run_cli(capsys, "tasks", "--type", "Nonsense")
    assert code == 2 and "Nonsense" in err


def test_results_of_several_models_side_by_side(tmp_path, capsys):
    from fastmteb.results import TaskResult, write_model_meta

    for model, score in (("org/a", 0.5), ("org/b", 0.75)):
        folder = tmp_path / model.replace("/", "__") / "r"
        write_model_meta(folder, name=model, revision="r")
        entry = {
            "cosine_spearman": score,
            "main_score": score,
            "hf_subset": "default",
            "languages": ["eng-Latn"],
        }
        TaskResult("rev", "STS12", "2.26.24", {"test": [entry]}).to_disk(folder / "STS12.json")
    code, out, _ = run_cli(capsys, "results", str(tmp_path / "org__a"), str(tmp_path / "org__b"))
    assert code == 0 and "org/a" in out and "org/b" in out and "50.00" in out and "75.00" in out
    code, out, _ = run_cli(capsys, "results", str(tmp_path), "-b", "fastmteb-mini", "--json")
    assert (
        code == 0 and json.loads(out)["org/a"]["mean_task"] is None
    )  # the benchmark's tasks are missing
    code, _, err = run_cli(capsys, "results", str(tmp_path / "nowhere"))
    assert code == 2 and "nowhere" in err


def test_bench_subcommand_reaches_the_encoding_benchmark(tmp_path, capsys):
    # A bad dtype is rejected by fastmteb.benchmark before any model loads: proves the wiring cheaply
    # (the benchmark itself is tested in tests/test_benchmark_cmd.py).
    code, _, err = run_cli(capsys, "bench", "--dtypes", "float64", "--output", str(tmp_path), "-q")
    assert code == 2 and "--dtypes" in err
    assert not (tmp_path / "bench.json").exists()


def test_python_dash_m_entry_point():
    proc = subprocess.run(
        [sys.executable, "-m", "fastmteb", "tasks", "--type", "BitextMining"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Tatoeba" in proc.stdout


def test_package_api_is_light_and_complete():
    code = (
        "import sys, fastmteb, fastmteb.cli; "
        "heavy = [m for m in ('torch', 'datasets', 'mteb', 'numba', 'sklearn') "
        "if m in sys.modules]; "
        "print(heavy, fastmteb.__version__)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.split()[0] == "[]", proc.stdout + proc.stderr

    import fastmteb
    from fastmteb.results import load_results

    assert fastmteb.load_results is load_results
    assert [m.name for m in fastmteb.get_tasks(["STS12", "SciFact"])] == ["STS12", "SciFact"]
    assert "Tatoeba" in [m.name for m in fastmteb.get_benchmark("fastmteb-mini")]
    assert fastmteb.get_task("SICK-R").type == "STS"
    with pytest.raises(ValueError, match="STS12"):
        fastmteb.get_task("STS-12")


def test_tasks_lists_every_mteb_task_whole_when_piped(capsys):
    """Not a terminal: one plain tab-separated line per task, no table, no cut names."""
    pytest.importorskip("mteb")
    from fastmteb.tasks.registry import coverage

    code, out, _ = run_cli(capsys, "tasks")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split("\t")[:2] == ["name", "type"]
    names = [line.split("\t")[0] for line in lines[1:] if not line.startswith("#")]
    runnable, _ = coverage()
    assert set(runnable) <= set(names) and "SciFactReranking" in names
    longest = max(runnable, key=len)
    assert longest in names and "…" not in out
    code, out, _ = run_cli(capsys, "tasks", "-b", "MTEB(Multilingual, v2)", "--type", "STS")
    row = next(line.split("\t") for line in out.splitlines() if line.startswith("STS22.v2\t"))
    assert row[2] == "test"


def test_run_filters_narrow_tasks_like_mteb():
    pytest.importorskip("mteb")
    import argparse

    from fastmteb.cli import _filtered_tasks

    def args(**kw):
        base = {"tasks": ["STS22.v2", "STS12"], "subsets": None, "languages": None, "splits": None}
        return argparse.Namespace(**{**base, **kw})

    metas = _filtered_tasks(args(languages=["deu"]), None)
    assert [m.name for m in metas] == ["STS22.v2"]  # STS12 is English only: dropped
    assert set(metas[0].hf_subsets) == {"de", "de-en", "de-fr", "de-pl"}
    metas = _filtered_tasks(args(subsets=["en", "default"], splits=["test"]), None)
    assert [m.hf_subsets for m in metas] == [("en",), ("default",)]
    with pytest.raises(ValueError, match="no task has the requested"):
        _filtered_tasks(args(splits=["nope"]), None)


def test_run_with_filters_that_match_nothing_exits_2(tmp_path, capsys):
    pytest.importorskip("mteb")
    code, _, err = run_cli(
        capsys, "run", "-t", "STS12", "--languages", "fra", "--output-folder", str(tmp_path), "-q"
    )
    assert code == 2 and "--languages" in err
