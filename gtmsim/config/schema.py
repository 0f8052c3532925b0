"""The config schema: what a gtmsim TOML file may say, validated with pydantic.

Times a planner thinks in (days, weeks, hours of work) are kept in those units here;
``gtmsim.spec`` converts everything to hours.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from gtmsim.errors import MAX_REPLICATIONS, SEED_MAX

# --------------------------------------------------------------------------- basics


class Strict(BaseModel):
    """Every config table rejects unknown keys, so a typo never passes silently, and takes
    values of their own type only (no `true` for a headcount, no "0.3" for a threshold)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False,
                              strict=True)


NonNeg = Annotated[float, Field(ge=0.0)]
Pos = Annotated[float, Field(gt=0.0)]
Prob = Annotated[float, Field(ge=0.0, le=1.0)]


class Uncertain(Strict):
    """A population-level value with the range the optimiser's scenarios sample from."""

    value: float
    range: Annotated[list[float], Field(min_length=2, max_length=2)]

    @model_validator(mode="after")
    def _value_in_range(self) -> "Uncertain":
        lo, hi = self.range
        if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
            raise ValueError(f"range must be [low, high] with low <= high, got {list(self.range)}")
        if not lo <= self.value <= hi:
            raise ValueError(f"value {self.value} lies outside range {list(self.range)}")
        return self


# hours of a person's work: a year of working time at most (larger values are typos, and
# the calendar would step through them for ever)
Hours = Annotated[float, Field(ge=0.0, le=2000.0)]

# A human-model parameter: a plain number, or a central value with an uncertainty range.
Param = float | Uncertain


def central(p: Param) -> float:
    return p.value if isinstance(p, Uncertain) else float(p)


def _shown(p: Param) -> str:
    return f"{{value = {p.value:g}, range = [{p.range[0]:g}, {p.range[1]:g}]}}" if isinstance(
        p, Uncertain) else f"{p:g}"


# --------------------------------------------------------------------------- distributions


class Fixed(Strict):
    dist: Literal["fixed"]
    value: NonNeg


class Exponential(Strict):
    dist: Literal["exponential"]
    mean: Pos


class Lognormal(Strict):
    """By median and spread (sigma of the log), or by mean and coefficient of variation."""

    dist: Literal["lognormal"]
    median: Pos | None = None
    sigma: Annotated[float, Field(ge=0.0, le=10.0)] | None = None
    mean: Pos | None = None
    cv: Annotated[float, Field(ge=0.0, le=100.0)] | None = None

    @model_validator(mode="after")
    def _one_parametrisation(self) -> "Lognormal":
        median = (self.median, self.sigma)
        mean = (self.mean, self.cv)
        by_median = all(v is not None for v in median) and all(v is None for v in mean)
        by_mean = all(v is not None for v in mean) and all(v is None for v in median)
        if not (by_median or by_mean):  # a stray third value would be silently ignored
            raise ValueError("give either median and sigma, or mean and cv")
        return self

    def mu_sigma(self) -> tuple[float, float]:
        if self.median is not None:
            return math.log(self.median), float(self.sigma)
        s2 = math.log1p(self.cv**2)
        return math.log(self.mean) - s2 / 2, math.sqrt(s2)


class Gamma(Strict):
    dist: Literal["gamma"]
    shape: Pos
    scale: Pos


class Uniform(Strict):
    dist: Literal["uniform"]
    low: float
    high: float

    @model_validator(mode="after")
    def _ordered(self) -> "Uniform":
        if not self.low <= self.high:
            raise ValueError(f"low ({self.low}) must not exceed high ({self.high})")
        return self


class Triangular(Strict):
    dist: Literal["triangular"]
    low: float
    mode: float
    high: float

    @model_validator(mode="after")
    def _ordered(self) -> "Triangular":
        if not (self.low <= self.mode <= self.high and self.low < self.high):
            raise ValueError("need low <= mode <= high and low < high")
        return self


class Beta(Strict):
    dist: Literal["beta"]
    a: Pos
    b: Pos


