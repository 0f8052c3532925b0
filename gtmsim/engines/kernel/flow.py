"""How a lead moves: entering a stage through a handoff, waiting, being worked and decided on,
routed on; people taking work from their queues; quota pressure; turnover.

Each function is the kernel twin of the SimPy engine's method of the same name. A person's
handling of a lead is a SimPy generator there; here it is a chain of work steps, each ending in
a WORK_DONE event that carries the `phase` where the handling resumes.
"""

from __future__ import annotations

import math

from numba import njit

from gtmsim import outcomes as O
from gtmsim import spec as S
from gtmsim.engines.kernel import record as R
from gtmsim.engines.kernel.calendar import periods, work_done_at
from gtmsim.engines.kernel.heap import nothing_due_at, q_pop, q_push, schedule
from gtmsim.engines.kernel.people import (
    POOL,
    active,
    assign,
    attempts,
    latency_hours,
    noise,
    perceived,
    unload,
    work_hours,
)
from gtmsim.engines.kernel.rng import draw, draw_times_multiplier, uniform
from gtmsim.engines.kernel.state import (
    BUSY,
    C_LFREE,
    C_QSEQ,
    C_STALLED_STAGE,
    C_STARTING,
    C_STATUS,
    C_WSEQ,
    CLAIMED,
    EV_BUYER,
    EV_ENQUEUE,
    EV_NURTURE,
    EV_RENEWAL,
    EV_START,
    EV_WORK_DONE,
    GONE,
    IDLE,
    L_ATTEMPT,
    L_CHANNEL,
    L_CREATED,
    L_EDGE,
    L_ENTERED,
    L_ERROR_FROM,
    L_EXPERIENCE,
    L_INFO_LOST,
    L_INTENT_FROM,
    L_LAST_COMPLIANT,
    L_LIVE,
    L_LOGIT,
    L_MAX_ATTEMPTS,
    L_QUALITY,
    L_REWORK_STAGE,
    L_SAME_INSTANT,
    L_SLOT,
    L_STAGE,
    L_TOUCH_DELAY,
    L_TOUCHED,
    L_U_CHURN,
    L_U_LIVE,
    L_U_WIN,
    L_VALUE,
    L_WARM_PENDING,
    NO_LOAD,
    P_ACTIVE,
    P_AUX,
    P_COMPLIANT,
    P_GONE,
    P_LATENCY_MULT,
    P_LEAD,
    P_OUTCOME,
    P_QCLS,
    P_QKEY,
    P_QSEQ,
    P_QUEUE,
    P_STAFFED_SINCE,
    P_STATE,
    P_TEAM,
    P_THRESHOLD_SHIFT,
    P_WAIT_SEQ,
    SAME_INSTANT_LIMIT,
    STALLED,
    WAITING,
)
from gtmsim.engines.kernel.view import plain

ESCALATED, NORMAL = 0, 1
REVIEW, CONTACT, CLOSE, RETAIN = S.REVIEW, S.CONTACT, S.CLOSE, S.RETAIN
QUALIFIED, RECYCLED, REJECTED, UNREACHED, WON, LOST = range(6)
NURTURE, DISQUALIFIED, LOST_FATE, CUSTOMER = S.NURTURE, S.DISQUALIFIED, S.LOST_FATE, S.CUSTOMER
WARM = S.PROTOCOLS["warm"]
FIFO, SCORE, NEWEST = 0, 1, 2
QUARTER = S.QUARTER
# where a person resumes after a work step
(PH_REWORK, PH_REVIEW, PH_ATTEMPT, PH_CONTACT_MAIN, PH_CLOSE_DECAYED, PH_CLOSE_MAIN,
 PH_RETAIN, PH_HANDOFF) = range(8)
S_EVENTS, S_REWORK, S_OPPS, S_PIPELINE = O.S_EVENTS, O.S_REWORK, O.S_OPPS, O.S_PIPELINE
S_BUYER_LOSSES = O.S_BUYER_LOSSES
ST_LEAKS = O.ST_LEAKS
ST_WON, ST_LOST, ST_DISQUALIFIED, ST_NURTURED = (O.ST_WON, O.ST_LOST, O.ST_DISQUALIFIED,
                                                 O.ST_NURTURED)
ST_DECISIONS, ST_QUALIFIED, ST_RENEWALS, ST_CHURNS = (O.ST_DECISIONS, O.ST_QUALIFIED,
                                                      O.ST_RENEWALS, O.ST_CHURNS)
ST_NURTURE_RETURNS, ST_REWORK_RETURNS, ST_REWORK_SENT_BACK = (
    O.ST_NURTURE_RETURNS, O.ST_REWORK_RETURNS, O.ST_REWORK_SENT_BACK)
ROUTED = O.ROUTED  # the routed_ counter of each route outcome, -1 for none
C_CONTACT_LEADS, C_ATTEMPTS, C_NEVER_CONTACTED = (O.C_CONTACT_LEADS, O.C_ATTEMPTS,
                                                  O.C_NEVER_CONTACTED)
