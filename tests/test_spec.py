"""Config -> spec: flat numbers, mechanisms folded to neutral values when off."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from gtmsim import distributions as D
from gtmsim.config import load_config
from gtmsim.errors import ConfigError
from gtmsim.spec import NO_ROUTE, compile_spec, measured_weeks


def test_ideal_spec_is_neutral():
    s = compile_spec(load_config(profile="ideal"))
    assert s.latency_median == 0 and s.noise_sd == 0 and s.forget_p == 0
    assert s.availability_mean == pytest.approx(1.0 - 4.0 / (8 * 5 * 52 / 12))  # enablement
    assert s.compliance_p == 1.0 and s.trust_initial == 1.0 and s.attrition_rate == 0


def test_routes_and_edges():
    s = compile_spec(load_config())
    names = list(s.stage_names)
    mql, sdr = names.index("mql_review"), names.index("sdr_qualify")
    assert s.route[mql, 0] == sdr
    assert s.edge_of[mql, sdr] >= 0
    assert s.edge_names[s.edge_of[mql, sdr]] == "mql_review->sdr_qualify"
    # a review stage has no buyer outcomes
    assert s.route[mql, 4] == NO_ROUTE


def test_scenario_overrides_uncertain_values():
    c = load_config()
    assert compile_spec(c, {"people.forgetting.probability": 0.07}).forget_p == 0.07


def test_a_scenario_that_is_not_a_mapping_is_named():
    """A Scenario itself (not its .values) or a list: named, not an AttributeError."""
    from gtmsim.optimize import Scenario

    c = load_config()
    for bad in (Scenario(0, {"people.forgetting.probability": 0.07}, 1), [0.07]):
        with pytest.raises(TypeError, match="scenario: expected a mapping"):
            compile_spec(c, bad)


def test_nan_in_spec_is_caught():
    s = compile_spec(load_config())
    bad = dataclasses.replace(s, stage_threshold=np.array([np.nan] * s.n_stages))
    with pytest.raises(ConfigError, match="stage_threshold"):
        bad.check()
    with pytest.raises(ConfigError, match="forget_p"):
        dataclasses.replace(s, forget_p=1.5).check()


@pytest.mark.parametrize("change", [
    {"latency_median": -1.0}, {"channel_rate": np.array([-1.0, 1.0, 1.0, 1.0])},
    {"horizon": 0.0}, {"team_headcount": np.array([-1, 6, 6, 3])}])
def test_a_negative_time_rate_or_count_in_a_spec_is_caught(change):
    """A spec edited by hand to a negative latency ran on both engines with no word, a
    negative arrival rate ran with no leads on SimPy and a horizon of 0 stopped numba with
    'math domain error': each is refused, naming the field."""
    s = compile_spec(load_config())
    with pytest.raises(ConfigError, match=f"spec.{next(iter(change))}"):
        dataclasses.replace(s, **change).check()


def test_a_burst_counts_its_weeks_from_the_start_of_the_counted_window():
    """A campaign in week 2 lands in the third counted week whatever the warm-up (it used to
    count from the start of the run: the example configs' campaigns fell in their warm-ups
    and no result saw them), and the counted inbound leads grow by the burst's extra leads."""
    from gtmsim.simulate import simulate

    window = ["run.horizon_days=42", "run.warmup_days=91", "people.latency.enabled=false"]
    burst = ["channels.inbound.bursts=[{start_week=2, weeks=1, multiplier=3.0}]"]
    spec = compile_spec(load_config(None, "ideal", window + burst))
    inbound = spec.channel_names.index("inbound")
    mult = spec.channel_week_mult[inbound]
    assert mult[13 + 2] == 3.0  # 91 days of warm-up are 13 weeks
    assert np.count_nonzero(mult != 1.0) == 1
    plain = compile_spec(load_config(None, "ideal", window + ["channels.inbound.bursts=[]"]))
    n = 200
    extra = (simulate(spec, n, seed=1, engine="numba").replications["leads_inbound"].mean()
             - simulate(plain, n, seed=1, engine="numba").replications["leads_inbound"].mean())
    # two more weeks' worth of 150 inbound leads; a replication's count has sd ~30, so the
    # difference of two means of 200 has sd ~3: 15% (45 leads) is > 10 sd
    assert extra == pytest.approx(2 * 150, rel=0.15)


@pytest.mark.parametrize("key", ["people.errors.caught_share", "people.latency.sigma",
                                 "people.turnover.ramp_start", "people.latency.enabled"])
