"""Counting a SimPy replication into a Tally, and the optional event log."""

from __future__ import annotations

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
        self.last_week = spec.n_weeks - 1
        self.calendar = Calendar(spec.work_days, spec.day_start, spec.day_end)
        n = spec.n_teams
        self.wip, self.wip_since = [0] * n, [0.0] * n
        self.serving, self.serving_since = [0] * n, [0.0] * n
        self.buyer, self.buyer_since = [0] * n, [0.0] * n
        # the counters as Python lists while running (element access on numpy arrays costs
        # more than the arithmetic); `finish` copies them into the Tally
        t = self.tally
        self.fates, self.scalars = t.fates.tolist(), t.scalars.tolist()
        self.channels, self.team, self.stage = t.channel.tolist(), t.team.tolist(), t.stage.tolist()
        self.cycle_hist, self.bookings_w = t.cycle_hist.tolist(), t.bookings_w.tolist()
        self.wip_w, self.busy_w = t.wip_w.tolist(), t.busy_w.tolist()
        self.available_w = t.available_w.tolist()
        self.log: list[tuple] | None = [] if event_log else None

    def finish(self) -> O.Tally:
        """Copy the counters into the Tally (call once, after `close`)."""
        t = self.tally
        for name, arr in (("fates", t.fates), ("scalars", t.scalars), ("channels", t.channel),
                          ("team", t.team), ("stage", t.stage), ("cycle_hist", t.cycle_hist),
                          ("bookings_w", t.bookings_w), ("wip_w", t.wip_w),
                          ("busy_w", t.busy_w), ("available_w", t.available_w)):
            arr[...] = getattr(self, name)
        return t

    def inside(self, t: float) -> bool:
        return self.lo <= t < self.hi

    def week(self, t: float) -> int:
        """The measured week whose bounds, lo + k * WEEK as `_split` computes them, hold t:
        (t - lo) // WEEK alone can round across a bound (a warm-up of 0.34 days put a
        week's first instant in the week before, and `_split` cut empty segments forever)."""
        k = int((t - self.lo) // WEEK)
        if self.lo + (k + 1) * WEEK <= t:
            k += 1
        elif k > 0 and self.lo + k * WEEK > t:
            k -= 1
        return k if k < self.last_week else self.last_week

    # -- time integrals, split by week
    def _segments(self, a: float, b: float):
        if a < self.lo:
            a = self.lo
        if b > self.hi:
            b = self.hi
        if a >= b:
            return ()
        k = self.week(a)
        if k == self.week(b) and k < self.last_week:
            return ((k, a, b),)  # the common case: inside one week
        return self._split(a, b)

    def _split(self, a: float, b: float):
        while a < b:
            k = self.week(a)
            edge = min(b, self.lo + (k + 1) * WEEK) if k < self.last_week else b
            yield k, a, edge
            a = edge

    def calendar_area(self, row: list, col: int, weekly: list | None, level: float,
                      a: float, b: float) -> None:
        if level == 0:
            return
        for k, s, e in self._segments(a, b):
            row[col] += level * (e - s)
            if weekly is not None:
                weekly[k] += level * (e - s)

    def working_area(self, team: int, col: int, weekly: list, a: float, b: float) -> None:
        row, week_row = self.team[team], weekly[team]
        for k, s, e in self._segments(a, b):
            h = self.calendar.working_hours_between(s, e)
            row[col] += h
            week_row[k] += h

    # -- WIP (for Little's law and queue length) and people serving
    def wip_change(self, team: int, t: float, delta: int) -> None:
        self.calendar_area(self.team[team], O.T_WIP_AREA, self.wip_w[team], self.wip[team],
                           self.wip_since[team], t)
        self.wip[team] += delta
        self.wip_since[team] = t

    def serving_change(self, team: int, t: float, delta: int) -> None:
        self.calendar_area(self.team[team], O.T_SERVING_AREA, None, self.serving[team],
                           self.serving_since[team], t)
        self.serving[team] += delta
        self.serving_since[team] = t

    def buyer_change(self, team: int, t: float, delta: int) -> None:
        """Opportunities waiting on the buyer: in the team's pipeline, not in its queue."""
        self.calendar_area(self.team[team], O.T_BUYER_AREA, None, self.buyer[team],
                           self.buyer_since[team], t)
        self.buyer[team] += delta
        self.buyer_since[team] = t

    def team_departure(self, team: int, entered: float, t: float) -> None:
        self.wip_change(team, t, -1)
        if self.lo <= t < self.hi:
            row = self.team[team]
            row[O.T_DEPARTURES] += 1
            row[O.T_SOJOURN_SUM] += t - entered

    def busy(self, team: int, a: float, b: float) -> None:
        self.working_area(team, O.T_BUSY, self.busy_w, a, b)

    def staffed(self, team: int, a: float, b: float) -> None:
        self.working_area(team, O.T_AVAILABLE, self.available_w, a, b)
        self.calendar_area(self.team[team], O.T_HEADCOUNT_AREA, None, 1.0, a, b)

    # -- counts
    def fate(self, fate: int, t: float) -> None:
        if self.lo <= t < self.hi:
            self.fates[fate] += 1

    def add(self, scalar: int, t: float, amount: float = 1.0) -> None:
        if self.lo <= t < self.hi:
            self.scalars[scalar] += amount

    def channel(self, channel: int, col: int, t: float, amount: float = 1.0) -> None:
        if self.lo <= t < self.hi:
            self.channels[channel][col] += amount

    def stage_count(self, stage: int, col: int, t: float) -> None:
        if self.lo <= t < self.hi:
            self.stage[stage][col] += 1

    def kpi(self, team: int, t: float, amount: float) -> None:
        if self.lo <= t < self.hi:
            self.team[team][O.T_KPI] += amount

    def won(self, t: float, value: float, cycle: float) -> None:
        if self.lo <= t < self.hi:
            self.fates[O.F_WON] += 1
            self.scalars[O.S_BOOKINGS] += value
            self.scalars[O.S_CYCLE_SUM] += cycle
            self.bookings_w[self.week(t)] += value
            self.cycle_hist[min(int(cycle / 24.0), O.CYCLE_BINS - 1)] += 1

    def quit(self, team: int, t: float) -> None:
        if self.lo <= t < self.hi:
            self.team[team][O.T_QUITS] += 1

    def trust_week(self, week: int, trust: list) -> None:
        self.tally.trust_w[:, week] = trust

    def activity(self, case: int, activity: str, resource: str, start: float, end: float,
                 outcome: str) -> None:
        if self.log is not None:
            self.log.append((case, activity, resource, start, end, outcome))

    def close(self, t: float) -> None:
        """The time integrals up to the end, and the leads each team still holds then (not
        those with the buyer): no fate yet."""
        for k in range(self.spec.n_teams):
            self.wip_change(k, t, 0)
            self.serving_change(k, t, 0)
            self.buyer_change(k, t, 0)
            self.team[k][O.T_OPEN_END] = self.wip[k] - self.buyer[k]

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"Recorder(events={self.scalars[O.S_EVENTS]:.0f})"
