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
    # a refused connection is retried until --connect-timeout (30 s by default)
    (["--scheduler", "tcp://127.0.0.1:1", "--connect-timeout", "2"], "scheduler"),
    (["--scheduler", "garbage"], "--scheduler"),
    (["--storage", "foo://bar"], "--storage"),
    (["--objective", "satisficing", "--target", "nan"], "--target"),
    (["--target", "inf"], "--target"),
    (["--objective", "mean,mean"], "--objective"),
    (["--study-name", ""], "--study-name"),
    (["--objective", "cost"], "--objective"),  # alone the cheapest design would win
    (["--objective", "mean,regret"], "--objective"),  # regret is the mean in the search
    (["--outcome", "leaked"], "--outcome"),  # less is better: it would maximise harm
    (["--seed", str(2**64)], "--seed"),  # config.toml keeps it: TOML's integers are 64-bit
])
@pytest.mark.slow
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, key):
    out = tmp_path / "new" / "o"
    r = gtmsim("optimize", *TINY, "--trials", "2", "--out", str(out), *args)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and key in lines[0], r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "new").exists()  # refused before any trial: no folder left


def test_a_storage_url_s_password_is_not_repeated(tmp_path):
    """An unreachable database was named with its URL as given, password and all, on
    stderr (and so in any CI log); the terms check already kept it out."""
    out = tmp_path / "new" / "o"
    r = gtmsim("optimize", *TINY, "--trials", "2", "--out", str(out),
               "--storage", "postgresql://gtm:hunter2@127.0.0.1:1/none")
    assert r.returncode == 2, r.stderr
    assert "--storage" in r.stderr and "gtm:***@127.0.0.1:1/none" in r.stderr, r.stderr
    assert "hunter2" not in r.stderr


@pytest.mark.parametrize("objectives", [["mean"], ["mean", "cost"]])
def test_a_seed_beyond_32_bits_seeds_the_sampler(objectives):
    """`--seed 4294967296` crashed the search with NumPy's 'Seed must be between 0 and
    2**32 - 1' (optuna's samplers seed its legacy generator); a large seed is folded."""
    from gtmsim.optimize.search import _sampler

    def designs(seed):
        study = optuna.create_study(directions=["maximize"] * len(objectives),
                                    sampler=_sampler(objectives, seed, False, 40))
        study.optimize(lambda t: [t.suggest_float("x", 0, 1)] * len(objectives), n_trials=3)
        return [t.params["x"] for t in study.trials]

    assert designs(2**40) == designs(2**40) != designs(2**40 + 1)


def test_a_folder_that_holds_no_study_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    r = gtmsim("optimize", *TINY, "--trials", "2", "--out", str(tmp_path))
    assert r.returncode == 2 and "--out" in r.stderr and "notes.txt" in r.stderr, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


@pytest.mark.slow
def test_a_study_resumes_only_on_the_terms_it_was_scored_on(tmp_path):
    """Trials scored under one objective, config or seed do not compare with trials scored
    under another: a resume that changes them is refused and the study is left as it was."""
    out = tmp_path / "study"
    base = ["optimize", *TINY, "--trials", "2", "--ideal-trials", "0", "--out", str(out)]
    assert gtmsim(*base).returncode == 0
    journal = out / "study.journal"
    before = [(t.number, t.params, t.values) for t in _trials(journal)]
    for extra, named in ((["--objective", "mean"], "objective 'cvar10' -> 'mean'"),
                         (["--seed", "5"], "seed 0 -> 5"),
                         (["--set", "teams.ae.headcount=7"], "the config"),
                         (["--profile", "stressed"], "the config")):
        r = gtmsim(*base, *extra)
        assert r.returncode == 2, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and named in r.stderr, r.stderr
        assert [(t.number, t.params, t.values) for t in _trials(journal)] == before
    r = gtmsim(*base, "--top", "1")  # the same terms (held-out re-evaluation aside): resumes
    assert r.returncode == 0, r.stderr
    assert [(t.number, t.params, t.values) for t in _trials(journal)] == before


def _trials(journal: Path, study_name: str = "gtmsim") -> list[optuna.trial.FrozenTrial]:
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    storage = JournalStorage(JournalFileBackend(str(journal)))
    try:
        return optuna.load_study(study_name=study_name, storage=storage).trials
    except KeyError:  # not created yet (the ideal baseline's search comes first)
        return []


def _finished(journal: Path, study_name: str = "gtmsim") -> list[optuna.trial.FrozenTrial]:
    return [t for t in _trials(journal, study_name)
            if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)]


