"""One Optuna study shared by independent `optimize` processes through PostgreSQL.

A real PostgreSQL server (Debian's package; `.ci/run` installs it when missing) is started
on loopback in a temporary folder for this module and stopped after it. Two `optimize`
processes join one study at once; between them they must finish exactly the requested
number of trials, each trial run by one process only, none lost.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import in_ci

TRIALS = 16


def _pg_bin() -> Path | None:
    """The folder of PostgreSQL's server programs (initdb, pg_ctl), if installed."""
    found = shutil.which("pg_config")
    if found:
        out = subprocess.run([found, "--bindir"], capture_output=True, text=True)
        folder = Path(out.stdout.strip())
        if (folder / "initdb").exists():
            return folder
    for folder in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (folder / "initdb").exists():
            return folder
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url():
    """A throw-away PostgreSQL cluster on 127.0.0.1; its URL for SQLAlchemy (psycopg 3)."""
    pytest.importorskip("psycopg", reason="the PostgreSQL driver (test extra) is missing")
    folder = _pg_bin()
    if folder is None:
        if in_ci():
            pytest.fail("PostgreSQL is not installed; .ci/run installs it")
        pytest.skip("PostgreSQL server programs not installed (apt-get install postgresql)")
    # its own folder outside pytest's (which is private to this user)
    root = Path(tempfile.mkdtemp(prefix="gtmsim-postgres-"))
    data, sockets = root / "data", root / "sockets"
    sockets.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:  # the server refuses to run as root: run it as `postgres`
        as_user = ["runuser", "-u", "postgres", "--"]
        for p in (root, sockets):
            shutil.chown(p, "postgres")
    port = _free_port()
    subprocess.run([*as_user, str(folder / "initdb"), "-D", str(data), "-U", "gtmsim",
                    "-A", "trust", "--no-sync"], check=True, capture_output=True)
    log = root / "server.log"
    subprocess.run([*as_user, str(folder / "pg_ctl"), "-D", str(data), "-l", str(log), "-w",
                    "-t", "60", "-o",
                    f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off",
                    "start"], check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://gtmsim@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, str(folder / "pg_ctl"), "-D", str(data), "-m", "fast",
                        "-w", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def _optimize(url: str, out: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "gtmsim", "optimize", "--storage", url, "--study-name",
         "shared", "--trials", str(TRIALS), "--scenarios", "4", "--replications", "1",
         "--top", "2", "--engine", "numba", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_two_processes_share_one_study(postgres_url, tmp_path):
    import optuna

    procs = [_optimize(postgres_url, tmp_path / f"p{i}") for i in range(2)]
    t0 = time.monotonic()
    for p in procs:
        _out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
    print(f"two optimize processes on one PostgreSQL study: {time.monotonic() - t0:.1f} s")

    study = optuna.load_study(study_name="shared", storage=postgres_url)
    trials = study.get_trials(deepcopy=False)
    states = [t.state for t in trials]
    finished = [t for t in trials
                if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)]
    # exactly the requested number between them; nothing left running or waiting
    assert len(finished) == TRIALS, states
    assert not [t for t in trials if t.state in (optuna.trial.TrialState.RUNNING,
                                                  optuna.trial.TrialState.WAITING)]
    # anything else is a surplus slot closed unrun when both raced for the last one
    others = [t for t in trials if t not in finished]
    assert all(t.user_attrs.get("surplus") for t in others), others
    # both processes took part, and every trial was run by exactly one of them
    pids = {t.user_attrs["pid"] for t in finished}
    assert len(pids) == 2, pids
    simulated = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE
                 and t.user_attrs["over_budget"] <= 0]
    assert simulated and all(len(t.user_attrs["scenario_values"]) == 4 for t in simulated)
    # the baselines (the config's own design, then the ideal search's winner unless it is
    # the same design) were enqueued once each, by the process that created the study
    queued = [t for t in trials if t.system_attrs.get("fixed_params")]
    params = [repr(sorted(t.params.items())) for t in queued]
    assert 1 <= len(queued) <= 2 and len(set(params)) == len(params), params
    assert queued[0].number == 0
    # each process reads the whole study back: both trial tables list the same trials
    import polars as pl

    a, b = (pl.read_parquet(tmp_path / f"p{i}" / "trials.parquet") for i in range(2))
    assert a["number"].to_list() == b["number"].to_list() == [t.number for t in trials]


def test_unreachable_postgres_is_one_line_exit_2(tmp_path):
    pytest.importorskip("psycopg")
    url = f"postgresql+psycopg://gtmsim@127.0.0.1:{_free_port()}/postgres"
    res = subprocess.run([sys.executable, "-m", "gtmsim", "optimize", "--storage", url,
                          "--trials", "1", "--scenarios", "1", "--out", str(tmp_path / "o")],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "--storage" in lines[0] and "Traceback" not in res.stderr
