"""Config loading: profiles, --set, clear one-line errors, and no crash on any input."""

from __future__ import annotations

import copy
import math
import os
from pathlib import Path

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gtmsim.config import MECHANISMS, load_config, read_toml, resolve, validate
from gtmsim.config.loader import parse_override, to_table
from gtmsim.errors import ConfigError
from gtmsim.spec import compile_spec

# --------------------------------------------------------------------------- profiles, --set


@pytest.mark.parametrize("profile", ["ideal", "realistic", "stressed"])
def test_builtin_profiles_load_and_compile(profile):
    config = load_config(None, profile)
    assert config.profile == profile
    compile_spec(config)


def test_ideal_turns_every_mechanism_off():
    config = load_config(None, "ideal")
    assert all(not getattr(config.people, m).enabled for m in MECHANISMS)
    realistic = load_config(None, "realistic")
    assert all(getattr(realistic.people, m).enabled for m in MECHANISMS)


def test_ideal_wins_over_the_configs_own_people_table(tmp_path, default_copy):
    default_copy.setdefault("people", {})["forgetting"] = {"enabled": True, "probability": 0.1}
    config = validate(resolve(default_copy, "ideal"))
    assert not config.people.forgetting.enabled
    # ... but a --set on people.* beats the profile
    config = validate(resolve(default_copy, "ideal", ["people.forgetting.enabled=true"]))
    assert config.people.forgetting.enabled


def test_profile_from_the_config_and_from_a_file(tmp_path, default_copy):
    default_copy["profiles"] = {"calm": {"forgetting": {"enabled": False}}}
    assert not validate(resolve(default_copy, "calm")).people.forgetting.enabled
    f = tmp_path / "mine.toml"
    f.write_text("[people]\nturnover = { enabled = false }\n")
    config = load_config(None, str(f))
    assert not config.people.turnover.enabled and config.people.forgetting.enabled
    # a pathlib.Path names the file as its string does (it was refused as no profile name)
    assert not load_config(None, f).people.turnover.enabled


def test_set_overrides_values_of_every_type():
    config = load_config(None, None, [
        "stages.mql_review.threshold=0.2",
        "teams.sdr.headcount=7",
        "handoffs.sdr_to_ae.protocol=warm",          # a bare word is read as a string
        'teams.ae.routing="pool"',
        "design.feedback.enabled=true",
        "stages.ae_close.effort_hours={ dist = 'fixed', value = 2 }",
        "people.forgetting.probability={ value = 0.05, range = [0.01, 0.1] }",
        "run.horizon_days=30",
    ])
    assert config.stages["mql_review"].threshold == 0.2
    assert config.teams["sdr"].headcount == 7
    assert config.handoffs["sdr_to_ae"].protocol == "warm"
    assert config.teams["ae"].routing == "pool"
    assert config.design.feedback.enabled is True
    assert config.stages["ae_close"].effort_hours.dist == "fixed"
    assert config.people.forgetting.probability.value == 0.05
    assert config.run.horizon_days == 30


def test_set_profile_through_set():
    config = load_config(None, None, ["profile=ideal"])
    assert config.profile == "ideal"
    assert not config.people.latency.enabled


@pytest.mark.parametrize("profile", ["stressed", "ideal", None])
def test_set_of_a_people_table_changes_only_the_values_in_it(profile):
    """`--set people.latency={median_hours=5}` replaced the whole table: under `stressed` the
    latency's sigma fell back from the profile's 1.4 to the schema's 1.0, and under `ideal`
    latency was switched on. A people table set is now its values set one by one, as the
    config's own [people] table is merged over a profile's."""
    one_by_one = load_config(None, profile, ["people.latency.median_hours=5"])
    for table in ("people.latency={median_hours=5}", "people={latency={median_hours=5}}"):
        config = load_config(None, profile, [table])
        assert config.people == one_by_one.people, table
        assert to_table(config) == to_table(one_by_one), table
    assert load_config(None, "stressed", ["people.latency={median_hours=5}"]) \
        .people.latency.sigma == load_config(None, "stressed").people.latency.sigma


@pytest.mark.parametrize("profile", ["ideal", "stressed", None])
@pytest.mark.parametrize("empty", ["people.latency={}", "people={}", "people={latency={}}"])
def test_set_of_an_empty_people_table_changes_nothing(profile, empty):
    """`--set people.latency={}` replaced the table with an empty one: under `ideal` it
    switched latency on with the schema's values, and `people={}` dropped the config's own
    [people] values. An empty table sets nothing, as it does in the config file."""
    assert load_config(None, profile, [empty]) == load_config(None, profile)


def test_set_of_an_empty_table_still_names_an_unknown_mechanism():
    with pytest.raises(ConfigError) as info:
        load_config(None, None, ["people.latncy={}"])
    assert info.value.path == "people.latncy" and "latency" in str(info.value)


def test_parse_override():
    assert parse_override("a.b=1") == (["a", "b"], 1)
    assert parse_override("a.b = x y") == (["a", "b"], "x y")
    assert parse_override("a=[1, 2]") == (["a"], [1, 2])
    assert parse_override("a=1\nb=2") == (["a"], "1\nb=2")  # one key only, never two


def test_set_none_sets_an_optional_value_back_to_none():
    """TOML has no null, so `--set stages.ae_close.sla_hours=...` could give the AE stage
    another SLA but never none (no escalation). A bare `none` is None now: the schema takes
    it where a value may be none, refuses it in one line where one is required, and a
    people value (merged over its profile's) refuses it with the way to switch one off."""
    assert load_config().stages["ae_close"].sla_hours is not None
    unset = load_config(None, None, ["stages.ae_close.sla_hours=none"])
    assert unset.stages["ae_close"].sla_hours is None
    assert "sla_hours" not in to_table(unset)["stages"]["ae_close"]
    for key, words in (("stages.ae_close.effort_hours", "expected a table, got none"),
                       ("run.seed", "expected an integer, got none"),
                       ("stages.ae_close.sla_hourz", "unknown key (did you mean 'sla_hours'?)"),
                       ("people.latency.median_hours", "--set people.latency.enabled=false")):
        with pytest.raises(ConfigError) as info:
            load_config(None, None, [f"{key}=none"])
        assert info.value.path == key and words in str(info.value), str(info.value)
    with pytest.raises(ConfigError) as info:  # quoted, it is the word, not none
        load_config(None, None, ["stages.ae_close.sla_hours='none'"])
    assert "expected a number, got 'none'" in str(info.value)


@pytest.mark.parametrize("channel", ["inbound", "outbound"])  # with bursts, and without
def test_set_of_a_list_item_by_its_index_says_to_give_the_whole_list(channel):
    """`--set channels.x.bursts.0.multiplier=2` said 'is a value, not a table', or, where the
    channel had no bursts, 'expected a list, got {'0': {'multiplier': 2}}': neither says a
    list's items have no path."""
    with pytest.raises(ConfigError) as info:
        load_config(None, None, [f"channels.{channel}.bursts.0.multiplier=2"])
    assert info.value.path == f"channels.{channel}.bursts"
    assert f"give the whole list (--set 'channels.{channel}.bursts=[...]')" in str(info.value)
    assert load_config(None, None, ["teams.1={headcount=1}"]).teams["1"].headcount == 1
    # a misspelt key before an index is still an unknown key, with the name it was meant for
    with pytest.raises(ConfigError, match=r"unknown key \(did you mean 'bursts'\?\)"):
        load_config(None, None, [f"channels.{channel}.burst.0.multiplier=2"])