def test_a_scenario_may_set_only_what_a_config_may_give_as_uncertain(key):
    """A value no config can give as {value, range} is compiled as the config gives it: a
    scenario setting it is refused (it used to be accepted and ignored, so a scenario with
    every error caught ran with the config's caught share, silently)."""
    with pytest.raises(ConfigError, match=f"scenario: {key} cannot be uncertain"):
        compile_spec(load_config(), {key: 0.5})


def test_a_config_changed_in_place_is_validated_again():
    """A list changed in place skips assignment's checks: compile_spec validates the whole
    config again. A negative week in the pattern used to run (SimPy made no leads that week,
    numba stopped with 'math domain error'), and no working day a ZeroDivisionError."""
    c = load_config()
    c.channels["inbound"].weekly_pattern.append(-1.0)
    with pytest.raises(ConfigError, match=r"channels\.inbound\.weekly_pattern\.\d+: must be >= 0"):
        compile_spec(c)
    c = load_config()
    c.calendar.work_days.clear()
    with pytest.raises(ConfigError, match="calendar.work_days"):
        compile_spec(c)


def test_a_scenario_value_may_be_a_numpy_number():
    """A scenario built with NumPy (np.int64(30) days, np.float32) is read as its number; it
    was refused as "expected a finite number, got np.int64(30)". A boolean is still no number."""
    c = load_config()
    s = compile_spec(c, {"people.turnover.vacancy_days": np.int64(30),
                         "people.forgetting.probability": np.float32(0.05)})
    assert s.vacancy_hours == 30 * 24 and s.forget_p == pytest.approx(0.05)
    with pytest.raises(ConfigError, match="expected a finite number, got np.True_"):
        compile_spec(c, {"people.forgetting.probability": np.bool_(True)})


def test_a_channel_too_large_to_simulate_is_refused_naming_it():
    """Each value within its bounds, a rate, a weekly pattern and a burst multiplied to 10^12
    leads a replication: the numba kernel ended in MemoryError under a SystemError traceback.
    The spec refuses more than MAX_LEADS expected leads, naming the largest channel; the
    expectation is the leads the default config makes (its counted window is part of it)."""
    from gtmsim.simulate import simulate
    from gtmsim.spec import MAX_LEADS

    base = compile_spec(load_config())
    made = simulate(base, replications=4, seed=1, engine="numba").replications[
        "leads_created"].mean()
    share = base.horizon / (base.warmup + base.horizon)
    assert made == pytest.approx(base.expected_leads().sum() * share, rel=0.1)
    with pytest.raises(ConfigError) as info:
        compile_spec(load_config(overrides=[
            "channels.outbound.rate_per_week=1000000", "channels.outbound.weekly_pattern=[1000]",
            "channels.outbound.bursts=[{start_week=0,weeks=1,multiplier=1000}]"]))
    assert info.value.path == "channels.outbound.rate_per_week"
    assert "about 1.0" in str(info.value) and "e+12 leads a replication" in str(info.value)
    near = MAX_LEADS / base.expected_leads().sum() * 0.9
    rate = load_config().channels["inbound"].rate_per_week
    compile_spec(load_config(overrides=[f"channels.inbound.rate_per_week={rate * near:.0f}"]))


def test_expected_leads_count_a_last_part_week_by_its_working_hours():
    """Every default channel sends leads in working time only, which comes first in a week:
    a run that ends on Friday evening has had its last week's working hours (the kernel made
    298 leads a replication in five days where 213 were expected, so a config expecting 14
    million could pass the 10 million limit), one that ends on Monday at 9 none (16 expected, 0
    made: a config that makes no lead could be refused)."""
    def expected(horizon_days: float) -> float:
        c = load_config(overrides=["run.warmup_days=0", f"run.horizon_days={horizon_days}"])
        return float(compile_spec(c).expected_leads().sum())

    week = sum(ch.rate_per_week for ch in load_config().channels.values())
    assert expected(5) == pytest.approx(week)  # Monday to Friday: all of a week's work
    assert expected(7) == pytest.approx(week)
    assert expected(0.375) == 0.0  # Monday 00:00 to 09:00: no working hour
    assert expected(1) == pytest.approx(week / 5)  # Monday's eight of forty hours
    assert expected(9) == pytest.approx(week * 7 / 5)  # a week, then Monday and Tuesday


