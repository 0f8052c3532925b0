"""A small counter-free RNG for the kernel: xoshiro256** over a uint64[4] state.

Each replication owns its state (seeded from its ``SeedSequence``), so results never depend on
which thread runs it. Samplers mirror ``gtmsim.distributions.draw`` in distribution.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from gtmsim import distributions as D
from gtmsim.engines.kernel.view import plain

_FIXED, _EXPONENTIAL, _LOGNORMAL, _GAMMA = D.FIXED, D.EXPONENTIAL, D.LOGNORMAL, D.GAMMA
_UNIFORM, _TRIANGULAR, _BETA, _EMPIRICAL = D.UNIFORM, D.TRIANGULAR, D.BETA, D.EMPIRICAL
_U5 = np.uint64(5)
_U9 = np.uint64(9)
_U11 = np.uint64(11)
_U17 = np.uint64(17)


def seed_state(seq: np.random.SeedSequence) -> np.ndarray:
    """The 4-word xoshiro state of one replication's stream (never all zero)."""
    s = seq.generate_state(4, np.uint64)
    if not s.any():
        s[0] = np.uint64(1)
    return s


@njit(cache=True, inline="always")
def _rotl(x, k):
    return (x << np.uint64(k)) | (x >> np.uint64(64 - k))


@njit(cache=True, inline="always")
def next_u64(s):
    s0, s1, s2, s3 = s[0], s[1], s[2], s[3]
    result = _rotl(s1 * _U5, 7) * _U9
    t = s1 << _U17
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = _rotl(s3, 45)
    s[0], s[1], s[2], s[3] = s0, s1, s2, s3
    return result


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_U27 = np.uint64(27)
_U30 = np.uint64(30)
_U31 = np.uint64(31)


@njit(cache=True, inline="always")
def _splitmix(x):
    """SplitMix64's output function of x + golden: a 64-bit hash that spreads every bit."""
    z = x + _GOLDEN
    z = (z ^ (z >> _U30)) * _MIX1
    z = (z ^ (z >> _U27)) * _MIX2
    return z ^ (z >> _U31)


@njit(cache=True)
def derive(seed, k0, k1, k2, k3, out):
    """A stream of its own for keys (k0, k1, k2, k3) under a replication's 4-word `seed`, into
    `out` (uint64[4]): the seed and the keys hashed in turn, the state filled by SplitMix64
    (never all zero). Streams for other keys are unrelated, so a stream's draws depend on
    nothing but its keys: a seat's turnover, a person's trait."""
    x = seed[0]
    x = _splitmix(x ^ seed[1])
    x = _splitmix(x ^ seed[2])
    x = _splitmix(x ^ seed[3])
    x = _splitmix(x ^ np.uint64(k0))
    x = _splitmix(x ^ np.uint64(k1))
    x = _splitmix(x ^ np.uint64(k2))
    x = _splitmix(x ^ np.uint64(k3))
    for i in range(4):
        x = _splitmix(x)
        out[i] = x
    if out[0] == 0 and out[1] == 0 and out[2] == 0 and out[3] == 0:
        out[0] = _ONE


@njit(cache=True, inline="always")
def uniform(s):
    """U[0, 1) with 53 random bits."""
    return float(next_u64(s) >> _U11) * (1.0 / 9007199254740992.0)


def _ziggurat_tables(n: int = 256, r: float = 3.6541528853610088,
                     v: float = 0.00492867323399):
    """Marsaglia and Tsang's ziggurat for the standard normal, in 256 layers: layer i's
    acceptance bound ``ki`` (on 52 random bits), width ``wi`` (per unit of those bits) and
    density ``fi`` at its edge. The same construction as NumPy's."""
    m = 2.0**52
    ki = np.zeros(n, dtype=np.uint64)
    wi = np.zeros(n)
    fi = np.zeros(n)
    dn = tn = r
    q = v / math.exp(-0.5 * dn * dn)
    ki[0] = np.uint64((dn / q) * m)
    wi[0] = q / m
    wi[n - 1] = dn / m
    fi[0] = 1.0
    fi[n - 1] = math.exp(-0.5 * dn * dn)
    for i in range(n - 2, 0, -1):
        dn = math.sqrt(-2.0 * math.log(v / dn + math.exp(-0.5 * dn * dn)))
        ki[i + 1] = np.uint64((dn / tn) * m)
        tn = dn
        fi[i] = math.exp(-0.5 * dn * dn)
        wi[i] = dn / m
    return ki, wi, fi, r


