"""The numba kernel against the SimPy reference engine: same distributions, deterministic.

Equivalence: for each outcome, the engines' means differ by less than the combined 99% CI
(|z| < 2.576) and a two-sample KS test does not reject at 1%. A deliberately broken kernel
(one mechanism switched off in the kernel's spec only) must fail the same comparison.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numba
import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from scipy import stats

from gtmsim import calendar as cal
from gtmsim import outcomes as O
from gtmsim.config import load_config
from gtmsim.engines.kernel import TallyLayout, pack, seeds_for, tallies
from gtmsim.engines.kernel import calendar as kcal
from gtmsim.engines.kernel import rng as krng
from gtmsim.engines.kernel.engine import run_one, take_next
from gtmsim.engines.kernel.flow import seek, taker_of
from gtmsim.engines.kernel.heap import nothing_due_at, pop_next, schedule
from gtmsim.engines.kernel.kspec import KSpecType, capacities, with_gamma_constants
from gtmsim.engines.kernel.people import POOL, ROUND_ROBIN, assign, hire
from gtmsim.engines.kernel.state import BUSY, P_ACTIVE, P_STATE, StateType, new_state, workspace
from gtmsim.engines.kernel.view import compiled_in_kernel, keep, plain, view
from gtmsim.simulate import simulate
from gtmsim.spec import compile_spec

ROOT = Path(__file__).resolve().parents[1]
# A short window after a quarter's warm-up: the engines are compared, not the steady state
# (the default config warms up three quarters). Longer, an overloaded team's backlog (AEs
# under `ideal` plus availability alone) pins its utilisation at 1, where a KS test reads
# the last 0.2% as a difference of distribution.
SHORT = ["run.horizon_days=60", "run.warmup_days=91"]
ALPHA = 0.01  # family-wise: the chance that a correct kernel fails one comparison


def main_outcomes(spec) -> list[str]:
    return (["bookings", "won", "leaked_forgotten", "leaked_decayed", "leaked_ignored",
             "leaked_handoff", "leaked_turnover", "open_at_end", "cycle_days_mean"]
            + [f"util_{t}" for t in spec.team_names] + [f"trust_{e}" for e in spec.edge_names])


def kernel_frame(spec, seed, n, kspec=None) -> pl.DataFrame:
    out, layout = tallies(spec, seed, n, kspec=kspec)
    return pl.DataFrame([O.replication_row(layout.tally(spec, r), spec) for r in out])


def differences(a: pl.DataFrame, b: pl.DataFrame, cols: list[str]) -> list[str]:
    """Outcomes whose means or distributions differ between two samples of replications.

    Each outcome gets two tests: its mean difference against the combined confidence
    interval (z) and a two-sample KS test. A comparison makes 2m tests for m outcomes, so each
    runs at ALPHA / 2m (Bonferroni): a correct kernel then fails a comparison with chance at
    most 1%, instead of about 1 - 0.99^(2m) (26% for 15 outcomes) at 1% per test; the
    deliberately broken kernel below shows the tests keep their power."""
    level = ALPHA / (2 * max(len(cols), 1))
    z_crit = stats.norm.ppf(1 - level / 2)
    bad = []
    for c in cols:
        x = a[c].drop_nans().drop_nulls().to_numpy()
        y = b[c].drop_nans().drop_nulls().to_numpy()
        if len(x) < 2 or len(y) < 2:
            continue
        # to 10 significant digits: the engines' sums differ in the last bits (docs/kernel.md),
        # and a saturated team's utilisation read 1 - 4e-16 on one and 1.0 on the other, two
        # point masses to the KS test (p = 0.0001 for the same distribution)
        scale = float(np.max(np.abs(np.concatenate([x, y]))))
        digits = 9 - int(np.floor(np.log10(scale))) if scale > 0 else 9
        x, y = np.round(x, digits), np.round(y, digits)
        if np.ptp(np.concatenate([x, y])) == 0:
            continue  # constant on both sides (e.g. a mechanism that is off)
        # under the null hypothesis both engines draw from one distribution, so the pooled
        # variance is the right one: it does not collapse when the small SimPy sample
        # happens to see few of a rare event (a count that is mostly zero)
        pooled = ((len(x) - 1) * x.var(ddof=1) + (len(y) - 1) * y.var(ddof=1)) / (
            len(x) + len(y) - 2)
        se = np.sqrt(pooled * (1 / len(x) + 1 / len(y)))
        z = abs(x.mean() - y.mean()) / se if se > 0 else np.inf
        p = stats.ks_2samp(x, y).pvalue
        if z > z_crit or p < level:
            bad.append(f"{c}: kernel {x.mean():.4g} simpy {y.mean():.4g} z={z:.2f} ks_p={p:.3g}")
    return bad


@pytest.fixture(scope="session")
def compiled():
    """Compile (or load from cache) the kernel once for the session."""
    spec = compile_spec(load_config(profile="ideal", overrides=["run.horizon_days=14"]))
    tallies(spec, 1, 2)
    return True


# ---------------------------------------------------------------- building blocks


# not cached: numba's disk cache does not see a change in the kernel functions it calls
@numba.njit
def _samples(seed, n, which, a, b):
    out = np.empty(n)
    for i in range(n):
        if which == 0:
            out[i] = krng.normal(seed)
        elif which == 1:
            out[i] = krng.gamma(seed, a, b)
        else:
            out[i] = krng.beta(seed, a, b)
    return out


@pytest.mark.parametrize("which, a, b, dist", [
    (0, 0.0, 0.0, stats.norm()),
    (1, 0.5, 2.0, stats.gamma(0.5, scale=2.0)),  # shape < 1: the boosted branch
    (1, 4.4, 1.0, stats.gamma(4.4)),
    (2, 1.6, 4.4, stats.beta(1.6, 4.4)),         # the default inbound lead quality
])
def test_kernel_samplers_follow_their_distributions(which, a, b, dist):
    """The kernel's own samplers (ziggurat normal incl. its tail beyond 3.65, Marsaglia-Tsang
    gamma with its squeeze) against the exact CDF: 400,000 draws, KS at 1e-3 (a sampler off
    by 0.5% anywhere in its CDF is rejected at this size), and the normal's tail mass."""
    state = krng.seed_state(np.random.SeedSequence(2026))
    x = _samples(state, 400_000, which, a, b)
    assert stats.kstest(x, dist.cdf).pvalue > 1e-3
    if which == 0:  # the tail layer: |x| > r has mass 2.58e-4, i.e. ~103 of 400,000 draws
        tail = int((np.abs(x) > 3.6541528853610088).sum())
        assert 60 < tail < 150


