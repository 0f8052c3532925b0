"""The event list and the work queues (binary heaps), over preallocated arrays.

Events are ordered by (time, insertion sequence), as SimPy orders same-time events. A work
queue holds (class, key, sequence) -> lead, as a SimPy PriorityStore of PriorityItems:
escalated items (class 0) first, then the discipline's key, then arrival order.

The queue tables are indexed (position, queue): position i of every queue sits side by side,
so the top levels of all the heaps (where short queues live entirely) share a few cache lines
and pages, however many people the org has. Keys are unique (every item has its own sequence
number), so the order items come out in does not depend on the heap's layout. Each function
binds the state's arrays to locals once and sifts a hole rather than swapping, so a level
costs one move instead of a three-way exchange.

The event list has three parts. An event is a time and one int64 row (sequence, kind, a, b).
- Events scheduled for the current instant go to a FIFO (``ft``, ``fi``), appended while
  their time equals the current time and the FIFO's last time. (A person taking an item
  starts on it at once, about a quarter of all events; when nothing else is due then,
  ``nothing_due_at``, that START skips the list: the event loop runs it next.)
- Time is cut into windows (``st.window`` hours: 22.5 minutes on the default model, shorter
  at higher lead volumes, see ``kspec.event_window``). An event of a later window (most
  events: a piece of work done hours later, a buyer's decision weeks out) is put on that
  window's list (``far_*``: linked nodes from a free list, the newest first).
- When the current window is used up, the next non-empty window's events are sorted by
  (time, sequence) into the run (``run_*``): each to its rank when few, else by a stable merge
  sort of the times, as the list is read newest first into scheduling order. An event for
  the running window scheduled while it runs is inserted into the run after every event not
  later than it (it is the newest): a run holds about five events on the default model.
Both the FIFO and the run are sorted by (time, sequence), and ``pop_next`` takes the smaller
of their fronts: every event before the window's end is in one of the two and every later
one on a list, so the order is that of one heap of all events, while each event costs a list
push, a short sort and a pop from the front of an array, about the same at any lead volume
(one heap of all events would be ~400 deep).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from gtmsim.engines.kernel.calendar import floor_quotient
from gtmsim.engines.kernel.state import (
    C_ESEQ,
    C_FAR_FREE,
    C_FAR_USED,
    C_FHEAD,
    C_FTAIL,
    C_QSEQ,
    C_RHEAD,
    C_RTAIL,
    C_STATUS,
    C_WINDOW,
    QUEUE_OVERFLOW,
)
from gtmsim.engines.kernel.view import plain

SHORT_RUN = 16  # runs up to this long are sorted by rank, longer ones by merge sort


@njit(cache=True, inline="always")
def schedule(st, t, kind, a, b):
    """Add an event at calendar time t; one at or past the end of the run is dropped, as the
    event loop stops before it (keeps the list to the events that can still happen)."""
    _schedule(st, t, plain(kind), plain(a), plain(b))  # one compiled copy for every kind


@njit(cache=True)
def _schedule(st, t, kind, a, b):
    if t >= st.end:
        return
    C = st.C
    seq = C[C_ESEQ]
    C[C_ESEQ] = seq + 1
    if t == st.now[0]:
        ft = st.ft
        tail = C[C_FTAIL]
        if tail < ft.shape[0] and (tail == C[C_FHEAD] or ft[tail - 1] == t):
            _put(ft, st.fi, tail, t, seq, kind, a, b)
            C[C_FTAIL] = tail + 1
            return
    if t >= (C[C_WINDOW] + 1) * st.window:
        _far_push(st, t, seq, kind, a, b)
    else:
        _run_insert(st, t, seq, kind, a, b)


@njit(cache=True, inline="always")
def _run_insert(st, t, seq, kind, a, b):
    """Put an event of the running window into the run, after every event not later than it
    (it is the newest, so it goes after those at its own time too); the run is a few events
    long, so this moves a few rows."""
    C = st.C
    run_t, run_i = st.run_t, st.run_i
    head, tail = C[C_RHEAD], C[C_RTAIL]
    if tail == run_t.shape[0]:  # the run's popped front is reused
        for j in range(head, tail):
            _move(run_t, run_i, j - head, run_t, run_i, j)
        head, tail = 0, tail - head
        C[C_RHEAD] = 0
    j = tail
    while j > head and run_t[j - 1] > t:
        _move(run_t, run_i, j, run_t, run_i, j - 1)
        j -= 1
    _put(run_t, run_i, j, t, seq, kind, a, b)
    C[C_RTAIL] = tail + 1


@njit(cache=True, inline="always")
def _far_push(st, t, seq, kind, a, b):
    """Put an event of a later window on that window's list (a node from the free list)."""
    C = st.C
    far_t, far_i = st.far_t, st.far_i  # time; (sequence, kind, a, b, next node) rows
    node = C[C_FAR_FREE] - 1
    if node >= 0:
        C[C_FAR_FREE] = far_i[node, 4] + 1
    else:
        node = C[C_FAR_USED]
        C[C_FAR_USED] = node + 1
    _put(far_t, far_i, node, t, seq, kind, a, b)
    # pushed at the front, so a push touches no old node: when the window begins, the list
    # is read newest first into scheduling order and sorted (see _next_window)
    w = floor_quotient(t, st.window, st.per_window)  # t >= now >= 0
    # (first node, number of events) per window, int32: the table spans the whole run (30 k
    # windows by default) and a push far ahead misses the cache on it; half the bytes
    far_head = st.far_head
    far_i[node, 4] = far_head[w, 0]
    far_head[w, 0] = node
    far_head[w, 1] += 1