def test_a_key_quoted_either_way_toml_allows_is_its_name():
    """TOML quotes a key in "..." or in '...'; --set took off the first kind only, so
    `--set 'run'.seed=1` was "'run': unknown key (did you mean 'run'?)"."""
    assert parse_override("'run'.seed=1") == (["run", "seed"], 1)
    assert parse_override('"run".\'seed\' = 1') == (["run", "seed"], 1)
    assert load_config(None, None, ["'run'.'seed'=5"]).run.seed == 5


# --------------------------------------------------------------------------- one-line errors


BAD_OVERRIDES = [
    (["stages.sdr_qualify.efort_hours=3"], "stages.sdr_qualify.efort_hours",
     "did you mean 'effort_hours'"),
    (["teams.sdr.headcont=3"], "teams.sdr.headcont", "did you mean 'headcount'"),
    (["people.latency.median_hour=1"], "people.latency.median_hour", "did you mean"),
    (["stages.ae_close.effort_hours.shap=2"], "stages.ae_close.effort_hours.shap",
     "did you mean 'shape'"),
    (["teams.sdr.headcount='six'"], "teams.sdr.headcount", "expected an integer"),
    (["run.horizon_days=[1]"], "run.horizon_days", "expected a number"),
    (["design.feedback.enabled=3"], "design.feedback.enabled", "true or false"),
    (["stages.sdr_qualify.threshold=1.5"], "stages.sdr_qualify.threshold", "<= 1"),
    (["teams.sdr.headcount=-1"], "teams.sdr.headcount", ">= 0"),
    (["run.horizon_days=nan"], "run.horizon_days", "finite"),
    (["run.horizon_days=inf"], "run.horizon_days", ""),
    (["stages.ae_close.kind=closer"], "stages.ae_close.kind", "expected one of"),
    # TOML reads an unquoted date as a date: it was shown as datetime.date(2026, 1, 1)
    (["name=2026-01-01"], "name", "expected a string, got the date 2026-01-01"),
    (["run.seed=10:30:00"], "run.seed", "got the time 10:30:00"),
    # values that passed validation and then hung a run for ever (the calendar stepping
    # through 1e300 hours, Knuth's Poisson on a mean of 1e300) or overflowed in the spec
    (["people.latency.sigma=20"], "people.latency.sigma", "<= 5"),
    (["people.latency.median_hours=1e300"], "people.latency.median_hours", "at most 2000"),
    (["people.trust.requalify_hours=1e300"], "people.trust.requalify_hours", "<= 2000"),
    (["people.persistence.habit_mean_attempts=1e300"],
     "people.persistence.habit_mean_attempts", "at most 100"),
    # a habit is 1 + Poisson(mean - 1): 0 read as persistence off (every prescribed attempt
    # made, about 3 a lead against 1 at a mean of 1), 0.5 as a mean of 1
    (["people.persistence.habit_mean_attempts=0"],
     "people.persistence.habit_mean_attempts", "at least 1"),
    (["people.persistence.habit_mean_attempts={value=2, range=[0.5, 3]}"],
     "people.persistence.habit_mean_attempts", "at least 1"),
    (["people.speed.task_cv=1e160"], "people.speed.task_cv", "at most 5"),
    (["people.turnover.vacancy_days={value=45, range=[10, 1e300]}"],
     "people.turnover.vacancy_days", "at most 3650"),
    (["channels.inbound.bursts=[{start_week=0, weeks=1, multiplier=1e308}]"],
     "channels.inbound.bursts.0.multiplier", "<= 1000"),
    # the multipliers are weekly: a 0.2-week campaign at x3 was multiplied into two whole
    # weeks (it crossed one), ten times the extra leads asked for
    (["channels.inbound.bursts=[{start_week=0.9, weeks=1, multiplier=3}]"],
     "channels.inbound.bursts.0.start_week", "whole number of weeks"),
    (["channels.inbound.bursts=[{start_week=1, weeks=0.2, multiplier=3}]"],
     "channels.inbound.bursts.0.weeks", "whole number of weeks"),
    # a weekly multiplier of 1e12 passed: the numba engine failed with a SystemError naming
    # nothing, the SimPy one made leads until memory ran out
    (["channels.inbound.weekly_pattern=[1, 1e12]"], "channels.inbound.weekly_pattern.1",
     "<= 1000"),
    (["channels.inbound.rate_per_week=1e7"], "channels.inbound.rate_per_week", "<= 1000000"),
    (["channels.inbound.rate_per_week={value=300, range=[200, 4e6]}"],
     "channels.inbound.rate_per_week", "<= 1000000"),
    (["channels.inbound.rate_per_week={value=300, range=[-5, 400]}"],
     "channels.inbound.rate_per_week", ">= 0"),
    (["stages.ae_close.win_scale={value=0.55, range=[0, 0.7]}"], "stages.ae_close.win_scale",
     "> 0"),
    (["stages.ae_close.win_scale=6"], "stages.ae_close.win_scale", "<= 5"),
    # a new hire at no productivity never finished their first item (the numba engine
    # divided by zero; the SimPy one kept the person busy for ever)
    (["people.turnover.ramp_start=0"], "people.turnover.ramp_start", "> 0"),
    # both gamma draws of the beta underflow: every person would get availability 0.5
    (["people.availability.concentration=1e-9"], "people.availability.concentration",
     ">= 0.1"),
    # a KPI on another team's stage read 0 for ever; a dotted name no --set could reach
    (["teams.sdr.kpi.stage='mql_review'"], "teams.sdr.kpi.stage",
     "belongs to team 'marketing'; a team's KPI counts a stage it owns ('sdr_qualify')"),
    (["teams.ops={headcount=0, cost_per_head=1, kpi={metric='passed', stage='mql_review', "
      "target_per_quarter=10}}"], "teams.ops.kpi.stage", "owns (none)"),
    # a lever's bounds are the optimiser's, and say how to go past them
    (["teams.sdr.headcount=200"], "levers.sdr_headcount", "widen levers.sdr_headcount.low/high"),
    # an integer lever's bounds read as floats: 'outside [2.0, 12.0]'
    (["teams.sdr.headcount=200"], "levers.sdr_headcount", "current value 200 is outside [2, 12]"),
    (["stages.sdr_qualify.threshold=0.9"], "levers.sql_threshold", "outside [0.15, 0.6]"),
    # the own design of an integer lever between whole numbers: optimize refused it only
    # after running every trial, leaving the study behind
    (["levers.sdr_sla.integer=true", "stages.sdr_qualify.sla_hours=8.5"], "levers.sdr_sla",
     "current value 8.5 is not a whole number, as levers.sdr_sla.integer = true asks"),
    # a third parameter of a lognormal would be ignored (or crash the run): refused
    (["channels.inbound.value={dist='lognormal', median=3e4, sigma=0.5, cv=0.3}"],
     "channels.inbound.value", "median and sigma, or mean and cv"),
    (["channels.inbound.value={dist='lognormal', mean=3, cv=0.5, median=3e4}"],
     "channels.inbound.value", "median and sigma, or mean and cv"),
    (["stages.ae_close.effort_hours={dist='gama', shape=1, scale=1}"],
     "stages.ae_close.effort_hours", "did you mean 'gamma'"),
    (["people.forgetting.probability='often'"], "people.forgetting.probability",
     "expected a number or a table"),
    (["people.forgetting.probability={ value = 0.5, range = [0.0, 0.1] }"],
     "people.forgetting.probability", "outside range"),
    (["stages.sdr_qualify.routes.qualified=ae_clse"], "stages.sdr_qualify.routes.qualified",
     "did you mean 'ae_close'"),
    (["channels.inbound.entry=nowhere"], "channels.inbound.entry", "no stage"),
    (["teams.sdr.headcount=0"], "teams.sdr.headcount", "no people"),
    (["stages.sdr_qualify.team=sales"], "stages.sdr_qualify.team", "no team"),
    (["handoffs.sdr_to_ae.to=cs_onboard"], "handoffs.sdr_to_ae.to", "never routes"),
    (["run=3"], "run", "expected a table"),
    (["run.seed.x=3"], "run.seed", "not a table"),
    (["nothing"], "--set", "key.path=value"),
    ([".a=1"], "--set", "bad key path"),
    (["a.b="], "--set", "no value"),
    # values of another type are not coerced: a boolean is no headcount, a string no number
    (["teams.marketing.headcount=true"], "teams.marketing.headcount", "expected an integer"),
    (["people.turnover.enabled=1"], "people.turnover.enabled", "true or false"),
    (["people.turnover.enabled='yes'"], "people.turnover.enabled", "true or false"),
    (["stages.mql_review.threshold='0.3'"], "stages.mql_review.threshold", "expected a number"),
    # a --set into a team (stage, ...) the config lacks is a typo, not a new team
    (["teams.sdrs.headcount=10"], "teams.sdrs", "unknown team (did you mean 'sdr'?)"),
    (["stages.ae_clse.threshold=0.5"], "stages.ae_clse", "did you mean 'ae_close'"),
    # a lever or a profile of the config's own, too: a new lever missing its path was
    # reported, and a new profile nobody chose was taken without a word
    (["levers.sdr_headcont.low=1"], "levers.sdr_headcont",
     "unknown lever (did you mean 'sdr_headcount'?)"),
    (["profiles.tired={latency={median_hours=3}}", "profiles.tird.latency.median_hours=2"],
     "profiles.tird", "unknown profile (did you mean 'tired'?)"),
    (["profiles.ideal={forgetting={enabled=true}}"], "profiles.ideal", "built-in profile"),
    (["calendar.work_days=['mon', 'mon']"], "calendar", "mon more than once"),
    (["name=' '"], "name", "must not be blank"),
    # a bad key of a config's own profile is named where it was written, not as people.*
    (["profiles.mine={people={latency={enabled=false}}}", "profile=\"mine\""],
     "profiles.mine.people", "unknown mechanism"),
    (["profiles.mine={latncy={enabled=false}}", "profile=\"mine\""],
     "profiles.mine.latncy", "did you mean 'latency'"),
    # a mistake in a profile of the config's own, chosen or not, named where it was written
    (["profiles.tired={latency={median_hour=3}}"], "profiles.tired.latency.median_hour",
     "did you mean 'median_hours'"),
    (["profiles.tired={latency={median_hour=3}}", 'profile="tired"'],
     "profiles.tired.latency.median_hour", "did you mean 'median_hours'"),
    (["profiles.tired={latency={median_hours=-2}}"], "profiles.tired.latency.median_hours",
     "must not be negative"),
    # a key its stage kind never reads was ignored without a word
    (['stages.mql_review.buyer_days={dist="fixed",value=3}'], "stages.mql_review.buyer_days",
     "a review stage does not use it"),
    (["stages.cs_onboard.threshold=0.5"], "stages.cs_onboard.threshold",
     "a retain stage does not use it"),
    (['stages.cs_onboard.routes.qualified="ae_close"'], "stages.cs_onboard.routes.qualified",
     "no 'qualified' outcome"),
    # levers that are not design choices: a longer horizon 'won' by counting longer
    (['levers.h={path="run.horizon_days",low=91,high=364}'], "levers.h.path",
     "not a design choice"),
    (['levers.k={path="stages.ae_close.kind",choices=["close","review"]}'], "levers.k.path",
     "the org's shape"),
    (['levers.t={path="stages.cs_onboard.threshold",low=0,high=0.5}'], "levers.t.path",
     "does not use threshold"),
    # negative durations and deal values (time ran backwards; bookings went negative)
    (['stages.ae_close.effort_hours={dist="uniform",low=-5,high=1}'],
     "stages.ae_close.effort_hours.low", "must not be negative"),
    (['stages.ae_close.buyer_days={dist="empirical",values=[-3,4]}'],
     "stages.ae_close.buyer_days.values", "must not be negative"),
    (['channels.inbound.value={dist="triangular",low=-9,mode=1,high=2}'],
     "channels.inbound.value.low", "must not be negative"),
    # a won deal routed back to be decided again booked its value again and again
    (['stages.ae_close.routes.won="ae_close"'], "stages.ae_close.routes.won",
     "a retain stage or 'customer'"),
    # a stage named after a fate took the fate's place in every route to it
    (['stages.lost={kind="review",team="sdr",effort_hours={dist="fixed",value=1},'
      'routes={qualified="ae_close"}}'], "stages.lost", "the name of a fate"),
    # a KPI its stage never counts read 0 for ever (and put the team under full pressure)
    (['teams.cs.kpi.metric="passed"'], "teams.cs.kpi.metric", "read 0 for ever"),
    (['teams.cs.kpi.target_per_quarter=90'], "teams.cs.kpi.target_per_quarter",
     "0.9 for 90%"),
    # a lever's bound the model refuses stopped the optimiser midway, when it first tried it
    (['levers.sla={path="stages.ae_close.sla_hours", low=0.0, high=48.0}'],
     "levers.sla.low", "stages.ae_close.sla_hours = 0.0, which is refused"),
    # a search picking its own people tuned the design for ideal behaviour; pay moves nothing
    (['levers.ramp={path="people.turnover.ramp_start", low=0.1, high=0.5}'],
     "levers.ramp.path", "how people behave, not a design choice"),
    (['levers.pay={path="teams.sdr.cost_per_head", low=50000.0, high=90000.0}'],
     "levers.pay.path", "moves no outcome"),
    (['levers.sdr_headcount.low=0'], "levers.sdr_headcount.low", "team has no people"),
    (['levers.sql_threshold.high=1.2'], "levers.sql_threshold.high", "<= 1"),
    (['levers.ae_routing={path="teams.ae.routing", choices=["least_loaded", "random"]}'],
     "levers.ae_routing.choices", "'random'"),
    # the search draws from int(low): 2 heads, refused as 'outside [2.5, 8]; widen' the lever
    (['levers.sdr_headcount.low=2.5'], "levers.sdr_headcount",
     "an integer lever's low and high are whole numbers, got 2.5 and 12"),
    # two levers on one value: a design set it twice, the first lever's value never used
    (['levers.sdr_heads={path="teams.sdr.headcount",low=2,high=12,integer=true}'],
     "levers.sdr_heads.path", "teams.sdr.headcount is levers.sdr_headcount's path already"),
    # a lever on the budget bound nothing, and a drawn budget below the chosen design's cost
    # wrote a design_best.toml that refused to load
    (['levers.b={path="design.annual_budget",low=1e6,high=5e6}'], "levers.b.path",
     "what the search is bounded by"),
    (['levers.b={path="levers.mql_threshold.high",low=0.5,high=0.9}'], "levers.b.path",
     "what the search is bounded by"),
    # the edges of each range: a working day of no hours, a triangle of no width (numpy's
    # triangular refuses it mid-run), a stage asked for no attempts
    (["calendar.day_end=9.0"], "calendar", "must be after day_start"),
    # a quality of 30 meant as 30% ran with every lead's quality cut to 1
    (['channels.inbound.quality={dist="fixed", value=30}'], "channels.inbound.quality",
     "its mean is 30 (0.3 for 30%)"),
    (['channels.inbound.quality={dist="uniform", low=-3, high=-1}'],
     "channels.inbound.quality", "its mean is -2"),
    # a working day of 1e-7 hours validated, and both engines then ran for ever (no signal
    # stopped the numba one: it was inside one event's calendar arithmetic)
    (["calendar.day_end=9.0000001"], "calendar", "shorter than a minute"),
    (['stages.sdr_qualify.effort_hours={dist="triangular",low=1,mode=1,high=1}'],
     "stages.sdr_qualify.effort_hours", "low < high"),
    (["stages.sdr_qualify.attempts=0"], "stages.sdr_qualify.attempts", "must be >= 1"),
    (['stages.sdr_qualify.effort_hours={dist="uniform",low=2,high=1.5}'],
     "stages.sdr_qualify.effort_hours", "must not exceed high"),
    # only won deals become customers: lost deals routed to onboarding were renewed (renewed
    # 91 against 28, lost 0); a channel may still bring its own customers (self-serve)
    (["stages.ae_close.routes.lost=cs_onboard"], "stages.ae_close.routes.lost",
     "a retain stage"),
    (["stages.ae_close.routes.recycled=cs_onboard"], "stages.ae_close.routes.recycled",
     "recycled leads are not customers"),
    (["stages.mql_review.routes.qualified=cs_onboard"], "stages.mql_review.routes.qualified",
     "takes a close stage's won deals only"),
    (["nurture.return_stage=cs_onboard"], "nurture.return_stage", "a retain stage"),
    # and the customer fate counts one retained at once: lost deals routed there were
    # counted customers (retained 619 against 155 won, lost 0)
    (["stages.ae_close.routes.lost=customer"], "stages.ae_close.routes.lost",
     "lost leads are not customers"),
    (["stages.sdr_qualify.routes.unreached=customer"], "stages.sdr_qualify.routes.unreached",
     "'customer' is the fate of a close stage's won deals"),
    (["stages.mql_review.routes.rejected=customer"], "stages.mql_review.routes.rejected",
     "rejected leads are not customers"),
    # a name that is also a distribution's or a type's was left out of the key path
    # ('channels.intent_floor'), as pydantic's union branches are
    (['channels.beta={entry="mql_review", rate_per_week=5, quality={dist="fixed", value=0.5}, '
      'value={dist="fixed", value=100}, intent_floor=2.0}'], "channels.beta.intent_floor",
     "must be <= 1"),
    (['teams.float={headcount=-1}'], "teams.float.headcount", "must be >= 0"),
    # past a float's range: bookings inf, its CI '(0 to -)', numpy's overflow warnings
    (['channels.partner.value={dist="fixed", value=1e308}'], "channels.partner.value",
     "a deal worth 1e+308 on average; at most 1e+15"),
    (['channels.partner.value={dist="lognormal", median=1, sigma=10}'],
     "channels.partner.value", "a deal worth 5.18e+21 on average"),
    (["teams.marketing.kpi.target_per_quarter=1e-300"], "teams.marketing.kpi.target_per_quarter",
     "must be >= 1e-06"),
    # validate passed it; the run stopped on a lead going round the loop at one instant
    (["stages.mql_review.routes.qualified=mql_review"], "stages.mql_review.routes.qualified",
     "not back to this one"),
]


