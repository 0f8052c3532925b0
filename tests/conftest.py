"""Shared fixtures: small configs built in code for theory checks."""

from __future__ import annotations

import copy
import os
import subprocess
import sys

import pytest

from gtmsim.config import read_toml


def in_ci() -> bool:
    """Whether the tests run in CI (`.ci/run` sets CI=true): there every test runs, and one
    that needs a system program (Chromium, PostgreSQL) fails where it would skip."""
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def _asks_for_tests(config) -> bool:
    """Whether the command picks tests itself: a -m or -k expression, or a test by name
    (path::name); then it gets what it names, slow or not."""
    return bool(config.getoption("markexpr") or config.getoption("keyword")
                or any("::" in str(a) for a in config.args))


def pytest_collection_modifyitems(config, items):
    """The slow tests (marked `slow`: seconds to minutes each, about 40 minutes together on
    2 cores) run in CI, or when the command picks them (-m, -k, a test's name); a plain
    `pytest tests` elsewhere leaves them out and says how many it left (tested in
    tests/test_suite_selection.py)."""
    if in_ci() or _asks_for_tests(config):
        return
    slow = [item for item in items if item.get_closest_marker("slow")]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if not item.get_closest_marker("slow")]


def pytest_report_header(config):
    if not in_ci() and not _asks_for_tests(config):
        return ("slow tests left out (they run with CI=true, as in .ci/run, or with "
                "-m slow / -m 'slow or not slow', or when -k or a test's name picks them)")
    return None


def queue_network(stations: list[tuple[int, float]], arrival_rate: float,
                  warmup_hours: float = 200.0, horizon_hours: float = 2000.0) -> dict:
    """A tandem of M/M/c stations as a gtmsim config: Poisson arrivals (per hour), one team
    of c people per station with exponential work of rate mu, every human mechanism off,
    a 24/7 calendar, a shared FIFO queue per team."""
    teams, stages = {}, {}
    names = [f"s{i}" for i in range(len(stations))]
    for i, (c, mu) in enumerate(stations):
        teams[f"t{i}"] = {"headcount": c, "routing": "pool", "discipline": "fifo"}
        nxt = names[i + 1] if i + 1 < len(stations) else "disqualified"
        stages[names[i]] = {"team": f"t{i}", "kind": "review",
                            "effort_hours": {"dist": "exponential", "mean": 1.0 / mu},
                            "threshold": 0.0, "reject_below": 0.0,
                            "routes": {"qualified": nxt}}
    return {
        "name": "tandem", "profile": "ideal",
        "run": {"warmup_days": warmup_hours / 24, "horizon_days": horizon_hours / 24,
                "replications": 10, "seed": 7},
        "calendar": {"work_days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                     "day_start": 0.0, "day_end": 24.0},
        "channels": {"web": {"entry": names[0], "rate_per_week": arrival_rate * 168,
                             "working_hours_only": False,
                             "quality": {"dist": "fixed", "value": 0.5},
                             "value": {"dist": "fixed", "value": 1.0}}},
        "teams": teams, "stages": stages,
        "nurture": {"return_probability": 0.0},
    }


@pytest.fixture(scope="session")
def default_raw() -> dict:
    return read_toml(None)


@pytest.fixture
def default_copy(default_raw) -> dict:
    return copy.deepcopy(default_raw)


@pytest.fixture(scope="session")
def run_folder(tmp_path_factory):
    """The output folder of one 1,000-replication `run` (numba engine), built once per session
    and shared by the report tests (tests/test_report.py, tests/test_browser.py)."""
    out = tmp_path_factory.mktemp("report") / "out"
    res = subprocess.run([sys.executable, "-m", "gtmsim", "run", "--replications", "1000",
                          "--engine", "numba", "--out", str(out)],
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr
    return out


@pytest.fixture
def sweep_lines() -> dict:
    """A sweep summary of one lever as lines: point 0 of one replication (no interval),
    point 1 of two (an interval), for the error-bar tests of the sweep's and every report."""
    points = [{"point": k, "profile": "realistic", "values": {"sdr_headcount": k + 3},
               "replications": n, "mean": {"bookings": m}, "ci_low": {"bookings": lo},
               "ci_high": {"bookings": hi}}
              for k, n, m, lo, hi in ((0, 1, 5.0, None, None), (1, 2, 6.0, 4.0, 9.0))]
    return {"profiles": ["realistic"], "x": "sdr_headcount", "y": None, "layout": "lines",
            "outcomes": ["bookings"], "cells": [], "points": points, "averaged_over": []}
