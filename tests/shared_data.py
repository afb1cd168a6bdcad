"""Where the shared MTEB evaluation data lives: ``../shared/data`` beside the repo root.

One definition for every test. A test that needs the data takes the ``shared_data`` fixture
(``tests/conftest.py``) or marks itself ``needs_shared_data``; both skip with a reason when the
folder is absent (a checkout without it), never fail.
"""

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
SKIP_REASON = f"shared evaluation data not found at {SHARED_DATA} (expected ../shared/data beside the repo root)"

needs_shared_data = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=SKIP_REASON)


def shared_path(*parts: str) -> Path:
    """A path inside the shared data; skips the calling test (or fixture) when the data is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(SKIP_REASON)
    return SHARED_DATA.joinpath(*parts)