@pytest.mark.parametrize("start", [0.0, 9.0, 17.0, 23.0])
def test_a_working_day_of_a_minute_is_allowed_at_any_hour(start):
    """A day under a minute is refused, but 17 + 1/60 - 17 is 0.0166666666666657, a hair
    under 1/60 in floats: a minute's day from 17:00 was refused, from 09:00 allowed."""
    config = load_config(None, None, [f"calendar.day_start={start!r}",
                                      f"calendar.day_end={start + 1 / 60!r}"])
    assert config.calendar.day_end > config.calendar.day_start


def test_a_run_table_left_out_takes_the_documented_defaults():
    """docs/model.md promises warmup_days 28, horizon_days 182, replications 100 and seed
    20261130 for a [run] table left out; a changed default moved every result silently."""
    from gtmsim.config.schema import Run

    assert Run().model_dump() == {"warmup_days": 28.0, "horizon_days": 182.0,
                                  "replications": 100, "seed": 20261130}


def test_a_calendar_table_left_out_takes_the_documented_defaults():
    """docs/model.md promises Mon-Fri 09:00-17:00 (40 h a week) for a [calendar] left out:
    a day starting at 8 would add an hour to every working day of every run."""
    from gtmsim.config.schema import Calendar

    assert Calendar().model_dump() == {"work_days": ["mon", "tue", "wed", "thu", "fri"],
                                       "day_start": 9.0, "day_end": 17.0}


