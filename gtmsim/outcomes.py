"""Outcomes: what a replication counts, its one-row summary, and summaries with CIs.

Both engines fill the same `Tally` (plain arrays, so the numba engine can fill them too);
`replication_row` and `weekly_rows` turn a tally into rows of polars DataFrames.
Counting is by event time: an event counts if it happens inside the measured window
[warm-up, warm-up + horizon).
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from gtmsim.calendar import working_hours_between
from gtmsim.errors import GtmsimError
from gtmsim.spec import (
    CLOSE,
    DISQUALIFIED,
    LOST_FATE,
    NURTURE,
    OUTCOMES,
    QUARTER,
    RETAIN,
    ModelSpec,
)

if TYPE_CHECKING:
    from gtmsim.config import Config

# fates a lead can reach; leaked ones name their cause
FATES = ("won", "lost", "disqualified", "nurtured", "churned", "retained",
         "leaked_forgotten", "leaked_decayed", "leaked_ignored", "leaked_handoff",
         "leaked_turnover")
# Outcomes where less is better: the optimiser and `compare` rank designs by higher values
# (and read the worst 10% as the lowest), so they refuse these rather than reward harm.
LOWER_IS_BETTER = ("lost", "disqualified", "churned", "leaked", "leaked_forgotten",
                   "leaked_decayed", "leaked_ignored", "leaked_handoff", "leaked_turnover",
                   "rework_hours")
# and the per-stage, per-channel and per-team columns of that kind (leaks at a stage sum to
# `leaked`; `open_at_end` and a team's open leads, queue and time in system: work not done;
# rework sent back to a stage or from it: errors caught)
LOWER_IS_BETTER_PREFIXES = ("leaks_at_", "lost_at_", "disqualified_at_", "churned_at_",
                            "never_contacted_share", "cycle_days_", "attrition_", "open_",
                            "queue_", "sojourn_", "rework_returns_", "rework_sent_back_")


def less_is_better(outcome: str) -> bool:
    """Whether a lower value of `outcome` is the better one (leaks, losses, waiting)."""
    return outcome in LOWER_IS_BETTER or outcome.startswith(LOWER_IS_BETTER_PREFIXES)


def scored_outcomes(config: Config) -> set[str]:
    """The outcomes a design may be scored by under `config`: whole-system ones, and each
    team's utilisation and (for a team with a KPI) its KPI and attainment."""
    cols = {"bookings", "pipeline_created", "opportunities", "win_rate", "leads_created",
            "rework_hours", "leaked", *FATES}
    for name, team in config.teams.items():
        cols.add(f"util_{name}")
        if team.kpi is not None:  # a team with no KPI has no KPI column to rank by
            cols |= {f"kpi_{name}", f"kpi_attainment_{name}"}
    return cols


