"""The command line: parse, call the library, print. Nothing here simulates.

Bad input (a config, a flag, an output path) ends in one line on stderr,
``gtmsim: error: <key.path>: <what is wrong>``, and exit status 2, before anything is written.
Results are written into a hidden temporary folder next to the target and renamed into place
at the end, so an error or Ctrl-C (exit 130) never leaves a half-written output behind.
"""

from __future__ import annotations

import _thread
import argparse
import contextlib
import difflib
import errno
import json
import math
import multiprocessing
import os
import re
import shutil
import signal
import sys
import tempfile
import textwrap
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import InvalidStateError
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

from gtmsim.errors import (
    DISK_FULL,
    MAX_REPLICATIONS,
    SEED_MAX,
    ConfigError,
    ExportFailed,
    GtmsimError,
    Stopped,
    cannot_write,
)
from gtmsim.outcomes import check_ranked_outcome, check_scored_outcome
from gtmsim.report.console import describe_config, print_summary, print_whole
from gtmsim.report.export import counted, write_parquet
from gtmsim.simulate import usable_cores

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


class UsageError(GtmsimError):
    """A bad flag or path, named like a config key: ``--out: ...``."""

    def __init__(self, where: str, message: str):
        self.path = where
        self.message = message
        super().__init__(f"{where}: {message}")


class _Terminated(BaseException):
    """SIGTERM, raised like KeyboardInterrupt so the same clean-up runs."""


def _interruption(exc: BaseException | None) -> BaseException | None:
    """The KeyboardInterrupt or _Terminated behind `exc`, if any: a signal that lands inside a
    library's clean-up (optuna's journal-file lock) comes out as the error that clean-up hit
    next (a FileNotFoundError), with the interruption as its context."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt | _Terminated):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _exit_code(stop: BaseException) -> int:
    return EXIT_INTERRUPTED if isinstance(stop, KeyboardInterrupt) else EXIT_TERMINATED


# --------------------------------------------------------------------------- argument parsing


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (no usage dump) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        message = re.sub(r"^argument ([^:]+): ", r"\1: ", message)
        message = message.replace("the following arguments are required: ",
                                  "missing required argument: ")
        m = re.match(r"unrecognized arguments: (.*)", message)
        if m:
            first = m.group(1).split()[0]
            close = difflib.get_close_matches(first.split("=")[0], self._option_string_actions,
                                              n=1, cutoff=0.75) if first.startswith("-") else []
            hint = f"did you mean {close[0]!r}? " if close else ""
            message = (f"{m.group(1)}: unknown argument ({hint}see '{self.prog} --help')")
        _fail(message)


def positive_count(text: str) -> int:
    """A flag's whole number of at least 1 (an argparse type; the cluster scripts use it too)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def replication_count(text: str) -> int:
    """A flag's count of replications: 1 to MAX_REPLICATIONS (an argparse type)."""
    value = positive_count(text)
    if value > MAX_REPLICATIONS:
        raise argparse.ArgumentTypeError(f"at most {MAX_REPLICATIONS:,}, got {value:,}")
    return value


def scenario_count(text: str) -> int:
    """A flag's count of scenarios: 1 to MAX_SCENARIOS (an argparse type)."""
    from gtmsim.optimize.scenarios import MAX_SCENARIOS

    value = positive_count(text)
    if value > MAX_SCENARIOS:
        raise argparse.ArgumentTypeError(f"at most {MAX_SCENARIOS:,}, got {value:,}")
    return value


