"""The live state of one replication: leads and people as rows of arrays, the event list,
the priority queues, and the tally views the replication writes into.

Column indices are module constants (numba folds them in).
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numba.core import types as nbt
from numba.experimental import structref

from gtmsim import outcomes as O
from gtmsim import spec as S

N_CHANNEL, N_TEAM, N_STAGE = len(O.CHANNEL), len(O.TEAM), len(O.STAGE)

# lead rows: floats
# U_*: the lead's own uniforms, drawn at birth (common random numbers across designs)
(L_CREATED, L_INTENT_FROM, L_QUALITY, L_VALUE, L_TOUCH_DELAY, L_EXPERIENCE, L_ENTERED,
 L_U_LIVE, L_U_WIN, L_U_CHURN, L_LOGIT) = range(11)
N_LF = 11
# lead rows: ints
# L_SAME_INSTANT: stages entered one after another at one instant (see flow._enter)
(L_CHANNEL, L_TOUCHED, L_LIVE, L_INFO_LOST, L_ERROR_FROM, L_REWORK_STAGE, L_STAGE, L_EDGE,
 L_SLOT, L_ATTEMPT, L_MAX_ATTEMPTS, L_LAST_COMPLIANT, L_WARM_PENDING, L_SAME_INSTANT) = range(14)
N_LI = 14

# people rows: floats
P_HIRED, P_SPEED, P_LATENCY_MULT, P_THRESHOLD_SHIFT, P_AVAILABILITY, P_STAFFED_SINCE = range(6)
P_QKEY = 6  # priority key of a claimed item (put back if its taker leaves at once)
N_PF = 7
# people rows: ints
(P_TEAM, P_SLOT, P_GEN, P_COMPLIANT, P_HABIT, P_ACTIVE, P_STATE, P_LOAD, P_GONE, P_LEAD,
 P_OUTCOME, P_WAIT_SEQ, P_QCLS, P_QSEQ, P_AUX, P_QUEUE) = range(16)
N_PI = 16
# event rows: (sequence, kind, a, b); a later window's list node adds the next node's index
N_EV = 4
N_NODE = N_EV + 1
# slot_load of a slot with nobody active in it (least-loaded routing never picks it)
NO_LOAD = 1 << 62

# person states
IDLE, WAITING, CLAIMED, BUSY, GONE = range(5)

# counters (C_ESEQ: the next event's sequence number, which orders same-time events;
# C_STARTING: the person whose START is the next event, kept off the event list, or -1)
(C_NLEADS, C_NPEOPLE, C_ESEQ, C_QSEQ, C_WSEQ, C_STATUS, C_FHEAD, C_FTAIL, C_WINDOW,
 C_FAR_FREE, C_FAR_USED, C_LFREE, C_RHEAD, C_RTAIL, C_STARTING, C_STALLED_STAGE) = range(16)
N_C = 16
OK, LEAD_OVERFLOW, PEOPLE_OVERFLOW, QUEUE_OVERFLOW, STALLED, FAILED, CANCELLED = range(7)
# the event loop looks at its stop flag (set on Ctrl-C or SIGTERM) once every STOP_EVERY events:
# about 3 ms on the default model, so a replication that would take hours stops at once
STOP_EVERY = 1 << 14
SAME_INSTANT_LIMIT = S.SAME_INSTANT_LIMIT
STATUS_STAGE = 16  # a stalled replication's status: STALLED + STATUS_STAGE * stage


# event kinds
(EV_ARRIVAL, EV_ENQUEUE, EV_START, EV_WORK_DONE, EV_BUYER, EV_RENEWAL, EV_NURTURE, EV_QUIT,
 EV_HIRE, EV_WEEKLY) = range(10)

STATE_FIELDS = (
    "end", "window", "per_window", "now", "calm_until", "C", "rng", "rng_arrivals", "rng_people",
    "LF", "LI", "PF", "PI", "slot_person", "slot_load",
    "ft", "fi", "far_t", "far_i", "far_head", "run_t", "run_i", "sort_t", "sort_i",
    "qcls", "qkey", "qseq", "qlead", "qlen", "scratch", "waiting", "waiting_ends", "lead_free",
    "rr", "trust", "feedback_shift", "kpi_quarter", "renewals_quarter", "quarter_of",
    "chan_clock", "seat_rng", "trait_rng", "stage_rng",
    "wip", "wip_since", "serving", "serving_since", "buyer", "buyer_since",
    "fates", "scalars", "channel", "team", "stage", "trust_end", "cycle_hist", "bookings_w",
    "wip_w", "busy_w", "available_w", "trust_w",
)


@structref.register
class StateType(nbt.StructRef):
    """The numba type of a replication's state: a reference, so calls pass one pointer."""

    def preprocess_fields(self, fields):
        return tuple((name, nbt.unliteral(typ)) for name, typ in fields)