@pytest.mark.slow
def test_baselines_are_the_first_trials_own_design_then_ideal_best(tmp_path):
    """The config's current design, then the winner of a short search under `ideal`."""
    from gtmsim.config import load_config
    from gtmsim.optimize.levers import current_design

    out = tmp_path / "study"
    r = gtmsim("optimize", *TINY, "--trials", "4", "--ideal-trials", "5", "--out", str(out))
    assert r.returncode == 0, r.stderr
    ideal = _finished(out / "study.journal", "gtmsim-ideal")
    assert len(ideal) == 5
    trials = sorted(_trials(out / "study.journal"), key=lambda t: t.number)
    queued = [t for t in trials if "fixed_params" in t.system_attrs]
    assert [t.number for t in queued][:1] == [0]
    assert queued[0].params == current_design(load_config(None))
    # the ideal winner is the next trial, unless it is the config's own design again
    ideal_designs = [t.params for t in ideal if t.state == optuna.trial.TrialState.COMPLETE]
    if len(queued) > 1:
        assert queued[1].number == 1 and queued[1].params in ideal_designs
    else:
        assert queued[0].params in ideal_designs


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
    # a headcount is a number in candidates.parquet as in trials.parquet (it was text: "4")
    import polars as pl

    cand = pl.read_parquet(out / "candidates.parquet")
    trials = pl.read_parquet(out / "trials.parquet")
    assert cand["lever_sdr_headcount"].dtype.is_numeric()
    assert cand["lever_sdr_headcount"].dtype == trials["lever_sdr_headcount"].dtype


# --------------------------------------------------------------------------- what search shows
# These run on the numba engine: each needs hundreds of replications per design.


def _two_lever_config():
    """The default org with only the SDR and AE headcounts as levers (a 7 x 7 grid)."""
    from gtmsim.config import load_config, validate

    cfg = load_config(profile="realistic")
    raw = cfg.model_dump(by_alias=True, exclude_none=True)
    raw["levers"] = {"sdr_headcount": {"path": "teams.sdr.headcount", "low": 3, "high": 9,
                                       "integer": True},
                     "ae_headcount": {"path": "teams.ae.headcount", "low": 3, "high": 9,
                                      "integer": True}}
    raw["design"]["annual_budget"] = 3_000_000.0
    return validate(raw)


@pytest.mark.slow
def test_search_finds_the_grid_optimum_within_2_percent():
    """Exhaustive search over the 7 x 7 grid (on the same scenarios and seeds) gives the
    optimum of the search's own objective; TPE with 30 trials must land within 2% of it.
    One seed is one draw of the sampler's luck: seed 4 alone once passed and, after a model
    change moved the landscape, missed by 3.2% (its optimum the only cell within 2%), while 7
    of seeds 1-8 found the optimum itself. So on seeds 1-5 at least four must land within 2%,
    and none below 95%."""
    import numpy as np

    from gtmsim.optimize import annual_cost, apply_design, draw_scenarios, evaluate
    from gtmsim.optimize.evaluate import per_scenario
    from gtmsim.optimize.search import Settings, search

    cfg = _two_lever_config()
    shares = []
    for seed in range(1, 6):
        settings = Settings(objective="mean", trials=30, scenarios=4, replications=2, top=3,
                            seed=seed, engine="numba", prune=False)
        scen = draw_scenarios(cfg, settings.scenarios, settings.seed)
        grid = {}
        for sdr in range(3, 10):
            for ae in range(3, 10):
                design = {"sdr_headcount": sdr, "ae_headcount": ae}
                if annual_cost(apply_design(cfg, design)) > cfg.design.annual_budget:
                    continue
                df = evaluate(cfg, design, scen, settings.replications, engine="numba")
                grid[(sdr, ae)] = float(per_scenario(df)["bookings"].mean())
        res = search(cfg, settings)
        best_found = max(t.value for t in res.study.trials
                         if t.value is not None and t.user_attrs.get("over_budget", 0) <= 0)
        assert np.isfinite(best_found)
        shares.append(best_found / max(grid.values()))
    assert sum(s >= 0.98 for s in shares) >= 4 and min(shares) >= 0.95, shares


@pytest.mark.slow
def test_common_random_numbers_shrink_the_variance_of_a_difference():
    """Two designs on the same scenarios and seeds: the per-scenario difference varies less
    than when the second design meets other seeds (each lead is born with the same quality,
    value and buying draws, each person with the same traits). Both sides share the
    scenarios' human-variability values, so the ratio measures the seeds' pairing alone.
    Measured over 128-256 scenarios x 2 replications and five scenario seeds: 0.40-0.62 (SDR
    headcount) and 0.42-0.48 (AE headcount), about half the variance; estimates on 32
    scenarios ranged 0.26-0.89, too wide to test on. On 256 scenarios the log of the ratio has
    a standard error of about 0.13: a bar of 0.7 is about three of them above the measured
    ratios, and a ratio below 0.7 is below 1 (no pairing) at p < 0.005 for F(255, 255)."""
    import numpy as np

    from gtmsim.config import load_config
    from gtmsim.optimize import Scenario, draw_scenarios, evaluate
    from gtmsim.optimize.evaluate import per_scenario

    cfg = load_config(profile="realistic")
    same = draw_scenarios(cfg, 256, seed=8)
    other = [Scenario(s.index, s.values, s.seed + 1_000_003) for s in same]  # new seeds only

    def bookings(design: dict, scenarios: list) -> np.ndarray:
        df = evaluate(cfg, design, scenarios, 2, engine="numba")
        return per_scenario(df)["bookings"].to_numpy()

    a = bookings({}, same)
    for design in ({"sdr_headcount": 8}, {"ae_headcount": 5}):
        b, b_unpaired = bookings(design, same), bookings(design, other)
        ratio = np.var(b - a, ddof=1) / np.var(b_unpaired - a, ddof=1)
        print(f"CRN variance ratio (paired / unpaired), {design}: {ratio:.3f}")
        assert ratio < 0.7, (design, ratio)