C_FAST_TOUCHED, C_FAST_QUALIFIED = O.C_FAST_TOUCHED, O.C_FAST_QUALIFIED
C_SLOW_TOUCHED, C_SLOW_QUALIFIED = O.C_SLOW_TOUCHED, O.C_SLOW_QUALIFIED
F_LOST, F_DISQUALIFIED, F_NURTURED, F_CHURNED, F_RETAINED = (O.F_LOST, O.F_DISQUALIFIED,
                                                            O.F_NURTURED, O.F_CHURNED,
                                                            O.F_RETAINED)
F_FORGOTTEN, F_DECAYED, F_IGNORED, F_HANDOFF, F_TURNOVER = (O.F_FORGOTTEN, O.F_DECAYED,
                                                           O.F_IGNORED, O.F_HANDOFF,
                                                           O.F_TURNOVER)


@njit(cache=True, inline="always")
def event(st):
    st.scalars[S_EVENTS] += 1


# ------------------------------------------------------------------ quota pressure (10)


@njit(cache=True)
def quarter(st, team, now):
    st_quarter_of = st.quarter_of
    st_renewals_quarter = st.renewals_quarter
    q = periods(now, QUARTER)[0]
    if q != st_quarter_of[team]:
        st_quarter_of[team] = q
        st.kpi_quarter[team] = 0.0
        st_renewals_quarter[team, 0] = 0.0
        st_renewals_quarter[team, 1] = 0.0


@njit(cache=True, inline="always")
def kpi(ks, st, team, stage, metric, amount, now):
    """Count toward the team's KPI, if this stage and metric are its KPI's (answered here,
    inline: most calls are not)."""
    if ks.team_kpi_stage[team] != stage or ks.team_kpi_metric[team] != metric:
        return
    _kpi(ks, st, team, amount, now)


@njit(cache=True)
def _kpi(ks, st, team, amount, now):
    quarter(st, team, now)
    st.kpi_quarter[team] += amount
    R.kpi(ks, st, team, now, amount)


@njit(cache=True, inline="always")
def pressure(ks, st, team, now):
    """How far behind its quarterly target the team is, near the quarter's end: 0 before the
    quarter's pressure window opens (most calls, answered here, inline), else `_pressure`."""
    if ks.pressure_on == 0.0 or ks.team_kpi_metric[team] < 0 or now < st.calm_until[0]:
        return 0.0
    return _pressure(ks, st, team, now)


@njit(cache=True)
def _pressure(ks, st, team, now):
    """`pressure` once its inline tests have passed (pressure on, a KPI, past calm_until)."""
    st_renewals_quarter = st.renewals_quarter
    metric = ks.team_kpi_metric[team]
    into = periods(now, QUARTER)[1]
    if QUARTER - into > ks.pressure_window:
        # nobody feels pressure before this quarter's window opens (a microsecond early, so
        # the shortcut never decides a time the exact test in `pressure` would not)
        st.calm_until[0] = now + (QUARTER - into - ks.pressure_window) - 1e-6
        return 0.0
    quarter(st, team, now)
    target = ks.team_kpi_target[team]
    if metric == 3:
        ren, churn = st_renewals_quarter[team, 0], st_renewals_quarter[team, 1]
        attainment = ((ren - churn) / ren if ren > 0 else 1.0) / target
    elif target * into / QUARTER > 0.0:
        attainment = st.kpi_quarter[team] / (target * into / QUARTER)
    else:  # a quarter's first instant (a window of the whole quarter), or a target too small
        attainment = 1.0  # for a float to hold its share: nothing expected yet
    return min(1.0, max(0.0, 1.0 - attainment)) * (1.0 - ks.shared_kpi_share)


# ------------------------------------------------------------------ trust (8), feedback


@njit(cache=True, inline="always")
def trust_update(ks, st, edge, outcome):
    st_trust = st.trust
    if edge >= 0:
        st_trust[edge] += ks.trust_rate * (outcome - st_trust[edge])


@njit(cache=True, inline="always")
def judged(ks, st, lead, good):
    """The receiver's verdict on a lead sent through a handoff (none for a lead that came
    in from a channel: answered here, inline)."""
    edge = st.LI[lead, L_EDGE]
    if edge < 0:
        return
    _judged(ks, st, edge, good)


@njit(cache=True)
def _judged(ks, st, edge, good):
    st_feedback_shift = st.feedback_shift
    trust_update(ks, st, edge, 1.0 if good else 0.0)
    if ks.feedback_on != 0.0:
        u = ks.edge_from[edge]
        step = ks.feedback_gain * ((0.0 if good else 1.0) - ks.feedback_target)
        m = ks.feedback_max_shift
        st_feedback_shift[u] = min(max(st_feedback_shift[u] + step, -m), m)


# ------------------------------------------------------------------ leaving a stage


@njit(cache=True)
def depart(ks, st, lead, now):
    st_LI = st.LI
    s = st_LI[lead, L_STAGE]
    team = ks.stage_team[s]
    R.team_departure(ks, st, team, st.LF[lead, L_ENTERED], now)
    if st_LI[lead, L_REWORK_STAGE] == s:
        st_LI[lead, L_REWORK_STAGE] = -1
    if st_LI[lead, L_SLOT] >= 0:
        unload(st, team, st_LI[lead, L_SLOT])
        st_LI[lead, L_SLOT] = -1


