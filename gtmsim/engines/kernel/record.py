"""Counting into the tally: the kernel twin of the SimPy engine's Recorder.

An event counts if warm-up <= t < warm-up + horizon; time integrals are clipped to that window
and split by measured week.
"""

from __future__ import annotations

from numba import njit

from gtmsim import outcomes as O
from gtmsim.engines.kernel.calendar import floor_quotient, hours_between_pw

WEEK = 168.0
T_BUSY, T_AVAILABLE, T_WIP_AREA = O.T_BUSY, O.T_AVAILABLE, O.T_WIP_AREA
T_SERVING_AREA, T_BUYER_AREA, T_DEPARTURES = O.T_SERVING_AREA, O.T_BUYER_AREA, O.T_DEPARTURES
T_SOJOURN_SUM, T_KPI, T_QUITS, T_HEADCOUNT_AREA = (O.T_SOJOURN_SUM, O.T_KPI, O.T_QUITS,
                                                   O.T_HEADCOUNT_AREA)
T_OPEN_END = O.T_OPEN_END
F_WON, S_BOOKINGS, S_CYCLE_SUM = O.F_WON, O.S_BOOKINGS, O.S_CYCLE_SUM
CYCLE_BINS = O.CYCLE_BINS


@njit(cache=True, inline="always")
def inside(ks, t):
    return ks.warmup <= t < ks.end


@njit(cache=True, inline="always")
def week_of(ks, t):
    """The measured week of t (the last one for t past the end), as the SimPy recorder's:
    the week whose bounds, warm-up + k * WEEK as `_seg_end` computes them, hold t ((t -
    warm-up) / WEEK alone can round across a bound, and `_seg_end` then ended a segment where
    it began, forever); a multiplication, not a division, on the recorder's chains."""
    k = floor_quotient(t - ks.warmup, WEEK, 1.0 / WEEK)
    if ks.warmup + (k + 1) * WEEK <= t:
        k += 1
    elif k > 0 and ks.warmup + k * WEEK > t:
        k -= 1
    return min(k, ks.n_weeks - 1)


@njit(cache=True)
def _seg_end(ks, a, b):
    k = week_of(ks, a)
    if k < ks.n_weeks - 1:
        return k, min(b, ks.warmup + (k + 1) * WEEK)
    return k, b


@njit(cache=True)
def calendar_area(ks, st, team, col, weekly, level, a, b):
    """Add level * (calendar hours of [a, b) inside the window) to team[team, col]
    (and to wip_w by week when `weekly`)."""
    if level == 0:
        return
    a = max(a, ks.warmup)
    b = min(b, ks.end)
    while a < b:
        k, e = _seg_end(ks, a, b)
        st.team[team, col] += level * (e - a)
        if weekly:
            st.wip_w[team, k] += level * (e - a)
        a = e


@njit(cache=True)
def working_area(ks, st, team, col, busy, a, b):
    """Working hours of [a, b) inside the window, to team[team, col] and busy_w or
    available_w by week."""
    a = max(a, ks.warmup)
    b = min(b, ks.end)
    while a < b:
        k, e = _seg_end(ks, a, b)
        h = hours_between_pw(a, e, ks.work_days, ks.day_start, ks.day_end, ks.per_week)
        st.team[team, col] += h
        if busy:
            st.busy_w[team, k] += h
        else:
            st.available_w[team, k] += h
        a = e


@njit(cache=True, inline="always")
def level_change(ks, st, team, col, weekly, level, since, t, delta):
    """A team's level (leads in it, people serving, opportunities with the buyer) moves by
    delta at t: its time integral so far goes to team[team, col] (and wip_w if weekly); a
    level of 0 has none (answered here, inline: nobody serving, often)."""
    if level[team] != 0:
        calendar_area(ks, st, team, col, weekly, float(level[team]), since[team], t)
    level[team] += delta
    since[team] = t


@njit(cache=True, inline="always")
def wip_change(ks, st, team, t, delta):
    level_change(ks, st, team, T_WIP_AREA, True, st.wip, st.wip_since, t, delta)


@njit(cache=True, inline="always")
def serving_change(ks, st, team, t, delta):
    level_change(ks, st, team, T_SERVING_AREA, False, st.serving, st.serving_since, t, delta)


@njit(cache=True, inline="always")
def buyer_change(ks, st, team, t, delta):
    level_change(ks, st, team, T_BUYER_AREA, False, st.buyer, st.buyer_since, t, delta)


@njit(cache=True)
def team_departure(ks, st, team, entered, t):
    st_team = st.team
    wip_change(ks, st, team, t, -1)
    if inside(ks, t):
        st_team[team, T_DEPARTURES] += 1
        st_team[team, T_SOJOURN_SUM] += t - entered


@njit(cache=True)
def busy(ks, st, team, a, b, hours):
    """A person of the team works `hours` working hours over [a, b): added as they are when
    [a, b) lies inside one measured week, else split by week from the calendar."""
    if ks.warmup <= a and b <= ks.end:
        k = week_of(ks, a)
        if k == ks.n_weeks - 1 or b <= ks.warmup + (k + 1) * WEEK:
            st.team[team, T_BUSY] += hours
            st.busy_w[team, k] += hours
            return
    working_area(ks, st, team, T_BUSY, True, a, b)


@njit(cache=True)
def staffed(ks, st, team, a, b):
    working_area(ks, st, team, T_AVAILABLE, False, a, b)
    calendar_area(ks, st, team, T_HEADCOUNT_AREA, False, 1.0, a, b)


@njit(cache=True, inline="always")
def fate(ks, st, f, t):
    if inside(ks, t):
        st.fates[f] += 1


@njit(cache=True, inline="always")
def add(ks, st, scalar, t, amount):
    if inside(ks, t):
        st.scalars[scalar] += amount


@njit(cache=True, inline="always")
def channel(ks, st, c, col, t, amount):
    if inside(ks, t):
        st.channel[c, col] += amount


@njit(cache=True, inline="always")
def stage_count(ks, st, s, col, t):
    if inside(ks, t):
        st.stage[s, col] += 1


@njit(cache=True, inline="always")
def kpi(ks, st, team, t, amount):
    if inside(ks, t):
        st.team[team, T_KPI] += amount


@njit(cache=True)
def won(ks, st, t, value, cycle):
    st_scalars = st.scalars
    if inside(ks, t):
        st.fates[F_WON] += 1
        st_scalars[S_BOOKINGS] += value
        st_scalars[S_CYCLE_SUM] += cycle
        st.bookings_w[week_of(ks, t)] += value
        st.cycle_hist[min(int(cycle / 24.0), CYCLE_BINS - 1)] += 1


@njit(cache=True, inline="always")
def quit_(ks, st, team, t):
    if inside(ks, t):
        st.team[team, T_QUITS] += 1


@njit(cache=True)
def trust_week(st, k):
    st.trust_w[:, k] = st.trust


@njit(cache=True)
def close(ks, st, t):
    for k in range(ks.n_teams):
        wip_change(ks, st, k, t, 0)
        serving_change(ks, st, k, t, 0)
        buyer_change(ks, st, k, t, 0)
        st.team[k, T_OPEN_END] = st.wip[k] - st.buyer[k]
