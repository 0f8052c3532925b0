"""The design search: an Optuna study over the config's levers, scored robustly over scenarios.

Every trial evaluates its design on the same scenarios with the same seeds (common random
numbers), scenario by scenario, reporting each scenario's outcome as a step so that the
Wilcoxon pruner (which pairs steps across trials) can stop a clearly worse design early when
the objective is the mean. The design the search scores best is chosen (by regret, the
candidate with the least regret on the search's scenarios); the held-out
scenarios, which take no part in the choice, then estimate it and the other top designs.
The budget is a constraint Optuna sees (``Trial.set_constraint``, the successor of
``constraints_func`` in Optuna 5); an over-budget design is not simulated, and the sampler
learns to avoid it, as it does a design the model refuses (levers each valid alone can
together break a rule of the model). The study persists (a journal file by default,
any Optuna storage URL otherwise), so an interrupted search resumes where it stopped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import numbers
import os
import socket
import time
import warnings
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import polars as pl

from gtmsim.config import Config
from gtmsim.config.loader import over_budget
from gtmsim.errors import MAX_REPLICATIONS, ConfigError, GtmsimError, whole
from gtmsim.optimize.evaluate import evaluate, per_scenario
from gtmsim.optimize.levers import annual_cost, apply_design, current_design
from gtmsim.optimize.objectives import OBJECTIVES, regret, robust_score
from gtmsim.optimize.scenarios import MAX_SCENARIOS, Scenario, draw_scenarios
from gtmsim.outcomes import check_ranked_outcome, check_scored_outcome
from gtmsim.simulate import DEFAULT_ENGINE, ENGINES

FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
TAKEN = (*FINISHED, optuna.trial.TrialState.RUNNING)
Progress = Callable[[int, int], None]


@dataclass
class Settings:
    """What to search for and how hard."""

    objective: str = "cvar10"
    outcome: str = "bookings"
    trials: int = 50
    scenarios: int = 16
    replications: int = 2
    held_out: int | None = None  # default: as many as `scenarios`
    top: int = 5
    target: float | None = None  # satisficing: the outcome a scenario must reach
    seed: int = 0
    engine: str = DEFAULT_ENGINE
    workers: int | None = None  # threads (numba) or processes (simpy); None: the default
    prune: bool = True
    storage: str | None = None
    study_name: str = "gtmsim"
    method: str = "sobol"
    ideal_trials: int = 0  # > 0: first find the best design under `ideal`, a baseline
    # a study the user's runs alongside, under a name of its own: what it is, in their words
    companion: str | None = None

    def __post_init__(self) -> None:
        if self.engine is None:  # as simulate's: the study records the engine it ran on
            self.engine = DEFAULT_ENGINE

    def check(self) -> None:
        # from Python: a count given as text was a TypeError naming nothing, 2.5 trials and
        # held_out=0 (read as the default) ran, a flag given as text was read as true
        for flag, v in (("--objective", self.objective), ("--outcome", self.outcome),
                        ("--study-name", self.study_name)):
            if not isinstance(v, str):
                raise GtmsimError(f"{flag}: expected text, got {v!r}")
        counts = [("--trials", self.trials), ("--scenarios", self.scenarios),
                  ("--replications", self.replications), ("--top", self.top),
                  ("--ideal-trials", self.ideal_trials)]
        if self.held_out is not None:
            counts.append(("--held-out", self.held_out))
        for flag, v in counts:
            if isinstance(v, bool) or not isinstance(v, numbers.Integral):
                raise GtmsimError(f"{flag}: expected a whole number, got {v!r}")
        if self.target is not None and (isinstance(self.target, bool)
                                        or not isinstance(self.target, numbers.Real)):
            raise GtmsimError(f"--target: expected a number, got {self.target!r}")
        if not isinstance(self.prune, bool):
            raise GtmsimError(f"prune: expected True or False, got {self.prune!r}")
        names = self.objective.split(",")
        for name in names:
            if name not in OBJECTIVES and name != "cost":
                raise GtmsimError(f"--objective: unknown objective {name!r}; choose from "
                                  f"{', '.join(OBJECTIVES)} (or two joined by a comma, "
                                  "e.g. mean,cvar10 or mean,cost)")
        if len(names) > 2:
            raise GtmsimError("--objective: at most two objectives")
        if len(names) == 2 and "regret" in names:
            raise GtmsimError("--objective: regret only alone (it is scored over the "
                              "candidate designs after the search, which ranks them by the "
                              "mean meanwhile)")
        if names == ["cost"]:
            raise GtmsimError("--objective: cost only as the second of a pair (e.g. "
                              "cvar10,cost): alone, the cheapest design would win whatever "
                              "it delivers")
        if len(names) == 2 and names[0] == names[1]:
            raise GtmsimError(f"--objective: the two objectives must differ, got {self.objective}")
        if self.target is not None and not math.isfinite(self.target):
            raise GtmsimError(f"--target: expected a finite number, got {self.target}")
        if "satisficing" in names and self.target is None:
            raise GtmsimError("--target: the satisficing objective needs a target")
        for flag, v in counts[:4] + counts[5:]:
            if v < 1:
                raise GtmsimError(f"{flag}: must be at least 1, got {v}")
            if flag in ("--scenarios", "--held-out") and v > MAX_SCENARIOS:
                raise GtmsimError(f"{flag}: at most {MAX_SCENARIOS:,}, got {v:,}")
        # before the study is made: a wrong one failed in the first trial, after the study
        # had recorded it, and the corrected call was refused as scored on other terms
        if self.engine not in ENGINES:
            raise GtmsimError(f"--engine: unknown engine {self.engine!r}; choose from "
                              f"{', '.join(ENGINES)}")
        if self.workers is not None:
            whole("--workers", self.workers, 1)
        whole("--replications", self.replications, 1, MAX_REPLICATIONS)
        check_ranked_outcome(self.outcome)
        if not self.study_name.strip():
            raise GtmsimError("--study-name: must not be empty")
        if self.ideal_trials < 0:
            raise GtmsimError(f"--ideal-trials: must not be negative, got {self.ideal_trials}")

    @property
    def objectives(self) -> list[str]:
        return self.objective.split(",")

    def scored_by(self, config: Config) -> dict[str, Any]:
        """What a trial's value depends on: a study resumed with any of it changed would mix
        trials scored on different terms."""
        model = config.model_dump(mode="json", by_alias=True, exclude_none=True)
        digest = hashlib.sha256(json.dumps(model, sort_keys=True).encode()).hexdigest()
        # the target scores a trial under satisficing only; elsewhere it feeds the what-breaks
        # line, read after the search, and a resume may change it
        target = self.target if "satisficing" in self.objectives else None
        return {"config": digest[:16], "objective": self.objective, "outcome": self.outcome,
                "target": target, "scenarios": self.scenarios,
                "replications": self.replications, "seed": self.seed, "engine": self.engine,
                "method": self.method}


@dataclass
class Candidate:
    """A design re-evaluated on the held-out scenarios."""

    trial: int
    design: dict[str, Any]
    search_score: float  # the objective on the search's scenarios (NaN: not a complete trial)
    cost: float
    held_out: np.ndarray  # per held-out scenario: the outcome's mean over replications
    frame: pl.DataFrame = field(repr=False)
    scores: dict[str, float] = field(default_factory=dict)
    search_mean: float = math.nan  # the outcome's mean over the search's scenarios
    own: bool = False  # the config's own design (its levers as given): the status quo
    ideal_tuned: bool = False  # the baseline a short search under `ideal` chose
    # per search scenario (None: not seen on every one: a baseline the search never ran)
    search_values: np.ndarray | None = field(default=None, repr=False)
    # regret on the search's scenarios, against the candidates seen on all of them (NaN: not)
    search_regret: float = math.nan


def lever_cells(design: dict[str, Any]) -> dict[str, Any]:
    """A design as table cells, `lever_<name>`: each value as it is (`cells_frame` makes a
    column of mixed kinds text)."""
    return {f"lever_{k}": v for k, v in design.items()}


def cells_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Rows with lever cells as a table. A lever column holds one kind of value (a number, a
    word or a flag: a flag lever is boolean, as comparison.json has it, not the text
    'True'); one whose choices mix kinds is text."""
    kinds: dict[str, set[type]] = {}
    for row in rows:
        for k, v in row.items():
            if k.startswith("lever_") and v is not None:
                kinds.setdefault(k, set()).add(
                    bool if isinstance(v, bool | np.bool_) else
                    str if isinstance(v, str) else float)
    mixed = {k for k, found in kinds.items() if len(found) > 1}
    rows = [{k: str(v) if k in mixed and v is not None else v for k, v in row.items()}
            for row in rows]
    return pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame()


