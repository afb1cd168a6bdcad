"""Cases tried per fuzz target (hypothesis examples and plain cases), reported by conftest."""

EXAMPLE_COUNTS: dict[str, int] = {}


def count_example(target: str) -> None:
    EXAMPLE_COUNTS[target] = EXAMPLE_COUNTS.get(target, 0) + 1
