"""numba kernel vs SimPy engine on the default config (realistic profile), in one run.

Run: /work/venv/bin/python -m pytest benchmarks/bench_kernel.py --benchmark-only -s
(-s shows the one-line summaries; the same figures are in each benchmark's extra_info).

Each benchmark asserts what it ran (replications, events or leads), under
--benchmark-disable too (one untimed run, no figures). The targets of issue 3
(100x SimPy per replication, 5 M events/s per core, 1.7x on 2 threads, memory flat in the
number of replications) are measured and printed with the figure; a miss is reported as a
warning naming the target and the figure, never hidden behind a lowered assertion.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numba
import numpy as np
import pytest

from gtmsim import outcomes as O
from gtmsim.config import load_config
from gtmsim.engines.kernel import tallies
from gtmsim.engines.simpy import run_replication
from gtmsim.simulate import replication_seed
from gtmsim.spec import compile_spec

ROOT = Path(__file__).resolve().parents[1]
TARGET_SPEEDUP = 100.0
TARGET_EVENTS_PER_S = 5e6
TARGET_THREADS = 1.7
TARGET_LINEAR = 18 / 16  # x16 the work within 18x the time: time per unit of work +12.5% at most
# the best of several rounds keeps a noisy neighbour's slice out of the time per event; every
# round is about as long (x1 runs its batch 16 times a round, x4 4 times, x16 once), as the
# best of short rounds slips between bursts of a busy host more easily than that of long ones
ROUNDS_SCALING = 5


@pytest.fixture(scope="module")
def spec():
    s = compile_spec(load_config())
    tallies(s, 1, 2)  # compile or load from cache (both entry points)
    tallies(s, 1, 1, parallel=False)
    return s


def _events(out) -> float:
    return float(out[:, O.SCALARS.index("events") + len(O.FATES)].sum())


def _leads(out) -> float:
    return float(out[:, len(O.FATES) + O.S_LEADS].sum())


def _check_work(s, events: float, replications: int, leads: float | None = None) -> None:
    """The work a batch did is the model's, not a fraction of it: 3 to 7 model events per
    lead the config's channels are expected to make over the whole run (4.2-5.8 per default
    replication, 3.2-4.4 at 45 days with no warm-up, 4.6-4.8 at 16x the volume; measured
    2026-12-03), and the leads counted in the window within 15% of the expected share. A
    model change that leaves these bands asks for them to be measured again."""
    expected = float(s.expected_leads().sum())
    per_lead = events / replications / expected
    assert 3.0 <= per_lead <= 7.0, (per_lead, events, replications, expected)
    if leads is not None:
        window = expected * s.horizon / (s.warmup + s.horizon)
        assert abs(leads / replications / window - 1) < 0.15, (leads, replications, window)


def _target(ok: bool, what: str) -> None:
    if not ok:
        warnings.warn(f"target missed: {what}", stacklevel=2)


def test_simpy_per_replication(benchmark, spec):
    rec = benchmark.pedantic(run_replication, args=(spec, replication_seed(1, 0)), rounds=2)
    _check_work(spec, float(rec.tally.scalars[O.S_EVENTS]), 1,
                float(rec.tally.scalars[O.S_LEADS]))


def test_numba_per_replication_single_thread(benchmark, spec):
    n = 20
    out, _ = benchmark.pedantic(tallies, args=(spec, 1, n), kwargs={"parallel": False},
                                rounds=3)
    assert out.shape[0] == n
    _check_work(spec, _events(out), n, _leads(out))
    if benchmark.disabled:  # --benchmark-disable: ran once, untimed; no figures
        return
    per_rep = benchmark.stats.stats.min / n
    eps = _events(out) / benchmark.stats.stats.min
    benchmark.extra_info["seconds_per_replication"] = per_rep
    benchmark.extra_info["events_per_second"] = eps
    print(f"\nnumba single thread: {per_rep * 1e3:.1f} ms/rep, {eps / 1e6:.2f} M events/s")
    _target(eps >= TARGET_EVENTS_PER_S,
            f"{eps / 1e6:.2f} M events/s per core (target {TARGET_EVENTS_PER_S / 1e6:.0f} M)")


def test_speedup_vs_simpy(benchmark, spec):
    """Time per replication on each engine, one thread each, in rounds that take turns: SimPy
    runs one replication (a new one each round), then numba runs replications 0..49 of the
    same seed, batch after batch, for as much CPU time as SimPy took. Each engine's time per
    replication is its time per model event times the mean events of a replication, so that
    the ratio compares the same work (replications differ: in 30 SimPy replications of seed
    1, 87 k to 107 k events; two of the first three are among the lightest), and the two
    engines' mean events per replication are checked to agree. The ratio is taken within each
    round, so a host that slows down between rounds moves both engines alike; the figure is
    the median of the rounds."""
    rounds, k, n = 15, 1, 50

    def paired():
        result = []
        for j in range(rounds):
            t0 = time.process_time()
            simpy_ev = 0.0
            for i in range(j * k, (j + 1) * k):
                simpy_ev += run_replication(spec, replication_seed(1, i)).tally.scalars[
                    O.S_EVENTS]
            simpy_t = time.process_time() - t0
            numba_ev, batches = 0.0, 0
            t0 = time.process_time()
            while True:
                out, _ = tallies(spec, 1, n, parallel=False)
                numba_ev += _events(out)
                batches += 1
                numba_t = time.process_time() - t0
                if numba_t >= simpy_t:
                    break
            result.append((simpy_t, simpy_ev, numba_t, numba_ev, batches))
        return result

    r = np.array(benchmark.pedantic(paired, rounds=1, iterations=1))
    simpy_t, simpy_ev, numba_t, numba_ev, batches = r.T
    assert (batches >= 1).all()
    _check_work(spec, float(simpy_ev.sum()), rounds * k)
    simpy_per_rep = simpy_ev.sum() / (rounds * k)
    numba_per_rep = numba_ev[0] / batches[0] / n  # every batch is the same 50 replications
    # one model, one unit: the engines' events per replication agree (SimPy's mean over 15
    # replications has a standard error of ~1.2 k, ~1.3%; 6% is over four of them)
    assert abs(simpy_per_rep / numba_per_rep - 1) < 0.06, (simpy_per_rep, numba_per_rep)
    work = numba_per_rep  # events of the replication both are timed on
    simpy_rep = simpy_t / simpy_ev * work
    numba_rep = numba_t / numba_ev * work
    ratios = simpy_rep / numba_rep
    ratio = float(np.median(ratios))
    benchmark.extra_info.update(
        simpy_s_per_rep=float(np.median(simpy_rep)), numba_s_per_rep=float(np.median(numba_rep)),
        speedup=ratio, speedup_rounds=ratios.tolist(), events_per_rep=work,
        simpy_events_per_rep=simpy_per_rep)
    print(f"\n{work:.0f} events/rep (SimPy's 15 replications: {simpy_per_rep:.0f}); rounds: "
          + ", ".join(f"simpy {a:.3f} s / numba {b * 1e3:.1f} ms = {c:.0f}x"
                      for a, b, c in zip(simpy_rep, numba_rep, ratios, strict=True))
          + f"; median {ratio:.0f}x")
    assert ratio > 1.0
    _target(ratio >= TARGET_SPEEDUP, f"numba {ratio:.0f}x SimPy (target {TARGET_SPEEDUP:.0f}x)")


# (time, events) of each scaling round, so x4 and x16 can be set against x1 of the same run
_SCALING: dict[tuple[str, int], tuple[float, float]] = {}


def _repeated(benchmark, factor: int, s, replications: int):
    """Time the batch in rounds of 16 // factor batches; (the batch's output, seconds a
    batch in the best round, None under --benchmark-disable: one round, untimed)."""
    repeats = 16 // factor

    def rounds():
        for _ in range(repeats):
            out, _ = tallies(s, 1, replications, parallel=False)
        return out

    out = benchmark.pedantic(rounds, rounds=ROUNDS_SCALING)
    return out, None if benchmark.disabled else benchmark.stats.stats.min / repeats


def _scaled(benchmark, what: str, factor: int, ev: float, t: float) -> str:
    """Record a scaling batch (events, seconds); against x1 of the same run: work and time
    multiples."""
    _SCALING[what, factor] = (t, ev)
    benchmark.extra_info.update(events=ev, ns_per_event=t / ev * 1e9)
    line = f"{t / ev * 1e9:.0f} ns/event"
    if factor > 1 and (what, 1) in _SCALING:
        t1, ev1 = _SCALING[what, 1]
        benchmark.extra_info.update(work_x=ev / ev1, time_x=t / t1)
        line += f"; x{ev / ev1:.1f} the work of x1 in x{t / t1:.1f} the time"
        _target((t / t1) / (ev / ev1) <= TARGET_LINEAR,
                f"{what} x{factor}: x{ev / ev1:.1f} the work in x{t / t1:.1f} the time "
                f"(target: time per unit of work at most x{TARGET_LINEAR:.3f} that of x1)")
    return line


@pytest.mark.parametrize("factor", [1, 4, 16])
def test_scaling_with_horizon(benchmark, factor):
    # no warm-up: the simulated time, and so the work, is the horizon's multiple
    s = compile_spec(load_config(overrides=[f"run.horizon_days={45 * factor}",
                                            "run.warmup_days=0"]))
    tallies(s, 1, 1, parallel=False)
    out, t = _repeated(benchmark, factor, s, 4)
    ev = _events(out)
    assert out.shape[0] == 4
    _check_work(s, ev, 4, _leads(out))
    if t is None:
        return
    print(f"\nhorizon x{factor}: {ev / 4:.0f} events/rep, "
          + _scaled(benchmark, "horizon", factor, ev, t))


@pytest.mark.parametrize("factor", [1, 4, 16])
def test_scaling_with_lead_volume(benchmark, factor):
    ov = [f"channels.{c}.rate_per_week={r * factor}"
          for c, r in (("inbound", 150), ("product", 80), ("outbound", 60), ("partner", 8))]
    ov += [f"teams.{t}.headcount={h * factor}"
           for t, h in (("marketing", 3), ("sdr", 6), ("ae", 6), ("cs", 3))]
    # the design levers' ranges and the budget are validated against the config: widen them
    ov += [f"levers.{t}_headcount.high={h * factor}" for t, h in (("sdr", 12), ("ae", 10),
                                                                  ("cs", 6))]
    ov += [f"design.annual_budget={2_400_000 * factor}"]
    s = compile_spec(load_config(overrides=ov + ["run.horizon_days=45"]))
    tallies(s, 1, 1, parallel=False)
    out, t = _repeated(benchmark, factor, s, 2)
    leads, ev = _leads(out), _events(out)
    assert out.shape[0] == 2
    _check_work(s, ev, 2, leads)
    benchmark.extra_info.update(leads=leads)
    if t is None:
        return
    print(f"\nvolume x{factor}: {leads / 2:.0f} leads/rep, "
          + _scaled(benchmark, "volume", factor, ev, t))


def test_threads_1000(benchmark, spec):
    """1,000 replications on 1 thread and on 2; the same numbers either way."""
    n = 1000
    before = numba.get_num_threads()
    avail = numba.config.NUMBA_NUM_THREADS
    times, outs = {}, {}
    try:
        for threads in (1, 2):
            numba.set_num_threads(min(threads, avail))
            t0 = time.perf_counter()
            outs[threads], _ = tallies(spec, 1, n)
            times[threads] = time.perf_counter() - t0
    finally:
        numba.set_num_threads(before)
    benchmark.pedantic(lambda: None, rounds=1)  # the figures are in extra_info
    assert outs[1].shape[0] == n
    _check_work(spec, _events(outs[1]), n, _leads(outs[1]))
    assert np.array_equal(outs[1], outs[2])
    ratio = times[1] / times[2]
    benchmark.extra_info.update(threads_available=avail, one_thread_s=times[1],
                                two_threads_s=times[2], ratio=ratio)
    print(f"\n1,000 reps: 1 thread {times[1]:.1f} s, 2 threads {times[2]:.1f} s "
          f"({ratio:.2f}x; numba threads available {avail}, cpus {os.cpu_count()})")
    _target(ratio >= TARGET_THREADS, f"2 threads {ratio:.2f}x 1 thread (target "
            f"{TARGET_THREADS}x; cores may be busy with other work)")


_MEMORY = """
import json, resource, sys, tracemalloc
from gtmsim.config import load_config
from gtmsim.engines.kernel import tallies
from gtmsim.spec import compile_spec
s = compile_spec(load_config(overrides=["run.horizon_days=7", "run.warmup_days=0"]))
tallies(s, 1, 2)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tracemalloc.start()
out, layout = tallies(s, 1, int(sys.argv[1]))
_, peak = tracemalloc.get_traced_memory()
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
now = [int(x.split()[1]) for x in open("/proc/self/status") if x.startswith("VmRSS")]
print(json.dumps({"rows": out.shape[0], "result": out.nbytes, "traced": peak,
                  "rss_before": base * 1024, "rss_peak": rss * 1024,
                  "rss_after": now[0] * 1024 if now else 0}))
