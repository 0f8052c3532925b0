"""The SimPy reference engine: every mechanism of the model, readable, one replication at a time.

A lead enters a stage (through a handoff, perhaps), waits out the receiver's response latency
(or is forgotten until an SLA escalation finds it), queues for a person of the owning team,
is worked and decided on, and is routed on. People are SimPy processes pulling from their own
queue (push routing) or their team's shared queue (pool routing).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from types import SimpleNamespace

import numpy as np
import simpy

from gtmsim import distributions as D
from gtmsim import outcomes as O
from gtmsim import spec as S
from gtmsim.calendar import Calendar
from gtmsim.engines.simpy.leads import Lead, touch
from gtmsim.engines.simpy.people import Person, latency_hours, lognormal_mean_one, perceived
from gtmsim.engines.simpy.recorder import Recorder
from gtmsim.errors import Stalled

ESCALATED, NORMAL = 0, 1  # queue classes: escalated items jump the queue


class Replication:
    """One replication of the model on the SimPy engine."""

    def __init__(self, spec: S.ModelSpec, seed: np.random.SeedSequence | int,
                 event_log: bool = False):
        self.spec = _plain(spec)
        self.env = simpy.Environment()
        # three streams, so that two designs run on the same seed meet the same leads and the
        # same people even when their work unfolds differently (common random numbers)
        root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        # the first three children, as `root.spawn(3)` gives them, without spawning from (and
        # so changing) the caller's SeedSequence: the same seed object runs the same twice
        def child(*key: int) -> np.random.Generator:
            return np.random.default_rng(np.random.SeedSequence(
                root.entropy, spawn_key=(*root.spawn_key, *key), pool_size=root.pool_size))

        self.rng_arrivals = child(1)
        # the work stream, 0, is cut per stage, so that a change confined to one stage (its
        # team's size, its effort, its threshold) moves no other stage's draws
        self.stage_rng = [child(0, s) for s in range(spec.n_stages)]
        # the people's stream, 2, is cut further: each seat's turnover (tenure, then each
        # occupant's time to quit) and each person's traits, one stream per trait, so that a
        # trait switched off (drawing nothing) or drawing a varying number of times moves no
        # one else's draws
        self.seat_rng = [[child(2, team, slot, S.SEAT_STREAM) for slot in range(n)]
                         for team, n in enumerate(spec.team_headcount)]
        self.trait_rng = lambda team, slot, generation: (
            lambda trait: child(2, team, slot, generation, trait))
        self.cal = Calendar(spec.work_days, spec.day_start, spec.day_end)
        self.rec = Recorder(spec, event_log)
        self.trust = [float(spec.trust_initial)] * spec.n_edges
        self.feedback_shift = [0.0] * spec.n_stages
        self.kpi_quarter = [0.0] * spec.n_teams  # this quarter's KPI, for quota pressure
        self.renewals_quarter = [[0.0, 0.0] for _ in range(spec.n_teams)]  # renewals, churns
        self.quarter_of = [0] * spec.n_teams
        self.seq = itertools.count()
        self.lead_ids = itertools.count()
        self.pools = [simpy.PriorityStore(self.env) for _ in range(spec.n_teams)]
        self.slot_queues = [[simpy.PriorityStore(self.env) for _ in range(n)]
                            for n in spec.team_headcount]
        self.people: list[list[Person]] = []
        self.hired: list[Person] = []  # everyone, in hiring order, leavers too
        self.rr = [0] * spec.n_teams

    # ------------------------------------------------------------------ running

    def run(self) -> Recorder:
        sp, env = self.spec, self.env
        for team, n in enumerate(sp.team_headcount):
            slots = []
            for slot in range(n):
                hired = (-self.seat_rng[team][slot].exponential(1.0 / sp.attrition_rate)
                         if sp.attrition_rate > 0 else -1e9)
                p = self._hire(team, slot, hired, 0)
                slots.append(p)
                if sp.attrition_rate > 0:
                    env.process(self._turnover(team, slot))
            self.people.append(slots)
        for c in range(len(sp.channel_names)):
            env.process(self._arrivals(c))
        env.process(self._weekly())
        env.run(until=sp.end)
        self.simpy_events = next(env._eid)  # events SimPy scheduled, for speed figures
        # everyone still there, including those who quit and are finishing their last lead
        for p in self.hired:
            if not p.gone:
                self.rec.staffed(p.team, p.staffed_since, sp.end)
        self.rec.close(sp.end)
        self.rec.trust_week(sp.n_weeks - 1, self.trust)
        self.rec.finish().trust_end[:] = self.trust
        return self.rec

    def _hire(self, team: int, slot: int, hired: float, generation: int) -> Person:
        p = Person(self.spec, self.trait_rng(team, slot, generation), team, slot, hired,
                   generation)
        p.queue = self.slot_queues[team][slot]
        p.staffed_since = max(self.env.now, 0.0)
        p.process = self.env.process(self._work_loop(p))
        self.hired.append(p)
        return p

    def _event(self) -> None:
        self.rec.scalars[O.S_EVENTS] += 1

    # ------------------------------------------------------------------ arrivals

    def _arrivals(self, c: int):
        sp, rng, env = self.spec, self.rng_arrivals, self.env
        rate = sp.channel_rate[c]
        mult = sp.channel_week_mult[c]
        peak = rate * max(mult)
        if peak <= 0:
            return
        t = 0.0  # arrivals come on working time (advanced gap by gap), or calendar time
        while True:
            gap = rng.exponential(1.0 / peak)
            t = self.cal.advance(t, gap) if sp.channel_working_only[c] else t + gap
            if t >= sp.end:
                return
            if rng.random() * peak > rate * mult[int(t // 168.0)]:
                continue  # thinning: the rate in this week is below the peak
            yield env.timeout(t - env.now)
            self._event()
            q = D.draw(rng, *self._dist(sp.channel_quality[c]))
            v = D.draw(rng, *self._dist(sp.channel_value[c]))
            lead = Lead(next(self.lead_ids), c, env.now, min(max(q, 0.0), 1.0), v)
            lead.u_live, lead.u_win, lead.u_churn = rng.random(), rng.random(), rng.random()
            self.rec.add(O.S_LEADS, env.now)
            self.rec.channel(c, O.C_LEADS, env.now)
            entry = int(sp.channel_entry[c])
            # the case's first row: its channel, and the time its response clock starts
            self.rec.activity(lead.id, self._name(entry) + ":arrived", sp.channel_names[c],
                              env.now, env.now, "new lead")
            self._enter(lead, entry, -1)

    def _dist(self, row: int) -> tuple:
        sp = self.spec
        p = sp.dist_par[row]
        return sp.dist_kind[row], p[0], p[1], p[2], sp.dist_pool

    # ------------------------------------------------------------------ entering a stage

    def _enter(self, lead: Lead, s: int, edge: int, sender_compliant: bool = True) -> None:
        """A lead arrives at stage s, through handoff `edge` (or -1)."""
        sp, rng, env = self.spec, self.stage_rng[s], self.env
        t = env.now
        team = int(sp.stage_team[s])
        if lead.entered == t:  # a loop of routes that takes no time never ends: stop it
            lead.same_instant += 1
            if lead.same_instant >= S.SAME_INSTANT_LIMIT:
                raise Stalled(self._name(s))
        else:
            lead.same_instant = 0
        lead.stage, lead.edge, lead.entered, lead.attempt = s, edge, t, 0
        # a handoff's extra effort (context lost, a warm handoff) is its receiver's: what a
        # stage the lead left unworked (sent back, unreached) leaves behind is dropped here
        lead.info_lost = lead.warm_pending = False
        self.rec.wip_change(team, t, +1)
        if edge >= 0:
            # 7. handoff loss: a CRM drop may lose the lead or its context; warm loses less
            warm = sp.edge_protocol[edge] == S.PROTOCOLS["warm"] and sender_compliant
            if not warm and rng.random() < sp.leak_crm:
                return self._leave(lead, O.F_HANDOFF)
            if rng.random() < (sp.loss_warm if warm else sp.loss_crm):
                lead.info_lost = True
                lead.experience *= 1.0 - sp.experience_penalty
            lead.warm_pending = warm
            # 8. low trust: the receiver may ignore what it is sent
            distrust = 1.0 - self.trust[edge]
            if sp.trust_ignore > 0 and rng.random() < sp.trust_ignore * distrust * distrust:
                return self._leave(lead, O.F_IGNORED)
        slot = self._assign(team)
        person = self.people[team][slot] if slot >= 0 else None
        lead.slot = slot
        compliant = person.compliant if person else rng.random() < sp.compliance_p
        # 1. response latency, slower when trust is low; 13. the compliant keep the SLA
        lat = sp.team_latency_scale[team] * latency_hours(
            sp, rng, person.latency_mult if person else 1.0)
        if edge >= 0:
            lat *= 1.0 + sp.trust_latency * (1.0 - self.trust[edge])
        sla = sp.edge_sla[edge] if edge >= 0 else sp.stage_sla[s]
        if compliant and math.isfinite(sla):
            lat = min(lat, sla)
        # 5. forgetting: the item sits until the SLA escalation finds it, or leaks
        if sp.forget_p > 0 and rng.random() < sp.forget_p:
            if not math.isfinite(sla):
                return self._leave(lead, O.F_FORGOTTEN)
            found = self.cal.advance(t, sla + sp.escalation_hours)
            self._later(found - t, lead, ESCALATED)
        elif lat > 0:
            self._later(self.cal.advance(t, lat) - t, lead, NORMAL)
        else:
            self._enqueue(lead, NORMAL)

    def _later(self, delay: float, lead: Lead, cls: int) -> None:
        ev = self.env.timeout(delay)
        ev.callbacks.append(lambda _ev: self._enqueue(lead, cls))

    def _enqueue(self, lead: Lead, cls: int) -> None:
        """Put a lead in its person's queue (push) or its team's pool, by the discipline."""
        sp, rng = self.spec, self.stage_rng[lead.stage]
        self._event()
        team = int(sp.stage_team[lead.stage])
        discipline = sp.team_discipline[team]
        if discipline == S.DISCIPLINES["fifo"]:
            key = self.env.now
        elif discipline == S.DISCIPLINES["newest"]:
            key = -self.env.now
        else:
            key = -perceived(lead.quality, sp.noise_sd, rng)
        item = simpy.PriorityItem((cls, key, next(self.seq)), lead)
        if lead.slot < 0:
            self.pools[team].put(item)
            return
        if not self.people[team][lead.slot].active:
            slot = self._assign(team)
            if slot != lead.slot and slot >= 0:
                self._unload(team, lead.slot)
                lead.slot = slot
        self.slot_queues[team][lead.slot].put(item)

    # ------------------------------------------------------------------ routing

    def _assign(self, team: int) -> int:
        """A slot for a new item, by the team's routing; -1 for the shared pool."""
        sp = self.spec
        routing = sp.team_routing[team]
        if routing == S.ROUTINGS["pool"]:
            return -1
        slots = self.people[team]
        active = [p for p in slots if p.active]
        if not active:
            return int(self.rr[team] % len(slots))  # waits for the next hire of that slot
        if routing == S.ROUTINGS["round_robin"]:
            n = len(slots)
            for k in range(n):
                cand = slots[(self.rr[team] + k) % n]
                if cand.active:
                    self.rr[team] = (cand.slot + 1) % n
                    break
            chosen = cand
        elif routing == S.ROUTINGS["least_loaded"]:
            chosen = min(active, key=lambda p: (p.load, p.slot))
        else:  # by_skill: load relative to how fast the person gets through work
            now = self.env.now
            chosen = min(active, key=lambda p: ((p.load + 1) / p.skill(sp, now), p.slot))
        chosen.load += 1
        return chosen.slot

    def _unload(self, team: int, slot: int) -> None:
        p = self.people[team][slot]
        p.load = max(p.load - 1, 0)

    # ------------------------------------------------------------------ people at work

    def _work_loop(self, p: Person):
        sp = self.spec
        team = p.team
        store = self.pools[team] if sp.team_routing[team] == S.ROUTINGS["pool"] else p.queue
        while p.active:
            get = store.get()
            try:
                entry = yield get
            except simpy.Interrupt:
                if get.triggered:  # took an item in the same instant it was told to leave
                    store.put(get.value)
                else:
                    get.cancel()
                return
            lead = entry.item
            p.busy = True
            self.rec.serving_change(team, self.env.now, +1)
            yield from self._handle(p, lead)
            self.rec.serving_change(team, self.env.now, -1)
            p.busy = False
        self._left(p)

    def _work(self, p: Person, lead: Lead, effort: float, activity: str,
              outcome: str | None = ""):
        """Person p spends `effort` nominal hours on the lead, in working time. The event log
        row is written when the work ends; with outcome None the caller writes it (the
        outcome is known only after): this returns the row's (start, end) if there is a log."""
        now = self.env.now
        hours = p.work_hours(self.spec, now, effort)
        end = self.cal.advance(now, hours)
        self.rec.busy(p.team, now, end)
        if lead.rework_stage == lead.stage:
            self.rec.add(O.S_REWORK, now, hours)
        yield self.env.timeout(end - now)
        self._event()
        if self.rec.log is None:
            return None
        start = min(self.cal.next_open(now), end)  # work taken up out of hours: next opening
        if outcome is None:
            return start, end
        self.rec.activity(lead.id, activity, self._resource(p), start, end, outcome)
        return None

    def _resource(self, p: Person) -> str:
        return f"{self.spec.team_names[p.team]}-{p.slot + 1}" + (
            f"#{p.generation}" if p.generation else "")

    def _handle(self, p: Person, lead: Lead):
        kind = self.spec.stage_kind[lead.stage]
        if kind == S.CONTACT:
            yield from self._contact(p, lead)
        elif kind == S.CLOSE:
            yield from self._close(p, lead)
        elif kind == S.RETAIN:
            yield from self._retain(p, lead)
        else:
            yield from self._review(p, lead)

    def _effort(self, p: Person, lead: Lead) -> float:
        """Nominal hours of the stage's main task: the task itself plus what the human
        mechanisms add (rediscovery after a lossy handoff, re-qualifying a distrusted
        sender, a warm handoff meeting), less the corners cut under quota pressure."""
        s = lead.stage
        sp, rng = self.spec, self.stage_rng[s]
        base = D.draw(rng, *self._dist(sp.stage_effort[s])) * lognormal_mean_one(rng, sp.task_cv)
        base *= 1.0 - sp.pressure_corner_cut * self._pressure(int(sp.stage_team[s]))
        if lead.info_lost:
            base += sp.rediscovery_hours
            lead.info_lost = False
        if lead.warm_pending:
            base += sp.warm_hours
            lead.warm_pending = False
        if lead.edge >= 0:
            base += sp.trust_requalify * (1.0 - self.trust[lead.edge])
        return base

    def _caught(self, p: Person, lead: Lead):
        """6. An upstream error is caught here (rework upstream) or slips through."""
        sp, rng = self.spec, self.stage_rng[lead.stage]
        if lead.error_from < 0:
            return False
        upstream = lead.error_from
        lead.error_from = -1
        if rng.random() >= sp.error_caught:
            lead.experience *= 1.0 - sp.error_win_penalty
            return False
        lead.rework_stage = lead.stage  # the catcher's time counts as rework
        yield from self._work(p, lead, sp.rediscovery_hours, self._name(lead.stage) + ":rework",
                              "sent back")
        self._trust_update(lead.edge, 0.0)
        t = self.env.now  # sent back: out of this stage, into the one that erred, at once
        self.rec.stage_count(lead.stage, O.ST_REWORK_SENT_BACK, t)
        self.rec.stage_count(upstream, O.ST_REWORK_RETURNS, t)
        lead.rework_stage = upstream
        self._depart(lead)
        self._enter(lead, upstream, -1)
        return True

    def _decide(self, p: Person, lead: Lead) -> int:
        """3, 4, 10: perceived quality against the person's (shifted) threshold."""
        sp = self.spec
        s = lead.stage
        shift = (p.threshold_shift + self.feedback_shift[s]
                 - sp.pressure_threshold_drop * self._pressure(int(sp.stage_team[s])))
        seen = perceived(lead.quality, p.noise(sp, self.env.now), self.stage_rng[s])
        if seen >= sp.stage_threshold[s] + shift:
            outcome = S.QUALIFIED
        elif seen < sp.stage_reject_below[s] + shift:
            outcome = S.REJECTED
        else:
            outcome = S.RECYCLED
        self.rec.stage_count(s, O.ST_DECISIONS, self.env.now)
        if outcome == S.QUALIFIED:
            self.rec.stage_count(s, O.ST_QUALIFIED, self.env.now)
            self._kpi(int(sp.stage_team[s]), s, 0, 1.0)
        self._judged(lead, outcome != S.REJECTED)
        return outcome

    def _judged(self, lead: Lead, good: bool) -> None:
        """8 trust and the feedback loop learn from what the receiver made of a handoff:
        junk (rejected outright) is bad, anything workable is good."""
        sp = self.spec
        if lead.edge < 0:
            return
        self._trust_update(lead.edge, 1.0 if good else 0.0)
        if sp.feedback_on:
            u = sp.edge_from[lead.edge]
            step = sp.feedback_gain * ((0.0 if good else 1.0) - sp.feedback_target)
            m = sp.feedback_max_shift
            self.feedback_shift[u] = min(max(self.feedback_shift[u] + step, -m), m)

    def _trust_update(self, edge: int, outcome: float) -> None:
        if edge >= 0:
            self.trust[edge] += self.spec.trust_rate * (outcome - self.trust[edge])

    def _error(self, lead: Lead) -> bool:
        """6, 10: an execution error, likelier under quota pressure."""
        sp = self.spec
        p_err = sp.error_p + sp.pressure_error * self._pressure(int(sp.stage_team[lead.stage]))
        return p_err > 0 and self.stage_rng[lead.stage].random() < p_err

    def _name(self, s: int) -> str:
        return self.spec.stage_names[s]

    # ------------------------------------------------------------------ stage kinds

    def _review(self, p: Person, lead: Lead):
        if (yield from self._caught(p, lead)):
            return
        effort = self._effort(p, lead)
        outcome = self._decide(p, lead)
        yield from self._work(p, lead, effort, self._name(lead.stage), S.OUTCOMES[outcome])
        yield from self._route(p, lead, outcome)

    def _contact(self, p: Person, lead: Lead):
        s = lead.stage
        sp, rng = self.spec, self.stage_rng[s]
        if lead.attempt == 0:
            lead.max_attempts = p.attempts(int(sp.stage_attempts[s]))
        lead.attempt += 1
        activity = self._name(s) + ":attempt"
        row = yield from self._work(p, lead, sp.stage_attempt_hours[s], activity, None)
        if not lead.touched:
            touch(sp, lead, self.env.now)
        reached = lead.live and rng.random() < sp.stage_contact_p[s]
        if row is not None:
            # the last unanswered attempt at a live lead routes it as unreached: its row says
            # so, as a main task's row names its outcome (a cold lead's case ends in a leak row)
            unreached = not reached and lead.live and lead.attempt >= lead.max_attempts
            self.rec.activity(lead.id, activity, self._resource(p), *row,
                              "reached" if reached else S.OUTCOMES[S.UNREACHED] if unreached
                              else "no answer")
        if reached:
            if (yield from self._caught(p, lead)):
                return
            effort = self._effort(p, lead)
            outcome = self._decide(p, lead)
            yield from self._work(p, lead, effort, self._name(s), S.OUTCOMES[outcome])
            self._contact_done(lead, True, outcome == S.QUALIFIED)
            yield from self._route(p, lead, outcome)
        elif lead.attempt < lead.max_attempts:
            self._later(sp.stage_attempt_gap[s], lead, NORMAL)  # try again later
        else:
            self._contact_done(lead, False, False)
            if not lead.live:
                self._depart(lead)
                self._leaked(lead, O.F_DECAYED)
            else:
                yield from self._route(p, lead, S.UNREACHED)

    def _contact_done(self, lead: Lead, contacted: bool, qualified: bool) -> None:
        """Lead-response facts per channel: attempts, never contacted, speed to first touch."""
        rec, t, c = self.rec, self.env.now, lead.channel
        rec.channel(c, O.C_CONTACT_LEADS, t)
        rec.channel(c, O.C_ATTEMPTS, t, lead.attempt)
        if not contacted:
            rec.channel(c, O.C_NEVER_CONTACTED, t)
        if lead.touch_delay <= 1.0:
            rec.channel(c, O.C_FAST_TOUCHED, t)
            rec.channel(c, O.C_FAST_QUALIFIED, t, float(qualified))
        elif lead.touch_delay > 24.0:
            rec.channel(c, O.C_SLOW_TOUCHED, t)
            rec.channel(c, O.C_SLOW_QUALIFIED, t, float(qualified))

    def _close(self, p: Person, lead: Lead):
        s = lead.stage
        sp, rng, env = self.spec, self.stage_rng[s], self.env
        if not lead.touched:
            touch(sp, lead, env.now)
        if not lead.live:  # gone cold before anyone reached out
            yield from self._work(p, lead, sp.stage_attempt_hours[s], self._name(s) + ":attempt",
                                  "decayed")
            self._depart(lead)
            self._leaked(lead, O.F_DECAYED)
            return
        if (yield from self._caught(p, lead)):
            return
        effort = self._effort(p, lead)
        outcome = self._decide(p, lead)
        yield from self._work(p, lead, effort, self._name(s), S.OUTCOMES[outcome])
        if outcome != S.QUALIFIED:
            yield from self._route(p, lead, outcome)
            return
        if self._error(lead):
            lead.experience *= 1.0 - sp.error_win_penalty
        self.rec.buyer_change(int(sp.stage_team[s]), env.now, +1)
        self.rec.add(O.S_OPPS, env.now)
        self.rec.add(O.S_PIPELINE, env.now, lead.value)
        lead.last_compliant = p.compliant
        # the buyer decides on calendar time; the person is free meanwhile, and the deal no
        # longer counts in their load (least-loaded routing balances work, not pipeline)
        if lead.slot >= 0:
            self._unload(int(sp.stage_team[s]), lead.slot)
            lead.slot = -1
        delay = D.draw(rng, *self._dist(sp.stage_buyer[s]))
        ev = env.timeout(delay)
        ev.callbacks.append(lambda _ev: self._buyer_decides(lead))

    def _buyer_decides(self, lead: Lead) -> None:
        sp, env = self.spec, self.env
        s = lead.stage
        self._event()
        team = int(sp.stage_team[s])
        self.rec.buyer_change(team, env.now, -1)
        p_win = min(1.0, lead.quality * sp.stage_win_scale[s] * lead.experience)
        won = lead.u_win < p_win
        self.rec.activity(lead.id, self._name(s) + ":decision", "buyer", env.now, env.now,
                          "won" if won else "lost")
        if won:
            self.rec.won(env.now, lead.value, env.now - lead.created)
            self.rec.stage_count(s, O.ST_WON, env.now)
            self._kpi(team, s, 1, lead.value)
            self._kpi(team, s, 2, 1.0)
            self._forward(lead, S.WON, lead.last_compliant)
        else:
            self.rec.add(O.S_BUYER_LOSSES, env.now)
            self._forward(lead, S.LOST, lead.last_compliant)

    def _retain(self, p: Person, lead: Lead):
        sp, env = self.spec, self.env
        s = lead.stage
        if (yield from self._caught(p, lead)):
            return
        effort = self._effort(p, lead)
        yield from self._work(p, lead, effort, self._name(s), "onboarded")
        if self._error(lead):
            lead.experience *= 1.0 - sp.error_win_penalty
        self._depart(lead)
        ev = env.timeout(sp.stage_renewal[s])
        ev.callbacks.append(lambda _ev: self._renewal(lead, s))

    def _renewal(self, lead: Lead, s: int) -> None:
        sp, t = self.spec, self.env.now
        self._event()
        p_churn = churn_chance(sp.stage_churn_base[s], lead.quality, lead.experience)
        churned = lead.u_churn < p_churn
        self.rec.stage_count(s, O.ST_RENEWALS, t)
        if churned:
            self.rec.stage_count(s, O.ST_CHURNS, t)
        team = int(sp.stage_team[s])
        if sp.team_kpi_stage[team] == s:  # quota pressure reads the KPI's own stage only
            self._quarter(team)
            self.renewals_quarter[team][0] += 1
            self.renewals_quarter[team][1] += churned
        self._trust_update(lead.edge, 0.0 if churned else 1.0)
        self.rec.fate(O.F_CHURNED if churned else O.F_RETAINED, t)
        self.rec.activity(lead.id, self._name(s) + ":renewal", "customer", t, t,
                          "churned" if churned else "retained")

    # ------------------------------------------------------------------ leaving a stage

    def _depart(self, lead: Lead) -> None:
        """The lead leaves its stage's team (for WIP, throughput, time in team)."""
        team = int(self.spec.stage_team[lead.stage])
        self.rec.team_departure(team, lead.entered, self.env.now)
        if lead.rework_stage == lead.stage:
            lead.rework_stage = -1
        if lead.slot >= 0:
            self._unload(team, lead.slot)
            lead.slot = -1

    def _leave(self, lead: Lead, fate: int) -> None:
        self._depart(lead)
        self._leaked(lead, fate)

    def _leaked(self, lead: Lead, fate: int) -> None:
        """A leak, with its event log row: the case ends in `<stage>:leaked`, the team that
        lost it as the resource and the cause as the outcome."""
        now = self.env.now
        self.rec.fate(fate, now)
        s = lead.stage
        self.rec.stage_count(s, O.ST_LEAKS, now)
        self.rec.activity(lead.id, self._name(s) + ":leaked",
                          self.spec.team_names[int(self.spec.stage_team[s])], now, now,
                          O.FATES[fate].removeprefix("leaked_"))

    def _route(self, p: Person, lead: Lead, outcome: int):
        """Send the lead where the outcome says; a compliant sender holds a warm handoff."""
        sp = self.spec
        target = sp.route[lead.stage][outcome]
        if target >= 0 and outcome == S.QUALIFIED and self._error(lead):
            lead.error_from = lead.stage  # 6. to be caught downstream, or not
        if target >= 0:
            edge = sp.edge_of[lead.stage][target]
            if edge >= 0 and sp.edge_protocol[edge] == S.PROTOCOLS["warm"] and p.compliant:
                yield from self._work(p, lead, sp.warm_hours, self._name(lead.stage) + ":handoff",
                                      "to " + self._name(target))
        self._forward(lead, outcome, p.compliant)

    def _forward(self, lead: Lead, outcome: int, compliant: bool) -> None:
        sp, t = self.spec, self.env.now
        s = lead.stage
        target = sp.route[s][outcome]
        self._depart(lead)
        if target >= 0:
            if O.ROUTED[outcome] >= 0:  # on to a stage recycled, rejected, unreached or lost
                self.rec.stage_count(s, O.ROUTED[outcome], t)
            self._enter(lead, target, sp.edge_of[s][target], compliant)
        elif target == S.NURTURE:
            self.rec.fate(O.F_NURTURED, t)
            self.rec.stage_count(s, O.ST_NURTURED, t)
            rng = self.stage_rng[s]
            if sp.nurture_return_p > 0 and rng.random() < sp.nurture_return_p:
                ev = self.env.timeout(D.draw(rng, *self._dist(sp.nurture_return_after)))
                ev.callbacks.append(lambda _ev: self._nurture_return(lead))
        elif target == S.DISQUALIFIED:
            self.rec.fate(O.F_DISQUALIFIED, t)
            self.rec.stage_count(s, O.ST_DISQUALIFIED, t)
        elif target == S.LOST_FATE:
            self.rec.fate(O.F_LOST, t)
            self.rec.stage_count(s, O.ST_LOST, t)
        elif target == S.CUSTOMER:
            self.rec.fate(O.F_RETAINED, t)

    def _nurture_return(self, lead: Lead) -> None:
        """A recycled lead comes back with fresh intent (a re-engagement)."""
        sp = self.spec
        self._event()
        lead.intent_from = self.env.now
        lead.touched = False
        lead.live = True
        s = sp.nurture_return_stage
        s = int(sp.channel_entry[lead.channel]) if s < 0 else int(s)
        lead.u_live = self.stage_rng[s].random()  # a re-engaged buyer: fresh intent
        lead.error_from = -1  # and judged afresh: no stage is left to catch an old error
        self.rec.stage_count(s, O.ST_NURTURE_RETURNS, self.env.now)
        self._enter(lead, s, -1)

    # ------------------------------------------------------------------ quota pressure

    def _quarter(self, team: int) -> None:
        q = int(self.env.now // S.QUARTER)
        if q != self.quarter_of[team]:
            self.quarter_of[team] = q
            self.kpi_quarter[team] = 0.0
            self.renewals_quarter[team] = [0.0, 0.0]

    def _kpi(self, team: int, stage: int, metric: int, amount: float) -> None:
        sp = self.spec
        if sp.team_kpi_stage[team] != stage or sp.team_kpi_metric[team] != metric:
            return
        self._quarter(team)
        self.kpi_quarter[team] += amount
        self.rec.kpi(team, self.env.now, amount)

    def _pressure(self, team: int) -> float:
        """10. How far behind its quarterly target the team is, near the quarter's end."""
        sp = self.spec
        metric = sp.team_kpi_metric[team]
        if not sp.pressure_on or metric < 0:
            return 0.0
        into = self.env.now % S.QUARTER
        if S.QUARTER - into > sp.pressure_window:
            return 0.0
        self._quarter(team)
        target = sp.team_kpi_target[team]
        if metric == 3:
            ren, churn = self.renewals_quarter[team]
            attainment = ((ren - churn) / ren if ren > 0 else 1.0) / target
        elif target * into / S.QUARTER > 0.0:
            attainment = self.kpi_quarter[team] / (target * into / S.QUARTER)
        else:  # a quarter's first instant (a window of the whole quarter), or a target too
            attainment = 1.0  # small for a float to hold its share: nothing expected
        return min(1.0, max(0.0, 1.0 - attainment)) * (1.0 - sp.shared_kpi_share)

    # ------------------------------------------------------------------ turnover

    def _turnover(self, team: int, slot: int):
        """9. People leave at the attrition rate; the slot stays vacant, then a new hire."""
        sp, env, rng = self.spec, self.env, self.seat_rng[team][slot]
        while True:
            yield env.timeout(rng.exponential(1.0 / sp.attrition_rate))
            p = self.people[team][slot]
            p.active = False
            self._event()
            self.rec.quit(team, env.now)
            if not p.busy:
                p.process.interrupt()
                self._left(p)
            self._redistribute(team, slot)
            yield env.timeout(sp.vacancy_hours)
            self._event()
            self.people[team][slot] = self._hire(team, slot, env.now, p.generation + 1)

    def _left(self, p: Person) -> None:
        if not p.gone:
            p.gone = True
            self.rec.staffed(p.team, p.staffed_since, self.env.now)

    def _redistribute(self, team: int, slot: int) -> None:
        """The leaver's queue goes to colleagues; some of it is lost on the way."""
        sp = self.spec
        store = self.slot_queues[team][slot]
        if not any(p.active for p in self.people[team]):
            return  # nobody to take it: it waits for the next hire
        items, store.items[:] = list(store.items), []
        for item in sorted(items):
            lead = item.item
            if self.stage_rng[lead.stage].random() < sp.turnover_queue_loss:
                self._leave(lead, O.F_TURNOVER)
                continue
            self._unload(team, slot)
            lead.slot = self._assign(team)
            self._enqueue(lead, item.priority[0])

    # ------------------------------------------------------------------ weekly aggregates

    def _weekly(self):
        """Trust at the end of each measured week (the last week is taken at the end)."""
        sp, env = self.spec, self.env
        for k in range(sp.n_weeks - 1):
            yield env.timeout(sp.warmup + 168.0 * (k + 1) - env.now)
            self.rec.trust_week(k, self.trust)


def churn_chance(churn_base: float, quality: float, experience: float) -> float:
    """P(churn) at a renewal: churn_base x 2 x (1 - q) / experience, at most 1. A customer
    with no experience left (a penalty of 1 took it all) churns: the limit as it falls to 0
    (unless nothing makes them churn: churn_base 0 or quality 1)."""
    risk = churn_base * 2.0 * (1.0 - quality)
    if experience <= 0.0:
        return 1.0 if risk > 0.0 else 0.0
    return min(1.0, risk / experience)


def _plain(spec: S.ModelSpec) -> SimpleNamespace:
    """The spec with its arrays as Python lists: this engine reads single elements, which
    costs less, and computes the same, on lists of Python numbers than on numpy arrays."""
    keep = {"dist_pool"}  # read by the distribution samplers as an array
    values = {}
    for f in dataclasses.fields(spec):
        v = getattr(spec, f.name)
        values[f.name] = v.tolist() if isinstance(v, np.ndarray) and f.name not in keep else v
    for name in ("n_teams", "n_stages", "n_edges", "end"):
        values[name] = getattr(spec, name)
    return SimpleNamespace(**values)


def run_replication(spec: S.ModelSpec, seed, event_log: bool = False) -> Recorder:
    """Run one replication; the Recorder holds its tally (and event log if asked)."""
    rep = Replication(spec, seed, event_log)
    rec = rep.run()
    rec.simpy_events = rep.simpy_events
    return rec
