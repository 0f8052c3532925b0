"""Config -> model spec: one flat, numeric, engine-independent description of the org.

Everything is in hours. Every human mechanism is folded into effective parameters: a mechanism
that is switched off becomes its neutral value (no latency, no noise, availability 1, ...), so
the engines never branch on profile names. Both engines read only this.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field, fields

import numpy as np

from gtmsim import calendar
from gtmsim import distributions as D
from gtmsim.config.loader import check, people_value_problem
from gtmsim.config.schema import DAYS, Config, Param, central, market, market_problem
from gtmsim.errors import ConfigError

# stage kinds
REVIEW, CONTACT, CLOSE, RETAIN = range(4)
KINDS = {"review": REVIEW, "contact": CONTACT, "close": CLOSE, "retain": RETAIN}

# outcomes of a stage, the columns of `route`
QUALIFIED, RECYCLED, REJECTED, UNREACHED, WON, LOST = range(6)
OUTCOMES = ("qualified", "recycled", "rejected", "unreached", "won", "lost")

# terminal fates (negative route targets); NO_ROUTE marks an outcome a stage cannot have
NURTURE, DISQUALIFIED, LOST_FATE, CUSTOMER, NO_ROUTE = -1, -2, -3, -4, -9
TERMINAL_CODES = {"nurture": NURTURE, "disqualified": DISQUALIFIED, "lost": LOST_FATE,
                  "customer": CUSTOMER}

ROUTINGS = {"pool": 0, "round_robin": 1, "least_loaded": 2, "by_skill": 3}
DISCIPLINES = {"fifo": 0, "score": 1, "newest": 2}
PROTOCOLS = {"crm_drop": 0, "warm": 1}
KPI_METRICS = {"passed": 0, "won_value": 1, "won_count": 2, "retained": 3}

HOURS_PER_DAY = 24.0
HOURS_PER_YEAR = 8760.0
QUARTER = 13 * 168.0
# expected leads a replication may make: beyond it the kernel's tables would not fit in memory
# (a 10^12-lead channel ended in numba's MemoryError) and a SimPy run would take days
MAX_LEADS = 10_000_000
# the people's random streams, in both engines: a person's traits, each its own stream keyed
# by (team, slot, generation, trait), and a seat's turnover stream keyed by (team, slot,
# SEAT_STREAM, 0) (no generation reaches it)
T_SPEED, T_LATENCY, T_THRESHOLD, T_AVAILABILITY, T_COMPLIANCE, T_HABIT = range(6)
SEAT_STREAM = 1 << 20
# a lead that enters this many stages one after another at one instant is going round a
# loop of routes whose work takes no time: the run would never end (both engines stop it)
SAME_INSTANT_LIMIT = 1000


@dataclass(frozen=True)
class ModelSpec:
    """The model as arrays and scalars. Index order follows the config's table order."""

    # --- time
    warmup: float
    horizon: float
    work_days: np.ndarray  # int64[7]
    day_start: float
    day_end: float
    n_weeks: int  # weeks measured after the warm-up (weekly aggregates)

    # --- distributions: kind, p0, p1, p2 per row; empirical rows index `dist_pool`
    dist_kind: np.ndarray
    dist_par: np.ndarray  # float64[n_dist, 3]
    dist_pool: np.ndarray

    # --- channels
    channel_names: tuple[str, ...]
    channel_entry: np.ndarray  # stage index
    channel_rate: np.ndarray  # leads per hour of its clock (working or calendar)
    channel_working_only: np.ndarray  # bool: arrivals on working time only
    channel_week_mult: np.ndarray  # float64[n_channels, n_total_weeks]: rate multipliers
    channel_quality: np.ndarray  # dist row
    channel_value: np.ndarray  # dist row
    channel_intent_tau: np.ndarray  # hours (half-life / ln 2)
    channel_intent_floor: np.ndarray

    # --- teams
    team_names: tuple[str, ...]
    team_headcount: np.ndarray
    team_cost: np.ndarray
    team_routing: np.ndarray
    team_latency_scale: np.ndarray  # multiplies the response latency of the team's people
    team_discipline: np.ndarray
    team_kpi_metric: np.ndarray  # -1: none
    team_kpi_stage: np.ndarray
    team_kpi_target: np.ndarray  # per quarter

    # --- stages
    stage_names: tuple[str, ...]
    stage_team: np.ndarray
    stage_kind: np.ndarray
    stage_effort: np.ndarray  # dist row (working hours)
    stage_threshold: np.ndarray
    stage_reject_below: np.ndarray
    stage_attempts: np.ndarray  # prescribed attempts
    stage_attempt_hours: np.ndarray
    stage_attempt_gap: np.ndarray  # calendar hours between attempts
    stage_contact_p: np.ndarray
    stage_buyer: np.ndarray  # dist row (calendar hours) or -1
    stage_win_scale: np.ndarray
    stage_renewal: np.ndarray  # calendar hours
    stage_churn_base: np.ndarray
    stage_sla: np.ndarray  # working hours; inf: no SLA
    route: np.ndarray  # int64[n_stages, 6]: target stage or terminal code

    # --- handoffs: one edge per cross-team route, declared or implicit
    edge_names: tuple[str, ...]
    edge_from: np.ndarray
    edge_to: np.ndarray
    edge_protocol: np.ndarray
    edge_sla: np.ndarray  # working hours: the handoff's SLA, else the receiving stage's
    edge_of: np.ndarray  # int64[n_stages, n_stages]: edge index or -1

    # --- nurture
    nurture_return_p: float
    nurture_return_after: int  # dist row (calendar hours)
    nurture_return_stage: int  # -1: the lead's own entry stage

    # --- design
    shared_kpi_share: float
    enablement_hours: float
    escalation_hours: float
    feedback_on: bool
    feedback_gain: float
    feedback_target: float
    feedback_max_shift: float

    # --- people: effective parameters (neutral where the mechanism is off)
    latency_median: float  # working hours; 0: no latency
    latency_sigma: float
    latency_person_sigma: float
    speed_person_cv: float
    task_cv: float
    noise_sd: float  # logit scale
    threshold_sd: float
    forget_p: float
    error_p: float
    error_caught: float
    error_win_penalty: float
    loss_crm: float
    loss_warm: float
    leak_crm: float
    warm_hours: float
    rediscovery_hours: float
    experience_penalty: float
    trust_initial: float
    trust_rate: float
    trust_latency: float
    trust_ignore: float
    trust_requalify: float
    attrition_rate: float  # per hour
    ramp_hours: float  # 0: no ramp
    ramp_start: float
    ramp_noise: float
    vacancy_hours: float
    turnover_queue_loss: float
    pressure_on: bool
    pressure_window: float  # hours before a quarter's end
    pressure_threshold_drop: float
    pressure_error: float
    pressure_corner_cut: float
    availability_mean: float
    availability_concentration: float
    habit_attempts: float  # mean habitual attempts; <= 0: habit equals the prescription
    compliance_p: float

    extra: dict = field(default_factory=dict, compare=False)

    @property
    def n_stages(self) -> int:
        return len(self.stage_names)

    @property
    def n_teams(self) -> int:
        return len(self.team_names)

    @property
    def n_edges(self) -> int:
        return len(self.edge_names)

    @property
    def end(self) -> float:
        return self.warmup + self.horizon

    def check(self) -> None:
        """No NaN, no infinity where a finite number is needed, no impossible value."""
        self._check_types()
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name in ("stage_sla", "edge_sla"):
                bad = np.isnan(v).any()
            elif isinstance(v, np.ndarray) and v.dtype.kind == "f":
                bad = not np.isfinite(v).all()
            elif isinstance(v, float):
                bad = not math.isfinite(v)
            else:
                continue
            if bad:
                raise ConfigError(f"spec.{f.name}", f"not a finite number: {v!r}")
            # times, rates, shares and hours are never negative (a distribution's parameters,
            # a lognormal's log-median say, may be)
            if f.name not in ("dist_par", "dist_pool") and np.any(np.asarray(v) < 0):
                raise ConfigError(f"spec.{f.name}", f"must not be negative: {v!r}")
        if self.horizon <= 0:
            raise ConfigError("spec.horizon", f"must be above 0, got {self.horizon}")
        # the calendar as the config's schema allows it (a working day, a window inside a
        # day): otherwise the engines failed deep inside (a division by zero, a math domain
        # error) or, on numba, looked for working time forever
        days = np.asarray(self.work_days)
        if days.shape != (7,) or not np.isin(days, (0, 1)).all() or days.sum() < 1:
            raise ConfigError("spec.work_days", f"expected seven 0/1 flags, Monday first, with "
                              f"at least one working day, got {self.work_days!r}")
        if not 0.0 <= self.day_start < self.day_end <= 24.0:
            raise ConfigError("spec.day_start", f"expected 0 <= day_start < day_end <= 24, got "
                              f"{self.day_start:g} and {self.day_end:g}")
        # the window's weeks as compile_spec sized them: a horizon or warm-up lengthened by
        # hand ran past the weekly arrays (an IndexError in SimPy; on numba, reads past their
        # end and a run that never ended)
        weeks = measured_weeks(self.horizon)
        if self.n_weeks != weeks:
            raise ConfigError("spec.n_weeks", f"must be {weeks} for a horizon of "
                              f"{self.horizon:g} hours, got {self.n_weeks}: compile the config "
                              "again (compile_spec) rather than change the window by hand")
        total = int(math.ceil((self.warmup + self.horizon) / 168.0)) + 1
        if self.channel_week_mult.shape[1] < total:
            raise ConfigError("spec.channel_week_mult", f"has {self.channel_week_mult.shape[1]} "
                              f"weeks, the run ({self.warmup + self.horizon:g} hours) needs "
                              f"{total}: compile the config again (compile_spec) rather than "
                              "change the window by hand")
        if np.any(self.team_headcount < 0):
            raise ConfigError("spec.team_headcount",
                              f"must not be negative: {self.team_headcount!r}")
        self._check_indices()
        self._check_distributions()
        for s, team in enumerate(self.stage_team):  # as the loader refuses it in a config
            if self.team_headcount[team] < 1:
                raise ConfigError("spec.team_headcount", f"team {self.team_names[team]!r} has "
                                  f"no people but owns stage {self.stage_names[s]!r}")
        # chances and shares, [0, 1] in a config: a contact probability of 2 or a threshold
        # of 3 ran on both engines without a word
        for name in ("forget_p", "error_p", "error_caught", "loss_crm", "loss_warm", "leak_crm",
                     "compliance_p", "trust_initial", "turnover_queue_loss", "stage_threshold",
                     "stage_reject_below", "stage_contact_p", "stage_churn_base",
                     "nurture_return_p", "shared_kpi_share", "feedback_max_shift",
                     "error_win_penalty", "experience_penalty", "trust_ignore", "ramp_start",
                     "pressure_threshold_drop", "pressure_error", "pressure_corner_cut"):
            v = getattr(self, name)
            if not np.all((np.asarray(v) >= 0.0) & (np.asarray(v) <= 1.0)):
                raise ConfigError(f"spec.{name}", f"must be a probability, got {v!r}")
        if np.any(np.asarray(self.stage_attempts) < 1):  # as a config's stages' attempts
            raise ConfigError("spec.stage_attempts",
                              f"must be at least 1, got {self.stage_attempts!r}")
        if not 0.0 < self.availability_mean <= 1.0:
            raise ConfigError("people.availability.mean",
                              f"must be in (0, 1], got {self.availability_mean}")
        leads = self.expected_leads()
        if leads.sum() > MAX_LEADS:
            c = int(leads.argmax())
            raise ConfigError(f"channels.{self.channel_names[c]}.rate_per_week",
                              f"about {leads.sum():.3g} leads a replication (rate x weekly "
                              "pattern x bursts over the warm-up and horizon); more than "
                              f"{MAX_LEADS:,} is refused (the default config makes about 20,000)")

    def _check_types(self) -> None:
        """Arrays are numpy arrays, and counts, indices and codes whole numbers: a headcount
        of 6.5 in a spec edited by hand ran as 6 without a word, a float or list array failed
        deep in numpy."""
        for f in fields(self):
            v = getattr(self, f.name)
            if f.type == "np.ndarray" and not isinstance(v, np.ndarray):
                raise ConfigError(f"spec.{f.name}", f"expected a numpy array, got "
                                  f"{type(v).__name__}: compile the config again")
            if f.name in _WHOLE_ARRAYS and v.dtype.kind not in "iu":
                raise ConfigError(f"spec.{f.name}", f"expected an integer array (whole "
                                  f"numbers), got {v.dtype}: compile the config again")
            if f.type == "int" and (isinstance(v, bool) or not isinstance(v, numbers.Integral)):
                raise ConfigError(f"spec.{f.name}", f"expected a whole number, got {v!r}")

    def _check_indices(self) -> None:
        """Every table has a row per channel, team, stage or handoff, and every index and code
        names something there: the numba engine reads past an array's end unchecked, so a
        stage_team of 9 in a spec edited by hand read another array's memory."""
        rows = len(self.dist_kind)
        stages, teams, edges = self.n_stages, self.n_teams, self.n_edges
        sizes = {"channel_": len(self.channel_names), "team_": teams, "stage_": stages,
                 "edge_": edges}
        for f in fields(self):
            v = getattr(self, f.name)
            want = next((n for pre, n in sizes.items() if f.name.startswith(pre)), None)
            if (want is not None and f.name != "edge_of" and isinstance(v, np.ndarray)
                    and len(v) != want):
                raise ConfigError(f"spec.{f.name}", f"has {len(v)} rows for {want} "
                                  f"{f.name.split('_')[0]}s: compile the config again")
        for name, shape in (("route", (stages, len(OUTCOMES))), ("edge_of", (stages, stages))):
            if np.shape(getattr(self, name)) != shape:
                raise ConfigError(f"spec.{name}", f"has shape {np.shape(getattr(self, name))}, "
                                  f"expected {shape}: compile the config again")
        fates = [*TERMINAL_CODES.values(), NO_ROUTE]
        allowed = {  # name: (lowest, one past the highest) or the codes it may hold
            "channel_entry": (0, stages), "channel_quality": (0, rows),
            "channel_value": (0, rows), "team_routing": list(ROUTINGS.values()),
            "team_discipline": list(DISCIPLINES.values()),
            "team_kpi_metric": [-1, *KPI_METRICS.values()], "team_kpi_stage": (-1, stages),
            "stage_team": (0, teams), "stage_kind": list(KINDS.values()),
            "stage_effort": (0, rows), "stage_buyer": (-1, rows), "edge_from": (0, stages),
            "edge_to": (0, stages), "edge_protocol": list(PROTOCOLS.values()),
            "edge_of": (-1, edges), "nurture_return_after": (0, rows),
            "nurture_return_stage": (-1, stages), "dist_kind": (D.FIXED, D.EMPIRICAL + 1)}
        for name, ok in allowed.items():
            v = np.asarray(getattr(self, name))
            good = (np.isin(v, ok) if isinstance(ok, list) else (v >= ok[0]) & (v < ok[1]))
            if not np.all(good):
                bad = v[~good].flat[0].item()
                raise ConfigError(f"spec.{name}", f"holds {bad!r}, which names nothing in the "
                                  "spec: compile the config again")
        route = np.asarray(self.route)
        good = ((route >= 0) & (route < stages)) | np.isin(route, fates)
        if not good.all():
            raise ConfigError("spec.route", f"holds {route[~good][0].item()!r}, neither a stage "
                              "nor a fate: compile the config again")

    def _check_distributions(self) -> None:
        """Every row of the distribution table is one the loader lets a config make: a row
        per kind, three parameters each, an empirical row inside the pool, parameters the
        draws are defined for, and no duration or amount below 0 (a quality, a chance cut to
        [0, 1], may be). numba read past the table's or pool's end, or drew a negative effort,
        without a word."""
        rows = len(self.dist_kind)
        if np.shape(self.dist_par) != (rows, 3):
            raise ConfigError("spec.dist_par", f"has shape {np.shape(self.dist_par)}, expected "
                              f"{(rows, 3)} (three parameters per row of dist_kind): compile "
                              "the config again")
        pool = np.asarray(self.dist_pool, dtype=float)
        quality = set(np.asarray(self.channel_quality).tolist())
        for row, (kind, (p0, p1, p2)) in enumerate(zip(self.dist_kind, self.dist_par,
                                                      strict=True)):
            low = p0  # the least value the row draws, where it has one
            if kind == D.EXPONENTIAL:
                ok = p0 > 0
            elif kind == D.LOGNORMAL:
                ok, low = p1 >= 0, 0.0
            elif kind in (D.GAMMA, D.BETA):
                ok, low = p0 > 0 and p1 > 0 and p2 >= 0, 0.0
            elif kind == D.UNIFORM:
                ok = p0 <= p1
            elif kind == D.TRIANGULAR:
                ok = p0 <= p1 <= p2 and p0 < p2
            elif kind == D.EMPIRICAL:
                ok = (p0 == int(p0) and p1 == int(p1) and p0 >= 0 and p1 >= 1
                      and p0 + p1 <= len(pool))
                low = float(pool[int(p0):int(p0 + p1)].min()) if ok else 0.0
            else:  # FIXED
                ok = True
            if not ok:
                raise ConfigError("spec.dist_par", f"row {row} ({D.NAMES[int(kind)]}) holds "
                                  f"({p0:g}, {p1:g}, {p2:g}), which it cannot draw from"
                                  + (f" (the pool has {len(pool)} values)"
                                     if kind == D.EMPIRICAL else "")
                                  + ": compile the config again")
            if low < 0 and row not in quality:
                raise ConfigError("spec.dist_par", f"row {row} ({D.NAMES[int(kind)]}) "
                                  f"draws values down to {low:g}: a duration or an amount "
                                  "must not be negative")

    def expected_leads(self) -> np.ndarray:
        """Each channel's expected leads in a replication (warm-up and horizon; a last part
        week counts by its share of the week: of its hours, or of its working hours for a
        channel that sends leads in working time only)."""
        end = self.warmup + self.horizon
        work_per_week = float(self.work_days.sum()) * (self.day_end - self.day_start)
        hours = np.where(self.channel_working_only, work_per_week, 168.0)
        weeks = np.arange(self.channel_week_mult.shape[1])
        share = np.clip(end / 168.0 - weeks, 0.0, 1.0)
        # working hours come first in a week (a run that ends on Friday evening has had all
        # of its last week's, and one that ends on Monday at 9 none of them)
        work_share = share.copy()
        last = int(end // 168.0)
        if last < len(weeks) and work_per_week > 0:
            work_share[last] = calendar.working_hours_between(
                168.0 * last, end, self.work_days, self.day_start, self.day_end) / work_per_week
        shares = np.where(self.channel_working_only[:, None], work_share, share)
        return self.channel_rate * hours * (self.channel_week_mult * shares).sum(axis=1)


# the arrays of counts, indices and codes (int64 as compile_spec makes them)
_WHOLE_ARRAYS = frozenset((
    "work_days", "dist_kind", "channel_entry", "channel_quality", "channel_value",
    "team_headcount", "team_routing", "team_discipline", "team_kpi_metric", "team_kpi_stage",
    "stage_team", "stage_kind", "stage_effort", "stage_attempts", "stage_buyer", "route",
    "edge_from", "edge_to", "edge_protocol", "edge_of"))


def measured_weeks(horizon: float) -> int:
    """The weeks the horizon (hours) is measured in, a last part week counted: at least one,
    since a horizon of a few subnormal hours divides to 0."""
    return max(1, int(math.ceil(horizon / 168.0)))


def _check_scenario(c: Config, scenario: Mapping[str, float]) -> None:
    """Every value a scenario sets is a known uncertain parameter, within its meaning."""
    p = c.people
    the_market = market(c)
    for key, value in scenario.items():
        # numpy's numbers too (np.int64(30) days); not a boolean
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(
                value):
            raise ConfigError("scenario", f"{key}: expected a finite number, got {value!r}")
        if key in the_market:
            problem = market_problem(key.rsplit(".", 1)[1], (value,))
            if problem:
                raise ConfigError("scenario", f"{key}: {problem}, got {value!r}")
            continue
        mech, _, name = key.removeprefix("people.").partition(".")
        if (not key.startswith("people.") or mech not in type(p).model_fields
                or name not in type(getattr(p, mech)).model_fields):
            raise ConfigError("scenario", f"unknown parameter {key!r} (expected "
                              "people.<mechanism>.<value>, e.g. people.latency.median_hours, "
                              "channels.<channel>.rate_per_week or stages.<close stage>."
                              "win_scale)")
        if type(getattr(p, mech)).model_fields[name].annotation != Param:
            # compiled as the config gives it: the scenario's value would be ignored
            raise ConfigError("scenario", f"{key} cannot be uncertain (a config cannot give it "
                              "as {value, range}), so no scenario may set it")
        problem = people_value_problem(mech, name, (value,))
        if problem:
            raise ConfigError("scenario", f"{key}: {problem}, got {value!r}")


def _people(c: Config, scenario: Mapping[str, float]) -> dict:
    """Effective human parameters: central values, scenario draws, neutral when off."""
    p = c.people

    def val(mech: str, name: str) -> float:
        key = f"people.{mech}.{name}"
        if key in scenario:
            return float(scenario[key])
        x: Param = getattr(getattr(p, mech), name)
        return central(x)

    on = {m: getattr(p, m).enabled for m in type(p).model_fields}
    enable = c.design.enablement_hours_per_month
    # enablement (assumption): training reduces judgement noise and shortens ramp
    learn = math.exp(-enable / 16.0)
    work_month = c.calendar.day_end - c.calendar.day_start
    work_month *= len(set(c.calendar.work_days)) * 52 / 12
    avail = val("availability", "mean") if on["availability"] else 1.0
    avail = max(0.05, avail - enable / work_month)
    t = p.trust
    return dict(
        latency_median=val("latency", "median_hours") if on["latency"] else 0.0,
        latency_sigma=p.latency.sigma if on["latency"] else 0.0,
        latency_person_sigma=p.latency.person_sigma if on["latency"] else 0.0,
        speed_person_cv=val("speed", "person_cv") if on["speed"] else 0.0,
        task_cv=val("speed", "task_cv") if on["speed"] else 0.0,
        noise_sd=val("judgement", "noise_sd") * learn if on["judgement"] else 0.0,
        threshold_sd=val("interpretation", "threshold_sd") if on["interpretation"] else 0.0,
        forget_p=val("forgetting", "probability") if on["forgetting"] else 0.0,
        error_p=val("errors", "probability") if on["errors"] else 0.0,
        error_caught=p.errors.caught_share,
        error_win_penalty=p.errors.win_penalty,
        loss_crm=val("handoff_loss", "crm_drop_loss") if on["handoff_loss"] else 0.0,
        loss_warm=val("handoff_loss", "warm_loss") if on["handoff_loss"] else 0.0,
        leak_crm=val("handoff_loss", "crm_drop_leak") if on["handoff_loss"] else 0.0,
        warm_hours=p.handoff_loss.warm_hours,
        rediscovery_hours=p.handoff_loss.rediscovery_hours,
        experience_penalty=p.handoff_loss.experience_penalty,
        trust_initial=val("trust", "initial") if on["trust"] else 1.0,
        trust_rate=t.learning_rate if on["trust"] else 0.0,
        trust_latency=t.latency_factor if on["trust"] else 0.0,
        trust_ignore=t.ignore_factor if on["trust"] else 0.0,
        trust_requalify=t.requalify_hours if on["trust"] else 0.0,
        attrition_rate=(val("turnover", "annual_attrition") / HOURS_PER_YEAR
                        if on["turnover"] else 0.0),
        ramp_hours=(val("turnover", "ramp_days") * HOURS_PER_DAY * (0.5 + 0.5 * learn)
                    if on["turnover"] else 0.0),
        ramp_start=p.turnover.ramp_start,
        ramp_noise=p.turnover.ramp_noise if on["turnover"] else 0.0,
        vacancy_hours=val("turnover", "vacancy_days") * HOURS_PER_DAY,
        turnover_queue_loss=p.turnover.queue_loss if on["turnover"] else 0.0,
        pressure_on=on["pressure"],
        pressure_window=p.pressure.window_weeks * 168.0,
        pressure_threshold_drop=p.pressure.threshold_drop,
        pressure_error=p.pressure.error_increase,
        pressure_corner_cut=p.pressure.corner_cut,
        availability_mean=avail,
        availability_concentration=p.availability.concentration if on["availability"] else 0.0,
        habit_attempts=val("persistence", "habit_mean_attempts") if on["persistence"] else 0.0,
        compliance_p=val("compliance", "probability") if on["compliance"] else 1.0,
    )


def _too_large(where: str) -> ConfigError:
    return ConfigError(where, "too large: converted (to hours, to a decay time) it is past the "
                       "largest number a run can hold (about 1.8e308)")


def _finite(value: float, where: str) -> float:
    """`value`, converted; a ConfigError naming `where` if it is past a float's range."""
    if not math.isfinite(value):
        raise _too_large(where)
    return value


def _hours(days: float, where: str) -> float:
    return _finite(days * HOURS_PER_DAY, where)


def compile_spec(c: Config, scenario: Mapping[str, float] | None = None) -> ModelSpec:
    """Compile a validated config (and optional scenario draws of people.* values and of the
    market's: channels.<channel>.rate_per_week, stages.<close stage>.win_scale)."""
    if not isinstance(c, Config):
        raise TypeError(f"config: expected a Config (gtmsim.load_config(path)), got "
                        f"{type(c).__name__}")
    if scenario is not None and not isinstance(scenario, Mapping):  # a Scenario, say
        raise TypeError(f"scenario: expected a mapping of uncertain parameters (people.* or "
                        f"the market's) to numbers (a Scenario's .values), got "
                        f"{type(scenario).__name__}")
    c = check(c)  # it may have been changed since it was loaded
    scenario = scenario or {}
    _check_scenario(c, scenario)
    pool: list[float] = []
    rows: list[tuple] = []

    def dist(d, scale: float = 1.0, where: str = "") -> int:
        start = len(pool)
        rows.append(D.encode(d, pool, scale))
        if not (np.isfinite(rows[-1][1:]).all() and np.isfinite(pool[start:]).all()):
            raise _too_large(where)  # days converted to hours past a float's range
        return len(rows) - 1

    stage_names = tuple(c.stages)
    sidx = {n: i for i, n in enumerate(stage_names)}
    team_names = tuple(c.teams)
    tidx = {n: i for i, n in enumerate(team_names)}
    warmup = c.run.warmup_days * HOURS_PER_DAY
    horizon = c.run.horizon_days * HOURS_PER_DAY
    total_weeks = int(math.ceil((warmup + horizon) / 168.0)) + 1
    days = np.array([1 if d in c.calendar.work_days else 0 for d in DAYS], dtype=np.int64)
    work_per_week = days.sum() * (c.calendar.day_end - c.calendar.day_start)

    ch = list(c.channels.values())
    week_mult = np.ones((len(ch), total_weeks))
    for i, chan in enumerate(ch):
        if chan.weekly_pattern:
            pat = np.asarray(chan.weekly_pattern, dtype=float)
            week_mult[i] = pat[np.arange(total_weeks) % len(pat)]
        for b in chan.bursts:  # weeks of the counted window: a campaign the results see
            lo = int(math.floor(warmup / 168.0 + b.start_week))
            hi = int(math.ceil(warmup / 168.0 + b.start_week + b.weeks))
            week_mult[i, lo:hi] *= b.multiplier
    # the market: a scenario's draws, or the central values
    the_market = {k: scenario.get(k, central(v)) for k, v in market(c).items()}
    weekly = [the_market[f"channels.{name}.rate_per_week"] for name in c.channels]
    channel_rate = np.array([w / (work_per_week if chan.working_hours_only else 168.0)
                             for w, chan in zip(weekly, ch, strict=True)])

    st = list(c.stages.values())
    route = np.full((len(st), len(OUTCOMES)), NO_ROUTE, dtype=np.int64)
    for i, s in enumerate(st):
        for j, name in enumerate(OUTCOMES):
            target = getattr(s.routes, name)
            if target is None:
                continue
            route[i, j] = sidx[target] if target in sidx else TERMINAL_CODES[target]
        if s.kind != "close":
            route[i, WON] = route[i, LOST] = NO_ROUTE
        if s.kind == "retain":
            route[i, :] = NO_ROUTE
        if s.kind != "contact":
            route[i, UNREACHED] = NO_ROUTE

    declared = {(h.source, h.target): h for h in c.handoffs.values()}
    edge_names, e_from, e_to, e_proto, e_sla = [], [], [], [], []
    edge_of = np.full((len(st), len(st)), -1, dtype=np.int64)
    for i, s in enumerate(st):
        for j in sorted(set(int(r) for r in route[i] if r >= 0)):
            if c.stages[stage_names[j]].team == s.team:
                continue
            h = declared.get((stage_names[i], stage_names[j]))
            edge_of[i, j] = len(edge_names)
            edge_names.append(f"{stage_names[i]}->{stage_names[j]}")
            e_from.append(i)
            e_to.append(j)
            e_proto.append(PROTOCOLS[h.protocol] if h else PROTOCOLS["crm_drop"])
            sla = (h.sla_hours if h is not None and h.sla_hours is not None
                   else c.stages[stage_names[j]].sla_hours)  # the receiver's, by default
            e_sla.append(np.inf if sla is None else sla)

    teams = list(c.teams.values())
    spec = ModelSpec(
        warmup=warmup, horizon=horizon, work_days=days,
        day_start=c.calendar.day_start, day_end=c.calendar.day_end,
        n_weeks=measured_weeks(horizon),
        dist_kind=np.zeros(0, dtype=np.int64), dist_par=np.zeros((0, 3)),
        dist_pool=np.zeros(0),
        channel_names=tuple(c.channels),
        channel_entry=np.array([sidx[x.entry] for x in ch], dtype=np.int64),
        channel_rate=channel_rate,
        channel_working_only=np.array([x.working_hours_only for x in ch], dtype=np.bool_),
        channel_week_mult=week_mult,
        channel_quality=np.array([dist(x.quality) for x in ch], dtype=np.int64),
        channel_value=np.array([dist(x.value) for x in ch], dtype=np.int64),
        channel_intent_tau=np.array([_finite(x.intent_half_life_hours / math.log(2),
                                             f"channels.{n}.intent_half_life_hours")
                                     for n, x in c.channels.items()]),
        channel_intent_floor=np.array([x.intent_floor for x in ch]),
        team_names=team_names,
        team_headcount=np.array([t.headcount for t in teams], dtype=np.int64),
        team_cost=np.array([t.cost_per_head for t in teams]),
        team_routing=np.array([ROUTINGS[t.routing] for t in teams], dtype=np.int64),
        team_latency_scale=np.array([t.latency_scale for t in teams]),
        team_discipline=np.array([DISCIPLINES[t.discipline] for t in teams], dtype=np.int64),
        team_kpi_metric=np.array([KPI_METRICS[t.kpi.metric] if t.kpi else -1 for t in teams],
                                 dtype=np.int64),
        team_kpi_stage=np.array([sidx[t.kpi.stage] if t.kpi else -1 for t in teams],
                                dtype=np.int64),
        team_kpi_target=np.array([t.kpi.target_per_quarter if t.kpi else 0.0 for t in teams]),
        stage_names=stage_names,
        stage_team=np.array([tidx[s.team] for s in st], dtype=np.int64),
        stage_kind=np.array([KINDS[s.kind] for s in st], dtype=np.int64),
        stage_effort=np.array([dist(s.effort_hours) for s in st], dtype=np.int64),
        stage_threshold=np.array([s.threshold for s in st]),
        stage_reject_below=np.array([s.reject_below for s in st]),
        stage_attempts=np.array([s.attempts for s in st], dtype=np.int64),
        stage_attempt_hours=np.array([s.attempt_hours for s in st]),
        stage_attempt_gap=np.array([s.attempt_gap_hours for s in st]),
        stage_contact_p=np.array([s.contact_probability for s in st]),
        stage_buyer=np.array([dist(s.buyer_days, HOURS_PER_DAY, f"stages.{n}.buyer_days")
                              if s.buyer_days else -1 for n, s in c.stages.items()],
                             dtype=np.int64),
        stage_win_scale=np.array([the_market.get(f"stages.{n}.win_scale", central(s.win_scale))
                                  for n, s in c.stages.items()]),
        stage_renewal=np.array([_hours(s.renewal_days, f"stages.{n}.renewal_days")
                                for n, s in c.stages.items()]),
        stage_churn_base=np.array([s.churn_base for s in st]),
        stage_sla=np.array([s.sla_hours if s.sla_hours is not None else np.inf for s in st]),
        route=route,
        edge_names=tuple(edge_names),
        edge_from=np.array(e_from, dtype=np.int64),
        edge_to=np.array(e_to, dtype=np.int64),
        edge_protocol=np.array(e_proto, dtype=np.int64),
        edge_sla=np.array(e_sla, dtype=float),
        edge_of=edge_of,
        nurture_return_p=c.nurture.return_probability,
        nurture_return_after=dist(c.nurture.return_after_days, HOURS_PER_DAY,
                                  "nurture.return_after_days"),
        nurture_return_stage=(sidx[c.nurture.return_stage] if c.nurture.return_stage else -1),
        shared_kpi_share=c.design.shared_kpi_share,
        enablement_hours=c.design.enablement_hours_per_month,
        escalation_hours=c.design.escalation_hours,
        feedback_on=c.design.feedback.enabled,
        feedback_gain=c.design.feedback.gain,
        feedback_target=c.design.feedback.target_reject_rate,
        feedback_max_shift=c.design.feedback.max_shift,
        **_people(c, scenario),
    )
    object.__setattr__(spec, "dist_kind", np.array([r[0] for r in rows], dtype=np.int64))
    object.__setattr__(spec, "dist_par", np.array([r[1:] for r in rows], dtype=np.float64))
    object.__setattr__(spec, "dist_pool", np.array(pool, dtype=np.float64))
    spec.check()
    return spec