@pytest.mark.parametrize("a, b", [(0.001, 0.001), (0.3, 0.05), (0.05, 0.5)])
def test_kernel_beta_with_a_shape_below_one_has_the_mass_of_beta(a, b):
    """Below shape 1 the gamma draws are boosted by U^(1/shape), which underflows to 0: with
    both at 0 the kernel read 0 / 0 as 0.5 (22% of Beta(0.001, 0.001) draws, which lie at 0
    or 1), where NumPy's beta (the SimPy engine's) has no such mass. Draws that round to 0 or
    1 defeat a KS test (NumPy's fail it too), so each of five bins' share is compared with the
    exact one: 200,000 draws, within 5 binomial sd + 0.001."""
    state = krng.seed_state(np.random.SeedSequence(2026))
    n = 200_000
    x = _samples(state, n, 2, a, b)
    edges = np.array([0.0, 0.1, 0.45, 0.55, 0.9, 1.0])
    dist = stats.beta(a, b)
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        want = dist.cdf(hi) - dist.cdf(lo)
        got = ((x >= lo) & (x < hi)).mean() if hi < 1.0 else (x >= lo).mean()
        assert abs(got - want) < 5 * np.sqrt(want * (1 - want) / n) + 1e-3, (lo, hi, got, want)


@numba.njit
def _callee(k, flag):
    return k * 10 + (1 if flag else 0)


@numba.njit
def _calls_with_constants(x):
    return (_callee(plain(3), plain(True)) + _callee(plain(4), plain(False))
            + _callee(plain(x), plain(x > 1)))


def test_plain_makes_one_compiled_copy_for_every_constant():
    """Constants passed through ``view.plain`` reach the callee unchanged and as plain types,
    so it is compiled once (numba compiles a function once per literal constant otherwise:
    ``schedule`` had twelve copies, one per event kind)."""
    assert _calls_with_constants(2) == 31 + 40 + 21
    assert [tuple(str(a) for a in sig) for sig in _callee.signatures] == [("int64", "bool")]


def _element(a, i):
    return a[i]


def _compiled_as(module: str, **flags):
    """``_element`` compiled as a function of `module` (numba names it by its module)."""
    fn = type(_element)(_element.__code__, _element.__globals__, "_element")
    fn.__module__ = module
    return numba.njit(**flags)(fn)


def test_only_the_kernels_indexes_skip_negative_wraparound():
    """The kernel's functions index without Python's negative-index wraparound
    (``view.index_as_is``), so there a negative index is out of bounds (bounds checking
    rejects it); numba code elsewhere keeps Python's indexing, a[-1] the last element."""
    a = np.arange(5.0)
    inside = _compiled_as("gtmsim.engines.kernel.probe", boundscheck=True)
    outside = _compiled_as("tests.probe", boundscheck=True)
    assert inside(a, 3) == outside(a, 3) == 3.0
    assert outside(a, -1) == 4.0
    with pytest.raises(IndexError):
        inside(a, -1)
    assert not compiled_in_kernel("_ZN5tests5probe8_elementB2v1")


_BOUNDS_CHILD = """
import sys
import numpy as np
import numba
from gtmsim.config import load_config
from gtmsim.engines.kernel import tallies
from gtmsim.spec import compile_spec

def probe(a, i):
    return a[i]
probe.__module__ = "gtmsim.engines.kernel.probe"
try:  # bounds checking is on, and catches a negative index in the kernel
    numba.njit(probe)(np.zeros(3), -1)
    sys.exit("bounds checking is off")
except IndexError:
    pass
for path, profile in [(None, "ideal"), (None, "realistic"), (None, "stressed"),
                      ("configs/product_led.toml", None),
                      ("configs/enterprise_partners.toml", None),
                      ("configs/b2b_saas.toml", None)]:
    over = ["run.horizon_days=90", "people.turnover.enabled=true",
            "people.turnover.annual_attrition=3.0", "people.turnover.vacancy_days=5"]
    spec = compile_spec(load_config(path, profile=profile, overrides=over))
    out, _ = tallies(spec, 3, 3, parallel=False)
    assert np.isfinite(out).all(), (path, profile)
print("ok")
"""


@pytest.mark.slow
def test_kernel_never_indexes_out_of_bounds(tmp_path):
    """The whole kernel compiled with numba's bounds checking (a fresh cache) runs the default
    config under every profile and the example configs, with heavy turnover (quits, hires,
    queues handed over): no index is negative or past a table's end, so compiling the kernel
    without wraparound reads nothing it should not."""
    env = {**os.environ, "NUMBA_BOUNDSCHECK": "1", "NUMBA_CACHE_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", _BOUNDS_CHILD], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]


@numba.njit  # not cached, as _samples
def _drawn(seed, n, kind, par, pool, row):
    out = np.empty(n)
    for i in range(n):
        out[i] = krng.sample(seed, kind, par, pool, row)
    return out


@pytest.mark.slow
def test_draw_uses_each_rows_own_gamma_constants():
    """``sample`` (``draw``'s body) takes Marsaglia-Tsang's constants from the packed row
    instead of computing them: on the same stream it gives the samplers' numbers exactly, for
    gamma rows (shape below and above 1) and a beta row whose two shapes differ (columns
    swapped or a row's constants given to another fail)."""
    D = krng.D
    kind = np.array([D.GAMMA, D.BETA, D.GAMMA], dtype=np.int64)
    par = with_gamma_constants(kind, np.array([[0.5, 2.0, 0.0], [1.6, 4.4, 3.0],
                                               [4.4, 1.5, 0.0]]))
    pool = np.zeros(1)
    for row, (which, a, b, scale) in enumerate([(1, 0.5, 2.0, 1.0), (2, 1.6, 4.4, 3.0),
                                                (1, 4.4, 1.5, 1.0)]):
        seq = np.random.SeedSequence(7)
        got = _drawn(krng.seed_state(seq), 2_000, kind, par, pool, row)
        want = _samples(krng.seed_state(seq), 2_000, which, a, b) * scale
        np.testing.assert_array_equal(got, want)


@numba.njit  # not cached, as _samples
def _event_order(st, first, gaps, end):
    """Schedule events at `first`; each popped event i schedules one more at now + gaps[i]
    (0 goes to the same-instant FIFO) while gaps last. Returns the (time, id) pop order and,
    for each pop, whether ``nothing_due_at`` its time said no other event was due then."""
    for i in range(first.shape[0]):
        schedule(st, first[i], 0, i, 0)
    n_ids = first.shape[0]
    times = np.empty(first.shape[0] + gaps.shape[0])
    ids = np.empty(first.shape[0] + gaps.shape[0], dtype=np.int64)
    clear = np.empty(first.shape[0] + gaps.shape[0], dtype=np.bool_)
    n = 0
    while True:
        t, kind, a, b = pop_next(st, end)
        if kind < 0:
            break
        st.now[0] = t
        times[n], ids[n] = t, a
        clear[n] = nothing_due_at(st, t)
        if n < gaps.shape[0]:
            schedule(st, t + gaps[n], 0, n_ids, 0)
            n_ids += 1
        n += 1
    return times[:n], ids[:n], clear[:n]