@dataclass
class SearchResult:
    study: optuna.Study
    scenarios: list[Scenario]
    held_out: list[Scenario]
    candidates: list[Candidate]
    best: Candidate
    # finished trials of the short search under `ideal` whose winner is a baseline (0: none);
    # its study's own count: a resume may give another --ideal-trials than the one it ran
    ideal_trials: int = 0

    def trials_frame(self) -> pl.DataFrame:
        return trials_frame(self.study)


# --------------------------------------------------------------------------- storage


def open_storage(url: str | None, out_dir: Path | None) -> optuna.storages.BaseStorage | str:
    """A journal file in the output folder by default; a path (no scheme://) ending in .journal
    or .log is a journal file; anything else is an Optuna storage URL (sqlite:///...,
    postgresql://...), also one whose database file ends in .journal."""
    flag = "--storage"
    if url is None:
        if out_dir is None:
            return optuna.storages.InMemoryStorage()
        out_dir.mkdir(parents=True, exist_ok=True)
        url, flag = str(out_dir / "study.journal"), "--out"
    if "://" not in url and url.endswith((".journal", ".log")):
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        _check_journal(Path(url), flag)
        try:
            # Optuna's lock is a symlink to the journal, forced after a grace period when a
            # killed process left it, unless it points nowhere (a relative path resolves
            # beside the lock; a folder moved): then it was waited on for ever, at full CPU.
            # So the path is absolute, and a lock that points nowhere is stale.
            path = os.path.abspath(url)
            lock = Path(path + ".lock")
            if lock.is_symlink() and not lock.exists():
                lock.unlink(missing_ok=True)
            return JournalStorage(JournalFileBackend(path))
        except OSError as exc:
            raise GtmsimError(f"{flag}: cannot open journal file {url!r}: {exc}") from None
        except ValueError as exc:  # a line cut short by a crash, or not a journal at all
            raise GtmsimError(f"{flag}: the study journal {url!r} is damaged "
                              f"({_first_line(exc)}); move it aside to start a new study"
                              ) from None
    for attempt in range(3):
        try:
            with warnings.catch_warnings():  # heartbeats are marked experimental
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                # a trial whose process stopped beating is failed and its design run again
                retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1)
                return optuna.storages.RDBStorage(url, heartbeat_interval=60, grace_period=120,
                                                  heartbeat_stale_trial_callback=retry)
        except Exception as exc:  # noqa: BLE001 - any failure to open is bad input
            import sqlalchemy.exc

            # processes joining a new database at once race to create Optuna's tables: the
            # loser's insert or CREATE TABLE collides with the winner's; it finds the tables
            # on a retry (SQLite says so with an OperationalError, PostgreSQL with a
            # ProgrammingError)
            raced = isinstance(exc, sqlalchemy.exc.IntegrityError) or (
                isinstance(exc, sqlalchemy.exc.ProgrammingError
                           | sqlalchemy.exc.OperationalError)
                and "already exists" in str(exc))
            if raced and attempt < 2:
                time.sleep(0.5 + attempt)
                continue
            raise GtmsimError(f"--storage: cannot open {shown_url(url)!r}: "
                              f"{_first_line(exc)}") from None
    raise AssertionError("unreachable")


