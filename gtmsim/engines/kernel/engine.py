"""The event loop of one replication, and the parallel batch over replications.

``run_one`` sets up people, channels and the weekly trust snapshots, then pops events off the
event list until the horizon; ``run_batch`` runs replications on a ``prange`` of workers that
take them one at a time, each replication with its own RNG state and its own row of the result
array, so a batch gives the same numbers on any number of threads.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange
from numba.core import types as nbt
from numba.extending import intrinsic

from gtmsim import outcomes as O
from gtmsim.engines.kernel import flow as F
from gtmsim.engines.kernel import record as R
from gtmsim.engines.kernel.calendar import periods, work_done_at
from gtmsim.engines.kernel.heap import pop_next, schedule
from gtmsim.engines.kernel.kspec import private_copy
from gtmsim.engines.kernel.people import hire, logit, seat_stream
from gtmsim.engines.kernel.rng import derive, draw_arrival, exponential, uniform
from gtmsim.engines.kernel.state import (
    C_LFREE,
    C_NLEADS,
    C_NPEOPLE,
    C_STALLED_STAGE,
    C_STARTING,
    C_STATUS,
    CANCELLED,
    EV_ARRIVAL,
    EV_BUYER,
    EV_ENQUEUE,
    EV_HIRE,
    EV_NURTURE,
    EV_QUIT,
    EV_RENEWAL,
    EV_START,
    EV_WEEKLY,
    EV_WORK_DONE,
    FAILED,
    L_CHANNEL,
    L_CREATED,
    L_EDGE,
    L_ENTERED,
    L_ERROR_FROM,
    L_EXPERIENCE,
    L_INTENT_FROM,
    L_LAST_COMPLIANT,
    L_LIVE,
    L_LOGIT,
    L_QUALITY,
    L_REWORK_STAGE,
    L_SLOT,
    L_STAGE,
    L_TOUCH_DELAY,
    L_U_CHURN,
    L_U_LIVE,
    L_U_WIN,
    L_VALUE,
    LEAD_OVERFLOW,
    OK,
    P_GEN,
    P_GONE,
    P_STAFFED_SINCE,
    P_TEAM,
    STALLED,
    STATUS_STAGE,
    STOP_EVERY,
    new_state,
    workspace,
)
from gtmsim.engines.kernel.view import keep, view

S_LEADS, C_LEADS = O.S_LEADS, O.C_LEADS


@njit(cache=True)
def next_arrival(ks, st, c):
    """Schedule channel c's next arrival: Poisson at the week's rate, on working time (or
    calendar time); a gap that runs past the week's end restarts at the next week's rate from
    the boundary (exact for rates that are constant within a week, as the process is
    memoryless); nothing past the horizon."""
    st_chan_clock = st.chan_clock
    st_rng = st.rng_arrivals
    ks_channel_week_mult = ks.channel_week_mult
    rate = ks.channel_rate[c]
    if rate * ks.channel_peak[c] <= 0:
        return
    t = st_chan_clock[c]
    while t < ks.end:
        week = periods(t, 168.0)[0]
        week_end = 168.0 * (week + 1)
        r = rate * ks_channel_week_mult[c, week]
        if r > 0:
            gap = exponential(st_rng, 1.0 / r)
            if ks.channel_working_only[c] == 1:
                at = work_done_at(ks, t, gap)
            else:
                at = t + gap
            if at < week_end:
                st_chan_clock[c] = at
                schedule(st, at, EV_ARRIVAL, c, 0)  # dropped if at or past the end
                return
        t = week_end
    st_chan_clock[c] = t


@njit(cache=True, inline="always")
def arrival(ks, st, c, now):
    """A lead is born in channel c and enters the channel's entry stage."""
    st_C = st.C
    st_LF = st.LF
    st_LI = st.LI
    F.event(st)
    free = st_C[C_LFREE]
    if free > 0:  # the row of a lead whose journey ended
        lead = st.lead_free[free - 1]
        st_C[C_LFREE] = free - 1
    else:
        lead = st_C[C_NLEADS]
        if lead >= st_LF.shape[0]:
            st_C[C_STATUS] = LEAD_OVERFLOW
            return
        st_C[C_NLEADS] = lead + 1
    r = st.rng_arrivals
    q = draw_arrival(ks, st, ks.channel_quality[c])
    v = draw_arrival(ks, st, ks.channel_value[c])
    st_LI[lead, :] = 0
    st_LF[lead, L_CREATED] = now
    st_LF[lead, L_INTENT_FROM] = now
    st_LF[lead, L_QUALITY] = min(max(q, 0.0), 1.0)
    st_LF[lead, L_LOGIT] = logit(st_LF[lead, L_QUALITY])
    st_LF[lead, L_VALUE] = v
    st_LF[lead, L_U_LIVE] = uniform(r)
    st_LF[lead, L_U_WIN] = uniform(r)
    st_LF[lead, L_U_CHURN] = uniform(r)
    st_LF[lead, L_TOUCH_DELAY] = np.nan
    st_LF[lead, L_EXPERIENCE] = 1.0
    st_LF[lead, L_ENTERED] = -1.0  # before any stage (the row may hold an old lead's time)
    st_LI[lead, L_CHANNEL] = c
    st_LI[lead, L_LIVE] = 1
    st_LI[lead, L_ERROR_FROM] = -1
    st_LI[lead, L_REWORK_STAGE] = -1
    st_LI[lead, L_STAGE] = -1
    st_LI[lead, L_EDGE] = -1
    st_LI[lead, L_SLOT] = -1
    st_LI[lead, L_LAST_COMPLIANT] = 1
    R.add(ks, st, S_LEADS, now, 1.0)
    R.channel(ks, st, c, C_LEADS, now, 1.0)
    F.enter(ks, st, lead, ks.channel_entry[c], -1, True, now)
    next_arrival(ks, st, c)