@pytest.mark.parametrize(("window", "lead_cap"),
                         [(None, None), (24.0, None), (24.0 / 2**10, None), (24.0 * 2**10, 1000)],
                         ids=["model", "day", "short", "one-window"])
@pytest.mark.slow
def test_event_list_pops_in_time_then_schedule_order(window, lead_cap):
    """The event list (a window's sorted run, later windows' lists, a same-instant FIFO) pops
    exactly as one heap by (time, scheduling order) would: checked against Python's heapq on
    3,000 events with ties, zero gaps and gaps of hours to months (crossing many windows,
    some past the end). Windows of the model's own length, of a day (hundreds of events per
    window: merge-sorted runs, long insertions into the run) and of 1.4 minutes (short runs
    sorted by rank), and one window for the whole run on small tables (every event is
    inserted into the run, whose popped front is reused when its table fills). After each
    pop, ``nothing_due_at`` (which lets a START skip the list) agrees with the heap: true
    exactly when no other event is due at that instant."""
    import heapq

    spec = compile_spec(load_config(profile="realistic"))
    ks = pack(spec) if window is None else pack(spec, event_window=window)
    layout = TallyLayout(spec)
    caps = list(capacities(spec))
    caps[0] = lead_cap or caps[0]
    st = new_state(ks, seeds_for(1, np.arange(1))[0], np.zeros(layout.length),
                   layout.offsets, workspace(ks, *caps))
    rng = np.random.default_rng(4)
    first = np.round(rng.uniform(0, 300, 1000), 1)  # rounded: many ties
    gaps = np.where(rng.random(2000) < 0.2, 0.0, np.round(rng.exponential(1, 2000) ** 3 * 20, 1))
    end = float(spec.warmup + spec.horizon)
    got_t, got_id, got_clear = _event_order(st, first, gaps, end)

    heap, seq, want, clear = [], 0, [], []
    for i, t in enumerate(first):
        if t < end:
            heapq.heappush(heap, (t, seq, i))
        seq += 1
    n_ids = len(first)
    while heap:
        t, _, i = heapq.heappop(heap)
        clear.append(not (heap and heap[0][0] <= t))
        if len(want) < len(gaps):
            if t + gaps[len(want)] < end:
                heapq.heappush(heap, (t + gaps[len(want)], seq, n_ids))
            seq += 1
            n_ids += 1
        want.append((t, i))
    assert len(want) > 2500
    assert list(zip(got_t.tolist(), got_id.tolist(), strict=True)) == want
    assert 100 < clear.count(False) < len(clear) - 100  # both answers are exercised
    assert got_clear.tolist() == clear


@numba.njit
def _cells(st, ks, lead, pid):
    """Cells of the tables read through views (as the event loop reads them), and the same
    cells read from the arrays themselves, after filling the tables with their positions."""
    for table in (st.LI, st.PI, st.run_i, st.far_i):
        table.ravel()[:] = np.arange(table.size)
    for table in (st.LF, st.PF):
        table.ravel()[:] = np.arange(table.size)
    v, k = view(st), view(ks)
    seen = (v.LI[lead, 7], v.LF[lead + 1, 3], v.PI[pid, 9], v.PF[pid + 1, 2],
            k.dist_par[2, 1], k.route[1, 2], v.run_i[lead, 3], v.far_i[lead, 4])
    keep(st)
    keep(ks)
    return seen, (st.LI[lead, 7], st.LF[lead + 1, 3], st.PI[pid, 9], st.PF[pid + 1, 2],
                  ks.dist_par[2, 1], ks.route[1, 2], st.run_i[lead, 3], st.far_i[lead, 4])


def _fresh_state(spec):
    """The spec packed for the kernel and a fresh replication state on its own tables."""
    ks = pack(spec)
    layout = TallyLayout(spec)
    st = new_state(ks, seeds_for(1, np.arange(1))[0], np.zeros(layout.length),
                   layout.offsets, workspace(ks, *capacities(spec)))
    return ks, st


def _row_length(name: str):
    """A compiled reader of a struct's table `name`'s row length (the proxies have no
    Python attributes)."""
    scope: dict = {}
    exec(f"def f(x):\n    return x.{name}.shape[1]", scope)
    return numba.njit(scope["f"])


@pytest.mark.slow
def test_tables_have_the_row_lengths_views_assume():
    """Views give the tables named in ``fixed_columns`` with that row length as a constant
    (``view._view_getattr``): the workspace and ``pack`` make them so, and a cell read
    through a view is the array's own (a wrong constant reads another row)."""
    ks, st = _fresh_state(compile_spec(load_config(profile="realistic")))
    for name, columns in StateType.fixed_columns.items():
        assert _row_length(name)(st) == columns, name
    for name, columns in KSpecType.fixed_columns.items():
        assert _row_length(name)(ks) == columns, name
    seen, want = _cells(st, ks, 40, 5)
    assert seen == want


def test_lead_table_is_sized_from_the_weeks_own_rates():
    """The lead table holds the leads the run can make: a one-week campaign at x1000 on a
    ten-year run (1.6 M leads expected, admitted) sized it for its peak rate held for the
    whole run, 528 M leads (92 GB), and the run ended in numba's MemoryError. Now it is the
    expected leads of each week at its own rate (every week the run touches, whole) plus 8
    standard deviations: at least the expected leads, and within 2% of them here."""
    config = load_config(overrides=[
        "run.warmup_days=28", "run.horizon_days=3660", "channels.inbound.rate_per_week=1000",
        'channels.inbound.bursts=[{start_week = 10, weeks = 1, multiplier = 1000}]'])
    spec = compile_spec(config)
    expected = float(spec.expected_leads().sum())
    leads = capacities(spec)[0]
    assert 1.5e6 < expected < 1.7e6
    assert expected + 8 * expected**0.5 <= leads < 1.02 * expected


