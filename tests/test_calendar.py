"""Working-time arithmetic: people work Mon-Fri 09:00-17:00 by default."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gtmsim.calendar import Calendar, advance

WEEKDAYS = Calendar(np.array([1, 1, 1, 1, 1, 0, 0]), 9.0, 17.0)
ALWAYS = Calendar(np.ones(7, dtype=int), 0.0, 24.0)


@pytest.mark.parametrize(("start", "work", "end"), [
    (0.0, 1.0, 10.0),          # Monday night: start at 09:00
    (9.0, 8.0, 17.0),          # a full Monday
    (16.5, 1.0, 33.5),         # 30 min Monday, 30 min Tuesday
    (9.0, 40.0, 113.0),        # a full week ends Friday 17:00
    (9.0, 41.0, 178.0),        # one more hour: next Monday 10:00
    (4 * 24 + 16.0, 2.0, 178.0),  # Friday 16:00 + 2h -> Monday 10:00
])
def test_advance(start, work, end):
    assert WEEKDAYS.advance(start, work) == pytest.approx(end)


def test_next_open_skips_weekend():
    assert WEEKDAYS.next_open(5 * 24 + 10.0) == pytest.approx(7 * 24 + 9.0)


def test_always_open_calendar_is_identity():
    assert ALWAYS.advance(3.7, 100.25) == pytest.approx(103.95)
    assert ALWAYS.working_hours_between(1.0, 50.0) == pytest.approx(49.0)


@given(st.floats(0, 2000), st.floats(0, 500))
def test_advance_and_working_hours_are_inverse(start, work):
    end = WEEKDAYS.advance(start, work)
    assert end >= start
    assert WEEKDAYS.working_hours_between(start, end) == pytest.approx(work, abs=1e-6)


@given(st.floats(0, 2000), st.floats(0, 500), st.floats(0, 500))
def test_advance_composes(start, a, b):
    assert WEEKDAYS.advance(WEEKDAYS.advance(start, a), b) == pytest.approx(
        WEEKDAYS.advance(start, a + b), abs=1e-6)


def test_work_no_run_reaches_the_end_of_is_never_done():
    """1e300 hours of work (a latency drawn from an absurd spread) stepped through the
    calendar for ever; it is done at infinity, at once, on both engines' calendars."""
    import math

    from gtmsim.engines.kernel.calendar import advance as kernel_advance

    days = np.array([1, 1, 1, 1, 1, 0, 0], dtype=np.int64)
    for work in (1e13, 1e300):
        assert advance(10.0, work, days, 9.0, 17.0) == math.inf
        assert kernel_advance(10.0, work, days, 9.0, 17.0) == math.inf
    assert advance(10.0, 1e6, days, 9.0, 17.0) < math.inf


def test_no_work_begun_at_a_close_is_done_there_on_both_engines():
    """Work of 0 hours begun at a day's close (a zero-hour warm handoff or attempt after a task
    that ended at 17:00) is done at the close on both engines, as work that ends there is; it
    is done at the next opening only when begun out of hours. The SimPy engine's Calendar
    answered 17:00 while the reference function and the numba kernel's calendar answered
    09:00 the next working day, so the kernel moved such a lead on 16 hours (a weekend after
    a Friday) later."""
    from gtmsim.engines.kernel.calendar import advance as kernel_advance

    days = np.array([1, 1, 1, 1, 1, 0, 0], dtype=np.int64)
    for close in (17.0, 24.0 + 17.0, 4 * 24 + 17.0):  # Monday, Tuesday, Friday
        assert WEEKDAYS.advance(close, 0.0) == close
        assert advance(close, 0.0, days, 9.0, 17.0) == close
        assert kernel_advance(close, 0.0, days, 9.0, 17.0) == close
    for out_of_hours, opening in ((20.0, 33.0), (5 * 24 + 10.0, 7 * 24 + 9.0)):
        assert WEEKDAYS.advance(out_of_hours, 0.0) == opening
        assert advance(out_of_hours, 0.0, days, 9.0, 17.0) == opening
        assert kernel_advance(out_of_hours, 0.0, days, 9.0, 17.0) == opening


def test_a_one_day_week_opens_again_a_week_later():
    """With Mondays only, work begun after Monday's close waits for next Monday: the search
    for the next opening must look a full week ahead (eight days from today), or it gives
    up and people work through the night."""
    mondays = Calendar(np.array([1, 0, 0, 0, 0, 0, 0]), 9.0, 17.0)
    assert mondays.next_open(18.0) == pytest.approx(168.0 + 9.0)
    assert mondays.advance(16.0, 2.0) == pytest.approx(168.0 + 10.0)
    assert mondays.working_hours_between(0.0, 2 * 168.0) == pytest.approx(16.0)


def test_no_working_hours_in_an_interval_that_ends_before_it_begins():
    """An interval [a, b) with b before a holds no working time on any calendar: an
    always-open one said b - a, a negative number of hours."""
    from gtmsim.calendar import working_hours_between

    assert ALWAYS.working_hours_between(50.0, 1.0) == 0.0
    assert WEEKDAYS.working_hours_between(50.0, 1.0) == 0.0
    assert working_hours_between(50.0, 1.0, np.ones(7, dtype=int), 0.0, 24.0) == 0.0
