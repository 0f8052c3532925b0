"""The numba engine: the SimPy engine's semantics as compiled kernels, run in parallel batches.

``tallies(spec, seed, replications, first)`` runs replications ``first ..`` and returns their
raw counters as one float64 array (one row per replication) plus the layout that turns a row
back into an ``outcomes.Tally``. Replication i draws from ``SeedSequence(seed, spawn_key=(i,))``
as on the SimPy engine, through the kernel's own xoshiro256** generator.
"""

from __future__ import annotations

import threading

import numba
import numpy as np

# first: view installs view.index_as_is before any kernel function is compiled (cache
# compiles nothing)
from gtmsim.engines.kernel import cache, view  # noqa: I001
from gtmsim.engines.kernel.kspec import KSpec, TallyLayout, capacities, pack
from gtmsim.engines.kernel.rng import seed_state
from gtmsim.engines.kernel.state import FAILED, STALLED, STATUS_STAGE
from gtmsim.errors import EngineFailed, OutOfMemory, Stalled
from gtmsim.spec import ModelSpec

# before anything is loaded from it: a cache built from other sources is dropped
_folder = cache.folder_of(view.keep)
if _folder is not None:
    cache.drop_stale(_folder)

__all__ = ["KSpec", "TallyLayout", "pack", "tallies", "seeds_for"]


def _cache_folders() -> list:
    """Where numba caches the kernel: its own folder and, for the calendar functions wrapped
    from `gtmsim.calendar`, the package's."""
    from gtmsim.engines.kernel.calendar import next_open

    return list(dict.fromkeys([_folder, cache.folder_of(next_open)]))


def seeds_for(seed: int, reps: np.ndarray) -> np.ndarray:
    """The xoshiro states of replications `reps` (uint64[n, 12]): three streams each, spawned
    from the replication's SeedSequence in the SimPy engine's order (work, arrivals, people),
    so designs run on one seed meet the same leads and people (common random numbers)."""
    out = np.empty((len(reps), 12), dtype=np.uint64)
    for k, r in enumerate(reps):
        streams = np.random.SeedSequence(seed, spawn_key=(int(r),)).spawn(3)
        out[k] = np.concatenate([seed_state(s) for s in streams])
    return out


def _out_of_memory(error: BaseException | None) -> bool:
    """Whether `error`, or one it was raised from, is a MemoryError."""
    while error is not None:
        if isinstance(error, MemoryError):
            return True
        error = error.__cause__ or error.__context__
    return False


def _stoppable(fn, args: tuple) -> None:
    """fn(*args), a batch whose last argument is its stop flag, so that Ctrl-C and SIGTERM
    land while it runs: on the main thread (where Python runs signal handlers, between its
    own instructions only) the batch runs on another thread, the GIL let go, while this one
    waits; a signal's exception here sets the flag, and the batch ends within a few thousand
    events (a single replication may otherwise run for hours) before the exception goes on.

    The kernel is compiled (or loaded) first on this thread, by a batch of no replications:
    a compile, Python code, stops at a signal as any is."""
    if threading.current_thread() is not threading.main_thread():
        fn(*args)  # a signal handler never runs here: nothing to wait for
        return
    if fn not in _READY:
        ks, seeds, out, status, *rest = args
        fn(ks, seeds[:0], out[:0], status[:0], *rest)
        _READY.add(fn)
    threads = numba.get_num_threads()  # set per thread
    failed: list[BaseException] = []

    def batch() -> None:
        numba.set_num_threads(threads)
        try:
            fn(*args)
        except BaseException as exc:  # noqa: BLE001 (raised again on the main thread)
            failed.append(exc)

    runner = threading.Thread(target=batch, name="gtmsim-batch", daemon=True)
    runner.start()
    try:
        while runner.is_alive():
            # woken by the batch's end; a signal that landed on another thread (which sends
            # no wake-up) is handled within the timeout
            runner.join(0.05)
    finally:
        if runner.is_alive():  # a signal's exception: the batch stops, then it goes on
            args[-1][0] = 1
            runner.join()
    if failed:
        raise failed[0]


_READY: set = set()  # the batch functions this process has compiled or loaded


def tallies(spec: ModelSpec, seed: int, replications: int, first: int = 0,
            parallel: bool = True, kspec: KSpec | None = None,
            ) -> tuple[np.ndarray, TallyLayout]:
    """Run a batch; a replication that outgrows a preallocated table is rerun with it doubled
    (its numbers depend only on its seed, never on the table sizes)."""
    from gtmsim.engines.kernel.engine import run_batch, run_serial

    ks = kspec if kspec is not None else pack(spec)
    layout = TallyLayout(spec)
    reps = np.arange(first, first + replications)
    seeds = seeds_for(seed, reps)
    out = np.zeros((replications, layout.length))
    status = np.zeros(replications, dtype=np.int64)
    caps = list(capacities(spec))
    todo = np.arange(replications)
    fn = run_batch if parallel else run_serial
    while True:
        # a worker per thread, no more than there are replications to run
        workers = min(numba.get_num_threads(), len(todo))
        if len(todo) == replications:  # the first pass writes straight into the result
            sub_out, sub_status = out, status
        else:
            sub_out = np.zeros((len(todo), layout.length))
            sub_status = np.zeros(len(todo), dtype=np.int64)
        args = (ks, np.ascontiguousarray(seeds[todo]), sub_out, sub_status, layout.offsets,
                *caps, workers, np.zeros(1, dtype=np.int64))
        try:
            try:
                _stoppable(fn, args)
            except Exception as e:
                if not cache.damaged(e):
                    raise
                cache.recover(_cache_folders())
                _stoppable(fn, args)  # compiles afresh (a second failure is not the cache's)
        except Exception as e:
            # a table numba could not allocate: a MemoryError, which the parallel batch
            # hands back as the cause of a SystemError
            if _out_of_memory(e):
                threads = numba.get_num_threads() if parallel else 1
                queues = spec.n_teams + int(spec.team_headcount.sum())
                raise OutOfMemory(*caps, queues, threads) from None
            raise
        if sub_out is not out:
            out[todo] = sub_out
            status[todo] = sub_status
        bad = sub_status != 0
        if not bad.any():
            return out, layout
        failed = sub_status == FAILED
        if failed.any():
            raise EngineFailed(seed, int(reps[todo][failed][0]))
        stalled = sub_status % STATUS_STAGE == STALLED
        if stalled.any():
            raise Stalled(spec.stage_names[int(sub_status[stalled][0]) // STATUS_STAGE])
        for code in set(sub_status[bad].tolist()):
            caps[code - 1] *= 2
        todo = todo[bad]