_OOM_CHILD = """
import resource, sys
from gtmsim.cli import main
from gtmsim.config import load_config
from gtmsim.simulate import simulate
from gtmsim.spec import compile_spec
simulate(compile_spec(load_config(overrides=["run.horizon_days=7"])), 1, 1, engine="numba")
vm = int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize()
resource.setrlimit(resource.RLIMIT_AS, (vm + 300 * 2**20, resource.RLIM_INFINITY))
sys.exit(main(["run", "--out", sys.argv[1], "--replications", "2", "--workers", "2",
               "--set", "run.warmup_days=0", "--set", "run.horizon_days=365",
               "--set", "channels.inbound.rate_per_week=60000"]))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="limits memory by /proc")
def test_tables_that_do_not_fit_in_memory_stop_in_one_line(compiled, tmp_path):
    """A run whose tables (3.3 M leads: 700 MB a thread) do not fit in the memory left (300
    MB more than the warmed-up process holds) ended in numba's MemoryError, which the
    parallel batch raised as a SystemError traceback. It is one line naming the tables now,
    exit 1 (not bad input), and no output folder."""
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-c", _OOM_CHILD, str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 1, done.stderr[-3000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gtmsim: error: the numba engine's tables "
                                                   "do not fit in memory"), done.stderr[-3000:]
    # the sizes it names are the run's own
    spec = compile_spec(load_config(overrides=[
        "run.warmup_days=0", "run.horizon_days=365", "channels.inbound.rate_per_week=60000"]))
    queues = spec.n_teams + int(spec.team_headcount.sum())
    assert f"room for {capacities(spec)[0]:,} leads" in lines[0], lines[0]
    assert f"items in each of {queues} work queues" in lines[0], lines[0]
    assert not out.exists()


@numba.njit
def _round_robin_picks(ks, st, team, inactive, warm, n_picks):
    """`warm` picks with everyone active, then `n_picks` with the slots `inactive` vacant."""
    for slot in range(ks.team_headcount[team]):
        hire(ks, st, team, slot, 0.0, 0, 0.0)
    picks = [assign(ks, st, team, 0.0) for _ in range(warm)]
    for slot in inactive:
        st.PI[st.slot_person[team, slot], P_ACTIVE] = 0
    return np.array(picks + [assign(ks, st, team, 0.0) for _ in range(n_picks)])


def _round_robin_reference(n, inactive, warm, n_picks):
    """Round robin as the SimPy engine words it: from the slot whose turn it is, the first
    active one (by modulo), the turn then passing to the slot after it."""
    rr, picks = 0, []
    for i in range(warm + n_picks):
        active = [k for k in range(n) if i < warm or k not in inactive]
        if not active:
            picks.append(rr)
            continue
        cand = next((rr + k) % n for k in range(n) if (rr + k) % n in active)
        rr = (cand + 1) % n
        picks.append(cand)
    return picks


@pytest.mark.parametrize("inactive", [(), (0,), (5,), (0, 3, 5), (1, 2, 3, 4, 5),
                                      (0, 1, 2, 3, 4, 5)])
@pytest.mark.slow
def test_round_robin_goes_round_the_active_slots(inactive):
    """Round-robin routing gives each active slot in turn, wrapping past the last and
    skipping slots nobody holds (the first, the last, all but one); with nobody active, the
    slot whose turn it is (where the item waits for the next hire). Three picks with everyone
    active first, so the turn does not start at slot 0."""
    spec = compile_spec(load_config())
    team = spec.team_names.index("sdr")
    assert spec.team_routing[team] == ROUND_ROBIN
    n = int(spec.team_headcount[team])
    ks, st = _fresh_state(spec)
    got = _round_robin_picks(ks, st, team, np.array(inactive, dtype=np.int64), 3, 4 * n)
    assert got.tolist() == _round_robin_reference(n, inactive, 3, 4 * n)


@numba.njit
def _pool_takers(ks, st, team, rounds):
    """Rounds in which the team's people begin to wait (in a rotating order, one of them
    leaving the line before its turn) and are then taken from the line one by one."""
    n = ks.team_headcount[team]
    for slot in range(n):
        hire(ks, st, team, slot, 0.0, 0, 0.0)
    joined = np.empty((rounds, n), dtype=np.int64)
    taken = np.full((rounds, n), -1, dtype=np.int64)
    for r in range(rounds):
        for i in range(n):
            pid = st.slot_person[team, (r + i) % n]
            seek(ks, st, pid, 0.0)  # nothing queued: the person waits at the line's end
            joined[r, i] = pid
        st.PI[joined[r, 1], P_STATE] = BUSY  # no longer waiting: the line passes it over
        for i in range(n):
            pid = taker_of(ks, st, team, team)
            taken[r, i] = pid
            if pid >= 0:
                st.PI[pid, P_STATE] = BUSY
    return joined, taken


def test_pool_line_takes_people_in_the_order_they_began_to_wait():
    """A pool's waiting line (a ring: its positions wrap around many times here) gives the
    people waiting in the order they began to wait, passes over anyone no longer waiting,
    and gives -1 once nobody waits."""
    spec = compile_spec(load_config())
    team = spec.team_names.index("marketing")
    assert spec.team_routing[team] == POOL
    ks, st = _fresh_state(spec)
    rounds = 100
    assert rounds * spec.team_headcount[team] > 4 * _row_length("waiting")(st)  # wraps
    joined, taken = _pool_takers(ks, st, team, rounds)
    for r in range(rounds):
        want = [p for k, p in enumerate(joined[r].tolist()) if k != 1]
        assert taken[r].tolist() == want + [-1] * (len(joined[r]) - len(want)), r


@numba.njit
def _run_one_on(ks, st):
    return run_one(view(ks), view(st), np.zeros(1, dtype=np.int64))  # as run_worker calls it


@pytest.mark.parametrize("junk", [(np.nan, 1), (-1e300, 3)])
@pytest.mark.slow
def test_leftovers_in_the_tables_do_not_reach_the_results(compiled, junk):
    """The big tables are allocated empty and reused by a chunk's replications unrestored:
    every slot must be written before it is read. Replications run on tables filled with junk
    (floats and ints that are plausible but wrong) give the numbers of a normal batch."""
    spec = compile_spec(load_config(overrides=SHORT))
    want, layout = tallies(spec, 5, 3, parallel=False)
    ks = pack(spec)
    w = workspace(ks, *capacities(spec))
    for table in w:
        table[...] = junk[0] if table.dtype.kind == "f" else junk[1]
    seeds = seeds_for(5, np.arange(3))
    for i in range(3):
        row = np.zeros(layout.length)
        st = new_state(ks, seeds[i], row, layout.offsets, w)
        assert _run_one_on(ks, st) == 0
        np.testing.assert_array_equal(row, want[i])


def test_calendar_matches_reference():
    rng = np.random.default_rng(0)
    days = np.array([1, 1, 1, 1, 1, 0, 0], dtype=np.int64)
    for _ in range(2000):
        t = rng.uniform(0, 2000)
        w = rng.exponential(20)
        assert kcal.advance(t, w, days, 9.0, 17.0) == cal.advance(t, w, days, 9.0, 17.0)
        assert kcal.next_open(t, days, 9.0, 17.0) == cal.next_open(t, days, 9.0, 17.0)
        b = t + rng.exponential(100)
        assert kcal.working_hours_between(t, b, days, 9.0, 17.0) == pytest.approx(
            cal.working_hours_between(t, b, days, 9.0, 17.0))


def test_numba_engine_through_simulate(compiled):
    spec = compile_spec(load_config(overrides=SHORT))
    res = simulate(spec, 4, seed=3, engine="numba")
    assert res.replications.height == 4
    assert res.replications["replication"].to_list() == [0, 1, 2, 3]
    assert res.weekly.height == 4 * spec.n_weeks
    assert (res.replications["events"] > 1000).all()
    tail = simulate(spec, 2, seed=3, engine="numba", first=2).replications
    assert_frame_equal(tail, res.replications[2:], check_column_order=False)


# ---------------------------------------------------------------- equivalence


@pytest.fixture(scope="module")
def simpy_short():
    """SimPy replications of the default config at a 60-day horizon, per profile (cached)."""
    cache = {}

    def get(profile, overrides=(), n=24, seed=11):
        key = (profile, tuple(overrides), n, seed)
        if key not in cache:
            spec = compile_spec(load_config(profile=profile, overrides=SHORT + list(overrides)))
            cache[key] = (spec, simulate(spec, n, seed=seed, engine="simpy",
                                          workers=2).replications)
        return cache[key]
    return get


def other_outcomes(spec) -> list[str]:
    """The fates, effort and KPI columns beside the main outcomes: a judgement or routing
    difference that moved only these (disqualified for nurtured, say) passed the main ones."""
    return (["lost", "disqualified", "nurtured", "churned", "retained", "opportunities",
             "pipeline_created", "rework_hours", "attempts_per_lead"]
            + [f"kpi_{t}" for t in spec.team_names])


@pytest.mark.parametrize("profile", ["ideal", "realistic", "stressed"])
@pytest.mark.slow
def test_profiles_agree(compiled, simpy_short, profile):
    spec, sp = simpy_short(profile)
    nb = kernel_frame(spec, 5, 400)
    assert set(other_outcomes(spec)) <= set(nb.columns) & set(sp.columns)
    assert differences(nb, sp, main_outcomes(spec)) == []
    assert differences(nb, sp, other_outcomes(spec)) == []


MECHANISMS = ["latency", "speed", "judgement", "interpretation", "forgetting", "errors",
              "handoff_loss", "trust", "turnover", "pressure", "availability", "persistence",
              "compliance"]


@pytest.mark.slow
@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_each_mechanism_agrees(compiled, simpy_short, mechanism):
    """Each mechanism's SimPy sample has its own seed (by its place in the list): with one
    seed for all, the 13 samples shared their lead arrivals, and one sample with few leads
    (2.4 SE short) failed three mechanisms' utilisation at once."""
    seed = 101 + MECHANISMS.index(mechanism)
    spec, sp = simpy_short("ideal", [f"people.{mechanism}.enabled=true"], 24, seed)
    nb = kernel_frame(spec, 5, 300)
    assert differences(nb, sp, main_outcomes(spec)) == []