@pytest.mark.parametrize("overrides,path,words", BAD_OVERRIDES,
                         ids=[o[0][0][:40] for o in BAD_OVERRIDES])
def test_bad_values_name_the_key_in_one_line(overrides, path, words):
    with pytest.raises(ConfigError) as info:
        config = load_config(None, None, overrides)
        compile_spec(config)
    err = info.value
    assert err.path == path, str(err)
    assert words in err.message, str(err)
    assert "\n" not in str(err)


def test_unknown_profile_suggests_the_closest():
    with pytest.raises(ConfigError, match=r"unknown profile 'idael' \(did you mean 'ideal'\?\)"):
        load_config(None, "idael")


def test_malformed_toml_names_file_and_line(tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text('name = "x"\n\n[run\nseed = 1\n')
    with pytest.raises(ConfigError) as info:
        load_config(f)
    assert info.value.path == f"{f}:3"
    assert "not valid TOML" in info.value.message


def test_toml_nested_too_deeply_is_a_config_error(tmp_path):
    """tomllib recurses once per level: a value nested a few hundred deep (in a config, a
    profile file or a --set) ended in a RecursionError traceback."""
    deep = "[" * 5000 + "]" * 5000
    f = tmp_path / "deep.toml"
    f.write_text(f"name = {deep}\n")
    for args in ((f,), (None, str(f))):
        with pytest.raises(ConfigError) as info:
            load_config(*args)
        assert info.value.path == str(f) and "nested too deeply" in info.value.message
    with pytest.raises(ConfigError) as info:
        load_config(None, None, [f"name={deep}"])
    assert info.value.path == "name" and "nested too deeply" in info.value.message


def test_an_empty_profile_file_is_refused(tmp_path):
    """An empty profile file ran as every mechanism on at its defaults, silently."""
    (tmp_path / "empty.toml").write_text("# nothing yet\n")
    with pytest.raises(ConfigError, match="sets nothing"):
        load_config(None, str(tmp_path / "empty.toml"))
    (tmp_path / "other.toml").write_text("[other]\nx = 1\n")
    with pytest.raises(ConfigError) as info:
        load_config(None, str(tmp_path / "other.toml"))
    assert info.value.path == f"{tmp_path / 'other.toml'}: other"  # not people.other


def test_a_profile_file_names_its_own_bad_key(tmp_path):
    (tmp_path / "mine.toml").write_text("[people.latncy]\nenabled = false\n")
    with pytest.raises(ConfigError) as info:
        load_config(None, str(tmp_path / "mine.toml"))
    assert info.value.path.endswith("mine.toml: people.latncy"), str(info.value)
    assert "did you mean 'latency'" in info.value.message


def test_a_profile_file_with_more_than_people_is_refused(tmp_path):
    """A profile file is read for its [people] table; a [run] or a stage beside it (a seed, a
    threshold meant to go with the profile) was dropped without a word."""
    (tmp_path / "mine.toml").write_text("[people.latency]\nenabled = false\n\n"
                                        "[run]\nseed = 7\n")
    with pytest.raises(ConfigError) as info:
        load_config(None, str(tmp_path / "mine.toml"))
    assert info.value.path == f"{tmp_path / 'mine.toml'}: run", str(info.value)
    assert "[people] table only" in info.value.message


def test_a_config_given_as_a_profile_file_says_it_has_no_people_table(tmp_path):
    """`--profile configs/product_led.toml` (a config for a profile) said 'name: unknown
    mechanism; a profile is a table of mechanisms', as if `name` were a misspelt mechanism:
    the file has no [people] table, and the error says so."""
    config = Path(__file__).resolve().parents[1] / "configs" / "product_led.toml"
    with pytest.raises(ConfigError) as info:
        load_config(None, str(config))
    assert info.value.path == f"{config}: name", str(info.value)
    assert "no [people] table" in info.value.message, str(info.value)
    # mechanisms at the top level (no [people] table) are still read as one
    (tmp_path / "bare.toml").write_text("[latency]\nenabled = false\n")
    assert not load_config(None, str(tmp_path / "bare.toml")).people.latency.enabled


def test_missing_and_binary_files(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "nope.toml")
    # a missing profile file is called one (it was called a config file)
    with pytest.raises(ConfigError, match="no such profile file"):
        load_config(None, str(tmp_path / "nope.toml"))
    f = tmp_path / "bin.toml"
    f.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="UTF-8"):
        load_config(f)
    with pytest.raises(ConfigError, match="is not a regular file"):
        load_config("/dev/null")
    loop = tmp_path / "loop.toml"
    loop.symlink_to(loop)  # it said "no such config file" of a file that is there
    with pytest.raises(ConfigError, match="symbolic link that leads nowhere"):
        load_config(loop)