@njit(cache=True, inline="always")
def _put(to_t, to_i, j, t, seq, kind, a, b):
    """An event into slot j of (to_t, to_i): its time and (sequence, kind, a, b)."""
    to_t[j] = t
    to_i[j, 0] = seq
    to_i[j, 1] = kind
    to_i[j, 2] = a
    to_i[j, 3] = b


@njit(cache=True, inline="always")
def _move(to_t, to_i, j, from_t, from_i, k):
    """Event k of (from_t, from_i) into slot j of (to_t, to_i): its time and (sequence, kind,
    a, b)."""
    to_t[j] = from_t[k]
    to_i[j, 0] = from_i[k, 0]
    to_i[j, 1] = from_i[k, 1]
    to_i[j, 2] = from_i[k, 2]
    to_i[j, 3] = from_i[k, 3]


@njit(cache=True)
def _next_window(st):
    """Begin the next window (the run and the FIFO are empty): its events, sorted
    by (time, sequence), become the run; False when no window is left."""
    C = st.C
    far_t, far_i, far_head = st.far_t, st.far_i, st.far_head
    w = C[C_WINDOW] + 1
    while far_head[w, 1] == 0:  # an empty window (a night, a weekend) is passed at once
        if w * st.window >= st.end:
            return False
        w += 1
    if w * st.window >= st.end:
        return False
    C[C_WINDOW] = w
    node, k = far_head[w, 0], far_head[w, 1]
    far_head[w, 0] = -1
    far_head[w, 1] = 0
    C[C_RHEAD] = 0
    C[C_RTAIL] = k
    if k == 1:  # one event: it is the run, and its node goes back on the free list
        _move(st.run_t, st.run_i, 0, far_t, far_i, node)
        far_i[node, 4] = C[C_FAR_FREE] - 1
        C[C_FAR_FREE] = node + 1
        return True
    # the list holds the newest event first: filled from the back, the events stand in
    # scheduling order (sequence order), so a stable sort by time sorts by (time, sequence)
    sort_t, sort_i = st.sort_t, st.sort_i
    first = node
    for i in range(k - 1, -1, -1):
        _move(sort_t, sort_i, i, far_t, far_i, node)
        last = node
        node = far_i[node, 4]
    # the whole list goes onto the free list at once
    far_i[last, 4] = C[C_FAR_FREE] - 1
    C[C_FAR_FREE] = first + 1
    run_t, run_i = st.run_t, st.run_i
    if k <= SHORT_RUN:
        # each event straight to its rank: the events before it in (time, sequence) order,
        # counted without a branch (a short run's order is a coin toss for a branch)
        for i in range(k):
            t = sort_t[i]
            rank = 0
            for j in range(k):
                tj = sort_t[j]
                rank += (tj < t) | ((tj == t) & (j < i))
            _move(run_t, run_i, rank, sort_t, sort_i, i)
        return True
    order = np.argsort(sort_t[:k], kind="mergesort")
    for j in range(k):
        _move(run_t, run_i, j, sort_t, sort_i, order[j])
    return True


