"""SIGKILL a run at >= 20 random moments, restart until done, compare with an uninterrupted run.

CI-sized version of ``bench/kill_test.py``: the tiny hashing model over four small tasks of the
bundled benchmark (reranking, STS, summarization, bitext mining). A fresh helper process
(``bench/kill_test.py --launcher fork``) imports everything once and forks each attempt, which runs
``fastmteb.evaluate`` with an embedding cache and is killed with SIGKILL at a random moment.
FASTMTEB_KILL_POINTS changes the number of kills (default 20).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="SIGKILL and fork are POSIX-only"
)
KILL_POINTS = int(os.environ.get("FASTMTEB_KILL_POINTS", "20"))


def test_kill_resume_equals_uninterrupted_run(kill_test, tmp_path):
    # A fresh process forks the attempts: this pytest process may already run thread pools
    # (torch, Numba parallel=True) that are not fork-safe.
    report_path = tmp_path / "report.json"
    subprocess.run(
        [sys.executable, str(REPO / "bench" / "kill_test.py"), "--model", "tiny", "--launcher",
         "fork", "--tasks", *kill_test.CI_TASKS, "--kills", str(KILL_POINTS), "--seed", "1234",
         "--work", str(tmp_path / "work"), "--json", str(report_path)],
        timeout=1200, capture_output=True, check=False,
    )
    report = json.loads(report_path.read_text())
    assert sorted(report["tasks"]) == sorted(kill_test.CI_TASKS)
    assert report["kills"] >= KILL_POINTS >= 1
    assert len(set(report["kill_delays"])) == report["kills"]  # distinct random kill points
    assert report["tasks_lost"] == []
    assert report["tasks_redone"] == []
    assert report["folder_problems"] == []  # no partial JSON, no visible temporary file, ever
    assert report["failed_exits"] == []
    assert report["score_mismatches"] == []  # every completed campaign equals the reference run
    assert report["max_score_difference"] == 0.0
    assert report["leftover_output_temporaries"] == []
    assert report["campaigns"] >= 1 and report["ok"]


def _result_file(task: str, score: float, date: float = 1.0) -> dict:
    entry = {"main_score": score, "hf_subset": "default", "languages": ["eng-Latn"]}
    return {"task_name": task, "scores": {"test": [entry]}, "date": date}


def test_snapshot_flags_partial_files_and_visible_temporaries(kill_test, tmp_path):
    """The checker itself can fail: half-written JSON and visible temporaries are reported."""
    folder = tmp_path / "m" / "rev"
    folder.mkdir(parents=True)
    (folder / "A.json").write_text(json.dumps(_result_file("A", 0.5)))
    full = json.dumps(_result_file("B", 0.25), indent=2)
    (folder / "B.json").write_text(full[: len(full) // 2])
    (folder / "C.json.tmp").write_text("{}")
    (folder / ".D.json.123.ab.tmp").write_text("{")
    (folder / "run_settings.jsonl").write_text('{"task": "A"}\n{"task": ')
    snap = kill_test.snapshot(tmp_path)
    assert list(snap.results) == ["A"]
    assert any("B.json" in p and "partial" in p for p in snap.problems)
    assert any("visible temporary" in p and "C.json.tmp" in p for p in snap.problems)
    assert any("run_settings.jsonl" in p for p in snap.problems)
    assert len(snap.temporaries) == 2  # the hidden one is counted, not a problem while running


def test_score_differences_detects_changed_and_missing_tasks(kill_test):
    want = {"A": _result_file("A", 0.5), "B": _result_file("B", 0.25)}
    same, largest = kill_test.score_differences(want, want)
    assert same == [] and largest == 0.0
    got = {"A": _result_file("A", 0.5000001)}
    issues, largest = kill_test.score_differences(got, want)
    assert any("B" in i for i in issues) and any("A" in i for i in issues)
    assert largest == pytest.approx(1e-7)
    assert kill_test.score_differences(got, {"A": want["A"]}, tolerance=1e-6)[0] == []
