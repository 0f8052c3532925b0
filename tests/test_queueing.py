"""Correctness against queueing theory nobody here wrote.

With every human mechanism off, exponential work and a 24/7 calendar, a stage with c people
and a shared FIFO queue is an M/M/c queue, and a tandem of stages is a Jackson network: the
mean time in each station is the Erlang C wait plus the mean service time, and the mean total
time is their sum. Tolerance: the theoretical value must lie inside the 95% confidence
interval (t-based) of the replication means. Seeds are fixed, so the check is deterministic.
It is only as sharp as the interval is narrow: on the M/M/3 station at utilisation 0.83, 20
SimPy replications of 2,000 h give a half-width of 4-6% of the sojourn, 7-11% of the Erlang C
wait (seeds 7, 8, 9), so a 5% error in the engine's waits would pass; 100 SimPy replications
(3.8%) and 200 numba ones (3.3%) keep it under 5% of the wait, which the single-station test
asserts. The tandem keeps 20 SimPy replications: about +-4% on its total sojourn at seed 7.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import queue_network
from scipy import stats

from gtmsim.config import load_config, resolve, validate
from gtmsim.simulate import simulate
from gtmsim.spec import compile_spec


def erlang_c_wait(c: int, lam: float, mu: float) -> float:
    """Mean wait in queue of an M/M/c queue (Erlang C)."""
    a = lam / mu
    rho = a / c
    assert rho < 1
    tail = a**c / math.factorial(c) / (1 - rho)
    p_wait = tail / (sum(a**k / math.factorial(k) for k in range(c)) + tail)
    return p_wait / (c * mu - lam)


def ci95(x: np.ndarray) -> tuple[float, float]:
    m = float(x.mean())
    h = float(stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    return m - h, m + h


def run_network(stations, lam, reps=None, engine="simpy"):
    """20 replications on SimPy; 200 on the numba engine, whose CI is then three times
    tighter (a finite warm-up's bias, under 1% here, stays inside it)."""
    spec = compile_spec(validate(resolve(queue_network(stations, lam))))
    n = reps or (200 if engine == "numba" else 20)
    return simulate(spec, n, seed=7, engine=engine, workers=2).replications


def test_erlang_c_reference_values():
    # textbook check of the formula itself: M/M/1 wait is rho / (mu - lambda)
    assert erlang_c_wait(1, 0.5, 1.0) == pytest.approx(0.5 / 0.5)
    # M/M/2 with a = 1: P(wait) = 1/3, Wq = (1/3) / (2 - 1)
    assert erlang_c_wait(2, 1.0, 1.0) == pytest.approx(1 / 3)


ENGINES = ["simpy", "numba"]
# the full-length checks take ~15 s on the SimPy engine: there they run with the slow tests
ENGINES_SIMPY_SLOW = [pytest.param("simpy", marks=pytest.mark.slow), "numba"]


@pytest.mark.parametrize("engine", ENGINES_SIMPY_SLOW)
def test_single_station_matches_erlang_c(engine):
    c, mu, lam = 3, 1.0, 2.5  # utilisation 0.83
    df = run_network([(c, mu)], lam, reps=100 if engine == "simpy" else None, engine=engine)
    wait = erlang_c_wait(c, lam, mu)
    theory = wait + 1 / mu
    lo, hi = ci95(df["sojourn_t0"].to_numpy())
    assert lo <= theory <= hi, (theory, lo, hi)
    # sharp enough that an engine whose waits are 5% off would fail
    assert (hi - lo) / 2 < 0.05 * wait, ((hi - lo) / 2, wait)
    # utilisation is lambda / (c mu), within its own CI
    lo, hi = ci95(df["util_t0"].to_numpy())
    assert lo <= lam / (c * mu) <= hi


@pytest.mark.parametrize("engine", ENGINES_SIMPY_SLOW)
def test_tandem_matches_jackson_network(engine):
    stations = [(3, 1.0), (2, 1.6), (4, 0.8)]
    lam = 2.5
    df = run_network(stations, lam, engine=engine)
    total_theory = 0.0
    total = np.zeros(len(df))
    for i, (c, mu) in enumerate(stations):
        w = erlang_c_wait(c, lam, mu) + 1 / mu
        total_theory += w
        x = df[f"sojourn_t{i}"].to_numpy()
        total += x
        lo, hi = ci95(x)
        assert lo <= w <= hi, (i, w, lo, hi)
    lo, hi = ci95(total)
    assert lo <= total_theory <= hi, (total_theory, lo, hi)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_lead_has_a_fate_or_is_still_at_a_team_at_the_end(engine):
    """Every lead born in the window reaches a fate or is still at a team when the run ends:
    with no warm-up, leads created = disqualified (the tandem's only way out) + open at the
    end, in every replication, exactly; the first station is overloaded (1.2 arrivals an
    hour for one person doing 1 an hour), so its backlog is there to count."""
    net = queue_network([(1, 1.0), (2, 0.7)], 1.2, warmup_hours=0.0, horizon_hours=300.0)
    spec = compile_spec(validate(resolve(net)))
    df = simulate(spec, 10, seed=5, engine=engine).replications
    assert (df["leads_created"] == df["disqualified"] + df["open_at_end"]).all()
    assert (df["open_at_end"] == df["open_t0"] + df["open_t1"]).all()
    assert df["open_t0"].mean() > 20  # ~0.2 an hour for 300 hours


@pytest.mark.parametrize("engine", ENGINES_SIMPY_SLOW)
def test_leads_open_at_the_end_are_those_waiting_and_in_work(engine):
    """At the end of a run an M/M/3 station at utilisation 0.8 holds L = lambda (Wq + 1/mu)
    leads on average (Erlang C: 4.99), waiting or in work: inside the 95% CI of the
    replications. Counting only the waiting ones would give Lq = 2.59: the number's SD is
    about 3.3, so the interval's half-width is ~0.5 on 200 numba replications and ~0.65 on
    100 SimPy ones, and Lq lies far outside it."""
    c, mu, lam = 3, 1.0, 2.4
    df = run_network([(c, mu)], lam, reps=200 if engine == "numba" else 100, engine=engine)
    theory = lam * (erlang_c_wait(c, lam, mu) + 1 / mu)
    lo, hi = ci95(df["open_t0"].to_numpy())
    assert lo <= theory <= hi, (theory, lo, hi)


@pytest.mark.parametrize("engine", ENGINES)
def test_littles_law_per_station(engine):
    """L = lambda W on each station: time-average WIP against throughput x mean sojourn.
    Both sides come from the same replication; they differ only by the jobs straddling the
    window's edges: about L / (lambda T) ~ 0.1% on average for 5,000 jobs per replication, but
    more when a long queue happens to straddle an edge (measured on the numba engine, 80
    replications: relative differences with SD 0.2-0.25% and a worst case of 1.16%). So: the
    mean over replications within 0.5%, and every replication within 2%."""
    df = run_network([(3, 1.0), (2, 1.6)], 2.5, reps=6, engine=engine)
    for i in range(2):
        L = df[f"wip_t{i}"].to_numpy()
        lam_w = (df[f"throughput_t{i}"] * df[f"sojourn_t{i}"]).to_numpy()
        assert abs(L.mean() / lam_w.mean() - 1) < 0.005
        assert np.allclose(L, lam_w, rtol=0.02)


@pytest.mark.parametrize("engine", ENGINES_SIMPY_SLOW)
def test_littles_law_on_the_full_default_model(engine):
    """Little's law per team on the full model under `realistic` (every mechanism on).
    Little's law is a steady-state identity; AE opportunities stay in the team through the
    buyer's two-month median decision, and the AE pipeline keeps growing for most of a year
    as trust and staffing settle (measured on the numba engine, 64 replications: L and
    lambda W differ by 3.1% after a 120-day warm-up, 0.7% after a one-year warm-up). A
    one-year warm-up and a one-year window; tolerance 3% between the means over
    replications of time-average WIP and throughput x mean time in team."""
    spec = compile_spec(load_config(profile="realistic",
                                    overrides=["run.warmup_days=365", "run.horizon_days=364"]))
    df = simulate(spec, 8, seed=3, engine=engine, workers=2).replications
    for team in spec.team_names:
        L = df[f"wip_{team}"].mean()
        lam_w = (df[f"throughput_{team}"] * df[f"sojourn_{team}"]).mean()
        assert L > 0
        assert lam_w == pytest.approx(L, rel=0.03), (team, L, lam_w)