# tables whose row length is fixed: a view gives them with it as a constant (view.py)
StateType.fixed_columns = {"LF": N_LF, "LI": N_LI, "PF": N_PF, "PI": N_PI, "fi": N_EV,
                           "run_i": N_EV, "sort_i": N_EV, "far_i": N_NODE, "far_head": 2,
                           "waiting_ends": 2, "scratch": 2, "renewals_quarter": 2,
                           "channel": N_CHANNEL, "team": N_TEAM, "stage": N_STAGE,
                           "stage_rng": 4}


class State(structref.StructRefProxy):
    """A replication's state (built inside the kernel only)."""


structref.define_proxy(State, StateType, list(STATE_FIELDS))


@njit(cache=True)
def workspace(ks, lead_cap, people_cap, queue_cap):
    """The big tables of a replication (lead and people rows, event list, queues), allocated
    once per batch worker and reused by its replications: every row is written before it is
    read (an arrival clears its lead's row, a hire its person's row; run, same-instant FIFO
    and queue slots are written when pushed), so they need no clearing: allocated empty, a
    table's untouched pages cost nothing (the lead table is sized for every lead born, while
    rows are reused and only the leads in play hold one). The windows' list heads are reset
    by ``new_state``."""
    nt = ks.n_teams
    nq = nt + int(ks.team_headcount.sum())
    hcap = lead_cap + 2 * people_cap + nq + ks.n_channels + 16
    n_windows = int(ks.end // ks.event_window) + 2
    line_cap = 1  # a pool's waiting line: a ring a power of two long (masked, not divided)
    while line_cap < people_cap:
        line_cap *= 2
    return (np.empty((lead_cap, N_LF)), np.empty((lead_cap, N_LI), dtype=np.int64),
            np.empty((people_cap, N_PF)), np.empty((people_cap, N_PI), dtype=np.int64),
            np.empty(hcap), np.empty((hcap, N_EV), dtype=np.int64),
            np.empty((queue_cap, nq), dtype=np.int64), np.empty((queue_cap, nq)),
            np.empty((queue_cap, nq), dtype=np.int64), np.empty((queue_cap, nq), dtype=np.int64),
            np.empty((queue_cap, 2), dtype=np.int64),
            np.empty(hcap), np.empty((hcap, N_NODE), dtype=np.int64),
            np.empty((n_windows, 2), dtype=np.int32),
            np.empty((nt, line_cap), dtype=np.int64),
            np.empty(lead_cap, dtype=np.int64),
            np.empty(hcap), np.empty((hcap, N_EV), dtype=np.int64),
            np.empty(hcap), np.empty((hcap, N_EV), dtype=np.int64))


@njit(cache=True)
def new_state(ks, seed, out, offsets, w):
    """Fresh state for one replication on workspace `w`; the tally fields are views into
    `out` (zeroed)."""
    out[:] = 0.0
    nt, ns, ne, nc, wk = ks.n_teams, ks.n_stages, ks.n_edges, ks.n_channels, ks.n_weeks
    nq = w[6].shape[1]
    o = offsets
    w[13][:, 0] = -1  # every window's list of later events starts empty
    w[13][:, 1] = 0
    counters = np.zeros(N_C, dtype=np.int64)
    counters[C_STARTING] = -1
    return State(
        ks.end, ks.event_window, 1.0 / ks.event_window, np.zeros(1), np.zeros(1), counters,
        seed[0:4].copy(), seed[4:8].copy(), seed[8:12].copy(),
        w[0], w[1], w[2], w[3],
        np.full((nt, ks.max_headcount), -1, dtype=np.int64),
        np.full((nt, ks.max_headcount), NO_LOAD, dtype=np.int64),
        w[4], w[5], w[11], w[12], w[13], w[16], w[17], w[18], w[19],
        w[6], w[7], w[8], w[9],
        np.zeros(nq, dtype=np.int64), w[10], w[14], np.zeros((nt, 2), dtype=np.int64),
        w[15],
        np.zeros(nt, dtype=np.int64), np.full(ne, ks.trust_initial), np.zeros(ns),
        np.zeros(nt), np.zeros((nt, 2)), np.zeros(nt, dtype=np.int64),
        np.zeros(nc), np.zeros((nt, ks.max_headcount, 4), dtype=np.uint64),
        np.zeros(4, dtype=np.uint64), np.zeros((ns, 4), dtype=np.uint64),
        np.zeros(nt, dtype=np.int64), np.zeros(nt), np.zeros(nt, dtype=np.int64), np.zeros(nt),
        np.zeros(nt, dtype=np.int64), np.zeros(nt),
        out[o[0]:o[1]], out[o[1]:o[2]], out[o[2]:o[3]].reshape((nc, N_CHANNEL)),
        out[o[3]:o[4]].reshape((nt, N_TEAM)), out[o[4]:o[5]].reshape((ns, N_STAGE)),
        out[o[5]:o[6]], out[o[6]:o[7]], out[o[7]:o[8]],
        out[o[8]:o[9]].reshape((nt, wk)), out[o[9]:o[10]].reshape((nt, wk)),
        out[o[10]:o[11]].reshape((nt, wk)), out[o[11]:o[12]].reshape((ne, wk)),
    )