def root_seed(text: str) -> int:
    """A flag's root seed: 0 to SEED_MAX (an argparse type)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {value}")
    if value > SEED_MAX:
        raise argparse.ArgumentTypeError(f"at most {SEED_MAX}, got {value}")
    return value


def _engines() -> tuple[str, ...]:
    from gtmsim.simulate import ENGINES

    return tuple(ENGINES)


def _default_engine() -> str:
    from gtmsim.simulate import DEFAULT_ENGINE

    return DEFAULT_ENGINE


def _engine(text: str) -> str:
    engines = _engines()
    if text not in engines:
        raise argparse.ArgumentTypeError(
            f"unknown engine {text!r}; choose from {', '.join(engines)}")
    return text


def _add_config_args(p: argparse.ArgumentParser, optional_config: bool = True) -> None:
    if optional_config:
        p.add_argument("config", nargs="?", metavar="CONFIG",
                       help="a TOML config (default: the embedded B2B SaaS config)")
    else:
        p.add_argument("config", metavar="CONFIG",
                       help="a TOML config, e.g. configs/b2b_saas.toml")
    p.add_argument("--profile", metavar="NAME",
                   help="human variability profile: ideal, realistic, stressed, one of the "
                        "config's [profiles], or a .toml file (default: the config's profile)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set stages.mql_review.threshold=0.2 "
                        "(the value is read as TOML, a bare word as a string, none as none, for "
                        "an optional value such as sla_hours; repeatable)")


def _add_engine_arg(p: argparse.ArgumentParser, default: str | None = None) -> None:
    p.add_argument("--engine", type=_engine, default=None, metavar="E",
                   help=f"simulation engine: {', '.join(_engines())} "
                        f"(default: {default or _default_engine()})")


def _add_run_args(p: argparse.ArgumentParser, replications_default: str,
                  engine: bool = True) -> None:
    p.add_argument("--replications", type=replication_count, metavar="N",
                   help=f"independent replications ({replications_default})")
    p.add_argument("--seed", type=root_seed, metavar="S",
                   help="root random seed (default: the config's run.seed)")
    if engine:
        _add_engine_arg(p)


def _add_connect_timeout_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--connect-timeout", type=float, default=30.0, metavar="S",
                   help="seconds to reach the scheduler and see a worker; a run whose "
                   "cluster has had no worker this long stops, resumable (default: 30)")


def _check_connect_timeout(args) -> None:
    if not (args.connect_timeout > 0 and math.isfinite(args.connect_timeout)):
        raise UsageError("--connect-timeout", f"must be a finite number of seconds > 0, got "
                         f"{args.connect_timeout}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="gtmsim",
        description="Simulate a go-to-market organisation whose boxes are people: see where "
                    "value leaks, and where each team's KPI and the system outcome disagree.",
        epilog="Run 'gtmsim COMMAND --help' for the options of a command.")
    parser.add_argument("--version", action="version", version=f"gtmsim {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser(
        "run", help="run replications and summarise them",
        description="Run replications of a config, print a summary that puts each team's KPI "
                    "beside the system outcome (means with 95% CIs), and write "
                    "replications.parquet, weekly.parquet, summary.json, the resolved "
                    "config.toml, report.html and mechanism_costs.parquet (unless "
                    "--no-mechanism-costs, or no human mechanism is on, as under --profile "
                    "ideal) into an output folder.")
    _add_config_args(p)
    _add_run_args(p, "default: the config's run.replications")
    p.add_argument("--out", metavar="DIR",
                   help="output folder, new or empty (default: a new folder under runs/)")
    p.add_argument("--event-log", action="store_true",
                   help="also write event_log.parquet (one row per activity; only the SimPy "
                        "engine traces every activity, so it runs on it, in --workers processes)")
    p.add_argument("--workers", type=positive_count, default=None, metavar="W",
                   help="threads (numba) or worker processes (simpy) (default: the number of "
                        f"CPUs this process may use, {usable_cores()})")
    p.add_argument("--no-mechanism-costs", action="store_true",
                   help="skip the bookings each human mechanism costs (the run again with each "
                        "mechanism off, one at a time, on min(N, 64) paired replications)")
    _add_png_arg(p)
    p.set_defaults(handler=cmd_run)

    p = sub.add_parser(
        "validate", help="check a config and describe it",
        description="Check a config (with a profile and --set overrides applied) and describe "
                    "it in a paragraph, or explain in one line what is wrong.")
    _add_config_args(p, optional_config=False)
    p.set_defaults(handler=cmd_validate)

    p = sub.add_parser(
        "eventlog", help="export an event log for process mining",
        description="Simulate on the SimPy engine (the one that traces every activity) and "
                    "export one row per activity instance (replication, case, activity, "
                    "resource, start, end, outcome) with XES column names, as CSV or Parquet "
                    "by the suffix of --out, written a replication at a time (memory holds "
                    "one). It covers the whole run, warm-up included: a lead's case opens "
                    "with an '<entry stage>:arrived' row at its arrival (its channel as the "
                    "resource, and as case:channel on every row), and a leaked lead's case "
                    "ends in a '<stage>:leaked' row whose outcome names the cause.")
    _add_config_args(p)
    _add_run_args(p, "default: 1", engine=False)  # the SimPy engine: it traces every activity
    p.add_argument("--out", required=True, metavar="FILE",
                   help="the file to write: *.csv or *.parquet (replaced, once the log is whole, "
                        "if it exists)")
    p.set_defaults(handler=cmd_eventlog)

    p = sub.add_parser(
        "optimize", help="search for a design that holds up under human variability",
        description="Search the config's design levers with Optuna, scoring each design by a "
                    "robust statistic of its outcome over scenarios of the profile's uncertain "
                    "human-variability values and the config's uncertain market (common random "
                    "numbers), then re-evaluate the "
                    "top designs on held-out scenarios. The study persists in the output "
                    "folder (or --storage): the same command resumes an interrupted search.")
    _add_config_args(p)
    p.add_argument("--objective", default="cvar10", metavar="NAME",
                   help="mean, p10, cvar10 (mean of the worst 10%%), regret, satisficing, or "
                        "two joined by a comma for a Pareto front (e.g. mean,cvar10 or "
                        "mean,cost) (default: cvar10)")
    p.add_argument("--outcome", default="bookings", metavar="COLUMN",
                   help="the outcome to maximise: bookings (default), pipeline_created, "
                   "opportunities, win_rate, leads_created, a fate (won, retained, ...), "
                   "util_TEAM, kpi_TEAM or kpi_attainment_TEAM")
    p.add_argument("--target", type=float, default=None, metavar="X",
                   help="the outcome a scenario must reach (satisficing; what-breaks-it)")
    p.add_argument("--trials", type=positive_count, default=50, metavar="N",
                   help="designs to try, in total across resumes (default: 50)")
    p.add_argument("--scenarios", type=scenario_count, default=16, metavar="K",
                   help="scenarios each design is scored on (default: 16)")
    p.add_argument("--held-out", type=scenario_count, default=None, metavar="K",
                   help="fresh scenarios for the final re-evaluation (default: --scenarios)")
    p.add_argument("--top", type=positive_count, default=5, metavar="N",
                   help="designs re-evaluated on the held-out scenarios (default: 5)")
    p.add_argument("--replications", type=replication_count, default=2, metavar="R",
                   help="replications per scenario (default: 2)")
    p.add_argument("--seed", type=root_seed, default=0, metavar="S", help="root seed (default: 0)")
    _add_engine_arg(p)
    p.add_argument("--workers", type=positive_count, default=None, metavar="W",
                   help="threads (numba) or worker processes (simpy) per evaluation "
                        "(default: every CPU on numba, 1 on simpy)")
    p.add_argument("--storage", metavar="URL",
                   help="Optuna storage: a .journal file or a database URL such as "
                        "sqlite:///study.db or postgresql://... (default: a journal file in "
                        "the output folder)")
    p.add_argument("--study-name", default="gtmsim", metavar="NAME",
                   help="the study's name in the storage (default: gtmsim)")
    p.add_argument("--compare-ideal", action="store_true",
                   help="also optimise under the ideal profile and compare the two winners on "
                        "the held-out scenarios of this profile")
    p.add_argument("--ideal-trials", type=int, default=None, metavar="N",
                   help="trials of the short search under `ideal` whose winner is enqueued as "
                        "a baseline (default: a quarter of --trials, at least 10; 0: none); "
                        "with --compare-ideal, of the search under `ideal` whose winner is "
                        "compared (default: --trials)")
    p.add_argument("--no-prune", action="store_true", help="evaluate every design fully")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="a Dask scheduler (tcp://host:port): this process stays the one "
                        "driver and evaluates several trials' scenarios at once on the cluster "
                        "(the short search under `ideal` for the baseline runs in this process)")
    _add_connect_timeout_arg(p)
    p.add_argument("--out", metavar="DIR",
                   help="output folder; reused to resume (default: runs/optimize-CONFIG-"
                        "PROFILE-OBJECTIVE)")
    _add_png_arg(p)
    p.set_defaults(handler=cmd_optimize)

    p = sub.add_parser(
        "sweep", help="run a grid of designs and profiles, on Dask",
        description="Run every point of a grid (levers, config values and profiles, as a full "
                    "factorial or a Latin hypercube) for R replications, as Dask tasks on a "
                    "LocalCluster or the scheduler given. Each point lands in OUT/points/ as "
                    "its own parquet file; the same command resumes an interrupted sweep, "
                    "skipping the points already written. The numbers depend only on the seed, "
                    "never on the workers.")
    _add_config_args(p)
    p.add_argument("--grid", required=True, metavar="GRID.toml",
                   help="the grid: [levers] name = [values] or {range = [lo, hi], steps = N}, "
                        "profiles = [...], design = 'factorial' or 'lhs' with points = N")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="a running Dask scheduler, e.g. tcp://10.0.0.5:8786 (default: a "
                        "LocalCluster on this machine)")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="LocalCluster worker processes (default: the CPUs this process may "
                        "use); 0 runs in this process without Dask")
    p.add_argument("--replications", type=replication_count, metavar="R",
                   help="replications per point (default: the config's run.replications)")
    p.add_argument("--seed", type=root_seed, metavar="S",
                   help="root seed (default: the config's run.seed)")
    _add_engine_arg(p)
    p.add_argument("--chunk", type=positive_count, default=None, metavar="N",
                   help="replications per task (default: 64)")
    _add_connect_timeout_arg(p)
    p.add_argument("--out", metavar="DIR",
                   help="output folder; reused to resume (default: runs/sweep-CONFIG-GRID)")
    _add_png_arg(p)
    p.set_defaults(handler=cmd_sweep)

    p = sub.add_parser(
        "compare", help="compare designs (whole configs) side by side, paired by scenario",
        description="Run two or more configs (designs; the first is the baseline) under one or "
                    "more profiles on the same scenarios of the profile's uncertain human "
                    "variability (and the config's uncertain market) and the same seeds (common "
                    "random numbers), and report each "
                    "design's mean (t-interval), P10 and CVaR10 (bootstrap CIs from 20 "
                    "scenarios), each team's KPI "
                    "attainment, leakage, and its difference from the baseline paired by "
                    "scenario. Writes comparison.parquet, summary.json, comparison.txt and "
                    "report.html.")
    p.add_argument("configs", nargs="+", metavar="CONFIG",
                   help="two or more TOML configs; the first is the baseline")
    p.add_argument("--profile", dest="profiles", action="append", default=None,
                   metavar="NAME", help="a profile to compare under (repeatable; default: "
                                        "realistic)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a value in every config (read as TOML, a bare word as a string, "
                        "none as none; repeatable)")
    p.add_argument("--scenarios", type=scenario_count, default=8, metavar="K",
                   help="scenarios per profile (default: 8)")
    p.add_argument("--replications", type=replication_count, default=4, metavar="R",
                   help="replications per scenario (default: 4)")
    p.add_argument("--seed", type=root_seed, default=None, metavar="S",
                   help="root seed (default: the first config's run.seed; an optimize "
                        "run's --seed, default 0, gives its scenarios and scores again)")
    _add_engine_arg(p)
    p.add_argument("--workers", type=positive_count, default=None, metavar="W",
                   help="threads (numba) or worker processes (simpy) per batch (default: "
                        "every CPU on numba, 1 on simpy)")
    p.add_argument("--outcome", default="bookings", metavar="COLUMN",
                   help="the outcome to compare: bookings (default), pipeline_created, "
                   "opportunities, win_rate, leads_created, a fate (won, retained, ...), "
                   "util_TEAM, kpi_TEAM or kpi_attainment_TEAM")
    p.add_argument("--out", metavar="DIR",
                   help="output folder, new or empty (default: runs/compare-CONFIGS)")
    _add_png_arg(p)
    p.set_defaults(handler=cmd_compare)
    parser.commands = sub.choices
    return parser


def _add_png_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--png", action="store_true",
                   help="also write each report figure as figures/NAME.png, for slides (needs "
                        "plotly's static exporter: the png extra, kaleido>=1, and a Chrome or "
                        "Chromium)")


def _version() -> str:
    from gtmsim import __version__

    return __version__


# --------------------------------------------------------------------------- errors and signals


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _fail(message: str, status: int = EXIT_BAD_INPUT) -> NoReturn:
    print(f"gtmsim: error: {_one_line(message)}", file=sys.stderr, flush=True)
    raise SystemExit(status)


def _quiet_broken_pool(args, default=threading.excepthook) -> None:
    """Workers killed on Ctrl-C break the process pool; CPython's pool manager thread may then
    try to fail futures the interrupted `map` already cancelled (InvalidStateError in
    ``terminate_broken``) and print a traceback. Nothing is lost: stay quiet about that one."""
    if args.exc_type is InvalidStateError:
        return
    default(args)


@contextlib.contextmanager
def _signals() -> Iterator[None]:
    """Ctrl-C and SIGTERM in the main process raise; forked workers exit quietly.

    Worker processes are forked with these handlers, so a signal to the whole process group
    (Ctrl-C in a terminal) ends each worker without a traceback; a signal to the main process
    alone also ends its workers, so the run stops at once instead of finishing the batch.
    """
    main_pid = os.getpid()
    again_soon: list[threading.Timer] = []  # signals swallowed in a C callback, sent again

    def handler(signum, frame):
        if os.getpid() != main_pid:
            os._exit(128 + signum)
        if _DEFERRED is not None:  # a set of files is being put in place: after it
            _DEFERRED.append(signum)
            return
        for timer in again_soon:  # stopping now: a swallowed one sent again would stop the
            timer.cancel()        # clean-up, or come after gtmsim's line
        threading.excepthook = _quiet_broken_pool
        for child in multiprocessing.active_children():
            if child.name.startswith(_DASK_WORKER):
                continue  # its nanny would start another; the cluster's close stops it
            with contextlib.suppress(Exception):
                os.kill(child.pid, signal.SIGTERM)
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise _Terminated

    def unraisable(u, previous=sys.unraisablehook) -> None:
        """A signal's exception raised inside a C callback (numba's compiler reports each
        compiled object through one) is swallowed there, printed as 'Exception ignored' and
        the compile goes on, or fails later with a traceback: deliver it again, so it is
        raised where Python code runs next."""
        if isinstance(u.exc_value, KeyboardInterrupt | _Terminated):
            again = signal.SIGINT if isinstance(u.exc_value, KeyboardInterrupt) else signal.SIGTERM
            # from another thread, a moment later: delivered now, the handler would run in
            # this hook, and its exception would be swallowed here in turn
            timer = threading.Timer(0.05, _thread.interrupt_main, (again,))
            again_soon.append(timer)
            timer.start()
            return
        previous(u)

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    old_hook, sys.unraisablehook = sys.unraisablehook, unraisable
    try:
        yield
    finally:
        for timer in again_soon:  # the command is over: nothing is left to stop
            timer.cancel()
        sys.unraisablehook = old_hook
        if not _STOP.get("ignoring"):  # stopping, as said: signals stay ignored (_tell)
            for s, h in old.items():
                signal.signal(s, h)


# the name a Dask nanny gives the worker process it runs (and restarts when it dies)
_DASK_WORKER = "Dask Worker process"

# signals that arrived while a set of output files was put in place (None: not deferring)
_DEFERRED: list[int] | None = None


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait until the block ends (a few renames), then stop as usual: a
    set of files is replaced whole or not at all."""
    global _DEFERRED
    _DEFERRED = []
    try:
        yield
    finally:
        pending, _DEFERRED = _DEFERRED, None
        if pending:
            os.kill(os.getpid(), pending[0])


