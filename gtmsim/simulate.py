"""Run replications of a model spec on an engine: the batch call everything above uses.

Replication i draws from its own stream, ``SeedSequence(seed, spawn_key=(i,))``, so a batch
gives the same numbers however it is split across processes, threads or cluster workers.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from os import PathLike
from pathlib import Path

import numpy as np
import polars as pl

from gtmsim import outcomes as O
from gtmsim.config import Config, load_config
from gtmsim.config.loader import check
from gtmsim.errors import BATCH_SEED_MAX, MAX_REPLICATIONS, SEED_MAX, GtmsimError, whole
from gtmsim.spec import KPI_METRICS, ModelSpec, compile_spec

ENGINES = ("simpy", "numba")
DEFAULT_ENGINE = "numba"  # the production engine; the SimPy one is the readable reference
LOG_EPOCH = datetime(2026, 1, 5)  # a Monday: hour 0 of every run, for event-log timestamps
LOG_COLUMNS = ("case:concept:name", "concept:name", "org:resource", "start_timestamp",
               "time:timestamp", "outcome")

Progress = Callable[[int, int], None]


def usable_cores() -> int:
    """The CPUs this process may run on (taskset, a SLURM allocation), not the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass
class Result:
    """What a batch produced: one row per replication, weekly aggregates, optional event log."""

    spec: ModelSpec
    replications: pl.DataFrame
    weekly: pl.DataFrame
    event_log: pl.DataFrame | None = None
    config: Config | None = None
    engine: str = "simpy"
    seed: int = 0
    workers: int = 1  # processes (SimPy) or threads (numba) the batch ran on

    def summary(self, confidence: float = 0.95) -> pl.DataFrame:
        """Per outcome: n, mean with a t-interval at `confidence`, sd, P10/P50/P90 over the
        replications where it is defined (a rate with nothing to divide by is left out)."""
        metric = {code: name for name, code in KPI_METRICS.items()}
        teams = dict(zip(self.spec.team_names,
                         (metric.get(int(m)) for m in self.spec.team_kpi_metric), strict=True))
        return O.summarize(self.replications, confidence, O.share_kpis(teams))

    def __repr__(self) -> str:  # the spec's arrays would fill a notebook cell
        log = "" if self.event_log is None else f", event_log={self.event_log.height} rows"
        return (f"Result({self.replications.height} replications on {self.engine}, seed "
                f"{self.seed}, {self.replications.width - 1} outcomes, weekly="
                f"{self.weekly.height} rows{log})")


def replication_seed(seed: int, replication: int) -> np.random.SeedSequence:
    """The random stream of one replication, independent of how the batch is split."""
    return np.random.SeedSequence(seed, spawn_key=(replication,))


def _run_one(spec: ModelSpec, seed: int, rep: int, event_log: bool):
    from gtmsim.engines.simpy import run_replication

    rec = run_replication(spec, replication_seed(seed, rep), event_log)
    row = {"replication": rep, **O.replication_row(rec.tally, spec)}
    return row, O.weekly_rows(rec.tally, spec, rep), rec.log


def _framed(done: tuple) -> tuple:
    """A replication's log as a frame as soon as it is in (as Python tuples it took ~26 MB a
    replication, ~3 MB so). In this process only: polars in a forked worker can deadlock."""
    row, weekly, log = done
    return row, weekly, None if log is None else event_log_frame([(row["replication"], log)])


def _run_chunk(args):
    spec, seed, reps, event_log = args
    return [_run_one(spec, seed, r, event_log) for r in reps]


