"""Heaps over preallocated arrays: the event list (4-ary) and the work queues (binary).

Events are ordered by (time, insertion sequence), as SimPy orders same-time events. A work
queue holds (class, key, sequence) -> lead, as a SimPy PriorityStore of PriorityItems:
escalated items (class 0) first, then the discipline's key, then arrival order.

The queue tables are indexed (position, queue): position i of every queue sits side by side,
so the top levels of all the heaps (where short queues live entirely) share a few cache lines
and pages, however many people the org has.

Keys are unique (every item has its own sequence number), so the order items come out in
does not depend on how the heap is laid out (binary or 4-ary alike). Each function binds the
state's arrays to locals once and sifts a hole rather than swapping, so a level costs one
move instead of a three-way exchange. The event heap is 4-ary: half the levels of a binary
one, its four children's times side by side in ``ht``. An event is a time
(``ht``) and one int64 row (sequence, kind, a, b) of ``hi``: two arrays to fetch, one cache
line to move.

Events scheduled for the current instant (a person taking an item starts on it at once: about
a quarter of all events) go to a FIFO (``ft``, ``fi``) instead of the heap, appended while
their time equals the current time and the FIFO's last time. Both are sorted by (time,
sequence), and ``pop_next`` takes the smaller of their fronts: the same order as one heap of
all of them, at a fraction of the cost for the FIFO's events.

The heap holds only the events of the current window (``st.window`` hours: 3 on the default
model, shorter at higher lead volumes, see ``kspec.event_window``); an event of a later window
(a buyer's decision weeks out, a nurtured lead's return, a quit) is appended to that window's
list (``far_*``: linked nodes from a free list) and moved into the heap when the heap runs dry
and the window begins. Every event before the window's end is in the heap or the FIFO and
every event after it in a list, so the order is still that of one heap; the heap is a
fraction of the size (on the default model about 12 events deep at a pop, against about 400
in one heap of all events), and the lists cost O(1).
"""

from __future__ import annotations

from numba import njit

from gtmsim.engines.kernel.calendar import periods
from gtmsim.engines.kernel.state import (
    C_FAR_FREE,
    C_FAR_USED,
    C_FHEAD,
    C_FTAIL,
    C_HSEQ,
    C_HSIZE,
    C_QSEQ,
    C_STATUS,
    C_WINDOW,
    QUEUE_OVERFLOW,
)


@njit(cache=True)
def schedule(st, t, kind, a, b):
    """Add an event at calendar time t; one at or past the end of the run is dropped, as the
    event loop stops before it (keeps the heap to the events that can still happen)."""
    if t >= st.end:
        return
    C = st.C
    seq = C[C_HSEQ]
    C[C_HSEQ] = seq + 1
    if t == st.now[0]:
        ft = st.ft
        tail = C[C_FTAIL]
        if tail < ft.shape[0] and (tail == C[C_FHEAD] or ft[tail - 1] == t):
            fi = st.fi
            ft[tail] = t
            fi[tail, 0] = seq
            fi[tail, 1] = kind
            fi[tail, 2] = a
            fi[tail, 3] = b
            C[C_FTAIL] = tail + 1
            return
    if t >= (C[C_WINDOW] + 1) * st.window:
        _far_push(st, t, seq, kind, a, b)
    else:
        _heap_push(st, t, seq, kind, a, b)


@njit(cache=True, inline="always")
def _heap_push(st, t, seq, kind, a, b):
    C = st.C
    ht, hi = st.ht, st.hi  # times; (sequence, kind, a, b) rows
    n = C[C_HSIZE]
    C[C_HSIZE] = n + 1
    while n > 0:
        parent = (n - 1) >> 2
        pt = ht[parent]
        if t < pt or (t == pt and seq < hi[parent, 0]):
            ht[n] = pt
            hi[n, 0] = hi[parent, 0]
            hi[n, 1] = hi[parent, 1]
            hi[n, 2] = hi[parent, 2]
            hi[n, 3] = hi[parent, 3]
            n = parent
        else:
            break
    ht[n] = t
    hi[n, 0] = seq
    hi[n, 1] = kind
    hi[n, 2] = a
    hi[n, 3] = b


