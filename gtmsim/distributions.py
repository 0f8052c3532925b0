"""Named distributions as flat numbers: a kind code and three parameters.

Every distribution in a config compiles to one row of (kind, p0, p1, p2); empirical ones point
into a pooled array of observed values. Both engines sample from these rows.
"""

from __future__ import annotations

import math

import numpy as np

from gtmsim.config import schema as s

FIXED, EXPONENTIAL, LOGNORMAL, GAMMA, UNIFORM, TRIANGULAR, BETA, EMPIRICAL = range(8)
NAMES = ("fixed", "exponential", "lognormal", "gamma", "uniform", "triangular", "beta",
         "empirical")  # by kind code, as a config names them


def encode(d, pool: list[float], scale: float = 1.0) -> tuple[int, float, float, float]:
    """One config distribution -> (kind, p0, p1, p2); `scale` converts units (days -> hours)."""
    if isinstance(d, s.Fixed):
        return FIXED, d.value * scale, 0.0, 0.0
    if isinstance(d, s.Exponential):
        return EXPONENTIAL, d.mean * scale, 0.0, 0.0
    if isinstance(d, s.Lognormal):
        mu, sigma = d.mu_sigma()
        return LOGNORMAL, mu + np.log(scale), sigma, 0.0
    if isinstance(d, s.Gamma):
        return GAMMA, d.shape, d.scale * scale, 0.0
    if isinstance(d, s.Uniform):
        return UNIFORM, d.low * scale, d.high * scale, 0.0
    if isinstance(d, s.Triangular):
        return TRIANGULAR, d.low * scale, d.mode * scale, d.high * scale
    if isinstance(d, s.Beta):
        return BETA, d.a, d.b, scale
    if isinstance(d, s.Empirical):
        offset = len(pool)
        pool.extend(v * scale for v in d.values)
        return EMPIRICAL, float(offset), float(len(d.values)), 0.0
    raise TypeError(f"not a distribution: {d!r}")


def _exp(x: float) -> float:
    """e**x, infinite past the float range (a median of 1e308 days: a wait that never ends),
    as the kernel's exp gives it, without NumPy's overflow warning."""
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def draw(rng: np.random.Generator, kind: int, p0: float, p1: float, p2: float,
         pool: np.ndarray) -> float:
    """One sample of an encoded distribution."""
    if kind == FIXED:
        return p0
    if kind == EXPONENTIAL:
        return rng.exponential(p0)
    if kind == LOGNORMAL:
        return _exp(p0 + p1 * rng.standard_normal())
    if kind == GAMMA:
        return rng.gamma(p0, p1)
    if kind == UNIFORM:
        return p0 + (p1 - p0) * rng.random()
    if kind == TRIANGULAR:
        return rng.triangular(p0, p1, p2)
    if kind == BETA:
        return rng.beta(p0, p1) * p2
    if kind == EMPIRICAL:
        return float(pool[int(p0) + int(rng.random() * p1)])
    raise ValueError(f"unknown distribution kind {kind}")


def mean(kind: int, p0: float, p1: float, p2: float, pool: np.ndarray) -> float:
    """The mean of an encoded distribution (for capacity checks and docs)."""
    if kind in (FIXED, EXPONENTIAL):
        return p0
    if kind == LOGNORMAL:
        return _exp(p0 + p1 * p1 / 2)
    if kind == GAMMA:
        return p0 * p1
    if kind == UNIFORM:
        return (p0 + p1) / 2
    if kind == TRIANGULAR:
        return (p0 + p1 + p2) / 3
    if kind == BETA:
        return p0 / (p0 + p1) * p2
    return float(pool[int(p0): int(p0) + int(p1)].mean())
