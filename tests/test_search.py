"""The design search through its command: bad input, persistence and resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

TINY = ["--set", "run.warmup_days=7", "--set", "run.horizon_days=14",
        "--outcome", "pipeline_created", "--scenarios", "3", "--replications", "1",
        "--top", "2", "--engine", "simpy"]


def gtmsim(*args: str, cwd: Path | None = None, timeout: float = 300):
    return subprocess.run([sys.executable, "-m", "gtmsim", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=timeout)


@pytest.mark.parametrize(("args", "key"), [
    (["--objective", "median-ish"], "--objective"),
    (["--set", "levers.bad.path=teams.sdr.headcount"], "levers.bad"),
    (["--set", "design.annual_budget=1000"], "design.annual_budget"),
    (["--storage", "postgresql://nobody@127.0.0.1:1/none"], "--storage"),
    (["--storage", "/no/such/folder/study.journal"], "--storage"),
    (["--objective", "satisficing"], "--target"),
    (["--outcome", "happiness"], "--outcome"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, key):
    out = tmp_path / "o"
    r = gtmsim("optimize", *TINY, "--trials", "2", "--out", str(out), *args)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and key in lines[0], r.stderr
    assert "Traceback" not in r.stderr


def _finished(journal: Path) -> list[optuna.trial.FrozenTrial]:
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    storage = JournalStorage(JournalFileBackend(str(journal)))
    study = optuna.load_study(study_name="gtmsim", storage=storage)
    return [t for t in study.trials if t.state in (optuna.trial.TrialState.COMPLETE,
                                                   optuna.trial.TrialState.PRUNED)]


@pytest.mark.slow
def test_killed_study_resumes_without_losing_or_repeating_trials(tmp_path):
    out = tmp_path / "study"
    cmd = [sys.executable, "-m", "gtmsim", "optimize", *TINY, "--trials", "12",
           "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    journal = out / "study.journal"
    deadline = time.time() + 240
    while time.time() < deadline:
        time.sleep(0.5)
        if journal.exists() and len(_finished(journal)) >= 3:
            break
    os.kill(proc.pid, signal.SIGKILL)  # no chance to clean up: the hardest interruption
    proc.wait()
    before = {t.number: (t.params, t.values) for t in _finished(journal)}
    assert 3 <= len(before) < 12
    r = gtmsim("optimize", *TINY, "--trials", "12", "--out", str(out))
    assert r.returncode == 0, r.stderr
    after = _finished(journal)
    assert len(after) == 12  # finished between the two runs, none lost, none extra
    for t in after:
        if t.number in before:
            assert (t.params, t.values) == before[t.number]  # kept as they were
    assert (out / "trials.parquet").exists() and (out / "design_best.toml").exists()