def test_a_byte_order_mark_is_read_past(tmp_path):
    """Windows editors start UTF-8 files with a BOM; TOML refused it at line 1, column 1."""
    from pathlib import Path

    import gtmsim

    text = (Path(gtmsim.__file__).parent / "config" / "b2b_saas.toml").read_text()
    f = tmp_path / "bom.toml"
    f.write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert load_config(f) == load_config(None)


def test_every_key_of_the_default_is_known_and_round_trips(tmp_path):
    """The resolved config written by `run` (config.toml) loads back to the same config."""
    from gtmsim.cli import config_toml

    config = load_config(None, "stressed", ["run.horizon_days=30"])
    f = tmp_path / "config.toml"
    f.write_text(config_toml(config))
    again = load_config(f)
    assert again == config


def test_a_written_config_with_a_profile_file_is_self_contained(tmp_path, monkeypatch):
    """`run --profile prof/ok.toml` wrote profile = "prof/ok.toml" into the run's
    config.toml, which then looked for run/prof/ok.toml and failed; then the file's absolute
    path, so a moved or edited file changed or broke the rerun. The file's table goes in."""
    from gtmsim.cli import config_toml

    monkeypatch.chdir(tmp_path)
    (tmp_path / "prof").mkdir()
    (tmp_path / "prof" / "ok.toml").write_text("[people.latency]\nsigma = 1.5\n"
                                               "[people.turnover]\nenabled = false\n")
    config = load_config(None, "prof/ok.toml")
    (tmp_path / "run").mkdir()
    f = tmp_path / "run" / "config.toml"
    f.write_text(config_toml(config))
    (tmp_path / "prof" / "ok.toml").unlink()
    again = load_config(f)
    assert again.profile == "ok"
    assert again.people == config.people
    assert again.people.latency.sigma == 1.5 and not again.people.turnover.enabled
    # written again, it stays the same (no second copy of the profile)
    f.write_text(config_toml(again))
    assert load_config(f) == again


def test_the_configs_own_profile_file_by_another_path_is_still_its_own(tmp_path,
                                                                        monkeypatch):
    """The config's own profile file, named by another path (absolute, or from another
    folder), counted as another profile and switched back on what the config switched off."""
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "p.toml").write_text("[people.trust]\nenabled = false\n"
                                           "[people.forgetting]\nenabled = true\n")
    raw = read_toml(None)
    raw["profile"] = "p.toml"
    raw.setdefault("people", {})["forgetting"] = {"enabled": False}
    (tmp_path / "c" / "cfg.toml").write_text(tomli_w.dumps(raw))
    own = load_config(tmp_path / "c" / "cfg.toml")
    assert not own.people.forgetting.enabled and not own.people.trust.enabled
    monkeypatch.chdir(tmp_path)
    for name in (str(tmp_path / "c" / "p.toml"), "c/p.toml", "./c/../c/p.toml"):
        assert load_config("c/cfg.toml", name).people == own.people, name


def test_a_rerun_with_the_same_profile_file_adds_no_copy(tmp_path, monkeypatch):
    """config.toml rerun with the same --profile file and written again took a second copy of
    the file's table under a new name each time."""
    from gtmsim.cli import config_toml

    monkeypatch.chdir(tmp_path)
    (tmp_path / "my.toml").write_text("[people.latency]\nmedian_hours = 3.0\n")
    first = config_toml(load_config(None, "my.toml"))
    (tmp_path / "config.toml").write_text(first)
    assert config_toml(load_config("config.toml", "my.toml")) == first
    assert config_toml(load_config("config.toml")) == first


def test_a_bad_value_in_a_profile_file_is_named_in_the_file(tmp_path):
    """It was named as the config's own key (people.latency.median_hours)."""
    f = tmp_path / "neg.toml"
    f.write_text("[people.latency]\nmedian_hours = -1.0\n")
    with pytest.raises(ConfigError) as info:
        load_config(None, str(f))
    assert info.value.path == f"{f}: people.latency.median_hours", str(info.value)


def test_naming_the_configs_own_profile_changes_nothing(tmp_path, default_copy):
    """A config that switches forgetting off under its own profile (realistic) lost that
    when `--profile realistic` was named (compare always names one), and kept it under
    `--profile stressed`: another profile decides which mechanisms are on, the config's own
    does not override the config."""
    default_copy.setdefault("people", {})["forgetting"] = {"enabled": False}
    own = validate(resolve(default_copy))
    assert not own.people.forgetting.enabled
    assert validate(resolve(default_copy, "realistic")) == own
    for other, on in (("stressed", True), ("ideal", False)):
        people = validate(resolve(default_copy, other)).people
        assert all(getattr(people, m).enabled is on for m in MECHANISMS), other