_KI, _WI, _FI, _R = _ziggurat_tables()
_U8 = np.uint64(8)
_U52 = np.uint64((1 << 52) - 1)
_LAYER = np.uint64(0xFF)
_ONE = np.uint64(1)


@njit(cache=True)
def _normal_edge(s, layer, x, sign):
    """The rare draws outside a layer's rectangle: the wedge (test against the density; NaN
    when rejected, to draw again) or, from the base layer, the tail beyond r (Marsaglia's
    exponential method)."""
    if layer == 0:
        while True:
            xx = -math.log(1.0 - uniform(s)) / _R
            yy = -math.log(1.0 - uniform(s))
            if yy + yy > xx * xx:
                return -(_R + xx) if sign else _R + xx
    if (_FI[layer - 1] - _FI[layer]) * uniform(s) + _FI[layer] < math.exp(-0.5 * x * x):
        return x
    return math.nan


@njit(cache=True, inline="always")
def normal(s):
    """Standard normal by the ziggurat: one 64-bit draw and a table look-up in about 99% of
    calls (8 bits pick the layer, 1 the sign, 52 the position), no log or cos."""
    while True:
        u = next_u64(s)
        layer = int(u & _LAYER)
        u >>= _U8
        sign = (u & _ONE) == _ONE
        bits = (u >> _ONE) & _U52
        x = float(bits) * _WI[layer]
        if sign:
            x = -x
        if bits < _KI[layer]:
            return x
        x = _normal_edge(s, layer, x, sign)
        if x == x:
            return x


@njit(cache=True, inline="always")
def exponential(s, mean):
    return -mean * math.log(1.0 - uniform(s))


@njit(cache=True)
def gamma_constants(shape):
    """Marsaglia-Tsang's (d, c) for a shape (for shape + 1 below 1, where the boost applies);
    ``KSpec.dist_par`` holds them for its gamma and beta rows, so a draw takes no square root
    or division."""
    if shape <= 0.0:
        return 0.0, 0.0
    a = shape + 1.0 if shape < 1.0 else shape
    d = a - 1.0 / 3.0
    return d, 1.0 / math.sqrt(9.0 * d)


@njit(cache=True, inline="always")
def gamma_dc(s, shape, d, c, scale):
    """Marsaglia-Tsang with its squeeze, given (d, c) = gamma_constants(shape); shape < 1 by
    the boost U^(1/shape)."""
    if shape <= 0.0:
        return 0.0
    boost = 1.0
    if shape < 1.0:
        boost = (1.0 - uniform(s)) ** (1.0 / shape)
    return _marsaglia_tsang(s, d, c) * scale * boost


@njit(cache=True, inline="always")
def _marsaglia_tsang(s, d, c):
    """Marsaglia-Tsang's unit-scale gamma draw, d * v, for the (d, c) of gamma_constants:
    of shape d + 1/3 (below shape 1, shape + 1: the boost is the caller's)."""
    while True:
        x = normal(s)
        v = 1.0 + c * x
        if v <= 0.0:
            continue
        v = v * v * v
        u = 1.0 - uniform(s)
        x2 = x * x
        # the squeeze accepts without a log (it implies the exact test below)
        if u < 1.0 - 0.0331 * x2 * x2 or math.log(u) < 0.5 * x2 + d - d * v + d * math.log(v):
            return d * v


@njit(cache=True)
def gamma(s, shape, scale):
    d, c = gamma_constants(shape)
    return gamma_dc(s, shape, d, c, scale)


@njit(cache=True, inline="always")
def _beta_of(x, y):
    if x + y <= 0.0:
        return 0.5
    return x / (x + y)


@njit(cache=True, inline="always")
def log_gamma_dc(s, shape, d, c):
    """log of ``gamma_dc(s, shape, d, c, 1.0)``, from the same draws: below shape 1 the boost
    U^(1/shape) underflows to 0 (for shape 0.001 about half the time), its log does not."""
    if shape <= 0.0:
        return -math.inf
    log_boost = 0.0
    if shape < 1.0:
        log_boost = math.log(1.0 - uniform(s)) / shape
    return math.log(_marsaglia_tsang(s, d, c)) + log_boost


@njit(cache=True, inline="always")
def beta_dc(s, a, da, ca, b, db, cb):
    """Beta(a, b) as X / (X + Y) of two gammas, given their ``gamma_constants``. With a shape
    below 1 on the log scale: both gammas could underflow to 0, and 0 / 0 read as 0.5 where
    Beta(0.001, 0.001) lies at 0 or 1 (NumPy's beta, the SimPy engine's, does not)."""
    if a >= 1.0 and b >= 1.0:  # no boost, no underflow: the plain ratio
        x = gamma_dc(s, a, da, ca, 1.0)
        return _beta_of(x, gamma_dc(s, b, db, cb, 1.0))
    lx = log_gamma_dc(s, a, da, ca)
    ly = log_gamma_dc(s, b, db, cb)
    if lx == -math.inf and ly == -math.inf:
        return 0.5
    return 1.0 / (1.0 + math.exp(ly - lx))