def shown_url(url: str) -> str:
    """A storage URL as messages show it: its password, if it has one, as ***."""
    import sqlalchemy.engine
    import sqlalchemy.exc

    try:
        parsed = sqlalchemy.engine.make_url(url)
    except (sqlalchemy.exc.ArgumentError, ValueError):
        return url
    return parsed.render_as_string(hide_password=True) if parsed.password else url


def _check_journal(path: Path, flag: str) -> None:
    """Refuse a damaged journal in one line: optuna skips a last line cut short by a crash,
    then appends to it and fails later (an AttributeError or a JSONDecodeError traceback). An
    unfinished last line that is still unfinished half a second later is not another process
    writing."""
    def problem() -> str | None:
        try:
            data = path.read_bytes()
        except OSError:
            return None  # new, or unreadable: optuna says which
        try:
            lines = data.decode("utf-8").split("\n")
            for line in lines[:-1]:
                if line.strip():
                    json.loads(line)
        except ValueError as exc:
            return _first_line(exc)
        if lines[-1].strip():
            whole = sum(1 for line in lines[:-1] if line.strip())
            return CUT_SHORT.format(whole=whole)
        return None

    found = problem()
    if found and found.startswith(CUT_SHORT[:20]):
        time.sleep(0.5)
        found = problem()
    if found:
        raise GtmsimError(f"{flag}: the study journal {str(path)!r} is damaged ({found}); move "
                          "it aside to start a new study")


# a process killed as it wrote: the line's operation never happened, the lines before are
# the study (optuna writes each operation as one line)
CUT_SHORT = ("its last line is cut short, a write that never finished: delete that line to "
             "resume the study from its {whole} whole lines")


# --------------------------------------------------------------------------- search space


def suggest(trial: optuna.Trial, config: Config) -> dict[str, Any]:
    design: dict[str, Any] = {}
    for name, lever in config.levers.items():
        if lever.choices is not None:
            design[name] = trial.suggest_categorical(name, lever.choices)
        elif lever.integer:
            design[name] = trial.suggest_int(name, int(lever.low), int(lever.high))
        else:
            design[name] = trial.suggest_float(name, lever.low, lever.high)
    return design


# --------------------------------------------------------------------------- the study


@dataclass
class Prepared:
    """A study ready to run: its scenarios, held-out scenarios and objectives."""

    study: optuna.Study
    scenarios: list[Scenario]
    held_out: list[Scenario]
    objectives: list[str]
    baselines: list[dict[str, Any]]  # enqueued after the config's own design
    ideal: dict[str, Any] | None = None  # the baseline tuned under `ideal`, one of them
    ideal_trials: int = 0  # the finished trials of the search under `ideal` that chose it

    @property
    def multi(self) -> bool:
        return len(self.objectives) > 1