@pytest.mark.slow
def test_robust_design_beats_the_ideal_tuned_design_on_held_out_cvar():
    """The headline. Optimise for ideal people, optimise robustly (CVaR10 of bookings) for
    realistic ones, and run both winners with realistic people on fresh held-out scenarios
    (48: a worst-10% interval needs 20 or more; with 24 the interval, -116k to +1.16M around
    +590k, could not tell): the robust design's worst-10% mean must exceed the ideal-tuned
    design's by more than the 95% CI of the paired difference. The
    held-out scenarios take no part in choosing either design, so this is no artefact of the
    choice. And the gain must come from the search: the robust design also beats a design
    drawn at random from the same lever space (within budget).

    The search has 60 trials on 24 scenarios: with 20 trials on 8, the search's CVaR10 is the
    single worst of 8 scenarios, and once the default campaign counted in the window one
    such search chose a design 93k behind (95% CI -205k to +56k); 40 on 16 led for seeds 1-3
    until the people's draws moved to per-seat streams, then seed 1's design led by only 125k
    (CI -160k to +416k). With 60 on 24 the robust design leads by 1.02M, 561k and 1.73M for
    the seeds 1, 2 and 3 (95% CIs from 775k, 282k and 1.40M up)."""
    import numpy as np

    from gtmsim.config import load_config
    from gtmsim.optimize import annual_cost, apply_design, evaluate
    from gtmsim.optimize.compare import compare_ideal, paired_difference
    from gtmsim.optimize.evaluate import per_scenario
    from gtmsim.optimize.search import Settings

    cfg = load_config(profile="realistic")
    settings = Settings(objective="cvar10", trials=60, scenarios=24, held_out=48,
                        replications=2, top=3, seed=1, engine="numba")
    cmp = compare_ideal(load_config(profile="ideal"), cfg, settings)
    diff, lo, hi = cmp.difference["cvar10"]
    assert lo > 0, (diff, lo, hi)

    rng = np.random.default_rng(12)
    while True:
        design = {}
        for name, lever in cfg.levers.items():
            if lever.choices is not None:
                design[name] = lever.choices[rng.integers(len(lever.choices))]
            elif lever.integer:
                design[name] = int(rng.integers(int(lever.low), int(lever.high) + 1))
            else:
                design[name] = float(rng.uniform(lever.low, lever.high))
        if annual_cost(apply_design(cfg, design)) <= cfg.design.annual_budget:
            break
    df = evaluate(cfg, design, cmp.robust.held_out, settings.replications, engine="numba")
    random_values = per_scenario(df)["bookings"].to_numpy()
    over_random, _, _ = paired_difference(random_values, cmp.robust_best.held_out)["cvar10"]
    assert over_random > 0, over_random  # the search, not any change of design, pays


@pytest.mark.slow
def test_two_objectives_give_a_pareto_front():
    """mean bookings against cost, with NSGA-II: the study's best trials form a front in which
    no design is beaten on both objectives by another, and every one is within budget."""
    from gtmsim.optimize.search import Settings, search

    cfg = _two_lever_config()
    res = search(cfg, Settings(objective="mean,cost", trials=12, scenarios=2, replications=1,
                               top=3, seed=2, engine="numba"))
    front = [t for t in res.study.best_trials if t.user_attrs.get("over_budget", 0) <= 0]
    assert front
    for a in front:
        for b in front:
            dominated = (b.values[0] >= a.values[0] and b.values[1] <= a.values[1]
                         and b.values != a.values)
            assert not dominated
    assert all(c.cost <= cfg.design.annual_budget for c in res.candidates)


