"""bench/gpu_check.sh --dry-run: every section of the prepared GPU check runs on this CPU.

The device run gets one try in a short lease, so its plumbing is tested here: the dry run fills
its own temporary carried folder (two tasks, a few rows), runs each section with tiny shapes
(Triton interpreted, the CPU kernels uncompiled) with mteb blocked as on the device image, and
writes summary.json / summary.md into OUT.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from shared_data import REPO_ROOT, needs_shared_data

SECTIONS = ("env", "bench", "encode", "run", "tests", "faiss", "summary")


@needs_shared_data
def test_dry_run_runs_every_section(tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    out = tmp_path / "out"
    env = {**os.environ, "OUT": str(out), "PYTHON": sys.executable, "TMPDIR": str(scratch)}
    done = subprocess.run(["bash", "bench/gpu_check.sh", "--dry-run"], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # the device tool returns at most 8 files; the script's scratch folder is gone
    assert sorted(p.name for p in out.iterdir()) == ["logs.tar.gz", "summary.json", "summary.md"]
    assert not list(scratch.glob("fastmteb-gpu-check.*"))
    summary = json.loads((out / "summary.json").read_text())
    status = dict(line.split(": ", 1) for line in summary["sections"])
    assert set(status) >= set(SECTIONS) - {"summary"}, status  # summary writes before its line
    assert all(status[name].startswith("rc=0 ") for name in status), (status, done.stdout[-3000:])

    assert {r["method"] for r in summary["bench"]} >= {"matmul", "fastmteb", "torch_mm_topk"}
    assert not [r for r in summary["bench"] if "error" in r], summary["bench"]
    encode = {(r["method"], r["dtype"]) for r in summary["encode"]}
    assert ("fastmteb", "bfloat16") in encode and ("sentence_transformers", "bfloat16") in encode
    assert all(r["tokens"] > 0 and r["tokens_per_s"] > 0 for r in summary["encode"])
    cosines = [r["min_cosine_vs_fastmteb"] for r in summary["encode"] if r["method"] != "fastmteb"]
    assert min(cosines) > 0.99  # both encoded the same random-weight model
    # a first run, and a warm one when the first was quick (here it is)
    assert [run["run"] for run in summary["run"]] == ["first (compiles the kernels)", "warm"]
    for run in summary["run"]:
        assert run["failures"] == [] and run["evaluated"] == len(run["tasks"]) == 1, run
        assert {"Encoding", "Scoring"} <= set(run["phase_seconds"]), run
    text = (out / "summary.md").read_text()
    for target in ("torch.mm+torch.topk", "matmul TFLOP/s", "SentenceTransformer.encode",
                   "shared-data run"):
        assert target in text
