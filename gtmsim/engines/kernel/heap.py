"""Binary heaps over preallocated arrays: the event list and the work queues.

Events are ordered by (time, insertion sequence), as SimPy orders same-time events. A work
queue holds (class, key, sequence) -> lead, as a SimPy PriorityStore of PriorityItems:
escalated items (class 0) first, then the discipline's key, then arrival order.

Keys are unique (every item has its own sequence number), so the order items come out in
does not depend on how the heap is laid out. Each function binds the state's arrays to
locals once (a StructRef field read takes a reference each time) and sifts a hole rather
than swapping, so a level costs one move instead of a three-way exchange.
"""

from __future__ import annotations

from numba import njit

from gtmsim.engines.kernel.state import C_HSEQ, C_HSIZE, C_QSEQ, C_STATUS, QUEUE_OVERFLOW


@njit(cache=True)
def schedule(st, t, kind, a, b):
    """Add an event at calendar time t."""
    C = st.C
    ht, hs, hk, ha, hb = st.ht, st.hs, st.hk, st.ha, st.hb
    n = C[C_HSIZE]
    seq = C[C_HSEQ]
    C[C_HSEQ] = seq + 1
    C[C_HSIZE] = n + 1
    while n > 0:
        parent = (n - 1) >> 1
        pt = ht[parent]
        if t < pt or (t == pt and seq < hs[parent]):
            ht[n] = pt
            hs[n] = hs[parent]
            hk[n] = hk[parent]
            ha[n] = ha[parent]
            hb[n] = hb[parent]
            n = parent
        else:
            break
    ht[n] = t
    hs[n] = seq
    hk[n] = kind
    ha[n] = a
    hb[n] = b


@njit(cache=True)
def pop_event(st):
    """Remove the earliest event; returns (time, kind, a, b)."""
    C = st.C
    ht, hs, hk, ha, hb = st.ht, st.hs, st.hk, st.ha, st.hb
    t, k, a, b = ht[0], hk[0], ha[0], hb[0]
    n = C[C_HSIZE] - 1
    C[C_HSIZE] = n
    if n > 0:
        # the last item sinks from the root
        lt, ls, lk, la, lb = ht[n], hs[n], hk[n], ha[n], hb[n]
        i = 0
        while True:
            m = 2 * i + 1
            if m >= n:
                break
            mt, ms = ht[m], hs[m]
            r = m + 1
            if r < n:
                rt, rs = ht[r], hs[r]
                if rt < mt or (rt == mt and rs < ms):
                    m, mt, ms = r, rt, rs
            if mt < lt or (mt == lt and ms < ls):
                ht[i] = mt
                hs[i] = ms
                hk[i] = hk[m]
                ha[i] = ha[m]
                hb[i] = hb[m]
                i = m
            else:
                break
        ht[i] = lt
        hs[i] = ls
        hk[i] = lk
        ha[i] = la
        hb[i] = lb
    return t, k, a, b


@njit(cache=True)
def _q_less(c1, k1, s1, c2, k2, s2):
    if c1 != c2:
        return c1 < c2
    if k1 != k2:
        return k1 < k2
    return s1 < s2


@njit(cache=True)
def q_push(st, q, cls, key, seq, lead):
    """Put an item; seq < 0 takes the next sequence number. False if the queue is full."""
    qcls, qkey, qseq, qlead, qlen = st.qcls, st.qkey, st.qseq, st.qlead, st.qlen
    n = qlen[q]
    if n >= qcls.shape[1]:
        st.C[C_STATUS] = QUEUE_OVERFLOW
        return False
    if seq < 0:
        C = st.C
        seq = C[C_QSEQ]
        C[C_QSEQ] = seq + 1
    qlen[q] = n + 1
    while n > 0:
        parent = (n - 1) >> 1
        if _q_less(cls, key, seq, qcls[q, parent], qkey[q, parent], qseq[q, parent]):
            qcls[q, n] = qcls[q, parent]
            qkey[q, n] = qkey[q, parent]
            qseq[q, n] = qseq[q, parent]
            qlead[q, n] = qlead[q, parent]
            n = parent
        else:
            break
    qcls[q, n] = cls
    qkey[q, n] = key
    qseq[q, n] = seq
    qlead[q, n] = lead
    return True


@njit(cache=True)
def q_pop(st, q):
    """Take the first item; returns (cls, key, seq, lead)."""
    qcls, qkey, qseq, qlead, qlen = st.qcls, st.qkey, st.qseq, st.qlead, st.qlen
    cls, key, seq, lead = qcls[q, 0], qkey[q, 0], qseq[q, 0], qlead[q, 0]
    n = qlen[q] - 1
    qlen[q] = n
    if n > 0:
        lc, lk, ls, ll = qcls[q, n], qkey[q, n], qseq[q, n], qlead[q, n]
        i = 0
        while True:
            m = 2 * i + 1
            if m >= n:
                break
            r = m + 1
            if r < n and _q_less(qcls[q, r], qkey[q, r], qseq[q, r],
                                 qcls[q, m], qkey[q, m], qseq[q, m]):
                m = r
            if _q_less(qcls[q, m], qkey[q, m], qseq[q, m], lc, lk, ls):
                qcls[q, i] = qcls[q, m]
                qkey[q, i] = qkey[q, m]
                qseq[q, i] = qseq[q, m]
                qlead[q, i] = qlead[q, m]
                i = m
            else:
                break
        qcls[q, i] = lc
        qkey[q, i] = lk
        qseq[q, i] = ls
        qlead[q, i] = ll
    return cls, key, seq, lead
