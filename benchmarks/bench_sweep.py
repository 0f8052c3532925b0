"""Sweep throughput on Dask: 1 vs 2 LocalCluster workers, and the distributed path against
the in-process batch on the same work.

Run: /work/venv/bin/python -m pytest benchmarks/bench_sweep.py --benchmark-only -s
(sizes: GTMSIM_BENCH_POINTS points x GTMSIM_BENCH_REPS replications of the default config,
default 4 x 192: three tasks of the default 64 replications per point, as in a sweep of the
config's 200 replications).

- scaling: workers of one numba thread each (one core per worker, as on a cluster), 1 worker
  vs 2 on the same sweep; target >= 1.7x (issue 5);
- overhead: the same sweep as plain `simulate` batches in this process (numba on every core)
  against a LocalCluster of one worker per core; target < 10% for tasks of the default size.

Cluster start-up and the kernels' warm-up are outside the timed part (they happen once per
cluster, not per sweep). The box these run on is shared, so each comparison interleaves
GTMSIM_BENCH_ROUNDS rounds (default 3) of both sides and takes the best of each. Each
benchmark asserts what ran (row counts, every point written); a missed target is reported as
a warning naming the target and the figure.
"""

from __future__ import annotations

import os
import time
import warnings

import numba
import pytest

from gtmsim.simulate import simulate
from gtmsim.sweep import (
    DEFAULT_CHUNK,
    Grid,
    load_grid,
    plan_sweep,
    read_sweep,
    run_sweep,
    warm_up,
)

POINTS = int(os.environ.get("GTMSIM_BENCH_POINTS", "4"))
REPS = int(os.environ.get("GTMSIM_BENCH_REPS", "192"))
ROUNDS = int(os.environ.get("GTMSIM_BENCH_ROUNDS", "3"))
TARGET_SCALING = 1.7
TARGET_OVERHEAD = 0.10
FIGURES: dict[str, float] = {}


@pytest.fixture(scope="module")
def plan(tmp_path_factory):
    folder = tmp_path_factory.mktemp("grid")
    heads = list(range(3, 3 + POINTS))
    (folder / "grid.toml").write_text(f"[levers]\nsdr_headcount = {heads}\n")
    grid: Grid = load_grid(folder / "grid.toml")
    p = plan_sweep(None, None, [], grid, replications=REPS, seed=1, chunk=DEFAULT_CHUNK)
    simulate(p.points[0].spec, 1, 0, engine="numba")  # compile or load the kernels here
    return p


def _check(plan, out) -> None:
    df = read_sweep(out)
    assert df.height == len(plan.points) * plan.replications
    assert df.select("point", "replication").n_unique() == df.height
    assert len(list((out / "points").glob("point-*.parquet"))) == len(plan.points)


def test_scaling_1_vs_2_workers(benchmark, plan, tmp_path):
    """Two warm clusters side by side, interleaved rounds, the best of each (shared box)."""
    from gtmsim.sweep import connect

    times: dict[int, list[float]] = {1: [], 2: []}
    with connect(None, 1, numba_threads=1) as c1, connect(None, 2, numba_threads=1) as c2:
        clients = {1: c1, 2: c2}
        for c in clients.values():
            warm_up(c, plan.points[0].spec, plan.engine)  # outside the timing: once per cluster

        def on(workers: int, out) -> float:
            t0 = time.perf_counter()
            run_sweep(plan, out, clients[workers])
            return time.perf_counter() - t0

        for r in range(ROUNDS):
            for w in (1, 2):
                out = tmp_path / f"w{w}-{r}"
                times[w].append(benchmark.pedantic(on, args=(w, out), rounds=1, iterations=1)
                                if (r, w) == (0, 2) else on(w, out))
                _check(plan, out)
        assert read_sweep(tmp_path / "w1-0").equals(read_sweep(tmp_path / "w2-0"))
    t1, t2 = min(times[1]), min(times[2])
    speedup = t1 / t2
    reps = len(plan.points) * plan.replications
    FIGURES.update(w1_s=t1, w2_s=t2, speedup=speedup)
    benchmark.extra_info.update(FIGURES, replications=reps)
    print(f"\nsweep of {reps} replications ({len(plan.points)} points), best of {ROUNDS} "
          f"interleaved rounds: 1 worker {t1:.2f} s ({reps / t1:.0f} reps/s), 2 workers "
          f"{t2:.2f} s ({reps / t2:.0f} reps/s): {speedup:.2f}x (target >= {TARGET_SCALING}x); "
          f"all rounds: 1 worker {[round(x, 2) for x in times[1]]}, 2 workers "
          f"{[round(x, 2) for x in times[2]]}")
    if speedup < TARGET_SCALING:
        warnings.warn(f"2-worker speed-up {speedup:.2f}x is under the {TARGET_SCALING}x "
                      "target", stacklevel=1)


def test_overhead_against_in_process_batch(benchmark, plan, tmp_path):
    """Interleaved rounds on one warm cluster; the best of each side (the box is shared)."""
    from gtmsim.sweep import connect

    cores = numba.config.NUMBA_NUM_THREADS

    def batch() -> float:
        numba.set_num_threads(cores)
        t0 = time.perf_counter()
        rows = sum(simulate(p.spec, plan.replications, p.seed, engine="numba").replications.height
                   for p in plan.points)
        assert rows == len(plan.points) * plan.replications
        return time.perf_counter() - t0

    batches, clusters, inprocs = [], [], []
    with connect(None, cores, numba_threads=1) as client:
        warm_up(client, plan.points[0].spec, plan.engine)

        def on_cluster(out) -> float:
            t0 = time.perf_counter()
            run_sweep(plan, out, client)
            return time.perf_counter() - t0

        for r in range(ROUNDS):
            batches.append(batch())
            out = tmp_path / f"cluster{r}"
            clusters.append(benchmark.pedantic(on_cluster, args=(out,), rounds=1, iterations=1)
                            if r == 0 else on_cluster(out))
            _check(plan, out)
            t0 = time.perf_counter()
            run_sweep(plan, tmp_path / f"inproc{r}")  # the sweep's own in-process path
            inprocs.append(time.perf_counter() - t0)
            _check(plan, tmp_path / f"inproc{r}")
            assert read_sweep(out).equals(read_sweep(tmp_path / f"inproc{r}"))
    t_batch, t_cluster, t_inproc = min(batches), min(clusters), min(inprocs)
    overhead = t_cluster / t_batch - 1
    FIGURES.update(batch_s=t_batch, cluster_s=t_cluster, inproc_sweep_s=t_inproc,
                   overhead=overhead)
    benchmark.extra_info.update(FIGURES)
    print(f"\nsame work, best of {ROUNDS} interleaved rounds: in-process batch {t_batch:.2f} s "
          f"({cores} numba threads), LocalCluster {cores} workers x 1 thread {t_cluster:.2f} s, "
          f"in-process sweep {t_inproc:.2f} s: distributed overhead {100 * overhead:+.1f}% "
          f"(target < {100 * TARGET_OVERHEAD:.0f}%); all rounds: batch "
          f"{[round(x, 2) for x in batches]}, cluster {[round(x, 2) for x in clusters]}")
    if overhead > TARGET_OVERHEAD:
        warnings.warn(f"distributed overhead {100 * overhead:.1f}% is over the "
                      f"{100 * TARGET_OVERHEAD:.0f}% target", stacklevel=1)