class Empirical(Strict):
    """Resample observed values uniformly (e.g. last year's deal sizes)."""

    dist: Literal["empirical"]
    values: list[float] = Field(min_length=1)

    @field_validator("values")
    @classmethod
    def _finite(cls, v: list[float]) -> list[float]:
        if not all(math.isfinite(x) for x in v):
            raise ValueError("values must be finite numbers")
        return v


Distribution = Annotated[
    Fixed | Exponential | Lognormal | Gamma | Uniform | Triangular | Beta | Empirical,
    Field(discriminator="dist"),
]

# --------------------------------------------------------------------------- run and calendar

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Run(Strict):
    warmup_days: Annotated[float, Field(ge=0.0, le=3660.0)] = 28.0
    horizon_days: Annotated[float, Field(gt=0.0, le=3660.0)] = 182.0
    replications: Annotated[int, Field(ge=1, le=MAX_REPLICATIONS)] = 100
    seed: Annotated[int, Field(ge=0, le=SEED_MAX)] = 20261130


MIN_DAY_HOURS = 1 / 60  # the shortest working day: a minute


class Calendar(Strict):
    """People work only in working time; buyers wait on calendar time."""

    work_days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(
        default_factory=lambda: ["mon", "tue", "wed", "thu", "fri"], min_length=1
    )
    day_start: Annotated[float, Field(ge=0.0, lt=24.0)] = 9.0
    day_end: Annotated[float, Field(gt=0.0, le=24.0)] = 17.0

    @model_validator(mode="after")
    def _day_ordered(self) -> "Calendar":
        twice = sorted({d for d in self.work_days if self.work_days.count(d) > 1})
        if twice:
            raise ValueError(f"work_days names {', '.join(twice)} more than once")
        if self.day_end <= self.day_start:
            raise ValueError(f"day_end ({self.day_end}) must be after day_start ({self.day_start})")
        if self.day_end - self.day_start < MIN_DAY_HOURS - 1e-9:  # 17:00 + 1/60 is a minute
            # work then spans so many days that the calendar's clock reaches times where a
            # day's 24 hours no longer add (at 1e-7 hours both engines ran for ever)
            raise ValueError(f"a working day from {self.day_start:.10g} to {self.day_end:.10g} is "
                             f"shorter than a minute ({MIN_DAY_HOURS:.4g} hours)")
        return self


# --------------------------------------------------------------------------- market


class Burst(Strict):
    """A campaign: arrivals multiplied for some weeks, counted from the start of the counted
    window (after the warm-up), as the results' weeks are."""

    start_week: Annotated[float, Field(ge=0.0, le=5200.0)]
    weeks: Annotated[float, Field(gt=0.0, le=5200.0)]
    multiplier: Annotated[float, Field(ge=0.0, le=1000.0)]

    @field_validator("start_week", "weeks")
    @classmethod
    def _whole_weeks(cls, v: float) -> float:
        # the rate's multipliers are weekly: a part week was multiplied whole (a 0.2-week
        # burst at x3 added a full week's extra leads, or two weeks' if it crossed a week)
        if not float(v).is_integer():
            raise ValueError(f"must be a whole number of weeks (the rate's multipliers are "
                             f"weekly), got {v:g}")
        return v


# The market's values that may be uncertain, with their bounds (lowest, lowest allowed, highest):
# a channel's leads a week (a larger rate is a typo), and a close stage's share of willing
# buyers that pick us (competition)
MARKET_BOUNDS = {"rate_per_week": (0.0, True, 1e6), "win_scale": (0.0, False, 5.0)}


def market_problem(field: str, numbers: tuple[float, ...]) -> str | None:
    """What is wrong with these values of a market parameter, or None."""
    low, low_allowed, high = MARKET_BOUNDS[field]
    if not all(x >= low if low_allowed else x > low for x in numbers):
        return f"must be {'>=' if low_allowed else '>'} {low:g}"
    if not all(x <= high for x in numbers):
        return f"must be <= {high:.15g}"
    return None


def _market_checked(field: str, v: Param) -> Param:
    problem = market_problem(field, (v.value, *v.range) if isinstance(v, Uncertain) else (v,))
    if problem:
        raise ValueError(f"{problem}, got {_shown(v)}")
    return v