def prepare(config: Config, settings: Settings, out_dir: Path | None = None,
            baselines: list[dict[str, Any]] = (), constant_liar: bool = False,
            progress: Progress | None = None) -> Prepared:
    """Check the settings, draw the scenarios, open (or resume) the study, recover trials
    abandoned by a dead process and enqueue the baselines (the config's own design first).
    `constant_liar` lets TPE spread parallel trials (the cluster driver asks for several).
    `progress` hears of the ideal baseline's search as the first `ideal_trials` of
    `trials + ideal_trials`."""
    settings.check()
    if not config.levers:
        raise GtmsimError("levers: the config declares no design levers to search")
    budget = over_budget(config)
    if budget:  # its own design is the search's first trial and its yardstick
        raise ConfigError("design.annual_budget", f"{budget}: the config's own design, which "
                          "the search starts from and sets the chosen one against, must fit "
                          "it (raise the budget, or lower a headcount)")
    check_scored_outcome(settings.outcome, config)
    baselines = list(baselines)
    ideal, ideal_trials = None, 0
    seeded = _seeded_ideal(settings, out_dir)
    if seeded is not None:  # a resume: the study was seeded with this one, and keeps it,
        # whatever --ideal-trials says now (0 too)
        ideal, ideal_trials = seeded["design"], seeded["trials"]
        if progress and settings.ideal_trials > 0:
            progress(settings.ideal_trials, settings.trials + settings.ideal_trials)
    elif settings.ideal_trials > 0:
        check_resume(config, settings, out_dir)
        found = ideal_search(config, settings, out_dir, progress)
        ideal, ideal_trials = found.best.design, trial_counts(found.study)["trials"]
    if ideal is not None:
        baselines.append(ideal)
    scenarios = draw_scenarios(config, settings.scenarios, settings.seed, settings.method)
    held_out = draw_scenarios(config, settings.held_out or settings.scenarios, settings.seed,
                              settings.method, first_seed_index=1)
    objectives = settings.objectives
    multi = len(objectives) > 1
    directions = ["minimize" if o == "cost" else "maximize" for o in objectives]
    sampler = _sampler(objectives, settings.seed, constant_liar, settings.trials)
    with warnings.catch_warnings():  # the Wilcoxon pruner is marked experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        # The Wilcoxon test compares designs scenario by scenario, i.e. on the mean: a tail
        # statistic's best design may be worse on most scenarios, and the test would stop
        # it; so would it the design of least regret (the largest shortfall in a scenario),
        # which also needs every scenario's value to be scored.
        pruner = (optuna.pruners.WilcoxonPruner(p_threshold=0.1, n_startup_steps=4)
                  if settings.prune and not multi and objectives[0] == "mean"
                  else optuna.pruners.NopPruner())
    storage = open_storage(settings.storage, out_dir)
    # errors only: a trial stopped by Ctrl-C is logged as failed with a traceback at WARNING
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    # Only the process that creates the study enqueues the baselines: several processes may
    # join one study at once, and each enqueueing would run a baseline more than once.
    created = True
    try:
        try:
            study = optuna.create_study(study_name=settings.study_name, storage=storage,
                                        sampler=sampler, pruner=pruner, directions=directions)
        except optuna.exceptions.DuplicatedStudyError:
            created = False
            study = optuna.load_study(study_name=settings.study_name, storage=storage,
                                      sampler=sampler, pruner=pruner)
    except Exception as exc:  # noqa: BLE001 - a storage that cannot be used is bad input
        where = "--storage" if settings.storage else "--out"
        raise GtmsimError(f"{where}: cannot open the study: {_first_line(exc)}") from None
    if list(study.directions) != [optuna.study.StudyDirection[d.upper()] for d in directions]:
        raise GtmsimError(f"--study-name: study {settings.study_name!r} in this storage has "
                          f"{len(study.directions)} objective(s) of other directions; choose "
                          "another --study-name")
    _same_terms(study, settings.scored_by(config), settings, created, out_dir)
    if not created and "scored_by" not in study.user_attrs:
        _refuse_foreign(study.get_trials(deepcopy=False), config, settings)
    if not created:
        study.sampler = _sampler(objectives, _joining_seed(settings.seed, study),
                                 constant_liar, settings.trials)
    _recover_abandoned(study)
    if created:
        for design in [current_design(config), *baselines]:
            study.enqueue_trial(design, skip_if_exists=True)
        # none too: a study begun with --ideal-trials 0 is not one begun before this was kept
        study.set_user_attr(IDEAL_BASELINE, {"design": ideal, "trials": ideal_trials})
    return Prepared(study, scenarios, held_out, list(objectives), baselines, ideal,
                    ideal_trials)