# Design levers the optimiser and sweeps move, each set away from the config's own value where
# it changes the outcomes (a queue order matters only where a queue forms: three SDRs; quota
# pressure, which the shared KPI damps, is strong under `stressed`), and the other example
# configs. Each entry: (config, profile, overrides shared with the lever's baseline, the
# lever's overrides).
DESIGNS = {
    "pool_routing": (None, "realistic", [], ["teams.sdr.routing='pool'"]),
    "least_loaded_routing": (None, "realistic", ["teams.sdr.headcount=3"],
                             ["teams.sdr.routing='least_loaded'"]),
    "by_skill_routing": (None, "realistic", [], ["teams.sdr.routing='by_skill'",
                                                 "teams.ae.routing='by_skill'"]),
    "score_discipline": (None, "realistic", ["teams.sdr.headcount=3"],
                         ["teams.sdr.discipline='score'"]),
    "newest_discipline": (None, "realistic", ["teams.sdr.headcount=3"],
                          ["teams.sdr.discipline='newest'"]),
    "feedback_loop": (None, "realistic", [], ["design.feedback.enabled=true"]),
    "shared_kpi": (None, "stressed", [], ["design.shared_kpi_share=0.5"]),
    "enablement": (None, "realistic", [], ["design.enablement_hours_per_month=16.0"]),
    "warm_handoffs": (None, "realistic", [], [f"handoffs.{e}.protocol='warm'"
                                             for e in ("mql_to_sdr", "sdr_to_ae", "ae_to_cs")]),
    "few_attempts_short_sla": (None, "realistic", [], ["stages.sdr_qualify.attempts=2",
                                                       "stages.sdr_qualify.sla_hours=1.0"]),
    # the SLA of one edge into a stage others enter too (outbound and partner leads go
    # straight to sdr_qualify and keep its 8 hours); forgetting made common, so that when
    # escalation finds a forgotten MQL (after the SLA) shows in the leads that go cold
    "handoff_sla": (None, "realistic", ["people.forgetting.probability=0.3",
                                        "design.escalation_hours=1.0"],
                    ["handoffs.mql_to_sdr.sla_hours=0.5"]),
    "product_led": ("configs/product_led.toml", "realistic", [], []),
    "enterprise_partners": ("configs/enterprise_partners.toml", "realistic", [], []),
}
# round robin on three SDRs lets a slow SDR's queue run away in some replications (WIP mean 94,
# sd 146, against 30 and 75 least loaded): 32 SimPy replications caught the kernel ignoring
# the lever for one seed in three, 96 for each of three seeds
SIMPY_REPLICATIONS = {"least_loaded_routing": 96}


@pytest.fixture(scope="module")
def simpy_design():
    """Per design: its spec, its lever's baseline spec, 32 SimPy replications (each design
    its own seed; more where SIMPY_REPLICATIONS says) and the outcomes compared: the main
    ones and each team's WIP and time in team, where routing and queue order show first
    (cached)."""
    cache = {}

    def get(design):
        if design not in cache:
            path, profile, common, lever = DESIGNS[design]
            config = str(ROOT / path) if path else None
            spec = compile_spec(load_config(config, profile, SHORT + common + lever))
            base = compile_spec(load_config(config, profile, SHORT + common))
            seed = 201 + list(DESIGNS).index(design)
            n = SIMPY_REPLICATIONS.get(design, 32)
            sp = simulate(spec, n, seed=seed, engine="simpy", workers=2).replications
            cols = main_outcomes(spec) + [f"{m}_{t}" for m in ("wip", "sojourn")
                                          for t in spec.team_names]
            cache[design] = (spec, base, sp, cols)
        return cache[design]
    return get


