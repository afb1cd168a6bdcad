"""Kill test: SIGKILL a run at random moments, restart it until it completes, compare with an
uninterrupted run.

    python bench/kill_test.py                          # real CLI, bundled MiniLM, fastmteb-mini
    python bench/kill_test.py --kills 30 --device cuda  # on a GPU machine
    python bench/kill_test.py --model tiny --launcher fork --tasks SICK-R Tatoeba   # seconds, CPU

What is checked (the issue's "Faults" contract):

* after every kill: every visible ``*.json`` in the output folder is complete, valid JSON in mteb's
  TaskResult schema (``run_settings.jsonl``: every line valid JSON); no visible temporary file;
* no finished task is lost or redone: a result file, once seen, is present after every later
  attempt with the same ``date`` (the timestamp the runner writes when it finishes a task);
* when the run completes (exit 0) its scores equal the uninterrupted run's, file by file, and no
  temporary file (hidden or not) is left in the output folder; leftovers in the cache folder are
  counted and reported.

Launchers: ``cli`` runs ``python -m fastmteb run ...`` (the real command line); ``driver`` runs this
script as a child evaluating the tiny hashing model through ``fastmteb.evaluate`` (the CLI cannot
take a Python callable); ``fork`` forks the same child from a parent that imported everything once
(fast; used by the CI test ``tests/robustness/test_kill_resume.py``). All three end with SIGKILL.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
#: Small tasks of the bundled benchmark covering four task types (reranking, STS, summarization,
#: bitext mining); with the tiny model a full run takes a few seconds.
CI_TASKS = ("SICK-R", "SummEvalSummarization.v2", "SciFactReranking", "Tatoeba")
BENCHMARK = "fastmteb-mini"
TINY_DIM = 48


# ---------------------------------------------------------------------------------------------
# The tiny deterministic model (hashed bag of words; the same vector for a text in every process)


def tiny_model(texts: list[str]) -> Any:
    """``texts -> float32 [n, 48]``: signed feature hashing of lower-cased words (blake2b)."""
    import numpy as np

    out = np.zeros((len(texts), TINY_DIM), dtype=np.float32)
    for row, text in enumerate(texts):
        for word in text.lower().split():
            h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
            out[row, h % TINY_DIM] += 1.0 if (h >> 32) & 1 else -1.0
    return out


def _task_metas(names: Sequence[str] | None, benchmark: str) -> list[Any]:
    """The benchmark's task objects (with its split/subset selection), optionally only ``names``."""
    import fastmteb

    metas = fastmteb.get_benchmark(benchmark)
    if not names:
        return metas
    by_name = {m.name: m for m in metas}
    return [by_name[n] if n in by_name else fastmteb.get_task(n) for n in names]


def run_tiny(out: str, cache: str | None, names: Sequence[str] | None, benchmark: str) -> int:
    """One evaluation of the tiny model; exit status as the CLI's (1 when a task failed)."""
    import fastmteb
    from fastmteb.encoding import CallableEncoder

    results = fastmteb.evaluate(
        # the fingerprint lets the cache hold a callable's vectors (fastmteb cannot see its weights)
        CallableEncoder(tiny_model, name="fastmteb-kill-test/tiny-hash", fingerprint="tiny-hash-v1"),
        _task_metas(names, benchmark),
        output_folder=out,
        cache_dir=cache,
        progress=False,
        raise_error=False,
    )
    for failure in results.failures:
        print(f"FAILED {failure}", file=sys.stderr)
    return 1 if results.failures else 0


# ---------------------------------------------------------------------------------------------
# Launchers: start one attempt, wait up to a delay, SIGKILL