def simulate(spec: ModelSpec, replications: int, seed: int, engine: str | None = None,
             workers: int | None = None, progress: Progress | None = None,
             event_log: bool = False, first: int = 0) -> Result:
    """Run replications ``first .. first + replications - 1`` of `spec` on `engine` (default:
    numba; the SimPy engine for an event log) with up to `workers` threads (numba) or
    processes (SimPy); by default every CPU for numba, one process for SimPy."""
    if not isinstance(spec, ModelSpec):
        raise TypeError(f"spec: expected a ModelSpec (compile_spec(config)), got "
                        f"{type(spec).__name__}; gtmsim.run takes a config")
    if progress is not None and not callable(progress):
        raise TypeError(f"progress: expected a callable progress(done, total), got "
                        f"{progress!r}")
    if not isinstance(event_log, bool | np.bool_):  # "no" would be read as True
        raise TypeError(f"event_log: expected True or False, got {event_log!r}")
    if engine is None:  # the event log comes from the engine that traces every activity
        engine = "simpy" if event_log else DEFAULT_ENGINE
    if engine not in ENGINES:
        raise GtmsimError(f"unknown engine {engine!r}; choose from {', '.join(ENGINES)}")
    # as a config's run.replications: 10**9 ran for hours, its rows filling memory
    replications = whole("replications", replications, 1, MAX_REPLICATIONS)
    # any 64-bit seed: a point of a sweep begun before point seeds were 63 bits reruns here
    seed = whole("seed", seed, 0, BATCH_SEED_MAX)
    # the last replication's number fits the 64-bit `replication` column
    first = whole("first", first, 0, 2**63 - replications)
    if workers is not None:
        workers = whole("workers", workers, 1)
    spec.check()  # nothing impossible reaches either engine (a spec may be edited by hand)
    if engine == "numba":
        if event_log:
            raise GtmsimError('engine="numba" writes no event log; use engine="simpy" '
                              '(or leave engine out)')
        return _simulate_numba(spec, replications, seed, first, progress, workers)
    reps = list(range(first, first + replications))
    workers = max(1, min(workers or 1, len(reps), usable_cores()))
    done: list = []
    if workers == 1:
        for r in reps:
            done.append(_framed(_run_one(spec, seed, r, event_log)))
            if progress:
                progress(len(done), len(reps))
    else:
        size = max(1, min(8, len(reps) // (workers * 4)))
        chunks = [reps[i:i + size] for i in range(0, len(reps), size)]
        with ProcessPoolExecutor(workers) as pool:
            for part in pool.map(_run_chunk, [(spec, seed, c, event_log) for c in chunks]):
                done.extend(_framed(d) for d in part)
                if progress:
                    progress(len(done), len(reps))
    done.sort(key=lambda d: d[0]["replication"])
    reps_df, weekly_df = O.to_frames([d[0] for d in done], [d[1] for d in done])
    log_df = None
    if event_log:
        log_df = pl.concat([d[2] for d in done])
    return Result(spec, reps_df, weekly_df, log_df, engine=engine, seed=seed, workers=workers)


def _simulate_numba(spec: ModelSpec, replications: int, seed: int, first: int,
                    progress: Progress | None, workers: int | None = None) -> Result:
    """Replications on the numba kernel, in parallel batches (several, for the progress bar;
    each replication's numbers depend only on its own seed, so the split changes nothing)."""
    import numba

    from gtmsim.engines.kernel import tallies
    from gtmsim.engines.kernel.cache import in_process_folder

    global _KERNEL_ASKED
    # once a process has loaded or compiled the kernel, reading numba's index again (0.2 ms)
    # only slows the optimiser's many small batches
    if not _KERNEL_ASKED and not kernel_is_cached():
        notice("compiling the numba engine (about a minute) on every run: no cache folder takes "
               "writes here; set NUMBA_CACHE_DIR to a writable folder" if in_process_folder()
               else "compiling the numba engine (about a minute; once, until gtmsim, numba "
               "or this CPU changes)")
    _KERNEL_ASKED = True
    rows, weekly = [], []
    # workers None keeps the caller's thread count (every CPU, unless set lower, as a sweep
    # worker does); each replication owns its stream and row, so no number depends on it
    threads = numba.get_num_threads()
    used = min(workers or threads, numba.config.NUMBA_NUM_THREADS)
    numba.set_num_threads(used)
    # chunks for the progress bar: the first a replication a thread, the rest as many as take
    # about CHUNK_SECONDS (64 to 256 on the default model; one a thread where a replication
    # takes seconds); Ctrl-C and SIGTERM land inside a chunk too (kernel.stopping)
    most = min(256, max(64, -(-replications // 20)))
    chunk = used
    try:
        start = first
        while start < first + replications:
            n = min(chunk, first + replications - start)
            began = _clock()
            out, layout = tallies(spec, seed, n, start)
            per_replication = (_clock() - began) / n
            for k in range(n):
                t = layout.tally(spec, out[k])
                rows.append({"replication": start + k, **O.replication_row(t, spec)})
                weekly.append(O.weekly_rows(t, spec, start + k))
            start += n
            if progress:
                progress(len(rows), replications)
            chunk = max(used, min(most, int(CHUNK_SECONDS / max(per_replication, 1e-9))))
    finally:
        numba.set_num_threads(threads)
    reps_df, weekly_df = O.to_frames(rows, weekly)
    return Result(spec, reps_df, weekly_df, None, engine="numba", seed=seed,
                  workers=min(used, replications))


_KERNEL_ASKED = False  # whether this process has asked kernel_is_cached already
CHUNK_SECONDS = 1.0  # about the longest a numba batch runs before the progress bar moves
_clock = time.perf_counter


def kernel_is_cached() -> bool:
    """Whether numba's on-disk cache holds the compiled batch kernel already, as numba will
    load it: where numba keeps it (next to the source, or under NUMBA_CACHE_DIR or the user's
    cache when the source folder is read-only), with numba's stamp of the source file (its
    contents; on older numba its time stamp, which a checkout or reinstall moves) and for
    this CPU (a home folder shared by a cluster's nodes of another kind). Otherwise numba
    compiles again, without a word of its own."""
    from gtmsim.engines.kernel.engine import run_batch

    try:
        index = run_batch._cache._cache_file
        here = run_batch.targetctx.codegen().magic_tuple()
    except AttributeError:  # another numba's internals: say nothing rather than guess
        return True
    try:
        overloads = index._load_index()  # empty when missing, stale or another numba's
    except Exception:  # a damaged index: tallies drops it and says so
        return True
    return any(key[1] == here for key in overloads)


def notice(message: str) -> None:
    """A one-line note on stderr for long, silent work (the first compile)."""
    import sys

    print(f"gtmsim: {message}", file=sys.stderr, flush=True)


def write_event_log(spec: ModelSpec, replications: int, seed: int, path: Path,
                    progress: Progress | None = None, kind: str | None = None) -> int:
    """The event log of replications ``0 .. replications-1`` (SimPy engine) written to `path`
    as `kind` ("csv" or "parquet"; default: by the suffix of `path`) one replication at a
    time, so memory holds one replication's log whatever their number; returns the rows
    written. The file is what ``simulate(..., event_log=True).event_log`` holds."""
    from gtmsim.report.export import write_parquet

    replications = whole("replications", replications, 1, MAX_REPLICATIONS)
    path = Path(path)
    kind = kind if kind is not None else path.suffix.lower().removeprefix(".")
    if kind not in ("csv", "parquet"):
        raise GtmsimError(f"kind: expected 'csv' or 'parquet' (or a path ending in .csv or "
                          f".parquet), got {kind!r}")
    csv = kind == "csv"
    rows = 0
    with tempfile.TemporaryDirectory(prefix=".event_log.", dir=path.absolute().parent) as parts, \
            (open(path, "wb") if csv else contextlib.nullcontext()) as out:
        files = []
        for rep in range(replications):
            log = simulate(spec, 1, seed, "simpy", 1, event_log=True, first=rep).event_log
            rows += log.height
            if csv:
                log.write_csv(out, include_header=rep == 0)
            else:  # each a part, then streamed into one file
                files.append(Path(parts) / f"{rep}.parquet")
                write_parquet(log, files[-1])
            if progress:
                progress(rep + 1, replications)
        if not csv:
            try:
                pl.scan_parquet(files).sink_parquet(path)
            except pl.exceptions.PolarsError as exc:  # a full disk, as polars words it
                raise _os_error(exc) from None
    return rows


def _os_error(exc: Exception) -> OSError:
    """polars' IO error as the OSError it wraps ('... underlying IO error: No space left on
    device (os error 28)'), so it reads as a CSV's does; its first line where none is named."""
    named = re.search(r"\(os error (\d+)\)", str(exc))
    if named:
        code = int(named.group(1))
        return OSError(code, os.strerror(code))
    return OSError(str(exc).splitlines()[0])


def event_log_frame(logs: Sequence[tuple[int, list[tuple]]]) -> pl.DataFrame:
    """Activity rows as an event log a process-mining tool reads (XES attribute names)."""
    rows = {k: [] for k in ("replication", *LOG_COLUMNS)}
    for rep, log in logs:
        for case, activity, resource, start, end, outcome in log:
            rows["replication"].append(rep)
            rows["case:concept:name"].append(f"r{rep}-lead{case}")
            rows["concept:name"].append(activity)
            rows["org:resource"].append(resource)
            rows["start_timestamp"].append(LOG_EPOCH + timedelta(hours=start))
            rows["time:timestamp"].append(LOG_EPOCH + timedelta(hours=end))
            rows["outcome"].append(outcome)
    frame = pl.DataFrame(rows, schema={"replication": pl.Int64, "case:concept:name": pl.Utf8,
                                       "concept:name": pl.Utf8, "org:resource": pl.Utf8,
                                       "start_timestamp": pl.Datetime("us"),
                                       "time:timestamp": pl.Datetime("us"),
                                       "outcome": pl.Utf8})
    # a case attribute (XES's case: prefix): the channel its `<stage>:arrived` row names
    arrived = pl.col("concept:name").str.ends_with(":arrived")
    return frame.with_columns(pl.col("org:resource").filter(arrived).first()
                              .over("case:concept:name").alias("case:channel"))


def given_config(config: Config | str | PathLike | None, profile: str | Path | None,
                 overrides: Sequence[str] | None, caller: str) -> Config:
    """The config a notebook call means: a Config as it is, else a path (or None, the
    default) loaded under `profile` with `overrides`."""
    if isinstance(overrides, str):
        raise GtmsimError(f"overrides: expected a list of 'key.path=value' strings, got the "
                          f"string {overrides!r}")
    if config is not None and not isinstance(config, Config | str | PathLike):
        raise TypeError(f"config: expected a Config, a path or None (the default), got "
                        f"{type(config).__name__}")
    if isinstance(config, Config):
        if profile is not None or overrides:
            raise GtmsimError("profile and overrides apply when a config is loaded: pass them "
                              f"to load_config, or give {caller} a path (or None) instead")
        return config
    return load_config(config, profile, overrides)


def run(config: Config | str | PathLike | None = None, profile: str | Path | None = None,
        overrides: Sequence[str] | None = (), replications: int | None = None,
        seed: int | None = None, engine: str | None = None, workers: int | None = None,
        progress: Progress | None = None, event_log: bool = False) -> Result:
    """Notebook entry point: a config (object, path, or None for the default) in, DataFrames out.
    The engine is numba unless given (the SimPy engine for an event log).

    >>> res = run(replications=4)              # doctest: +SKIP
    >>> res.summary().filter(pl.col("outcome") == "bookings")  # doctest: +SKIP
    """
    config = given_config(config, profile, overrides, "run")
    # res.config keeps the count, and a config's run.replications is at most MAX_REPLICATIONS
    n = (whole("replications", replications, 1, MAX_REPLICATIONS) if replications is not None
         else config.run.replications)
    s = whole("seed", seed, 0, SEED_MAX) if seed is not None else config.run.seed
    # the validated copy: the caller's config, changed for the next run, said the last one
    # ran on that
    ran = check(config)
    res = simulate(compile_spec(ran), n, s, engine, workers, progress, event_log)
    # with the seed and count this run used (as the command line's config.toml), so that
    # run(res.config) reruns it
    res.config = ran.model_copy(update={"run": ran.run.model_copy(
        update={"seed": res.seed, "replications": res.replications.height})})
    return res
