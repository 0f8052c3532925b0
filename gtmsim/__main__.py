"""``python -m gtmsim``: the command line."""

import os
import sys

try:
    from gtmsim.cli import main
except KeyboardInterrupt:  # Ctrl-C while the command starts: one line, as at any later moment
    print("gtmsim: interrupted; nothing was written", file=sys.stderr, flush=True)
    os._exit(130)  # as in gtmsim/__init__.py: SystemExit may still end by SIGINT

if __name__ == "__main__":
    sys.exit(main())
