"""Counting a SimPy replication into a Tally, and the optional event log."""

from __future__ import annotations

import numpy as np

from gtmsim import outcomes as O
from gtmsim.calendar import Calendar
from gtmsim.spec import ModelSpec

WEEK = 168.0


class Recorder:
    """Counts events and time integrals that fall inside the measured window."""

    def __init__(self, spec: ModelSpec, event_log: bool = False):
        self.spec = spec
        self.tally = O.Tally(spec)
        self.lo = spec.warmup
        self.hi = spec.end
        self.calendar = Calendar(spec.work_days, spec.day_start, spec.day_end)
        self.wip = np.zeros(spec.n_teams, dtype=np.int64)
        self.wip_since = np.zeros(spec.n_teams)
        self.serving = np.zeros(spec.n_teams, dtype=np.int64)
        self.serving_since = np.zeros(spec.n_teams)
        self.buyer = np.zeros(spec.n_teams, dtype=np.int64)
        self.buyer_since = np.zeros(spec.n_teams)
        self.log: list[tuple] | None = [] if event_log else None

    def inside(self, t: float) -> bool:
        return self.lo <= t < self.hi

    def week(self, t: float) -> int:
        return min(int((t - self.lo) // WEEK), self.spec.n_weeks - 1)

    # -- time integrals, split by week
    def _segments(self, a: float, b: float):
        a, b = max(a, self.lo), min(b, self.hi)
        if a >= b:
            return ()
        k = self.week(a)
        if k == self.week(b) and k < self.spec.n_weeks - 1:
            return ((k, a, b),)  # the common case: inside one week
        return self._split(a, b)

    def _split(self, a: float, b: float):
        while a < b:
            k = self.week(a)
            edge = min(b, self.lo + (k + 1) * WEEK) if k < self.spec.n_weeks - 1 else b
            yield k, a, edge
            a = edge

    def calendar_area(self, total: np.ndarray, idx: tuple, weekly: np.ndarray | None,
                      level: float, a: float, b: float) -> None:
        if level == 0:
            return
        for k, s, e in self._segments(a, b):
            total[idx] += level * (e - s)
            if weekly is not None:
                weekly[k] += level * (e - s)

    def working_area(self, team: int, col: int, weekly: np.ndarray, a: float, b: float) -> None:
        for k, s, e in self._segments(a, b):
            h = self.calendar.working_hours_between(s, e)
            self.tally.team[team, col] += h
            weekly[team, k] += h

    # -- WIP (for Little's law and queue length) and people serving
    def wip_change(self, team: int, t: float, delta: int) -> None:
        self.calendar_area(self.tally.team, (team, O.T_WIP_AREA), self.tally.wip_w[team],
                           self.wip[team], self.wip_since[team], t)
        self.wip[team] += delta
        self.wip_since[team] = t

    def serving_change(self, team: int, t: float, delta: int) -> None:
        self.calendar_area(self.tally.team, (team, O.T_SERVING_AREA), None,
                           self.serving[team], self.serving_since[team], t)
        self.serving[team] += delta
        self.serving_since[team] = t

    def buyer_change(self, team: int, t: float, delta: int) -> None:
        """Opportunities waiting on the buyer: in the team's pipeline, not in its queue."""
        self.calendar_area(self.tally.team, (team, O.T_BUYER_AREA), None,
                           self.buyer[team], self.buyer_since[team], t)
        self.buyer[team] += delta
        self.buyer_since[team] = t

    def team_departure(self, team: int, entered: float, t: float) -> None:
        self.wip_change(team, t, -1)
        if self.inside(t):
            self.tally.team[team, O.T_DEPARTURES] += 1
            self.tally.team[team, O.T_SOJOURN_SUM] += t - entered

    def busy(self, team: int, a: float, b: float) -> None:
        self.working_area(team, O.T_BUSY, self.tally.busy_w, a, b)

    def staffed(self, team: int, a: float, b: float) -> None:
        self.working_area(team, O.T_AVAILABLE, self.tally.available_w, a, b)
        self.calendar_area(self.tally.team, (team, O.T_HEADCOUNT_AREA), None, 1.0, a, b)

    # -- counts
    def fate(self, fate: int, t: float) -> None:
        if self.inside(t):
            self.tally.fates[fate] += 1

    def add(self, scalar: int, t: float, amount: float = 1.0) -> None:
        if self.inside(t):
            self.tally.scalars[scalar] += amount

    def channel(self, channel: int, col: int, t: float, amount: float = 1.0) -> None:
        if self.inside(t):
            self.tally.channel[channel, col] += amount

    def stage_count(self, stage: int, col: int, t: float) -> None:
        if self.inside(t):
            self.tally.stage[stage, col] += 1

    def kpi(self, team: int, t: float, amount: float) -> None:
        if self.inside(t):
            self.tally.team[team, O.T_KPI] += amount

    def won(self, t: float, value: float, cycle: float) -> None:
        if self.inside(t):
            tl = self.tally
            tl.fates[O.F_WON] += 1
            tl.scalars[O.S_BOOKINGS] += value
            tl.scalars[O.S_CYCLE_SUM] += cycle
            tl.bookings_w[self.week(t)] += value
            tl.cycle_hist[min(int(cycle / 24.0), O.CYCLE_BINS - 1)] += 1

    def quit(self, team: int, t: float) -> None:
        if self.inside(t):
            self.tally.team[team, O.T_QUITS] += 1

    def trust_week(self, week: int, trust: np.ndarray) -> None:
        self.tally.trust_w[:, week] = trust

    def activity(self, case: int, activity: str, resource: str, start: float, end: float,
                 outcome: str) -> None:
        if self.log is not None:
            self.log.append((case, activity, resource, start, end, outcome))

    def close(self, t: float) -> None:
        for k in range(self.spec.n_teams):
            self.wip_change(k, t, 0)
            self.serving_change(k, t, 0)
            self.buyer_change(k, t, 0)

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"Recorder(events={self.tally.scalars[O.S_EVENTS]:.0f})"
