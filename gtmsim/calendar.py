"""Working time: people work only inside it, buyers wait on calendar time.

Time is in hours from Monday 00:00. A calendar is a 7-day mask of working days and a daily
window [day_start, day_end). The functions take plain floats and arrays so the numba engine
can compile them unchanged.
"""

from __future__ import annotations

import math

import numpy as np

WEEK = 168.0
DAY = 24.0


def next_open(t: float, days: np.ndarray, start: float, end: float) -> float:
    """The first working instant at or after t."""
    day = math.floor(t / DAY)
    for k in range(8):
        d = day + k
        if days[d % 7]:
            lo = d * DAY + start
            hi = d * DAY + end
            if t < hi:
                return max(t, lo)
    return t  # no working day at all: validated away, kept total for safety


# working hours that no run reaches the end of (a hundred million years of them)
NEVER_DONE = 1e12


def advance(t: float, work: float, days: np.ndarray, start: float, end: float,
            per_week: float = -1.0) -> float:
    """Calendar time when `work` working hours, begun at t, are done. `per_week`, the
    working hours in a week, is computed from the calendar unless given."""
    if per_week < 0.0:
        per_week = days.sum() * (end - start)
    if per_week >= WEEK:
        return t + work
    if work > NEVER_DONE:
        return math.inf  # past any run's end; stepping through it would never finish
    if work <= 0.0:
        # no work needs no working time: done at t inside a working stretch or at its close
        # (as work that ends there is), at the next opening only when begun out of hours
        day = math.floor(t / DAY)
        if days[day % 7] and day * DAY + start <= t <= day * DAY + end:
            return t
    t = next_open(t, days, start, end)
    if work <= 0.0:
        return t
    weeks = math.floor(work / per_week)
    if weeks > 0:  # whole weeks jump straight ahead, keeping the position in the week
        t += weeks * WEEK
        work -= weeks * per_week
        if work <= 1e-12:
            # land exactly at the close of the last working stretch rather than after it
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


def working_hours_between(a: float, b: float, days: np.ndarray, start: float, end: float,
                          per_week: float = -1.0) -> float:
    """Working hours in the calendar interval [a, b) (`per_week` as for `advance`)."""
    if b <= a:
        return 0.0
    if per_week < 0.0:
        per_week = days.sum() * (end - start)
    if per_week >= WEEK:
        return b - a
    total = 0.0
    d0 = math.floor(a / DAY)
    d1 = math.floor(b / DAY)
    for d in range(d0, d1 + 1):
        if days[d % 7]:
            lo = max(a, d * DAY + start)
            hi = min(b, d * DAY + end)
            if hi > lo:
                total += hi - lo
    return total


class Calendar:
    """A working calendar bound to its parameters, for the Python side.

    `advance` answers the common case (work that ends within the current working day)
    without the general loop; it gives the same result as the module function.
    """

    def __init__(self, days: np.ndarray, start: float, end: float):
        self.days = np.asarray(days, dtype=np.int64)
        self.open_days = tuple(bool(d) for d in self.days)
        self.start = float(start)
        self.end = float(end)
        self.hours_per_week = float(self.days.sum() * (end - start))
        self.always = self.hours_per_week >= WEEK

    def next_open(self, t: float) -> float:
        return next_open(t, self.open_days, self.start, self.end)

    def advance(self, t: float, work: float) -> float:
        if self.always:
            return t + work
        day = math.floor(t / DAY)
        if self.open_days[day % 7]:
            lo = day * DAY + self.start
            if lo <= t and t + work <= day * DAY + self.end:
                return t + work
        return advance(t, work, self.open_days, self.start, self.end, self.hours_per_week)

    def working_hours_between(self, a: float, b: float) -> float:
        if self.always:
            return max(b - a, 0.0)
        return working_hours_between(a, b, self.open_days, self.start, self.end,
                                     self.hours_per_week)
