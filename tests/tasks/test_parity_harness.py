"""The parity tests themselves: a broken fastmteb side must fail them, never skip them.

Each case runs a real level-1 parity module in a pytest subprocess (pytester) with every task type's
``score`` (or ``prepare``) replaced by one that raises; the run must report failures and no skips.
Only a missing oracle (mteb) may skip a parity test.
"""

import shutil
from pathlib import Path

import pytest

pytest.importorskip("mteb", reason="the oracle (mteb) is not installed")

TESTS = Path(__file__).resolve().parents[1]

BREAK_CONFTEST = """
import pytest

import fastmteb.tasks.types as types


class Broken:
    def __init__(self, inner):
        self._inner = inner

    def __getattr__(self, name):
        if name == {method!r}:
            def broken(*args, **kwargs):
                raise {error}("simulated: the fastmteb side is broken")
            return broken
        return getattr(self._inner, name)


@pytest.fixture(autouse=True)
def break_fastmteb(monkeypatch):
    real = types.get_task_type
    monkeypatch.setattr(types, "get_task_type", lambda name: Broken(real(name)))
"""


@pytest.mark.parametrize(
    ("module", "method", "error"),
    [
        ("test_parity_mteb_sts.py", "score", "ImportError"),
        ("test_parity_mteb_sts.py", "score", "NotImplementedError"),
        ("test_parity_mteb_retrieval.py", "prepare", "ImportError"),
    ],
)
def test_a_broken_fastmteb_side_fails_the_parity_test(pytester, module, method, error):
    shutil.copy(TESTS / "mteb_oracle.py", pytester.path / "mteb_oracle.py")
    (pytester.path / "tasks").mkdir()
    shutil.copy(TESTS / "tasks" / module, pytester.path / "tasks" / module)
    pytester.makeconftest(BREAK_CONFTEST.format(method=method, error=error))
    # test_oracle_detects_a_wrong_score checks the comparison alone and never reaches fastmteb.
    outcome = pytester.runpytest_subprocess(
        "-q", "-p", "no:cacheprovider", "-k", "not oracle_detects", f"tasks/{module}"
    )
    counts = outcome.parseoutcomes()
    assert counts.get("failed", 0) >= 1, counts
    assert counts.get("skipped", 0) == 0, counts
    assert counts.get("passed", 0) == 0, counts  # every selected test reaches the broken side
