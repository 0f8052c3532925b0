"""gtmsim: simulate go-to-market organisations whose boxes are people.

    import gtmsim
    res = gtmsim.run("configs/b2b_saas.toml", profile="realistic", replications=50)
    res.replications      # polars DataFrame, one row per replication
    res.weekly            # weekly aggregates per replication
    res.summary()         # mean, 95% CI, P10/P50/P90 per outcome
"""

import os
import sys
from pathlib import Path


def _as_command() -> bool:
    """Whether this process is the gtmsim command (`python -m gtmsim`, or the script)."""
    return (getattr(sys, "orig_argv", [])[1:3] == ["-m", "gtmsim"]
            or Path(sys.argv[0] if sys.argv else "").name == "gtmsim")


try:
    from gtmsim.config import load_config
    from gtmsim.errors import ConfigError, GtmsimError
    from gtmsim.simulate import Result, run, simulate
    from gtmsim.spec import ModelSpec, compile_spec
except KeyboardInterrupt:  # Ctrl-C in the second or two the imports take: one line, as later
    if not _as_command():
        raise
    print("gtmsim: interrupted; nothing was written", file=sys.stderr, flush=True)
    # not SystemExit: a KeyboardInterrupt raised in code a library ran through PyRun_* marks
    # the interpreter, which then dies by SIGINT at exit (-2) whatever status it was given
    os._exit(130)

__all__ = ["ConfigError", "GtmsimError", "ModelSpec", "Result", "compile_spec", "load_config",
           "run", "simulate"]
__version__ = "0.1.0"