@njit(cache=True)
def beta(s, a, b):
    da, ca = gamma_constants(a)
    db, cb = gamma_constants(b)
    return beta_dc(s, a, da, ca, b, db, cb)


@njit(cache=True)
def poisson(s, mu):
    """Knuth's product method, in chunks of mean <= 20 (exact for any mean)."""
    n = 0
    left = mu
    while left > 0.0:
        m = min(left, 20.0)
        left -= m
        limit = math.exp(-m)
        p = uniform(s)
        while p > limit:
            n += 1
            p *= uniform(s)
    return n


@njit(cache=True)
def triangular(s, lo, mode, hi):
    u = uniform(s)
    if hi <= lo:
        return lo
    c = (mode - lo) / (hi - lo)
    if u < c:
        return lo + math.sqrt(u * (hi - lo) * (mode - lo))
    return hi - math.sqrt((1.0 - u) * (hi - lo) * (hi - mode))


@njit(cache=True, inline="always")
def sample(s, kind, par, pool, row):
    """One sample of distribution row `row` (same encoding as gtmsim.distributions; a gamma
    or beta row also holds its shapes' ``gamma_constants`` in columns 3-6)."""
    p0, p1, p2 = par[row, 0], par[row, 1], par[row, 2]
    k = kind[row]
    if k == _FIXED:
        return p0
    if k == _EXPONENTIAL:
        return exponential(s, p0)
    if k == _LOGNORMAL:
        return math.exp(p0 + p1 * normal(s))
    if k == _GAMMA:
        return gamma_dc(s, p0, par[row, 3], par[row, 4], p1)
    if k == _UNIFORM:
        return p0 + (p1 - p0) * uniform(s)
    if k == _TRIANGULAR:
        return triangular(s, p0, p1, p2)
    if k == _BETA:
        return beta_dc(s, p0, par[row, 3], par[row, 4], p1, par[row, 5], par[row, 6]) * p2
    return pool[int(p0) + int(uniform(s) * p1)]  # empirical


@njit(cache=True, inline="always")
def lognormal_mean_one(s, s2, sd):
    """A multiplier with mean 1 and log-variance s2 = log(1 + cv^2), sd = sqrt(s2) (both from
    the spec); 1 when there is no variation."""
    if s2 <= 0.0:
        return 1.0
    return math.exp(-s2 / 2.0 + sd * normal(s))


@njit(cache=True)
def _draw(ks, st, stage, row):
    """``sample`` of the spec's distribution row `row`, from the arrivals' stream (stage -1)
    or stage `stage`'s work stream. The event loop draws through this rather than
    ``sample``: a compiled call passes each array argument as seven words and takes and drops
    a reference on it, while the spec ``ks`` and the state ``st`` are one pointer each (7% of
    the kernel's time with the spec's three arrays and the stream passed). One compiled copy
    serves every stream."""
    s = st.rng_arrivals if stage < 0 else st.stage_rng[stage]
    return sample(s, ks.dist_kind, ks.dist_par, ks.dist_pool, row)


@njit(cache=True, inline="always")
def draw(ks, st, stage, row):
    """A sample of distribution row `row` from stage `stage`'s work stream."""
    return _draw(ks, st, stage, row)


@njit(cache=True, inline="always")
def draw_arrival(ks, st, row):
    """A sample of distribution row `row` from the arrivals' stream (a lead's quality and
    value)."""
    return _draw(ks, st, plain(-1), row)


@njit(cache=True)
def draw_times_multiplier(ks, st, stage, row, s2, sd):
    """``draw(ks, st, stage, row) * lognormal_mean_one(s2, sd)``, the two draws in that order
    from the stage's stream; a lognormal row and the multiplier are summed on the log scale,
    so one exp serves both."""
    kind, par = ks.dist_kind, ks.dist_par
    s = st.stage_rng[stage]
    if kind[row] == _LOGNORMAL and s2 > 0.0:
        z = normal(s)
        return math.exp(par[row, 0] + par[row, 1] * z - s2 / 2.0 + sd * normal(s))
    return _draw(ks, st, stage, row) * lognormal_mean_one(s, s2, sd)