def test_ctrl_c_mid_search_is_one_line_without_a_traceback(tmp_path):
    """SIGINT while a trial runs: Optuna logged the trial as failed with the KeyboardInterrupt's
    traceback (at WARNING) before gtmsim's own line; now only that line, and exit 130."""
    out = tmp_path / "study"
    # 1,000 trials: the search must outlast the wait below on a busy machine (with 40 it
    # once finished, exit 0, before the signal was sent)
    proc = subprocess.Popen([sys.executable, "-m", "gtmsim", "optimize", *TINY, "--trials",
                             "1000", "--ideal-trials", "0", "--no-prune", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    journal = out / "study.journal"
    try:
        deadline = time.time() + 240
        while time.time() < deadline and not (journal.exists() and _finished(journal)):
            time.sleep(0.2)
        time.sleep(0.3)  # into the next trial
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
    assert stderr.strip().splitlines()[-1].startswith(
        "gtmsim: interrupted; the study so far is kept in")


@pytest.mark.parametrize("interruption", ["KeyboardInterrupt", "_Terminated"])
def test_a_search_stopped_before_any_design_finished_leaves_no_study(tmp_path, monkeypatch,
                                                                      capsys, interruption):
    """Ctrl-C (or SIGTERM) before the first design finished kept a study holding nothing, and
    the corrected command was refused: 'study ... was scored on other terms (scenarios 4 ->
    3)'. As for a start refused, that study is dropped; one with a finished trial is kept."""
    from gtmsim import cli
    from gtmsim.optimize import search as S

    main = cli.main
    stop = KeyboardInterrupt if interruption == "KeyboardInterrupt" else cli._Terminated

    def interrupt(*a, **k):
        raise stop

    monkeypatch.setattr(S, "evaluate", interrupt)
    out = tmp_path / "o"
    args = ["optimize", *TINY, "--trials", "2", "--ideal-trials", "0", "--out", str(out)]
    assert main([*args, "--scenarios", "4"]) in (130, 143)
    assert "nothing was written" in capsys.readouterr().err
    assert not out.exists()
    monkeypatch.undo()  # the corrected command runs, on the simulator
    assert main(args) == 0, capsys.readouterr().err


def test_a_search_on_a_storage_stopped_before_any_design_finished_leaves_nothing(
        tmp_path, monkeypatch, capsys):
    """With --storage, Ctrl-C before the first design finished kept the new study (holding
    nothing: the corrected command was refused as scored on other terms) and the empty --out
    folder, and said the study was kept. Both go, as without --storage. A study that existed
    before is kept, and said to be; the --out folder made for its reports goes, still empty."""
    import optuna

    from gtmsim import cli
    from gtmsim.optimize import search as S

    def interrupt(*a, **k):
        raise KeyboardInterrupt

    url = f"sqlite:///{tmp_path / 'study.db'}"
    args = ["optimize", *TINY, "--ideal-trials", "0", "--storage", url]
    monkeypatch.setattr(S, "evaluate", interrupt)
    out = tmp_path / "a" / "o"
    assert cli.main([*args, "--trials", "2", "--scenarios", "4", "--out", str(out)]) == 130
    assert capsys.readouterr().err.endswith("nothing was written (no design had finished)\n")
    assert not (tmp_path / "a").exists()
    assert optuna.get_all_study_names(storage=url) == []
    monkeypatch.undo()  # the corrected command runs, on the simulator
    assert cli.main([*args, "--trials", "2", "--out", str(out)]) == 0, capsys.readouterr().err
    capsys.readouterr()
    monkeypatch.setattr(S, "evaluate", interrupt)
    again = tmp_path / "b" / "o"
    assert cli.main([*args, "--trials", "3", "--out", str(again)]) == 130
    assert "interrupted; the study so far is kept in" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()
    assert optuna.get_all_study_names(storage=url) == ["gtmsim"]


def test_the_held_out_step_waits_for_trials_other_processes_run(tmp_path):
    """A process that finished its share of a shared study waited for no one: it read the
    study while the other process's trials ran and stopped on 'no feasible design' (2 of 5
    tries with two processes on PostgreSQL). `await_others` returns once no trial runs; a
    trial whose process died (on this host: its pid is gone) is failed, not waited for."""
    import socket
    import subprocess
    import sys
    import threading

    import optuna

    from gtmsim.optimize.search import await_others

    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'study.db'}")
    other = study.ask()  # another live process's trial (this test's parent is alive)
    other.set_user_attr("host", socket.gethostname())
    other.set_user_attr("pid", os.getppid())
    dead = study.ask()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True)
    dead.set_user_attr("host", socket.gethostname())
    dead.set_user_attr("pid", int(gone.stdout))
    finish = threading.Timer(0.5, lambda: study.tell(other, 1.0))
    finish.start()
    await_others(study, poll=0.05)
    finish.join()
    states = {t.number: t.state for t in study.get_trials(deepcopy=False)}
    assert states[other.number] == optuna.trial.TrialState.COMPLETE
    assert states[dead.number] == optuna.trial.TrialState.FAIL


@pytest.mark.parametrize("damage", [b'{"op_code": 0}\n{"op_code": 4, "worker_id": "a', b'{"op\n',
                                    b"\x90\xff\x00garbage\n"],
                         ids=["cut-short", "not-json", "binary"])
