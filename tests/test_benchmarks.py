"""The benchmarks in benchmarks/ run as plain tests too: under `--benchmark-disable` (and
under xdist, which disables pytest-benchmark) the timed function runs once, untimed, and the
benchmark must still check what it ran rather than crash reading timings that do not exist."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_benchmark_runs_untimed_under_benchmark_disable():
    # the idiomatic SimPy tandem: the cheapest benchmark (about a second) that reads timings
    r = subprocess.run([sys.executable, "-m", "pytest", "benchmarks/bench_simpy.py", "-q",
                        "-p", "no:cacheprovider", "--benchmark-disable", "-k", "tandem"],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "1 passed" in r.stdout