@njit(cache=True)
def end(ks, st, lead, f, now):
    """The lead's journey ends in fate f: counted, and its row is free for a new lead (only the
    counts outlive it), so the lead table holds the leads in play, not every lead ever born.
    A leak is counted at the stage where it happened, too."""
    R.fate(ks, st, f, now)
    if f >= F_FORGOTTEN:
        R.stage_count(ks, st, st.LI[lead, L_STAGE], ST_LEAKS, now)
    C = st.C
    st.lead_free[C[C_LFREE]] = lead
    C[C_LFREE] += 1


@njit(cache=True)
def leave(ks, st, lead, f, now):
    depart(ks, st, lead, now)
    end(ks, st, lead, f, now)


# ------------------------------------------------------------------ queues and takers


@njit(cache=True)
def _claim(ks, st, pid, q, now):
    """Person pid takes the first item of queue q."""
    cls, key, seq, lead = q_pop(st, q)
    _take(ks, st, pid, q, cls, key, seq, lead, now)


@njit(cache=True)
def _take(ks, st, pid, q, cls, key, seq, lead, now):
    """Person pid takes item (cls, key, seq) -> lead of queue q and starts on it now."""
    st_PI = st.PI
    st_PI[pid, P_STATE] = CLAIMED
    st_PI[pid, P_LEAD] = lead
    st_PI[pid, P_QCLS] = cls
    st.PF[pid, P_QKEY] = key
    st_PI[pid, P_QSEQ] = seq
    st_PI[pid, P_QUEUE] = q
    C = st.C
    if C[C_STARTING] < 0 and nothing_due_at(st, now):
        # its START would be the next event (anything scheduled later in this instant comes
        # after it): the event loop runs it next without putting it on the event list
        C[C_STARTING] = pid
    else:
        schedule(st, now, EV_START, pid, 0)


@njit(cache=True)
def offer(ks, st, team, q, now):
    """An item was put in queue q of `team`: the person waiting on it takes it."""
    if st.qlen[q] == 0:
        return
    taker = taker_of(ks, st, team, q)
    if taker >= 0:
        _claim(ks, st, taker, q, now)


@njit(cache=True)
def taker_of(ks, st, team, q):
    """The person waiting on queue q of `team` (first come, for a pool), or -1. The caller
    knows the team, so a person's queue needs no search for its team. A pool's waiting people
    stand in a line (``st.waiting``: each person joins once per wait, and the line holds at
    most every person the team ever had), so finding one is O(1); the line moves past the
    person found (who takes the item) and past anyone no longer waiting."""
    st_PI = st.PI
    st_slot_person = st.slot_person
    ks_slot_q0 = ks.slot_q0
    taker = -1
    if q < ks.n_teams:
        # the pool's line of waiting people, in the order they began to wait; a person who
        # left meanwhile (quit) is skipped
        line, ends = st.waiting, st.waiting_ends
        head, tail = ends[q, 0], ends[q, 1]
        while head < tail:
            pid = line[q, head & (line.shape[1] - 1)]
            head += 1
            if st_PI[pid, P_STATE] == WAITING:
                taker = pid
                break
        ends[q, 0] = head
    else:
        pid = st_slot_person[team, q - ks_slot_q0[team]]
        if pid >= 0 and st_PI[pid, P_STATE] == WAITING:
            taker = pid
    return taker


@njit(cache=True)
def queue_of(ks, st, pid):
    st_PI = st.PI
    team = st_PI[pid, P_TEAM]
    if ks.team_routing[team] == POOL:
        return team
    return ks.slot_q0[team] + st_PI[pid, 1]  # P_SLOT


@njit(cache=True)
def seek(ks, st, pid, now):
    """A free, active person asks its queue for work: takes the first item or waits."""
    st_C = st.C
    st_PI = st.PI
    q = queue_of(ks, st, pid)
    if st.qlen[q] > 0:
        _claim(ks, st, pid, q, now)
    else:
        st_PI[pid, P_STATE] = WAITING
        st_PI[pid, P_WAIT_SEQ] = st_C[C_WSEQ]
        st_C[C_WSEQ] += 1
        if q < ks.n_teams:  # a pool: the person joins the end of its line
            line, ends = st.waiting, st.waiting_ends
            tail = ends[q, 1]
            line[q, tail & (line.shape[1] - 1)] = pid
            ends[q, 1] = tail + 1


@njit(cache=True, inline="always")
def enqueue(ks, st, lead, cls, now):
    """Put a lead in its person's queue (push) or its team's pool, by the discipline."""
    st_LI = st.LI
    event(st)
    team = ks.stage_team[st_LI[lead, L_STAGE]]
    discipline = ks.team_discipline[team]
    if discipline == FIFO:
        key = now
    elif discipline == NEWEST:
        key = -now
    else:
        key = -perceived(st, st.LI[lead, L_STAGE], st.LF[lead, L_QUALITY], st.LF[lead, L_LOGIT],
                         ks.noise_sd)
    slot = st_LI[lead, L_SLOT]
    if slot < 0:
        q = team
    else:
        if not active(st, team, slot):
            ns = assign(ks, st, team, now)
            if ns != slot and ns >= 0:
                unload(st, team, slot)
                st_LI[lead, L_SLOT] = ns
        q = ks.slot_q0[team] + st_LI[lead, L_SLOT]
    if st.qlen[q] == 0:
        taker = taker_of(ks, st, team, q)
        if taker >= 0:  # someone waits on the empty queue: the item goes to them directly,
            C = st.C  # with the sequence number the queue would have given it
            seq = C[C_QSEQ]
            C[C_QSEQ] = seq + 1
            _take(ks, st, taker, q, cls, key, seq, lead, now)
            return
    if q_push(st, q, cls, key, -1, lead):
        offer(ks, st, team, q, now)