# --------------------------------------------------------------------------- writing outputs


def _slug(*parts: str) -> str:
    """A folder name from `parts`, each cut to 40 characters on its own: a long config name
    must not cut off the profile or objective that tell two studies' folders apart."""
    cut = [re.sub(r"[^a-z0-9]+", "-", p.lower()).strip("-")[:40].strip("-") for p in parts]
    return "-".join(c for c in cut if c) or "run"


def _compare_slug(labels: list[str], most: int = 100) -> str:
    """compare's default folder name, `_slug("compare", *labels)` while it fits in `most`
    characters, then how many designs more (seven long names made a name the file system
    refused, after every design had run)."""
    parts = [_slug(label) for label in labels if _slug(label) != "run" or label == "run"]
    name = "compare"
    for i, part in enumerate(parts):
        rest = len(parts) - i - 1
        if i and len(f"{name}-{part}") + (len(f"-and-{rest}-more") if rest else 0) > most:
            return f"{name}-and-{rest + 1}-more"
        name = f"{name}-{part}"
    return name


def _check_out_name(out: Path) -> None:
    """Refuse at once an --out the file system cannot hold (a folder name over its limit,
    255 bytes on most): os.stat raised ENAMETOOLONG from the first check of every command,
    a traceback."""
    try:
        most = os.pathconf(out.absolute().anchor or "/", "PC_NAME_MAX")
    except (OSError, ValueError):
        most = 255
    for part in out.parts:
        size = len(part.encode())
        if size > most:
            shown = part if len(part) <= 40 else part[:37] + "..."
            raise UsageError("--out", f"the name {shown!r} is {size} bytes; this file system "
                             f"takes at most {most}")
    if len(str(out.absolute()).encode()) >= 4096:
        raise UsageError("--out", "the path is too long for the file system")


def _default_out(config_path: str | None) -> Path:
    from gtmsim.config.loader import DEFAULT_CONFIG

    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path("runs") / f"{stamp}-{_slug(Path(config_path or DEFAULT_CONFIG).stem)}"
    out, i = base, 2
    while out.exists():
        out = base.with_name(f"{base.name}-{i}")
        i += 1
    return out


def _followed(out: Path) -> Path:
    """The folder a symbolic link `out` names (the run fills that folder; a rename cannot
    replace the link with a folder), `.` as the folder's own path (rmdir('.') is refused),
    else `out`."""
    if out.is_symlink() and out.is_dir():
        return Path(os.path.realpath(out))
    return Path(os.path.abspath(out)) if out.name in ("", "..") else out


def _through_link(out: Path) -> Path:
    """The file a link `out` names, to write (`latest.csv -> logs/jan.csv`: renamed onto,
    the link became a plain file and its target kept the old contents), else `out`. A link
    to something other than a file (/dev/null, a FIFO) is refused: the rename would replace
    it with a file."""
    if not out.is_symlink():
        return out
    real = Path(os.path.realpath(out))
    if real.exists() and not real.is_file():
        raise UsageError("--out", f"{out} leads to {real}, which is not a file; give a file "
                         "name")
    return real