"""


def _memory(n: int) -> dict:
    r = subprocess.run([sys.executable, "-c", _MEMORY, str(n)], capture_output=True, text=True,
                       cwd=ROOT, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_peak_memory(benchmark):
    """Peak memory of 1,000 vs 10,000 replications, each in a fresh process: traced Python
    allocations and the process's peak RSS (which also sees the kernel's own tables)."""
    m = {n: _memory(n) for n in (1_000, 10_000)}
    benchmark.pedantic(lambda: None, rounds=1)
    for n, r in m.items():
        assert r["rows"] == n
        print(f"\n{n} reps: result {r['result'] / 2**20:.1f} MiB, traced peak "
              f"{r['traced'] / 2**20:.1f} MiB, RSS {r['rss_before'] / 2**20:.0f} -> "
              f"{r['rss_peak'] / 2**20:.0f} MiB peak (the start-up peak may hide the batch), "
              f"{r['rss_after'] / 2**20:.0f} MiB resident after")
    grew = max(m[10_000]["rss_peak"] - m[1_000]["rss_peak"],
               m[10_000]["rss_after"] - m[1_000]["rss_after"])
    table = m[10_000]["result"] - m[1_000]["result"]
    benchmark.extra_info.update({f"{k}_{n}": v for n, r in m.items() for k, v in r.items()})
    benchmark.extra_info.update(rss_growth=grew, result_growth=table)
    print(f"RSS growth 1,000 -> 10,000: {grew / 2**20:.1f} MiB for "
          f"{table / 2**20:.1f} MiB more result table")
    # the result table is held twice at most (the batch and its copy into place)
    _target(grew <= 2 * table + 32 * 2**20,
            f"memory grew {grew / 2**20:.0f} MiB for {table / 2**20:.0f} MiB of results")


_STARTUP = """
import time
t0 = time.perf_counter()
from gtmsim.config import load_config
from gtmsim.engines.kernel import tallies
from gtmsim.spec import compile_spec
s = compile_spec(load_config())
out, _ = tallies(s, 1, 2)
print(time.perf_counter() - t0, out.shape[0])
"""


def test_first_compile_vs_cached(benchmark):
    """Start-up of a fresh process into a private numba cache: empty (compile everything),
    then again (load from the cache)."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        runs = []
        for _ in range(2):
            r = subprocess.run([sys.executable, "-c", _STARTUP], capture_output=True,
                               text=True, cwd=ROOT, env=env, check=True)
            secs, rows = r.stdout.split()
            assert int(rows) == 2
            runs.append(float(secs))
    benchmark.pedantic(lambda: None, rounds=1)
    benchmark.extra_info.update(first_compile_s=runs[0], cached_start_s=runs[1])
    print(f"\nfirst compile {runs[0]:.1f} s, cached start-up {runs[1]:.1f} s")
    assert runs[1] < runs[0]
