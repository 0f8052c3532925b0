"""Config distributions as flat rows: units converted on encoding, means and draws that agree."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from gtmsim import distributions as D
from gtmsim.config import schema as s

# a distribution given in days, its mean in days worked out by hand
IN_DAYS = [
    (s.Fixed(dist="fixed", value=2.0), 2.0),
    (s.Exponential(dist="exponential", mean=3.0), 3.0),
    (s.Lognormal(dist="lognormal", median=2.0, sigma=0.5), 2.0 * math.exp(0.125)),
    (s.Gamma(dist="gamma", shape=2.0, scale=3.0), 6.0),
    (s.Uniform(dist="uniform", low=1.0, high=5.0), 3.0),
    (s.Triangular(dist="triangular", low=1.0, mode=2.0, high=6.0), 3.0),
    (s.Beta(dist="beta", a=2.0, b=6.0), 0.25),
    (s.Empirical(dist="empirical", values=[1.0, 2.0, 6.0]), 3.0),
]


@pytest.mark.parametrize(("dist", "days"), IN_DAYS, ids=[d.dist for d, _ in IN_DAYS])
def test_a_distribution_in_days_encodes_to_hours_with_the_same_shape(dist, days):
    """A buyer's or nurture delay is given in days and run in hours: every parameter of
    scale is multiplied by 24 (a log-median shifted by ln 24), the shape left alone; the
    encoded row's mean is 24 times the mean in days, and so is the mean of its draws (a
    lognormal scaled on the log scale, or a gamma's shape scaled for its scale, was not)."""
    pool: list[float] = [0.5]  # another distribution's values before these
    row = D.encode(dist, pool, 24.0)
    pool_a = np.array(pool)
    assert D.mean(*row, pool_a) == pytest.approx(24.0 * days)
    rng = np.random.default_rng(11)
    draws = np.array([D.draw(rng, *row, pool_a) for _ in range(40_000)])
    assert draws.mean() == pytest.approx(24.0 * days, rel=0.03)


def test_a_gamma_in_days_keeps_its_shape_and_scales_its_scale():
    """The shape of a gamma has no unit: only its scale becomes hours (a shape multiplied by
    24 has the same mean but a spread 24 times too narrow relative to it)."""
    gamma = s.Gamma(dist="gamma", shape=2.0, scale=3.0)
    assert D.encode(gamma, [], 24.0) == (D.GAMMA, 2.0, 72.0, 0.0)


def test_a_lognormal_past_the_float_range_is_an_endless_wait_without_a_warning():
    """A median of 1e308 days is accepted (a wait that never ends): in hours its draws and its
    mean lie past the float range and are infinite, as in the kernel, with no NumPy overflow
    warning on the user's screen; in range, the draw is e**(mu + sigma z) as before."""
    row = D.encode(s.Lognormal(dist="lognormal", median=1e308, sigma=0.5), [], 24.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert D.draw(np.random.default_rng(3), *row, np.array([])) == math.inf
        assert D.mean(*row, np.array([])) == math.inf
    row = D.encode(s.Lognormal(dist="lognormal", median=2.0, sigma=0.5), [], 24.0)
    z = np.random.default_rng(3).standard_normal()
    assert D.draw(np.random.default_rng(3), *row, np.array([])) == math.exp(row[1] + row[2] * z)
