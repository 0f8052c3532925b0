"""Working-time arithmetic for the kernel: ``gtmsim.calendar`` compiled with numba.

``next_open`` and ``working_hours_between`` are the reference functions wrapped as they are;
``advance`` is the same code with its call to ``next_open`` bound to a compiled one, inlined
(tests/test_kernel.py checks all three against the reference on random inputs).

The event loop calls ``work_done_at`` (``advance_pw`` on the spec's calendar) and
``hours_between_pw``: the same arithmetic with the working hours per week precomputed once
(``KSpec.per_week``) instead of ``days.sum()`` per call, and ``advance_pw`` answering work
that ends within the current working stretch without the general loop (the same float
result: ``t + work``).
"""

from __future__ import annotations

import math

from numba import njit

from gtmsim import calendar as _cal

WEEK = _cal.WEEK
DAY = _cal.DAY
NEVER_DONE = _cal.NEVER_DONE

next_open = njit(cache=True)(_cal.next_open)
# the same function inlined into advance_pw, so its calendar array is not passed in a call
_next_open = njit(cache=True, inline="always")(_cal.next_open)
working_hours_between = njit(cache=True)(_cal.working_hours_between)


@njit(cache=True, inline="always")
def floor_quotient(t, w, inv_w):
    """int(t // w) for t >= 0 and w > 0, given inv_w = 1 / w: t * inv_w is within a few ulps
    of t / w, so its integer part is off by at most one, which the tests against n * w put
    right (a multiplication instead of a division on the event loop's latency chains)."""
    n = int(t * inv_w)
    if n * w > t:
        n -= 1
    elif (n + 1) * w <= t:
        n += 1
    return n


@njit(cache=True, inline="always")
def periods(t, w):
    """(int(t // w), t % w) for an integer-valued w > 0, without numba's fmod call: for t >= 0
    the quotient n is ``floor_quotient`` (1 / w is folded for a constant w), and n * w and
    t - n * w are exact, so both numbers are Python's to the bit (negative or NaN t: Python's
    own; scripts/kernel_golden.py --check tests this on edge cases)."""
    if not t >= 0.0:
        return int(t // w), t % w
    n = floor_quotient(t, w, 1.0 / w)
    return n, (t - n * w) + 0.0  # + 0.0: a zero remainder is +0.0, as Python's (t = -0.0)


@njit(cache=True)
def advance(t, work, days, start, end):
    """Calendar time when `work` working hours, begun at t, are done (as gtmsim.calendar)."""
    return advance_pw(t, work, days, start, end, days.sum() * (end - start))


@njit(cache=True, inline="always")
def advance_pw(t, work, days, start, end, per_week):
    """`advance` with per_week = days.sum() * (end - start) given."""
    if per_week >= WEEK:
        return t + work
    if work > NEVER_DONE:
        return math.inf  # past any run's end; stepping through it would never finish
    day = math.floor(t / DAY)
    if work >= 0.0 and days[day % 7]:
        base = day * DAY
        if base + start <= t and t + work <= base + end:
            # what the loop below gives for work inside this stretch, and no work begun at
            # its close is done there (as gtmsim.calendar.advance)
            return t + work
    t = _next_open(t, days, start, end)
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
        t = _next_open(close, days, start, end)


@njit(cache=True, inline="always")
def work_done_at(ks, t, work):
    """`advance_pw` on the spec's calendar: when `work` working hours begun at t are done.
    Work that ends within the working stretch it begins in (or on an always-open calendar),
    most of it, is answered here, inline, by `advance_pw`'s own first tests; the rest by
    `_work_done_at`, which runs `advance_pw` from the start."""
    if ks.per_week >= WEEK:
        return t + work
    if 0.0 <= work <= NEVER_DONE:
        day = math.floor(t / DAY)
        if ks.work_days[day % 7]:
            base = day * DAY
            if base + ks.day_start <= t and t + work <= base + ks.day_end:
                return t + work
    return _work_done_at(ks, t, work)


@njit(cache=True)
def _work_done_at(ks, t, work):
    """`advance_pw` on the spec's calendar. The event loop calls this, not ``advance_pw``: the
    spec is one pointer, while the calendar's array would be passed as seven words and
    referenced and released on every call."""
    return advance_pw(t, work, ks.work_days, ks.day_start, ks.day_end, ks.per_week)


@njit(cache=True)
def hours_between_pw(a, b, days, start, end, per_week):
    """`working_hours_between` with per_week given."""
    if b <= a:
        return 0.0
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
