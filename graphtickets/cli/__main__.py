"""``python -m graphtickets.cli``: the ``graphtickets`` command."""

from __future__ import annotations

import sys

from graphtickets.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