def _sampler(objectives: list[str], seed: int, constant_liar: bool, trials: int
             ) -> optuna.samplers.BaseSampler:
    """NSGA-II for a Pareto front; else TPE, whose random start-up is a quarter of the
    trials (3 to 10, the baselines among them): with Optuna's 10 a short search, such as the
    10 trials of the baseline under `ideal`, sampled at random only and in practice never
    beat the config's own design."""
    if seed >= 2**32:  # the samplers seed NumPy's legacy generator, 32 bits
        seed = int(np.random.SeedSequence(seed).generate_state(1)[0])
    if len(objectives) > 1:
        return optuna.samplers.NSGAIISampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, multivariate=True,
                                      n_startup_trials=min(10, max(3, trials // 4)),
                                      constant_liar=constant_liar)


def _joining_seed(seed: int, study: optuna.Study) -> int:
    """The sampler's seed for a process that resumes or joins a study: the seed alone would
    draw the designs the study's first trials already drew (a sampler's state is not kept
    in the storage). Mixed with the trials so far and this process, the designs are fresh;
    only an uninterrupted search by one process repeats exactly."""
    words = [seed, len(study.trials), os.getpid()]
    return int(np.random.SeedSequence(words).generate_state(1)[0])


def _same_terms(study: optuna.Study, terms: dict[str, Any], settings: Settings,
                created: bool, out_dir: Path | None) -> None:
    """Record the terms trials are scored on in a new study; refuse to resume one scored on
    other terms (its trials and the new ones would not compare)."""
    if created:
        study.set_user_attr("scored_by", terms)
        return
    _refuse_other_terms(study.user_attrs.get("scored_by"), terms, settings, out_dir)


IDEAL_BASELINE = "ideal_baseline"  # a study's user attribute: the ideal winner it was seeded with


def _seeded_ideal(settings: Settings, out_dir: Path | None = None) -> dict | None:
    """The baseline under `ideal` that the study being resumed was seeded with, ``{"design",
    "trials"}`` (a design of None: begun with none); None for a new study (or one begun before
    it was recorded). A resume with more --trials (whose default --ideal-trials follows) ran
    the search under ideal further and named its new winner the baseline, which the study,
    seeded at its start, never ran."""
    storage = open_storage(settings.storage, out_dir)
    try:
        study_id = storage.get_study_id_from_name(settings.study_name)
    except KeyError:  # a new study
        return None
    return storage.get_study_user_attrs(study_id).get(IDEAL_BASELINE)


def check_resume(config: Config, settings: Settings, out_dir: Path | None = None) -> None:
    """Refuse to resume the study on other terms before its baselines' searches run: each
    has a study of its own, resumed first, which was the one refused, by a name the user
    never gave (``<study>-ideal``) and with terms derived from theirs."""
    storage = open_storage(settings.storage, out_dir)
    try:
        study_id = storage.get_study_id_from_name(settings.study_name)
    except KeyError:  # a new study
        return
    old = storage.get_study_user_attrs(study_id).get("scored_by")
    if old is None:
        _refuse_foreign(storage.get_all_trials(study_id, deepcopy=False), config, settings)
    _refuse_other_terms(old, settings.scored_by(config), settings, out_dir)


def _refuse_foreign(trials: list[optuna.trial.FrozenTrial], config: Config,
                    settings: Settings) -> None:
    """Refuse a study that records no terms and whose trials set parameters that are not the
    config's levers: another tool's study in a shared storage, which the search would
    join (mixing its trials in, or failing on a parameter of another kind)."""
    foreign = sorted({p for t in trials for p in t.params} - set(config.levers))
    if foreign:
        where = "that storage" if settings.storage else "the output folder's journal"
        raise GtmsimError(f"--study-name: study {settings.study_name!r} in {where} is not "
                          f"gtmsim's for these levers (its trials set {', '.join(foreign[:3])})"
                          "; choose another --study-name")


def _refuse_other_terms(old: dict[str, Any] | None, terms: dict[str, Any],
                        settings: Settings, out_dir: Path | None) -> None:
    """Name the study as the user knows it (their --study-name and --out, or what a companion
    study is to theirs) and what differs."""
    if old is None:  # made by an older gtmsim, or its creator has not recorded them yet
        return
    if "engine" in old and old["engine"] is None:  # Settings(engine=None), recorded as given
        old = {**old, "engine": DEFAULT_ENGINE}    # by an older gtmsim: the default engine
    # a target that scores nothing now (None) was recorded by a study of an older gtmsim
    changed = ["the config (file, profile or --set values)" if k == "config" else
               f"{k} {old.get(k)!r} -> {v!r}" for k, v in terms.items()
               if old.get(k) != v and not (k == "target" and v is None)]
    if not changed:
        return
    # a storage URL may hold a password: it is not repeated
    where, place = (("--storage", "that storage") if settings.storage or out_dir is None
                    else ("--out", str(out_dir)))
    what = settings.companion or f"study {settings.study_name!r}"
    # a run with --compare-ideal and one without each keep a search under ideal, in one study
    both = ("; optimize with and without --compare-ideal each keep a search under ideal "
            f"there: give them different {where}s" if settings.companion else "")
    raise GtmsimError(f"{where}: {what} in {place} was scored on other terms "
                      f"({'; '.join(changed)}); give a new {where} or --study-name, or the "
                      f"same settings to resume it{both}")


def ideal_best(config: Config, settings: Settings, out_dir: Path | None = None,
               progress: Progress | None = None) -> Candidate:
    """The design a planner would pick if people behaved as the flowchart says: the
    winner of `ideal_search`."""
    return ideal_search(config, settings, out_dir, progress).best


def ideal_search(config: Config, settings: Settings, out_dir: Path | None = None,
                 progress: Progress | None = None) -> SearchResult:
    """A short search (`settings.ideal_trials` trials, mean outcome) under the `ideal`
    profile, in its own study (``<study>-ideal``, resumed like any other)."""
    from gtmsim.mechanisms import ideal

    quick = dataclasses.replace(
        settings, objective="mean", trials=settings.ideal_trials, target=None,
        scenarios=min(settings.scenarios, 4), held_out=min(settings.held_out or
                                                          settings.scenarios, 4),
        top=min(settings.top, 3), study_name=f"{settings.study_name}-ideal", ideal_trials=0,
        companion=f"the search under the ideal profile for the baseline of study "
                  f"{settings.study_name!r} (--ideal-trials)")
    total = settings.trials + settings.ideal_trials
    step = (lambda done, _n: progress(done, total)) if progress else None
    return search(ideal(config), quick, out_dir, progress=step)


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def search(config: Config, settings: Settings, out_dir: Path | None = None,
           baselines: list[dict[str, Any]] = (), progress: Progress | None = None
           ) -> SearchResult:
    """Run (or resume) the study, then re-evaluate the top designs on held-out scenarios."""
    ready = prepare(config, settings, out_dir, baselines, progress=progress)
    study, scenarios, held_out, baselines = (ready.study, ready.scenarios, ready.held_out,
                                             ready.baselines)
    objectives, multi = ready.objectives, ready.multi

    running: list[optuna.Trial] = []  # the trial this process runs, for an interruption

    def objective(trial: optuna.Trial):
        running[:] = [trial]
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("pid", os.getpid())
        if beyond_quota(study, trial.number, settings.trials):
            trial.set_user_attr("surplus", True)
            raise _Surplus
        cfg = screen(trial, config, suggest(trial, config))
        if cfg is None:  # infeasible: the constraint tells the sampler; nothing to simulate
            return tuple(_worst(o) for o in objectives) if multi else _worst(objectives[0])
        cost = annual_cost(cfg)
        values = []
        order = np.random.default_rng(trial.number).permutation(len(scenarios))
        for k, step in enumerate(order):
            df = evaluate(cfg, {}, [scenarios[step]], settings.replications, settings.engine,
                          settings.workers)
            v = float(per_scenario(df, settings.outcome)[settings.outcome][0])
            values.append((int(step), v))
            if not multi and k < len(order) - 1:  # a design seen on every scenario is scored
                trial.report(v, int(step))
                if should_prune(trial):
                    trial.set_user_attr("scenario_values", _ordered(values, len(scenarios)))
                    raise optuna.TrialPruned()
        per = np.array([v for _, v in sorted(values)])
        trial.set_user_attr("scenario_values", per.tolist())
        scores = [cost if o == "cost" else
                  robust_score("mean" if o == "regret" else o, per, settings.target)
                  for o in objectives]
        return tuple(scores) if multi else scores[0]

    def finished() -> int:
        return sum(t.state in FINISHED for t in study.get_trials(deepcopy=False))

    # trials other processes are running count too: together they finish `trials`, no more
    callbacks = [optuna.study.MaxTrialsCallback(settings.trials, states=TAKEN)]
    if progress:
        offset, total = settings.ideal_trials, settings.trials + settings.ideal_trials
        callbacks.append(lambda st, _t: progress(
            offset + min(settings.trials, sum(t.state in FINISHED for t in st.trials)), total))
    # A trial of another process that died counted in the quota until the wait below
    # failed it and queued its design again: the study is then short of `trials`, so this
    # process runs what is left, until every slot is finished or a round finishes none.
    before = -1
    while (done := finished()) < settings.trials and done > before:
        before = done
        try:
            study.optimize(objective, n_trials=settings.trials - done, callbacks=callbacks,
                           catch=(_Surplus,))
        except BaseException:
            # Ctrl-C or a failure: Optuna failed the trial; its design (a baseline, say,
            # which is never drawn) is run again by the resume, as a killed process's is
            if running:
                _run_again(study, running[0], config.levers)
            raise
        await_others(study)
    await_others(study)
    candidates = held_out_candidates(config, study, settings, held_out, baselines, ready.ideal)
    best = pick_best(candidates, settings.objectives[0])
    return SearchResult(study, scenarios, held_out, candidates, best, ready.ideal_trials)


def screen(trial: optuna.Trial, config: Config, design: dict[str, Any]) -> Config | None:
    """The design's config if it is feasible, None if not, recorded on the trial as the
    constraints the sampler learns from. Levers each valid alone can together make a config
    the model refuses (a reject_below above its threshold): such a trial is infeasible like
    an over-budget one, never simulated, its reason kept as `refused`. A feasible trial
    keeps its cost and budget margin (`over_budget`: cost minus budget, <= 0 within it)."""
    try:
        cfg = apply_design(config, design)
    except ConfigError as exc:
        trial.set_user_attr(REFUSED, _first_line(exc))
        trial.set_constraint("model", 1.0)
        return None
    cost = annual_cost(cfg)
    budget = config.design.annual_budget
    over = cost - budget if budget is not None else 0.0
    trial.set_user_attr("cost", cost)
    trial.set_user_attr("over_budget", float(over))
    trial.set_constraint("budget", float(over))
    return cfg if over <= 0 else None


# the user attr of a trial whose design the model refused: its reason, in one line
REFUSED = "refused"


def is_feasible(t: optuna.trial.FrozenTrial) -> bool:
    """A complete trial whose design was simulated: neither over the budget nor refused by
    the model (their values are the sampler's worst, not scores)."""
    return (t.state == optuna.trial.TrialState.COMPLETE and REFUSED not in t.user_attrs
            and t.user_attrs.get("over_budget", 0.0) <= 0)


class _Surplus(Exception):
    """A trial asked for after the study's quota was taken (processes racing for the last
    slot); it is closed unrun, as FAIL marked ``surplus``."""


def trial_counts(study: optuna.Study) -> dict[str, Any]:
    """The trials as `--trials` counts them (finished: complete or pruned), and those
    interrupted (failed: Ctrl-C, a killed process), which a resume replaces and the count
    leaves out. A surplus trial, closed unrun when processes raced for the last slot, is
    neither. Trials whose design the model refused count as finished (infeasible, like
    over-budget ones), and apart: how many, and the first with its reason."""
    trials = study.get_trials(deepcopy=False)
    refused = [t for t in trials if t.state in FINISHED and REFUSED in t.user_attrs]
    counts: dict[str, Any] = {
        "trials": sum(t.state in FINISHED for t in trials),
        "trials_interrupted": sum(t.state == optuna.trial.TrialState.FAIL
                                  and not t.user_attrs.get("surplus") for t in trials),
        "trials_refused": len(refused)}
    if refused:
        counts["first_refusal"] = f"trial {refused[0].number}: {refused[0].user_attrs[REFUSED]}"
    return counts


def beyond_quota(study: optuna.Study, number: int, quota: int) -> bool:
    """Whether `quota` trials numbered before this one are finished or still running."""
    taken = study.get_trials(deepcopy=False, states=TAKEN)
    return sum(t.number < number for t in taken) >= quota


def _worst(objective: str) -> float:
    return float("inf") if objective == "cost" else 0.0


def _ordered(values: list[tuple[int, float]], k: int) -> list[float | None]:
    """Each seen value at its scenario's place, None at the others."""
    seen = dict(values)
    return [seen.get(i) for i in range(k)]


def await_others(study: optuna.Study, poll: float = 1.0) -> None:
    """Wait for the trials other processes are still running: they count in the quota, so
    they are this search's too, and every process should pick from the same finished trials
    (one that finished its own share first read a study with none of them complete, and
    stopped on 'no feasible design'). A trial whose process died is failed on the way (on this
    host by its pid, elsewhere by the storage's heartbeat), so the wait ends."""
    while True:
        _recover_abandoned(study)
        with warnings.catch_warnings():  # heartbeats are marked experimental
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        if not study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            return
        time.sleep(poll)


def _recover_abandoned(study: optuna.Study) -> None:
    """A trial left RUNNING by a process on this host that no longer lives was interrupted:
    mark it failed and queue its design again, so it is run once, to the end."""
    host = socket.gethostname()
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        pid = t.user_attrs.get("pid")
        if t.user_attrs.get("host") != host or pid is None or _alive(pid):
            continue
        study._storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)
        # a queued design (a baseline) is in fixed_params until its levers are drawn
        study.enqueue_trial(t.system_attrs.get("fixed_params") or t.params,
                            skip_if_exists=False)