@pytest.mark.slow
@pytest.mark.parametrize("design", list(DESIGNS))
def test_each_design_agrees(compiled, simpy_design, design):
    """The engines agree for each design: 300 kernel replications against the SimPy sample,
    the same test as the mechanisms' (family-wise 1% per design)."""
    spec, _, sp, cols = simpy_design(design)
    assert differences(kernel_frame(spec, 5, 300), sp, cols) == []


@pytest.mark.slow
@pytest.mark.parametrize("design", [d for d in DESIGNS if DESIGNS[d][3]])
def test_a_lever_missing_from_the_kernel_is_caught(compiled, simpy_design, design):
    """The kernel run on the lever's baseline while SimPy runs the lever: the comparison
    above must see it, or it could not tell a lever the kernel ignores."""
    spec, base, sp, cols = simpy_design(design)
    assert differences(kernel_frame(spec, 5, 300, kspec=pack(base)), sp, cols) != []


@pytest.mark.slow
def test_a_broken_kernel_is_caught(compiled, simpy_short):
    """Forgetting switched off in the kernel's spec only: the comparison must see it."""
    spec, sp = simpy_short("ideal", ["people.forgetting.enabled=true"], 24)
    broken = pack(spec, forget_p=0.0)
    nb = kernel_frame(spec, 5, 300, kspec=broken)
    bad = differences(nb, sp, main_outcomes(spec))
    assert any(b.startswith("leaked_forgotten") for b in bad)


# nurtured leads back soon (to their channel's entry stage: enterprise_partners sets no
# return_stage) and errors common, so that every stage leads come back into sees many
FLOW_BACK = ["nurture.return_after_days.mean=10", "people.errors.probability=0.2",
             "people.errors.caught_share=0.8"]


@pytest.mark.slow
def test_leads_coming_back_into_a_stage_agree(compiled):
    """The flow diagram's per-stage counts of leads entering a stage again: nurture returns,
    rework sent back into the stage that erred, and what the catching stage sent back. The
    same test as the mechanisms' (mean within the Bonferroni z and KS at family-wise 1%),
    300 kernel replications against 64 SimPy ones (about 0.4 s each here): the counts are
    Poisson-like with means of 4 to 35, so the comparison sees a shift of about a third of
    a replication's sd, and a count at the wrong stage or for the wrong leads (a return
    counted where the lead was nurtured, say) moves a mean by far more."""
    path = str(ROOT / "configs/enterprise_partners.toml")
    spec = compile_spec(load_config(path, "realistic", SHORT + FLOW_BACK))
    sp = simulate(spec, 64, seed=301, engine="simpy", workers=2).replications
    nb = kernel_frame(spec, 5, 300)
    cols = [f"{kind}_{s}" for kind in ("nurture_returns", "rework_returns", "rework_sent_back")
            for s in spec.stage_names]
    # nurture returns to three entry stages, rework back to three, caught at two
    for kind, stages in (("nurture_returns", 3), ("rework_returns", 3),
                         ("rework_sent_back", 2)):
        assert sum(sp[f"{kind}_{s}"].mean() > 3 for s in spec.stage_names) == stages, kind
    assert differences(nb, sp, cols + ["nurtured", "rework_hours"]) == []


# leads routed on to a stage by every route the flow diagram draws from routed_ counts: the
# SDRs' unreached and recycled back to MQL review (their rejected to disqualified: the two
# turned-away routes part), the AEs' recycled and lost back to the SDRs and their rejected
# to MQL review (the AEs recycle some: by default they reject every lead they turn away)
ROUTED_ON = ["stages.sdr_qualify.routes.unreached=mql_review",
             "stages.sdr_qualify.routes.recycled=mql_review",
             "stages.ae_close.routes.recycled=sdr_qualify",
             "stages.ae_close.routes.rejected=mql_review",
             "stages.ae_close.routes.lost=sdr_qualify", "stages.ae_close.reject_below=0.2"]


@pytest.mark.slow
def test_leads_routed_on_to_a_stage_agree(compiled):
    """The flow diagram's per-stage counts of leads routed on to a stage recycled, rejected,
    unreached or lost, each counted as the stage it goes to takes it. The same test as the
    mechanisms' (mean within the Bonferroni z and KS at family-wise 1%), 300 kernel
    replications against 32 SimPy ones (about 3 s each here): the counts have means of
    about 35 to 580, so a count at the wrong stage or for the wrong route moves a mean by far
    more than the comparison misses. With them the outcomes the routes feed: the decisions
    of MQL review and the SDRs (leads back from the SDRs and AEs), and the won and nurtured
    (every lost deal goes back to the SDRs: none is lost)."""
    spec = compile_spec(load_config(profile="realistic", overrides=SHORT + ROUTED_ON))
    sp = simulate(spec, 32, seed=302, engine="simpy", workers=2).replications
    nb = kernel_frame(spec, 5, 300)
    cols = [f"routed_{c}" for c in ("recycled_sdr_qualify", "unreached_sdr_qualify",
                                    "recycled_ae_close", "rejected_ae_close", "lost_ae_close")]
    assert sorted(c for c in sp.columns if c.startswith("routed_")) == sorted(cols)
    assert all(sp[c].mean() > 3 for c in cols), sp.select(cols).mean()
    assert (sp["lost"] == 0).all()
    assert differences(nb, sp, cols + ["decisions_mql_review", "decisions_sdr_qualify",
                                       "won", "nurtured"]) == []


# ---------------------------------------------------------------- determinism


def test_same_seed_same_numbers_on_1_and_2_threads(compiled):
    spec = compile_spec(load_config(profile="realistic", overrides=SHORT))
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = simulate(spec, 6, seed=21, engine="numba")
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = simulate(spec, 6, seed=21, engine="numba")
    finally:
        numba.set_num_threads(before)
    assert_frame_equal(one.replications, two.replications)
    assert_frame_equal(one.weekly, two.weekly)


@numba.njit(parallel=True)
def _take_all(n, workers, taken, hits):
    for _ in numba.prange(workers):
        while True:
            i = take_next(taken)
            if i >= n:
                break
            hits[i] += 1


def test_workers_take_every_replication_once():
    """The batch's workers share one counter: 2 threads racing for 200,000 numbers each get
    numbers of their own, every number once (a counter read and written back in two steps
    hands some numbers out twice and skips none, which the hit counts show)."""
    n = 200_000
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        taken, hits = np.zeros(1, dtype=np.int64), np.zeros(n, dtype=np.int64)
        _take_all(n, 2, taken, hits)
    finally:
        numba.set_num_threads(before)
    assert (hits == 1).all(), np.flatnonzero(hits != 1)[:10]
    assert taken[0] == n + 2  # and each worker asked once more, to find nothing left


