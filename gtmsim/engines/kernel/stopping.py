"""Batches that stop at Ctrl-C and SIGTERM, even inside a replication.

Python runs signal handlers on the main thread, between its own instructions: never inside
a compiled call. So on the main thread a batch runs on a thread of its own (the kernel lets
go of the GIL) while the main thread waits where signals land; a signal's exception there
sets the batch's stop flag, which the event loop reads every STOP_EVERY events, and goes on
once the batch has ended. The thread lives as long as the process: a new one per batch made
OpenMP build a new pool of threads each time (about 4 ms, a fifth of an optimiser's batch).
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable

import numba


def run_stoppable(fn: Callable, args: tuple) -> None:
    """fn(*args), a batch whose last argument is its stop flag (int64[1]), stopped by
    Ctrl-C or SIGTERM within milliseconds when called on the main thread.

    The kernel is compiled (or loaded) first on this thread, by a batch of no replications:
    a compile, Python code, stops at a signal as anything does."""
    if threading.current_thread() is not threading.main_thread():
        fn(*args)  # no signal handler runs here (a Dask worker's thread): nothing to wait for
        return
    if fn not in _READY:
        ks, seeds, out, status, *rest = args
        fn(ks, seeds[:0], out[:0], status[:0], *rest)
        _READY.add(fn)
    job = _Job(fn, args, numba.get_num_threads())  # a thread count is set per thread
    queued = False
    try:
        _runner().put(job)
        queued = True
        # woken by the batch's end; a signal that landed on another thread (which wakes
        # nothing) is handled within the timeout
        while not job.done.wait(0.05):
            pass
    finally:
        if not job.done.is_set():  # a signal's exception: the batch stops, then it goes on
            args[-1][0] = 1  # (queued or not: one queued at the last instant ends at once)
            while queued and not job.done.is_set():
                try:
                    job.done.wait()
                except BaseException:  # noqa: BLE001 a second signal: stopping all the same
                    continue
    if job.failed is not None:
        raise job.failed


class _Job:
    def __init__(self, fn: Callable, args: tuple, threads: int):
        self.fn, self.args, self.threads = fn, args, threads
        self.failed: BaseException | None = None
        self.done = threading.Event()


def _serve(jobs: queue.SimpleQueue) -> None:
    while True:
        job = jobs.get()
        try:
            numba.set_num_threads(job.threads)
            job.fn(*job.args)
        except BaseException as exc:  # noqa: BLE001 raised again on the main thread
            job.failed = exc
        finally:
            job.done.set()


def _runner() -> queue.SimpleQueue:
    """The batch thread's queue, started on first use, and again in a forked child (which
    has only the thread that forked)."""
    global _JOBS, _PID
    if _JOBS is None or _PID != os.getpid():
        _JOBS, _PID = queue.SimpleQueue(), os.getpid()
        threading.Thread(target=_serve, args=(_JOBS,), name="gtmsim-batch",
                         daemon=True).start()
    return _JOBS


_READY: set = set()  # the batch functions this process has compiled or loaded
_JOBS: queue.SimpleQueue | None = None
_PID: int | None = None