def _run_again(study: optuna.Study, trial: optuna.Trial,
               levers: Collection[str] = ()) -> None:
    """Queue the design of a trial this process was running when it was interrupted (failed
    by Optuna) again; a trial that had drawn no lever yet, or not all of `levers`, has no
    design to keep (queued, its levers drawn so far would be fixed in the next trial). An
    interruption Optuna does not catch (SIGTERM, raised as a BaseException of its own) left
    the trial RUNNING: it is failed here, as Ctrl-C's is, not left for others to wait on."""
    with contextlib.suppress(Exception):  # the interruption, not this, is what to report
        t = study._storage.get_trial(trial._trial_id)
        if t.state == optuna.trial.TrialState.RUNNING:
            study._storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)
            t = study._storage.get_trial(trial._trial_id)
        design = t.system_attrs.get("fixed_params") or t.params
        if (t.state == optuna.trial.TrialState.FAIL and design
                and set(levers) <= set(design) and not t.user_attrs.get("surplus")):
            study.enqueue_trial(design, skip_if_exists=False)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # the same pid as this process: its former owner is gone
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --------------------------------------------------------------------------- the honest answer


def held_out_candidates(config: Config, study: optuna.Study, settings: Settings,
                        held_out: list[Scenario], baselines: list[dict[str, Any]] = (),
                        ideal: dict[str, Any] | None = None) -> list[Candidate]:
    """The top designs of the search, and the baselines, evaluated afresh on held-out
    scenarios: the best of many noisy estimates is biased up (the optimiser's curse).
    `ideal`, one of the baselines, is marked as the design tuned under `ideal`."""
    feasible = [t for t in study.trials if is_feasible(t)]
    if not feasible:
        raise GtmsimError(_none_feasible(config, study))
    main = main_objective(settings.objectives)
    front = ([t for t in study.best_trials if t in feasible] or feasible
             if len(study.directions) > 1 else feasible)
    # best first on the objective the design is chosen by: a front wider than `top` kept its
    # first designs in trial order, and could drop the one the search scored best; ties by
    # the mean there, as `pick_best` breaks them (tied satisficing shares, all 0 or all 1,
    # kept the first `top` trials by number, and the chosen one was not the highest mean)
    ranked = sorted(front, key=lambda t: (t.values[main], _finite_or_low(_search_mean(t))),
                    reverse=True)
    chosen: dict[str, optuna.trial.FrozenTrial] = {}
    for t in ranked:
        key = design_key(t.params)
        chosen.setdefault(key, t)
        if len(chosen) >= settings.top:
            break
    designs = [(t.number, t.params, t.values[main], t) for t in chosen.values()]
    known = {design_key(d) for _, d, _, _ in designs}
    # a baseline the search itself ran (the config's own design is enqueued) keeps its trial
    # and its score there; one the pruner stopped keeps its trial, with no score (it was not
    # seen on every scenario); one it never ran is trial -1 with no search score
    searched, stopped = {}, {}
    for t in feasible:
        searched.setdefault(design_key(t.params), t)
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.PRUNED,)):
        stopped.setdefault(design_key(t.params), t)
    for b in [current_design(config), *baselines]:
        key = design_key(b)
        if key not in known:
            t, cut = searched.get(key), stopped.get(key)
            designs.append((t.number, b, t.values[main], t) if t is not None else
                           (cut.number, b, math.nan, cut) if cut is not None else
                           (-1, b, math.nan, None))
            known.add(key)
    own = design_key(current_design(config))
    tuned = None if ideal is None else design_key(ideal)
    out = []
    for number, design, score, trial in designs:
        cfg = apply_design(config, design)
        df = evaluate(cfg, {}, held_out, settings.replications, settings.engine,
                      settings.workers)
        per = per_scenario(df, settings.outcome)[settings.outcome].to_numpy()
        out.append(Candidate(number, dict(design), score, annual_cost(cfg), per, df,
                             search_mean=math.nan if trial is None else _search_mean(trial),
                             own=design_key(design) == own,
                             ideal_tuned=design_key(design) == tuned,
                             search_values=None if trial is None else _search_values(trial)))
    seen = [c for c in out if c.search_values is not None]
    if seen:  # regret on the search's scenarios, which the choice by regret reads
        for c, r in zip(seen, regret(np.vstack([c.search_values for c in seen])),
                        strict=True):
            c.search_regret = float(r)
    matrix = np.vstack([c.held_out for c in out])
    regrets = regret(matrix)
    for c, r in zip(out, regrets, strict=True):
        c.scores = {"mean": robust_score("mean", c.held_out),
                    "p10": robust_score("p10", c.held_out),
                    "cvar10": robust_score("cvar10", c.held_out),
                    "regret": float(r)}
        if settings.target is not None:
            c.scores["satisficing"] = robust_score("satisficing", c.held_out, settings.target)
    return out


