"""``python -m fastmteb`` = the ``fastmteb`` console script."""

import sys

from fastmteb.cli import main

sys.exit(main())