def test_a_damaged_study_journal_is_one_line_naming_out(tmp_path, damage):
    """A journal cut short by a crash (or not a journal at all) gave a JSONDecodeError or
    UnicodeDecodeError traceback; now one line naming --out (no --storage was given)."""
    from gtmsim.errors import GtmsimError
    from gtmsim.optimize.search import open_storage

    (tmp_path / "study.journal").write_bytes(damage)
    with pytest.raises(GtmsimError, match=r"^--out: the study journal .* is damaged"):
        open_storage(None, tmp_path)


def test_a_journal_cut_short_says_how_to_keep_its_whole_lines(tmp_path):
    """A journal whose last line a killed process left cut short was to be moved aside, its
    trials given up; the operation on that line never happened, and the lines before it are
    the study. The line says so, and the study resumes once the line is deleted."""
    import optuna

    from gtmsim.errors import GtmsimError
    from gtmsim.optimize.search import open_storage

    journal = tmp_path / "study.journal"
    study = optuna.create_study(storage=open_storage(None, tmp_path), study_name="s")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    whole = journal.read_bytes()
    journal.write_bytes(whole + b'{"op_code": 5, "worker_id": "x')
    with pytest.raises(GtmsimError) as refused:
        open_storage(None, tmp_path)
    lines = whole.decode().strip().count("\n") + 1
    assert (f"its last line is cut short, a write that never finished: delete that line to "
            f"resume the study from its {lines} whole lines") in str(refused.value)
    journal.write_bytes(whole)  # the line deleted, as it says
    resumed = optuna.load_study(storage=open_storage(None, tmp_path), study_name="s")
    assert len(resumed.trials) == 3


def test_processes_opening_a_new_sqlite_database_at_once_all_join(tmp_path, monkeypatch):
    """Two `optimize` processes given the same new sqlite:/// storage raced to create
    Optuna's tables, and the loser stopped with exit 2 on SQLite's OperationalError 'table
    studies already exists' (only PostgreSQL's ProgrammingError was retried). The race is
    staged: the first open collides as the loser's does, the retry finds the tables."""
    import sqlalchemy.exc

    from gtmsim.optimize import search as search_mod

    real = optuna.storages.RDBStorage
    calls = []

    def racing(url, **kw):
        calls.append(url)
        if len(calls) == 1:
            raise sqlalchemy.exc.OperationalError(
                "CREATE TABLE studies", {}, Exception("table studies already exists"))
        return real(url, **kw)

    monkeypatch.setattr(optuna.storages, "RDBStorage", racing)
    monkeypatch.setattr(search_mod.time, "sleep", lambda _s: None)
    storage = search_mod.open_storage(f"sqlite:///{tmp_path / 'study.db'}", None)
    monkeypatch.undo()
    assert len(calls) == 2
    optuna.create_study(storage=storage, study_name="joined")


@pytest.mark.slow
def test_a_study_refused_as_its_first_trial_ran_is_not_kept_in_the_storage(tmp_path):
    """With --storage, an --outcome undefined in every replication (a win rate over a day)
    stopped the first trial with exit 2, but the new study stayed in the database with its
    terms, and the corrected command was refused as 'scored on other terms'. As with the
    output folder's journal, a study this run made that holds no finished trial is dropped;
    one that existed before is kept."""
    url = f"sqlite:///{tmp_path / 'study.db'}"
    args = [*TINY, "--trials", "2", "--ideal-trials", "0", "--storage", url]
    r = gtmsim("optimize", *args, "--out", str(tmp_path / "a"), "--outcome", "win_rate",
               "--set", "run.warmup_days=0", "--set", "run.horizon_days=1")
    assert r.returncode == 2 and "win_rate" in r.stderr, r.stderr
    r = gtmsim("optimize", *args, "--out", str(tmp_path / "a"))
    assert r.returncode == 0, r.stderr
    r = gtmsim("optimize", *args, "--out", str(tmp_path / "b"), "--outcome", "win_rate",
               "--set", "run.warmup_days=0", "--set", "run.horizon_days=1")
    assert r.returncode == 2 and "other terms" in r.stderr, r.stderr
    study = optuna.load_study(study_name="gtmsim", storage=url)
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials) == 2


@pytest.mark.slow
def test_a_storage_file_inside_the_output_folder_does_not_stop_the_resume(tmp_path):
    """`--storage sqlite:///o/study.db --out o` ran, then the same command (to resume or
    to add trials) was refused: --out 'holds files that are not an optimisation's
    (study.db)', the study's own database. A --storage file in the folder is its own; any
    other file still is not."""
    out = tmp_path / "o"
    args = [*TINY, "--ideal-trials", "0", "--out", str(out),
            "--storage", f"sqlite:///{out / 'study.db'}"]
    r = gtmsim("optimize", *args, "--trials", "1")
    assert r.returncode == 0, r.stderr
    r = gtmsim("optimize", *args, "--trials", "2")
    assert r.returncode == 0, r.stderr
    assert "2 trials" in r.stdout
    (out / "notes.txt").write_text("mine")
    r = gtmsim("optimize", *args, "--trials", "2")
    assert r.returncode == 2 and "notes.txt" in r.stderr, r.stderr


