"""``python -m graphtickets``: the ``graphtickets`` command (:func:`graphtickets.cli.main`)."""

import sys

from graphtickets.cli import main

if __name__ == "__main__":
    sys.exit(main())
