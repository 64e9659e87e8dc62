"""``python -m nri.mock``: the ``nri-mock-runtime`` command."""

import sys

from nri.mock._cli import main

if __name__ == "__main__":
    sys.exit(main())
