"""People: traits drawn per replication, and how a person works and judges.

Mechanisms here: 1 latency, 2 speed, 3 judgement noise, 4 interpretation, 9 ramp,
11 availability, 12 persistence, 13 compliance (which decides whether a person keeps the
design's SLA and warm handoffs).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from gtmsim.spec import (
    T_AVAILABILITY,
    T_COMPLIANCE,
    T_HABIT,
    T_LATENCY,
    T_SPEED,
    T_THRESHOLD,
    ModelSpec,
)


def lognormal_mean_one(rng: np.random.Generator, cv: float) -> float:
    """A multiplier with mean 1 and the given coefficient of variation (1 when cv is 0)."""
    if cv <= 0.0:
        return 1.0
    s2 = math.log1p(cv * cv)
    return math.exp(-s2 / 2 + math.sqrt(s2) * rng.standard_normal())


def logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


class Person:
    """One member of a team in one replication; a slot is refilled by new hires."""

    def __init__(self, spec: ModelSpec, trait_rng: Callable[[int], np.random.Generator],
                 team: int, slot: int, hired: float, generation: int = 0):
        """`trait_rng(k)`: the stream of trait k of this hire (each trait its own, so one
        switched off moves no other)."""
        self.team = team
        self.slot = slot
        self.generation = generation
        self.hired = hired
        self.speed = lognormal_mean_one(trait_rng(T_SPEED), spec.speed_person_cv)
        self.latency_mult = (
            math.exp(spec.latency_person_sigma * trait_rng(T_LATENCY).standard_normal())
            if spec.latency_person_sigma > 0 else 1.0)
        self.threshold_shift = (spec.threshold_sd * trait_rng(T_THRESHOLD).standard_normal()
                                if spec.threshold_sd > 0 else 0.0)
        c = spec.availability_concentration
        m = spec.availability_mean
        self.availability = (trait_rng(T_AVAILABILITY).beta(m * c, (1 - m) * c)
                             if c > 0 and m < 1.0 else m)
        self.availability = max(self.availability, 0.05)
        self.compliant = (spec.compliance_p >= 1.0
                          or trait_rng(T_COMPLIANCE).random() < spec.compliance_p)
        h = spec.habit_attempts
        self.habit = ((1 + int(trait_rng(T_HABIT).poisson(max(h - 1.0, 0.0)))) if h > 0
                      else 0)
        # live state
        self.active = True
        self.busy = False
        self.queue = None  # a PriorityStore for push routing
        self.process = None
        self.load = 0  # items assigned and not yet finished (least-loaded routing)
        self.staffed_since = 0.0
        self.gone = False

    def ramp(self, spec: ModelSpec, t: float) -> float:
        """Productivity of a new hire: ramp_start at hire, 1 after ramp_hours."""
        if spec.ramp_hours <= 0 or t - self.hired >= spec.ramp_hours:
            return 1.0  # ramped up (the formula below gives exactly 1.0 there too)
        frac = min(1.0, max(0.0, t - self.hired) / spec.ramp_hours)
        return spec.ramp_start + (1 - spec.ramp_start) * frac

    def work_hours(self, spec: ModelSpec, t: float, effort: float) -> float:
        """Working hours this person needs for `effort` hours of nominal work."""
        return effort / (self.speed * self.availability * self.ramp(spec, t))

    def skill(self, spec: ModelSpec, t: float) -> float:
        return self.speed * self.availability * self.ramp(spec, t)

    def noise(self, spec: ModelSpec, t: float) -> float:
        return spec.noise_sd * (1.0 + spec.ramp_noise * (1.0 - self.ramp(spec, t)))

    def attempts(self, prescribed: int) -> int:
        """12. People give up after their habitual number of attempts, never past the
        prescription; with persistence off everyone makes the prescribed attempts."""
        if self.habit <= 0:
            return prescribed
        return min(prescribed, self.habit)


def latency_hours(spec: ModelSpec, rng: np.random.Generator, mult: float) -> float:
    """1. Working hours before an item is picked up; 0 when latency is off."""
    if spec.latency_median <= 0:
        return 0.0
    return mult * spec.latency_median * math.exp(spec.latency_sigma * rng.standard_normal())


def perceived(q: float, noise_sd: float, rng: np.random.Generator) -> float:
    """3. Quality as a person sees it: logit(q) plus noise, back on the probability scale."""
    if noise_sd <= 0:
        return q
    return sigmoid(logit(q) + noise_sd * rng.standard_normal())