def design_key(design: dict[str, Any]) -> str:
    """A design's identity, its levers by name with every number as a float: the config's
    own value of a whole-number lever on an hours field is 8.0, the search's trial of it 8
    (told apart, the own design was listed twice, once as never run)."""
    return repr(sorted(((k, float(v) if isinstance(v, numbers.Real) and not isinstance(v, bool)
                         else v) for k, v in design.items()), key=lambda kv: kv[0]))


def _none_feasible(config: Config, study: optuna.Study) -> str:
    """Why no design could be chosen: every trial over the budget, refused by the model (the
    first reason named), or some of each."""
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    refused = [t for t in complete if REFUSED in t.user_attrs]
    budget = config.design.annual_budget
    if refused and len(refused) == len(complete):
        return (f"levers: the model refused every design tried ({len(refused)} trials; "
                f"trial {refused[0].number}: {refused[0].user_attrs[REFUSED]}); give the "
                "levers ranges whose values fit together")
    text = (f"no feasible design was found within the budget ({budget:,.0f}); raise the "
            "budget or the trials" if budget is not None else
            "no feasible design was found; raise the trials")
    if refused:
        text += (f" ({len(refused)} of the trials were refused by the model; trial "
                 f"{refused[0].number}: {refused[0].user_attrs[REFUSED]})")
    return text


