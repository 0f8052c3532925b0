"""Design search cost: the default optimisation, and where its time goes.

Run: python -m pytest benchmarks/bench_optimize.py --benchmark-only -s
The share of time inside the kernel is measured in the same run as the total, by timing
every call of the numba batch function. What ran is asserted: every replication the kernel ran
is one a trial or a held-out candidate records, and under cvar10, which is never pruned
(Wilcoxon pruning is for the mean only), every feasible trial saw every scenario.
"""

from __future__ import annotations

import time

import pytest

import gtmsim.engines.kernel as kernel
from gtmsim.config import load_config
from gtmsim.optimize.search import SearchResult, Settings, is_feasible, search

TRIALS, SCENARIOS, REPLICATIONS = 100, 32, 1


@pytest.fixture
def kernel_clock(monkeypatch):
    spent = {"seconds": 0.0, "calls": 0, "replications": 0}
    inner = kernel.tallies

    def timed(spec, seed, replications, first=0, *args, **kwargs):
        t = time.perf_counter()
        try:
            return inner(spec, seed, replications, first, *args, **kwargs)
        finally:
            spent["seconds"] += time.perf_counter() - t
            spent["calls"] += 1
            spent["replications"] += replications

    monkeypatch.setattr(kernel, "tallies", timed)
    return spent


def check_work(res: SearchResult, clock: dict, scenarios: int, replications: int) -> None:
    """The kernel ran exactly the scenario evaluations the study and the held-out candidates
    record; under cvar10 no trial was pruned, so each feasible one saw every scenario."""
    trials = res.study.trials
    seen = sum(sum(v is not None for v in t.user_attrs.get("scenario_values", []))
               for t in trials)
    held_out = len(res.candidates) * len(res.held_out)
    assert clock["replications"] == replications * (seen + held_out), (clock, seen, held_out)
    assert not any(t.state.name == "PRUNED" for t in trials)
    assert seen == scenarios * sum(is_feasible(t) for t in trials)


def test_default_optimisation(benchmark, kernel_clock):
    cfg = load_config(profile="realistic")
    settings = Settings(objective="cvar10", trials=TRIALS, scenarios=SCENARIOS,
                        replications=REPLICATIONS, seed=0, engine="numba")
    kernel.tallies(__import__("gtmsim").compile_spec(cfg), 0, 1)  # compiled before timing
    kernel_clock.update(seconds=0.0, calls=0, replications=0)
    res = benchmark.pedantic(search, args=(cfg, settings), rounds=1, iterations=1)
    finished = [t for t in res.study.trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) == TRIALS  # what ran
    check_work(res, kernel_clock, SCENARIOS, REPLICATIONS)
    if benchmark.disabled:  # --benchmark-disable: ran once, untimed; no figures
        return
    total = benchmark.stats.stats.mean
    benchmark.extra_info.update({
        "trials": len(finished),
        "pruned": sum(t.state.name == "PRUNED" for t in finished),
        "kernel_calls": kernel_clock["calls"],
        "kernel_replications": kernel_clock["replications"],
        "kernel_seconds": kernel_clock["seconds"],
        "kernel_share": kernel_clock["seconds"] / total,
    })
    print(f"\noptimisation {total:.1f} s; kernel {kernel_clock['seconds']:.1f} s "
          f"({kernel_clock['seconds'] / total:.0%}) in {kernel_clock['calls']} calls, "
          f"{kernel_clock['replications']} replications")
