"""The numba engine: the SimPy engine's semantics as compiled kernels, run in parallel batches.

``tallies(spec, seed, replications, first)`` runs replications ``first ..`` and returns their
raw counters as one float64 array (one row per replication) plus the layout that turns a row
back into an ``outcomes.Tally``. Replication i draws from ``SeedSequence(seed, spawn_key=(i,))``
as on the SimPy engine, through the kernel's own xoshiro256** generator.
"""

from __future__ import annotations

import numba
import numpy as np

# first: view installs view.index_as_is before any kernel function is compiled (cache
# compiles nothing)
from gtmsim.engines.kernel import cache, view  # noqa: I001
from gtmsim.engines.kernel.kspec import KSpec, TallyLayout, capacities, pack
from gtmsim.engines.kernel.rng import seed_state
from gtmsim.engines.kernel.state import CANCELLED, FAILED, STALLED, STATUS_STAGE
from gtmsim.engines.kernel.stopping import run_stoppable
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
        stop = np.zeros(1, dtype=np.int64)
        args = (ks, np.ascontiguousarray(seeds[todo]), sub_out, sub_status, layout.offsets,
                *caps, workers, stop)
        try:
            try:
                run_stoppable(fn, args)
            except Exception as e:
                if not cache.damaged(e):
                    raise
                cache.recover(_cache_folders())
                run_stoppable(fn, args)  # compiles afresh (a second failure is not the cache's)
        except Exception as e:
            # a table numba could not allocate: a MemoryError, which the parallel batch
            # hands back as the cause of a SystemError
            if _out_of_memory(e):
                threads = numba.get_num_threads() if parallel else 1
                queues = spec.n_teams + int(spec.team_headcount.sum())
                raise OutOfMemory(*caps, queues, threads) from None
            raise
        if stop[0] != 0 or (sub_status == CANCELLED).any():
            # set only while a signal's exception goes on, so never here; were it, the rows
            # of replications never taken would read as finished rows of zeros
            raise RuntimeError("the kernel's batch stopped without a signal")
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