def should_prune(trial: optuna.Trial) -> bool:
    """The pruner's answer, without the Wilcoxon pruner's warning (printed in the middle of
    the progress bar) that the best trial lacks some of this trial's scenarios: a pruned best
    or a resumed study, where it rightly compares the scenarios both have."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="WilcoxonPruner finds steps")
        return trial.should_prune()


def main_objective(objectives: list[str]) -> int:
    """The objective the chosen design is ranked by: the first that is not cost."""
    return next(i for i, o in enumerate(objectives) if o != "cost")


def _search_mean(t: optuna.trial.FrozenTrial) -> float:
    values = [v for v in t.user_attrs.get("scenario_values", []) if v is not None]
    return float(np.mean(values)) if values else math.nan


def _search_values(t: optuna.trial.FrozenTrial) -> np.ndarray | None:
    """The trial's outcome per search scenario, or None unless it was seen on every one."""
    values = t.user_attrs.get("scenario_values")
    if not values or any(v is None for v in values):
        return None
    return np.asarray(values, dtype=float)


def pick_best(candidates: list[Candidate], objective: str = "") -> Candidate:
    """The design the search scored best on its own scenarios (ties by the mean there); by
    regret (`objective` "regret"), the one with the least regret there among the candidates
    the search ran (ties by the mean), regret being scored against the candidates, after
    the search. Held-out scores take no part in the choice, so they estimate, without the
    optimiser's curse, what the chosen design and the others deliver."""
    if objective == "regret":
        ranked = [c for c in candidates if math.isfinite(c.search_regret)]
        if ranked:
            return min(ranked, key=lambda c: (c.search_regret, -_finite_or_low(c.search_mean)))
    searched = [c for c in candidates if math.isfinite(c.search_score)]
    if not searched:  # only baselines left (no complete trial among the top)
        return max(candidates, key=lambda c: c.scores["mean"])
    return max(searched, key=lambda c: (c.search_score, _finite_or_low(c.search_mean)))


def _finite_or_low(x: float) -> float:
    return x if math.isfinite(x) else -math.inf


def candidates_frame(candidates: list[Candidate]) -> pl.DataFrame:
    """One row per candidate, as candidates.parquet has it: search and held-out scores, levers."""
    rows = []
    for c in candidates:
        # a baseline the search never ran has no search score: null, as comparison.json
        # and trials.parquet write it (NaN was a number to polars, and its mean NaN)
        rows.append({"trial": c.trial, "own": c.own, "ideal_tuned": c.ideal_tuned,
                     "cost": c.cost,
                     "search_score": _or_null(c.search_score),
                     "search_regret": _or_null(c.search_regret),
                     **{f"held_out_{k}": v for k, v in c.scores.items()},
                     **lever_cells(c.design)})
    return cells_frame(rows)


def held_out_frame(candidates: list[Candidate]) -> pl.DataFrame:
    """One row per candidate, held-out scenario and replication, as held_out.parquet has it:
    the rows every held-out statistic of candidates.parquet is computed from (the outcome's
    mean over a scenario's replications, then the statistic over scenarios)."""
    frames = [c.frame.select(pl.lit(c.trial, pl.Int64).alias("trial"),
                             pl.lit(c.own).alias("own"),
                             pl.lit(c.ideal_tuned).alias("ideal_tuned"), pl.all())
              for c in candidates]
    return pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()


def _or_null(x: float) -> float | None:
    return x if math.isfinite(x) else None


def trials_frame(study: optuna.Study) -> pl.DataFrame:
    """One row per trial, as trials.parquet has it. A trial keeps its budget margin (cost
    minus budget, negative within it: the constraint Optuna sees); the table shows the
    amount over the budget, 0 within it. A trial the model refused is infeasible, its
    reason in `refused` (null for the others)."""
    rows = []
    for t in study.trials:
        margin = t.user_attrs.get("over_budget")
        refused = t.user_attrs.get(REFUSED)
        row = {"number": t.number, "state": t.state.name,
               "cost": t.user_attrs.get("cost"),
               "over_budget": None if margin is None else max(0.0, float(margin)),
               "feasible": (False if refused is not None else
                            None if margin is None else margin <= 0),
               "refused": refused,
               "surplus": bool(t.user_attrs.get("surplus", False))}
        # an over-budget or refused trial is not simulated: its value is the sampler's worst,
        # not a score
        if (t.values is not None and t.state == optuna.trial.TrialState.COMPLETE
                and refused is None and t.user_attrs.get("over_budget", 0.0) <= 0):
            for i, v in enumerate(t.values):  # a pruned trial's is a scenario's, not a score
                row[f"value_{i}"] = v
        row.update(lever_cells(t.params))
        rows.append(row)
    return cells_frame(rows)