@njit(cache=True)
def run_one(ks, st, stop):
    """One replication on fresh state `st`; returns a status (0: ok, else a table that was
    too small, ...). It gives up, CANCELLED, once stop[0] is set."""
    st_C = st.C
    st_PI = st.PI
    st_slot_person = st.slot_person
    ks_team_headcount = ks.team_headcount
    # each stage its own work stream, so that a change confined to one stage (its team's
    # size, its effort, its threshold) moves no other stage's draws
    for s in range(ks.n_stages):
        derive(st.rng, s, 0, 0, 0, st.stage_rng[s])
    for team in range(ks.n_teams):
        for slot in range(ks_team_headcount[team]):
            seat_stream(ks, st, team, slot)
            r = st.seat_rng[team, slot]
            hired = -exponential(r, 1.0 / ks.attrition_rate) if ks.attrition_rate > 0 else -1e9
            hire(ks, st, team, slot, hired, 0, 0.0)
            if ks.attrition_rate > 0:
                schedule(st, exponential(r, 1.0 / ks.attrition_rate), EV_QUIT, team, slot)
    if st_C[C_STATUS] != OK:
        return st_C[C_STATUS]
    for team in range(ks.n_teams):
        for slot in range(ks_team_headcount[team]):
            F.seek(ks, st, st_slot_person[team, slot], 0.0)
    for c in range(ks.n_channels):
        next_arrival(ks, st, c)
    if ks.n_weeks > 1:
        schedule(st, ks.warmup + 168.0, EV_WEEKLY, 0, 0)
    end = ks.end
    steps = 0
    while st_C[C_STATUS] == OK:
        steps += 1
        if steps % STOP_EVERY == 0 and stop[0] != 0:
            return CANCELLED
        starting = st_C[C_STARTING]
        if starting >= 0:  # a person's START due next (see flow._claim)
            st_C[C_STARTING] = -1
            F.start(ks, st, starting, st.now[0])
            continue
        t, kind, a, b = pop_next(st, end)
        if kind < 0:
            break
        st.now[0] = t
        if kind == EV_ARRIVAL:
            arrival(ks, st, a, t)
        elif kind == EV_ENQUEUE:
            F.enqueue(ks, st, a, b, t)
        elif kind == EV_START:
            F.start(ks, st, a, t)
        elif kind == EV_WORK_DONE:
            F.work_done(ks, st, a, b, t)
        elif kind == EV_BUYER:
            F.buyer_decides(ks, st, a, t)
        elif kind == EV_RENEWAL:
            F.renewal(ks, st, a, b, t)
        elif kind == EV_NURTURE:
            F.nurture_return(ks, st, a, t)
        elif kind == EV_QUIT:
            F.quit_job(ks, st, a, b, t)
            schedule(st, t + ks.vacancy_hours, EV_HIRE, a, b)
        elif kind == EV_HIRE:
            F.event(st)
            old = st_slot_person[a, b]
            pid = hire(ks, st, a, b, t, st_PI[old, P_GEN] + 1, t)
            if pid >= 0:
                F.seek(ks, st, pid, t)
                schedule(st, t + exponential(st.seat_rng[a, b], 1.0 / ks.attrition_rate),
                         EV_QUIT, a, b)
        else:  # EV_WEEKLY
            R.trust_week(st, a)
            if a + 1 < ks.n_weeks - 1:
                schedule(st, ks.warmup + 168.0 * (a + 2), EV_WEEKLY, a + 1, 0)
    if st_C[C_STATUS] == STALLED:  # with the stage the lead was going round at
        return STALLED + STATUS_STAGE * st_C[C_STALLED_STAGE]
    if st_C[C_STATUS] != OK:
        return st_C[C_STATUS]
    # everyone still there, including those who quit and are finishing their last lead
    for pid in range(st_C[C_NPEOPLE]):
        if st_PI[pid, P_GONE] == 0:
            R.staffed(ks, st, st_PI[pid, P_TEAM], st.PF[pid, P_STAFFED_SINCE], end)
    R.close(ks, st, end)
    R.trust_week(st, ks.n_weeks - 1)
    st.trust_end[:] = st.trust
    return OK