def _check_out_dir(out: Path) -> None:
    out = _followed(out)
    if out.exists() and not out.is_dir():
        raise UsageError("--out", f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        raise UsageError("--out", f"{out} exists and is not empty; give a new folder")
    if out.is_dir() and os.path.ismount(out):
        # the results are renamed onto --out as a whole, which a mount point (a container's
        # volume) refuses: found only after every replication had run
        raise UsageError("--out", f"{out} is a mount point, which a finished run cannot be "
                         f"renamed onto; give a folder inside it ({out / 'run'})")
    _check_parent(_existing_parent(out))


def _check_parent(parent: Path) -> None:
    """`--out` can be made in `parent` (the nearest folder above it that exists)."""
    if not parent.is_dir():
        raise UsageError("--out", f"{parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError("--out", f"cannot write in {parent}")
    try:  # as root os.access says yes to /proc and /sys; making a folder there says no
        os.rmdir(tempfile.mkdtemp(prefix=".gtmsim-probe.", dir=parent))
    except OSError as exc:
        raise cannot_write(parent, exc, "cannot write in") from None


def _existing_parent(path: Path) -> Path:
    p = path.absolute().parent
    while not p.exists():
        p = p.parent
    return p


def _make_parents(folder: Path, made: list[Path] | None = None) -> list[Path]:
    """mkdir -p that remembers what it made (in `made`, as each is made, so an interruption
    midway loses none), to take it back if the run fails."""
    made = [] if made is None else made
    for p in reversed([folder, *folder.parents]):
        if not p.exists():
            p.mkdir()
            made.append(p)
    return made


# outputs renamed into place in full by this process (see _stopped)
_WRITTEN: list[Path] = []
# a command that keeps what it wrote (optimize's study, sweep's points) and has begun to write
_BEGUN: set[str] = set()


@contextlib.contextmanager
def staged(target: Path, is_dir: bool, unique: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to `target`; rename it onto `target` when the block ends.

    On any error or interruption the temporary path (and any parent folder made for it)
    is removed, so `target` is either complete or absent. With `unique` (a default folder
    the user did not name) a folder that appeared meanwhile (another run started in the same
    second) is left alone and the next free name taken: `_WRITTEN[-1]` says which.
    """
    made: list[Path] = []
    tmp: Path | None = None
    target = _followed(target) if is_dir else _through_link(target)
    try:
        made = _make_parents(target.absolute().parent)
        parent = target.absolute().parent
        if is_dir:
            tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial",
                                        dir=parent))
        else:
            fd, name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".partial"
                                        f"{target.suffix}", dir=parent)
            os.close(fd)
            tmp = Path(name)
        os.chmod(tmp, (0o777 if is_dir else 0o666) & ~_umask())
        yield tmp
        if unique:
            target = _rename_free(tmp, target)
        else:
            if is_dir and target.is_dir():
                target.rmdir()  # checked empty before the run
            os.replace(tmp, target)
        tmp = None
        _WRITTEN.append(target)
    except BaseException:
        if tmp is not None:
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    tmp.unlink()
        for p in reversed(made):
            with contextlib.suppress(OSError):
                p.rmdir()
        raise


def _rename_free(tmp: Path, target: Path) -> Path:
    """Rename folder `tmp` to `target`, or to `target-2`, `-3`, ... if that is taken; a
    rename never replaces a folder with something in it, so two runs cannot take one name."""
    name, i = target, 2
    while True:
        try:
            if not name.exists():
                os.rename(tmp, name)
                return name
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
        name = target.with_name(f"{target.name}-{i}")
        i += 1


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _jsonable(value: Any) -> Any:
    from gtmsim.report.export import jsonable

    return jsonable(value)


def config_toml(config) -> str:
    """The config as TOML, loadable again to the same config (people values only where they
    differ from its profile's: see `to_table`)."""
    import tomli_w

    from gtmsim.config.loader import to_table

    return tomli_w.dumps(to_table(config))


# --------------------------------------------------------------------------- commands


def _load(args):
    from gtmsim.spec import compile_spec

    config = _load_config(args)
    spec = compile_spec(config)
    return config, spec


def _note_unreached(stage: str, teams: Iterable[str], where: str = "") -> None:
    names = " or ".join(repr(team) for team in teams)
    print(f"gtmsim: note: no channel, route or nurture return leads to stage {stage!r}"
          f"{where}: team {names} does no work there", file=sys.stderr, flush=True)


def _load_config(args, note_budget: bool = True):
    """The config of `args`, with a note on stderr for each --set of a people value whose
    mechanism is off (under `--profile ideal`, say): it changes nothing, and would otherwise
    pass without a word. A design over the budget is noted too, unless the caller refuses it
    (optimize: `search.prepare`)."""
    from gtmsim.config import load_config
    from gtmsim.config.loader import over_budget, unreached_stages
    from gtmsim.mechanisms import enabled_mechanisms

    config = load_config(args.config, args.profile, list(args.overrides))
    for name in unreached_stages(config):
        _note_unreached(name, [config.stages[name].team])
    budget = over_budget(config)
    if budget and note_budget:
        print(f"gtmsim: note: design.annual_budget: {budget}; the optimiser would not choose "
              "this design", file=sys.stderr, flush=True)
    _note_people_off(args.overrides, enabled_mechanisms(config),
                     f"under profile {config.profile!r}")
    return config


def _note_people_off(overrides: Iterable[str], on: Iterable[str], where: str) -> None:
    """A note on stderr for each --set of a people value whose mechanism is not among `on`
    (under `--profile ideal`, say): it changes nothing, and would otherwise pass without a
    word. `where` says where it is off ("under profile 'ideal'", "at every point")."""
    from gtmsim.config.loader import parse_override

    on = set(on)
    for item in overrides:
        parts, value = parse_override(item)
        keys = ([parts[2]] if len(parts) > 2 else
                list(value) if len(parts) == 2 and isinstance(value, dict) else [])
        if (parts[0] == "people" and any(key != "enabled" for key in keys)
                and parts[1] not in on):
            print(f"gtmsim: note: --set {item.split('=', 1)[0].strip()} changes nothing: "
                  f"{parts[1]} is off {where} (--set people.{parts[1]}.enabled=true switches "
                  "it on)", file=sys.stderr, flush=True)


def _console(**kwargs):
    """A rich console whose broken pipe (`gtmsim run | head`) is a BrokenPipeError for
    `main` to end quietly with status 0; rich's own answer is SystemExit(1)."""
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            self.quiet = True
            raise BrokenPipeError

    return _Console(**kwargs)


def _progress_bar(total: int, label: str, unit: str = "replications"):
    from rich.markup import escape
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = _console(stderr=True)
    # the count, unit and both times, each column a space apart; in a narrow terminal the bar
    # goes first, then the label and the eta, so the count is never cut ('1234/…' at 60
    # columns, '0…' at 40)
    count = [MofNCompleteColumn(), TextColumn(unit), TimeElapsedColumn()]
    eta = [TextColumn("eta"), TimeRemainingColumn()]
    need = 2 * len(str(total)) + 1 + len(unit) + 7 + 2
    columns: list = [*count, *eta] if console.width >= need + 12 else count
    room = console.width - need - 13
    if room >= 33:  # a 20-column bar and 12 columns of the label at least
        columns.insert(0, BarColumn(bar_width=20))
        room -= 21
    if room >= 8:
        if len(label) > room:
            label = label[:room - 1] + "…"
        columns.insert(0, TextColumn("[bold]{task.description}"))
    bar = Progress(*columns, console=console, transient=False, disable=not console.is_terminal)
    task = bar.add_task(escape(label), total=total)
    return bar, (lambda done, n: bar.update(task, completed=done, total=n))


def cmd_run(args) -> int:
    from gtmsim.simulate import simulate

    config, spec = _load(args)
    n = args.replications or config.run.replications
    seed = args.seed if args.seed is not None else config.run.seed
    # the event log comes from the SimPy engine, the one that traces every activity
    engine = args.engine or ("simpy" if args.event_log else _default_engine())
    if args.event_log and engine == "numba":  # in the command line's words, not the API's
        raise UsageError("--event-log", "the numba engine writes no event log; use --engine "
                         "simpy")
    workers = args.workers or usable_cores()
    out = Path(args.out) if args.out else _default_out(args.config)
    _check_out_dir(out)
    if args.png:
        _check_png()

    bar, progress = _progress_bar(n, f"{config.name[:40]} ({config.profile}, {engine})")
    with bar:
        res = simulate(spec, n, seed, engine, workers, progress, args.event_log)
    res.config = config
    summary = res.summary()
    costs, costs_note, designed = _run_mechanism_costs(args, config, res, n, seed, engine,
                                                       workers)

    meta = {"config": config.name, "config_file": str(args.config) if args.config else None,
            "profile": config.profile, "seed": seed, "replications": n, "engine": engine,
            "workers": res.workers, "overrides": list(args.overrides),
            "event_log": args.event_log,
            "warmup_days": config.run.warmup_days, "horizon_days": config.run.horizon_days,
            "gtmsim_version": _version(), "created": datetime.now().isoformat(timespec="seconds")}
    try:
        with staged(out, is_dir=True, unique=not args.out) as tmp:
            write_parquet(res.replications, tmp / "replications.parquet")
            write_parquet(res.weekly, tmp / "weekly.parquet")
            if res.event_log is not None:
                write_parquet(res.event_log, tmp / "event_log.parquet")
            # with the seed and count this run used, so the file alone reruns it
            ran = config.model_copy(update={"run": config.run.model_copy(
                update={"seed": seed, "replications": n})})
            (tmp / "config.toml").write_text(config_toml(ran), encoding="utf-8")
            doc = {"meta": meta, "summary": summary.to_dicts()}
            from gtmsim.report.run import flow_routing, mechanism_cost_rows, run_report

            if costs is not None:
                write_parquet(costs, tmp / "mechanism_costs.parquet")
            doc["mechanism_costs"] = mechanism_cost_rows(costs) if costs is not None else None
            doc["as_designed"] = designed
            (tmp / "summary.json").write_text(
                json.dumps(_jsonable(doc), indent=2, allow_nan=False) + "\n", encoding="utf-8")
            (tmp / "report.html").write_text(
                run_report(res.replications, res.weekly, summary, meta, list(config.teams),
                           costs, costs_note, flow_routing(config), designed),
                encoding="utf-8")
            if args.png:
                from gtmsim.report.run import run_figures

                _write_pngs(run_figures(res.replications, res.weekly, summary,
                                        list(config.teams), costs, flow_routing(config),
                                        designed),
                            tmp / "figures")
    except OSError as exc:
        raise cannot_write(out, exc) from None

    print_summary(config, summary, meta, _WRITTEN[-1], console=_console(), costs=costs,
                  designed=designed)
    return 0


def _check_png() -> None:
    """--png: plotly's static exporter must be there before anything is simulated."""
    from gtmsim.report.export import png_unavailable

    why = png_unavailable()
    if why:
        raise UsageError("--png", why)


def _write_pngs(figures: dict, folder: Path) -> None:
    """Each figure as folder/NAME.png; an exporter failure is one line, not a traceback."""
    from gtmsim.report.export import write_pngs

    try:
        with _exporter_warnings_held():
            write_pngs(figures, folder)
    except OSError:
        raise
    except Exception as exc:  # kaleido's own errors (the browser failed to start, ...)
        raise ExportFailed(f"--png: the static exporter failed: {_exporter_said(exc)}") from None


_EXPORTER_LOGGERS = ("kaleido", "choreographer", "logistro")


@contextlib.contextmanager
def _exporter_warnings_held() -> Iterator[None]:
    """The static exporter's log records held back while it runs: Python printed its
    warnings ("Wait expired, Browser is being closed by watchdog.") ahead of gtmsim's one
    line on a failure, which then says it all. After a success they are passed on."""
    import logging

    held: list[logging.LogRecord] = []

    class Hold(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            held.append(record)

    hold = Hold()
    loggers = [logging.getLogger(name) for name in _EXPORTER_LOGGERS]
    before = [logger.propagate for logger in loggers]
    for logger in loggers:
        logger.addHandler(hold)
        logger.propagate = False
    try:
        yield
    finally:
        for logger, propagate in zip(loggers, before, strict=True):
            logger.removeHandler(hold)
            logger.propagate = propagate
    for record in held:  # not reached on a failure
        logging.getLogger(record.name).handle(record)


def _exporter_said(exc: Exception) -> str:
    """A static exporter's error in one line: kaleido's hold a paragraph as several strings
    (printed whole, a Python tuple), whose first says what happened; the browser it drove
    is named, since BROWSER_PATH chooses another."""
    from gtmsim.report.export import find_browser

    first = next((str(a) for a in exc.args if str(a).strip()), type(exc).__name__)
    said = " ".join(first.split())
    browser = find_browser()
    return f"{said} (browser: {browser}; BROWSER_PATH names another)" if browser else said


def _write_png_folder(figures: dict, folder: Path) -> None:
    """figures/ replaced as a whole (a resumed command's folder too): the PNGs are written in
    a temporary folder beside it, which is then renamed into place."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".partial",
                                dir=folder.parent))
    old = None
    try:
        os.chmod(tmp, 0o777 & ~_umask())
        _write_pngs(figures, tmp)
        if folder.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".old",
                                        dir=folder.parent))
            os.replace(folder, old / folder.name)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        _drop_figures(folder)  # the previous results' PNGs: the report beside them is new
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def _drop_figures(folder: Path) -> None:
    """Remove the figures/ an earlier --png run left: a resumed command's folder is replaced
    as a whole, and PNGs of other results beside the new report would be read as its. The
    folder is renamed aside first, so it is there in full or gone (aside, under a name a
    rerun accepts in its folder)."""
    if not folder.is_dir():
        return
    old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".partial",
                                dir=folder.parent))
    try:
        os.replace(folder, old / folder.name)
    finally:
        shutil.rmtree(old, ignore_errors=True)


def _run_mechanism_costs(args, config, res, n: int, seed: int, engine: str, workers: int):
    """The mechanism-cost table for `run` (or None), a note for the report (or None), and
    the run with every mechanism off at once, as designed (`as_designed`; or None)."""
    from gtmsim.mechanisms import (
        MAX_REPLICATIONS,
        TOGETHER,
        as_designed,
        enabled_mechanisms,
        mechanism_costs,
    )
    from gtmsim.simulate import notice, simulate
    from gtmsim.spec import compile_spec

    if args.no_mechanism_costs:
        return None, "Mechanism costs were skipped (--no-mechanism-costs).", None
    mechs = enabled_mechanisms(config)
    if not mechs:
        note = (f"No human mechanism is enabled (profile {config.profile!r}), so none costs "
                "anything; the mechanism-cost figure is left out.")
        notice(f"no human mechanism is enabled (profile {config.profile!r}); skipping the "
               "mechanism costs")
        return None, note, None
    m = min(n, MAX_REPLICATIONS)
    # the SimPy engine is far too slow for 13 x 64 replications; the numba engine runs the
    # same model (and the full run is then repeated on it, so the pairs share an engine)
    cost_engine = "numba" if engine == "simpy" and "numba" in _engines() else engine
    note = None if cost_engine == engine else (
        f"Mechanism costs were computed on the {cost_engine} engine.")
    # and, for two or more, all of them off at once: what they cost together
    runs = len(mechs) + (len(mechs) > 1)
    bar, progress = _progress_bar(m * runs, f"mechanism costs ({runs} x {m})")
    off: dict = {}
    with bar:
        # the run's first m again on the cost engine where it differs: the pairs share one
        full = (res.replications if cost_engine == engine else
                simulate(compile_spec(config), m, seed, cost_engine, workers).replications)
        costs = mechanism_costs(config, m, seed, cost_engine, workers, progress, full=full,
                                together=True, off_runs=off)
    # the run with every mechanism off: all together, or the one mechanism's own
    ideal = off.get(TOGETHER, off[mechs[0]] if len(mechs) == 1 else None)
    designed = (as_designed(ideal, cost_engine, full, repeated=cost_engine != engine)
                if ideal is not None else None)
    return costs, note, designed


def cmd_validate(args) -> int:
    config, _spec = _load(args)
    print(f"OK: {args.config}")
    print(textwrap.fill(describe_config(config, _spec), width=100))
    return 0


def cmd_eventlog(args) -> int:
    from gtmsim.simulate import write_event_log

    out = Path(args.out)
    suffix = out.suffix.lower()
    if out.name.lower() in (".csv", ".parquet"):  # a hidden file's name, with no suffix
        raise UsageError("--out", f"{out.name!r} is only a suffix; give the file a name "
                         f"(log{out.name})")
    if suffix not in (".csv", ".parquet"):
        raise UsageError("--out", f"expected a file ending in .csv or .parquet, got {out.name!r}")
    if out.is_dir() or os.path.basename(args.out) != out.name:  # log.csv/ or log.csv/.
        raise UsageError("--out", f"{args.out} is a folder; give a file name")
    _check_parent(_existing_parent(_through_link(out)))
    config, spec = _load(args)
    n = args.replications or 1
    seed = args.seed if args.seed is not None else config.run.seed
    bar, progress = _progress_bar(n, f"event log: {config.name[:40]}")
    try:
        with bar, staged(out, is_dir=False) as tmp:
            rows = write_event_log(spec, n, seed, tmp, progress, suffix[1:])
    except OSError as exc:
        raise cannot_write(out, exc) from None
    print(f"wrote {rows:,} activity rows from {counted(n, 'replications')} to {out}")
    return 0


def _write_set(folder: Path, files: dict[str, Callable[[Path], None]], stale: str) -> None:
    """Write `files` (name -> writer) into `folder` as one set: each into a staging folder
    first (a full disk stops the set before any file is replaced), then all renamed into
    place with Ctrl-C and SIGTERM held back for those renames, and the folder's files
    matching `stale` that the set does not hold removed (a rerun's set never mixes with the
    last one's)."""
    stage = Path(tempfile.mkdtemp(prefix=".outputs.", suffix=".partial", dir=folder))
    try:
        for name, write in files.items():
            write(stage / name)
            os.chmod(stage / name, 0o666 & ~_umask())
        with _signals_deferred():
            for name in files:
                os.replace(stage / name, folder / name)
            for old in folder.glob(stale):
                if old.name not in files:
                    old.unlink()
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _write_file(path: Path, write) -> None:
    """Write one output file atomically (a temporary file renamed into place)."""
    with staged(path, is_dir=False) as tmp:
        write(tmp)


def cmd_optimize(args) -> int:
    from gtmsim.optimize.search import Settings, shown_url

    config = _load_config(args, note_budget=False)
    settings = Settings(objective=args.objective, outcome=args.outcome, trials=args.trials,
                        scenarios=args.scenarios, replications=args.replications,
                        held_out=args.held_out, top=args.top, target=args.target,
                        seed=args.seed, engine=args.engine or _default_engine(),
                        workers=args.workers, prune=not args.no_prune,
                        storage=args.storage, study_name=args.study_name,
                        ideal_trials=(0 if args.compare_ideal else args.ideal_trials
                                      if args.ideal_trials is not None
                                      else max(10, args.trials // 4)))
    settings.check()
    if args.compare_ideal and args.ideal_trials is not None and args.ideal_trials < 1:
        raise UsageError("--ideal-trials", f"with --compare-ideal, the trials of the search "
                         f"under ideal whose winner is compared: at least 1, got "
                         f"{args.ideal_trials}")
    check_scored_outcome(args.outcome, config)
    if args.png:
        _check_png()
    out = Path(args.out) if args.out else Path("runs") / _slug(
        "optimize", Path(args.config or "b2b_saas").stem, Path(config.profile).stem,
        args.objective)
    if args.compare_ideal and args.scheduler:
        raise UsageError("--scheduler", "runs the robust search alone; drop --compare-ideal "
                         "or --scheduler")
    if args.scheduler and args.workers is not None:
        raise UsageError("--workers", "give --workers or --scheduler, not both (the cluster's "
                         "workers evaluate the trials)")
    _check_connect_timeout(args)
    _check_optimize_out(out, args.storage)
    # the short search under `ideal` for the baseline comes first, on the same bar
    if args.compare_ideal:  # both searches' trials, the one under ideal first
        total = args.trials + (args.ideal_trials if args.ideal_trials is not None
                               else args.trials)
    else:
        total = args.trials + settings.ideal_trials
    journal = out / "study.journal"
    new_journal = not args.storage and not journal.exists()
    before = _studies_in(args.storage) if args.storage else None
    _BEGUN.add("optimize")  # after the look at --storage: a Ctrl-C there had kept nothing
    made: list[Path] = []  # the folders made for --out, filled as each is made
    try:
        # made inside the clean-up below: a signal right after the mkdir left the folder
        try:
            _make_parents(out, made)
        except OSError as exc:  # as root os.access says yes to /sys; mkdir says no
            raise cannot_write(out, exc, "cannot create") from None
        bar, progress = _progress_bar(total, f"optimise {config.name[:30]} "
                                             f"({config.profile})", "trials")
        result, best, cmp = _optimize(args, config, settings, out, bar, progress)
    except GtmsimError as exc:
        # refused before a study was written, or as its first trial ran (an --outcome
        # undefined in every replication of a scenario): a new study with no trial finished
        # holds nothing to resume, and kept, it refused the corrected command as scored on
        # other terms. A run that stopped (exit 1) keeps its study.
        empty = not (journal.is_file() and journal.stat().st_size)
        stopped = isinstance(exc, Stopped)
        refused = (new_journal and not stopped and not _holds_finished_trial(journal))
        if before is not None and not stopped:
            _drop_new_studies(args.storage, before,
                              [settings.study_name, f"{settings.study_name}-ideal"])
        if made and (empty or refused):
            _drop_new_study(out, made)
        elif refused:
            _drop_new_study(out, [])
        raise
    except BaseException as exc:
        stop = _interruption(exc)
        if stop is None:
            raise
        word = "interrupted" if isinstance(stop, KeyboardInterrupt) else "terminated"
        # stopped before a design finished (Ctrl-C on seeing a wrong flag): as for a refused
        # start, a study this run made holds nothing to resume, and kept, it refused the
        # corrected command as scored on other terms
        if new_journal and not _holds_finished_trial(journal):
            _drop_new_study(out, made)
            nothing = True
        else:
            nothing = before is not None and _drop_new_studies(
                args.storage, before, [settings.study_name, f"{settings.study_name}-ideal"])
            for p in reversed(made):  # with --storage, made for reports not yet written
                with contextlib.suppress(OSError):
                    p.rmdir()
        if nothing:
            _tell(f"gtmsim: {word}; nothing was written (no design had finished)", stop)
        else:
            kept = shown_url(args.storage) if args.storage else out
            _tell(f"gtmsim: {word}; the study so far is kept in {kept}: the same command "
                  "resumes it", stop)
        return _exit_code(stop)
    _write_optimize(args, config, settings, out, result, best, cmp)
    return 0


def _drop_new_study(out: Path, made: list[Path]) -> None:
    """Remove a study journal that holds nothing to resume: with the folders this run `made`
    for it (the output folder among them), else only the journal and its lock."""
    if made:
        shutil.rmtree(out, ignore_errors=True)
        for p in reversed(made):  # out itself is gone; a mkdir that stopped short made less
            with contextlib.suppress(OSError):
                p.rmdir()
        return
    for p in out.glob("study.journal*"):
        with contextlib.suppress(OSError):
            p.unlink()


def _holds_finished_trial(journal: Path) -> bool:
    """Whether a study journal holds a finished (complete or pruned) trial of any study;
    True when it cannot be read (kept, then, rather than lost)."""
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    from gtmsim.optimize.search import FINISHED

    if not journal.is_file():
        return False
    try:
        storage = JournalStorage(JournalFileBackend(str(journal)))
        return any(storage.get_all_trials(s._study_id, deepcopy=False, states=FINISHED)
                   for s in storage.get_all_studies())
    except Exception:  # noqa: BLE001 - in doubt, keep the study
        return True


def _studies_in(url: str) -> set[str] | None:
    """The names of the studies in a --storage, or None when it cannot be opened (the
    search then says why)."""
    from gtmsim.optimize.search import open_storage

    try:
        return {s.study_name for s in open_storage(url, None).get_all_studies()}
    except GtmsimError:
        return None


def _drop_new_studies(url: str, before: set[str], names: list[str]) -> bool:
    """Delete the studies of `names` this run made in a --storage when none of them holds a
    finished or running trial: as for the output folder's journal, a study refused as its
    first trial ran holds nothing to resume, and kept, it refused the corrected command.
    Whether the storage keeps nothing of this run's: it deleted them, or made none (stopped
    before the first), where none of `names` was there before it."""
    from gtmsim.optimize.search import TAKEN, open_storage

    try:
        storage = open_storage(url, None)
        made = {s.study_name: s._study_id for s in storage.get_all_studies()
                if s.study_name in names and s.study_name not in before}
        if made and not any(storage.get_all_trials(i, deepcopy=False, states=TAKEN)
                            for i in made.values()):
            for study_id in made.values():
                storage.delete_study(study_id)
            made = {}
    except Exception:  # in doubt, keep the study
        return False
    # a study resumed keeps what this run added to it
    return not made and not any(name in before for name in names)


# what `optimize` writes into its folder (a folder holding anything else is not a study's);
# the journal's lock (and its renamed self, while released) stays behind a killed process
OPTIMIZE_FILES = ("study.journal", "study.journal.lock*", "trials.parquet", "candidates.parquet",
                  "held_out.parquet",
                  "comparison.json", "comparison.txt", "report.html", "figures", "design_*.toml",
                  ".*.partial*")


def _storage_files(storage: str | None, out: Path) -> tuple[str, ...]:
    """The name patterns of a --storage file that lies in the output folder (a journal, or
    an SQLite database with its lock, rollback and WAL files): the folder's own, so a run
    that put its study there can be resumed."""
    if not storage:
        return ()
    path: str | None = storage
    if "://" in storage:
        import sqlalchemy.engine
        import sqlalchemy.exc

        try:
            url = sqlalchemy.engine.make_url(storage)
        except (sqlalchemy.exc.ArgumentError, ValueError):
            return ()
        path = url.database if url.get_backend_name() == "sqlite" else None
    if not path or os.path.abspath(os.path.dirname(path)) != os.path.abspath(out):
        return ()
    import glob

    name = glob.escape(os.path.basename(path))
    return (name, f"{name}.lock*", f"{name}-journal", f"{name}-wal", f"{name}-shm")


def _check_optimize_out(out: Path, storage: str | None = None) -> None:
    if out.exists() and not out.is_dir():
        raise UsageError("--out", f"{out} exists and is not a folder")
    if out.is_dir():
        ours = OPTIMIZE_FILES + _storage_files(storage, out)
        other = sorted(p.name for p in out.iterdir()
                       if not any(p.match(pattern) for pattern in ours))
        if other:
            raise UsageError("--out", f"{out} holds files that are not an optimisation's "
                             f"({', '.join(other[:3])}); give a new folder")
    parent = _existing_parent(out)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError("--out", f"cannot write in {parent}")


def _optimize(args, config, settings, out: Path, bar, progress):
    """The search (or the ideal-vs-robust comparison): (result, best, comparison or None)."""
    from gtmsim.config import load_config
    from gtmsim.optimize.search import search

    with bar:
        if args.compare_ideal:
            from gtmsim.optimize.compare import compare_ideal

            ideal_config = load_config(args.config, "ideal", list(args.overrides))
            cmp = compare_ideal(ideal_config, config, settings, out, target=args.target,
                                ideal_trials=args.ideal_trials, progress=progress)
            result, best = cmp.robust, cmp.robust_best
        elif args.scheduler:
            from gtmsim.sweep import connect, search_on_cluster

            cmp = None
            with connect(args.scheduler, 0, args.connect_timeout) as client:
                result = search_on_cluster(config, settings, client, out, progress=progress,
                                           patience=args.connect_timeout)
            best = result.best
        else:
            cmp = None
            result = search(config, settings, out, progress=progress)
            best = result.best
    return result, best, cmp


def _write_optimize(args, config, settings, out: Path, result, best, cmp) -> None:
    from gtmsim.optimize.levers import apply_design
    from gtmsim.optimize.search import candidates_frame, held_out_frame
    from gtmsim.outcomes import share_kpis
    from gtmsim.report.console import optimize_text
    from gtmsim.report.optimize import optimize_figures, optimize_report, optimize_summary

    shares = share_kpis({n: t.kpi.metric if t.kpi else None for n, t in config.teams.items()})
    report = optimize_summary(result, best, cmp, settings, shares)

    figures = optimize_figures(_jsonable(report), result, best, cmp, settings.objectives)
    page = optimize_report(_jsonable(report), result, best, cmp, settings.objectives,
                           config.name, figures)
    files = {"trials.parquet": lambda p: write_parquet(result.trials_frame(), p),
             "candidates.parquet": lambda p: write_parquet(candidates_frame(result.candidates),
                                                           p),
             "held_out.parquet": lambda p: write_parquet(held_out_frame(result.candidates), p)}
    designs = {"best": best.design}
    if cmp is not None:
        designs = {"robust": cmp.robust_best.design, "ideal_tuned": cmp.ideal_tuned.design}
    for name, design in designs.items():
        text = config_toml(apply_design(config, design))
        files[f"design_{name}.toml"] = lambda p, t=text: p.write_text(t, encoding="utf-8")
    files["comparison.json"] = lambda p: p.write_text(
        json.dumps(_jsonable(report), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    files["comparison.txt"] = lambda p: p.write_text(optimize_text(report), encoding="utf-8")
    files["report.html"] = lambda p: p.write_text(page, encoding="utf-8")
    try:
        _write_set(out, files, stale="design_*.toml")
        if args.png:
            _write_png_folder(figures, out / "figures")
        else:
            _drop_figures(out / "figures")
    except OSError as exc:
        raise cannot_write(out, exc) from None
    print(optimize_text(report))
    print(f"Results in {out}")


def cmd_sweep(args) -> int:
    from gtmsim import sweep

    cpus = usable_cores()  # under taskset or SLURM, not every CPU of the machine
    workers = args.workers if args.workers is not None else cpus
    if workers < 0:
        raise UsageError("--workers", f"must not be negative, got {workers}")
    if workers > 4 * cpus:  # 500 processes on 2 CPUs started for minutes, silently
        raise UsageError("--workers", f"at most {4 * cpus} on the {cpus} CPUs this process may "
                         f"use, got {workers} (each is a process; --scheduler runs on a "
                         "cluster)")
    if args.scheduler and args.workers is not None:
        raise UsageError("--workers", "give --workers or --scheduler, not both")
    _check_connect_timeout(args)
    grid = sweep.load_grid(args.grid)
    plan = sweep.plan_sweep(args.config, args.profile, args.overrides, grid, args.replications,
                            args.seed, args.engine or _default_engine(),
                            args.chunk or sweep.DEFAULT_CHUNK)
    for note in plan.grid.notes:  # a value listed again: one point, not a lost one
        print(f"gtmsim: note: {note}", file=sys.stderr, flush=True)
    _note_people_off(args.overrides, plan.mechanisms_on, "at every point of the grid")
    for name in plan.unreached:  # its team at each point: an axis may move the stage
        teams = dict.fromkeys(p.spec.team_names[p.spec.stage_team[p.spec.stage_names.index(name)]]
                              for p in plan.points)
        _note_unreached(name, teams, " at any point of the grid")
    out = Path(args.out) if args.out else Path("runs") / _slug(
        "sweep", Path(args.config or "b2b_saas").stem, Path(args.grid).stem)
    done = sweep.prepare_out(out, plan, create=False)  # checked before a cluster starts
    if args.png:
        _check_png()
    # in this process, or nothing left to run: a rerun to rebuild the report needs no cluster
    here = (workers == 0 and not args.scheduler) or len(done) == len(plan.points)
    where = ("in this process" if here else
             f"on {args.scheduler}" if args.scheduler else
             f"on a LocalCluster of {counted(workers, 'workers')}")
    total = len(plan.points) * plan.replications
    bar, progress = _progress_bar(total, f"sweep {counted(len(plan.points), 'points')} "
                                         f"({plan.engine})")
    _BEGUN.add("sweep")
    try:
        if here:
            with bar:
                summary = sweep.run_sweep(plan, out, None, progress)
        else:
            if not args.scheduler:  # its processes take seconds each to start
                from gtmsim.simulate import notice

                notice(f"starting {where.removeprefix('on ')}")
            with sweep.connect(args.scheduler, workers, args.connect_timeout) as client:
                with bar:
                    summary = sweep.run_sweep(plan, out, client, progress,
                                              args.connect_timeout)
    except BaseException as exc:
        stop = _interruption(exc)
        if stop is None:
            raise
        word = "interrupted" if isinstance(stop, KeyboardInterrupt) else "terminated"
        if not out.exists():
            _tell(f"gtmsim: {word}; nothing was written", stop)
        else:
            written = len(list((out / sweep.POINTS_DIR).glob("point-*.parquet")))
            _tell(f"gtmsim: {word}; {written} of {len(plan.points)} points are in {out}; "
                  "run the same command to resume", stop)
        return _exit_code(stop)
    from gtmsim.report.sweep import (
        kpi_choices_text,
        leaders_text,
        sweep_figures,
        sweep_report,
        sweep_summary,
    )

    try:  # after every run, a resumed one too: the report covers all the points written
        doc = sweep_summary(out)
        page = sweep_report(out, summary=doc)
        _write_file(out / "report.html", lambda p: p.write_text(page, encoding="utf-8"))
        if args.png:
            _write_png_folder(sweep_figures(doc), out / "figures")
        else:
            _drop_figures(out / "figures")
    except OSError as exc:
        raise cannot_write(out, exc) from None
    print(f"swept {counted(summary.points, 'points')} x "
          f"{counted(plan.replications, 'replications')} {where}: "
          f"{counted(summary.written, 'points')} run ({counted(summary.tasks, 'tasks')}), "
          f"{summary.skipped} already "
          f"done. Results in {out / sweep.POINTS_DIR}; report in {out / 'report.html'}")
    for line in leaders_text(doc) + kpi_choices_text(doc):
        print(line)
    return 0


def cmd_compare(args) -> int:
    from rich.markup import escape

    from gtmsim.mechanisms import enabled_mechanisms
    from gtmsim.optimize.designs import compare_designs, design_labels, load_designs
    from gtmsim.report.compare import (
        compare_figures,
        compare_report,
        comparison_tables,
        comparison_text,
    )

    if len(args.configs) < 2:
        raise UsageError("CONFIG", "give at least two configs to compare (the first is the "
                         "baseline)")
    profiles = list(dict.fromkeys(args.profiles or ["realistic"]))
    configs = load_designs(args.configs, profiles, args.overrides)  # all checked before work
    _note_people_off(args.overrides, {m for cfg in configs.values()
                                      for m in enabled_mechanisms(cfg)},
                     f"in every design under {', '.join(map(repr, profiles))}")
    labels = design_labels(args.configs)
    for (label, _profile), cfg in configs.items():
        check_scored_outcome(args.outcome, cfg, label)
    check_ranked_outcome(args.outcome)
    if args.out:
        out = Path(args.out)
    else:
        out = base = Path("runs") / _compare_slug(labels)
        i = 2
        while out.exists():
            out, i = base.with_name(f"{base.name}-{i}"), i + 1
    _check_out_dir(out)
    if args.png:
        _check_png()
    engine = args.engine or _default_engine()
    total = len(labels) * len(profiles) * args.scenarios * args.replications
    bar, progress = _progress_bar(total, f"compare {len(labels)} designs x {len(profiles)} "
                                         f"profiles ({engine})")
    with bar:
        result = compare_designs(args.configs, profiles, args.overrides, args.scenarios,
                                 args.replications, args.seed, engine, args.workers,
                                 args.outcome, progress=progress, configs=configs)
    doc = result.summary()
    doc["meta"] = {"files": list(args.configs), "profiles": profiles,
                   "scenarios": args.scenarios, "overrides": list(args.overrides),
                   "gtmsim_version": _version(),
                   "created": datetime.now().isoformat(timespec="seconds")}
    text = comparison_text(doc)
    figures = compare_figures(_jsonable(doc))
    try:
        # a default folder another compare took meanwhile is left alone: the next free name
        with staged(out, is_dir=True, unique=not args.out) as tmp:
            write_parquet(result.rows, tmp / "comparison.parquet")
            (tmp / "summary.json").write_text(
                json.dumps(_jsonable(doc), indent=2, allow_nan=False) + "\n", encoding="utf-8")
            (tmp / "comparison.txt").write_text(text, encoding="utf-8")
            (tmp / "report.html").write_text(compare_report(_jsonable(doc), figures),
                                             encoding="utf-8")
            if args.png:
                _write_pngs(figures, tmp / "figures")
    except OSError as exc:
        raise cannot_write(out, exc) from None
    console = _console()
    if not console.is_terminal:  # piped or captured: do not squeeze the tables into 80
        console = _console(width=160)
    for table in comparison_tables(doc):
        print_whole(console, table)
    console.print(f"Results in [bold]{escape(str(_WRITTEN[-1]))}[/bold]")
    return 0


# --------------------------------------------------------------------------- entry point


def main(argv: list[str] | None = None) -> int:
    _STOP.clear()
    _STOP["program"] = argv is None  # not a caller passing argv (a test): see _tell
    try:
        return _main(argv)
    except KeyboardInterrupt as stop:
        # while the flags were read, before _signals; or a second Ctrl-C after _signals,
        # while the first one was told (which stands alone)
        if "told" not in _STOP:
            left = _left(_STOP["args"]) if "args" in _STOP else "nothing was written"
            _tell(f"gtmsim: interrupted; {left}", stop)
        return int(_STOP["code"])


# how far the command got, for main's last-resort Ctrl-C: its parsed flags ("args"), and
# once an interruption has been told, its exit status ("told", "code"); whether it runs as
# the program ("program") and so ignores signals once told ("ignoring")
_STOP: dict[str, object] = {}


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    for arg in sys.argv[1:] if argv is None else argv:
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:  # a byte the locale could not decode: every file gtmsim
            # writes (config.toml, the report) is UTF-8, so it failed there, a traceback
            _fail(f"argument {ascii(arg)} is not valid UTF-8 text")
    args, extra = parser.parse_known_args(argv)
    _STOP["args"] = args
    if extra:  # named by the command's own parser, which knows its options
        parser.commands.get(args.command, parser).error(
            f"unrecognized arguments: {' '.join(extra)}")
    if args.command is None:
        _fail("choose a command: run, validate, eventlog, optimize, sweep or compare ('gtmsim "
              "--help' lists them)")
    if getattr(args, "out", None) == "":
        _fail("--out: must not be empty")
    if getattr(args, "out", None):
        try:
            _check_out_name(Path(args.out))
        except UsageError as exc:
            _fail(str(exc))
    if getattr(args, "scheduler", None) == "":  # an unset $VARIABLE: not "no scheduler"
        _fail("--scheduler: must not be empty (a Dask scheduler's address, e.g. "
              "tcp://10.0.0.5:8786; leave the flag out to run on this machine)")
    _WRITTEN.clear()
    _BEGUN.clear()
    try:
        with _signals():
            code = args.handler(args)
            _flush_stdout()
            return code
    except ConfigError as exc:
        _fail(f"{exc.path}: {exc.message}" if exc.path else exc.message)
    except UsageError as exc:
        _fail(str(exc))
    except Stopped as exc:  # not bad input: it stopped
        print(f"gtmsim: error: {exc}", file=sys.stderr, flush=True)
        return EXIT_FAILED
    except GtmsimError as exc:
        _fail(str(exc))
    except (KeyboardInterrupt, _Terminated) as stop:
        return _stopped(args, stop)
    except BrokenPipeError:  # e.g. `gtmsim run | head`: the reader has gone
        _stdout_to_devnull()
        return 0
    except OSError as exc:
        if exc.errno not in DISK_FULL:  # `gtmsim validate > /dev/full`: one line
            raise
        _stdout_to_devnull()
        print(f"gtmsim: error: cannot write: {exc.strerror}", file=sys.stderr, flush=True)
        return EXIT_FAILED
    except MemoryError:  # not bad input: the machine ran out (a traceback from deep inside)
        _stdout_to_devnull()
        print(f"gtmsim: error: out of memory; {_left(args)} (fewer --replications, a "
              "shorter run.horizon_days or a machine with more memory)", file=sys.stderr,
              flush=True)
        return EXIT_FAILED
    except Exception as exc:
        stop = _interruption(exc)  # a signal that landed in a library's clean-up
        if stop is None:
            raise
        return _stopped(args, stop)


def _flush_stdout() -> None:
    """Flush what the command printed while an error can still be one line (at exit it is a
    traceback)."""
    sys.stdout.flush()


def _stdout_to_devnull() -> None:
    """What is still buffered for stdout goes nowhere at exit (not into a second error)."""
    with contextlib.suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


# what an interrupted command leaves (run, compare and eventlog write nothing until done)
_LEFT_BEHIND = {"optimize": "the study so far is kept: the same command resumes it",
                "sweep": "the points written are kept: the same command resumes"}


def _left(args) -> str:
    """What a command stopped part-way leaves behind, in words."""
    # stopped while its config or grid loaded, an optimisation or sweep had written nothing
    left = (_LEFT_BEHIND[args.command] if args.command in _BEGUN else "nothing was written")
    if _WRITTEN and args.command not in _LEFT_BEHIND:  # it stopped after the output
        left = ", ".join(str(p) for p in _WRITTEN) + " had been written in full"
    return left


def _stopped(args, stop: BaseException) -> int:
    if "told" not in _STOP:  # a second signal while the first was told: that line stands
        word = "interrupted" if isinstance(stop, KeyboardInterrupt) else "terminated"
        _tell(f"gtmsim: {word}; {_left(args)}", stop)
    return int(_STOP["code"])


def _tell(line: str, stop: BaseException) -> None:
    """Say how a command stopped, once, and keep the status of the signal that stopped it: a
    second signal while this is printed adds no line and changes no status."""
    _STOP["told"] = True
    _STOP["code"] = _exit_code(stop)
    if _STOP.get("program"):  # a second Ctrl-C from here on, while Python shuts down (half a
        # second with numba and polars loaded), was a traceback or death by SIGINT. A caller
        # passing argv (a test) keeps its handlers.
        with contextlib.suppress(ValueError):  # not on the main thread
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            _STOP["ignoring"] = True
    print(line, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