# ------------------------------------------------------------------ entering a stage


@njit(cache=True, inline="always")
def enter(ks, st, lead, s, edge, sender_compliant, now):
    """A lead arrives at stage s, through handoff `edge` (or -1)."""
    _enter(ks, st, lead, plain(s), plain(edge), plain(sender_compliant), now)


@njit(cache=True)
def _enter(ks, st, lead, s, edge, sender_compliant, now):
    st_LF = st.LF
    st_LI = st.LI
    st_trust = st.trust
    r = st.stage_rng[s]
    team = ks.stage_team[s]
    if st_LF[lead, L_ENTERED] == now:
        st_LI[lead, L_SAME_INSTANT] += 1
        if st_LI[lead, L_SAME_INSTANT] >= SAME_INSTANT_LIMIT:
            st.C[C_STATUS] = STALLED
            st.C[C_STALLED_STAGE] = s
            return
    else:
        st_LI[lead, L_SAME_INSTANT] = 0
    st_LI[lead, L_STAGE] = s
    st_LI[lead, L_EDGE] = edge
    st_LF[lead, L_ENTERED] = now
    st_LI[lead, L_ATTEMPT] = 0
    # a handoff's extra effort (context lost, a warm handoff) is its receiver's: what a stage
    # the lead left unworked (sent back, unreached) leaves behind is dropped here
    st_LI[lead, L_INFO_LOST] = 0
    st_LI[lead, L_WARM_PENDING] = 0
    R.wip_change(ks, st, team, now, 1)
    if edge >= 0:
        # 7. handoff loss: a CRM drop may lose the lead or its context; warm loses less
        warm = ks.edge_protocol[edge] == WARM and sender_compliant
        if not warm and uniform(r) < ks.leak_crm:
            leave(ks, st, lead, F_HANDOFF, now)
            return
        if uniform(r) < (ks.loss_warm if warm else ks.loss_crm):
            st_LI[lead, L_INFO_LOST] = 1
            st_LF[lead, L_EXPERIENCE] *= 1.0 - ks.experience_penalty
        st_LI[lead, L_WARM_PENDING] = 1 if warm else 0
        # 8. low trust: the receiver may ignore what it is sent
        distrust = 1.0 - st_trust[edge]
        if ks.trust_ignore > 0 and uniform(r) < ks.trust_ignore * distrust * distrust:
            leave(ks, st, lead, F_IGNORED, now)
            return
    slot = assign(ks, st, team, now)
    pid = st.slot_person[team, slot] if slot >= 0 else -1
    st_LI[lead, L_SLOT] = slot
    if pid >= 0:
        compliant = st.PI[pid, P_COMPLIANT] == 1
        mult = st.PF[pid, P_LATENCY_MULT]
    else:
        compliant = uniform(r) < ks.compliance_p
        mult = 1.0
    # 1. response latency, slower when trust is low; 13. the compliant keep the SLA
    lat = ks.team_latency_scale[team] * latency_hours(ks, st, s, mult)
    if edge >= 0:
        lat *= 1.0 + ks.trust_latency * (1.0 - st_trust[edge])
    sla = ks.edge_sla[edge] if edge >= 0 else ks.stage_sla[s]
    if compliant and math.isfinite(sla):
        lat = min(lat, sla)
    # 5. forgetting: the item sits until the SLA escalation finds it, or leaks
    if ks.forget_p > 0 and uniform(r) < ks.forget_p:
        if not math.isfinite(sla):
            leave(ks, st, lead, F_FORGOTTEN, now)
            return
        found = work_done_at(ks, now, sla + ks.escalation_hours)
        schedule(st, found, EV_ENQUEUE, lead, ESCALATED)
    elif lat > 0:
        schedule(st, work_done_at(ks, now, lat), EV_ENQUEUE, lead, NORMAL)
    else:
        enqueue(ks, st, lead, NORMAL, now)


@njit(cache=True, inline="always")
def forward(ks, st, lead, outcome, compliant, now):
    """The lead leaves its stage for where the outcome routes it."""
    _forward(ks, st, lead, plain(outcome), plain(compliant), now)