class Attempt:
    """A started run; ``wait(timeout)`` -> finished?, ``kill()`` sends SIGKILL."""

    returncode: int | None = None

    def wait(self, timeout: float | None) -> bool:  # pragma: no cover - interface
        raise NotImplementedError

    def kill(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError


class _ProcessAttempt(Attempt):
    def __init__(self, argv: list[str], log: Path, env: dict[str, str]) -> None:
        self._log = open(log, "ab")
        self.proc = subprocess.Popen(
            argv, stdout=self._log, stderr=subprocess.STDOUT, cwd=REPO, env=env,
            start_new_session=True,  # its own process group: the kill reaches any child it starts
        )

    def wait(self, timeout: float | None) -> bool:
        try:
            self.returncode = self.proc.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            return False
        finally:
            if self.proc.returncode is not None:
                self._log.close()

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.returncode = self.proc.wait()
        self._log.close()


class _ForkAttempt(Attempt):
    def __init__(self, target: Callable[[], int]) -> None:
        import multiprocessing

        self.proc = multiprocessing.get_context("fork").Process(
            target=_forked_main, args=(target,), daemon=True
        )
        self.proc.start()

    def wait(self, timeout: float | None) -> bool:
        self.proc.join(timeout)
        if self.proc.exitcode is None:
            return False
        self.returncode = self.proc.exitcode
        return True

    def kill(self) -> None:
        self.proc.kill()  # SIGKILL
        self.proc.join()
        self.returncode = self.proc.exitcode


def _forked_main(target: Callable[[], int]) -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    os._exit(target())


Launcher = Callable[[Path, Path], Attempt]


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("HF_DATASETS_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    env["HF_DATASETS_DISABLE_PROGRESS_BARS"] = "1"
    return env


def cli_launcher(
    model: str | None, names: Sequence[str] | None, benchmark: str, device: str | None, log: Path
) -> Launcher:
    """``python -m fastmteb run`` (the real CLI) with ``--cache-dir``."""

    def launch(out: Path, cache: Path) -> Attempt:
        argv = [sys.executable, "-m", "fastmteb", "run", "--output-folder", str(out),
                "--cache-dir", str(cache), "-q"]
        argv += ["-m", model] if model else []
        argv += ["--device", device] if device else []
        argv += ["-t", *names] if names else ["-b", benchmark]
        return _ProcessAttempt(argv, log, _child_env())

    return launch


def driver_launcher(names: Sequence[str] | None, benchmark: str, log: Path) -> Launcher:
    """This script as a child process evaluating the tiny model (``fastmteb.evaluate``)."""

    def launch(out: Path, cache: Path) -> Attempt:
        argv = [sys.executable, str(Path(__file__).resolve()), "--child", str(out), str(cache),
                "--benchmark", benchmark, "--tasks", *(names or [])]
        return _ProcessAttempt(argv, log, _child_env())

    return launch


def fork_launcher(names: Sequence[str] | None, benchmark: str) -> Launcher:
    """A fork of this process evaluating the tiny model: the imports are paid once.

    The parent must not have run torch or Numba thread pools before forking (it only imports).
    """
    os.environ.update(_child_env())
    import fastmteb  # noqa: F401 - imported once, inherited by every fork
    import fastmteb.encoding  # noqa: F401
    import fastmteb.kernels  # noqa: F401
    import fastmteb.tasks.types  # noqa: F401
    import fastmteb.data.loading  # noqa: F401

    def launch(out: Path, cache: Path) -> Attempt:
        return _ForkAttempt(lambda: run_tiny(str(out), str(cache), names, benchmark))

    return launch


# ---------------------------------------------------------------------------------------------
# What an output folder holds at one moment


@dataclass
class Snapshot:
    """Results visible in an output folder and what is wrong with the folder."""

    results: dict[str, dict[str, Any]] = field(default_factory=dict)  # task -> file content
    problems: list[str] = field(default_factory=list)  # partial/invalid files, visible temporaries
    temporaries: list[str] = field(default_factory=list)  # every *.tmp file (hidden ones too)


def snapshot(out: Path) -> Snapshot:
    """Read every file under ``out`` the way a user or mteb would, and record what is wrong."""
    from fastmteb.results import MODEL_META_FILE, ResultFileError, TaskResult

    snap = Snapshot()
    if not out.exists():
        return snap
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        rel = str(path.relative_to(out))
        if path.name.endswith(".tmp") or ".tmp-" in path.name:
            snap.temporaries.append(rel)
            if not path.name.startswith("."):
                snap.problems.append(f"visible temporary file {rel}")
            continue
        if path.name.startswith("."):
            continue
        text = path.read_bytes()
        if path.suffix == ".jsonl":
            for n, line in enumerate(text.decode("utf-8", "replace").splitlines()):
                try:
                    json.loads(line)
                except json.JSONDecodeError:
                    snap.problems.append(f"{rel}: line {n} is not complete JSON")
            continue
        if path.suffix != ".json":
            snap.problems.append(f"unexpected file {rel}")
            continue
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            snap.problems.append(f"{rel}: partial or invalid JSON ({e})")
            continue
        if path.name == MODEL_META_FILE:
            continue
        try:
            TaskResult.from_dict(data, source=rel)
        except ResultFileError as e:
            snap.problems.append(str(e))
            continue
        snap.results[data["task_name"]] = data
    return snap


def score_differences(
    got: dict[str, dict[str, Any]], want: dict[str, dict[str, Any]], tolerance: float = 0.0
) -> tuple[list[str], float]:
    """(differences beyond ``tolerance``, largest absolute difference) between two runs' scores."""
    issues: list[str] = []
    largest = 0.0

    def walk(a: Any, b: Any, where: str) -> None:
        nonlocal largest
        if isinstance(a, dict) and isinstance(b, dict):
            if list(a) != list(b):
                issues.append(f"{where}: keys {sorted(set(a) ^ set(b))} differ")
            for key in a.keys() & b.keys():
                walk(a[key], b[key], f"{where}.{key}")
        elif isinstance(a, list) and isinstance(b, list):
            if len(a) != len(b):
                issues.append(f"{where}: {len(a)} vs {len(b)} items")
            for i, (x, y) in enumerate(zip(a, b)):
                walk(x, y, f"{where}[{i}]")
        elif isinstance(a, float) and isinstance(b, float):
            if math.isnan(a) and math.isnan(b):
                return
            diff = abs(a - b)
            largest = max(largest, diff) if not math.isnan(diff) else math.inf
            if not diff <= tolerance:
                issues.append(f"{where}: {a!r} != {b!r}")
        elif a != b:
            issues.append(f"{where}: {a!r} != {b!r}")

    for task in sorted(set(got) | set(want)):
        if task not in got or task not in want:
            issues.append(f"{task}: present in only one run")
            continue
        walk(got[task]["scores"], want[task]["scores"], task)
    return issues, largest


# ---------------------------------------------------------------------------------------------
# The kill / restart loop


@dataclass
class KillReport:
    kills: int = 0
    attempts: int = 0
    campaigns: int = 0
    reference_seconds: float = 0.0
    seconds: float = 0.0
    kill_delays: list[float] = field(default_factory=list)
    tasks_redone: list[str] = field(default_factory=list)
    tasks_lost: list[str] = field(default_factory=list)
    folder_problems: list[str] = field(default_factory=list)
    score_mismatches: list[str] = field(default_factory=list)
    failed_exits: list[str] = field(default_factory=list)
    max_score_difference: float = 0.0
    leftover_output_temporaries: list[str] = field(default_factory=list)
    leftover_cache_temporaries: int = 0
    corrupt_cache_shards: int = 0

    @property
    def ok(self) -> bool:
        return not (self.tasks_redone or self.tasks_lost or self.folder_problems
                    or self.score_mismatches or self.failed_exits
                    or self.leftover_output_temporaries)


def reference_run(
    launch: Launcher, work: Path, *, warmup: bool = True
) -> tuple[dict[str, dict[str, Any]], float]:
    """An uninterrupted run (own output and cache folders): (results by task, wall seconds).

    With ``warmup`` a first run fills the compiled-kernel caches (Numba) and must give exactly the
    same scores as the timed second one (runs are deterministic); kill delays are drawn from the
    timed run's length, so that they land inside a warm run.
    """
    results: dict[str, dict[str, Any]] = {}
    seconds = 0.0
    for name in (["warmup"] if warmup else []) + ["reference"]:
        started = time.monotonic()
        attempt = launch(work / name, work / f"{name}-cache")
        attempt.wait(None)
        seconds = time.monotonic() - started
        if attempt.returncode != 0:
            raise RuntimeError(f"the uninterrupted {name} run failed (exit {attempt.returncode})")
        snap = snapshot(work / name)
        if snap.problems or not snap.results:
            raise RuntimeError(f"the uninterrupted {name} run left a bad folder: "
                               f"{snap.problems or 'empty'}")
        if results:
            issues, _ = score_differences(snap.results, results)
            if issues:
                raise RuntimeError(f"two uninterrupted runs differ: {issues[:5]}")
        results = snap.results
    return results, seconds


def kill_campaigns(
    launch: Launcher,
    reference: dict[str, dict[str, Any]],
    work: Path,
    *,
    kills: int,
    delay_range: tuple[float, float],
    seed: int = 0,
    tolerance: float = 0.0,
    max_attempts: int = 500,
    report: KillReport | None = None,
) -> KillReport:
    """Campaigns of kill/restart until ``kills`` SIGKILLs have landed on a running process.

    A campaign = a fresh output folder and a fresh cache folder (so that kills also land while
    encoding and writing cache shards), restarted after each kill until a run exits on its own;
    restarts reuse the campaign's cache, as a user's would. Each kill comes
    ``uniform(*delay_range)`` seconds after its attempt started; once enough kills have landed,
    the last campaign runs to completion. The upper delay bound follows the latest run that went
    from scratch to the end without a kill (runs get faster once the machine's caches are warm).
    """
    rng = random.Random(seed)
    report = report or KillReport()
    started = time.monotonic()
    low, high = delay_range  # high shrinks to the last full run's length: kills keep landing
    while report.kills < kills and report.attempts < max_attempts:
        out = work / f"campaign-{report.campaigns}"
        cache = work / f"campaign-{report.campaigns}-cache"
        report.campaigns += 1
        seen: dict[str, Any] = {}  # task -> date of its file when first seen
        while report.attempts < max_attempts:
            report.attempts += 1
            want_kill = report.kills < kills
            delay = rng.uniform(low, max(high, low)) if want_kill else None
            attempt_started = time.monotonic()
            attempt = launch(out, cache)
            finished = attempt.wait(delay)
            if finished and not seen:  # a whole run from scratch: how long one takes right now
                high = min(delay_range[1], time.monotonic() - attempt_started)
            if not finished:
                attempt.kill()
                report.kills += 1
                report.kill_delays.append(round(delay, 6))  # ms rounding made equal draws likely (birthday)
            snap = snapshot(out)
            report.folder_problems += [f"{out.name} attempt {report.attempts}: {p}"
                                       for p in snap.problems]
            for task, date in seen.items():
                if task not in snap.results:
                    report.tasks_lost.append(f"{out.name}: {task}")
                elif snap.results[task].get("date") != date:
                    report.tasks_redone.append(f"{out.name}: {task}")
            for task, data in snap.results.items():
                seen.setdefault(task, data.get("date"))
            if finished:
                if attempt.returncode != 0:
                    report.failed_exits.append(f"{out.name}: exit {attempt.returncode}")
                mismatches, largest = score_differences(snap.results, reference, tolerance)
                report.score_mismatches += [f"{out.name}: {m}" for m in mismatches]
                report.max_score_difference = max(report.max_score_difference, largest)
                report.leftover_output_temporaries += [f"{out.name}/{t}" for t in snap.temporaries]
                break
    for cache in work.glob("campaign-*-cache"):
        report.leftover_cache_temporaries += sum(
            1 for p in cache.rglob("*") if p.is_file() and ".tmp" in p.name
        )
        report.corrupt_cache_shards += sum(1 for _ in cache.rglob("*.corrupt"))
    report.seconds = time.monotonic() - started
    return report


# ---------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None,
                        help="model for the CLI (default: bundled MiniLM); 'tiny' = hashing model")
    parser.add_argument("--launcher", choices=("cli", "driver", "fork"), default=None,
                        help="default: cli for a real model, driver for --model tiny")
    parser.add_argument("--benchmark", default=BENCHMARK)
    parser.add_argument("--tasks", nargs="*", default=None, help="subset of the benchmark's tasks")
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None)
    parser.add_argument("--tolerance", type=float, default=None,
                        help="largest allowed score difference (default: 0 for tiny, 1e-5 for a "
                             "real model, whose batches differ between restarts)")
    parser.add_argument("--work", default=None, help="scratch folder (default: a temporary one)")
    parser.add_argument("--json", default=str(REPO / "bench" / "results" / "kill_test.json"))
    parser.add_argument("--child", nargs=2, metavar=("OUT", "CACHE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        return run_tiny(args.child[0], args.child[1], args.tasks, args.benchmark)

    import tempfile

    tiny = args.model == "tiny"
    launcher_kind = args.launcher or ("driver" if tiny else "cli")
    if launcher_kind == "cli" and tiny:
        parser.error("the CLI cannot take a Python callable: use --launcher driver or fork")
    if launcher_kind != "cli" and not tiny:
        parser.error("--launcher driver/fork evaluate the tiny model: add --model tiny")
    work = Path(args.work or tempfile.mkdtemp(prefix="fastmteb-kill-"))
    work.mkdir(parents=True, exist_ok=True)
    log = work / "runs.log"
    if launcher_kind == "cli":
        launch = cli_launcher(args.model, args.tasks, args.benchmark, args.device, log)
    elif launcher_kind == "driver":
        launch = driver_launcher(args.tasks, args.benchmark, log)
    else:
        launch = fork_launcher(args.tasks, args.benchmark)
    tolerance = args.tolerance if args.tolerance is not None else (0.0 if tiny else 1e-5)

    print(f"work folder {work}; uninterrupted run ...", flush=True)
    reference, ref_seconds = reference_run(launch, work)
    print(f"  {len(reference)} tasks in {ref_seconds:.1f} s; killing {args.kills} times ...",
          flush=True)
    report = KillReport(reference_seconds=round(ref_seconds, 2))
    kill_campaigns(launch, reference, work, kills=args.kills, delay_range=(0.0, ref_seconds),
                   seed=args.seed, tolerance=tolerance, report=report)
    summary = {
        "ok": report.ok,
        "launcher": launcher_kind,
        "model": args.model or "bundled all-MiniLM-L6-v2",
        "benchmark": args.benchmark,
        "tasks": sorted(reference),
        "tolerance": tolerance,
        **asdict(report),
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "kill_delays"}, indent=2))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
