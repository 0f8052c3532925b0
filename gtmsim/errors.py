"""Errors a user can cause, reported as one line and exit status 2 by the CLI."""

from __future__ import annotations


class GtmsimError(Exception):
    """Bad input: a config, a flag, a data file. The message is the whole story."""


class ClusterLost(GtmsimError):
    """The Dask cluster went away mid-run: not bad input (the CLI exits 1), and resumable."""


class ConfigError(GtmsimError):
    """A config that cannot be used; ``path`` names the bad key (``stages.sdr.effort``)."""

    def __init__(self, path: str, message: str):
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}" if path else message)