@njit(cache=True)
def _forward(ks, st, lead, outcome, compliant, now):
    s = st.LI[lead, L_STAGE]
    st_rng = st.stage_rng[s]
    target = ks.route[s, outcome]
    depart(ks, st, lead, now)
    if target >= 0:
        routed = ROUTED[outcome]
        if routed >= 0:  # on to a stage recycled, rejected, unreached or lost
            R.stage_count(ks, st, s, routed, now)
        enter(ks, st, lead, target, ks.edge_of[s, target], compliant, now)
    elif target == NURTURE:
        R.stage_count(ks, st, s, ST_NURTURED, now)
        if ks.nurture_return_p > 0 and uniform(st_rng) < ks.nurture_return_p:
            R.fate(ks, st, F_NURTURED, now)  # the lead comes back later
            delay = draw(ks, st, s, ks.nurture_return_after)
            schedule(st, now + delay, EV_NURTURE, lead, 0)
        else:
            end(ks, st, lead, F_NURTURED, now)
    elif target == DISQUALIFIED:
        R.stage_count(ks, st, s, ST_DISQUALIFIED, now)
        end(ks, st, lead, F_DISQUALIFIED, now)
    elif target == LOST_FATE:
        R.stage_count(ks, st, s, ST_LOST, now)
        end(ks, st, lead, F_LOST, now)
    elif target == CUSTOMER:
        end(ks, st, lead, F_RETAINED, now)


@njit(cache=True)
def nurture_return(ks, st, lead, now):
    """A recycled lead comes back with fresh intent (a re-engagement)."""
    st_LI = st.LI
    event(st)
    st.LF[lead, L_INTENT_FROM] = now
    st_LI[lead, L_TOUCHED] = 0
    st_LI[lead, L_LIVE] = 1
    s = ks.nurture_return_stage
    s = ks.channel_entry[st_LI[lead, L_CHANNEL]] if s < 0 else s
    st.LF[lead, L_U_LIVE] = uniform(st.stage_rng[s])  # a re-engaged buyer: fresh intent
    st_LI[lead, L_ERROR_FROM] = -1  # and judged afresh: no stage is left to catch an old error
    R.stage_count(ks, st, s, ST_NURTURE_RETURNS, now)
    enter(ks, st, lead, s, -1, True, now)


# ------------------------------------------------------------------ people at work


@njit(cache=True, inline="always")
def work(ks, st, pid, lead, effort, phase, now):
    """Person pid spends `effort` nominal hours on the lead; resumes at `phase` when done."""
    _work(ks, st, pid, lead, effort, plain(phase), now)  # one compiled copy for every phase


@njit(cache=True)
def _work(ks, st, pid, lead, effort, phase, now):
    st_LI = st.LI
    st_PI = st.PI
    hours = work_hours(ks, st, pid, now, effort)
    done = work_done_at(ks, now, hours)
    team = st_PI[pid, P_TEAM]
    R.busy(ks, st, team, now, done, hours)
    if st_LI[lead, L_REWORK_STAGE] == st_LI[lead, L_STAGE]:
        R.add(ks, st, S_REWORK, now, hours)
    # the phase travels with the event: the event loop branches on it without first reading
    # the person's row
    schedule(st, done, EV_WORK_DONE, pid, phase)


@njit(cache=True)
def left(ks, st, pid, now):
    st_PI = st.PI
    if st_PI[pid, P_GONE] == 0:
        st_PI[pid, P_GONE] = 1
        R.staffed(ks, st, st_PI[pid, P_TEAM], st.PF[pid, P_STAFFED_SINCE], now)


@njit(cache=True)
def finish(ks, st, pid, now):
    """The person is done with the lead: takes the next one, or leaves if it has quit."""
    st_PI = st.PI
    R.serving_change(ks, st, st_PI[pid, P_TEAM], now, -1)
    st_PI[pid, P_LEAD] = -1
    if st_PI[pid, P_ACTIVE] == 1:
        st_PI[pid, P_STATE] = IDLE
        seek(ks, st, pid, now)
    else:
        st_PI[pid, P_STATE] = GONE
        left(ks, st, pid, now)


@njit(cache=True)
def touch(ks, st, lead, now):
    """The first meaningful touch: the lead turns out live or gone cold."""
    st_LF = st.LF
    st_LI = st.LI
    c = st_LI[lead, L_CHANNEL]
    delay = now - st_LF[lead, L_INTENT_FROM]
    st_LI[lead, L_TOUCHED] = 1
    st_LF[lead, L_TOUCH_DELAY] = delay
    floor = ks.channel_intent_floor[c]
    p = floor + (1.0 - floor) * math.exp(-delay / ks.channel_intent_tau[c])
    st_LI[lead, L_LIVE] = 1 if st_LF[lead, L_U_LIVE] < p else 0


@njit(cache=True)
def effort_of(ks, st, lead, now):
    """Nominal hours of the stage's main task, plus what the human mechanisms add, less the
    corners cut under quota pressure."""
    st_LI = st.LI
    s = st_LI[lead, L_STAGE]
    base = draw_times_multiplier(ks, st, s, ks.stage_effort[s], ks.task_s2, ks.task_sd)
    base *= 1.0 - ks.pressure_corner_cut * pressure(ks, st, ks.stage_team[s], now)
    if st_LI[lead, L_INFO_LOST] == 1:
        base += ks.rediscovery_hours
        st_LI[lead, L_INFO_LOST] = 0
    if st_LI[lead, L_WARM_PENDING] == 1:
        base += ks.warm_hours
        st_LI[lead, L_WARM_PENDING] = 0
    edge = st_LI[lead, L_EDGE]
    if edge >= 0:
        base += ks.trust_requalify * (1.0 - st.trust[edge])
    return base


