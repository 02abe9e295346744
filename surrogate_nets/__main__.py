"""``python -m surrogate_nets``: the ``surrogate-nets`` command line (see :mod:`surrogate_nets.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