def check_scored_outcome(outcome: str, config: Config, label: str | None = None) -> None:
    """Refuse, before anything runs, an outcome that is not one of `scored_outcomes` (a typo,
    or a per-stage column such as throughput_sdr), naming the choices."""
    cols = scored_outcomes(config)
    if outcome in cols:
        return
    close = difflib.get_close_matches(str(outcome), sorted(cols), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    where = f" in {label}" if label else ""
    choices = ", ".join(c for c in sorted(cols) if not less_is_better(c))
    raise GtmsimError(f"--outcome: no outcome column {outcome!r}{where}{hint}; a design is "
                      f"scored by one of: {choices}")


def check_ranked_outcome(outcome: str) -> None:
    """Refuse an outcome where less is better as the one designs are ranked by."""
    if less_is_better(outcome):
        raise GtmsimError(f"--outcome {outcome}: less is better for it, and designs are ranked "
                          "by the higher value; rank them by an outcome where more is better "
                          "(bookings, won, retained, win_rate, a team's kpi_...)")


(F_WON, F_LOST, F_DISQUALIFIED, F_NURTURED, F_CHURNED, F_RETAINED, F_FORGOTTEN, F_DECAYED,
 F_IGNORED, F_HANDOFF, F_TURNOVER) = range(len(FATES))

# scalar counters; `events` counts model events over the whole run (for speed figures);
# `buyer_losses` the buyers' decisions against us, wherever the lost deal is routed (the
# `lost` fate counts only those routed to it)
SCALARS = ("leads_created", "bookings", "pipeline_created", "opportunities", "cycle_sum",
           "rework_hours", "events", "buyer_losses")
(S_LEADS, S_BOOKINGS, S_PIPELINE, S_OPPS, S_CYCLE_SUM, S_REWORK, S_EVENTS,
 S_BUYER_LOSSES) = range(len(SCALARS))

# per-channel counters: first touch and contact, for the lead-response facts
CHANNEL = ("leads", "contact_leads", "never_contacted", "attempts", "fast_touched",
           "fast_qualified", "slow_touched", "slow_qualified")
(C_LEADS, C_CONTACT_LEADS, C_NEVER_CONTACTED, C_ATTEMPTS, C_FAST_TOUCHED, C_FAST_QUALIFIED,
 C_SLOW_TOUCHED, C_SLOW_QUALIFIED) = range(len(CHANNEL))

# per-team counters; open_end: leads at the team when the run ends, not with the buyer
# (queued, in their response latency, between attempts or in work): they have no fate yet
TEAM = ("busy", "available", "wip_area", "serving_area", "buyer_area", "departures",
        "sojourn_sum", "kpi", "quits", "headcount_area", "open_end")
(T_BUSY, T_AVAILABLE, T_WIP_AREA, T_SERVING_AREA, T_BUYER_AREA, T_DEPARTURES, T_SOJOURN_SUM,
 T_KPI, T_QUITS, T_HEADCOUNT_AREA, T_OPEN_END) = range(len(TEAM))

# per-stage counters
# leaks: leads leaked at the stage, whatever the cause (where value leaks); won, lost,
# disqualified, nurtured: the leads whose fate the stage decided (the report's flow diagram
# draws each fate from the stages that sent leads to it); nurture_returns: nurtured leads
# that came back and entered the stage again; rework_returns: leads sent back into the stage
# for rework, a later stage having caught an error the stage made; rework_sent_back: leads
# the stage sent back so, having caught an earlier stage's error (counted as the lead goes
# back, the instant the earlier stage's rework_returns counts it); routed_<outcome>: leads
# the stage routed on to another stage (or itself again) recycled, rejected, unreached or
# lost, counted as the lead is handed to that stage (a route to a fate is counted by the
# fate's counter). New counters go last, so the others keep their indices.
STAGE = ("decisions", "qualified", "renewals", "churns", "leaks", "won", "lost", "disqualified",
         "nurtured", "nurture_returns", "rework_returns", "rework_sent_back", "routed_recycled",
         "routed_rejected", "routed_unreached", "routed_lost")
(ST_DECISIONS, ST_QUALIFIED, ST_RENEWALS, ST_CHURNS, ST_LEAKS, ST_WON, ST_LOST,
 ST_DISQUALIFIED, ST_NURTURED, ST_NURTURE_RETURNS, ST_REWORK_RETURNS,
 ST_REWORK_SENT_BACK, ST_ROUTED_RECYCLED, ST_ROUTED_REJECTED, ST_ROUTED_UNREACHED,
 ST_ROUTED_LOST) = range(len(STAGE))
# the routed_ counter of each route outcome (spec.OUTCOMES order), -1 for qualified and won:
# where they lead on to a stage, qualified_ and won_at_ count them
ROUTED = (-1, ST_ROUTED_RECYCLED, ST_ROUTED_REJECTED, ST_ROUTED_UNREACHED, -1, ST_ROUTED_LOST)

CYCLE_BINS = 731  # days; won-deal cycle times, for the median


class Tally:
    """The raw counters of one replication, as arrays."""

    def __init__(self, spec: ModelSpec):
        w = spec.n_weeks
        self.fates = np.zeros(len(FATES))
        self.scalars = np.zeros(len(SCALARS))
        self.channel = np.zeros((len(spec.channel_names), len(CHANNEL)))
        self.team = np.zeros((spec.n_teams, len(TEAM)))
        self.stage = np.zeros((spec.n_stages, len(STAGE)))
        self.trust_end = np.zeros(spec.n_edges)
        self.cycle_hist = np.zeros(CYCLE_BINS)
        self.bookings_w = np.zeros(w)
        self.wip_w = np.zeros((spec.n_teams, w))
        self.busy_w = np.zeros((spec.n_teams, w))
        self.available_w = np.zeros((spec.n_teams, w))
        self.trust_w = np.zeros((spec.n_edges, w))

    def arrays(self) -> tuple[np.ndarray, ...]:
        return (self.fates, self.scalars, self.channel, self.team, self.stage, self.trust_end,
                self.cycle_hist, self.bookings_w, self.wip_w, self.busy_w, self.available_w,
                self.trust_w)


def _median_from_hist(hist: np.ndarray) -> float:
    """The median of values counted in one-day bins, each read as its bin's midpoint: the
    middle value, or the mean of the two middle ones for an even count."""
    n = int(round(hist.sum()))
    if n == 0:
        return math.nan
    c = np.cumsum(hist)
    low = np.searchsorted(c, (n + 1) // 2)  # the bins of ranks (n+1)//2 and n//2 + 1 (1-based)
    high = np.searchsorted(c, n // 2 + 1)
    return float((low + high) / 2 + 0.5)


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else math.nan


def outcome_names(spec: ModelSpec) -> list[str]:
    """The columns of a replication's row for this model (bookings, won, kpi_<team>, ...),
    known before anything runs."""
    return list(replication_row(Tally(spec), spec))


def replication_row(t: Tally, spec: ModelSpec) -> dict:
    """One replication as one flat row of named numbers."""
    H = spec.horizon
    f, s = t.fates, t.scalars
    row: dict = {"leads_created": s[S_LEADS], "bookings": s[S_BOOKINGS],
                 "pipeline_created": s[S_PIPELINE], "opportunities": s[S_OPPS]}
    for i, name in enumerate(FATES):
        row[name] = f[i]
    row["leaked"] = f[F_FORGOTTEN:].sum()
    row["open_at_end"] = t.team[:, T_OPEN_END].sum()
    row["win_rate"] = _ratio(f[F_WON], f[F_WON] + s[S_BUYER_LOSSES])
    row["cycle_days_mean"] = _ratio(s[S_CYCLE_SUM], f[F_WON]) / 24.0
    row["cycle_days_median"] = _median_from_hist(t.cycle_hist)
    row["rework_hours"] = s[S_REWORK]
    row["events"] = s[S_EVENTS]
    ch = t.channel
    row["attempts_per_lead"] = _ratio(ch[:, C_ATTEMPTS].sum(), ch[:, C_CONTACT_LEADS].sum())
    row["never_contacted_share"] = _ratio(ch[:, C_NEVER_CONTACTED].sum(),
                                          ch[:, C_CONTACT_LEADS].sum())
    for c, name in enumerate(spec.channel_names):  # NaN where a channel saw no contact
        row[f"leads_{name}"] = ch[c, C_LEADS]
        row[f"never_contacted_share_{name}"] = _ratio(ch[c, C_NEVER_CONTACTED],
                                                      ch[c, C_CONTACT_LEADS])
        row[f"qualify_rate_1h_{name}"] = _ratio(ch[c, C_FAST_QUALIFIED], ch[c, C_FAST_TOUCHED])
        row[f"qualify_rate_24h_{name}"] = _ratio(ch[c, C_SLOW_QUALIFIED],
                                                 ch[c, C_SLOW_TOUCHED])
    quarters = H / QUARTER
    for k, team in enumerate(spec.team_names):
        tm = t.team[k]
        row[f"util_{team}"] = _ratio(tm[T_BUSY], tm[T_AVAILABLE])
        row[f"wip_{team}"] = tm[T_WIP_AREA] / H
        row[f"queue_{team}"] = (tm[T_WIP_AREA] - tm[T_SERVING_AREA] - tm[T_BUYER_AREA]) / H
        row[f"throughput_{team}"] = tm[T_DEPARTURES] / H
        row[f"open_{team}"] = tm[T_OPEN_END]
        row[f"sojourn_{team}"] = _ratio(tm[T_SOJOURN_SUM], tm[T_DEPARTURES])
        row[f"attrition_{team}"] = _ratio(tm[T_QUITS] * 8760.0 / H, tm[T_HEADCOUNT_AREA] / H)
        metric = spec.team_kpi_metric[k]
        if metric >= 0:
            if metric == 3:  # retention is a rate, not a count
                st = t.stage[spec.team_kpi_stage[k]]
                kpi = _ratio(st[ST_RENEWALS] - st[ST_CHURNS], st[ST_RENEWALS])
                target = spec.team_kpi_target[k]
            else:
                kpi = tm[T_KPI]
                target = spec.team_kpi_target[k] * quarters
            row[f"kpi_{team}"] = kpi
            row[f"kpi_target_{team}"] = target
            row[f"kpi_attainment_{team}"] = _ratio(kpi, target)
    for j, stage in enumerate(spec.stage_names):
        st = t.stage[j]
        row[f"pass_rate_{stage}"] = _ratio(st[ST_QUALIFIED], st[ST_DECISIONS])
        row[f"decisions_{stage}"] = st[ST_DECISIONS]  # for the report's flow diagram
        row[f"qualified_{stage}"] = st[ST_QUALIFIED]
        row[f"leaks_at_{stage}"] = st[ST_LEAKS]
        row[f"nurture_returns_{stage}"] = st[ST_NURTURE_RETURNS]
        row[f"rework_returns_{stage}"] = st[ST_REWORK_RETURNS]
        row[f"rework_sent_back_{stage}"] = st[ST_REWORK_SENT_BACK]
        for fate, value in _stage_fates(spec, j, st):
            row[f"{fate}_at_{stage}"] = value
        for outcome, col in enumerate(ROUTED):  # only the routes that lead on to a stage
            if col >= 0 and spec.route[j][outcome] >= 0:
                row[f"routed_{OUTCOMES[outcome]}_{stage}"] = st[col]
    for e, edge in enumerate(spec.edge_names):
        row[f"trust_{edge}"] = t.trust_end[e]
    return {k: float(v) for k, v in row.items()}


def _stage_fates(spec: ModelSpec, s: int, st: np.ndarray) -> list[tuple[str, float]]:
    """The fates stage `s` decided, each where the stage can send a lead there: won at a close
    stage, retained and churned at a retain stage's renewals, and the terminal routes it has."""
    out = []
    if spec.stage_kind[s] == CLOSE:
        out.append(("won", st[ST_WON]))
    if spec.stage_kind[s] == RETAIN:
        out += [("retained", st[ST_RENEWALS] - st[ST_CHURNS]), ("churned", st[ST_CHURNS])]
    for code, fate, col in ((LOST_FATE, "lost", ST_LOST),
                            (DISQUALIFIED, "disqualified", ST_DISQUALIFIED),
                            (NURTURE, "nurtured", ST_NURTURED)):
        if (spec.route[s] == code).any():
            out.append((fate, st[col]))
    return out


def weekly_rows(t: Tally, spec: ModelSpec, replication: int) -> dict[str, np.ndarray]:
    """Weekly aggregates of one replication: columns of equal length n_weeks."""
    w = spec.n_weeks
    week_hours = np.full(w, 168.0)
    week_hours[-1] = spec.horizon - 168.0 * (w - 1)
    cols: dict[str, np.ndarray] = {
        "replication": np.full(w, replication, dtype=np.int64),
        "week": np.arange(w, dtype=np.int64),
        "bookings": t.bookings_w.copy(),
    }
    # one person's working hours in each week: a team's staffed hours over them are the
    # people on its staff that week (vacancies after a quit show as dips)
    start = spec.warmup + 168.0 * np.arange(w)
    person = np.array([working_hours_between(a, a + h, spec.work_days, spec.day_start,
                                             spec.day_end) for a, h in zip(start, week_hours,
                                                                            strict=True)])
    for k, team in enumerate(spec.team_names):
        cols[f"wip_{team}"] = t.wip_w[k] / week_hours
        with np.errstate(invalid="ignore", divide="ignore"):
            cols[f"util_{team}"] = np.where(t.available_w[k] > 0,
                                            t.busy_w[k] / np.maximum(t.available_w[k], 1e-12),
                                            np.nan)
            cols[f"staffed_{team}"] = np.where(person > 0,
                                               t.available_w[k] / np.maximum(person, 1e-12),
                                               np.nan)
    for e, edge in enumerate(spec.edge_names):
        cols[f"trust_{edge}"] = t.trust_w[e].copy()
    return cols


def to_frames(rows: list[dict], weekly: list[dict]) -> tuple[pl.DataFrame, pl.DataFrame]:
    reps = pl.DataFrame(rows)
    weeks = pl.concat([pl.DataFrame(w) for w in weekly]) if weekly else pl.DataFrame()
    return reps, weeks


# --------------------------------------------------------------------------- summaries


# outcomes that are shares of something (between 0 and 1 in every replication)
PROPORTIONS = ("win_rate", "never_contacted_share", "qualify_rate_", "pass_rate_", "util_",
               "trust_")


def is_proportion(name: str, shares: Collection[str] = ()) -> bool:
    """Whether outcome `name` is a share; `shares` names the model's own (a retention KPI)."""
    return name.startswith(PROPORTIONS) or name in shares


def in_percent(name: str, shares: Collection[str] = ()) -> bool:
    """Whether outcome `name` is written in %, its differences in percentage points, as `run`
    writes it: a share (`is_proportion`), or a team's KPI attainment, which passes 100% and
    so is no share (its interval is not cut at 1)."""
    return is_proportion(name, shares) or name.startswith("kpi_attainment_")


def share_kpis(teams: Mapping[str, str | None]) -> frozenset[str]:
    """The KPI columns that are shares: a team's retention rate (teams: name -> metric)."""
    return frozenset(f"kpi_{team}" for team, metric in teams.items() if metric == "retained")


def where_it_can_lie(name: str, low: float, high: float, never_negative: bool,
                     shares: Collection[str] = ()) -> tuple[float, float]:
    """A mean's interval cut to where the outcome can lie: a share's to [0, 1], one whose
    values are never negative at 0 (a column with a negative value is left whole). Never past
    its mean, the interval's middle: a share of 1 + 2e-15 (a rounding, docs/model.md) kept
    its mean, and its interval, cut at 1, left it out."""
    mid = (low + high) / 2
    if is_proportion(name, shares):
        return max(low, min(0.0, mid)), min(high, max(1.0, mid))
    return (max(low, min(0.0, mid)), high) if never_negative else (low, high)


def t_quantile(p: float, df: float) -> float:
    """Student's t quantile: p of the distribution with df degrees of freedom lies below it
    (scipy.special's; importing scipy.stats for it cost every run about a second)."""
    from scipy.special import stdtrit

    return float(stdtrit(df, p))


def summarize(reps: pl.DataFrame, confidence: float = 0.95,
              shares: Collection[str] = ()) -> pl.DataFrame:
    """Per outcome defined in at least one replication (``n``: in how many): mean with a
    t-based CI over replications, sd, P10/P50/P90. A share's interval is cut to [0, 1], where
    its mean lies (a t-interval of a rare share reached past 1), and a count's, an amount's
    or a ratio's at 0 (every outcome is one; a column with a negative value is left whole):
    a KPI attainment of 5.7% read "± 11.5%"."""
    # a boolean is not a level; a string or None would fail in the comparison, unnamed
    if (isinstance(confidence, bool) or not isinstance(confidence, numbers.Real)
            or not 0.0 < confidence < 1.0):
        raise GtmsimError(f"confidence: expected a level between 0 and 1, got {confidence!r}")
    out = []
    for name in reps.columns:
        if name in ("replication", "seed"):
            continue
        x = reps[name].drop_nulls().drop_nans().to_numpy().astype(float)
        n = len(x)
        if n == 0:
            continue
        mean = float(x.mean())
        # one replication says nothing about the spread: no sd, no interval
        sd = float(x.std(ddof=1)) if n > 1 else math.nan
        half = (t_quantile(0.5 + confidence / 2, n - 1) * sd / math.sqrt(n) if n > 1
                else math.nan)
        p10, p50, p90 = (float(v) for v in np.percentile(x, [10, 50, 90]))
        low, high = where_it_can_lie(name, mean - half, mean + half, x.min() >= 0, shares)
        out.append({"outcome": name, "n": n, "mean": mean, "ci_low": low,
                    "ci_high": high, "sd": sd, "p10": p10, "p50": p50, "p90": p90})
    return pl.DataFrame(out)