@njit(cache=True, inline="always")
def caught(ks, st, pid, lead, now):
    """6. An upstream error is caught here (rework upstream) or slips through; most leads
    carry none (answered here, inline)."""
    if st.LI[lead, L_ERROR_FROM] < 0:
        return False
    return _caught(ks, st, pid, lead, now)


@njit(cache=True)
def _caught(ks, st, pid, lead, now):
    st_LI = st.LI
    upstream = st_LI[lead, L_ERROR_FROM]
    st_LI[lead, L_ERROR_FROM] = -1
    if uniform(st.stage_rng[st_LI[lead, L_STAGE]]) >= ks.error_caught:
        st.LF[lead, L_EXPERIENCE] *= 1.0 - ks.error_win_penalty
        return False
    st_LI[lead, L_REWORK_STAGE] = st_LI[lead, L_STAGE]
    st.PI[pid, P_AUX] = upstream
    work(ks, st, pid, lead, ks.rediscovery_hours, PH_REWORK, now)
    return True


@njit(cache=True)
def decide(ks, st, pid, lead, now):
    """3, 4, 10: perceived quality against the person's (shifted) threshold."""
    s = st.LI[lead, L_STAGE]
    team = ks.stage_team[s]
    shift = (st.PF[pid, P_THRESHOLD_SHIFT] + st.feedback_shift[s]
             - ks.pressure_threshold_drop * pressure(ks, st, team, now))
    seen = perceived(st, s, st.LF[lead, L_QUALITY], st.LF[lead, L_LOGIT],
                     noise(ks, st, pid, now))
    if seen >= ks.stage_threshold[s] + shift:
        outcome = QUALIFIED
    elif seen < ks.stage_reject_below[s] + shift:
        outcome = REJECTED
    else:
        outcome = RECYCLED
    R.stage_count(ks, st, s, ST_DECISIONS, now)
    if outcome == QUALIFIED:
        R.stage_count(ks, st, s, ST_QUALIFIED, now)
        kpi(ks, st, team, s, 0, 1.0, now)
    judged(ks, st, lead, outcome != REJECTED)
    return outcome


@njit(cache=True)
def error(ks, st, lead, now):
    """6, 10: an execution error, likelier under quota pressure."""
    s = st.LI[lead, L_STAGE]
    p_err = ks.error_p + ks.pressure_error * pressure(ks, st, ks.stage_team[s], now)
    return p_err > 0 and uniform(st.stage_rng[s]) < p_err


@njit(cache=True, inline="always")
def main_task(ks, st, pid, lead, phase, now):
    """Catch an upstream error, or do the stage's main task (deciding unless retaining)."""
    if caught(ks, st, pid, lead, now):
        return
    effort = effort_of(ks, st, lead, now)
    if phase != PH_RETAIN:
        st.PI[pid, P_OUTCOME] = decide(ks, st, pid, lead, now)
    work(ks, st, pid, lead, effort, phase, now)


@njit(cache=True, inline="always")
def route(ks, st, pid, lead, outcome, now):
    """Send the lead where the outcome says; a compliant sender holds a warm handoff."""
    st_LI = st.LI
    st_PI = st.PI
    s = st_LI[lead, L_STAGE]
    target = ks.route[s, outcome]
    compliant = st_PI[pid, P_COMPLIANT] == 1
    if target >= 0 and outcome == QUALIFIED and error(ks, st, lead, now):
        st_LI[lead, L_ERROR_FROM] = s  # 6. to be caught downstream, or not
    if target >= 0:
        edge = ks.edge_of[s, target]
        if edge >= 0 and ks.edge_protocol[edge] == WARM and compliant:
            st_PI[pid, P_OUTCOME] = outcome
            work(ks, st, pid, lead, ks.warm_hours, PH_HANDOFF, now)
            return
    forward(ks, st, lead, outcome, compliant, now)
    finish(ks, st, pid, now)


@njit(cache=True)
def contact_done(ks, st, lead, contacted, qualified, now):
    """Lead-response facts per channel: attempts, never contacted, speed to first touch."""
    st_LI = st.LI
    c = st_LI[lead, L_CHANNEL]
    R.channel(ks, st, c, C_CONTACT_LEADS, now, 1.0)
    R.channel(ks, st, c, C_ATTEMPTS, now, float(st_LI[lead, L_ATTEMPT]))
    if not contacted:
        R.channel(ks, st, c, C_NEVER_CONTACTED, now, 1.0)
    d = st.LF[lead, L_TOUCH_DELAY]
    if d <= 1.0:
        R.channel(ks, st, c, C_FAST_TOUCHED, now, 1.0)
        R.channel(ks, st, c, C_FAST_QUALIFIED, now, 1.0 if qualified else 0.0)
    elif d > 24.0:
        R.channel(ks, st, c, C_SLOW_TOUCHED, now, 1.0)
        R.channel(ks, st, c, C_SLOW_QUALIFIED, now, 1.0 if qualified else 0.0)