class Channel(Strict):
    """Where leads come from, how many, how good, how valuable, how fast they go cold."""

    entry: str
    # the market's demand: a number, or {value, range} when it is uncertain (scenarios draw it)
    rate_per_week: Param
    quality: Distribution
    value: Distribution
    working_hours_only: bool = True
    # week-by-week multipliers, bounded as a burst's (a larger one is a typo, and a run that
    # made its leads would exhaust memory)
    weekly_pattern: list[Annotated[float, Field(ge=0.0, le=1000.0)]] = Field(
        default_factory=list)
    bursts: list[Burst] = Field(default_factory=list)
    intent_half_life_hours: Pos = 1.0
    intent_floor: Prob = 0.02

    @field_validator("rate_per_week")
    @classmethod
    def _rate_within_bounds(cls, v: Param) -> Param:
        return _market_checked("rate_per_week", v)


class Nurture(Strict):
    """Recycled leads may come back after a while (re-engagement campaigns)."""

    return_probability: Prob = 0.15
    return_after_days: Distribution = Field(
        default_factory=lambda: Exponential(dist="exponential", mean=60.0)
    )
    return_stage: str | None = None


# --------------------------------------------------------------------------- org


class Kpi(Strict):
    """What a team is paid on, counted per quarter."""

    metric: Literal["passed", "won_value", "won_count", "retained"]
    stage: str
    # at least a millionth: attainment (KPI / target) past a float's range otherwise
    target_per_quarter: Annotated[float, Field(ge=1e-6)]


class Team(Strict):
    headcount: Annotated[int, Field(ge=0, le=500)]
    cost_per_head: NonNeg = 100_000.0
    routing: Literal["pool", "round_robin", "least_loaded", "by_skill"] = "pool"
    discipline: Literal["fifo", "score", "newest"] = "fifo"
    latency_scale: Annotated[float, Field(ge=0.0, le=10.0)] = 1.0
    kpi: Kpi | None = None


class Routes(Strict):
    """Where each outcome of a stage goes: a stage name or a terminal fate."""

    qualified: str | None = None
    recycled: str = "nurture"
    rejected: str = "disqualified"
    unreached: str = "nurture"
    won: str | None = None
    lost: str = "lost"


TERMINALS = ("nurture", "disqualified", "lost", "customer")


class Stage(Strict):
    """One step of work owned by a team.

    kind: ``review`` (read and decide), ``contact`` (reach the buyer in attempts, then decide),
    ``close`` (work the opportunity; the buyer decides on calendar time), ``retain`` (onboard
    and renew; the customer may churn).
    """

    team: str
    kind: Literal["review", "contact", "close", "retain"]
    effort_hours: Distribution
    threshold: Prob = 0.0
    reject_below: Prob = 0.0
    attempts: Annotated[int, Field(ge=1, le=50)] = 1
    attempt_hours: Pos = 0.1
    attempt_gap_hours: NonNeg = 4.0
    contact_probability: Prob = 0.4
    buyer_days: Distribution | None = None
    win_scale: Param = 1.0  # may be uncertain: the market's competition
    renewal_days: Pos = 365.0
    churn_base: Prob = 0.1
    sla_hours: Pos | None = None
    routes: Routes = Field(default_factory=Routes)

    @field_validator("win_scale")
    @classmethod
    def _win_scale_within_bounds(cls, v: Param) -> Param:
        return _market_checked("win_scale", v)

    @model_validator(mode="after")
    def _thresholds_ordered(self) -> "Stage":
        if self.reject_below > self.threshold:
            raise ValueError(
                f"reject_below ({self.reject_below}) must not exceed threshold ({self.threshold})"
            )
        return self


class Handoff(Strict):
    """How work passes between two stages of different teams."""

    source: str = Field(alias="from")
    target: str = Field(alias="to")
    protocol: Literal["crm_drop", "warm"] = "crm_drop"
    # working hours the receiver has to pick up what crosses this edge; none: the receiving
    # stage's sla_hours (every edge into the stage without its own shares that)
    sla_hours: Pos | None = None

    model_config = ConfigDict(extra="forbid", populate_by_name=True, validate_assignment=True,
                              allow_inf_nan=False, strict=True)


