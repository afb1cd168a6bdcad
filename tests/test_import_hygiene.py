"""From the repo root, every import must resolve to the installed packages, never to a folder here.

``python -m pytest`` and ``python -m fastmteb`` put the repo root first on ``sys.path``. A regular
package at the root named like a dependency's module shadows it: ``kernels/__init__.py`` once
shadowed Hugging Face's ``kernels`` (imported by transformers >= 5.25) and broke every run.
"""

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OWN_TOP_LEVEL = {"fastmteb"}


def _run_from_root(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_the_repo_root_exposes_no_importable_name_but_fastmteb():
    importable = {
        entry.stem if entry.is_file() else entry.name
        for entry in ROOT.iterdir()
        if (entry.is_file() and entry.suffix == ".py") or (entry / "__init__.py").is_file()
    }
    assert importable <= OWN_TOP_LEVEL, (
        f"{sorted(importable - OWN_TOP_LEVEL)} at the repo root would shadow any installed module of "
        "that name when run from the root; keep only a plain folder there (see kernels/README.md)"
    )


def test_plain_root_folders_lose_to_installed_packages_of_the_same_name():
    """A folder without __init__.py is a namespace portion: an installed package of that name wins."""
    installed = importlib.metadata.packages_distributions()
    clashes = sorted(
        entry.name for entry in ROOT.iterdir()
        if entry.is_dir() and entry.name in installed and entry.name not in OWN_TOP_LEVEL
    )
    if not clashes:
        pytest.skip("no installed distribution shares a top-level name with a folder of the repo root")
    probe = "; ".join(f"import {name}" for name in clashes) + "; print(__import__('json').dumps({"
    probe += ", ".join(f"{name!r}: getattr({name}, '__file__', None)" for name in clashes) + "}))"
    done = _run_from_root("-c", probe)
    assert done.returncode == 0, done.stderr
    for name, file in json.loads(done.stdout).items():
        assert file is not None and not Path(file).resolve().is_relative_to(ROOT / name), (name, file)


def test_transformers_hub_kernels_imports_from_the_repo_root():
    done = _run_from_root("-c", "import transformers.integrations.hub_kernels")
    assert done.returncode == 0, done.stderr[-3000:]


def test_python_m_fastmteb_run_from_the_repo_root(tmp_path, tiny_bert):
    data = tmp_path / "data" / "STSBenchmark"
    data.mkdir(parents=True)
    pairs = [("A man plays a guitar.", "A person plays music.", 3.8), ("A cat sleeps.", "Stocks fell.", 0.2),
             ("Two dogs run.", "Dogs are running.", 4.5), ("It rains.", "The sun shines.", 1.0)]
    rows = [{"sentence1": a, "sentence2": b, "score": s} for a, b, s in pairs]
    (data / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "results"
    done = _run_from_root(
        "-m", "fastmteb", "run", "-m", str(tiny_bert), "-t", "STSBenchmark", "--data-dir",
        str(tmp_path / "data"), "--output-folder", str(out), "--dtype", "float32", "-q",
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    written = list(out.rglob("STSBenchmark.json"))
    assert len(written) == 1, sorted(map(str, out.rglob("*")))
    assert "main_score" in written[0].read_text()
