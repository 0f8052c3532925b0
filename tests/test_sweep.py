"""Sweeps on Dask: the same numbers in-process, on a LocalCluster and on real dask scheduler /
worker processes (one of them killed mid-sweep); resume; bad input is one line and exit 2."""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from cli_checks import fails_cleanly

from gtmsim.cli import main
from gtmsim.errors import ConfigError
from gtmsim.sweep import Axis, Grid, load_grid, plan_sweep, read_sweep, run_sweep

SHORT = ["--set", "run.horizon_days=30", "--set", "run.warmup_days=7"]
DASK = str(Path(sys.executable).parent / "dask")
GRID = """profiles = ["ideal", "realistic"]

[levers]
sdr_headcount = [3, 5]
mql_threshold = { range = [0.2, 0.4], steps = 2 }
"""


@pytest.fixture(scope="module", autouse=True)
def _kernel_cached():
    """Compile (or load) the numba kernels here first, so worker processes load them from the
    on-disk cache instead of each compiling them (a minute each) inside a timed wait."""
    from gtmsim.config import load_config
    from gtmsim.simulate import simulate
    from gtmsim.spec import compile_spec

    simulate(compile_spec(load_config(None, None, SHORT[1::2])), 1, 0, engine="numba")


def _grid(folder: Path, text: str = GRID, name: str = "grid.toml") -> str:
    path = folder / name
    path.write_text(text)
    return str(path)


def _sweep(*args: str) -> None:
    assert main(["sweep", *args]) == 0


