"""People: traits drawn per hire, productivity over the ramp, and routing to a person.

Mechanisms: 1 latency, 2 speed, 3 judgement noise, 4 interpretation, 9 ramp, 11 availability,
12 persistence, 13 compliance; routing (pool, round robin, least loaded, by skill).
"""

from __future__ import annotations

import math

from numba import njit

from gtmsim import spec as S
from gtmsim.engines.kernel.rng import (
    beta,
    derive,
    lognormal_mean_one,
    normal,
    poisson,
    uniform,
)
from gtmsim.engines.kernel.state import (
    C_NPEOPLE,
    C_STATUS,
    IDLE,
    NO_LOAD,
    P_ACTIVE,
    P_AVAILABILITY,
    P_COMPLIANT,
    P_GEN,
    P_HABIT,
    P_HIRED,
    P_LATENCY_MULT,
    P_LEAD,
    P_LOAD,
    P_SLOT,
    P_SPEED,
    P_STAFFED_SINCE,
    P_STATE,
    P_TEAM,
    P_THRESHOLD_SHIFT,
    PEOPLE_OVERFLOW,
)

POOL, ROUND_ROBIN, LEAST_LOADED, BY_SKILL = 0, 1, 2, 3
T_SPEED, T_LATENCY, T_THRESHOLD, T_AVAILABILITY = S.T_SPEED, S.T_LATENCY, S.T_THRESHOLD, \
    S.T_AVAILABILITY
T_COMPLIANCE, T_HABIT, SEAT = S.T_COMPLIANCE, S.T_HABIT, S.SEAT_STREAM


@njit(cache=True)
def seat_stream(ks, st, team, slot):
    """Seat (team, slot)'s turnover stream: the first occupant's tenure at the start, then
    each occupant's time to quit, one draw each, whatever the traits drew."""
    out = st.seat_rng[team, slot]
    derive(st.rng_people, team, slot, SEAT, 0, out)


@njit(cache=True)
def hire(ks, st, team, slot, hired, generation, now):
    """A new person in (team, slot): draws the traits; returns the person's row or -1."""
    st_C = st.C
    st_PF = st.PF
    st_PI = st.PI
    pid = st_C[C_NPEOPLE]
    if pid >= st_PF.shape[0]:
        st_C[C_STATUS] = PEOPLE_OVERFLOW
        return -1
    st_C[C_NPEOPLE] = pid + 1
    st_PI[pid, :] = 0
    st_PF[pid, :] = 0.0
    st_PI[pid, P_TEAM] = team
    st_PI[pid, P_SLOT] = slot
    st_PI[pid, P_GEN] = generation
    st_PF[pid, P_HIRED] = hired
    # each trait from its own stream, keyed by the seat, the hire and the trait: a trait that
    # draws nothing (switched off) or a varying number of times leaves the others as they were
    seed, r = st.rng_people, st.trait_rng
    derive(seed, team, slot, generation, T_SPEED, r)
    st_PF[pid, P_SPEED] = lognormal_mean_one(r, ks.speed_s2, ks.speed_sd)
    derive(seed, team, slot, generation, T_LATENCY, r)
    st_PF[pid, P_LATENCY_MULT] = (math.exp(ks.latency_person_sigma * normal(r))
                                  if ks.latency_person_sigma > 0 else 1.0)
    derive(seed, team, slot, generation, T_THRESHOLD, r)
    st_PF[pid, P_THRESHOLD_SHIFT] = ks.threshold_sd * normal(r) if ks.threshold_sd > 0 else 0.0
    derive(seed, team, slot, generation, T_AVAILABILITY, r)
    c, m = ks.availability_concentration, ks.availability_mean
    a = beta(r, m * c, (1 - m) * c) if (c > 0 and m < 1.0) else m
    st_PF[pid, P_AVAILABILITY] = max(a, 0.05)
    derive(seed, team, slot, generation, T_COMPLIANCE, r)
    st_PI[pid, P_COMPLIANT] = 1 if (ks.compliance_p >= 1.0 or uniform(r) < ks.compliance_p) else 0
    derive(seed, team, slot, generation, T_HABIT, r)
    h = ks.habit_attempts
    st_PI[pid, P_HABIT] = (1 + poisson(r, max(h - 1.0, 0.0))) if h > 0 else 0
    st_PI[pid, P_ACTIVE] = 1
    st_PI[pid, P_STATE] = IDLE
    st_PI[pid, P_LEAD] = -1
    st_PF[pid, P_STAFFED_SINCE] = max(now, 0.0)
    st.slot_person[team, slot] = pid
    st.slot_load[team, slot] = 0
    return pid