def test_a_batch_is_the_same_whoever_runs_which_replication(compiled):
    """Workers take replications in whatever order the threads reach the counter: the
    rows are the same run serially, on 2 workers, and for a replication run alone."""
    spec = compile_spec(load_config(profile="stressed", overrides=SHORT))
    serial, _ = tallies(spec, 5, 7, parallel=False)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two, _ = tallies(spec, 5, 7)
        one_rep, _ = tallies(spec, 5, 1, first=3)
    finally:
        numba.set_num_threads(before)
    assert np.array_equal(serial, two)
    assert np.array_equal(serial[3:4], one_rep)
    assert (serial[:, len(O.FATES) + O.SCALARS.index("events")] > 0).all()


_CHILD = """
import sys
from gtmsim.config import load_config
from gtmsim.simulate import simulate
from gtmsim.spec import compile_spec
spec = compile_spec(load_config(profile="realistic", overrides=sys.argv[2:]))
simulate(spec, 4, seed=21, engine="numba").replications.write_parquet(sys.argv[1])
"""


@pytest.mark.slow
def test_same_numbers_across_processes(compiled, tmp_path):
    paths = [tmp_path / "a.parquet", tmp_path / "b.parquet"]
    for p in paths:
        subprocess.run([sys.executable, "-c", _CHILD, str(p), *SHORT], check=True,
                       env={**os.environ}, timeout=600)
    a, b = (pl.read_parquet(p) for p in paths)
    assert_frame_equal(a, b)
    spec = compile_spec(load_config(profile="realistic", overrides=SHORT))
    here = simulate(spec, 4, seed=21, engine="numba").replications
    assert_frame_equal(here, a)


_LOADS_ONLY = """
from numba.core import event
from gtmsim.config import load_config
from gtmsim.engines.kernel import tallies
from gtmsim.spec import compile_spec
spec = compile_spec(load_config(profile="ideal", overrides=["run.horizon_days=14"]))
with event.install_recorder("numba:compile") as rec:
    tallies(spec, 1, 2)
print(sorted({e.data["dispatcher"].py_func.__qualname__ for _, e in rec.buffer if e.is_start}))
"""


def test_a_second_process_compiles_nothing(compiled):
    """With the kernel cached (the fixture), a new process loads every compiled function from
    disk: numba's own constructor of the packed spec compiled afresh in each (3-4 s of every
    run, Dask worker and optimiser worker)."""
    res = subprocess.run([sys.executable, "-c", _LOADS_ONLY], capture_output=True, text=True,
                         timeout=600, check=True)
    assert res.stdout.strip() == "[]", res.stdout


SHIFT, SHIFT_Z = 0.02, 3.4  # a 2% shift of mean bookings sits 3.4 SE out: caught w.p. 80%
# The shift each profile's comparison has that power for in the default run. At 2% for all
# three it needs about 130, 580 and 1,300 SimPy replications of the full default horizon:
# 35-45 minutes on 2 cores, half of CI's 90. By default realistic and stressed catch a 4% and a
# 5% shift (130 and 215 SimPy replications, about 8 minutes in all); GTMSIM_BOOKINGS_SHIFT=0.02
# runs every profile at 2%.
SHIFTS = {"ideal": 0.02, "realistic": 0.04, "stressed": 0.05}
SHIFT_ASKED = os.environ.get("GTMSIM_BOOKINGS_SHIFT")
# A SimPy replication of the default config costs about as much as 100 kernel ones (2 cores
# each way); for a given standard error of the difference, n_s c_s + n_k c_k is least at
# n_k / n_s = sqrt(c_s / c_k) = 10: 16% less time than 4,000 kernel replications against
# however many SimPy ones that then takes (stressed at 2%: 1,670 SimPy replications; 1,300).
KERNEL_PER_SIMPY, PILOT = 10, 4000


def replications_for_power(cv: float, shift: float = SHIFT) -> tuple[int, int]:
    """SimPy and kernel replications that give the difference of the engines' mean bookings a
    standard error of shift / SHIFT_Z of the mean (bookings' coefficient of variation `cv`) at
    the least cost: about KERNEL_PER_SIMPY kernel replications per SimPy one, never fewer
    kernel ones than the PILOT that measured `cv`."""
    room = (shift / (SHIFT_Z * cv)) ** 2  # 1/n_s + 1/n_k may not exceed this
    kernel_n = max(PILOT, int(np.ceil(KERNEL_PER_SIMPY * (1 + 1 / KERNEL_PER_SIMPY) / room)))
    return int(np.ceil(1 / (room - 1 / kernel_n))), kernel_n


@pytest.mark.parametrize("shift", [SHIFT, 0.05])
def test_replications_for_power_meet_the_standard_error_at_the_least_cost(shift):
    """Each pair gives the standard error asked, and one SimPy replication fewer would not;
    it never costs more than the pilot's 4,000 kernel replications against SimPy alone, and
    for stressed bookings at 2% (CV 21%: 1,871 SimPy replications beside the pilot) it costs
    15% less with about ten kernel replications per SimPy one; a low CV keeps the pilot's
    sample."""
    target = shift / SHIFT_Z
    saving = {}
    for cv in (0.065, 0.135, 0.21):
        n_s, n_k = replications_for_power(cv, shift)
        se = cv * np.sqrt(1 / n_s + 1 / n_k)
        assert se <= target and cv * np.sqrt(1 / (n_s - 1) + 1 / n_k) > target
        pilot_only = int(np.ceil(1 / ((target / cv) ** 2 - 1 / PILOT)))  # SimPy's share
        cost, before = n_s * 100 + n_k, pilot_only * 100 + PILOT  # in kernel replications
        assert cost <= before
        saving[cv] = 1 - cost / before
    assert replications_for_power(0.065, shift)[1] == PILOT
    if shift == SHIFT:
        n_s, n_k = replications_for_power(0.21)
        assert 9 <= n_k / n_s <= 11 and saving[0.21] > 0.15
    else:  # a wide shift needs few SimPy replications: the pilot's kernel ones are plenty
        assert replications_for_power(0.21, shift)[1] == PILOT


