"""Errors a user can cause, reported as one line and exit status 2 by the CLI."""

from __future__ import annotations

import errno
import numbers
from os import PathLike
from typing import Any


class GtmsimError(Exception):
    """Bad input: a config, a flag, a data file. The message is the whole story."""


class Stopped(GtmsimError):
    """A run that stopped for a reason other than its input: the CLI exits 1, not 2."""


class ClusterLost(Stopped):
    """The Dask cluster went away mid-run: not bad input (the CLI exits 1), and resumable."""


class TaskFailed(Stopped):
    """A task failed on the Dask cluster (it raised, or its workers kept dying): not bad input
    (the CLI exits 1); what finished is kept, and the same command resumes."""


class EngineFailed(Stopped):
    """A replication raised an error inside the numba engine (a division by zero, say): not
    bad input the loader could name (the CLI exits 1), and never a row of zeros."""

    def __init__(self, seed: int, replication: int):
        self.seed = seed
        self.replication = replication
        super().__init__(seed, replication)

    def __str__(self) -> str:
        return (f"replication {self.replication} of seed {self.seed} failed inside the numba "
                "engine (an arithmetic error in the model, such as a division by zero); no "
                "result was kept. The SimPy engine (--engine simpy) runs the same model in "
                "Python and shows where")


class OutOfMemory(Stopped):
    """The numba engine's tables for a run do not fit in memory: not bad input (the CLI exits
    1), and never a traceback from inside numba."""

    def __init__(self, leads: int, people: int, queue: int, queues: int, threads: int):
        self.leads, self.people, self.queue, self.queues = leads, people, queue, queues
        self.threads = threads
        super().__init__(leads, people, queue, queues, threads)

    def __str__(self) -> str:
        return (f"the numba engine's tables do not fit in memory (room for {self.leads:,} "
                f"leads, {self.people:,} people and {self.queue:,} items in each of "
                f"{self.queues:,} work queues, a set for each of {self.threads} threads): a "
                "shorter run or lower lead rates need smaller tables, and fewer threads "
                "(--workers) fewer sets")


class DiskFull(Stopped):
    """The disk, or a limit on the size of a file, took no more: not bad input (the CLI
    exits 1), unlike an --out that cannot be written at all."""


def cannot_write(out: str | PathLike, exc: OSError, doing: str = "cannot write") -> GtmsimError:
    """The error for an output `exc` stopped: a full disk is DiskFull (exit 1), anything else
    a bad --out (exit 2: a read-only folder, a name the file system refuses). `doing` words
    it: 'cannot write', 'cannot write in' (a folder), 'cannot create'."""
    why = exc.strerror or str(exc)
    if exc.errno in DISK_FULL:
        return DiskFull(f"{doing} {out}: {why}")
    return ConfigError("--out", f"{doing} {out}: {why}")


# a device that takes no more: no space, no inode, over a quota, over a limit on file sizes
DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO)


class ExportFailed(Stopped):
    """plotly's static exporter failed while writing --png figures (its browser did not
    start, say): not bad input (the CLI exits 1)."""


class ConfigError(GtmsimError):
    """A config that cannot be used; ``path`` names the bad key (``stages.sdr.effort``)."""

    def __init__(self, path: str, message: str):
        self.path = path
        self.message = message
        # both parts as the arguments: a copy made from them (pickling for a worker process,
        # SimPy re-raising a process's exception) is the same error
        super().__init__(path, message)

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


SEED_MAX = 2**63 - 1
"""The largest root seed: a run's config.toml keeps its seed, and TOML's integers are 64-bit."""
MAX_REPLICATIONS = 1_000_000
"""The most replications of one batch, as of run.replications in a config and --replications."""
BATCH_SEED_MAX = 2**64 - 1
"""The largest seed of a batch (`simulate`): any 64-bit seed, as earlier sweeps' points had."""


def whole(name: str, value: Any, low: int, high: int | None = None) -> int:
    """`value` as an int if it is a whole number (numpy's too, not a boolean) of at least
    `low` (and at most `high`); a GtmsimError naming `name` otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise GtmsimError(f"{name}: must be a whole number of at least {low}, got {value!r}")
    if high is not None and value > high:
        raise GtmsimError(f"{name}: must be at most {high}, got {value}")
    return int(value)


class Stalled(ConfigError):
    """A lead went round a loop of routes in no time: the run would never end."""

    def __init__(self, stage: str):
        self.stage = stage
        super().__init__(f"stages.{stage}", "a lead went round a loop of routes through this "
                         "stage 1,000 times at one instant: every step of the loop can take no "
                         "time (no effort, latency or buyer delay), so the run would never "
                         "end; give a stage on the loop some effort")
        self.args = (stage,)
