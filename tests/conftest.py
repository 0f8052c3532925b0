"""Shared fixtures: small configs built in code for theory checks."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest

from gtmsim.config import read_toml


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
