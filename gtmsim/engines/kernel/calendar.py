"""Working-time arithmetic for the kernel: ``gtmsim.calendar`` compiled with numba.

``next_open`` and ``working_hours_between`` are the reference functions wrapped as they are;
``advance`` is the same code with its call to ``next_open`` bound to the compiled one
(tests/test_kernel.py checks all three against the reference on random inputs).
"""

from __future__ import annotations

import math

from numba import njit

from gtmsim import calendar as _cal

WEEK = _cal.WEEK
DAY = _cal.DAY

next_open = njit(cache=True)(_cal.next_open)
working_hours_between = njit(cache=True)(_cal.working_hours_between)


@njit(cache=True)
def advance(t, work, days, start, end):
    """Calendar time when `work` working hours, begun at t, are done (as gtmsim.calendar)."""
    per_week = days.sum() * (end - start)
    if per_week >= WEEK:
        return t + work
    t = next_open(t, days, start, end)
    if work <= 0.0:
        return t
    weeks = math.floor(work / per_week)
    if weeks > 0:
        t += weeks * WEEK
        work -= weeks * per_week
        if work <= 1e-12:
            t -= WEEK
            work += per_week
    while True:
        day = math.floor(t / DAY)
        close = day * DAY + end
        left = close - t
        if work <= left:
            return t + work
        work -= left
        t = next_open(close, days, start, end)