@intrinsic
def take_next(typingctx, counter):
    """counter[0] += 1, atomically, returning what it held: threads sharing the counter each
    get a number of their own, every number once, in the order they ask."""
    if not (isinstance(counter, nbt.Array) and counter.dtype == nbt.int64):
        return None

    def codegen(context, builder, sig, args):
        ary = context.make_array(sig.args[0])(context, builder, value=args[0])
        one = context.get_constant(nbt.int64, 1)
        return builder.atomic_rmw("add", ary.data, one, "monotonic")

    return nbt.int64(counter), codegen


@njit(cache=True)
def run_worker(ks, seeds, out, status, offsets, lead_cap, people_cap, queue_cap, taken, stop):
    """Replications taken one at a time (by `taken`, a counter shared with the other workers)
    on the calling thread, with thread-private copies of everything the event loop touches
    (spec arrays, offsets, workspace, a tally row), made once: threads share no reference
    count and no cache line until a finished row is copied out. A worker whose core is busy
    with other work takes fewer replications, not an equal share (which left the other
    thread idle at the end of the batch)."""
    kc = private_copy(ks)
    offs = offsets.copy()
    w = workspace(kc, lead_cap, people_cap, queue_cap)
    row = np.zeros(out.shape[1])
    n = seeds.shape[0]
    while True:
        i = take_next(taken)
        if i >= n or stop[0] != 0:
            break
        st = new_state(kc, seeds[i], row, offs, w)
        # the event loop reads both through reference-free views; kc, st, w and row own
        # what the views point to and stay alive past the call
        try:
            status[i] = run_one(view(kc), view(st), stop)
        except Exception:  # noqa: BLE001
            # an error inside the model (a division by zero, say): a prange loop would drop
            # it and leave the row as it stood, so it becomes the replication's status
            status[i] = FAILED
        keep(st)
        out[i, :] = row
    keep(kc)
    keep(w)


@njit(cache=True, parallel=True, nogil=True)
def run_batch(ks, seeds, out, status, offsets, lead_cap, people_cap, queue_cap, workers, stop):
    """Replications on `workers` threads: row i of `out` is the tally of the replication
    seeded by seeds[i], whichever thread ran it; status[i] is 0, or the table it outgrew.
    Setting stop[0] (from another thread: the GIL is let go) ends the batch within a few
    thousand events, its unfinished rows CANCELLED."""
    taken = np.zeros(1, dtype=np.int64)
    for _ in prange(workers):
        run_worker(ks, seeds, out, status, offsets, lead_cap, people_cap, queue_cap, taken,
                   stop)


@njit(cache=True, nogil=True)
def run_serial(ks, seeds, out, status, offsets, lead_cap, people_cap, queue_cap, workers,
               stop):
    """The same as run_batch on the calling thread only."""
    run_worker(ks, seeds, out, status, offsets, lead_cap, people_cap, queue_cap,
               np.zeros(1, dtype=np.int64), stop)