@njit(cache=True)
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
    far_t[node] = t
    far_i[node, 0] = seq
    far_i[node, 1] = kind
    far_i[node, 2] = a
    far_i[node, 3] = b
    # pushed at the front: the window's events enter a heap that orders them by (time,
    # sequence) anyway, so the list's order does not matter and a push touches no old node
    w = periods(t, st.window)[0]
    far_i[node, 4] = st.far_head[w]
    st.far_head[w] = node


@njit(cache=True)
def _next_window(st):
    """Move the next window's events into the (empty) heap; False when none is left."""
    C = st.C
    far_t, far_i, far_head = st.far_t, st.far_i, st.far_head
    w = C[C_WINDOW] + 1
    if w * st.window >= st.end:
        return False
    C[C_WINDOW] = w
    node = far_head[w]
    far_head[w] = -1
    while node >= 0:
        _heap_push(st, far_t[node], far_i[node, 0], far_i[node, 1], far_i[node, 2],
                   far_i[node, 3])
        after = far_i[node, 4]
        far_i[node, 4] = C[C_FAR_FREE] - 1
        C[C_FAR_FREE] = node + 1
        node = after
    return True


@njit(cache=True, inline="always")
def pop_event(st):
    """Remove the earliest event; returns (time, kind, a, b)."""
    C = st.C
    ht, hi = st.ht, st.hi
    t, k, a, b = ht[0], hi[0, 1], hi[0, 2], hi[0, 3]
    n = C[C_HSIZE] - 1
    C[C_HSIZE] = n
    if n > 0:
        # the last item sinks from the root
        lt, ls, lk, la, lb = ht[n], hi[n, 0], hi[n, 1], hi[n, 2], hi[n, 3]
        i = 0
        while True:
            m = 4 * i + 1  # the first child; the earliest of the (up to) four wins
            if m >= n:
                break
            mt, ms = ht[m], hi[m, 0]
            for j in range(m + 1, min(m + 4, n)):
                jt = ht[j]
                if jt < mt or (jt == mt and hi[j, 0] < ms):
                    m, mt, ms = j, jt, hi[j, 0]
            if mt < lt or (mt == lt and ms < ls):
                ht[i] = mt
                hi[i, 0] = ms
                hi[i, 1] = hi[m, 1]
                hi[i, 2] = hi[m, 2]
                hi[i, 3] = hi[m, 3]
                i = m
            else:
                break
        ht[i] = lt
        hi[i, 0] = ls
        hi[i, 1] = lk
        hi[i, 2] = la
        hi[i, 3] = lb
    return t, k, a, b


@njit(cache=True, inline="always")
def pop_next(st, end):
    """Remove the earliest event of the FIFO and the heap; returns (time, kind, a, b), kind
    -1 when none is left before `end`."""
    C = st.C
    head = C[C_FHEAD]
    if head < C[C_FTAIL]:
        ft, fi = st.ft, st.fi
        t, s = ft[head], fi[head, 0]
        if C[C_HSIZE] > 0:
            ht = st.ht
            if ht[0] < t or (ht[0] == t and st.hi[0, 0] < s):
                return pop_event(st)
        k, a, b = fi[head, 1], fi[head, 2], fi[head, 3]
        head += 1
        if head == C[C_FTAIL]:
            head = 0
            C[C_FTAIL] = 0
        C[C_FHEAD] = head
        return t, k, a, b
    while C[C_HSIZE] == 0:
        if not _next_window(st):
            return 0.0, -1, 0, 0
    if st.ht[0] < end:
        return pop_event(st)
    return 0.0, -1, 0, 0


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