@njit(cache=True, inline="always")
def start(ks, st, pid, now):
    """A person begins handling the lead it took from its queue."""
    st_LI = st.LI
    st_PI = st.PI
    ks_stage_attempt_hours = ks.stage_attempt_hours
    if st_PI[pid, P_STATE] != CLAIMED:
        return
    st_PI[pid, P_STATE] = BUSY
    lead = st_PI[pid, P_LEAD]
    s = st_LI[lead, L_STAGE]
    R.serving_change(ks, st, st_PI[pid, P_TEAM], now, 1)
    kind = ks.stage_kind[s]
    if kind == CONTACT:
        if st_LI[lead, L_ATTEMPT] == 0:
            st_LI[lead, L_MAX_ATTEMPTS] = attempts(st, pid, ks.stage_attempts[s])
        st_LI[lead, L_ATTEMPT] += 1
        work(ks, st, pid, lead, ks_stage_attempt_hours[s], PH_ATTEMPT, now)
    elif kind == CLOSE:
        if st_LI[lead, L_TOUCHED] == 0:
            touch(ks, st, lead, now)
        if st_LI[lead, L_LIVE] == 0:  # gone cold before anyone reached out
            work(ks, st, pid, lead, ks_stage_attempt_hours[s], PH_CLOSE_DECAYED, now)
        else:
            main_task(ks, st, pid, lead, PH_CLOSE_MAIN, now)
    elif kind == RETAIN:
        main_task(ks, st, pid, lead, PH_RETAIN, now)
    else:
        main_task(ks, st, pid, lead, PH_REVIEW, now)


@njit(cache=True, inline="always")
def work_done(ks, st, pid, phase, now):
    """A work step ended: the person's handling resumes where it left off (`phase`)."""
    st_LF = st.LF
    st_LI = st.LI
    st_PI = st.PI
    event(st)
    lead = st_PI[pid, P_LEAD]
    s = st_LI[lead, L_STAGE]
    outcome = st_PI[pid, P_OUTCOME]
    r = st.stage_rng[s]
    if phase == PH_REWORK:
        trust_update(ks, st, st_LI[lead, L_EDGE], 0.0)
        upstream = st_PI[pid, P_AUX]
        # sent back: out of this stage, into the one that erred, at once
        R.stage_count(ks, st, s, ST_REWORK_SENT_BACK, now)
        R.stage_count(ks, st, upstream, ST_REWORK_RETURNS, now)
        st_LI[lead, L_REWORK_STAGE] = upstream
        depart(ks, st, lead, now)
        enter(ks, st, lead, upstream, -1, True, now)
        finish(ks, st, pid, now)
    elif phase == PH_REVIEW:
        route(ks, st, pid, lead, outcome, now)
    elif phase == PH_HANDOFF:
        forward(ks, st, lead, outcome, st_PI[pid, P_COMPLIANT] == 1, now)
        finish(ks, st, pid, now)
    elif phase == PH_ATTEMPT:
        if st_LI[lead, L_TOUCHED] == 0:
            touch(ks, st, lead, now)
        if st_LI[lead, L_LIVE] == 1 and uniform(r) < ks.stage_contact_p[s]:
            main_task(ks, st, pid, lead, PH_CONTACT_MAIN, now)
        elif st_LI[lead, L_ATTEMPT] < st_LI[lead, L_MAX_ATTEMPTS]:
            schedule(st, now + ks.stage_attempt_gap[s], EV_ENQUEUE, lead, NORMAL)
            finish(ks, st, pid, now)
        else:
            contact_done(ks, st, lead, False, False, now)
            if st_LI[lead, L_LIVE] == 0:
                depart(ks, st, lead, now)
                end(ks, st, lead, F_DECAYED, now)
                finish(ks, st, pid, now)
            else:
                route(ks, st, pid, lead, UNREACHED, now)
    elif phase == PH_CONTACT_MAIN:
        contact_done(ks, st, lead, True, outcome == QUALIFIED, now)
        route(ks, st, pid, lead, outcome, now)
    elif phase == PH_CLOSE_DECAYED:
        depart(ks, st, lead, now)
        end(ks, st, lead, F_DECAYED, now)
        finish(ks, st, pid, now)
    elif phase == PH_CLOSE_MAIN:
        if outcome != QUALIFIED:
            route(ks, st, pid, lead, outcome, now)
            return
        if error(ks, st, lead, now):
            st_LF[lead, L_EXPERIENCE] *= 1.0 - ks.error_win_penalty
        R.buyer_change(ks, st, ks.stage_team[s], now, 1)
        R.add(ks, st, S_OPPS, now, 1.0)
        R.add(ks, st, S_PIPELINE, now, st_LF[lead, L_VALUE])
        st_LI[lead, L_LAST_COMPLIANT] = st_PI[pid, P_COMPLIANT]
        # the buyer decides on calendar time; the person is free meanwhile, and the deal no
        # longer counts in their load (least-loaded routing balances work, not pipeline)
        if st_LI[lead, L_SLOT] >= 0:
            unload(st, ks.stage_team[s], st_LI[lead, L_SLOT])
            st_LI[lead, L_SLOT] = -1
        delay = draw(ks, st, s, ks.stage_buyer[s])
        schedule(st, now + delay, EV_BUYER, lead, 0)
        finish(ks, st, pid, now)
    else:  # PH_RETAIN
        if error(ks, st, lead, now):
            st_LF[lead, L_EXPERIENCE] *= 1.0 - ks.error_win_penalty
        depart(ks, st, lead, now)
        schedule(st, now + ks.stage_renewal[s], EV_RENEWAL, lead, s)
        finish(ks, st, pid, now)