def test_a_user_profile_decides_the_mechanisms_it_leaves_on(tmp_path, default_copy):
    """A profile that leaves a mechanism at its default leaves it on: under `--profile calm`
    (a [profiles.calm] or a file that only changes latency) the config's own forgetting off
    stayed off, while `--profile stressed` switched it on; another profile decides which
    mechanisms are on, whichever names its flags."""
    default_copy.setdefault("people", {})["forgetting"] = {"enabled": False}
    default_copy["profiles"] = {"calm": {"latency": {"median_hours": 1.0}}}
    (tmp_path / "calm.toml").write_text("[people.latency]\nmedian_hours = 1.0\n")
    for other in ("calm", str(tmp_path / "calm.toml")):
        people = validate(resolve(default_copy, other)).people
        assert all(getattr(people, m).enabled for m in MECHANISMS), other
        assert people.latency.median_hours == 1.0
    # a profile that switches a mechanism off still does, and the config's own keeps its own
    default_copy["profiles"]["calm"]["trust"] = {"enabled": False}
    assert not validate(resolve(default_copy, "calm")).people.trust.enabled
    default_copy["profile"] = "calm"
    own = validate(resolve(default_copy)).people
    assert not own.forgetting.enabled and not own.trust.enabled
    assert validate(resolve(default_copy, "calm")).people == own


@pytest.mark.parametrize("profile", ["ideal", "stressed", None])
def test_a_bad_enabled_flag_is_refused_under_any_profile(default_copy, profile):
    """`enabled = "yes"` in the config's [people.speed] was refused under the config's own
    profile but passed silently under `--profile ideal` or `stressed`, whose flag replaced
    it: a typo must never pass, whichever profile is chosen."""
    default_copy.setdefault("people", {})["speed"] = {"enabled": "yes"}
    with pytest.raises(ConfigError) as exc:
        validate(resolve(default_copy, profile))
    assert exc.value.path == "people.speed.enabled"
    assert "true or false" in exc.value.message


@pytest.mark.parametrize("written_under, own", [
    ("realistic", []), ("stressed", []), ("ideal", ["people.latency.enabled=true"]),
    ("realistic", ["people.latency.sigma=1.5", "people.trust.initial=0.9"])])
def test_a_written_config_takes_another_profile_like_its_source(tmp_path, written_under, own):
    """config.toml (run) and design_*.toml (optimize) keep only the people values the config
    set itself: loaded with --profile stressed they give stressed people (they used to keep
    every value of the profile they were written under, so `compare baseline design_best.toml
    --profile stressed` ran the design with milder people than the baseline)."""
    from gtmsim.cli import config_toml

    f = tmp_path / "written.toml"
    f.write_text(config_toml(load_config(None, written_under, own)))
    assert load_config(f) == load_config(None, written_under, own)
    assert load_config(f, "stressed").people == load_config(None, "stressed", own).people


def test_a_written_config_keeps_its_own_people_values_that_equal_the_profiles(tmp_path):
    """A config's own [people] value (or a --set) equal to its profile's was dropped from the
    written config.toml, so under another profile the rerun took that profile's value where
    the config it came from kept its own (README: the config's own values beat the profile's
    under every profile)."""
    from gtmsim.cli import config_toml
    from gtmsim.optimize.levers import apply_design

    pinned = load_config(None).people.trust.initial  # the realistic profile's own value
    assert load_config(None, "stressed").people.trust.initial != pinned
    raw = read_toml(None)
    raw["people"] = {"trust": {"initial": pinned}}
    source = tmp_path / "pin.toml"
    source.write_text(tomli_w.dumps(raw))
    sources = ((str(source), []), (None, [f"people.trust.initial={pinned}"]))
    for path, sets in sources:
        config = load_config(path, None, sets)
        written = tmp_path / "written.toml"
        for text in (config_toml(config), config_toml(apply_design(config, {}))):
            written.write_text(text)
            assert load_config(written) == config
            for other in ("stressed", "ideal", "realistic"):
                assert (load_config(written, other).people
                        == load_config(path, other, sets).people), (path, other)
                assert load_config(written, other).people.trust.initial == pinned


# --------------------------------------------------------------------------- no crash, ever


def _paths(node, prefix=()):
    """Every key path of a nested dict, tables included."""
    out = []
    if isinstance(node, dict):
        for k, v in node.items():
            out.append((*prefix, k))
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.append((*prefix, i))
            out.extend(_paths(v, (*prefix, i)))
    return out


def _resolved_default() -> dict:
    return resolve(read_toml(None))


BASE = _resolved_default()
PATHS = _paths(BASE)

scalars = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-10, max_value=10),
    st.sampled_from([0, 1, -1, 0.5, 1e300, -1e-300, 500, 10_000]),
    st.text(max_size=12),
    st.sampled_from(["", "nurture", "lost", "ae_close", "sdr", "warm", "fixed", "pool"]),
    st.booleans(),
)
values = st.one_of(
    scalars,
    st.lists(scalars, max_size=4),
    st.dictionaries(st.text(max_size=8), scalars, max_size=3),
    st.fixed_dictionaries({"dist": st.sampled_from(["fixed", "exponential", "gamma", "beta",
                                                     "lognormal", "uniform", "empirical"]),
                           "value": scalars, "mean": scalars}),
)
mutation = st.tuples(st.sampled_from(("delete", "replace", "rename", "scale")),
                     st.integers(0, len(PATHS) - 1), values, st.text(max_size=10))


def _mutate(data: dict, kind: str, index: int, value, name: str) -> None:
    path = PATHS[index]
    node = data
    for p in path[:-1]:
        try:
            node = node[p]
        except (KeyError, IndexError, TypeError):
            return  # an earlier mutation removed the way there
    last = path[-1]
    if isinstance(node, dict) and last in node:
        if kind == "delete":
            del node[last]
        elif kind == "rename" and name:
            node[name] = node.pop(last)
        elif kind == "scale" and isinstance(node[last], (int, float)) and not isinstance(
                node[last], bool):
            node[last] = node[last] * (value if isinstance(value, (int, float)) else -1)
        else:
            node[last] = value
    elif isinstance(node, list) and isinstance(last, int) and last < len(node):
        if kind == "delete":
            node.pop(last)
        else:
            node[last] = value


def _only_config_errors(data: dict) -> None:
    try:
        config = validate(data)
    except ConfigError as exc:
        assert "\n" not in str(exc)
        assert exc.path is not None
        return
    try:
        spec = compile_spec(config)
    except ConfigError as exc:  # a spec check the schema cannot express
        assert "\n" not in str(exc)
        return
    assert spec.n_stages == len(config.stages)
    assert math.isfinite(spec.horizon)


@settings(max_examples=int(os.environ.get("GTMSIM_FUZZ_EXAMPLES", 300)), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutation, min_size=1, max_size=4))
def test_random_configs_give_config_errors_or_compile(mutations):
    data = copy.deepcopy(BASE)
    for m in mutations:
        _mutate(data, *m)
    _only_config_errors(data)


@settings(max_examples=150, deadline=None)
@given(profile=st.one_of(st.none(), st.text(max_size=10),
                         st.sampled_from(["ideal", "stressed", "x.toml"])),
       overrides=st.lists(st.one_of(
           st.text(max_size=20),
           st.builds(lambda p, v: f"{'.'.join(map(str, PATHS[p]))}={v}",
                     st.integers(0, len(PATHS) - 1),
                     st.sampled_from(["1", "-1", "0.5", "'x'", "[1]", "{a=1}", "true", "nan",
                                      "1e9", "", "{ value = 1, range = [0, 2] }"]))),
           max_size=3))
