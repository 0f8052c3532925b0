"""``python -m gtmsim``: the command line."""

import sys

try:
    from gtmsim.cli import main
except KeyboardInterrupt:  # Ctrl-C while the command starts: one line, as at any later moment
    print("gtmsim: interrupted; nothing was written", file=sys.stderr, flush=True)
    raise SystemExit(130) from None

if __name__ == "__main__":
    sys.exit(main())
