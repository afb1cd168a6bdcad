"""Shared helpers of the robustness tests: the kill-test machinery lives in bench/kill_test.py."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def load_kill_test():
    """bench/kill_test.py as a module (bench/ is not a package)."""
    name = "fastmteb_bench_kill_test"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "bench" / "kill_test.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="session")
def kill_test():
    return load_kill_test()



def pytest_terminal_summary(terminalreporter):
    from _robustness_counts import EXAMPLE_COUNTS

    if EXAMPLE_COUNTS:
        total = sum(v for k, v in EXAMPLE_COUNTS.items() if not k.endswith(" accepted"))
        terminalreporter.write_line(
            f"robustness fuzz cases tried: {total} ("
            + ", ".join(f"{k}={v}" for k, v in sorted(EXAMPLE_COUNTS.items())) + ")"
        )