class Feedback(Strict):
    """Rejection reasons flow back upstream and move the upstream stage's threshold."""

    enabled: bool = False
    gain: Annotated[float, Field(ge=0.0, le=0.2)] = 0.01
    target_reject_rate: Prob = 0.2
    max_shift: Prob = 0.25


class Design(Strict):
    """Org-wide design choices (per-team and per-stage ones live in their tables)."""

    annual_budget: Pos | None = None
    shared_kpi_share: Prob = 0.0
    enablement_hours_per_month: Annotated[float, Field(ge=0.0, le=40.0)] = 0.0
    escalation_hours: NonNeg = 8.0
    feedback: Feedback = Field(default_factory=Feedback)


class Lever(Strict):
    """A design value the optimiser may change: a config path with bounds or choices."""

    path: str
    low: float | None = None
    high: float | None = None
    choices: list[str | bool | int | float] | None = None  # 4 stays 4 for a headcount
    integer: bool = False

    @model_validator(mode="after")
    def _bounded(self) -> "Lever":
        if self.choices is not None:
            if self.low is not None or self.high is not None:
                raise ValueError("give either choices or low/high, not both")
            if len(self.choices) < 1:
                raise ValueError("choices must not be empty")
        elif self.low is None or self.high is None:
            raise ValueError("a lever needs bounds: low and high, or choices")
        elif not self.low <= self.high:
            raise ValueError(f"low ({self.low}) must not exceed high ({self.high})")
        elif self.integer and not all(math.isfinite(v) and float(v).is_integer()
                                      for v in (self.low, self.high)):
            # the search draws whole numbers from int(low) to int(high): 2 from low = 2.5
            raise ValueError(f"an integer lever's low and high are whole numbers, got "
                             f"{self.low:g} and {self.high:g}")
        return self

    def bounds(self) -> str:
        """'[2, 12]' for an integer lever, '[0.1, 0.6]' otherwise, as a message shows them."""
        if self.integer:
            return f"[{int(self.low)}, {int(self.high)}]"
        return f"[{self.low}, {self.high}]"


# --------------------------------------------------------------------------- people


class Mechanism(Strict):
    enabled: bool = True


class Latency(Mechanism):
    """1. Time before a person picks up an item, beyond waiting for capacity (working hours)."""

    median_hours: Param = Uncertain(value=0.25, range=[0.1, 2.0])
    sigma: Annotated[float, Field(ge=0.0, le=5.0)] = 1.0
    person_sigma: Annotated[float, Field(ge=0.0, le=5.0)] = 0.5


class Speed(Mechanism):
    """2. Speed differences between people and effort variability between tasks."""

    person_cv: Param = 0.25
    task_cv: Param = 0.3


class Judgement(Mechanism):
    """3. Quality perceived with error (sd on the logit scale)."""

    noise_sd: Param = 0.8


class Interpretation(Mechanism):
    """4. Per-person shift of the qualification threshold (probability scale)."""

    threshold_sd: Param = 0.05


class Forgetting(Mechanism):
    """5. An item is dropped and sits until SLA escalation finds it, or leaks."""

    probability: Param = Uncertain(value=0.04, range=[0.02, 0.08])


class Errors(Mechanism):
    """6. Execution errors: caught downstream (rework) or not (lower win chance)."""

    probability: Param = 0.05
    caught_share: Prob = 0.6
    win_penalty: Prob = 0.15


class HandoffLoss(Mechanism):
    """7. Information lost at a handoff, by protocol."""

    crm_drop_loss: Param = 0.3
    warm_loss: Param = 0.05
    crm_drop_leak: Param = 0.02
    warm_hours: Hours = 0.25
    rediscovery_hours: Hours = 0.5
    experience_penalty: Prob = 0.1


class Trust(Mechanism):
    """8. Trust per handoff moves with its outcomes and changes how the receiver behaves."""

    initial: Param = 0.7
    learning_rate: Annotated[float, Field(ge=0.0, le=1.0)] = 0.02
    latency_factor: Annotated[float, Field(ge=0.0, le=100.0)] = 2.0
    ignore_factor: Prob = 0.3
    requalify_hours: Hours = 0.5


