"""Errors a user can cause, reported as one line and exit status 2 by the CLI."""

from __future__ import annotations

import numbers
from typing import Any


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


def whole(name: str, value: Any, low: int) -> int:
    """`value` as an int if it is a whole number (numpy's too, not a boolean) of at least
    `low`; a GtmsimError naming `name` otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise GtmsimError(f"{name}: must be a whole number of at least {low}, got {value!r}")
    return int(value)
