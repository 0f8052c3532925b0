"""``python -m gtmsim``: the command line."""

import sys

from gtmsim.cli import main

if __name__ == "__main__":
    sys.exit(main())
