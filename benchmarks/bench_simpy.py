"""SimPy engine speed: one replication of the default config, against idiomatic SimPy.

Run: python -m pytest benchmarks/bench_simpy.py --benchmark-only
Both figures come from the same run, so their ratio holds on a noisy shared machine.
Under --benchmark-disable each runs once, untimed: what it ran is checked, no figure made.
"""

from __future__ import annotations

import numpy as np
import pytest
import simpy

from gtmsim.config import load_config
from gtmsim.config.schema import central
from gtmsim.engines.simpy import run_replication
from gtmsim.outcomes import S_EVENTS, S_LEADS
from gtmsim.simulate import replication_seed
from gtmsim.spec import compile_spec

SEED = replication_seed(2026, 0)


@pytest.fixture(scope="module")
def spec():
    return compile_spec(load_config(profile="realistic"))


def test_default_replication(benchmark, spec):
    rec = benchmark.pedantic(run_replication, args=(spec, SEED), rounds=3, iterations=1)
    leads = rec.tally.scalars[S_LEADS]
    # what ran: the same replication as an untimed run, and a plausible lead volume
    again = run_replication(spec, SEED)
    assert leads == again.tally.scalars[S_LEADS]
    weekly = sum(central(ch.rate_per_week) for ch in load_config().channels.values())
    expected = weekly * spec.horizon / 168.0
    assert 0.85 * expected < leads < 1.3 * expected  # bursts add ~5%; returns are not leads
    if benchmark.disabled:  # --benchmark-disable: ran once, untimed; no figures
        return
    secs = benchmark.stats.stats.mean
    benchmark.extra_info.update({
        "leads": leads, "model_events": rec.tally.scalars[S_EVENTS],
        "simpy_events": rec.simpy_events,
        "leads_per_s": leads / secs, "model_events_per_s": rec.tally.scalars[S_EVENTS] / secs,
        "simpy_events_per_s": rec.simpy_events / secs,
    })


def mmc_tandem(n_jobs: int = 20000, seed: int = 1) -> int:
    """Idiomatic SimPy: Poisson arrivals through three M/M/c stations (Resources)."""
    env = simpy.Environment()
    rng = np.random.default_rng(seed)
    stations = [(simpy.Resource(env, 3), 1.0), (simpy.Resource(env, 2), 1.6),
                (simpy.Resource(env, 4), 0.8)]

    def job():
        for res, mu in stations:
            with res.request() as req:
                yield req
                yield env.timeout(rng.exponential(1 / mu))

    def source():
        for _ in range(n_jobs):
            yield env.timeout(rng.exponential(1 / 2.5))
            env.process(job())

    env.process(source())
    env.run()
    return next(env._eid)


def test_idiomatic_simpy_tandem(benchmark):
    events = benchmark.pedantic(mmc_tandem, rounds=3, iterations=1)
    assert events == mmc_tandem()  # deterministic: the same work each round
    model_events = 20000 * 4  # per job: an arrival and three service completions
    if benchmark.disabled:  # --benchmark-disable: ran once, untimed; no figures
        return
    secs = benchmark.stats.stats.mean
    benchmark.extra_info.update({"simpy_events": events, "simpy_events_per_s": events / secs,
                                 "model_events": model_events,
                                 "model_events_per_s": model_events / secs})