def gtmsim(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gtmsim", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


@contextlib.contextmanager
def dask_cluster(folder: Path, workers: int, scheduler_too: bool = False):
    """A real `dask scheduler` and `dask worker` processes on 127.0.0.1, stopped at the end:
    yields the address and the workers' processes (and the scheduler's, if asked)."""
    from distributed import Client

    sched_file = folder / "scheduler.json"
    env = {**os.environ, "NUMBA_NUM_THREADS": "1"}
    log = open(folder / "dask.log", "w")  # noqa: SIM115
    procs: list[subprocess.Popen] = []
    try:
        procs.append(subprocess.Popen(
            [DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
             "--scheduler-file", str(sched_file)], stdout=log, stderr=log, env=env))
        deadline = time.monotonic() + 60
        while not sched_file.is_file() or not sched_file.read_text().strip():
            assert time.monotonic() < deadline, "the scheduler did not start"
            assert procs[0].poll() is None, "the scheduler exited"
            time.sleep(0.2)
        address = json.loads(sched_file.read_text())["address"]
        for _ in range(workers):
            procs.append(subprocess.Popen(
                [DASK, "worker", address, "--nthreads", "1", "--no-nanny", "--no-dashboard",
                 "--host", "127.0.0.1"], stdout=log, stderr=log, env=env))
        with Client(address, timeout="30s", set_as_default=False) as client:
            client.wait_for_workers(workers, timeout=90)
        yield (address, procs[1:], procs[0]) if scheduler_too else (address, procs[1:])
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        log.close()


@pytest.mark.slow
def test_same_numbers_in_process_local_cluster_and_real_workers(tmp_path):
    grid = _grid(tmp_path)
    common = ["--grid", grid, *SHORT, "--replications", "6", "--chunk", "4", "--seed", "11"]
    _sweep(*common, "--workers", "0", "--out", str(tmp_path / "inproc"))
    _sweep(*common, "--workers", "1", "--out", str(tmp_path / "local1"))
    with dask_cluster(tmp_path, 2) as (address, _):
        _sweep(*common, "--scheduler", address, "--out", str(tmp_path / "real2"))
    ref = read_sweep(tmp_path / "inproc")
    assert ref.height == 8 * 6  # 2 profiles x 2 headcounts x 2 thresholds, 6 replications
    assert ref.select("point", "replication").n_unique() == ref.height
    assert set(ref["profile"]) == {"ideal", "realistic"}
    assert ref["bookings"].n_unique() > 10  # real, differing numbers
    for other in ("local1", "real2"):
        df = read_sweep(tmp_path / other)
        assert df.equals(ref), other
        files = sorted((tmp_path / other / "points").iterdir())
        assert [f.name for f in files] == [f"point-{i:05d}.parquet" for i in range(8)]
        for f in files:  # one file per point, each complete
            assert pl.read_parquet(f)["replication"].to_list() == list(range(6))


def test_results_do_not_depend_on_the_split(tmp_path):
    grid = load_grid(_grid(tmp_path))
    a = plan_sweep(None, None, SHORT[1::2], grid, replications=5, seed=3, chunk=5)
    b = plan_sweep(None, None, SHORT[1::2], grid, replications=5, seed=3, chunk=2)
    run_sweep(a, tmp_path / "a")
    run_sweep(b, tmp_path / "b")
    assert read_sweep(tmp_path / "a").equals(read_sweep(tmp_path / "b"))
    assert [p.seed for p in a.points] == [p.seed for p in b.points]
    assert len({p.seed for p in a.points}) == len(a.points)  # each point its own stream


def _sweep_until_a_point(common: list[str], address: str, out: Path) -> subprocess.Popen:
    """A sweep started on `address`, returned once its first point file is written."""
    proc = subprocess.Popen([sys.executable, "-m", "gtmsim", "sweep", *common, "--scheduler",
                             address, "--out", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 90
    while not list((out / "points").glob("point-*.parquet")):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"no point finished: {proc.communicate()}")
        time.sleep(0.05)
    return proc


@pytest.mark.slow
def test_a_worker_killed_mid_sweep(tmp_path):
    grid = _grid(tmp_path)
    # the default horizon: ~50 ms a replication, so the sweep lasts long enough to kill into
    common = ["--grid", grid, "--replications", "12", "--chunk", "3", "--seed", "5"]
    plan = plan_sweep(None, None, [], load_grid(grid), replications=12, seed=5, chunk=3)
    with dask_cluster(tmp_path, 2) as (address, workers):
        out = tmp_path / "killed"
        proc = _sweep_until_a_point(common, address, out)
        try:
            written = len(list((out / "points").glob("point-*.parquet")))
            os.kill(workers[0].pid, signal.SIGKILL)
            stdout, stderr = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert written < 8, "the sweep finished before the kill"
        time.sleep(0.5)
        assert "Remove worker" in (tmp_path / "dask.log").read_text()  # the scheduler saw it
        assert proc.returncode == 0, stderr
        assert "8 points run" in stdout
    run_sweep(plan, tmp_path / "ref")  # the same sweep in this process
    ref, got = read_sweep(tmp_path / "ref"), read_sweep(out)
    assert got.height == 8 * 12
    assert got.select("point", "replication").n_unique() == got.height  # nothing doubled
    assert got.equals(ref)  # nothing lost or changed


def test_resume_skips_finished_points(tmp_path):
    grid = _grid(tmp_path)
    out = tmp_path / "out"
    common = ["--grid", grid, *SHORT, "--replications", "3", "--workers", "0", "--out", str(out)]
    _sweep(*common)
    ref = read_sweep(out)
    stamps = {f.name: f.stat().st_mtime_ns for f in (out / "points").iterdir()}
    (out / "points" / "point-00005.parquet").unlink()
    assert main(["sweep", *common]) == 0
    again = {f.name: f.stat().st_mtime_ns for f in (out / "points").iterdir()}
    assert {k for k in again if again[k] != stamps.get(k)} == {"point-00005.parquet"}
    assert read_sweep(out).equals(ref)


def test_a_resume_takes_the_replications_and_seed_given_either_way(tmp_path):
    """A sweep begun with --set run.replications=3 and resumed with --replications 3 (the
    same replications, seeds and numbers) was refused as 'a different sweep': each point's
    config digest held the config's run.replications and run.seed, which are the manifest's
    own. So was a folder of an earlier gtmsim, whose digests held them: it resumes too."""
    grid = _grid(tmp_path)
    out = tmp_path / "out"
    common = ["--grid", grid, *SHORT, "--workers", "0", "--out", str(out)]
    _sweep(*common, "--set", "run.replications=3", "--set", "run.seed=7")
    ref = read_sweep(out)
    (out / "points" / "point-00002.parquet").unlink()
    assert main(["sweep", *common, "--replications", "3", "--seed", "7"]) == 0
    assert read_sweep(out).equals(ref)
    # the manifest as an earlier gtmsim wrote it: digests of the configs as given
    plan = plan_sweep(None, None, [*SHORT[1::2], "run.replications=3", "run.seed=7"],
                      load_grid(grid))
    earlier = plan.manifest(earlier=True)
    assert earlier != plan.manifest()
    (out / "sweep.json").write_text(json.dumps(earlier, indent=1) + "\n")
    (out / "points" / "point-00002.parquet").unlink()
    assert main(["sweep", *common, "--set", "run.replications=3", "--set", "run.seed=7"]) == 0
    assert read_sweep(out).equals(ref)
    assert json.loads((out / "sweep.json").read_text()) == earlier  # left as it was


def test_a_sweep_stopped_before_its_points_table_writes_it_on_resume(tmp_path, monkeypatch):
    """sweep.json is written first, then points.parquet: a sweep stopped between the two
    never got its points table, as a resume wrote it only with a new sweep.json."""
    from gtmsim import sweep

    plan = plan_sweep(None, None, SHORT[1::2], load_grid(_grid(tmp_path)), replications=1)
    out = tmp_path / "out"
    with monkeypatch.context() as m:
        m.setattr(sweep, "_points_frame", lambda _plan: (_ for _ in ()).throw(
            KeyboardInterrupt))
        with pytest.raises(KeyboardInterrupt):
            run_sweep(plan, out)
    assert (out / "sweep.json").is_file() and not (out / "points.parquet").exists()
    run_sweep(plan, out)
    points = pl.read_parquet(out / "points.parquet")
    assert points["point"].to_list() == [p.index for p in plan.points]
    assert read_sweep(out)["point"].unique().sort().to_list() == points["point"].to_list()


def _interrupt_when(proc: subprocess.Popen, ready, timeout: float = 90.0,
                    group: bool = False, after: float = 0.0,
                    signum: int = signal.SIGINT) -> str:
    """SIGINT (or `signum`) to `proc` (or, `group`, to its process group, as a terminal's
    Ctrl-C) `after` seconds once `ready()` holds (the process still running); its stderr."""
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        time.sleep(after)
        if group:
            os.killpg(proc.pid, signum)
        else:
            proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return err


@pytest.mark.slow
def test_ctrl_c_then_the_same_command_resumes(tmp_path):
    grid = _grid(tmp_path)
    out = tmp_path / "out"
    args = ["sweep", "--grid", grid, *SHORT, "--replications", "80", "--workers", "0",
            "--seed", "9", "--out", str(out)]
    proc = subprocess.Popen([sys.executable, "-m", "gtmsim", *args], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err = _interrupt_when(proc, lambda: list((out / "points").glob("point-*.parquet")))
    first = sorted(f.name for f in (out / "points").iterdir())
    assert proc.returncode == 130 and "run the same command to resume" in err
    assert 1 <= len(first) < 8
    assert not [f for f in (out / "points").iterdir() if f.name.startswith(".")]  # no partials
    r = gtmsim(*args, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    ran = f"{8 - len(first)} point{'s' if 8 - len(first) > 1 else ''} run"
    assert ran in r.stdout and f"{len(first)} already done" in r.stdout
    plan = plan_sweep(None, None, SHORT[1::2], load_grid(grid), replications=80, seed=9)
    run_sweep(plan, tmp_path / "ref")
    assert read_sweep(out).equals(read_sweep(tmp_path / "ref"))


def test_a_point_reruns_alone_with_run_and_its_seed(tmp_path):
    """A point's seed was a 64-bit word: half of them (point 1's, with the default config's
    seed) were past 2**63-1, which `run --seed` and a config's run.seed refuse, so such a point
    could not be rerun alone. Its seed in points.parquet, with its values set, reruns it."""
    from gtmsim.simulate import run

    grid = load_grid(_grid(tmp_path, "[levers]\nsdr_headcount = [3, 5]\n"))
    plan = plan_sweep(None, None, SHORT[1::2], grid, replications=2)
    run_sweep(plan, tmp_path / "out")
    points = pl.read_parquet(tmp_path / "out" / "points.parquet")
    assert points["seed"].to_list() == [p.seed for p in plan.points]
    rows = read_sweep(tmp_path / "out")
    for point, heads, seed in points.select("point", "sdr_headcount", "seed").iter_rows():
        alone = run(None, None, [*SHORT[1::2], f"teams.sdr.headcount={heads}"],
                    replications=2, seed=seed).replications
        mine = rows.filter(pl.col("point") == point).drop("point", "sdr_headcount", "profile")
        assert mine.equals(alone.select(mine.columns)), point


def test_python_misuse_of_plan_sweep_names_the_argument(tmp_path):
    """2.5 replications were planned and written into the sweep's folder before a TypeError
    ('float' object cannot be interpreted as an integer); a negative seed was NumPy's
    'expected non-negative integer'; a grid's path was an AttributeError."""
    from gtmsim.errors import GtmsimError

    path = _grid(tmp_path, "[levers]\nsdr_headcount = [3, 5]\n")
    grid = load_grid(path)
    short = SHORT[1::2]
    with pytest.raises(GtmsimError, match="replications: must be a whole number"):
        plan_sweep(None, None, short, grid, replications=2.5)
    with pytest.raises(GtmsimError, match="seed: must be a whole number of at least 0"):
        plan_sweep(None, None, short, grid, replications=2, seed=-1)
    with pytest.raises(GtmsimError, match="chunk: must be a whole number"):
        plan_sweep(None, None, short, grid, replications=2, chunk=1.5)
    with pytest.raises(TypeError, match="grid: expected a Grid"):
        plan_sweep(None, None, short, path, replications=2)
    with pytest.raises(TypeError, match="grid: expected a Grid"):  # not an AttributeError
        plan_sweep(None, "stressed", short, path, replications=2)
    with pytest.raises(TypeError, match="overrides: expected a list"):
        plan_sweep(None, None, "run.horizon_days=30", grid, replications=2)


def test_latin_hypercube_grid(tmp_path):
    grid = load_grid(_grid(tmp_path, 'design = "lhs"\npoints = 5\nseed = 2\n'
                                     'profiles = ["ideal", "realistic"]\n[levers]\n'
                                     'sdr_headcount = { range = [2, 12] }\n'
                                     'mql_threshold = { range = [0.1, 0.6] }\n'
                                     '"stages.sdr_qualify.sla_hours" = [4.0, 24.0]\n'))
    plan = plan_sweep(None, None, SHORT[1::2], grid, replications=2, seed=1)
    assert len(plan.points) == 5
    heads = [p.values["sdr_headcount"] for p in plan.points]
    assert all(isinstance(h, int) and 2 <= h <= 12 for h in heads)
    assert len(set(heads)) == 5  # one per stratum
    assert all(0.1 <= p.values["mql_threshold"] <= 0.6 for p in plan.points)
    run_sweep(plan, tmp_path / "out")
    df = read_sweep(tmp_path / "out")
    assert df.height == 10 and df["sdr_headcount"].dtype == pl.Int64


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("address", ["closed port", "not an address", "silent port",
                                     "tls address"])
@pytest.mark.slow
def test_unreachable_scheduler_is_one_line_exit_2(tmp_path, address):
    """A closed port, a malformed address, a port that accepts but never speaks Dask (e.g.
    the dashboard's: the client's own connect waited on it forever), and a tls:// address
    without TLS settings (its half-made client printed a 'Client.__del__' traceback at exit,
    6 s later)."""
    grid = _grid(tmp_path)
    listener = None
    if address == "tls address":
        address = f"tls://127.0.0.1:{_free_port()}"
    elif address == "closed port":
        address = f"tcp://127.0.0.1:{_free_port()}"
    elif address == "silent port":
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        address = f"tcp://127.0.0.1:{listener.getsockname()[1]}"
    start = time.monotonic()
    try:
        r = gtmsim("sweep", "--grid", grid, *SHORT, "--scheduler", address,
                   "--connect-timeout", "2", "--out", str(tmp_path / "o"), cwd=tmp_path,
                   timeout=60)
    finally:
        if listener is not None:
            listener.close()
    assert time.monotonic() - start < 2 + 15  # the timeout, and the start of Python and gtmsim
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gtmsim: error: --scheduler: "), r.stderr
    assert not (tmp_path / "o").exists()  # nothing written


@pytest.mark.parametrize("port", ["0", "-5", "99999"])
def test_a_scheduler_port_outside_1_65535_is_not_an_address(tmp_path, capsys, port):
    """Port 99999 (a digit too many), 0 or -5 passed as an address: the sweep waited out
    --connect-timeout and said it could not reach the scheduler ('no answer')."""
    grid = _grid(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(["sweep", "--grid", grid, *SHORT, "--scheduler", f"tcp://127.0.0.1:{port}",
              "--connect-timeout", "2", "--out", str(tmp_path / "o")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("gtmsim: error: --scheduler: not a scheduler address: port "
                          f"{port} "), err
    assert not (tmp_path / "o").exists()

@pytest.mark.parametrize("to", ["driver", "process group"])
@pytest.mark.slow
def test_ctrl_c_while_the_local_cluster_starts_is_one_line(tmp_path, to):
    """Ctrl-C while the LocalCluster's workers are being spawned: one line and 130, no
    worker process left. Dask's exit hook closed the half-started cluster and printed an
    'AssertionError: Status.init' traceback after gtmsim's line; and a terminal's Ctrl-C,
    which signals the whole process group, reached the workers while they imported Dask:
    a KeyboardInterrupt traceback from each."""
    import psutil

    grid = _grid(tmp_path)
    mark = f"gtmsim-test-{os.getpid()}-{time.monotonic_ns()}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "gtmsim", "sweep", "--grid", grid, *SHORT, "--replications",
         "40", "--workers", "2", "--out", str(tmp_path / "o")], cwd=tmp_path,
        env={**os.environ, "GTMSIM_TEST_MARK": mark}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True)
    group = to == "process group"
    err = _interrupt_when(proc, lambda: any("spawn_main" in " ".join(c.cmdline())
                                            for c in psutil.Process(proc.pid).children()),
                          # the workers importing Dask: at once (0.0) the signal could land
                          # in the instant a worker is spawned, before it has read what it is
                          # to run, and the driver's exit left it an EOFError (once in CI)
                          group=group, after=0.3)
    assert proc.returncode == 130
    assert err.splitlines() == ["gtmsim: starting a LocalCluster of 2 workers",
                                "gtmsim: interrupted; nothing was written"], err
    assert not (tmp_path / "o").exists()

    def marked() -> list[int]:
        pids = []
        for p in psutil.process_iter():
            with contextlib.suppress(psutil.Error):
                if p.environ().get("GTMSIM_TEST_MARK") == mark:
                    pids.append(p.pid)
        return pids

    deadline = time.monotonic() + 10
    while marked():
        assert time.monotonic() < deadline, f"worker processes left: {marked()}"
        time.sleep(0.2)


def test_sigterm_to_the_process_group_while_the_local_cluster_starts_is_one_line(tmp_path):
    """SIGTERM to the whole process group (a service manager's stop) while the LocalCluster's
    workers were being spawned killed them mid-start: Dask's 'RuntimeError: Nanny failed to
    start' traceback and exit 1, not 'terminated' and 143; the held signal is the cause."""
    import psutil

    grid = _grid(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gtmsim", "sweep", "--grid", grid, *SHORT, "--replications",
         "40", "--workers", "2", "--out", str(tmp_path / "o")], cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    err = _interrupt_when(proc, lambda: any("spawn_main" in " ".join(c.cmdline())
                                            for c in psutil.Process(proc.pid).children()),
                          group=True, after=0.3, signum=signal.SIGTERM)
    assert proc.returncode == 143, err
    assert err.splitlines() == ["gtmsim: starting a LocalCluster of 2 workers",
                                "gtmsim: terminated; nothing was written"], err
    assert not (tmp_path / "o").exists()


def test_a_first_signal_while_a_cluster_starts_waits_for_the_start_a_second_acts_now():
    """The first Ctrl-C (or SIGTERM) during a LocalCluster's start is held, to be acted on once
    it has started and can be closed in order; a second one is acted on at once (with the
    handler that was there before), and the handlers are back after the start."""
    from gtmsim.sweep import _signals_held

    # Python's own SIGINT handler, even where the tests were started with SIGINT ignored (a
    # shell's background job: `.ci/run &`), in which case Python leaves it ignored
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
        held: list[int] = []
        with _signals_held(held):
            signal.raise_signal(signal.SIGTERM)
            time.sleep(0.05)
            assert held == [signal.SIGTERM]
            with pytest.raises(KeyboardInterrupt):  # the default SIGINT handler's
                signal.raise_signal(signal.SIGINT)
                time.sleep(1)
        assert held == [signal.SIGTERM]
        assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
    finally:
        signal.signal(signal.SIGINT, inherited)


_LEAK = """
import os
from multiprocessing import resource_tracker
from gtmsim.sweep import _workers_deaf_to_ctrl_c
with _workers_deaf_to_ctrl_c():  # as a LocalCluster starts
    resource_tracker.register("/mp-gtmsim-never-made", "semaphore")  # a queue's, half made
os._exit(130)  # interrupted: no finaliser runs
"""


def test_semaphores_of_an_interrupted_cluster_start_are_not_warned_about():
    """Ctrl-C while the LocalCluster starts leaves the workers' queues' semaphores registered
    with multiprocessing's resource tracker, which removes them when gtmsim exits and printed
    two UserWarnings about them (a 'leaked semaphore' and a 'No such file') after gtmsim's one
    line (seen in CI, a race: it depends on the instant of the Ctrl-C). The tracker gtmsim
    starts keeps quiet about them."""
    done = subprocess.run([sys.executable, "-c", _LEAK], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 130
    assert done.stderr == "", done.stderr


BAD_GRIDS = {
    "not TOML": ("[levers\nsdr_headcount = [3]\n", "grid.toml: not valid TOML"),
    # tomllib recurses once per level of [ or {: it was a RecursionError traceback
    "nested too deeply": ("[levers]\nmql_threshold = " + "[" * 5000 + "]" * 5000 + "\n",
                          "grid.toml: cannot read: a value is nested too deeply"),
    "unknown key": ("profile = ['ideal']\n", "profile: unknown key (did you mean 'profiles'?)"),
    "no lever": ("[levers]\nsdr_headcont = [3, 4]\n",
                 "levers.sdr_headcont: no lever 'sdr_headcont' in the config "
                 "(did you mean 'sdr_headcount'?)"),
    "no config path": ("[levers]\n\"stages.nope.threshold\" = [0.1]\n",
                       "not a lever, and no config value at 'stages.nope'"),
    "out of bounds": ("[levers]\nsdr_headcount = [3, 40]\n", "40 is outside the lever's bounds"),
    "range without steps": ("[levers]\nmql_threshold = { range = [0.1, 0.5] }\n",
                            "levers.mql_threshold.steps: a range in a factorial grid needs"),
    # one step is linspace's low end: 0.6, an end the range promises, was silently dropped
    "one step of a wide range": ("[levers]\nmql_threshold = { range = [0.1, 0.6], steps = 1 }\n",
                                 "levers.mql_threshold.steps: 1 step of [0.1, 0.6] runs only "
                                 "its low end"),
    "lhs without points": ("design = 'lhs'\n[levers]\nmql_threshold = { range = [0.1, 0.5] }\n",
                           "points: a Latin hypercube needs points = N"),
    "empty": ("", "the grid names no levers and no profiles"),
    # keys the grid's design has no use for were silently ignored (points = 3 ran 2 points)
    "points in a factorial grid": ("points = 3\n[levers]\nsdr_headcount = [3, 5]\n",
                                   "grid.toml: points: a factorial grid runs every combination"),
    "seed in a factorial grid": ("seed = 3\n[levers]\nsdr_headcount = [3, 5]\n",
                                 "grid.toml: seed: seed is the Latin hypercube sampler's"),
    "steps in a Latin hypercube": ("design = 'lhs'\npoints = 2\n[levers]\n"
                                   "mql_threshold = { range = [0.1, 0.5], steps = 3 }\n",
                                   "levers.mql_threshold.steps: a Latin hypercube samples a "
                                   "range continuously"),
    "steps beside values": ("[levers]\nmql_threshold = { values = [0.2, 0.3], steps = 5 }\n",
                            "levers.mql_threshold.steps: steps goes with a range"),
    # the grid file and its key are named, not a bare "profile:" as if from --profile
    "bad profile": ("profiles = ['hopeful']\n", "grid.toml: profiles: unknown profile 'hopeful'"),
    "misspelt profile": ("profiles = ['ideal', 'realstic']\n",
                         "grid.toml: profiles: unknown profile 'realstic' (did you mean "
                         "'realistic'?)"),
    # the one point drawn is under 'ideal': the misspelt profile was never loaded, so never
    # refused
    "misspelt profile not drawn": ("design = 'lhs'\npoints = 1\nprofiles = ['ideal', "
                                   "'realstic']\n", "grid.toml: profiles: unknown profile "
                                   "'realstic'"),
    # refused from the axes' sizes, before 10^10 points are built
    "too many points": ("[levers]\nmql_threshold = { range = [0.1, 0.5], steps = 100000 }\n"
                        "\"run.seed\" = { range = [1, 200000], steps = 100000 }\n",
                        "the grid has 10,000,000,000 points, at most 20,000"),
    "too many lhs points": ("design = 'lhs'\npoints = 2000000\n[levers]\n"
                            "mql_threshold = { range = [0.1, 0.5] }\n",
                            "points: the grid has 2,000,000 points"),
    # 3.4 SDRs ran as 3 and was recorded as 3.4
    "fraction on a whole axis": ("[levers]\nsdr_headcount = [3.4, 4]\n",
                                 "levers.sdr_headcount: 3.4 is not a whole number"),
    "fractions asked of a whole path": ("[levers]\n\"teams.ae.headcount\" = "
                                        "{ range = [3, 5], steps = 3, integer = false }\n",
                                        "levers.teams.ae.headcount.integer: false, but this "
                                        "value takes whole numbers only"),
    "fractions asked of a whole lever": ("[levers]\nsdr_headcount = "
                                         "{ range = [3, 5], steps = 3, integer = false }\n",
                                         "levers.sdr_headcount.integer: false, but"),
    "fraction on a whole path": ("[levers]\n\"teams.ae.headcount\" = [4, 5.5]\n",
                                 "levers.teams.ae.headcount: 5.5 is not a whole number"),
    # [3, 6] in 3 steps ran 4.5 SDRs as 4 (rounded half to even), recorded as run
    "range between whole numbers": ("[levers]\nsdr_headcount = { range = [3, 6], steps = 3 }\n",
                                    "levers.sdr_headcount: [3, 6] in 3 steps falls between "
                                    "whole numbers; steps that land on them: 2, 4"),
    "text for a number": ("[levers]\nsdr_headcount = ['3']\n",
                          "levers.sdr_headcount: expected a number, got '3'"),
    # true == 1: [true, 1] ran true alone (1 merged into it, unchecked), [1, true] 1 alone
    "a number beside true": ("[levers]\nfeedback = [true, 1]\n",
                             "levers.feedback: expected true or false, got 1"),
    "true beside a number": ("[levers]\ncs_headcount = [1, true]\n",
                             "levers.cs_headcount: expected a number, got True"),
    # a config path's type: refused up front, naming the axis, not at a point
    "a number for a true/false path": ("[levers]\n\"design.feedback.enabled\" = [false, 0]\n",
                                       "levers.design.feedback.enabled: expected true or "
                                       "false, got 0"),
    "true for a number path": ("[levers]\n\"teams.ae.headcount\" = [1, true]\n",
                               "levers.teams.ae.headcount: expected a number, got True"),
    # the sweep's seed and replications are its flags: these axes changed nothing
    "seed axis": ("[levers]\n\"run.seed\" = [1, 2]\n", "run.seed is not an axis"),
    "window axis": ("[levers]\n\"run.horizon_days\" = [91, 182]\n",
                    "run.horizon_days is not an axis"),
    "replications axis": ("[levers]\n\"run.replications\" = [5, 6]\n",
                          "run.replications is not an axis"),
    # what bounds the optimiser's search: its points ran one model, ranked as if they differed
    "a lever's bound as an axis": ("[levers]\n\"levers.sdr_headcount.high\" = [12, 20]\n",
                                   "levers.levers.sdr_headcount.high: levers.sdr_headcount.high "
                                   "is not an axis: it bounds the optimiser's search (a lever's "
                                   "range, the budget) and changes nothing a simulation sees; "
                                   "sweep the lever itself: sdr_headcount = [...]"),
    "the budget as an axis": ("[levers]\n\"design.annual_budget\" = [1e6, 2e6]\n",
                              "levers.design.annual_budget: design.annual_budget is not an "
                              "axis: it bounds the optimiser's search"),
    # no simulation reads them: the points ran one model, and the report ranked its labels
    "a head's cost as an axis": ("[levers]\n\"teams.sdr.cost_per_head\" = [50000, 120000]\n",
                                 "levers.teams.sdr.cost_per_head: teams.sdr.cost_per_head is "
                                 "not an axis: what a head costs moves no outcome of the model"),
    "a people value off at every point": ("profiles = [\"ideal\"]\n[levers]\n"
                                          "\"people.latency.median_hours\" = [1.0, 20.0]\n",
                                          "levers.people.latency.median_hours: "
                                          "people.latency.median_hours is not an axis: latency "
                                          "is off at every point of the grid"),
    # levers each valid alone, together a config the model refuses: refused before any run
    "levers the model refuses together": ("[levers]\nmql_threshold = [0.15, 0.3]\n"
                                          "\"stages.mql_review.reject_below\" = [0.05, 0.2]\n",
                                          "grid.toml: point 1: stages.mql_review: reject_below "
                                          "(0.2) must not exceed threshold (0.15)"),
    # only the later of the two was applied, and each point was labelled with both
    "one value twice": ("[levers]\nmql_threshold = [0.2]\n\"stages.mql_review.threshold\" = "
                        "[0.3]\n", "levers.stages.mql_review.threshold: sets "
                        "stages.mql_review.threshold, as levers.mql_threshold does"),
}


@pytest.mark.parametrize("case", list(BAD_GRIDS))
def test_bad_grid_is_one_line_exit_2(tmp_path, capsys, case):
    text, expected = BAD_GRIDS[case]
    grid = _grid(tmp_path, text)
    with pytest.raises(SystemExit) as exc:
        main(["sweep", "--grid", grid, *SHORT, "--workers", "0", "--out", str(tmp_path / "o")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and expected in err, err
    assert not (tmp_path / "o").exists()  # nothing written


def test_a_people_axis_runs_where_its_mechanism_is_on_at_some_point(tmp_path, capsys):
    """A people value is an axis where its mechanism is on at some point of the grid (by a
    profile, or an axis that switches it on), and refused only where it is off at every
    point; a --set of one off at every point is noted, as run notes it."""
    for text in ('profiles = ["ideal", "realistic"]\n[levers]\n'
                 '"people.latency.median_hours" = [1.0, 20.0]\n',
                 'profiles = ["ideal"]\n[levers]\n"people.latency.enabled" = [true]\n'
                 '"people.latency.median_hours" = [1.0, 20.0]\n'):
        plan = plan_sweep(None, None, SHORT[1::2], load_grid(_grid(tmp_path, text)),
                          replications=1)
        assert "latency" in plan.mechanisms_on
    grid = _grid(tmp_path, "[levers]\nsdr_headcount = [3]\n")
    assert main(["sweep", "--grid", grid, *SHORT, "--profile", "ideal", "--set",
                 "people.latency.median_hours=20", "--replications", "1", "--workers", "0",
                 "--out", str(tmp_path / "o")]) == 0
    assert ("gtmsim: note: --set people.latency.median_hours changes nothing: latency is off "
            "at every point of the grid") in capsys.readouterr().err


@pytest.mark.parametrize("name", ["won", "bookings", "replication"])
def test_a_lever_named_as_a_result_column_is_refused(tmp_path, capsys, name):
    """A point's rows hold each axis's value in a column named after it: a lever named 'won'
    replaced the deals won with its own values (1, 2, ...), and one named 'bookings' made the
    report's best bookings the best lever value, silently."""
    lever = f'levers.{name}={{path="teams.marketing.headcount", low=2, high=4, integer=true}}'
    grid = _grid(tmp_path, f"[levers]\n{name} = [2, 3]\n")
    with pytest.raises(SystemExit) as exc:
        main(["sweep", "--set", lever, "--grid", grid, *SHORT, "--workers", "0",
              "--out", str(tmp_path / "o")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert f"levers.{name}: {name!r} is a result column of the sweep's rows" in err, err
    assert not (tmp_path / "o").exists()


def test_a_lever_error_suggests_a_path_of_the_swept_config(tmp_path, capsys):
    """product_led has no stage sdr_qualify: the example path is one of its own stages'."""
    config = str(Path(__file__).parent.parent / "configs" / "product_led.toml")
    grid = _grid(tmp_path, "[levers]\nsdr_headcount = [3, 5]\n")
    with pytest.raises(SystemExit) as exc:
        main(["sweep", config, "--grid", grid, *SHORT, "--workers", "0",
              "--out", str(tmp_path / "o")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert err.strip().endswith("or give a config path such as stages.pql_review.threshold")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("scheduler", [False, True])
def test_an_out_under_a_file_is_refused_before_a_cluster_starts(tmp_path, capsys, monkeypatch,
                                                                scheduler):
    """--out afile/x was refused only when the first point was written: after a LocalCluster
    had started (or the scheduler's workers had run the point), seconds to minutes later; the
    SLURM script submitted its jobs and waited in the queue first."""
    from gtmsim import sweep

    def no_cluster(*args, **kwargs):
        raise AssertionError("a cluster was started for a sweep that cannot be written")

    monkeypatch.setattr(sweep, "connect", no_cluster)
    (tmp_path / "afile").write_text("")
    where = ["--scheduler", "tcp://127.0.0.1:8786"] if scheduler else ["--workers", "1"]
    fails_cleanly(["sweep", "--grid", _grid(tmp_path), *SHORT, "--replications", "1", *where,
                   "--out", str(tmp_path / "afile" / "x")], "--out: ", tmp_path, capsys)


def test_other_sweep_in_out_folder_is_refused(tmp_path, capsys):
    grid = _grid(tmp_path)
    out = tmp_path / "out"
    _sweep("--grid", grid, *SHORT, "--replications", "2", "--workers", "0", "--out", str(out))
    with pytest.raises(SystemExit) as exc:
        main(["sweep", "--grid", grid, *SHORT, "--replications", "3", "--workers", "0",
              "--out", str(out)])
    assert exc.value.code == 2
    assert "holds a different sweep" in capsys.readouterr().err
    # and says which setting differs, so the resume can be mended ('config, grid, seed,
    # replications or engine differ' named none of them)
    for extra, said in ((["--replications", "3"], "(replications 2 there, 3 here)"),
                        (["--replications", "2", "--seed", "9"], "seed "),
                        (["--replications", "2", "--set", "teams.ae.headcount=7"],
                         "(the points' configs (the config file, --profile or --set))")):
        with pytest.raises(SystemExit):
            main(["sweep", "--grid", grid, *SHORT, *extra, "--workers", "0", "--out", str(out)])
        err = capsys.readouterr().err
        assert said in err and err.strip().endswith("or the same settings to resume it"), err
        # a new root seed gives new point seeds: not a sweep of an earlier gtmsim
        assert "earlier gtmsim" not in err, err
    other = _grid(tmp_path, "[levers]\nsdr_headcount = [3]\n", "other.toml")
    with pytest.raises(SystemExit):
        main(["sweep", "--grid", other, *SHORT, "--replications", "2", "--workers", "0",
              "--out", str(out)])
    assert "grid points there, 1 here" in capsys.readouterr().err


def test_a_sweep_begun_with_64_bit_point_seeds_is_not_resumed(tmp_path, capsys):
    """A folder whose points ran on the earlier 64-bit seeds holds other numbers: a resume
    would mix them, and the refusal said only 'its manifest'."""
    grid = _grid(tmp_path)
    out = tmp_path / "out"
    args = ["sweep", "--grid", grid, *SHORT, "--replications", "2", "--workers", "0",
            "--out", str(out)]
    assert main(args) == 0
    manifest = json.loads((out / "sweep.json").read_text())
    for p in manifest["points"]:
        p["seed"] = int(np.random.SeedSequence(manifest["seed"], spawn_key=(p["point"],))
                        .generate_state(1, dtype=np.uint64)[0])
    (out / "sweep.json").write_text(json.dumps(manifest, indent=1) + "\n")
    with pytest.raises(SystemExit):
        main(args)
    assert "(the points' seeds (a sweep begun by an earlier gtmsim" in capsys.readouterr().err


def test_a_grid_whose_values_changed_type_is_another_sweep(tmp_path, capsys):
    """[4, 8] and [4.0, 8.0] are equal in Python, so a resume with the latter was taken as the
    same sweep, wrote a point file whose axis column was Float64 beside Int64 ones, and the
    report's read of the folder failed with a polars SchemaError traceback."""
    out = tmp_path / "out"
    ints = _grid(tmp_path, '[levers]\n"stages.sdr_qualify.sla_hours" = [4, 8]\n', "i.toml")
    floats = _grid(tmp_path, '[levers]\n"stages.sdr_qualify.sla_hours" = [4.0, 8.0]\n',
                   "f.toml")
    args = [*SHORT, "--replications", "1", "--workers", "0", "--out", str(out)]
    _sweep("--grid", ints, *args)
    (out / "points" / "point-00001.parquet").unlink()
    with pytest.raises(SystemExit) as exc:
        main(["sweep", "--grid", floats, *args])
    assert exc.value.code == 2
    assert "holds a different sweep" in capsys.readouterr().err
    _sweep("--grid", ints, *args)  # the same grid resumes
    assert read_sweep(out).height == 2


def _task_threads() -> tuple[int, int]:
    import numba

    from gtmsim import sweep

    with sweep._KERNEL_LOCK:
        if sweep._NUMBA_THREADS is not None:
            numba.set_num_threads(min(sweep._NUMBA_THREADS, numba.config.NUMBA_NUM_THREADS))
        return numba.config.NUMBA_NUM_THREADS, numba.get_num_threads()


@pytest.fixture(scope="module")
def local2():
    from gtmsim.sweep import connect

    with connect(None, 2) as client:
        yield client


def test_local_cluster_does_not_oversubscribe(tmp_path, local2):
    from gtmsim.sweep import usable_cores, warm_up

    grid = load_grid(_grid(tmp_path))
    plan = plan_sweep(None, None, SHORT[1::2], grid, replications=1)
    warm_up(local2, plan.points[0].spec, plan.engine)
    workers = list(local2.scheduler_info(n_workers=-1)["workers"])
    assert len(workers) == 2
    for w in workers:
        pool, used = local2.submit(_task_threads, workers=[w], pure=False).result()
        assert used == pool == max(1, usable_cores() // 2)  # 2 workers x threads <= the cores


def test_search_on_cluster_runs_each_trial_once(tmp_path, local2):
    """Ask-and-tell on a LocalCluster: the requested trials, none lost or run twice, and each
    trial's scenario values exactly what the serial evaluation gives for its design."""
    import optuna

    from gtmsim.config import load_config
    from gtmsim.optimize.evaluate import evaluate, per_scenario
    from gtmsim.optimize.search import FINISHED, Settings
    from gtmsim.sweep import search_on_cluster

    config = load_config(None, None, SHORT[1::2])
    settings = Settings(objective="mean", trials=6, scenarios=4, replications=1, held_out=2,
                        top=2, seed=3, engine="numba")
    result = search_on_cluster(config, settings, local2, tmp_path / "opt", parallel_trials=3)
    trials = result.study.trials
    assert sum(t.state in FINISHED for t in trials) == 6
    assert all(t.state in FINISHED for t in trials)  # nothing failed or left running
    assert len({t.number for t in trials}) == len(trials)
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE
            and t.user_attrs["over_budget"] <= 0]  # over budget: told, never simulated
    assert done
    t = done[-1]
    serial = per_scenario(evaluate(config, t.params, result.scenarios, 1, "numba"))
    assert t.user_attrs["scenario_values"] == serial["bookings"].to_list()
    assert t.value == pytest.approx(sum(serial["bookings"]) / 4)
    assert result.best.held_out.shape == (2,)


def test_search_on_cluster_interrupted_leaves_no_trial_running(tmp_path, local2,
                                                             monkeypatch):
    """Ctrl-C while the driver drew a trial's levers: that trial was not yet among those in
    flight, so it stayed RUNNING, and a process on another host sharing the study waited on
    it for ever. Every trial asked for is failed now; a whole design is queued again, one
    with only some levers drawn is not (its levers would be fixed in the next trial)."""
    import optuna

    from gtmsim.config import load_config
    from gtmsim.optimize import search as S
    from gtmsim.sweep import search_on_cluster

    config = load_config(None, None, SHORT[1::2])
    settings = S.Settings(objective="mean", trials=6, scenarios=2, replications=1, held_out=2,
                          top=2, seed=3, engine="numba")
    real, calls = S.suggest, []

    def suggest(trial, cfg):
        calls.append(trial.number)
        if len(calls) == 2:  # the second trial: one lever drawn, then Ctrl-C
            lever = cfg.levers["mql_threshold"]
            trial.suggest_float("mql_threshold", lever.low, lever.high)
            raise KeyboardInterrupt
        return real(trial, cfg)

    monkeypatch.setattr(S, "suggest", suggest)
    with pytest.raises(KeyboardInterrupt):
        search_on_cluster(config, settings, local2, tmp_path / "opt", parallel_trials=3)
    study = optuna.load_study(study_name="gtmsim",
                              storage=S.open_storage(None, tmp_path / "opt"))
    states = [t.state for t in study.trials]
    assert optuna.trial.TrialState.RUNNING not in states, states
    assert states[calls[1]] == optuna.trial.TrialState.FAIL
    waiting = study.get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert all(set(config.levers) <= set(t.system_attrs["fixed_params"]) for t in waiting)


def test_config_path_axes_take_the_type_of_the_value(tmp_path):
    grid = load_grid(_grid(tmp_path, '[levers]\n'
                           '"stages.sdr_qualify.sla_hours" = { range = [4, 24], steps = 3 }\n'
                           '"teams.ae.headcount" = { range = [2, 3], steps = 2 }\n'))
    plan = plan_sweep(None, None, SHORT[1::2], grid, replications=1)
    values = [(p.values["stages.sdr_qualify.sla_hours"], p.values["teams.ae.headcount"])
              for p in plan.points]
    # whole-number bounds, but the SLA is a float in the config and the headcount an integer
    assert values == [(4.0, 2), (4.0, 3), (14.0, 2), (14.0, 3), (24.0, 2), (24.0, 3)]
    assert plan.columns == {"stages.sdr_qualify.sla_hours": pl.Float64,
                            "teams.ae.headcount": pl.Int64, "profile": pl.Utf8}


def test_a_range_of_one_value_is_one_point_however_many_steps(tmp_path):
    """range = [0.3, 0.3] in 1,000,000 steps runs 0.3 once, but it was refused as a grid of
    1,000,000 points (the whole-number [3, 3] was counted once)."""
    grid = load_grid(_grid(tmp_path, '[levers]\nmql_threshold = '
                           '{ range = [0.3, 0.3], steps = 1000000 }\n'))
    assert grid.points() == [{"mql_threshold": 0.3}]


def test_listed_whole_numbers_written_as_floats_are_integers_in_the_table(tmp_path):
    """"teams.ae.headcount" = [2.0, 3.0] ran 2 and 3 heads but the table's column read 2.0
    and 3.0 (Float64); a lever that takes whole numbers likewise."""
    grid = load_grid(_grid(tmp_path, '[levers]\n"teams.ae.headcount" = [2.0, 3.0]\n'
                           'sdr_headcount = [4.0]\n'))
    plan = plan_sweep(None, None, SHORT[1::2], grid, replications=1)
    assert [p.values["teams.ae.headcount"] for p in plan.points] == [2, 3]
    assert all(type(p.values["sdr_headcount"]) is int for p in plan.points)
    assert plan.columns["teams.ae.headcount"] == pl.Int64 == plan.columns["sdr_headcount"]


def test_a_profile_file_is_found_beside_the_grid(tmp_path, monkeypatch):
    """A relative profile path in a grid is read beside the grid file (it was looked up in
    the current folder: 'no such profile file'), and a point's config digest, which a resume
    checks, is the same from either folder."""
    folder = tmp_path / "grids"
    folder.mkdir()
    stressed = Path(__file__).parents[1] / "gtmsim" / "config" / "profiles" / "stressed.toml"
    (folder / "slow.toml").write_text(stressed.read_text())
    _grid(folder, 'profiles = ["slow.toml", "realistic"]\n[levers]\nsdr_headcount = [3]\n',
          "x.toml")
    monkeypatch.chdir(tmp_path)
    plan = plan_sweep(None, None, SHORT[1::2], load_grid("grids/x.toml"), replications=1)
    assert [p.profile for p in plan.points] == ["slow.toml", "realistic"]
    monkeypatch.chdir(folder)
    again = plan_sweep(None, None, SHORT[1::2], load_grid("x.toml"), replications=1)
    assert [p.digest for p in again.points] == [p.digest for p in plan.points]
    stressed_plan = plan_sweep(None, "stressed", SHORT[1::2],
                               load_grid(_grid(tmp_path, "[levers]\nsdr_headcount = [3]\n")),
                               replications=1)
    # the file's people (stressed), not the realistic ones
    assert pickle.dumps(plan.points[0].spec) == pickle.dumps(stressed_plan.points[0].spec)
    assert pickle.dumps(plan.points[0].spec) != pickle.dumps(plan.points[1].spec)


def test_profile_flag_beside_grid_profiles_is_refused(tmp_path, capsys):
    """The grid's profiles decide each point's profile: a --profile beside them was ignored."""
    grid = _grid(tmp_path, "profiles = ['ideal', 'realistic']\n")
    with pytest.raises(SystemExit) as exc:
        main(["sweep", "--grid", grid, *SHORT, "--profile", "stressed", "--workers", "0",
              "--out", str(tmp_path / "o")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--profile: " in err and "not both" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_a_local_cluster_of_one_worker_is_said_in_the_singular(tmp_path, capsys):
    """--workers 1 printed 'starting a LocalCluster of 1 workers' and 'swept ... on a
    LocalCluster of 1 workers'."""
    grid = _grid(tmp_path, "[levers]\nsdr_headcount = [3]\n")
    _sweep("--grid", grid, *SHORT, "--replications", "1", "--workers", "1", "--out",
           str(tmp_path / "out"))
    captured = capsys.readouterr()
    assert "a LocalCluster of 1 worker:" in captured.out, captured.out
    assert "1 workers" not in captured.out + captured.err

def test_local_cluster_workers_default_to_the_cpus_this_process_may_use(tmp_path, monkeypatch):
    """Under taskset or a SLURM allocation (a CPU affinity) the default --workers was every
    CPU of the machine, os.cpu_count(): 8 worker processes on the 1 CPU allowed here."""
    from gtmsim import sweep

    started = []

    @contextlib.contextmanager
    def connect(scheduler, workers, timeout=30.0, numba_threads=None):
        started.append(workers)
        raise KeyboardInterrupt  # enough: how many it was asked for

    monkeypatch.setattr(sweep, "connect", connect)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    grid = _grid(tmp_path, "[levers]\nsdr_headcount = [3]\n")
    args = ["sweep", "--grid", grid, *SHORT, "--replications", "1", "--out", str(tmp_path / "o")]
    assert main(args) == 130
    assert started == [1]
    with pytest.raises(SystemExit) as exc:  # at most 4 per usable CPU
        main([*args, "--workers", "5"])
    assert exc.value.code == 2

@pytest.mark.parametrize("command", ["sweep", "optimize"])
def test_an_empty_scheduler_address_is_refused(tmp_path, capsys, command):
    """--scheduler "" (an unset $DASK_SCHEDULER, say) was taken as no --scheduler: the sweep
    ran on a LocalCluster (beside --workers too), the search in this process, without a word."""
    grid = _grid(tmp_path, "[levers]\nsdr_headcount = [3]\n")
    args = (["sweep", "--grid", grid, "--workers", "0"] if command == "sweep" else
            ["optimize", "--trials", "1", "--scenarios", "1", "--held-out", "1",
             "--ideal-trials", "0"])
    with pytest.raises(SystemExit) as exc:
        main([*args, *SHORT, "--replications", "1", "--scheduler", "", "--out",
              str(tmp_path / "o")])
    assert exc.value.code == 2
    assert capsys.readouterr().err.startswith("gtmsim: error: --scheduler: must not be empty")
    assert not (tmp_path / "o").exists()

def test_a_finished_sweep_reruns_without_a_cluster(tmp_path):
    """Rerunning a complete sweep (to rebuild its report) needs no cluster: the scheduler
    named may be long gone."""
    grid = _grid(tmp_path)
    out = tmp_path / "out"
    _sweep("--grid", grid, *SHORT, "--replications", "2", "--workers", "0", "--out", str(out))
    (out / "report.html").unlink()
    r = gtmsim("sweep", "--grid", grid, *SHORT, "--replications", "2", "--scheduler",
               f"tcp://127.0.0.1:{_free_port()}", "--connect-timeout", "2", "--out", str(out),
               cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (out / "report.html").exists() and "already done" in r.stdout
    assert "in this process" in r.stdout  # it said "on a LocalCluster" it never started


def _kill_then_stop(proc: subprocess.Popen, pid: int, timeout: float = 120) -> tuple[str, float]:
    """SIGKILL `pid` (a scheduler or a worker) while `proc` runs: `proc` must stop in one line
    and exit 1 (not bad input), no traceback; returns that line and how long it took."""
    try:
        os.kill(pid, signal.SIGKILL)
        t0 = time.monotonic()
        _, stderr = proc.communicate(timeout=timeout)  # a cluster left waiting: for ever
        waited = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, stderr
    assert "Traceback" not in stderr, stderr
    return stderr.strip().splitlines()[-1], waited


@pytest.mark.slow
def test_losing_the_scheduler_mid_sweep_is_one_line_and_resumable(tmp_path):
    """The scheduler dies: one line saying the cluster was lost and how to resume, exit 1 (not
    bad input), no Dask traceback, and the points already written are kept."""
    grid = _grid(tmp_path)
    common = ["--grid", grid, "--replications", "40", "--chunk", "2", "--seed", "5"]
    with dask_cluster(tmp_path, 1, scheduler_too=True) as (address, _, scheduler):
        out = tmp_path / "lost"
        last, _ = _kill_then_stop(_sweep_until_a_point(common, address, out), scheduler.pid)
    assert last.startswith("gtmsim: error: lost the Dask cluster") and "resume" in last, last
    assert len(list((out / "points").glob("point-*.parquet"))) >= 1


@pytest.mark.slow
def test_a_cluster_left_without_workers_stops_after_the_timeout(tmp_path):
    """Every worker gone mid-sweep (the scheduler still up): the tasks would wait for ever.
    After --connect-timeout without a worker the sweep stops: one line, exit 1, resumable,
    the points already written kept."""
    grid = _grid(tmp_path)
    common = ["--grid", grid, "--replications", "40", "--chunk", "2", "--seed", "5",
              "--connect-timeout", "3"]
    with dask_cluster(tmp_path, 1) as (address, workers):
        out = tmp_path / "alone"
        last, waited = _kill_then_stop(_sweep_until_a_point(common, address, out),
                                       workers[0].pid, timeout=60)
    assert last.startswith("gtmsim: error: no Dask worker has been on the cluster for 3s"), last
    assert "run the same command to resume" in last
    assert waited >= 3
    assert len(list((out / "points").glob("point-*.parquet"))) >= 1


@pytest.mark.slow
def test_an_optimisation_left_without_workers_stops_after_the_timeout(tmp_path):
    """The same for `optimize --scheduler`: its trials in flight are given back (failed and
    enqueued again), so the same command resumes."""
    from distributed import Client

    args = ["optimize", *SHORT, "--scheduler", "", "--trials", "400", "--scenarios", "4",
            "--held-out", "2", "--replications", "2", "--ideal-trials", "0",
            "--connect-timeout", "3", "--out", str(tmp_path / "opt")]
    with dask_cluster(tmp_path, 1) as (address, workers):
        args[args.index("--scheduler") + 1] = address
        proc = subprocess.Popen([sys.executable, "-m", "gtmsim", *args], cwd=tmp_path,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        with Client(address, timeout="30s", set_as_default=False) as client:
            deadline = time.monotonic() + 90
            while not any(client.processing().values()):  # the search is under way
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.kill()
                    raise AssertionError(f"no trial reached the cluster: {proc.communicate()}")
                time.sleep(0.05)
        last, _ = _kill_then_stop(proc, workers[0].pid, timeout=60)
    assert last.startswith("gtmsim: error: no Dask worker has been on the cluster for 3s"), last


class _BrokenWorkers:
    """A client whose workers cannot start gtmsim (an import or compile failure there)."""

    def scheduler_info(self, n_workers=-1):
        return {"workers": {"tcp://127.0.0.1:1": {"nthreads": 1}}}

    def register_plugin(self, plugin):
        raise RuntimeError("ImportError('this gtmsim is broken')")


def test_a_worker_that_cannot_start_gtmsim_is_one_line_and_leaves_no_folder(tmp_path):
    from gtmsim.errors import ClusterLost

    plan = plan_sweep(None, None, SHORT[1::2], load_grid(_grid(tmp_path)), replications=1)
    with pytest.raises(ClusterLost, match="a Dask worker could not start gtmsim: ImportError"):
        run_sweep(plan, tmp_path / "o", _BrokenWorkers())
    assert not (tmp_path / "o").exists()


def test_planning_leaves_the_grid_as_loaded(tmp_path):
    """plan_sweep resolved the axes (whole numbers or not, a lever's path) in the caller's
    Grid: the same Grid planned again against a config whose sdr_sla is not an integer lever
    drew whole SLAs (19, 6, 16) where a freshly loaded grid draws 19.12, 6.60, 16.02."""
    path = _grid(tmp_path, 'design = "lhs"\npoints = 3\n[levers]\nsdr_sla = { range = [1, 24] }\n')
    grid = load_grid(path)
    whole = plan_sweep(None, None, [*SHORT[1::2], "levers.sdr_sla.integer=true"], grid, 1)
    assert all(isinstance(p.values["sdr_sla"], int) for p in whole.points)
    again = plan_sweep(None, None, SHORT[1::2], grid, 1)
    fresh = plan_sweep(None, None, SHORT[1::2], load_grid(path), 1)
    assert [p.values for p in again.points] == [p.values for p in fresh.points]
    assert not any(float(p.values["sdr_sla"]).is_integer() for p in again.points)


def test_a_ranges_steps_are_the_round_numbers_a_planner_wrote():
    """[0.1, 0.5] in 3 steps is 0.1, 0.3, 0.5 (linspace gave 0.30000000000000004, which the
    tables, the heatmap's axis and the point's config carried)."""
    from gtmsim.sweep import Axis

    axis = Axis("mql_threshold", "mql_threshold", (), 0.1, 0.5, 3, False)
    assert [repr(v) for v in axis.factorial_values()] == ["0.1", "0.3", "0.5"]
    thirds = Axis("x", "x", (), 0.0, 1.0, 4, False).factorial_values()
    assert thirds[1] == pytest.approx(1 / 3, rel=1e-12) and thirds[-1] == 1.0


def test_a_range_that_repeats_a_value_runs_it_once(tmp_path):
    """Listed values are taken once each; a float range whose steps repeat a value ran it as
    several points of one design (range = [0.3, 0.3] in 3 steps: three points at 0.3, the
    report naming one of them 'ahead of the runner-up', the same design)."""
    grid = load_grid(_grid(tmp_path, "[levers]\nmql_threshold = { range = [0.3, 0.3], "
                                     "steps = 3 }\n"))
    plan = plan_sweep(None, None, SHORT[1::2], grid, replications=1)
    assert [p.values["mql_threshold"] for p in plan.points] == [0.3]
    # a whole-number range of one value passed the size check with any steps, then
    # linspace allocated them all: a MemoryError traceback for 10**12
    grid = load_grid(_grid(tmp_path, "[levers]\nsdr_headcount = { range = [3, 3], steps = "
                                     "1000000000000, integer = true }\n"))
    plan = plan_sweep(None, None, SHORT[1::2], grid, replications=1)
    assert [p.values["sdr_headcount"] for p in plan.points] == [3]
    # a Latin hypercube of categories repeats its points: each design runs once
    grid = load_grid(_grid(tmp_path, 'design = "lhs"\npoints = 5\nprofiles = ["ideal", '
                                     '"realistic"]\n[levers]\nsdr_headcount = { range = [3, '
                                     '4], integer = true }\n'))
    drawn = [(p["profile"], p["sdr_headcount"]) for p in grid.points()]
    assert len(drawn) == len(set(drawn)) and 2 <= len(drawn) <= 4, drawn


def test_a_rerun_without_png_leaves_no_figures_of_the_last_run(tmp_path):
    """A resumed sweep without --png left the earlier run's figures/*.png beside the new
    report; the folder is replaced as a whole, so they go."""
    grid = _grid(tmp_path, "[levers]\nsdr_headcount = [3, 5]\n")
    out = tmp_path / "out"
    common = ["--grid", grid, *SHORT, "--replications", "1", "--workers", "0", "--out", str(out)]
    _sweep(*common)
    (out / "figures").mkdir()  # as a run with --png leaves them
    (out / "figures" / "leaders.png").write_bytes(b"\x89PNG old")
    assert main(["sweep", *common]) == 0
    assert not (out / "figures").exists() and (out / "report.html").is_file()


SLURM_SCRIPT = Path(__file__).parents[1] / "scripts" / "cluster" / "slurm_jobqueue.py"
CONFIG = Path(__file__).parents[1] / "configs" / "b2b_saas.toml"


def test_the_slurm_script_helps_and_names_what_to_install(tmp_path):
    """--help works without dask-jobqueue (it was imported first: ModuleNotFoundError), and
    without it a run is one line saying what to install, exit 2."""
    r = subprocess.run([sys.executable, str(SLURM_SCRIPT), "--help"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0 and "--jobs" in r.stdout, r.stderr
    block = tmp_path / "dask_jobqueue.py"  # stands for a missing package, installed or not
    block.write_text("raise ImportError('No module named dask_jobqueue')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(tmp_path), str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH", "")])}
    r = subprocess.run([sys.executable, str(SLURM_SCRIPT), "c.toml", "g.toml", "out"],
                       capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.splitlines() == ["slurm_jobqueue: error: dask-jobqueue is not installed: "
                                     "pip install dask-jobqueue"], r.stderr


def test_a_connection_reset_while_fetching_a_result_is_a_lost_cluster():
    """CI once saw a killed scheduler reset the client's fetch of a finished task's result
    before the client noticed it was gone: the sweep read it as the task's own failure ("point
    1 ... failed on the cluster", exit 2) instead of a lost cluster (exit 1, resumable). A
    connection error is the cluster's unless the task itself raised it."""
    from types import SimpleNamespace

    from gtmsim.sweep import _cancelled

    running = SimpleNamespace(status="running")
    reset = ConnectionResetError(104, "Connection reset by peer")
    assert _cancelled(reset, running, SimpleNamespace(status="finished"))
    assert _cancelled(reset, running, SimpleNamespace(status="pending"))
    # an OSError of the task's own (a disk full on the worker, say) stays the task's
    assert not _cancelled(reset, running, SimpleNamespace(status="error"))
    assert not _cancelled(ValueError("bad"), running, SimpleNamespace(status="finished"))


# dask-jobqueue's SLURMCluster, standing in: a LocalCluster whose worker "jobs" never start (as
# in a queue that has not got to them); its memory is read as dask-jobqueue reads it
FAKE_JOBQUEUE = '''
import os
import time

from dask.utils import parse_bytes
from distributed import LocalCluster


if os.path.exists("slow-import"):  # a shared file system's slow import, Ctrl-C meanwhile
    open("importing", "w").close()
    time.sleep(30)


class SLURMCluster(LocalCluster):
    def __init__(self, queue=None, account=None, cores=1, processes=1, memory=None,
                 walltime=None, job_script_prologue=None, worker_extra_args=None):
        parse_bytes(memory)
        with open("prologue.sh", "w") as f:  # what each job script runs before its worker
            f.write("\\n".join(job_script_prologue or []) + "\\n")
        open("cluster-started", "w").close()
        super().__init__(n_workers=0, processes=False, dashboard_address=":0")

    def scale(self, n=None, jobs=0, memory=None, cores=None):
        pass

    def job_script(self):
        return "#!/usr/bin/env bash"

    def close(self, *args, **kwargs):
        open("cluster-closed", "w").close()  # dask-jobqueue cancels the jobs here
        return super().close(*args, **kwargs)

    def wait_for_workers(self, n_workers, timeout=None):
        if os.path.exists("queue-stuck"):  # the hour's wait, at once
            raise TimeoutError(f"Only 0/{n_workers} workers arrived after {timeout}")
        if os.path.exists("jobs-gone"):  # they came, and their walltime ended at once
            return None
        return super().wait_for_workers(n_workers, timeout)
'''


def _slurm_script(folder: Path, *args: str) -> subprocess.Popen:
    (folder / "dask_jobqueue.py").write_text(FAKE_JOBQUEUE)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(folder), str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, str(SLURM_SCRIPT), *args], cwd=folder, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _slurm_done(folder: Path, *args: str, timeout: float) -> tuple:
    """Run the SLURM script to its end: (process, stdout, stderr)."""
    proc = _slurm_script(folder, *args)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc, out, err


def test_the_slurm_script_cancels_its_jobs_when_terminated(tmp_path):
    """SIGTERM (SLURM ending the job the script runs in, a `kill`) ended it at once, without
    closing the cluster: its worker jobs stayed in the queue, or ran, until their walltime.
    --serve runs no sweep, so it needs no config, grid or out (it required all three)."""
    proc = _slurm_script(tmp_path, "--serve")
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "cluster-started").exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        time.sleep(3)
        proc.terminate()
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert (tmp_path / "cluster-closed").exists()
    assert proc.returncode == 143, err
    assert err.strip().splitlines() == ["slurm_jobqueue: terminated"], err


def _interrupted_in_one_line(proc: subprocess.Popen, ready: Path, after: float) -> str:
    """Ctrl-C the SLURM script once `ready` exists: one line, exit 130."""
    err = _interrupt_when(proc, ready.exists, after=after)
    assert proc.returncode == 130, err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("slurm_jobqueue: interrupted"), err
    return err


@pytest.mark.parametrize("serve", [True, False])
@pytest.mark.slow
def test_ctrl_c_in_the_slurm_script_is_one_line(tmp_path, serve):
    """Ctrl-C stops --serve (as its help says) and a sweep waiting for its jobs: it was a
    KeyboardInterrupt traceback and exit 1; it is one line and exit 130."""
    grid = _grid(tmp_path, "[levers]\nsdr_headcount = [3, 5]\n")
    args = ["--serve"] if serve else [*SHORT, "--replications", "1"]
    proc = _slurm_script(tmp_path, str(CONFIG), grid, "out", *args)
    _interrupted_in_one_line(proc, tmp_path / "cluster-started", after=3)


def test_ctrl_c_before_the_slurm_cluster_starts_is_one_line(tmp_path):
    """Ctrl-C while dask-jobqueue was imported or the sweep planned (seconds, for a large
    grid) was a KeyboardInterrupt traceback: only the cluster's run was guarded."""
    grid = _grid(tmp_path, "[levers]\nsdr_headcount = [3, 5]\n")
    (tmp_path / "slow-import").touch()
    proc = _slurm_script(tmp_path, str(CONFIG), grid, "out", *SHORT)
    err = _interrupted_in_one_line(proc, tmp_path / "importing", after=0.5)
    # nothing was written: no 'the points written are kept in out'
    assert err.strip() == "slurm_jobqueue: interrupted" and not (tmp_path / "out").exists()


def test_slurm_jobs_that_never_start_are_one_line(tmp_path):
    """No worker job out of the queue within the hour's wait: a TimeoutError traceback ('Only
    0/1 workers arrived after 3600'); it is one line saying what to do, and exit 1."""
    grid = _grid(tmp_path, "[levers]\nsdr_headcount = [3, 5]\n")
    (tmp_path / "queue-stuck").touch()
    proc, _, err = _slurm_done(tmp_path, str(CONFIG), grid, "out", *SHORT, timeout=60)
    assert proc.returncode == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("slurm_jobqueue: error: no worker job "), err
    assert "run the same command" in lines[0]


def test_the_slurm_script_activates_a_venv_whose_path_has_a_space(tmp_path):
    """--venv went into the job script unquoted, 'source /opt/my envs/gt/bin/activate': bash
    sourced '/opt/my' (no such file) and each worker job started without the environment."""
    venv = tmp_path / "my envs" / "gt"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "activate").write_text('touch "$ACTIVATED"\n')
    grid = _grid(tmp_path, "[levers]\nsdr_headcount = [3, 5]\n")
    (tmp_path / "queue-stuck").touch()  # the prologue is written; no job need start
    proc, _, err = _slurm_done(tmp_path, str(CONFIG), grid, "out", *SHORT, "--venv",
                               str(venv), timeout=60)
    assert proc.returncode == 1, err
    marker = tmp_path / "activated"
    r = subprocess.run(["bash", "-e", "prologue.sh"], cwd=tmp_path, capture_output=True,
                       text=True, env={**os.environ, "ACTIVATED": str(marker)})
    assert r.returncode == 0 and marker.exists(), r.stderr


def test_the_slurm_script_reruns_a_finished_sweep_without_jobs(tmp_path):
    """A finished sweep run again (for its report) submitted worker jobs and waited up to an
    hour in the queue for a worker it had no task for; as with the CLI, it needs no cluster."""
    grid = _grid(tmp_path, "[levers]\nsdr_headcount = [3, 5]\n")
    plan = plan_sweep(str(CONFIG), None, SHORT[1::2], load_grid(grid), replications=1)
    run_sweep(plan, tmp_path / "out")
    (tmp_path / "queue-stuck").touch()
    proc, out, err = _slurm_done(tmp_path, str(CONFIG), grid, "out", *SHORT,
                                 "--replications", "1", timeout=60)
    assert proc.returncode == 0, err
    assert not (tmp_path / "cluster-started").exists()  # no job submitted
    assert (tmp_path / "out" / "report.html").is_file()
    assert "0 points run, 2 already done" in out, out

@pytest.mark.slow
def test_slurm_jobs_gone_mid_sweep_are_one_line_and_resumable(tmp_path):
    """Every worker job gone (their walltime) for 30 s: the sweep stops as the CLI's does, but
    the script let ClusterLost out as a traceback; it is one line, exit 1, saying to resume."""
    grid = _grid(tmp_path, "[levers]\nsdr_headcount = [3, 5]\n")
    (tmp_path / "jobs-gone").touch()
    proc, _, err = _slurm_done(tmp_path, str(CONFIG), grid, "out", *SHORT, "--replications",
                               "1", timeout=90)
    assert proc.returncode == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("slurm_jobqueue: error: no Dask worker has been on the cluster")
    assert "run the same command to resume" in lines[0]


@pytest.mark.parametrize("flag", [("--jobs", "0"), ("--jobs", "-2"), ("--cores", "0"),
                                  ("--jobs", "two"), ("--memory", "32XB"),
                                  ("--replications", "0"), ("--seed", "-1"),
                                  ("--chunk", "0")])
def test_the_slurm_script_refuses_bad_jobs_in_one_line(tmp_path, flag):
    """--jobs 0 waited an hour for a worker, then a TimeoutError traceback; --cores 0 and a
    memory dask cannot read were tracebacks from the cluster's start, a negative --jobs one
    from its scale; argparse's own errors printed the usage first, three lines more; a bad
    --replications, --seed or --chunk was named without its dashes, 'replications: ...'."""
    grid = _grid(tmp_path, "[levers]\nsdr_headcount = [3, 5]\n")
    proc, _, err = _slurm_done(tmp_path, str(CONFIG), grid, "out", *SHORT, *flag, timeout=60)
    assert proc.returncode == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"slurm_jobqueue: error: {flag[0]}"), err
    assert flag[1] in lines[0]
    assert not (tmp_path / "out").exists()


def test_the_slurm_script_without_serve_needs_config_grid_and_out(tmp_path):
    proc = _slurm_script(tmp_path, "c.toml")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert err.strip().splitlines() == ["slurm_jobqueue: error: the following arguments are "
                                        "required: grid, out"], err


BY_HAND = Path(__file__).parents[1] / "scripts" / "cluster" / "start_by_hand.sh"


def _by_hand(folder: Path, *args: str) -> subprocess.CompletedProcess:
    """start_by_hand.sh with a `dask` on PATH that only records how it was called."""
    fake = folder / "dask"
    fake.write_text(f'#!/bin/sh\necho "$@" > {folder / "dask-args"}\n')
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{folder}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(["bash", str(BY_HAND), *args], capture_output=True, text=True,
                          env=env, timeout=30)


def test_start_by_hand_says_how_to_use_it(tmp_path):
    """Without a role it prints its usage, the comment at its top: that ran one line past
    the comment and printed 'set -euo pipefail' too."""
    r = _by_hand(tmp_path)
    assert r.returncode == 2
    lines = r.stdout.splitlines()
    assert lines[0].startswith("# Start a Dask scheduler and workers by hand")
    assert all(line.startswith("#") for line in lines), r.stdout


@pytest.mark.parametrize("n", ["0", "-1", "two"])
def test_start_by_hand_refuses_a_worker_count_in_one_line(tmp_path, n):
    """worker HEAD 0 was bash's 'cores / n : division by 0 (error token is "n ")', exit 1;
    -1 started dask with --nworkers -1 and NUMBA_NUM_THREADS set from a negative count."""
    r = _by_hand(tmp_path, "worker", "node01", n)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and n in lines[0] and "N" in lines[0], r.stderr
    assert not (tmp_path / "dask-args").exists()  # no worker started


def test_start_by_hand_shares_the_cores_among_the_workers(tmp_path):
    r = _by_hand(tmp_path, "worker", "node01", "1")
    assert r.returncode == 0, r.stderr
    args = (tmp_path / "dask-args").read_text().split()
    assert args[:2] == ["worker", "tcp://node01:8786"]
    assert args[args.index("--nworkers") + 1] == "1" and "--nthreads" in args


def test_start_by_hand_names_two_starts_on_one_node_apart(tmp_path):
    """Every start on a node took the name `hostname`: the scheduler refused a second one
    ('name taken'), so more workers could not be added to a node by a second start."""
    import socket

    names = []
    for _ in range(2):
        assert _by_hand(tmp_path, "worker", "node01", "1").returncode == 0
        args = (tmp_path / "dask-args").read_text().split()
        names.append(args[args.index("--name") + 1])
    assert names[0] != names[1] and all(n.startswith(socket.gethostname()) for n in names)


def _task_out_of_memory(spec, seed, first, count, engine):
    """sweep.run_task on a worker that runs out of memory (Dask pickles it by name); the
    workers' warm-up (replication 0 of seed 0) passes."""
    if seed == 0:
        return None
    raise MemoryError("the worker ran out of memory")


def test_a_task_that_fails_on_the_cluster_is_not_bad_input(tmp_path, monkeypatch):
    """A task that raised on a worker (or whose workers kept dying: Dask's KilledWorker) was a
    GtmsimError, exit 2, as if the input were bad, with no word on resuming; it stops the
    sweep with exit 1, keeps what finished and says the same command resumes."""
    from distributed import Client, LocalCluster

    from gtmsim import sweep
    from gtmsim.cli import EXIT_FAILED, main
    from gtmsim.errors import TaskFailed

    monkeypatch.setattr(sweep, "run_task", _task_out_of_memory)
    plan = plan_sweep(None, None, SHORT[1::2], load_grid(_grid(tmp_path)), replications=2)
    with (LocalCluster(n_workers=1, processes=False, dashboard_address=":0") as cluster,
          Client(cluster) as client, pytest.raises(TaskFailed) as info):
        run_sweep(plan, tmp_path / "o", client=client)
    assert "failed on the cluster: the worker ran out of memory" in str(info.value)
    assert str(info.value).endswith("run the same command to resume")

    @contextlib.contextmanager
    def connect(scheduler, workers, timeout=30.0, numba_threads=None):
        raise TaskFailed("point 0, replications 0..1 failed on the cluster")
        yield

    monkeypatch.setattr(sweep, "connect", connect)
    assert main(["sweep", "--grid", _grid(tmp_path), *SHORT, "--replications", "1",
                 "--out", str(tmp_path / "o2")]) == EXIT_FAILED


def test_search_on_cluster_waits_for_trials_other_processes_run(tmp_path, local2,
                                                                monkeypatch):
    """A driver sharing a study (--scheduler with a shared --storage) went on to the held-out
    step as soon as its own trials were told, while another process's trial, counted in the
    quota, still ran: it chose among the trials finished so far, here without the other
    process's (and best) design, which it listed as the own design 'not run by the search'.
    The serial search waits for them (`await_others`); so does the cluster's driver."""
    import socket
    import threading

    import optuna

    from gtmsim.config import load_config
    from gtmsim.optimize import search as S
    from gtmsim.sweep import search_on_cluster

    config = load_config(None, None, SHORT[1::2])
    settings = S.Settings(objective="mean", trials=2, scenarios=1, replications=1, top=2,
                          seed=3, engine="numba", storage=str(tmp_path / "s.journal"))
    study = S.prepare(config, settings).study
    other = study.ask()  # the own design, run by another live process (this test's parent)
    S.suggest(other, config)
    other.set_user_attr("host", socket.gethostname())
    other.set_user_attr("pid", os.getppid())
    other.set_user_attr("over_budget", -1.0)
    other.set_user_attr("scenario_values", [1e12])
    seen: dict[str, object] = {}
    held_out_candidates = S.held_out_candidates

    def record(config, study, *args, **kwargs):
        seen["other"] = study.trials[other.number].state
        return held_out_candidates(config, study, *args, **kwargs)

    monkeypatch.setattr(S, "held_out_candidates", record)

    def finish_after_the_driver_s_trial() -> None:
        while not any(t.number != other.number and t.state.is_finished()
                      for t in study.get_trials(deepcopy=False)):
            time.sleep(0.05)
        time.sleep(1.0)
        study.tell(other, 1e12)

    finisher = threading.Thread(target=finish_after_the_driver_s_trial, daemon=True)
    finisher.start()
    result = search_on_cluster(config, settings, local2, parallel_trials=1)
    finisher.join(timeout=60)
    assert seen["other"] == optuna.trial.TrialState.COMPLETE
    assert result.best.trial == other.number and result.best.own


def test_the_slurm_script_cannot_write_its_report_in_one_line(tmp_path):
    """The report was written through report.html.tmp by hand: an OSError there (report.html
    a folder with something in it) was a traceback, and the .tmp file stayed behind."""
    grid = _grid(tmp_path, "[levers]\nsdr_headcount = [3, 5]\n")
    plan = plan_sweep(str(CONFIG), None, SHORT[1::2], load_grid(grid), replications=1)
    run_sweep(plan, tmp_path / "out")
    (tmp_path / "out" / "report.html").mkdir()
    (tmp_path / "out" / "report.html" / "kept").touch()
    proc, _, err = _slurm_done(tmp_path, str(CONFIG), grid, "out", *SHORT,
                               "--replications", "1", timeout=60)
    assert proc.returncode == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("slurm_jobqueue: error: out: cannot write"), err
    left = [p.name for p in (tmp_path / "out").iterdir() if "tmp" in p.name or "partial" in p.name]
    assert left == [], left


def test_a_plan_of_more_replications_than_a_config_may_hold_is_refused(tmp_path):
    """--replications stops at 1,000,000, but plan_sweep took any count: 10**9 was planned
    (sweep.json written, then some 15 million tasks a point). Refused, naming it, up front."""
    from gtmsim.errors import MAX_REPLICATIONS, GtmsimError

    grid = load_grid(_grid(tmp_path))
    with pytest.raises(GtmsimError, match=f"replications: must be at most {MAX_REPLICATIONS}"):
        plan_sweep(None, None, [], grid, replications=MAX_REPLICATIONS + 1)
    assert plan_sweep(None, None, [], grid, replications=3).replications == 3


def test_a_stage_no_point_reaches_gets_a_note(tmp_path, capsys):
    """`sweep` said nothing of a stage no lead reaches (its team does no work at any point),
    as `run` and `validate` do; and a stage only some points route to is reached, so it gets
    no note (the note counts the grid's axes, not only the config's levers)."""
    orphan = [*SHORT, "--set", "teams.x={headcount=1, cost_per_head=0}", "--set",
              'stages.orphan={team="x", kind="review", effort_hours={dist="fixed", '
              'value=1.0}, routes={qualified="ae_close"}}']
    fixed = _grid(tmp_path, "[levers]\nsdr_headcount = [3, 5]\n", "fixed.toml")
    routed = _grid(tmp_path, '[levers]\n"channels.partner.entry" = ["ae_close", "orphan"]\n',
                   "routed.toml")
    sets = orphan[1::2]
    plan = plan_sweep(None, None, sets, load_grid(fixed), replications=1)
    assert plan.unreached == ("orphan",)
    assert plan_sweep(None, None, sets, load_grid(routed), replications=1).unreached == ()
    assert plan_sweep(None, None, SHORT[1::2], load_grid(fixed), replications=1).unreached == ()
    _sweep("--grid", fixed, *orphan, "--replications", "1", "--workers", "0",
           "--out", str(tmp_path / "a"))
    assert ("gtmsim: note: no channel, route or nurture return leads to stage 'orphan' at any "
            "point of the grid: team 'x' does no work there") in capsys.readouterr().err
    _sweep("--grid", routed, *orphan, "--replications", "1", "--workers", "0",
           "--out", str(tmp_path / "b"))
    assert "note: no channel" not in capsys.readouterr().err


@pytest.mark.parametrize(("grid", "words"), [
    (lambda A: Grid("g", "LHS", [A], samples=3), r"^g: design: expected 'factorial' or 'lhs'"),
    (lambda A: Grid("g", "lhs", [A]), r"^g: points: a Latin hypercube needs points = N"),
    (lambda A: Grid("g", "factorial", [Axis("mql_threshold", "mql_threshold", (), 0.1, 0.5)]),
     r"^g: levers.mql_threshold.steps: a range in a factorial grid needs steps"),
    (lambda A: Grid("g", "factorial", [A], seed=3), r"^g: seed: seed is the Latin hypercube"),
    (lambda A: Grid("g", "factorial", []), r"^g: the grid names no levers and no profiles"),
    (lambda A: Grid("g", "factorial", [A, "mql_threshold"]), r"^g: levers: expected an Axis"),
])
def test_a_grid_built_in_code_is_checked_as_a_grid_file_is(grid, words):
    """`plan_sweep` took a Grid built in code unchecked: design 'LHS' ran as a Latin
    hypercube, an lhs grid without points and a factorial range without steps failed in
    NumPy (TypeErrors naming neither)."""

    axis = Axis("sdr_headcount", "sdr_headcount", (3, 5))
    with pytest.raises(ConfigError, match=words):
        plan_sweep(None, None, SHORT[1::2], grid(axis), replications=1)


@pytest.mark.parametrize(("values", "words"), [
    ((True, 1), "expected true or false, got 1"), ((1, True), "expected true or false, got 1"),
    ((np.True_, np.int64(0)), "expected true or false, got 0")])
def test_a_grid_built_in_code_refuses_a_number_beside_true(values, words):
    """A Grid built in code with (true, 1) planned one point, true: 1 == true merged them."""
    grid = Grid("g", "factorial", [Axis("feedback", "feedback", values)])
    with pytest.raises(ConfigError, match=f"^g: levers.feedback: {words}$"):
        plan_sweep(None, None, SHORT[1::2], grid, replications=1)


def test_a_grid_built_in_code_takes_numpy_values(tmp_path):
    """np.arange's values were refused as "expected a number, got np.int64(3)"; they plan as
    the same grid from a file does."""

    coded = Grid("g", "factorial", [Axis("sdr_headcount", "sdr_headcount",
                                         tuple(np.arange(3, 6, 2))),
                                    Axis("mql_threshold", "mql_threshold", (),
                                         np.float64(0.2), np.float64(0.4), np.int64(3))])
    filed = load_grid(_grid(tmp_path, "[levers]\nsdr_headcount = [3, 5]\n"
                                      "mql_threshold = { range = [0.2, 0.4], steps = 3 }\n"))
    a = plan_sweep(None, None, SHORT[1::2], coded, replications=1)
    b = plan_sweep(None, None, SHORT[1::2], filed, replications=1)
    assert [p.values for p in a.points] == [p.values for p in b.points]
    assert [p.digest for p in a.points] == [p.digest for p in b.points]
    assert a.columns == b.columns


def test_out_of_memory_part_way_says_the_points_written_are_kept(tmp_path, monkeypatch,
                                                                 capsys):
    """Out of memory at a sweep's third point said "nothing was written" beside the two
    points it had written (and which the same command resumes from)."""
    import gtmsim.sweep as sweep_module

    calls = []
    real = sweep_module.simulate

    def third_runs_out(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise MemoryError
        return real(*args, **kwargs)

    monkeypatch.setattr(sweep_module, "simulate", third_runs_out)
    grid = _grid(tmp_path, "[levers]\nsdr_headcount = [3, 4, 5]\n")
    assert main(["sweep", "--grid", grid, *SHORT, "--replications", "1", "--workers", "0",
                 "--out", str(tmp_path / "sw")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["gtmsim: error: out of memory; the points written are kept: the same "
                   "command resumes (fewer --replications, a shorter run.horizon_days or a "
                   "machine with more memory)"]
    assert len(list((tmp_path / "sw" / "points").glob("point-*.parquet"))) == 2


def test_a_grid_built_in_code_keeps_its_axes_order_and_its_plan_s_grid_plans_again(tmp_path):
    """Checking a Grid built in code through its file's table put the profiles first (other
    point indices, so other seeds), let an axis named twice replace the first silently, and
    refused a plan's own grid (its lever axes carry their resolved paths)."""
    later = Grid("g", "factorial", [Axis("sdr_headcount", "sdr_headcount", (3, 5)),
                                    Axis("profile", None, ("ideal", "stressed"))])
    plan = plan_sweep(None, None, SHORT[1::2], later, replications=1)
    assert [p.values for p in plan.points][:2] == [{"sdr_headcount": 3, "profile": "ideal"},
                                                  {"sdr_headcount": 3, "profile": "stressed"}]
    assert list(plan.columns)[:2] == ["sdr_headcount", "profile"]
    assert [p.values for p in plan_sweep(None, None, SHORT[1::2], plan.grid,
                                         replications=1).points] == [p.values for p in plan.points]
    twice = Grid("g", "factorial", [Axis("sdr_headcount", "sdr_headcount", (3, 5)),
                                    Axis("sdr_headcount", "sdr_headcount", (4, 6))])
    with pytest.raises(ConfigError, match=r"^g: levers.sdr_headcount: an axis named twice"):
        plan_sweep(None, None, SHORT[1::2], twice, replications=1)
    arrays = Grid("g", "factorial", [Axis("sdr_headcount", "sdr_headcount", np.array([3, 5]))])
    assert [p.values for p in plan_sweep(None, None, SHORT[1::2], arrays,
                                         replications=1).points] == [{"sdr_headcount": 3},
                                                                     {"sdr_headcount": 5}]


def test_the_note_on_an_unreached_stage_names_its_team_at_every_point(tmp_path, capsys):
    """The note named the stage's team at the grid's first point, even where an axis gave
    the stage another team at the others."""
    orphan = [*SHORT, "--set", "teams.x={headcount=1, cost_per_head=0}", "--set",
              "teams.y={headcount=1, cost_per_head=0}", "--set",
              'stages.orphan={team="x", kind="review", effort_hours={dist="fixed", '
              'value=1.0}, routes={qualified="ae_close"}}']
    grid = _grid(tmp_path, '[levers]\n"stages.orphan.team" = ["x", "y", "x"]\n')
    _sweep("--grid", grid, *orphan, "--replications", "1", "--workers", "0",
           "--out", str(tmp_path / "a"))
    assert ("gtmsim: note: no channel, route or nurture return leads to stage 'orphan' at any "
            "point of the grid: team 'x' or 'y' does no work there") in capsys.readouterr().err


def test_a_value_listed_again_runs_once_and_is_said(tmp_path, capsys):
    """3 and 3.0 are one value: [3, 3.0, 5] ran two points without a word, one listed point
    gone as far as the planner could tell; it still runs once (as [3, 3] always did), and a
    note says so, for a grid file and a Grid built in code alike."""
    note = "levers.sdr_headcount: 3 and 3.0 are one value; it runs once"
    grid = _grid(tmp_path, "profiles = ['ideal', 'ideal']\n[levers]\n"
                           "sdr_headcount = [3, 3.0, 5]\nmql_threshold = [0.2, 0.2]\n")
    _sweep("--grid", grid, *SHORT, "--replications", "1", "--workers", "0",
           "--out", str(tmp_path / "o"))
    err = capsys.readouterr().err
    for said in (note, "levers.mql_threshold: 0.2 is listed more than once; it runs once",
                 "profiles: 'ideal' is listed more than once; it runs once"):
        assert f"gtmsim: note: {grid}: {said}\n" in err, err
    assert read_sweep(tmp_path / "o")["sdr_headcount"].unique().sort().to_list() == [3, 5]
    coded = Grid("g", "factorial", [Axis("sdr_headcount", "sdr_headcount", (3, 3.0, 5))])
    plan = plan_sweep(None, None, SHORT[1::2], coded, replications=1)
    assert [p.values for p in plan.points] == [{"sdr_headcount": 3}, {"sdr_headcount": 5}]
    assert plan.grid.notes == (f"g: {note}",)


def test_a_path_into_the_configs_profiles_is_not_an_axis(tmp_path, capsys):
    """A config's [profiles] are read into its people values when it loads: an axis over one
    ran the same model at every point, labelled as if it differed."""
    grid = _grid(tmp_path, '[levers]\n"profiles.mine.latency.enabled" = [true, false]\n')
    fails_cleanly(["sweep", "--grid", grid, *SHORT, "--set",
                   "profiles.mine={latency={enabled=false}}", "--workers", "0",
                   "--out", str(tmp_path / "o")],
                  "grid.toml: levers.profiles.mine.latency.enabled: "
                  "profiles.mine.latency.enabled is not an axis: a config's [profiles] are "
                  "read when it loads", tmp_path, capsys)