def test_random_profiles_and_overrides_give_config_errors(profile, overrides):
    try:
        data = resolve(read_toml(None), profile, overrides)
    except ConfigError as exc:
        assert "\n" not in str(exc)
        return
    _only_config_errors(data)


def test_docs_list_every_value_the_stressed_profile_changes():
    """docs/model.md's table of the `stressed` profile is the profile: each value the profile
    changes from `realistic` appears in the table's row for it, with its range where it is
    uncertain (only the centre was checked), beside the realistic value it replaces, and the
    table has no row for a parameter the profile leaves alone."""
    import re
    from pathlib import Path

    from gtmsim.config.schema import Uncertain

    text = (Path(__file__).resolve().parents[1] / "docs" / "model.md").read_text()
    table = text.split("**The `stressed` profile**")[1].split("\n\n")[1]
    rows = {}
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        mech = re.match(r"`(\w+)\.", cells[0]).group(1)
        for name in re.findall(r"(?:`\w+\.|`)(\w+)`", cells[0]):
            rows[(mech, name)] = tuple([float(x) for x in re.findall(r"\d+(?:\.\d+)?", c)]
                                       for c in cells[1:3])

    def shown(value, cell: list[float]) -> bool:
        """The value in the cell's numbers; an uncertain one as centre, low, high in a row."""
        want = ([value.value, *value.range] if isinstance(value, Uncertain) else [value])
        return any(cell[i:i + len(want)] == want for i in range(len(cell)))

    real = load_config(profile="realistic").people
    stressed = load_config(profile="stressed").people
    changed = set()
    for mech in type(stressed).model_fields:
        for name in type(getattr(stressed, mech)).model_fields:
            value = getattr(getattr(stressed, mech), name)
            if value == getattr(getattr(real, mech), name):
                continue
            changed.add((mech, name))
            assert (mech, name) in rows, f"{mech}.{name} is not in the stressed table"
            assert shown(value, rows[(mech, name)][1]), (mech, name, value)
            before = getattr(getattr(real, mech), name)
            assert shown(before, rows[(mech, name)][0]), (mech, name, before)
    assert set(rows) == changed


def test_a_name_with_a_dot_is_refused(tmp_path):
    """A team or channel named with a dot ran, but no --set or lever path could reach it
    (paths split on dots, quoted or not)."""
    from pathlib import Path

    import gtmsim

    text = (Path(gtmsim.__file__).parent / "config" / "b2b_saas.toml").read_text()
    text += ('\n[channels."web.form"]\nentry = "mql_review"\nrate_per_week = 1\n'
             'quality = { dist = "beta", a = 1, b = 2 }\nvalue = { dist = "fixed", value = 1 }\n')
    path = tmp_path / "dotted.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="name 'web.form' holds a dot"):
        load_config(path)


def test_a_stage_name_with_a_colon_is_refused(tmp_path):
    """A stage named 'mql_review:leaked' ran, and its event log rows read as mql_review's
    leaks (a leak row's activity is `<stage>:leaked`)."""
    from pathlib import Path

    import gtmsim

    text = (Path(gtmsim.__file__).parent / "config" / "b2b_saas.toml").read_text()
    text += ('\n[stages."mql_review:leaked"]\nteam = "marketing"\nkind = "review"\n'
             'effort_hours = { dist = "fixed", value = 0.1 }\nthreshold = 0.3\n'
             'routes = { qualified = "sdr_qualify", recycled = "nurture", '
             'rejected = "disqualified" }\n')
    path = tmp_path / "colon.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="name 'mql_review:leaked' holds a colon"):
        load_config(path)


@pytest.mark.parametrize("name", ["", " "])
def test_a_blank_name_is_refused(tmp_path, name):
    """A stage named "" ran, and as nurture.return_stage it compiled to -1, the lead's own
    entry stage, not the stage named; no --set or lever path reaches a blank name either."""
    data = read_toml(None)
    data["stages"][name] = data["stages"].pop("mql_review")
    for ch in data["channels"].values():
        if ch["entry"] == "mql_review":
            ch["entry"] = name
    data["nurture"]["return_stage"] = name
    data["levers"] = {}
    data["handoffs"]["mql_to_sdr"]["from"] = name
    data["teams"]["marketing"]["kpi"]["stage"] = name
    path = tmp_path / "blank.toml"
    path.write_text(tomli_w.dumps(data))
    with pytest.raises(ConfigError, match=f"stages: name {name!r} is blank"):
        load_config(path)


def test_a_profile_file_named_in_a_config_is_found_beside_it(tmp_path):
    """`profile = "people.toml"` in a config was read from the working folder, and failed
    with 'no such config file' unless the command ran beside the config."""
    (tmp_path / "people.toml").write_text("[people.latency]\nmedian_hours = 3.0\n")
    raw = read_toml(None)
    raw["profile"] = "people.toml"
    raw.get("people", {}).pop("latency", None)
    (tmp_path / "c.toml").write_text(tomli_w.dumps(raw))
    config = load_config(tmp_path / "c.toml")
    assert config.people.latency.median_hours == 3.0


def test_docs_give_every_default_of_the_human_model_with_its_source():
    """docs/model.md's table of `[people]` defaults is the schema's: every parameter of every
    mechanism (its switch aside) has a row showing the default the `realistic` profile uses
    (an uncertain value by its centre and range), and a source: a publication from the
    document's table of sources, or **assumption**."""
    import re
    from pathlib import Path

    from gtmsim.config.schema import Uncertain

    text = (Path(__file__).resolve().parents[1] / "docs" / "model.md").read_text()
    sources = text.split("| key | publication | trust |")[1].split("\n\n")[0]
    known = [line.strip("|").split("|")[0].strip() for line in sources.splitlines()[2:]]
    table = text.split("| parameter | default | source |")[1].split("\n\n")[0]
    rows = {}
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        mech, name = re.match(r"`(\w+)\.(\w+)`", cells[0]).groups()
        rows[(mech, name)] = cells[1], cells[2]
    people = load_config(profile="realistic").people
    expected = set()
    for mech in type(people).model_fields:
        for name in type(getattr(people, mech)).model_fields:
            if name == "enabled":
                continue
            expected.add((mech, name))
            assert (mech, name) in rows, f"{mech}.{name} has no row in docs/model.md"
            value = getattr(getattr(people, mech), name)
            shown, source = rows[(mech, name)]
            want = [value.value, *value.range] if isinstance(value, Uncertain) else [value]
            number = r"(-?\d+(?:\.\d+)?)"
            pattern = (rf"Uncertain\({number}, \[{number}, {number}\]\)"
                       if isinstance(value, Uncertain) else number)
            found = re.match(pattern + r"(?: |$)", shown)
            assert found and [float(x) for x in found.groups()] == want, (mech, name, shown)
            assert "**assumption**" in source or any(k in source for k in known), (
                f"{mech}.{name}: no source and not marked an assumption")
    assert set(rows) == expected


