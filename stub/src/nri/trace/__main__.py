"""``python -m nri.trace``: the ``nri-trace`` command."""

import sys

from nri.trace._cli import main

if __name__ == "__main__":
    sys.exit(main())
