"""Binary heaps over preallocated arrays: the event list and the work queues.

Events are ordered by (time, insertion sequence), as SimPy orders same-time events. A work
queue holds (class, key, sequence) -> lead, as a SimPy PriorityStore of PriorityItems:
escalated items (class 0) first, then the discipline's key, then arrival order.
"""

from __future__ import annotations

from numba import njit

from gtmsim.engines.kernel.state import C_HSEQ, C_HSIZE, C_QSEQ, C_STATUS, QUEUE_OVERFLOW


@njit(cache=True)
def _ev_less(st, i, j):
    return st.ht[i] < st.ht[j] or (st.ht[i] == st.ht[j] and st.hs[i] < st.hs[j])


@njit(cache=True)
def _ev_swap(st, i, j):
    st.ht[i], st.ht[j] = st.ht[j], st.ht[i]
    st.hs[i], st.hs[j] = st.hs[j], st.hs[i]
    st.hk[i], st.hk[j] = st.hk[j], st.hk[i]
    st.ha[i], st.ha[j] = st.ha[j], st.ha[i]
    st.hb[i], st.hb[j] = st.hb[j], st.hb[i]


@njit(cache=True)
def schedule(st, t, kind, a, b):
    """Add an event at calendar time t."""
    n = st.C[C_HSIZE]
    st.ht[n] = t
    st.hs[n] = st.C[C_HSEQ]
    st.hk[n] = kind
    st.ha[n] = a
    st.hb[n] = b
    st.C[C_HSEQ] += 1
    st.C[C_HSIZE] = n + 1
    while n > 0:
        parent = (n - 1) >> 1
        if _ev_less(st, n, parent):
            _ev_swap(st, n, parent)
            n = parent
        else:
            break


@njit(cache=True)
def pop_event(st):
    """Remove the earliest event; returns (time, kind, a, b)."""
    t, k, a, b = st.ht[0], st.hk[0], st.ha[0], st.hb[0]
    n = st.C[C_HSIZE] - 1
    st.C[C_HSIZE] = n
    if n > 0:
        _ev_swap(st, 0, n)
        i = 0
        while True:
            left = 2 * i + 1
            if left >= n:
                break
            m = left
            if left + 1 < n and _ev_less(st, left + 1, left):
                m = left + 1
            if _ev_less(st, m, i):
                _ev_swap(st, m, i)
                i = m
            else:
                break
    return t, k, a, b


@njit(cache=True)
def _q_less(st, q, i, j):
    if st.qcls[q, i] != st.qcls[q, j]:
        return st.qcls[q, i] < st.qcls[q, j]
    if st.qkey[q, i] != st.qkey[q, j]:
        return st.qkey[q, i] < st.qkey[q, j]
    return st.qseq[q, i] < st.qseq[q, j]


@njit(cache=True)
def _q_swap(st, q, i, j):
    st.qcls[q, i], st.qcls[q, j] = st.qcls[q, j], st.qcls[q, i]
    st.qkey[q, i], st.qkey[q, j] = st.qkey[q, j], st.qkey[q, i]
    st.qseq[q, i], st.qseq[q, j] = st.qseq[q, j], st.qseq[q, i]
    st.qlead[q, i], st.qlead[q, j] = st.qlead[q, j], st.qlead[q, i]


@njit(cache=True)
def q_push(st, q, cls, key, seq, lead):
    """Put an item; seq < 0 takes the next sequence number. False if the queue is full."""
    n = st.qlen[q]
    if n >= st.qcls.shape[1]:
        st.C[C_STATUS] = QUEUE_OVERFLOW
        return False
    if seq < 0:
        seq = st.C[C_QSEQ]
        st.C[C_QSEQ] += 1
    st.qcls[q, n] = cls
    st.qkey[q, n] = key
    st.qseq[q, n] = seq
    st.qlead[q, n] = lead
    st.qlen[q] = n + 1
    while n > 0:
        parent = (n - 1) >> 1
        if _q_less(st, q, n, parent):
            _q_swap(st, q, n, parent)
            n = parent
        else:
            break
    return True


@njit(cache=True)
def q_pop(st, q):
    """Take the first item; returns (cls, key, seq, lead)."""
    cls, key, seq, lead = st.qcls[q, 0], st.qkey[q, 0], st.qseq[q, 0], st.qlead[q, 0]
    n = st.qlen[q] - 1
    st.qlen[q] = n
    if n > 0:
        _q_swap(st, q, 0, n)
        i = 0
        while True:
            left = 2 * i + 1
            if left >= n:
                break
            m = left
            if left + 1 < n and _q_less(st, q, left + 1, left):
                m = left + 1
            if _q_less(st, q, m, i):
                _q_swap(st, q, m, i)
                i = m
            else:
                break
    return cls, key, seq, lead
