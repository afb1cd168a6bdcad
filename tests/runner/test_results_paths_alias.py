"""Names moved by the architecture step stay importable from their old place, with a warning."""

import pytest


def test_result_path_error_is_the_unsafe_path_error_with_a_deprecation_warning():
    from fastmteb import results
    from fastmteb.paths import UnsafePathError

    with pytest.warns(DeprecationWarning, match="UnsafePathError"):
        assert results.ResultPathError is UnsafePathError
    with pytest.raises(AttributeError):
        results.NoSuchName  # noqa: B018