@pytest.mark.parametrize("override, path", [
    ("stages.ae_close.buyer_days={dist='fixed', value=1e308}", "stages.ae_close.buyer_days"),
    ("nurture.return_after_days={dist='exponential', mean=1e308}",
     "nurture.return_after_days"),
    ("nurture.return_after_days={dist='empirical', values=[1, 1e308]}",
     "nurture.return_after_days"),
    ("stages.cs_onboard.renewal_days=1e308", "stages.cs_onboard.renewal_days"),
    ("channels.inbound.intent_half_life_hours=1.7e308", "channels.inbound.intent_half_life_hours"),
])
def test_days_too_large_for_hours_are_named_in_one_line(override, path):
    """A value within its bounds (none above) that overflows to infinity in hours (or as
    the intent's decay time, half-life / ln 2): it was 'spec.dist_par: not a finite number:
    array([[...' over 14 lines, naming no key (found by fuzzing configs/*.toml)."""
    with pytest.raises(ConfigError) as info:
        compile_spec(load_config(overrides=[override]))
    assert info.value.path == path, info.value
    assert "\n" not in str(info.value) and "too large" in info.value.message


@pytest.mark.parametrize("engine", ["numba", "simpy"])
def test_a_horizon_too_short_to_divide_into_weeks_is_one_part_week(engine):
    """run.horizon_days takes any number above 0, but 5e-324 days is 1.2e-322 hours, which
    divided by 168 rounds to 0: the spec had 0 measured weeks and both engines stopped with an
    IndexError (weekly_rows, the recorder). A horizon above 0 is one part week."""
    from gtmsim.simulate import simulate

    spec = compile_spec(load_config(None, "realistic", ["run.horizon_days=5e-324",
                                                         "run.warmup_days=0"]))
    assert spec.horizon > 0 and spec.n_weeks == 1
    res = simulate(spec, 1, 1, engine=engine, workers=1)
    assert res.weekly["week"].to_list() == [0]
    assert res.replications["leads_created"][0] == 0


def _row(kind: int, par: tuple[float, float, float]):
    """A change to the spec's distribution table: stage 1's effort row set to (kind, par)."""
    def change(s):
        row = int(s.stage_effort[1])
        kinds, pars = s.dist_kind.copy(), s.dist_par.copy()
        kinds[row], pars[row] = kind, par
        return {"dist_kind": kinds, "dist_par": pars}
    return change


@pytest.mark.parametrize(("change", "where"), [
    # an empirical row past the pool's end: numba read outside the array (a segmentation fault)
    (_row(D.EMPIRICAL, (1e6, 5.0, 0.0)), "spec.dist_par"),
    (_row(D.EMPIRICAL, (0.0, 0.0, 0.0)), "spec.dist_par"),  # no values to resample
    # a row fewer than the kinds: numba read past the table's end (bookings of 1.27 M
    # against 0.1 M, with no error)
    (lambda s: {"dist_par": s.dist_par[:-1]}, "spec.dist_par"),
    (lambda s: {"dist_par": s.dist_par[:, :2]}, "spec.dist_par"),  # numpy's ValueError
    # impossible parameters ran silently on numba (SimPy: numpy's ValueError)
    (_row(D.GAMMA, (-1.0, 1.0, 0.0)), "spec.dist_par"),
    (_row(D.BETA, (-1.0, 1.0, 1.0)), "spec.dist_par"),
    (_row(D.TRIANGULAR, (5.0, 1.0, 2.0)), "spec.dist_par"),
    (_row(D.EXPONENTIAL, (-5.0, 0.0, 0.0)), "spec.dist_par"),
    (_row(D.LOGNORMAL, (0.0, -1.0, 0.0)), "spec.dist_par"),
    # a negative effort ran time backwards, as the loader refuses it in a config
    (_row(D.FIXED, (-5.0, 0.0, 0.0)), "spec.dist_par"),
    (_row(D.UNIFORM, (-5.0, -1.0, 0.0)), "spec.dist_par"),
], ids=["empirical-past-pool", "empirical-empty", "fewer-rows", "two-columns", "gamma",
        "beta", "triangular", "exponential", "lognormal", "negative-fixed", "negative-uniform"])
def test_an_impossible_distribution_row_in_a_spec_is_caught(change, where):
    """simulate promises nothing impossible reaches an engine from a spec edited by hand; the
    distribution table was not checked beyond its numbers being finite."""
    s = compile_spec(load_config(overrides=["run.horizon_days=30", "run.warmup_days=7"]))
    with pytest.raises(ConfigError, match=where):
        dataclasses.replace(s, **change(s)).check()


def test_a_quality_row_may_reach_below_zero_as_in_a_config():
    """A lead's quality is a chance, cut to [0, 1]: the loader lets it be drawn past it."""
    config = load_config(overrides=[
        'channels.inbound.quality={dist = "uniform", low = -0.2, high = 0.9}'])
    compile_spec(config).check()