@njit(cache=True, inline="always")
def nothing_due_at(st, now):
    """Whether no event is due at `now` (the FIFO is empty and the run's next event is later):
    an event scheduled for `now` would then be the next one popped."""
    C = st.C
    if C[C_FHEAD] < C[C_FTAIL]:
        return False
    r = C[C_RHEAD]
    return r == C[C_RTAIL] or st.run_t[r] > now


@njit(cache=True, inline="always")
def pop_next(st, end):
    """Remove the earliest event of the FIFO and the run; returns (time, kind, a, b), kind -1
    when none is left before `end`."""
    C = st.C
    head = C[C_FHEAD]
    fifo = head < C[C_FTAIL]
    r = C[C_RHEAD]
    if r == C[C_RTAIL]:
        if fifo:
            t, s = np.inf, 0
        elif _next_window(st):
            r = 0
            t, s = st.run_t[0], st.run_i[0, 0]
        else:
            return 0.0, -1, 0, 0
    else:
        t, s = st.run_t[r], st.run_i[r, 0]
    if fifo:
        ft, fi = st.ft, st.fi
        if ft[head] < t or (ft[head] == t and fi[head, 0] < s):
            t, k, a, b = ft[head], fi[head, 1], fi[head, 2], fi[head, 3]
            head += 1
            if head == C[C_FTAIL]:
                head = 0
                C[C_FTAIL] = 0
            C[C_FHEAD] = head
            return t, k, a, b
    if t >= end:
        return 0.0, -1, 0, 0
    run_i = st.run_i
    C[C_RHEAD] = r + 1
    return t, run_i[r, 1], run_i[r, 2], run_i[r, 3]


@njit(cache=True, inline="always")
def _q_less(c1, k1, s1, c2, k2, s2):
    if c1 != c2:
        return c1 < c2
    if k1 != k2:
        return k1 < k2
    return s1 < s2


@njit(cache=True)
def q_push(st, q, cls, key, seq, lead):
    """Put an item; seq < 0 takes the next sequence number. False if the queue is full."""
    st_C = st.C
    qcls, qkey, qseq, qlead, qlen = st.qcls, st.qkey, st.qseq, st.qlead, st.qlen
    n = qlen[q]
    if n >= qcls.shape[0]:
        st_C[C_STATUS] = QUEUE_OVERFLOW
        return False
    if seq < 0:
        C = st_C
        seq = C[C_QSEQ]
        C[C_QSEQ] = seq + 1
    qlen[q] = n + 1
    while n > 0:
        parent = (n - 1) >> 1
        if _q_less(cls, key, seq, qcls[parent, q], qkey[parent, q], qseq[parent, q]):
            qcls[n, q] = qcls[parent, q]
            qkey[n, q] = qkey[parent, q]
            qseq[n, q] = qseq[parent, q]
            qlead[n, q] = qlead[parent, q]
            n = parent
        else:
            break
    qcls[n, q] = cls
    qkey[n, q] = key
    qseq[n, q] = seq
    qlead[n, q] = lead
    return True


@njit(cache=True)
def q_pop(st, q):
    """Take the first item; returns (cls, key, seq, lead)."""
    qcls, qkey, qseq, qlead, qlen = st.qcls, st.qkey, st.qseq, st.qlead, st.qlen
    cls, key, seq, lead = qcls[0, q], qkey[0, q], qseq[0, q], qlead[0, q]
    n = qlen[q] - 1
    qlen[q] = n
    if n > 0:
        lc, lk, ls, ll = qcls[n, q], qkey[n, q], qseq[n, q], qlead[n, q]
        i = 0
        while True:
            m = 2 * i + 1
            if m >= n:
                break
            r = m + 1
            if r < n and _q_less(qcls[r, q], qkey[r, q], qseq[r, q],
                                 qcls[m, q], qkey[m, q], qseq[m, q]):
                m = r
            if _q_less(qcls[m, q], qkey[m, q], qseq[m, q], lc, lk, ls):
                qcls[i, q] = qcls[m, q]
                qkey[i, q] = qkey[m, q]
                qseq[i, q] = qseq[m, q]
                qlead[i, q] = qlead[m, q]
                i = m
            else:
                break
        qcls[i, q] = lc
        qkey[i, q] = lk
        qseq[i, q] = ls
        qlead[i, q] = ll
    return cls, key, seq, lead