@pytest.mark.slow
def test_a_lock_left_by_a_killed_process_does_not_stop_the_resume(tmp_path):
    """`kill -9` while optuna held the journal's lock left `study.journal.lock`: the resume
    was refused (--out 'holds files that are not an optimisation's'), and with --storage
    given as a relative path it spun for ever at full CPU, as the lock's symlink pointed
    nowhere and optuna never reached its grace period. Now the lock is forced after it."""
    from gtmsim.cli import _check_optimize_out

    script = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "import optuna\n"
        "from gtmsim.optimize.search import open_storage\n"
        "os.chdir(sys.argv[1])\n"
        "open_storage(None, Path('o'))._backend._lock.acquire()  # then killed: never freed\n"
        "storage = open_storage(None, Path('o'))\n"
        "storage._backend._lock.grace_period = 1\n"
        "optuna.create_study(storage=storage)\n")
    r = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True,
                       text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "o" / "study.journal.lock").is_symlink() is False
    # a lock that points nowhere (an older gtmsim's, or the folder moved since) is stale
    (tmp_path / "o" / "study.journal.lock").symlink_to("elsewhere/study.journal")
    _check_optimize_out(tmp_path / "o")  # the folder is still a study's
    r = subprocess.run([sys.executable, "-c", script.replace("open_storage(None, Path('o'))."
                                                             "_backend._lock.acquire()", ""),
                        str(tmp_path)], capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr


def _search_interrupted_by(interruption: type[BaseException], tmp_path, monkeypatch):
    """A 4-trial search in a journal whose first evaluation raises `interruption`; returns
    its config and settings, the search stopped."""
    from gtmsim.config import load_config
    from gtmsim.optimize import search as S

    _no_simulation(monkeypatch)

    def interrupt(*a, **k):
        raise interruption

    config = load_config(None, "realistic")
    settings = S.Settings(objective="mean", trials=4, scenarios=2, replications=1, top=2,
                          storage=str(tmp_path / "s.journal"))
    monkeypatch.setattr(S, "evaluate", interrupt)
    with pytest.raises(interruption):
        S.search(config, settings)
    return config, settings


def test_a_baseline_interrupted_by_ctrl_c_is_run_on_resume(tmp_path, monkeypatch):
    """Ctrl-C while the config's own design (trial 0) ran left it failed and never ran it
    again: the resumed search had no trial of it, so it stood in the candidates as trial -1
    with no search score, and could not be chosen. (A `kill -9` and the cluster's driver
    already ran an interrupted design again.) Now the interrupted design is queued again."""
    import polars as pl

    from gtmsim.optimize import search as S
    from gtmsim.optimize.levers import current_design

    config, settings = _search_interrupted_by(KeyboardInterrupt, tmp_path, monkeypatch)
    monkeypatch.setattr(S, "evaluate", lambda *a, **k: pl.DataFrame())
    result = S.search(config, settings)
    own = current_design(config)
    assert [t.params for t in result.study.trials
            if t.state == optuna.trial.TrialState.COMPLETE].count(own) == 1
    assert S.trial_counts(result.study)["trials"] == 4
    assert all(c.trial >= 0 for c in result.candidates)


def test_a_trial_stopped_by_sigterm_is_failed_and_queued_again(tmp_path, monkeypatch):
    """SIGTERM is raised as a BaseException of gtmsim's own, which Optuna does not catch:
    the trial in flight stayed RUNNING (Ctrl-C's is failed), its design not queued again,
    and a process sharing the study waited on it until a heartbeat, or for ever on a journal
    another host shares. It is failed and queued again, as Ctrl-C's is."""
    from gtmsim.cli import _Terminated
    from gtmsim.optimize import search as S

    config, settings = _search_interrupted_by(_Terminated, tmp_path, monkeypatch)
    study = optuna.load_study(study_name="gtmsim", storage=S.open_storage(
        settings.storage, None))
    states = [t.state for t in study.trials]
    assert optuna.trial.TrialState.RUNNING not in states
    assert states[0] == optuna.trial.TrialState.FAIL
    assert S.trial_counts(study)["trials_interrupted"] == 1
    waiting = study.get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert S.current_design(config) in [t.system_attrs["fixed_params"] for t in waiting]


@pytest.mark.parametrize("ideal_trials", [0, 3])
def test_a_study_gtmsim_did_not_make_is_refused(tmp_path, monkeypatch, ideal_trials):
    """--study-name naming another tool's study in a shared database joined it: a traceback
    (optuna's 'Cannot set different distribution kind to the same parameter name') after
    adding a failed trial to it, or, had its parameters not clashed, trials mixed into it.
    It records no terms, and its trials set parameters that are not the config's levers."""
    from gtmsim.config import load_config
    from gtmsim.errors import GtmsimError
    from gtmsim.optimize import search as S

    _no_simulation(monkeypatch)
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    theirs = optuna.create_study(study_name="other", storage=url, direction="maximize")
    theirs.optimize(lambda t: t.suggest_float("sdr_headcount", 0, 1) + t.suggest_float("lr", 0, 1),
                    n_trials=2)
    settings = S.Settings(objective="mean", trials=3, scenarios=2, replications=1, top=2,
                          storage=url, study_name="other", ideal_trials=ideal_trials)
    with pytest.raises(GtmsimError, match=r"^--study-name: study 'other' .*not gtmsim") as err:
        S.search(load_config(None, "realistic"), settings)
    assert "lr" in str(err.value) and "\n" not in str(err.value)
    assert len(optuna.load_study(study_name="other", storage=url).trials) == 2  # untouched
    assert "other-ideal" not in [s.study_name for s in optuna.get_all_study_summaries(url)]


# --------------------------------------------------------------------------- refused designs


def _clashing_levers_config():
    """The default org with a reject_below lever beside the MQL threshold lever: each valid
    alone, together often a reject_below above the threshold, which the model refuses."""
    from gtmsim.config import load_config

    return load_config(None, "realistic", [
        "levers.mql_threshold.high=0.3",
        'levers.rb={path="stages.mql_review.reject_below", low=0.0, high=0.3}'])


def _no_simulation(monkeypatch) -> None:
    """Every simulated design scores 1 per scenario: the search's bookkeeping, not the model,
    is under test."""
    import polars as pl

    from gtmsim.optimize import search as S

    monkeypatch.setattr(S, "evaluate", lambda *a, **k: pl.DataFrame())
    monkeypatch.setattr(S, "per_scenario",
                        lambda df, outcome: pl.DataFrame({outcome: [1.0]}))


def test_a_process_sharing_the_study_that_dies_leaves_no_slot_unrun(tmp_path, monkeypatch):
    """docs/sweeps.md: together the processes finish exactly --trials. When one sharing the
    study died mid-trial, the survivor counted that trial in the quota, then (waiting for
    it) failed it and queued its design again, but never ran it: the study ended one
    trial short, its design left WAITING. The survivor now runs what is left."""
    import socket

    import polars as pl

    from gtmsim.config import load_config
    from gtmsim.optimize import search as S

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    config = load_config(None, "realistic")
    settings = S.Settings(objective="mean", trials=4, scenarios=1, replications=1, top=2,
                          storage=str(tmp_path / "s.journal"), prune=False)
    calls = []

    def evaluate(*a, **k):
        if not calls:  # another process starts a trial, then is killed
            storage = S.open_storage(settings.storage, None)
            sid = storage.get_study_id_from_name("gtmsim")
            tid = storage.create_new_trial(sid)
            name, lever = next((k, v) for k, v in config.levers.items() if v.integer)
            storage.set_trial_param(tid, name, lever.low, optuna.distributions.IntDistribution(
                int(lever.low), int(lever.high)))
            storage.set_trial_user_attr(tid, "host", socket.gethostname())
            storage.set_trial_user_attr(tid, "pid", dead.pid)
        calls.append(1)
        return pl.DataFrame()

    monkeypatch.setattr(S, "evaluate", evaluate)
    monkeypatch.setattr(S, "per_scenario", lambda df, outcome: pl.DataFrame({outcome: [1.0]}))
    result = S.search(config, settings)
    counts = S.trial_counts(result.study)
    assert counts["trials"] == 4 and counts["trials_interrupted"] == 1
    assert not result.study.get_trials(states=(optuna.trial.TrialState.WAITING,))


def test_a_baseline_killed_before_its_levers_were_drawn_is_queued_again():
    """A process killed as it started a queued baseline (the config's own design), before
    the trial drew its levers, left it RUNNING with no params: the recovery queued an
    empty design, so the baseline was lost and a random design ran in its place."""
    import socket

    from gtmsim.config import load_config
    from gtmsim.optimize import search as S

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    own = S.current_design(load_config(None, "realistic"))
    study = optuna.create_study(direction="maximize")
    study.enqueue_trial(own)
    trial = study.ask()  # the baseline, started
    trial.set_user_attr("host", socket.gethostname())
    trial.set_user_attr("pid", dead.pid)
    S._recover_abandoned(study)
    waiting = study.get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert [t.system_attrs["fixed_params"] for t in waiting] == [own]


def test_a_design_the_model_refuses_is_an_infeasible_trial(tmp_path, monkeypatch):
    """Two levers each valid alone made a config the model refused: the search died midway
    ('reject_below ... must not exceed threshold', exit 2) and counted those trials as
    interrupted. Such a trial is infeasible like an over-budget one: not simulated, the
    constraint violated, its reason kept; the search, and its resume, go on."""
    from gtmsim.optimize import search as S

    _no_simulation(monkeypatch)
    config = _clashing_levers_config()
    settings = S.Settings(objective="mean", trials=12, scenarios=2, replications=1, top=2,
                          storage=str(tmp_path / "s.journal"))
    result = S.search(config, settings)
    refused = [t for t in result.study.trials if "refused" in t.user_attrs]
    assert refused, "the seed drew no clashing design: the test proves nothing"
    reason = refused[0].user_attrs["refused"]
    assert reason.startswith("stages.mql_review: reject_below") and "\n" not in reason
    assert all(t.state == optuna.trial.TrialState.COMPLETE and t.constraints["model"] > 0
               for t in refused)
    assert not {c.trial for c in result.candidates} & {t.number for t in refused}
    counts = S.trial_counts(result.study)
    assert counts["trials"] == 12 and counts["trials_interrupted"] == 0
    assert counts["trials_refused"] == len(refused)
    assert counts["first_refusal"] == f"trial {refused[0].number}: {reason}"
    frame = result.trials_frame().sort("number")
    rows = frame.filter(frame["number"].is_in([t.number for t in refused]))
    assert rows["feasible"].to_list() == [False] * len(refused)
    assert rows["refused"].to_list() == [t.user_attrs["refused"] for t in refused]
    assert rows["value_0"].null_count() == len(refused)
    assert frame.filter(frame["refused"].is_null())["cost"].null_count() == 0
    resumed = S.search(config, S.Settings(**{**settings.__dict__, "trials": 16}))
    assert S.trial_counts(resumed.study)["trials"] == 16


def test_a_search_whose_every_design_was_refused_names_the_reason(monkeypatch):
    """No design to choose: one line naming the levers and the model's reason, not 'no
    feasible design within the budget' (or the reason without saying that all were)."""
    from gtmsim.errors import GtmsimError
    from gtmsim.optimize import search as S

    _no_simulation(monkeypatch)
    config = _clashing_levers_config()
    study = optuna.create_study(direction="maximize")
    why = "stages.mql_review: reject_below (0.2) must not exceed threshold (0.12)"
    for _ in range(2):
        study.add_trial(optuna.trial.create_trial(
            params={"rb": 0.2}, value=0.0, user_attrs={"refused": why},
            distributions={"rb": optuna.distributions.FloatDistribution(0.0, 0.3)}))
    with pytest.raises(GtmsimError) as err:
        S.held_out_candidates(config, study, S.Settings(), held_out=[])
    text = str(err.value)
    assert text.startswith("levers: the model refused every design tried") and why in text
    assert "\n" not in text


def test_a_short_search_is_not_random_sampling_only():
    """TPE's random start-up is a quarter of the trials, 3 to 10: with Optuna's 10, the 10
    trials of the baseline search under `ideal` were random draws only."""
    from gtmsim.optimize.search import _sampler

    assert _sampler(["mean"], 1, False, 10)._n_startup_trials == 3
    assert _sampler(["mean"], 1, False, 20)._n_startup_trials == 5
    assert _sampler(["mean"], 1, False, 400)._n_startup_trials == 10


def test_a_baseline_the_search_never_ran_has_no_search_score_in_candidates_parquet():
    """README: in candidates.parquet a baseline the search never ran is trial -1 'with no
    search score'. The column held NaN (a number to polars: its mean was NaN, is_null found
    nothing) where comparison.json and trials.parquet write null."""
    import math
    from types import SimpleNamespace as N

    from gtmsim.optimize.search import candidates_frame

    cands = candidates_frame([
        N(trial=0, own=False, ideal_tuned=False, cost=1.0, search_score=5.0,
          search_regret=0.0, scores={"mean": 6.0}, design={"x": 1}),
        N(trial=-1, own=False, ideal_tuned=True, cost=1.0, search_score=math.nan,
          search_regret=math.nan, scores={"mean": 7.0}, design={"x": 2})])
    assert cands["search_score"].to_list() == [5.0, None]
    assert cands["search_regret"].to_list() == [0.0, None]
    assert cands["search_score"].mean() == 5.0


def test_a_search_refuses_an_unknown_outcome_before_its_study_is_made(tmp_path, monkeypatch):
    """The Python call made the study and ran its first design before the outcome was found
    missing (or scored any column the command refuses); now it is refused first."""
    from gtmsim.config import load_config
    from gtmsim.errors import GtmsimError
    from gtmsim.optimize import search as S

    def never(*args, **kwargs):
        raise AssertionError("a design ran before the outcome was checked")

    monkeypatch.setattr(S, "evaluate", never)
    for outcome in ("bookingz", "throughput_sdr"):
        settings = S.Settings(outcome=outcome, trials=2, scenarios=2, replications=1,
                              ideal_trials=0)
        with pytest.raises(GtmsimError, match=f"^--outcome: no outcome column '{outcome}'"):
            S.search(load_config(), settings, tmp_path / outcome)
        assert not (tmp_path / outcome).exists()