@pytest.mark.parametrize("change", [
    {"stage_contact_p": 2.0}, {"stage_threshold": 3.0}, {"stage_churn_base": 1.5},
    {"nurture_return_p": 5.0}, {"shared_kpi_share": 5.0}, {"error_win_penalty": 5.0},
    {"ramp_start": 5.0}, {"pressure_corner_cut": 2.0}, {"stage_attempts": 0},
], ids=lambda c: next(iter(c)))
def test_a_chance_above_one_or_no_attempts_in_a_spec_is_caught(change):
    """A contact probability of 2 or a threshold of 3 (a share, [0, 1] in a config), or no
    contact attempts, in a spec edited by hand ran on both engines with no word (bookings of
    0 for a threshold of 3)."""
    s = compile_spec(load_config(overrides=["run.horizon_days=30", "run.warmup_days=7"]))
    name, value = next(iter(change.items()))
    old = getattr(s, name)
    new = np.full_like(old, value) if isinstance(old, np.ndarray) else value
    with pytest.raises(ConfigError, match=f"spec.{name}"):
        dataclasses.replace(s, **{name: new}).check()


@pytest.mark.parametrize(("name", "make"), [
    ("team_headcount", lambda v: v + 0.5),  # 6.5 people ran as 6, no word
    ("stage_attempts", lambda v: v + 0.5),  # 1.5 attempts ran as 1
    ("nurture_return_stage", lambda v: 0.5),  # stage 0.5 ran as stage 0
    ("stage_team", lambda v: v.astype(float)),  # numpy's IndexError
    ("route", lambda v: v.astype(float)),  # 'must not be negative' of the fates' codes
    ("team_headcount", lambda v: list(v)),  # TypeError: '<' between a list and an int
], ids=["headcount", "attempts", "nurture-stage", "stage-team", "route", "list"])
def test_a_count_or_index_that_is_not_whole_in_a_spec_is_caught(name, make):
    """Counts and indices of a spec edited by hand must be whole numbers in integer arrays:
    a fractional one was cut without a word, a float or list array failed in numpy."""
    s = compile_spec(load_config(overrides=["run.horizon_days=30", "run.warmup_days=7"]))
    with pytest.raises(ConfigError, match=f"spec.{name}: expected"):
        dataclasses.replace(s, **{name: make(getattr(s, name))}).check()


def test_people_and_channel_times_compile_to_hours_as_documented():
    """Days and weeks in a config become hours, a half-life a decay time (half-life / ln 2),
    and enablement cuts judgement noise and ramp-up by exp(-hours / 16): a dropped or
    swapped conversion here changes every run without any check failing."""
    import math

    from gtmsim.config.schema import central

    c = load_config(profile="realistic",
                    overrides=["design.enablement_hours_per_month=8",
                               "channels.inbound.weekly_pattern=[1.0, 2.0, 3.0]"])
    s = compile_spec(c)
    p = c.people
    learn = math.exp(-8 / 16)
    assert s.pressure_window == pytest.approx(p.pressure.window_weeks * 168.0)
    assert s.vacancy_hours == pytest.approx(central(p.turnover.vacancy_days) * 24.0)
    assert s.ramp_hours == pytest.approx(central(p.turnover.ramp_days) * 24.0
                                         * (0.5 + 0.5 * learn))
    assert s.noise_sd == pytest.approx(central(p.judgement.noise_sd) * learn)
    assert s.attrition_rate == pytest.approx(central(p.turnover.annual_attrition) / 8760.0)
    assert s.channel_intent_tau == pytest.approx(
        [ch.intent_half_life_hours / math.log(2) for ch in c.channels.values()])
    assert s.n_weeks == 26  # the default 182 days: 26 whole weeks
    assert measured_weeks(960.0) == 6 and measured_weeks(1.0) == 1  # a last part week counts
    inbound = s.channel_names.index("inbound")
    assert s.channel_week_mult[inbound, :6] == pytest.approx([1, 2, 3, 1, 2, 3])


def test_a_handoffs_sla_is_its_edges_and_the_receiving_stages_is_the_default():
    """DESIGN: each handoff edge has a protocol and an SLA. An edge without one keeps the
    receiving stage's (inf: none)."""
    spec = compile_spec(load_config(None, None, ["handoffs.sdr_to_ae.sla_hours=4.0"]))
    sla = dict(zip(spec.edge_names, spec.edge_sla, strict=True))
    stage = dict(zip(spec.stage_names, spec.stage_sla, strict=True))
    assert sla["sdr_qualify->ae_close"] == 4.0 and stage["ae_close"] == 16.0
    assert sla["mql_review->sdr_qualify"] == stage["sdr_qualify"] == 8.0
    assert sla["ae_close->cs_onboard"] == np.inf
    spec.check()
    with pytest.raises(ConfigError, match=r"handoffs\.sdr_to_ae\.sla_hours"):
        load_config(None, None, ["handoffs.sdr_to_ae.sla_hours=0.0"])