# ------------------------------------------------------------------ buyers and customers


@njit(cache=True, inline="always")
def buyer_decides(ks, st, lead, now):
    st_LF = st.LF
    st_LI = st.LI
    event(st)
    s = st_LI[lead, L_STAGE]
    team = ks.stage_team[s]
    R.buyer_change(ks, st, team, now, -1)
    p_win = min(1.0, st_LF[lead, L_QUALITY] * ks.stage_win_scale[s] * st_LF[lead, L_EXPERIENCE])
    if st_LF[lead, L_U_WIN] < p_win:  # the buyer's own draw, the same in every design
        value = st_LF[lead, L_VALUE]
        R.won(ks, st, now, value, now - st_LF[lead, L_CREATED])
        R.stage_count(ks, st, s, ST_WON, now)
        kpi(ks, st, team, s, 1, value, now)
        kpi(ks, st, team, s, 2, 1.0, now)
        forward(ks, st, lead, WON, st_LI[lead, L_LAST_COMPLIANT] == 1, now)
    else:
        R.add(ks, st, S_BUYER_LOSSES, now, 1.0)
        forward(ks, st, lead, LOST, st_LI[lead, L_LAST_COMPLIANT] == 1, now)


@njit(cache=True)
def renewal(ks, st, lead, s, now):
    st_LF = st.LF
    st_renewals_quarter = st.renewals_quarter
    event(st)
    q = st_LF[lead, L_QUALITY]
    # as churn_chance in the SimPy engine: no experience left (a penalty of 1) churns
    risk = ks.stage_churn_base[s] * 2.0 * (1.0 - q)
    experience = st_LF[lead, L_EXPERIENCE]
    if experience <= 0.0:
        p_churn = 1.0 if risk > 0.0 else 0.0
    else:
        p_churn = min(1.0, risk / experience)
    churned = st_LF[lead, L_U_CHURN] < p_churn
    R.stage_count(ks, st, s, ST_RENEWALS, now)
    if churned:
        R.stage_count(ks, st, s, ST_CHURNS, now)
    team = ks.stage_team[s]
    if ks.team_kpi_stage[team] == s:  # quota pressure reads the KPI's own stage only
        quarter(st, team, now)
        st_renewals_quarter[team, 0] += 1
        st_renewals_quarter[team, 1] += 1.0 if churned else 0.0
    trust_update(ks, st, st.LI[lead, L_EDGE], 0.0 if churned else 1.0)
    end(ks, st, lead, F_CHURNED if churned else F_RETAINED, now)


# ------------------------------------------------------------------ turnover (9)


@njit(cache=True)
def quit_job(ks, st, team, slot, now):
    """A person leaves: an idle one at once, a busy one after the lead in hand."""
    st_PI = st.PI
    pid = st.slot_person[team, slot]
    st_PI[pid, P_ACTIVE] = 0
    st.slot_load[team, slot] = NO_LOAD
    event(st)
    R.quit_(ks, st, team, now)
    state = st_PI[pid, P_STATE]
    if state != BUSY:
        st_PI[pid, P_STATE] = GONE
        if state == CLAIMED:  # took an item in the same instant: it goes back
            q = st_PI[pid, P_QUEUE]
            if q_push(st, q, st_PI[pid, P_QCLS], st.PF[pid, P_QKEY], st_PI[pid, P_QSEQ],
                      st_PI[pid, P_LEAD]):
                offer(ks, st, team, q, now)
            st_PI[pid, P_LEAD] = -1
        left(ks, st, pid, now)
    redistribute(ks, st, team, slot, now)


@njit(cache=True)
def redistribute(ks, st, team, slot, now):
    """The leaver's queue goes to colleagues; some of it is lost on the way."""
    n = ks.team_headcount[team]
    anyone = False
    for k in range(n):
        if active(st, team, k):
            anyone = True
            break
    if not anyone:
        return  # nobody to take it: it waits for the next hire
    q = ks.slot_q0[team] + slot
    m = st.qlen[q]
    if m == 0:
        return
    held = st.scratch  # (class, lead) of each item, in queue order; no allocation
    for i in range(m):
        held[i, 0], _key, _seq, held[i, 1] = q_pop(st, q)
    for i in range(m):
        cls, lead = held[i, 0], held[i, 1]
        if uniform(st.stage_rng[st.LI[lead, L_STAGE]]) < ks.turnover_queue_loss:
            leave(ks, st, lead, F_TURNOVER, now)
            continue
        unload(st, team, slot)
        st.LI[lead, L_SLOT] = assign(ks, st, team, now)
        enqueue(ks, st, lead, cls, now)

