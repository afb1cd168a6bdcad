"""``python -m fastmteb.benchmark``: the same options as ``fastmteb bench``."""

from fastmteb.benchmark.command import main

raise SystemExit(main())