class Turnover(Mechanism):
    """9. Ramp and turnover."""

    annual_attrition: Param = Uncertain(value=0.32, range=[0.2, 0.45])
    ramp_days: Param = 90.0
    # a new hire's productivity at the start: above 0, or their first item never ends
    ramp_start: Annotated[float, Field(gt=0.0, le=1.0)] = 0.3
    ramp_noise: Annotated[float, Field(ge=0.0, le=100.0)] = 1.0
    vacancy_days: Param = 45.0
    queue_loss: Prob = 0.2


class Pressure(Mechanism):
    """10. Quota pressure near a period's end."""

    window_weeks: Annotated[float, Field(ge=0.0, le=13.0)] = 3.0
    threshold_drop: Prob = 0.15
    error_increase: Prob = 0.1
    corner_cut: Prob = 0.3


class Availability(Mechanism):
    """11. Share of working time that goes to this process."""

    mean: Param = Uncertain(value=0.7, range=[0.5, 0.85])
    # below ~0.1 both of the beta's gamma draws underflow to 0 and every person gets 0.5
    concentration: Annotated[float, Field(ge=0.1, le=1e6)] = 20.0


class Persistence(Mechanism):
    """12. Contact attempts a person habitually makes before giving up (capped by the
    prescribed attempts)."""

    habit_mean_attempts: Param = 2.0


class Compliance(Mechanism):
    """13. Prescribed behaviour (the SLA, warm handoffs) is followed per person."""

    probability: Param = Uncertain(value=0.7, range=[0.4, 0.9])


class People(Strict):
    """The human variability profile: 13 mechanisms, each can be switched off alone."""

    latency: Latency = Field(default_factory=Latency)
    speed: Speed = Field(default_factory=Speed)
    judgement: Judgement = Field(default_factory=Judgement)
    interpretation: Interpretation = Field(default_factory=Interpretation)
    forgetting: Forgetting = Field(default_factory=Forgetting)
    errors: Errors = Field(default_factory=Errors)
    handoff_loss: HandoffLoss = Field(default_factory=HandoffLoss)
    trust: Trust = Field(default_factory=Trust)
    turnover: Turnover = Field(default_factory=Turnover)
    pressure: Pressure = Field(default_factory=Pressure)
    availability: Availability = Field(default_factory=Availability)
    persistence: Persistence = Field(default_factory=Persistence)
    compliance: Compliance = Field(default_factory=Compliance)


MECHANISMS = tuple(People.model_fields)

# --------------------------------------------------------------------------- the whole config


class Config(Strict):
    name: str = "unnamed"
    description: str = ""
    profile: str = "realistic"
    run: Run = Field(default_factory=Run)
    calendar: Calendar = Field(default_factory=Calendar)
    channels: dict[str, Channel] = Field(min_length=1)
    teams: dict[str, Team] = Field(min_length=1)
    stages: dict[str, Stage] = Field(min_length=1)
    handoffs: dict[str, Handoff] = Field(default_factory=dict)
    nurture: Nurture = Field(default_factory=Nurture)
    design: Design = Field(default_factory=Design)
    levers: dict[str, Lever] = Field(default_factory=dict)
    profiles: dict[str, dict] = Field(default_factory=dict)
    people: People = Field(default_factory=People)
    # (mechanism, key) of the people values the config set itself ([people], --set people.*):
    # written out even where they equal the profile's, as they hold under every profile
    _own_people: frozenset[tuple[str, str]] = PrivateAttr(default=frozenset())

    def __eq__(self, other: object) -> bool:
        """Equal as models: where a value came from (`_own_people`) is not the value."""
        if not isinstance(other, Config):
            return NotImplemented
        return type(self) is type(other) and self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]  # mutable, as every model

    @field_validator("name")
    @classmethod
    def _named(cls, name: str) -> str:
        if not name.strip():
            raise ValueError("must not be blank (it names the runs and reports)")
        return name


def market(c: Config) -> dict[str, Param]:
    """The market's values a scenario may draw, by path: each channel's lead volume and each
    close stage's win scale."""
    out: dict[str, Param] = {f"channels.{n}.rate_per_week": ch.rate_per_week
                             for n, ch in c.channels.items()}
    out |= {f"stages.{n}.win_scale": st.win_scale for n, st in c.stages.items()
            if st.kind == "close"}
    return out
