"""The model spec as the kernel reads it: one namedtuple of arrays and floats.

``pack`` turns a ``ModelSpec`` into a ``KSpec`` (bools become 0/1, every array gets a fixed
dtype) so one compiled kernel serves every config. ``TallyLayout`` places the arrays of an
``outcomes.Tally`` side by side in one float64 row per replication.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from numba.core import types as nbt
from numba.experimental import structref

from gtmsim import distributions as D
from gtmsim import outcomes as O
from gtmsim import spec as S
from gtmsim.engines.kernel.rng import gamma_constants
from gtmsim.spec import ModelSpec

_ARRAYS_I = ("work_days", "channel_entry", "channel_quality", "channel_value",
             "channel_working_only", "team_headcount", "team_routing", "team_discipline",
             "team_kpi_metric", "team_kpi_stage", "stage_team", "stage_kind", "stage_effort",
             "stage_attempts", "stage_buyer", "route", "edge_from", "edge_to", "edge_protocol",
             "edge_of", "dist_kind")
_ARRAYS_F = ("dist_par", "dist_pool", "channel_rate", "channel_week_mult", "channel_intent_tau",
             "channel_intent_floor", "team_latency_scale", "team_kpi_target", "stage_threshold",
             "stage_reject_below", "stage_attempt_hours", "stage_attempt_gap", "stage_contact_p",
             "stage_win_scale", "stage_renewal", "stage_churn_base", "stage_sla", "edge_sla")
_SCALARS = ("warmup", "horizon", "day_start", "day_end", "nurture_return_p",
            "shared_kpi_share", "escalation_hours", "feedback_on", "feedback_gain",
            "feedback_target", "feedback_max_shift", "latency_median", "latency_sigma",
            "latency_person_sigma", "speed_person_cv", "task_cv", "noise_sd", "threshold_sd",
            "forget_p", "error_p", "error_caught", "error_win_penalty", "loss_crm", "loss_warm",
            "leak_crm", "warm_hours", "rediscovery_hours", "experience_penalty",
            "trust_initial", "trust_rate", "trust_latency", "trust_ignore", "trust_requalify",
            "attrition_rate", "ramp_hours", "ramp_start", "ramp_noise", "vacancy_hours",
            "turnover_queue_loss", "pressure_on", "pressure_window", "pressure_threshold_drop",
            "pressure_error", "pressure_corner_cut", "availability_mean",
            "availability_concentration", "habit_attempts", "compliance_p")
_INTS = ("n_weeks", "nurture_return_after", "nurture_return_stage", "n_teams", "n_stages",
         "n_edges", "n_channels", "max_headcount")

FIELDS = _ARRAYS_I + _ARRAYS_F + _SCALARS + _INTS + ("end", "slot_q0", "per_week",
                                                     "channel_peak", "event_window",
                                                     "task_s2", "task_sd", "speed_s2", "speed_sd")
EVENTS_PER_WINDOW = 1.0  # arrivals an event window spans, on average


@structref.register
class KSpecType(nbt.StructRef):
    """The numba type of a packed spec: a reference, so calls pass one pointer."""

    def preprocess_fields(self, fields):
        return tuple((name, nbt.unliteral(typ)) for name, typ in fields)


DIST_COLUMNS = 7  # a distribution row: p0, p1, p2 and two shapes' Marsaglia-Tsang (d, c)
# tables whose row length is fixed: a view gives them with it as a constant (view.py)
KSpecType.fixed_columns = {"dist_par": DIST_COLUMNS, "route": len(S.OUTCOMES)}


class KSpec(structref.StructRefProxy):
    """A ModelSpec packed for the kernel (see ``pack``)."""


structref.define_proxy(KSpec, KSpecType, list(FIELDS))


def pack(spec: ModelSpec, **replace) -> KSpec:
    """A ModelSpec as a KSpec; keyword arguments replace fields (tests use this to break one
    mechanism in the kernel only)."""
    d = {}
    for name in _ARRAYS_I:
        d[name] = np.ascontiguousarray(getattr(spec, name), dtype=np.int64)
    for name in _ARRAYS_F:
        d[name] = np.ascontiguousarray(getattr(spec, name), dtype=np.float64)
    if d["dist_pool"].size == 0:
        d["dist_pool"] = np.zeros(1)
    for name in _SCALARS:
        d[name] = float(getattr(spec, name))
    d["n_weeks"] = int(spec.n_weeks)
    d["nurture_return_after"] = int(spec.nurture_return_after)
    d["nurture_return_stage"] = int(spec.nurture_return_stage)
    d["n_teams"] = int(spec.n_teams)
    d["n_stages"] = int(spec.n_stages)
    d["n_edges"] = int(spec.n_edges)
    d["n_channels"] = len(spec.channel_names)
    d["max_headcount"] = int(max(1, spec.team_headcount.max()))
    d["end"] = float(spec.warmup + spec.horizon)
    hc = d["team_headcount"]
    d["per_week"] = 0.0
    d["channel_peak"] = np.zeros(0)
    d["event_window"] = 0.0
    d["slot_q0"] = (spec.n_teams + np.concatenate([[0], np.cumsum(hc)[:-1]])).astype(np.int64)
    for k, v in replace.items():
        if k not in FIELDS:
            raise KeyError(k)
        d[k] = type(d[k])(v) if not isinstance(d[k], np.ndarray) else np.asarray(
            v, dtype=d[k].dtype)
    if "per_week" not in replace:  # working hours per week, from the (replaced) calendar
        d["per_week"] = float(d["work_days"].sum() * (d["day_end"] - d["day_start"]))
    if "channel_peak" not in replace:  # each channel's highest weekly multiplier
        d["channel_peak"] = np.ascontiguousarray(d["channel_week_mult"].max(axis=1))
    if "event_window" not in replace:
        d["event_window"] = event_window(d)
    d["dist_par"] = with_gamma_constants(d["dist_kind"], d["dist_par"])
    for name, columns in KSpecType.fixed_columns.items():  # what the kernel's views assume
        if d[name].ndim != 2 or d[name].shape[1] != columns:
            raise ValueError(f"{name} must have {columns} columns, not shape {d[name].shape}")
    # the lognormal multipliers' log-variance and log-sd (mean 1, CV task_cv / speed_person_cv)
    d["task_s2"] = math.log1p(d["task_cv"] ** 2) if d["task_cv"] > 0 else 0.0
    d["task_sd"] = math.sqrt(d["task_s2"])
    d["speed_s2"] = (math.log1p(d["speed_person_cv"] ** 2) if d["speed_person_cv"] > 0
                     else 0.0)
    d["speed_sd"] = math.sqrt(d["speed_s2"])
    return _new_kspec(*(d[name] for name in FIELDS))


@njit(cache=True)
def _new_kspec(*fields):
    """A KSpec of its fields in FIELDS order. Calling the class from Python does the same
    through a constructor numba compiles afresh in every process (seconds, at every start of
    a run, a Dask worker or an optimiser's worker); this one is cached on disk."""
    return KSpec(*fields)


def with_gamma_constants(kind: np.ndarray, par: np.ndarray) -> np.ndarray:
    """The distribution rows (kind; p0, p1, p2) with 4 more columns: a gamma row's
    ``rng.gamma_constants`` of its shape in columns 3-4, a beta row's of its two shapes in
    3-6 (the same floats the sampler would compute on every draw)."""
    out = np.zeros((par.shape[0], DIST_COLUMNS))
    out[:, :3] = par[:, :3]
    for row in range(par.shape[0]):
        if kind[row] in (D.GAMMA, D.BETA):
            out[row, 3:5] = gamma_constants.py_func(par[row, 0])
        if kind[row] == D.BETA:
            out[row, 5:7] = gamma_constants.py_func(par[row, 1])
    return out


def event_window(d: dict) -> float:
    """Hours of an event window (see ``heap``): a day, halved until the window spans at most
    EVENTS_PER_WINDOW arrivals on average, so a window's run is as short at any lead volume
    (down to 1.4 minutes). Windows are 24 / 2^j hours: their bounds are exact floats."""
    hours = np.where(d["channel_working_only"] == 1, d["per_week"], 168.0)
    per_week = float((d["channel_rate"] * hours * d["channel_week_mult"].mean(axis=1)).sum())
    window = 24.0
    while per_week * window / 168.0 > EVENTS_PER_WINDOW and window > 24.0 / 2**10:
        window /= 2.0
    return window


@njit(cache=True)
def private_copy(ks):
    """A copy of ks with its own arrays (generated from FIELDS, in order). Each batch
    worker reads its own copy, so threads never share the reference counts of the spec's
    arrays (shared counts bounce one cache line between cores on every field access)."""
    return KSpec(ks.work_days.copy(), ks.channel_entry.copy(), ks.channel_quality.copy(),
                 ks.channel_value.copy(), ks.channel_working_only.copy(),
                 ks.team_headcount.copy(), ks.team_routing.copy(), ks.team_discipline.copy(),
                 ks.team_kpi_metric.copy(), ks.team_kpi_stage.copy(), ks.stage_team.copy(),
                 ks.stage_kind.copy(), ks.stage_effort.copy(), ks.stage_attempts.copy(),
                 ks.stage_buyer.copy(), ks.route.copy(), ks.edge_from.copy(), ks.edge_to.copy(),
                 ks.edge_protocol.copy(), ks.edge_of.copy(), ks.dist_kind.copy(),
                 ks.dist_par.copy(), ks.dist_pool.copy(), ks.channel_rate.copy(),
                 ks.channel_week_mult.copy(), ks.channel_intent_tau.copy(),
                 ks.channel_intent_floor.copy(), ks.team_latency_scale.copy(),
                 ks.team_kpi_target.copy(), ks.stage_threshold.copy(),
                 ks.stage_reject_below.copy(), ks.stage_attempt_hours.copy(),
                 ks.stage_attempt_gap.copy(), ks.stage_contact_p.copy(),
                 ks.stage_win_scale.copy(), ks.stage_renewal.copy(), ks.stage_churn_base.copy(),
                 ks.stage_sla.copy(), ks.edge_sla.copy(), ks.warmup, ks.horizon, ks.day_start,
                 ks.day_end, ks.nurture_return_p, ks.shared_kpi_share, ks.escalation_hours,
                 ks.feedback_on,
                 ks.feedback_gain, ks.feedback_target, ks.feedback_max_shift, ks.latency_median,
                 ks.latency_sigma, ks.latency_person_sigma, ks.speed_person_cv, ks.task_cv,
                 ks.noise_sd, ks.threshold_sd, ks.forget_p, ks.error_p, ks.error_caught,
                 ks.error_win_penalty, ks.loss_crm, ks.loss_warm, ks.leak_crm, ks.warm_hours,
                 ks.rediscovery_hours, ks.experience_penalty, ks.trust_initial, ks.trust_rate,
                 ks.trust_latency, ks.trust_ignore, ks.trust_requalify, ks.attrition_rate,
                 ks.ramp_hours, ks.ramp_start, ks.ramp_noise, ks.vacancy_hours,
                 ks.turnover_queue_loss, ks.pressure_on, ks.pressure_window,
                 ks.pressure_threshold_drop, ks.pressure_error, ks.pressure_corner_cut,
                 ks.availability_mean, ks.availability_concentration, ks.habit_attempts,
                 ks.compliance_p, ks.n_weeks, ks.nurture_return_after, ks.nurture_return_stage,
                 ks.n_teams, ks.n_stages, ks.n_edges, ks.n_channels, ks.max_headcount, ks.end,
                 ks.slot_q0.copy(), ks.per_week, ks.channel_peak.copy(), ks.event_window,
                 ks.task_s2, ks.task_sd, ks.speed_s2, ks.speed_sd)


class TallyLayout:
    """Offsets of the Tally arrays inside one flat float64 row."""

    NAMES = ("fates", "scalars", "channel", "team", "stage", "trust_end", "cycle_hist",
             "bookings_w", "wip_w", "busy_w", "available_w", "trust_w")

    def __init__(self, spec: ModelSpec):
        t = O.Tally(spec)
        self.shapes = [a.shape for a in t.arrays()]
        sizes = [int(np.prod(s)) for s in self.shapes]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.length = int(self.offsets[-1])

    def tally(self, spec: ModelSpec, row: np.ndarray) -> O.Tally:
        t = O.Tally(spec)
        for name, shape, a, b in zip(self.NAMES, self.shapes, self.offsets[:-1],
                                     self.offsets[1:], strict=True):
            setattr(t, name, row[a:b].reshape(shape).copy())
        return t


def capacities(spec: ModelSpec) -> tuple[int, int, int]:
    """Starting sizes of the lead table, the people table and each queue (a replication that
    outgrows one is rerun with it doubled; results do not depend on the sizes)."""
    end = spec.warmup + spec.horizon
    per_week = float(spec.work_days.sum() * (spec.day_end - spec.day_start))
    # each week the run touches, whole, at its own rate: a campaign's peak held for the whole
    # run (a burst of x1000 for a week) asked for tables of hundreds of millions of leads
    weeks = max(1, math.ceil(end / 168.0))
    mean = 0.0
    for c in range(len(spec.channel_names)):
        hours = per_week if spec.channel_working_only[c] else 168.0
        mean += spec.channel_rate[c] * hours * float(spec.channel_week_mult[c, :weeks].sum())
    leads = int(mean + 8.0 * math.sqrt(mean) + 64)
    heads = int(spec.team_headcount.sum())
    hires = spec.attrition_rate * (end + 1e-9) * heads
    people = int(heads + hires + 8.0 * math.sqrt(hires) + 16)
    queue = int(min(leads, 2048))
    return leads, people, queue