@njit(cache=True, inline="always")
def ramp(ks, st, pid, t):
    """Productivity of a new hire: ramp_start at hire, 1 after ramp_hours."""
    if ks.ramp_hours <= 0:
        return 1.0
    since = t - st.PF[pid, P_HIRED]
    # past the ramp the fraction is exactly 1 (since / ramp_hours >= 1 when since >=
    # ramp_hours > 0, as a division rounds monotonically): no division on the work's chain
    frac = 1.0 if since >= ks.ramp_hours else min(1.0, max(0.0, since) / ks.ramp_hours)
    return ks.ramp_start + (1 - ks.ramp_start) * frac


@njit(cache=True, inline="always")
def skill(ks, st, pid, t):
    st_PF = st.PF
    return st_PF[pid, P_SPEED] * st_PF[pid, P_AVAILABILITY] * ramp(ks, st, pid, t)


@njit(cache=True)
def work_hours(ks, st, pid, t, effort):
    """Working hours the person needs for `effort` hours of nominal work."""
    return effort / skill(ks, st, pid, t)


@njit(cache=True)
def noise(ks, st, pid, t):
    return ks.noise_sd * (1.0 + ks.ramp_noise * (1.0 - ramp(ks, st, pid, t)))


@njit(cache=True)
def attempts(st, pid, prescribed):
    """12. People give up after their habitual number of attempts, never past the
    prescription; with persistence off everyone makes the prescribed attempts."""
    habit = st.PI[pid, P_HABIT]
    if habit <= 0:
        return prescribed
    return min(prescribed, habit)


@njit(cache=True)
def latency_hours(ks, st, stage, mult):
    """1. Working hours before an item is picked up at `stage`; 0 when latency is off."""
    if ks.latency_median <= 0:
        return 0.0
    return mult * ks.latency_median * math.exp(ks.latency_sigma * normal(st.stage_rng[stage]))


@njit(cache=True, inline="always")
def logit(p):
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


@njit(cache=True)
def perceived(st, stage, q, logit_q, noise_sd):
    """3. Quality as a person at `stage` sees it: logit(q) (the lead's, computed once) plus
    noise, back on the probability scale."""
    if noise_sd <= 0:
        return q
    return 1.0 / (1.0 + math.exp(-(logit_q + noise_sd * normal(st.stage_rng[stage]))))


@njit(cache=True, inline="always")
def active(st, team, slot):
    pid = st.slot_person[team, slot]
    return pid >= 0 and st.PI[pid, P_ACTIVE] == 1


@njit(cache=True)
def assign(ks, st, team, now):
    """A slot for a new item by the team's routing; -1 for the shared pool."""
    st_PI = st.PI
    st_rr = st.rr
    st_slot_person = st.slot_person
    routing = ks.team_routing[team]
    if routing == POOL:
        return -1
    n = ks.team_headcount[team]
    if routing == LEAST_LOADED:
        # the first active slot with the fewest items, from the slots' load row (contiguous,
        # a quitter's slot at NO_LOAD) rather than the people's rows
        loads = st.slot_load[team]
        chosen, best = 0, loads[0]
        for k in range(1, n):
            if loads[k] < best:
                chosen, best = k, loads[k]
        if best == NO_LOAD:
            return int(st_rr[team])  # nobody active: waits for the next hire of that slot
    else:
        any_active = False
        for k in range(n):
            if active(st, team, k):
                any_active = True
                break
        if not any_active:
            return int(st_rr[team])  # waits for the next hire of that slot
        chosen = -1
        if routing == ROUND_ROBIN:
            cand = st_rr[team]  # in [0, n): the way round wraps without a division
            for _ in range(n):
                if active(st, team, cand):
                    st_rr[team] = cand + 1 if cand + 1 < n else 0
                    chosen = cand
                    break
                cand = cand + 1 if cand + 1 < n else 0
        else:  # by skill: load relative to how fast the person gets through work
            best_v = 0.0
            for k in range(n):
                if active(st, team, k):
                    pid = st_slot_person[team, k]
                    v = (st_PI[pid, P_LOAD] + 1) / skill(ks, st, pid, now)
                    if chosen < 0 or v < best_v:
                        chosen, best_v = k, v
    st.slot_load[team, chosen] += 1
    st_PI[st_slot_person[team, chosen], P_LOAD] += 1
    return chosen


@njit(cache=True, inline="always")
def unload(st, team, slot):
    st_PI = st.PI
    pid = st.slot_person[team, slot]
    st_PI[pid, P_LOAD] = max(st_PI[pid, P_LOAD] - 1, 0)
    if st_PI[pid, P_ACTIVE] == 1:
        st.slot_load[team, slot] = st_PI[pid, P_LOAD]