@pytest.mark.parametrize("extra, match", [
    # a second channel named 'created': leads_created was that channel's leads, not the total
    ('[channels.created]\nentry = "mql_review"\nrate_per_week = 1\n'
     'quality = { dist = "beta", a = 1, b = 2 }\nvalue = { dist = "fixed", value = 1 }\n',
     "channels.created: its result column 'leads_created' is taken"),
    # a team named 'at_end': open_at_end was its open leads, not the sum over teams
    ('[teams.at_end]\nheadcount = 1\n[stages.late]\nteam = "at_end"\nkind = "review"\n'
     'effort_hours = { dist = "fixed", value = 1 }\nroutes = { qualified = "ae_close" }\n'
     '[channels.late]\nentry = "late"\nrate_per_week = 1\n'
     'quality = { dist = "beta", a = 1, b = 2 }\nvalue = { dist = "fixed", value = 1 }\n',
     "teams.at_end: its result column 'open_at_end' is taken"),
    # a team 'target_ae' with a KPI: its kpi_target_ae was team ae's KPI target, or the reverse
    ('[teams.target_ae]\nheadcount = 1\n'
     'kpi = { metric = "passed", stage = "late", target_per_quarter = 5 }\n'
     '[stages.late]\nteam = "target_ae"\nkind = "review"\n'
     'effort_hours = { dist = "fixed", value = 1 }\nroutes = { qualified = "ae_close" }\n'
     '[channels.late]\nentry = "late"\nrate_per_week = 1\n'
     'quality = { dist = "beta", a = 1, b = 2 }\nvalue = { dist = "fixed", value = 1 }\n',
     "'kpi_target_ae' is taken by teams"),
])
def test_a_name_whose_result_column_is_another_ones_is_refused(tmp_path, extra, match):
    """Result columns are a prefix and a name: a channel, team or stage whose column was
    another's wrote over it, a wrong number in replications.parquet and the summary."""
    from pathlib import Path

    import gtmsim

    text = (Path(gtmsim.__file__).parent / "config" / "b2b_saas.toml").read_text()
    path = tmp_path / "clash.toml"
    path.write_text(text + "\n" + extra)
    with pytest.raises(ConfigError, match=match):
        load_config(path)


def test_the_fixed_result_columns_are_every_column_not_named_after_a_part():
    """The clash check's list of whole-run columns is every column replication_row writes
    beside those named after a channel, team, stage or handoff."""
    from gtmsim.config.loader import _FIXED_COLUMNS
    from gtmsim.outcomes import Tally, replication_row

    config = load_config(None)
    spec = compile_spec(config)
    names = [*config.channels, *config.teams, *config.stages, *spec.edge_names]
    fixed = [c for c in replication_row(Tally(spec), spec)
             if not any(c.endswith("_" + n) for n in names)]
    assert set(fixed) <= set(_FIXED_COLUMNS)
    assert {"leads_created", "open_at_end"} <= set(fixed)


def test_docs_give_every_value_of_the_embedded_config():
    """docs/model.md's table of the embedded config's defaults shows every number the config
    sets (the calendar aside, which section 1 gives), and each row has a source or is marked an
    assumption: a value changed in the config and not in the table fails here. The enablement
    hours (4), the channels' volumes, the SLAs, staffing and KPI targets were missing, and so
    were the levers' bounds."""
    import re
    from pathlib import Path

    import gtmsim
    from gtmsim.config.loader import read_toml

    text = (Path(__file__).resolve().parents[1] / "docs" / "model.md").read_text()
    table = text.split("Defaults of the embedded B2B SaaS config")[1].split("## 6.")[0]
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    shown: set[float] = set()
    for line in rows[1:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert "**assumption**" in cells[2] or any(
            key in cells[2] for key in ("HBR", "LRM", "Velocify", "Bridge", "Benchmarks",
                                        "Marketo", "Sherpa", "run settings")), cells[0]
        for number, millions in re.findall(r"(\d[\d,]*(?:\.\d+)?)( M\b)?", cells[0] + cells[1]):
            shown.add(round(float(number.replace(",", "")) * (1e6 if millions else 1), 6))

    def numbers(node, path=()):
        if isinstance(node, dict):
            for key, value in node.items():
                yield from numbers(value, (*path, key))
        elif isinstance(node, list):
            for value in node:
                yield from numbers(value, path)
        elif isinstance(node, int | float) and not isinstance(node, bool):
            yield ".".join(path), float(node)

    raw = read_toml(Path(gtmsim.__file__).parent / "config" / "b2b_saas.toml")
    raw.pop("calendar")
    missing = {path: value for path, value in numbers(raw) if round(value, 6) not in shown}
    assert not missing, f"values of the embedded config not in docs/model.md: {missing}"


def test_a_lever_may_choose_among_whole_numbers_for_a_headcount():
    """Choices of whole numbers were read as 4.0, 6.0, 8.0, and a headcount lever with
    choices was refused ('may set teams.sdr.headcount = 4.0 ... expected an integer')."""
    from gtmsim.optimize import apply_design

    config = load_config(None, None, [
        'levers.sdr_headcount={path="teams.sdr.headcount",choices=[4,6,8]}'])
    assert config.levers["sdr_headcount"].choices == [4, 6, 8]
    assert apply_design(config, {"sdr_headcount": 4}).teams["sdr"].headcount == 4
    mixed = load_config(None, None, ['levers.sdr_sla={path="stages.sdr_qualify.sla_hours",'
                                     'choices=[4,8.0,24.5]}'])
    assert apply_design(mixed, {"sdr_sla": 24.5}).stages["sdr_qualify"].sla_hours == 24.5


def test_two_handoffs_whose_trust_columns_are_one_are_refused(tmp_path):
    """A handoff's trust column is trust_<from>-><to>: stages a -> 'b->c' and 'a->b' -> c
    wrote one column trust_a->b->c, the second edge's trust over the first's."""
    stage = ('[stages."{}"]\nteam = "{}"\nkind = "review"\n'
             'effort_hours = {{ dist = "fixed", value = 0.1 }}\nroutes = {{ qualified = "{}" }}\n')
    text = ('[channels.web]\nentry = "a"\nrate_per_week = 10\n'
            'quality = { dist = "beta", a = 2, b = 4 }\nvalue = { dist = "fixed", value = 1 }\n'
            '[teams.t1]\nheadcount = 1\n[teams.t2]\nheadcount = 1\n'
            + stage.format("a", "t1", "b->c") + stage.format("a->b", "t1", "c")
            + stage.format("b->c", "t2", "nurture") + stage.format("c", "t2", "nurture"))
    path = tmp_path / "arrows.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="stages.a->b: its result column 'trust_a->b->c' is "
                       "taken by stages.a"):
        load_config(path)
    # one such edge alone is fine: its column is its own
    path.write_text(text.replace('qualified = "c"', 'qualified = "nurture"'))
    assert compile_spec(load_config(path)).edge_names == ("a->b->c",)


def test_two_handoffs_of_one_pair_of_stages_are_refused():
    """Handoffs h1 (warm) and h2 (crm_drop) on one edge loaded, and the spec kept the last
    one's protocol: a lever on handoffs.h1.protocol changed nothing the engines read."""
    second = ['handoffs.again={from="mql_review", to="sdr_qualify", protocol="warm"}']
    with pytest.raises(ConfigError, match="handoffs.again: joins 'mql_review' to "
                       "'sdr_qualify', as handoffs.mql_to_sdr does"):
        load_config(None, None, second)