@pytest.mark.slow
@pytest.mark.parametrize("profile", ["ideal", "realistic", "stressed"])
def test_bookings_agree_tightly(compiled, profile):
    """Full default horizon: mean bookings of the two engines agree within the 99% CI, and KS
    does not reject at 1%, with power to see a shift of SHIFTS[profile] (2% with
    GTMSIM_BOOKINGS_SHIFT=0.02). The samples are sized from the coefficient of variation of
    bookings, measured on a pilot of 4,000 kernel replications (about 6.5% under ideal, 13.5%
    under realistic, 20-21.5% under stressed), with about ten kernel replications per SimPy one
    (never fewer than the pilot's), so the shift sits 3.4 standard errors out: caught with 80%
    probability at the 1% level. The slowest test in the suite (2 cores, 2026-12-04: a SimPy
    replication of the default horizon takes about 1 s), and the one that can see a small
    bias of one engine."""
    shift = float(SHIFT_ASKED) if SHIFT_ASKED is not None else SHIFTS[profile]
    assert 0 < shift <= 0.05, f"GTMSIM_BOOKINGS_SHIFT={SHIFT_ASKED}: a share, at most 0.05"
    spec = compile_spec(load_config(profile=profile))
    nb = simulate(spec, PILOT, seed=78, engine="numba").replications
    x = nb["bookings"].to_numpy()
    n, kernel_n = replications_for_power(x.std(ddof=1) / x.mean(), shift)
    if kernel_n > PILOT:  # the pilot's replications are the first of the sample
        more = simulate(spec, kernel_n - PILOT, seed=78, engine="numba", first=PILOT)
        x = np.concatenate([x, more.replications["bookings"].to_numpy()])
    sp = simulate(spec, n, seed=77, engine="simpy", workers=2).replications
    y = sp["bookings"].to_numpy()
    se = np.sqrt(x.var(ddof=1) / len(x) + y.var(ddof=1) / len(y))
    print(f"{profile}: {n} SimPy vs {len(x)} kernel replications, bookings {y.mean():,.0f} vs "
          f"{x.mean():,.0f}, SE {se / y.mean():.2%} of the mean (power for a {shift:.0%} shift)")
    assert se / y.mean() < shift / SHIFT_Z * 1.1  # the power claimed (SimPy's CV may differ)
    z = abs(x.mean() - y.mean()) / se
    assert z < stats.norm.ppf(1 - ALPHA / 2), (x.mean(), y.mean(), z)
    assert stats.ks_2samp(x, y).pvalue > ALPHA


_ENDLESS_CHILD = """
import os, signal, sys, threading, time
from gtmsim.config import load_config
from gtmsim.engines.kernel import tallies
from gtmsim.spec import compile_spec

class Terminated(Exception):
    pass

def terminated(signum, frame):
    raise Terminated

signal.signal(signal.SIGTERM, terminated)
# Python's own Ctrl-C handler, even where the tests run with SIGINT ignored (a shell's
# background job, `.ci/run &`, whose children Python then leaves ignoring it)
signal.signal(signal.SIGINT, signal.default_int_handler)
which = getattr(signal, sys.argv[1])
# a lead below the MQL bar is back at it a moment later, for ever: a replication of hours
spec = compile_spec(load_config(profile="ideal", overrides=[
    'stages.mql_review.effort_hours={dist="fixed", value=0.0}',
    'stages.mql_review.routes={qualified="sdr_qualify", recycled="nurture", '
    'rejected="nurture"}', "nurture.return_probability=1",
    'nurture.return_after_days={dist="fixed", value=1e-9}']))
sent = []

def send():
    begun = time.monotonic()  # once the batch has run a while (or, if none is seen, at 20 s)
    while time.monotonic() - begun < 20 and not any(
            t.name == "gtmsim-batch" for t in threading.enumerate()):
        time.sleep(0.01)
    time.sleep(0.5)
    sent.append(time.monotonic())
    os.kill(os.getpid(), which)

threading.Thread(target=send, daemon=True).start()
try:
    tallies(spec, 1, 2, parallel=sys.argv[2] == "parallel")
except (KeyboardInterrupt, Terminated):
    print(f"stopped {time.monotonic() - sent[0]:.3f}")
"""


@pytest.mark.parametrize("signum", ["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("batch", ["parallel", "serial"])
def test_a_replication_that_would_run_for_hours_stops_at_a_signal(compiled, signum, batch):
    """The kernel did not look for Ctrl-C or SIGTERM: between batches only, so a replication
    that runs for hours (a nurture loop of 1e-9 days a round, valid and endless) could only
    be killed. The batch runs off the main thread, which waits where signals land, and the
    event loop looks at a stop flag every STOP_EVERY events. 5 s is ample for a flag read
    every few milliseconds and a Python exception; the old kernel ran on (the timeout)."""
    done = subprocess.run([sys.executable, "-c", _ENDLESS_CHILD, signum, batch], cwd=ROOT,
                          capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr[-3000:]
    word, seconds = done.stdout.split()
    assert word == "stopped" and float(seconds) < 5.0, done.stdout


def test_batches_share_one_batch_thread_and_a_forked_child_starts_its_own(compiled):
    """A thread per batch made OpenMP build a thread pool per batch (4-5 ms, a fifth of an
    optimiser's small batch): one thread serves every batch of a process. A forked child has
    only the thread that forked, so it starts one of its own rather than wait on the
    parent's queue for ever."""
    import threading

    spec = compile_spec(load_config(profile="ideal", overrides=["run.horizon_days=14"]))
    tallies(spec, 1, 2)
    first = [t.ident for t in threading.enumerate() if t.name == "gtmsim-batch"]
    tallies(spec, 1, 2, first=2)
    assert [t.ident for t in threading.enumerate() if t.name == "gtmsim-batch"] == first
    assert len(first) == 1
    pid = os.fork()
    if pid == 0:  # the child: a serial batch (OpenMP's pool is not the child's to use)
        try:
            out, _ = tallies(spec, 1, 1, parallel=False)
            os._exit(0 if out.shape[0] == 1 else 1)
        except BaseException:  # noqa: BLE001
            os._exit(2)
    done = 0
    for _ in range(600):  # a child waiting on the parent's queue would never end
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.1)
    if not done:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    assert done and os.waitstatus_to_exitcode(status) == 0


def test_a_batch_stopped_without_a_signal_is_an_error_not_rows_of_zeros(compiled, monkeypatch):
    """The stop flag is set only while a signal's exception goes on, so a batch never comes
    back stopped; were one to, the rows of replications no worker took would read as
    finished rows of zeros (status 0), averaged into the results. The batch says it stopped
    instead."""
    import gtmsim.engines.kernel as kernel

    def stopped_at_once(fn, args):
        args[-1][0] = 1
        fn(*args)

    monkeypatch.setattr(kernel, "run_stoppable", stopped_at_once)
    spec = compile_spec(load_config(profile="ideal", overrides=["run.horizon_days=14"]))
    with pytest.raises(RuntimeError, match="stopped without a signal"):
        tallies(spec, 1, 3)
