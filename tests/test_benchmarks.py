"""The benchmarks in benchmarks/ run as plain tests too: under `--benchmark-disable` (and
under xdist, which disables pytest-benchmark) the timed function runs once, untimed, and the
benchmark must still check what it ran rather than crash reading timings that do not exist."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_benchmark_runs_untimed_under_benchmark_disable():
    # the idiomatic SimPy tandem: the cheapest benchmark (about a second) that reads timings
    r = subprocess.run([sys.executable, "-m", "pytest", "benchmarks/bench_simpy.py", "-q",
                        "-p", "no:cacheprovider", "--benchmark-disable", "-k", "tandem"],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "1 passed" in r.stdout


def _bench_module(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_optimisation_benchmark_checks_the_kernel_work_it_times(monkeypatch):
    # the design search benchmark's figure is kernel time against the whole search: it must
    # notice when the search runs other work than its trials record (its cvar10 trials lost
    # their Wilcoxon pruning once, and the benchmark, asserting only "some replications",
    # went on as before)
    import gtmsim.engines.kernel as kernel
    from gtmsim.config import load_config
    from gtmsim.optimize.search import Settings, search

    bench = _bench_module("bench_optimize")
    clock = {"replications": 0}
    inner = kernel.tallies

    def counted(spec, seed, replications, *args, **kwargs):
        clock["replications"] += replications
        return inner(spec, seed, replications, *args, **kwargs)

    monkeypatch.setattr(kernel, "tallies", counted)
    cfg = load_config(profile="realistic", overrides=["run.horizon_days=14",
                                                     "run.warmup_days=14"])
    res = search(cfg, Settings(objective="cvar10", trials=5, scenarios=3, replications=1,
                               top=2, seed=0, engine="numba"))
    bench.check_work(res, clock, 3, 1)
    clock["replications"] += 1  # one replication no trial or candidate records
    with pytest.raises(AssertionError):
        bench.check_work(res, clock, 3, 1)


@pytest.mark.slow
def test_sweep_benchmark_runs_on_the_sweep_module_as_it_is():
    # bench_sweep called warm_up(client, plan), the signature before the sweep module moved
    # to warm_up(client, spec, engine): the documented command crashed in both benchmarks.
    # The overhead benchmark, shrunk to 2 points x 2 replications and one round, untimed.
    env = dict(os.environ, GTMSIM_BENCH_POINTS="2", GTMSIM_BENCH_REPS="2",
               GTMSIM_BENCH_ROUNDS="1")
    r = subprocess.run([sys.executable, "-m", "pytest", "benchmarks/bench_sweep.py", "-q",
                        "-p", "no:cacheprovider", "--benchmark-disable", "-k", "overhead"],
                       capture_output=True, text=True, cwd=ROOT, env=env)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "1 passed" in r.stdout
