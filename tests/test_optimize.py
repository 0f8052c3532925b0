"""Foundations of robust design search: levers, scenarios, robust statistics, evaluation."""

from __future__ import annotations

import importlib

import numpy as np
import polars as pl
import pytest

from gtmsim.config import load_config
from gtmsim.errors import ConfigError, GtmsimError
from gtmsim.optimize import (
    annual_cost,
    apply_design,
    current_design,
    draw_scenarios,
    evaluate,
    robust_score,
    uncertain_parameters,
)
from gtmsim.optimize.objectives import cvar, regret


@pytest.fixture(scope="module")
def config():
    return load_config(profile="realistic")


def test_robust_statistics():
    x = np.arange(1, 101, dtype=float)
    assert robust_score("mean", x) == pytest.approx(50.5)
    assert robust_score("cvar10", x) == pytest.approx(5.5)  # mean of the worst ten
    assert robust_score("p10", x) == pytest.approx(np.quantile(x, 0.1))
    assert robust_score("satisficing", x, target=91) == pytest.approx(0.10)
    assert cvar(np.array([3.0]), 0.1) == 3.0
    with pytest.raises(ValueError, match="unknown objective"):
        robust_score("median-ish", x)


def test_scores_refuse_what_they_cannot_score():
    """A NaN score would pass silently into the optimiser; regret needs every design."""
    with pytest.raises(ValueError, match="regret compares designs"):
        robust_score("regret", np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="0 values"):
        robust_score("mean", np.array([]))
    with pytest.raises(ValueError, match="not finite"):
        robust_score("cvar10", np.array([1.0, np.nan]))
    for target in ("1", True, np.nan):  # NumPy's UFuncTypeError for '1', a share for True
        with pytest.raises(ValueError, match="satisficing: target must be a finite number"):
            robust_score("satisficing", np.array([1.0, 2.0]), target=target)
    assert robust_score("satisficing", np.array([1.0, 2.0]), target=np.float64(2)) == 0.5


def test_scenario_arguments_and_values_are_checked(config):
    from gtmsim.optimize import Scenario, evaluate

    for kwargs, words in [({"seed": 1.5}, "seed: must be a whole number"),
                          ({"seed": -1}, "seed: must be a whole number of at least 0"),
                          ({"first_seed_index": -1}, "first_seed_index: must be"),
                          ({"k": 0}, "scenarios: must be a whole number of at least 1")]:
        args = {"k": 2, "seed": 1, **kwargs}
        with pytest.raises(GtmsimError, match=words):
            draw_scenarios(config, args.pop("k"), **args)
    assert len(draw_scenarios(config, np.int64(2), seed=np.int64(1))) == 2
    # a scenario design is checked also where no parameter is uncertain and none is drawn
    ideal = load_config(profile="ideal")
    assert not uncertain_parameters(ideal)
    for c in (config, ideal):
        with pytest.raises(GtmsimError, match="unknown scenario design 'bogus'"):
            draw_scenarios(c, 2, 1, method="bogus")
    # a scenario value out of its meaning is named by the user's key, not the spec's
    with pytest.raises(ConfigError, match="people.forgetting.probability: must lie in"):
        evaluate(config, {}, [Scenario(0, {"people.forgetting.probability": 1.5}, 1)], 1)
    with pytest.raises(TypeError, match="scenarios: expected Scenario objects"):
        evaluate(config, {}, [{"people.latency.median_hours": 1.0}], 1)
    with pytest.raises(TypeError, match="config: expected a Config"):
        evaluate("configs/b2b_saas.toml", {}, draw_scenarios(config, 1, seed=1), 1)
    # an empty list or tuple is not "no design": it ran silently as the config's own
    for design in ([], ()):
        with pytest.raises(TypeError, match="design: expected a mapping"):
            evaluate(config, design, draw_scenarios(config, 1, seed=1), 1)


@pytest.mark.parametrize("call", [
    lambda c: draw_scenarios(c, 2, 1), uncertain_parameters, current_design, annual_cost,
    lambda c: apply_design(c, {}),
], ids=["draw_scenarios", "uncertain_parameters", "current_design", "annual_cost",
        "apply_design"])
def test_a_path_where_a_config_belongs_is_named(call):
    """A notebook user's path (or anything not a loaded Config) is named, not an
    AttributeError from inside ('str' object has no attribute 'people')."""
    with pytest.raises(TypeError, match="config: expected a Config"):
        call("configs/b2b_saas.toml")


def test_regret_against_the_best_design_per_scenario():
    """A design's largest shortfall against the best design in a scenario. The mean
    shortfall ranked designs exactly as their means do (the per-scenario best's mean minus
    the design's), so `--objective regret` could never choose another design than `mean`."""
    m = np.array([[10.0, 5.0], [8.0, 9.0]])  # design 0 best in scenario 0, design 1 in 1
    assert regret(m) == pytest.approx([4.0, 2.0])
    m = np.array([[100.0, 0.0, 110.0], [80.0, 50.0, 70.0]])  # 0 has the higher mean
    assert regret(m) == pytest.approx([50.0, 40.0])  # 1 the smaller regret


def test_levers_read_and_apply(config):
    design = current_design(config)
    assert design["sdr_headcount"] == config.teams["sdr"].headcount
    changed = apply_design(config, {"sdr_headcount": 9.0, "sdr_to_ae_protocol": "warm"})
    assert changed.teams["sdr"].headcount == 9
    assert changed.handoffs["sdr_to_ae"].protocol == "warm"
    assert annual_cost(changed) == annual_cost(config) + 3 * config.teams["sdr"].cost_per_head
    # numpy's numbers (a design from a grid) are numbers
    assert apply_design(config, {"sdr_headcount": np.int64(9)}).teams["sdr"].headcount == 9
    threshold = apply_design(config, {"mql_threshold": np.float64(0.4)})
    assert threshold.stages["mql_review"].threshold == 0.4
    with pytest.raises(ConfigError, match="levers.sdr_headcount"):
        apply_design(config, {"sdr_headcount": 99})
    # 6.5 heads is a mistake, not a 6 (it was rounded, half to even)
    with pytest.raises(ConfigError, match="levers.sdr_headcount: expected a whole number"):
        apply_design(config, {"sdr_headcount": 6.5})
    with pytest.raises(ConfigError, match="levers.sdr_headcount: expected a number"):
        apply_design(config, {"sdr_headcount": np.True_})
    with pytest.raises(ConfigError, match="levers.nope"):
        apply_design(config, {"nope": 1})
    with pytest.raises(TypeError, match="design: expected a mapping"):
        apply_design(config, [("sdr_headcount", 9)])


def test_evaluate_checks_a_hand_made_scenario_before_running(config, monkeypatch):
    """A Scenario built by hand with a seed past 2**63 - 1 ran every scenario and then
    failed inside polars (conversion from `u64` to `i64` failed in column 'literal'); a text
    index made a text `scenario` column. Both are named before anything runs, and the
    `scenario` column is Int64 whatever the index (it was Int32 below 2**31)."""
    from gtmsim.optimize import Scenario

    ev = importlib.import_module("gtmsim.optimize.evaluate")  # the module, not the function
    runs = []
    monkeypatch.setattr(ev, "simulate", lambda *a, **k: runs.append(a) or 1 / 0)
    for bad, words in [(Scenario(0, {}, 2**63), r"scenarios\[1\].seed: must be at most"),
                       (Scenario(0, {}, -1), r"scenarios\[1\].seed: must be a whole number"),
                       (Scenario("a", {}, 1), r"scenarios\[1\].index: must be a whole")]:
        with pytest.raises(GtmsimError, match=words):
            evaluate(config, {}, [Scenario(0, {}, 5), bad], 1)
    assert not runs
    monkeypatch.undo()
    cfg = load_config(profile="ideal", overrides=["run.horizon_days=14", "run.warmup_days=0"])
    df = evaluate(cfg, {}, [Scenario(3, {}, 2**63 - 1)], 1)
    assert df.schema["scenario"] == pl.Int64 and df.schema["scenario_seed"] == pl.Int64
    assert df["scenario_seed"].to_list() == [2**63 - 1]


def test_levers_of_a_config_changed_after_loading_are_checked(config):
    """A notebook user's config changed in place: a lever added as a dict was an
    AttributeError ('dict' object has no attribute 'choices'), and a lever's path moved to a
    stage that does not exist made a new, half-empty stage there ('stages.nope.team: required
    key is missing') instead of naming the lever."""
    added = config.model_copy(deep=True)
    added.levers["mql_threshold"] = {"path": "stages.mql_review.threshold", "low": 0.1,
                                     "high": 0.5}
    assert current_design(added)["mql_threshold"] == config.stages["mql_review"].threshold
    assert apply_design(added, {"mql_threshold": 0.2}).stages["mql_review"].threshold == 0.2
    moved = config.model_copy(deep=True)
    moved.levers["mql_threshold"].path = "stages.nope.threshold"
    for call in (current_design, lambda c: apply_design(c, {"mql_threshold": 0.2})):
        with pytest.raises(ConfigError, match=r"levers.mql_threshold.path: no config value at "
                                              r"'stages.nope'"):
            call(moved)


def test_scenarios_and_cost_of_a_config_changed_after_loading(config):
    """A channel or team added to a loaded config as a dict (run and compile_spec take it):
    uncertain_parameters and draw_scenarios were an AttributeError ('dict' object has no
    attribute 'rate_per_week'), and so was annual_cost ('... no attribute 'headcount'')."""
    changed = config.model_copy(deep=True)
    events = changed.channels["partner"].model_dump(by_alias=True, exclude_none=True)
    events["rate_per_week"] = {"value": 10.0, "range": [5.0, 20.0]}
    changed.channels["events"] = events
    assert uncertain_parameters(changed)["channels.events.rate_per_week"] == (5.0, 20.0)
    drawn = draw_scenarios(changed, 2, 1)
    assert all(5.0 <= sc.values["channels.events.rate_per_week"] <= 20.0 for sc in drawn)
    changed.teams["sdr"] = changed.teams["sdr"].model_dump(by_alias=True) | {"headcount": 9}
    assert annual_cost(changed) == annual_cost(config) + 3 * config.teams["sdr"].cost_per_head


def test_levers_take_numpy_scalars_of_every_kind_and_suggest_a_name(config):
    """A numpy bool for a choice lever was refused ('expected true or false, got np.True_')
    though numpy numbers were taken; a misspelt lever had no suggestion, unlike the sweep's."""
    assert apply_design(config, {"feedback": np.bool_(True)}).design.feedback.enabled is True
    warm = apply_design(config, {"sdr_to_ae_protocol": np.str_("warm")})
    assert warm.handoffs["sdr_to_ae"].protocol == "warm"
    with pytest.raises(ConfigError, match="levers.sdr_headcont: no such lever in the config "
                                          r"\(did you mean 'sdr_headcount'\?\)"):
        apply_design(config, {"sdr_headcont": 4})


def test_scenarios_cover_uncertain_ranges(config):
    params = uncertain_parameters(config)
    assert "people.forgetting.probability" in params
    scen = draw_scenarios(config, 16, seed=3)
    assert len({s.seed for s in scen}) == 16
    for name, (lo, hi) in params.items():
        x = np.array([s.values[name] for s in scen])
        assert lo <= x.min() and x.max() <= hi
        # a quasi-random design spreads 16 points over the range: every quarter is visited
        assert len(np.unique(np.floor((x - lo) / (hi - lo) * 4))) == 4
    again = draw_scenarios(config, 16, seed=3)
    assert [s.seed for s in again] == [s.seed for s in scen]
    held_out = draw_scenarios(config, 16, seed=3, first_seed_index=1)
    assert not {s.seed for s in held_out} & {s.seed for s in scen}
    with pytest.raises(GtmsimError):
        draw_scenarios(config, 0, seed=3)


def test_ideal_profile_has_no_uncertainty():
    assert uncertain_parameters(load_config(profile="ideal")) == {}


def test_evaluation_uses_common_random_numbers():
    cfg = load_config(profile="realistic",
                      overrides=["run.warmup_days=14", "run.horizon_days=21"])
    scen = draw_scenarios(cfg, 2, seed=5)
    a = evaluate(cfg, {}, scen, replications=1)
    b = evaluate(cfg, {}, scen, replications=1)
    assert a.equals(b)
    assert a["scenario"].to_list() == [0, 1]
    assert a["leads_created"].to_list() != [a["leads_created"][0]] * 2  # scenarios differ


def test_evaluation_refuses_bad_scenarios_and_designs():
    from gtmsim.optimize.evaluate import per_scenario
    from gtmsim.optimize.scenarios import Scenario

    cfg = load_config(profile="realistic", overrides=["run.warmup_days=7", "run.horizon_days=7"])
    with pytest.raises(ConfigError, match="unknown parameter 'people.latency.nope'"):
        evaluate(cfg, {}, [Scenario(0, {"people.latency.nope": 1.0}, 5)], 1)
    with pytest.raises(ConfigError, match="expected a finite number"):
        evaluate(cfg, {}, [Scenario(0, {"people.latency.median_hours": float("nan")}, 5)], 1)
    with pytest.raises(GtmsimError, match="at least one scenario"):
        evaluate(cfg, {}, [], 1)
    # a count for the scenario list was a raw "'int' object is not iterable"
    with pytest.raises(TypeError, match="scenarios: expected a list of Scenario objects"):
        evaluate(cfg, None, 4, 2)
    for value in ("6", None, float("nan")):
        with pytest.raises(ConfigError, match="levers.sdr_headcount: expected a number"):
            evaluate(cfg, {"sdr_headcount": value}, draw_scenarios(cfg, 1, seed=1), 1)
    df = evaluate(cfg, {}, draw_scenarios(cfg, 1, seed=1), 1)
    with pytest.raises(GtmsimError, match="no column 'nope'"):
        per_scenario(df, "nope")


def test_what_breaks_finds_the_planted_condition():
    from gtmsim.optimize.breaks import what_breaks
    from gtmsim.optimize.scenarios import Scenario

    rng = np.random.default_rng(0)
    scen = [Scenario(i, {"people.forgetting.probability": rng.uniform(0.02, 0.08),
                         "people.turnover.annual_attrition": rng.uniform(0.2, 0.45),
                         "people.compliance.probability": rng.uniform(0.4, 0.9)}, i)
            for i in range(200)]
    # planted: bookings collapse when forgetting > 0.06 and attrition > 0.35
    values = np.array([50.0 if s.values["people.forgetting.probability"] > 0.06
                       and s.values["people.turnover.annual_attrition"] > 0.35 else 100.0
                       for s in scen])
    b = what_breaks(values, scen, target=75.0)
    params = {r.parameter for r in b.rules}
    assert params == {"people.forgetting.probability", "people.turnover.annual_attrition"}
    # greedy peeling lands near the planted box: most failures inside, few successes
    assert b.failures_in_box >= 0.9 * b.failures
    assert b.failures_in_box >= 0.9 * b.box_size
    text = b.words()
    assert "forgetting.probability > 0.06" in text and "turnover.annual_attrition > 0.35" in text


def test_a_scenario_is_scored_on_its_defined_replications():
    """A replication where the outcome is undefined (NaN: a win rate with no decisions) is
    left out of its scenario's mean, as in a run's summary (polars' mean would make the whole
    scenario NaN, and CVaR would then skip it silently); a scenario undefined everywhere is
    refused, naming the outcome."""
    import polars as pl

    from gtmsim.optimize.evaluate import per_scenario

    df = pl.DataFrame({"scenario": [0, 0, 1, 1], "win_rate": [0.2, float("nan"), 0.3, 0.5]})
    assert per_scenario(df, "win_rate")["win_rate"].to_list() == pytest.approx([0.2, 0.4])
    df = pl.DataFrame({"scenario": [0, 1, 1], "win_rate": [0.2, float("nan"), float("nan")]})
    with pytest.raises(GtmsimError, match="--outcome win_rate: undefined in every replication "
                                          "of scenario 1"):
        per_scenario(df, "win_rate")


def test_tail_objectives_are_searched_without_the_wilcoxon_pruner(config):
    """The Wilcoxon pruner compares designs scenario by scenario (a location test): under a
    tail objective it would stop the very design that is worse on most scenarios but better
    in the worst ones, and the design of least regret (the largest shortfall in a scenario),
    which pruning would also leave unscored. It prunes only searches scored by the mean."""
    import optuna

    from gtmsim.optimize.search import Settings, prepare

    for objective, pruner in (("mean", optuna.pruners.WilcoxonPruner),
                              ("regret", optuna.pruners.NopPruner),
                              ("cvar10", optuna.pruners.NopPruner),
                              ("p10", optuna.pruners.NopPruner),
                              ("satisficing", optuna.pruners.NopPruner)):
        ready = prepare(config, Settings(objective=objective, target=1.0, scenarios=2))
        assert isinstance(ready.study.pruner, pruner), objective


def test_pruned_trial_has_no_score_in_the_trials_table():
    """Optuna keeps a pruned trial's last reported step as its value: one scenario's outcome,
    which read as a score in trials.parquet (above the best trial's, in a real search)."""
    import optuna

    from gtmsim.optimize.search import trials_frame

    study = optuna.create_study(direction="maximize")
    study.optimize(lambda t: 1.0, n_trials=1)

    def pruned(trial):
        trial.report(99.0, 0)
        raise optuna.TrialPruned()

    study.optimize(pruned, n_trials=1)
    frame = trials_frame(study)
    assert frame["state"].to_list() == ["COMPLETE", "PRUNED"]
    assert frame["value_0"].to_list() == [1.0, None]


def test_the_chosen_design_is_the_search_s_not_the_held_out_best():
    """Choosing by the held-out scores and reporting them is the optimiser's curse the held
    out set is there to avoid: the choice is made on the search's scores (ties by the mean
    there), so the held-out numbers stay unbiased estimates."""
    import polars as pl

    from gtmsim.optimize.search import Candidate, pick_best

    def cand(trial, search, held, mean=float("nan")):
        c = Candidate(trial, {"x": trial}, search, 0.0, np.array([held]), pl.DataFrame(),
                      search_mean=mean)
        c.scores = {"mean": held}
        return c

    lucky = cand(2, 90.0, 120.0)  # the held-out best, second in the search
    best = cand(1, 100.0, 95.0)
    own = cand(-1, float("nan"), 130.0)  # a baseline outside the search's top
    assert pick_best([lucky, best, own]) is best
    # satisficing ties (every share 0: no design met the target) go to the higher mean
    a, b = cand(3, 0.0, 1.0, mean=10.0), cand(4, 0.0, 1.0, mean=12.0)
    assert pick_best([a, b]) is b


def test_regret_chooses_on_the_search_scenarios_not_by_the_mean(tmp_path, config, monkeypatch):
    """`--objective regret` chose the mean's design: regret was only scored on the held-out
    scenarios, after the choice. The candidate with the least regret on the search's
    scenarios is chosen (here not the one with the highest mean there), and the held-out
    scenarios, where the mean's design is best in every one, do not move the choice."""
    import optuna
    import polars as pl

    from gtmsim.optimize import search as S

    own = S.current_design(config)
    by_mean = {**own, "sdr_headcount": own["sdr_headcount"] + 1}
    by_regret = {**own, "sdr_headcount": own["sdr_headcount"] + 2}
    search_values = {by_mean["sdr_headcount"]: [100.0, 0.0, 110.0],  # mean 70, regret 50
                     by_regret["sdr_headcount"]: [80.0, 50.0, 70.0]}  # mean 66.7, regret 40
    held = {own["sdr_headcount"]: [1.0, 1.0, 1.0], by_mean["sdr_headcount"]: [90.0, 90.0, 90.0],
            by_regret["sdr_headcount"]: [10.0, 10.0, 10.0]}
    settings = S.Settings(objective="regret", trials=2, scenarios=3, top=5,
                          storage=str(tmp_path / "s.journal"))
    study = optuna.create_study(study_name=settings.study_name, direction="maximize",
                                storage=S.open_storage(settings.storage, None))
    for design in (by_mean, by_regret):
        values = search_values[design["sdr_headcount"]]
        study.add_trial(optuna.trial.create_trial(
            params=design, value=float(np.mean(values)),
            distributions={k: optuna.distributions.CategoricalDistribution([v])
                           for k, v in design.items()},
            user_attrs={"over_budget": -1.0, "scenario_values": values}))
    # the held-out outcome per design, told apart by its SDR headcount
    monkeypatch.setattr(S, "evaluate", lambda cfg, _p, scenarios, *a, **k: pl.DataFrame(
        {"sdr": [cfg.teams["sdr"].headcount]}))
    monkeypatch.setattr(S, "per_scenario", lambda df, outcome: pl.DataFrame(
        {outcome: held[df["sdr"][0]]}))
    result = S.search(config, settings)
    assert result.best.design == by_regret
    assert result.best.search_regret == pytest.approx(40.0)
    assert result.best.scores["regret"] == pytest.approx(80.0)  # held out: 90 - 10
    assert S.pick_best(result.candidates, "mean").design == by_mean
    ownc = next(c for c in result.candidates if c.own)  # never run: no search regret
    assert ownc.trial == -1 and np.isnan(ownc.search_regret)


def test_a_resumed_study_draws_designs_of_its_own(tmp_path, config):
    """A sampler's state is not kept in the storage: a process that resumes or joins a study
    with the study's seed drew again the designs its first trials drew (the same random
    start-up sequence). It mixes in the trials so far and its process, so they are fresh."""
    from gtmsim.optimize.search import Settings, prepare, suggest

    settings = Settings(objective="mean", scenarios=2, seed=4,
                        storage=str(tmp_path / "s.journal"))

    def designs(study, n):
        out = []
        for _ in range(n):
            trial = study.ask()
            out.append(suggest(trial, config))
            study.tell(trial, 1.0)
        return out

    first = designs(prepare(config, settings).study, 4)[1:]  # after the config's own design
    resumed = designs(prepare(config, settings).study, 3)
    assert all(d not in first for d in resumed), (first, resumed)


def test_ideal_vs_robust_verdict_says_when_there_is_no_interval():
    """One held-out scenario has no CI of the mean, under 20 none of the worst 10%: the
    verdict says so instead of printing 'nan'."""
    import math
    from types import SimpleNamespace as N

    from gtmsim.optimize.compare import Comparison

    c = Comparison.__new__(Comparison)
    c.ideal, c.outcome = N(best=N(scores={"mean": 100.0})), "bookings"
    no_kpi = pl.DataFrame({"scenario": [0]})
    c.ideal_tuned = N(scores={"mean": 90.0}, frame=no_kpi)
    c.robust_best = N(scores={"mean": 95.0}, frame=no_kpi)
    c.difference = {"mean": (5.0, math.nan, math.nan), "cvar10": (3.0, math.nan, math.nan)}
    text = c.verdict()
    assert "nan" not in text and "no interval from one held-out scenario" in text
    c.difference["mean"] = (5.0, 1.0, 9.0)
    assert "+5, 95% CI +1 to +9" in c.verdict()


def test_ideal_vs_robust_verdict_says_when_the_robust_design_trails():
    """The verdict's numbers (-14%, CI -599,375 to -151,620) read as a win for 'the robust
    design': it says in words where the robust design stands on the held-out scenarios."""
    import math
    from types import SimpleNamespace as N

    from gtmsim.optimize.compare import Comparison

    c = Comparison.__new__(Comparison)
    c.ideal, c.outcome = N(best=N(scores={"mean": 3_000_000.0})), "bookings"
    no_kpi = pl.DataFrame({"scenario": [0]})  # no team's KPI to set beside the outcome
    c.ideal_tuned = N(scores={"mean": 2_767_569.0}, frame=no_kpi)
    c.robust_best = N(scores={"mean": 2_392_072.0}, frame=no_kpi)
    c.difference = {"mean": (-375_497.0, -599_375.0, -151_620.0),
                    "cvar10": (-222_138.0, math.nan, math.nan)}
    text = c.verdict()
    assert text.endswith("the robust design trails the ideal-tuned one. The robust search did "
                         "not pay off here: its scenarios did not carry over to the held-out "
                         "ones (more --scenarios or --trials may change that)."), text
    c.difference["cvar10"] = (-222_138.0, -300_000.0, 10_000.0)
    assert ("trails the ideal-tuned one on the mean and is not clearly different from it in "
            "the worst 10%.") in c.verdict()
    c.difference = {"mean": (50_000.0, -10_000.0, 110_000.0),
                    "cvar10": (90_000.0, 20_000.0, 160_000.0)}
    assert c.verdict().endswith("the robust design is not clearly different from the "
                                "ideal-tuned one on the mean and beats it in the worst 10%.")


def test_a_small_relative_change_in_the_verdict_keeps_its_sign():
    """The verdict said '(-0%: -16,445 ...)': a loss rounded to a whole percent."""
    import math
    from types import SimpleNamespace as N

    from gtmsim.optimize import compare

    c = compare.Comparison.__new__(compare.Comparison)
    c.ideal, c.outcome = N(best=N(scores={"mean": 5_000_000.0})), "bookings"
    c.ideal_tuned = N(scores={"mean": 4_985_000.0})  # -0.3% of the promise
    c.robust_best = N(scores={"mean": 4_968_555.0})  # -16,445: -0.33%
    c.difference = {"mean": (-16_445.0, math.nan, math.nan),
                    "cvar10": (3.0, math.nan, math.nan)}
    text = c.verdict()
    assert "-0%" not in text and "+0%" not in text
    assert "delivers 4,985,000 (-0.3%)" in text and "(-0.33%: -16,445" in text
    assert [compare.change(x) for x in (0.2, -0.012, 0.004, -0.00001, 0.0)] == [
        "+20%", "-1%", "+0.4%", "-<0.01%", "0%"]


def test_the_chosen_design_is_set_against_the_own_design_in_words():
    """The held-out line says beats / trails / not clearly different by the paired CI, and
    tells the planner to keep the status quo when the chosen design trails it."""
    from gtmsim.optimize.compare import against_own

    def diff(d, lo, hi):
        return {"mean": {"diff": d, "ci_low": lo, "ci_high": hi},
                "cvar10": {"diff": d, "ci_low": None, "ci_high": None}}

    trails = against_own(diff(-5e4, -9e4, -1e4), False, "bookings")
    assert "chosen design trails the config's own design" in trails
    assert "Keep the own design" in trails
    assert "beats" in against_own(diff(5e4, 1e4, 9e4), False, "bookings")
    unclear = against_own(diff(5e3, -9e4, 9e4), False, "bookings")
    assert "is not clearly different from" in unclear and "Keep" not in unclear
    assert "no design found beat it" in against_own(diff(0, 0, 0), True, "bookings")
    # one held-out scenario: no interval, and still a sentence (it had no verb)
    one = against_own(diff(5e3, None, None), False, "bookings")
    assert "the chosen design differs from the config's own design: mean bookings +5,000 " \
        "(one scenario: no interval)" in one


def test_a_baseline_the_search_ran_keeps_its_trial_and_score(config, monkeypatch):
    """The config's own design is the search's first trial: outside the top it was still
    listed as trial -1 with no search score, while trials.parquet showed it as trial 0 with
    one; and an over-budget trial's stand-in value read as a score of 0 in trials.parquet."""
    import optuna
    import polars as pl

    from gtmsim.optimize import search as S

    own = S.current_design(config)
    name, lever = next((k, v) for k, v in config.levers.items() if v.integer)
    other = {**own, name: own[name] + 1 if own[name] + 1 <= lever.high else own[name] - 1}
    study = optuna.create_study(direction="maximize")
    for design, value, over in ((own, 10.0, -1.0), (other, 20.0, -1.0), (other, 0.0, 5.0)):
        study.add_trial(optuna.trial.create_trial(
            params=design, value=value,
            distributions={k: optuna.distributions.CategoricalDistribution([v])
                           for k, v in design.items()},
            user_attrs={"over_budget": over, "scenario_values": [value]}))
    monkeypatch.setattr(S, "evaluate", lambda *a, **k: pl.DataFrame())
    monkeypatch.setattr(S, "per_scenario", lambda df, outcome: pl.DataFrame({outcome: [1.0]}))
    cands = S.held_out_candidates(config, study, S.Settings(top=1), held_out=[])
    by_trial = {c.trial: c for c in cands}
    assert sorted(by_trial) == [0, 1]  # the own design is trial 0, not -1
    assert by_trial[0].own and by_trial[0].search_score == 10.0
    frame = S.trials_frame(study)
    assert frame["value_0"].to_list() == [10.0, 20.0, None]
    assert frame["feasible"].to_list() == [True, True, False]


def test_a_baseline_the_pruner_stopped_keeps_its_trial(config, monkeypatch):
    """A baseline (the ideal-tuned design, enqueued as trial 1) that the Wilcoxon pruner
    stopped was listed as trial -1 'not run by the search', though trials.parquet showed it
    run as trial 1: it keeps its trial number, with no search score (not seen on every
    scenario)."""
    import math

    import optuna
    import polars as pl

    from gtmsim.optimize import search as S

    own = S.current_design(config)
    name, lever = next((k, v) for k, v in config.levers.items() if v.integer)
    other = {**own, name: own[name] + 1 if own[name] + 1 <= lever.high else own[name] - 1}
    worse = {**own, name: lever.low}
    dist = {k: optuna.distributions.CategoricalDistribution([v]) for k, v in own.items()}
    dist |= {name: optuna.distributions.IntDistribution(int(lever.low), int(lever.high))}
    study = optuna.create_study(direction="maximize")
    study.add_trial(optuna.trial.create_trial(
        params=own, value=10.0, distributions=dist,
        user_attrs={"over_budget": -1.0, "scenario_values": [10.0, 10.0]}))
    study.add_trial(optuna.trial.create_trial(
        params=worse, state=optuna.trial.TrialState.PRUNED, distributions=dist,
        intermediate_values={0: 1.0}, user_attrs={"over_budget": -1.0,
                                                  "scenario_values": [1.0, None]}))
    study.add_trial(optuna.trial.create_trial(
        params=other, value=20.0, distributions=dist,
        user_attrs={"over_budget": -1.0, "scenario_values": [20.0, 20.0]}))
    monkeypatch.setattr(S, "evaluate", lambda *a, **k: pl.DataFrame())
    monkeypatch.setattr(S, "per_scenario", lambda df, outcome: pl.DataFrame({outcome: [1.0]}))
    cands = S.held_out_candidates(config, study, S.Settings(top=1), held_out=[],
                                  baselines=[worse], ideal=worse)
    tuned = next(c for c in cands if c.ideal_tuned)
    assert tuned.trial == 1 and math.isnan(tuned.search_score)
    assert tuned.search_values is None and tuned.search_mean == 1.0
    assert S.pick_best(cands).trial == 2


def test_over_budget_in_the_trials_table_is_the_amount_over():
    """trials.parquet's `over_budget` read -435000 for a trial within the budget (the
    constraint's margin, cost minus budget): the README's "the amount" over it is 0 there.
    Feasibility still follows the margin, which the trial keeps for the sampler."""
    import optuna

    from gtmsim.optimize.search import trials_frame

    study = optuna.create_study(direction="maximize")
    for value, margin in ((1.0, -435000.0), (2.0, 0.0), (0.0, 385000.0)):
        study.add_trial(optuna.trial.create_trial(
            params={}, distributions={}, value=value, user_attrs={"over_budget": margin}))
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL))
    frame = trials_frame(study)
    assert frame["over_budget"].to_list() == [0.0, 0.0, 385000.0, None]
    assert frame["feasible"].to_list() == [True, True, False, None]
    assert study.trials[0].user_attrs["over_budget"] == -435000.0  # the margin is kept


def test_compare_ideal_counts_both_searches_trials_ideal_first(config):
    """The CLI's bar stood still through --compare-ideal (no progress reached the searches);
    the trials of both count, the search under ideal first, to the total the CLI shows."""
    from gtmsim.mechanisms import ideal
    from gtmsim.optimize.compare import compare_ideal
    from gtmsim.optimize.search import Settings

    short = config.model_copy(deep=True)
    short.run.horizon_days, short.run.warmup_days = 30, 7
    calls = []
    compare_ideal(ideal(short), short, Settings(trials=3, scenarios=2, replications=1, top=2,
                                                engine="numba"),
                  ideal_trials=2, progress=lambda done, total: calls.append((done, total)))
    assert {total for _, total in calls} == {5}
    done = [d for d, _ in calls]
    assert done == sorted(done) and done[-1] == 5 and 2 in done, calls
    with pytest.raises(GtmsimError, match="ideal_trials: must be a whole number of at least 1"):
        compare_ideal(ideal(short), short, Settings(trials=3), ideal_trials=0)


def test_a_database_url_whose_file_ends_in_journal_is_a_database(tmp_path):
    """sqlite:///x/study.journal was opened as a journal file at the path 'sqlite:/x/...'
    ('cannot open journal file'); a URL is a URL, a bare path ending in .journal a journal."""
    import optuna

    from gtmsim.optimize.search import open_storage

    storage = open_storage(f"sqlite:///{tmp_path / 'study.journal'}", None)
    assert isinstance(storage, optuna.storages.RDBStorage)
    journal = open_storage(str(tmp_path / "other.journal"), None)
    assert isinstance(journal, optuna.storages.JournalStorage)


def test_a_resume_with_another_target_is_refused_only_where_the_target_scores(tmp_path,
                                                                            config):
    """--target scores a trial under satisficing only (elsewhere it feeds the what-breaks
    line, read after the search), but a resume of a cvar10 study with another --target was
    refused as 'scored on other terms (target 1 -> 2)'; a satisficing study still is."""
    import dataclasses

    import optuna

    from gtmsim.optimize.search import Settings, open_storage, prepare

    for objective, refused in (("cvar10", False), ("satisficing", True)):
        old = Settings(objective=objective, target=1e6, scenarios=2, replications=2,
                       trials=1, ideal_trials=0, study_name=objective)
        storage = open_storage(None, tmp_path)
        study = optuna.create_study(study_name=objective, storage=storage,
                                    direction="maximize")
        # as a study of an older gtmsim recorded it too: the target among its terms
        study.set_user_attr("scored_by", {**old.scored_by(config), "target": 1e6})
        new = dataclasses.replace(old, target=2e6)
        if refused:
            with pytest.raises(GtmsimError, match=r"other terms \(target 1000000\.0 -> "):
                prepare(config, new, tmp_path)
        else:
            assert prepare(config, new, tmp_path).study.study_name == objective


def test_a_resume_keeps_the_ideal_baseline_the_study_was_seeded_with(tmp_path, config):
    """`optimize --trials 40` then `--trials 60` into the same folder: the default
    --ideal-trials follows --trials (10 -> 15), so the resume ran the search under ideal
    further, named its new winner the baseline, and the study, seeded at its start with the
    old one, never ran it. The resume keeps the baseline it was seeded with, and the trials
    that chose it, and the search under ideal runs no further."""
    import dataclasses

    import optuna

    from gtmsim.optimize.search import IDEAL_BASELINE, Settings, open_storage, prepare

    short = load_config(profile="realistic", overrides=["run.horizon_days=14",
                                                        "run.warmup_days=7"])
    first = Settings(trials=3, scenarios=2, replications=1, ideal_trials=2, prune=False)
    made = prepare(short, first, tmp_path)
    assert made.study.user_attrs[IDEAL_BASELINE] == {"design": made.ideal, "trials": 2}
    again = prepare(short, dataclasses.replace(first, trials=8, ideal_trials=4), tmp_path)
    assert (again.ideal, again.ideal_trials) == (made.ideal, 2)
    ideal_study = optuna.load_study(study_name="gtmsim-ideal",
                                    storage=open_storage(None, tmp_path))
    assert len(ideal_study.trials) == 2  # not run to 4
    # nor dropped by a resume that asks for no search under ideal
    none = prepare(short, dataclasses.replace(first, ideal_trials=0), tmp_path)
    assert (none.ideal, none.ideal_trials, none.baselines) == (made.ideal, 2, [made.ideal])
    # a study begun with none keeps none: a resume asking for a search under ideal ran it
    bare = tmp_path / "bare"
    assert prepare(short, dataclasses.replace(first, ideal_trials=0), bare).ideal is None
    later = prepare(short, dataclasses.replace(first, trials=8, ideal_trials=3), bare)
    assert (later.ideal, later.ideal_trials, later.baselines) == (None, 0, [])


def test_a_refused_resume_names_the_study_the_user_gave(tmp_path, config):
    """A resume on other terms named 'gtmsim-ideal', the ideal baseline's study, resumed
    first: a name the user never gave. The refusal comes before that search, naming the
    user's study and folder; a companion study refused on its own says what it is."""
    import dataclasses

    import optuna

    from gtmsim.mechanisms import ideal
    from gtmsim.optimize.compare import compare_ideal
    from gtmsim.optimize.search import Settings, open_storage, prepare

    settings = Settings(scenarios=2, replications=3, ideal_trials=2)
    storage = open_storage(None, tmp_path)
    old = dataclasses.replace(settings, replications=2)
    study = optuna.create_study(study_name="gtmsim", storage=storage, direction="maximize")
    study.set_user_attr("scored_by", old.scored_by(config))
    with pytest.raises(GtmsimError) as err:
        prepare(config, settings, tmp_path)
    assert str(err.value).startswith(f"--out: study 'gtmsim' in {tmp_path} was scored on "
                                     "other terms (replications 2 -> 3);"), err.value
    assert "--compare-ideal each" not in str(err.value)  # the user's own study: no companion
    with pytest.raises(GtmsimError, match=r"^--out: study 'gtmsim' in .* \(replications"):
        compare_ideal(ideal(config), config, settings, tmp_path)  # its ideal search first
    # only the ideal baseline's study was there (a first run stopped during its search)
    optuna.delete_study(study_name="gtmsim", storage=storage)
    quick = dataclasses.replace(old, objective="mean", ideal_trials=0)
    study = optuna.create_study(study_name="gtmsim-ideal", storage=storage,
                                direction="maximize")
    study.set_user_attr("scored_by", quick.scored_by(ideal(config)))
    with pytest.raises(GtmsimError) as err:
        prepare(config, settings, tmp_path)
    text = str(err.value)
    assert "gtmsim-ideal" not in text and "(replications 2 -> 3)" in text, text
    assert text.startswith("--out: the search under the ideal profile for the baseline of "
                           f"study 'gtmsim' (--ideal-trials) in {tmp_path} was scored"), text
    # the same folder asked for --compare-ideal (a full search under ideal, in the study of
    # the plain run's short one) was refused on terms the user never changed: it says why
    with pytest.raises(GtmsimError) as err:
        compare_ideal(ideal(config), config, settings, tmp_path)
    assert str(err.value).endswith("optimize with and without --compare-ideal each keep a "
                                   "search under ideal there: give them different --outs")


def test_trial_counts_leave_out_surplus_trials():
    """A surplus trial (closed unrun when processes raced for the last slot) was never
    interrupted; pruned trials count toward --trials as complete ones do."""
    import optuna

    from gtmsim.optimize.search import trial_counts

    study = optuna.create_study(direction="maximize")
    S = optuna.trial.TrialState
    for state, attrs in ((S.COMPLETE, {}), (S.PRUNED, {}), (S.FAIL, {}),
                         (S.FAIL, {"surplus": True})):
        study.add_trial(optuna.trial.create_trial(
            state=state, value=1.0 if state == S.COMPLETE else None, user_attrs=attrs))
    assert trial_counts(study) == {"trials": 2, "trials_interrupted": 1, "trials_refused": 0}


def test_a_flag_lever_is_boolean_in_the_tables():
    """trials.parquet and candidates.parquet stored a flag lever (feedback) as the text
    'True'/'False' while comparison.json has true/false. A column of flags is boolean; one
    whose choices mix kinds is text; numbers stay numbers."""
    from types import SimpleNamespace as N

    import optuna
    import polars as pl

    from gtmsim.optimize.search import candidates_frame, trials_frame

    choices = {"feedback": [False, True], "mode": ["off", 3, True], "heads": [2, 3]}
    study = optuna.create_study(direction="maximize")
    for feedback, mode, heads in ((False, "off", 2), (True, 3, 3), (True, True, 2)):
        params = {"feedback": feedback, "mode": mode, "heads": heads}
        study.add_trial(optuna.trial.create_trial(
            params=params, value=1.0, user_attrs={"over_budget": -1.0},
            distributions={k: optuna.distributions.CategoricalDistribution(choices[k])
                           for k in params}))
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL))
    trials = trials_frame(study)
    assert trials["lever_feedback"].dtype == pl.Boolean
    assert trials["lever_feedback"].to_list() == [False, True, True, None]
    assert trials["lever_mode"].to_list() == ["off", "3", "True", None]
    assert trials["lever_heads"].dtype == pl.Int64
    cands = candidates_frame([
        N(trial=t.number, own=False, ideal_tuned=False, cost=1.0, search_score=1.0,
          search_regret=0.0, scores={}, design=t.params) for t in study.trials[:3]])
    assert cands["lever_feedback"].dtype == pl.Boolean
    assert cands["lever_mode"].dtype == pl.Utf8


def test_a_candidates_interval_stays_where_the_outcome_can_lie():
    """Two held-out scenarios give a t-interval with one degree of freedom, which reached
    below 0 bookings in the optimize text; a share's reaches above 1. Both are cut, as
    `compare` cuts them; the statistic itself is left as it is."""
    import polars as pl

    from gtmsim.optimize.compare import describe
    from gtmsim.optimize.search import Candidate

    def row(outcome, values, shares=()):
        c = Candidate(trial=1, design={}, search_score=0.0, cost=0.0,
                      held_out=np.array(values), frame=pl.DataFrame({"won": [1.0]}))
        return describe(c, outcome, shares)

    r = row("bookings", [100.0, 5000.0])
    assert r["mean_ci"][0] == 0.0 and r["mean_ci"][1] > 5000.0 and r["mean"] == 2550.0
    assert row("kpi_cs", [0.5, 0.99], {"kpi_cs"})["mean_ci"][1] == 1.0
    assert row("kpi_cs", [0.5, 0.99])["mean_ci"][1] > 1.0  # not a share in that model


@pytest.mark.parametrize("outcome", ["leaks_at_sdr_qualify", "never_contacted_share",
                                     "never_contacted_share_inbound", "cycle_days_median",
                                     "attrition_sdr", "open_at_end", "open_sdr",
                                     "queue_ae", "sojourn_sdr"])
def test_an_outcome_where_less_is_better_is_refused_as_the_ranked_one(outcome):
    """Leaks at a stage (they sum to `leaked`, which is refused), the never-contacted share, the
    sales cycle and attrition were accepted and maximised: the design that leaked most won;
    so were the leads left open at the end, a team's queue and its time in system."""
    from gtmsim.errors import GtmsimError
    from gtmsim.outcomes import check_ranked_outcome

    with pytest.raises(GtmsimError, match="less is better"):
        check_ranked_outcome(outcome)
    check_ranked_outcome("bookings")


MARKET = "channels.inbound.rate_per_week"


def test_the_market_is_uncertain_under_every_profile():
    """A channel's lead volume given as {value, range} is a market condition the scenarios
    draw, under `ideal` too (which switches off the people's variability, not the market's);
    a run uses its central value."""
    from gtmsim.spec import compile_spec

    uncertain = [f"{MARKET}={{value = 300, range = [200, 400]}}"]
    fixed = compile_spec(load_config(profile="ideal", overrides=[f"{MARKET}=300"]))
    for profile in ("ideal", "realistic"):
        cfg = load_config(profile=profile, overrides=uncertain)
        params = uncertain_parameters(cfg)
        assert params[MARKET] == (200.0, 400.0)
        assert len(params) == (1 if profile == "ideal" else 6)
    cfg = load_config(profile="ideal", overrides=uncertain)
    assert np.array_equal(compile_spec(cfg).channel_rate, fixed.channel_rate)
    scen = draw_scenarios(cfg, 8, seed=3)
    x = np.array([s.values[MARKET] for s in scen])
    assert 200.0 <= x.min() and x.max() <= 400.0
    assert len(np.unique(np.floor((x - 200.0) / 50.0))) == 4  # every quarter of the range
    for s in scen:
        rate = compile_spec(cfg, s.values).channel_rate
        assert rate[0] == pytest.approx(fixed.channel_rate[0] * s.values[MARKET] / 300.0)
        assert np.array_equal(rate[1:], fixed.channel_rate[1:])


def test_evaluation_meets_each_scenarios_market():
    """Two scenarios that differ only in inbound volume (100 and 600 a week): the leads the
    evaluation counts follow the volume (three weeks: about 300 against 1,800 leads, Poisson
    standard deviations of 17 and 42, so a ratio inside 5-7 holds by more than five of them)."""
    from gtmsim.optimize.scenarios import Scenario

    cfg = load_config(profile="ideal", overrides=["run.warmup_days=0", "run.horizon_days=21",
                                                  f"{MARKET}={{value = 300, range = [50, 800]}}"])
    df = evaluate(cfg, {}, [Scenario(0, {MARKET: 100.0}, 5), Scenario(1, {MARKET: 600.0}, 5)],
                  replications=1)
    low, high = df.sort("scenario")["leads_inbound"].to_list()
    assert 5.0 < high / low < 7.0
    with pytest.raises(ConfigError, match="unknown parameter 'channels.nope.rate_per_week'"):
        evaluate(cfg, {}, [Scenario(0, {"channels.nope.rate_per_week": 1.0}, 5)], 1)
    with pytest.raises(ConfigError, match=rf"{MARKET}: must be >= 0, got -1.0"):
        evaluate(cfg, {}, [Scenario(0, {MARKET: -1.0}, 5)], 1)
    with pytest.raises(ConfigError, match=rf"{MARKET}: expected a finite number"):
        evaluate(cfg, {}, [Scenario(0, {MARKET: "many"}, 5)], 1)


def test_a_close_stages_win_scale_is_part_of_the_market():
    """The market's competition: a close stage's win scale given as {value, range} is drawn by
    the scenarios, and a scenario that halves it halves the chance that a willing buyer picks
    us (two scenarios on one seed, 91 days of the default under ideal: the won deals follow).
    A win scale is the market's only at a close stage."""
    from gtmsim.optimize.scenarios import Scenario
    from gtmsim.spec import compile_spec

    key = "stages.ae_close.win_scale"
    cfg = load_config(profile="ideal", overrides=["run.warmup_days=91", "run.horizon_days=91",
                                                  f"{key}={{value = 0.55, range = [0.3, 0.8]}}"])
    assert uncertain_parameters(cfg) == {key: (0.3, 0.8)}
    close = list(cfg.stages).index("ae_close")
    assert compile_spec(cfg).stage_win_scale[close] == 0.55
    assert compile_spec(cfg, {key: 0.3}).stage_win_scale[close] == 0.3
    df = evaluate(cfg, {}, [Scenario(0, {key: 0.3}, 5), Scenario(1, {key: 0.8}, 5)],
                  replications=4)
    won = df.group_by("scenario").agg(pl.col("won").mean()).sort("scenario")["won"].to_list()
    assert won[1] > 1.5 * won[0]
    with pytest.raises(ConfigError, match="unknown parameter 'stages.mql_review.win_scale'"):
        compile_spec(cfg, {"stages.mql_review.win_scale": 0.5})
    with pytest.raises(ConfigError, match=f"scenario: {key}: must be > 0, got 0"):
        compile_spec(cfg, {key: 0})


def test_what_breaks_says_a_large_market_volume_in_whole_numbers():
    """A channel's volume may run to thousands a week: the rule reads '> 1,520', not the
    '> 1.52e+03' three significant figures gave."""
    from gtmsim.optimize.breaks import Rule

    assert Rule("channels.inbound.rate_per_week", True, 1520.5).words() == (
        "channels.inbound.rate_per_week > 1,520")
    assert Rule("people.forgetting.probability", False, 0.0612).words() == (
        "forgetting.probability <= 0.0612")


@pytest.mark.parametrize("kwargs, words", [
    ({"trials": "5"}, "--trials: expected a whole number"),  # a TypeError naming nothing
    ({"trials": 2.5}, "--trials: expected a whole number"),  # ran
    ({"held_out": 0}, "--held-out: must be at least 1"),  # ran as the default
    ({"ideal_trials": 1.5}, "--ideal-trials: expected a whole number"),
    ({"target": "5"}, "--target: expected a number"),  # 'must be real number, not str'
    ({"study_name": 5}, "--study-name: expected text"),  # an AttributeError
    ({"prune": "no"}, "prune: expected True or False"),  # read as true
    # these three failed in the first trial, after the study had recorded them: the
    # corrected call was then refused as a study scored on other terms
    ({"engine": "Numba"}, "--engine: unknown engine 'Numba'"),
    ({"workers": 0}, "--workers: must be a whole number of at least 1"),
    ({"replications": 10**7}, "--replications: must be at most 1000000"),
])
def test_settings_given_from_python_are_named_when_wrong(kwargs, words):
    from gtmsim.optimize.search import Settings

    with pytest.raises(GtmsimError, match=words):
        Settings(**kwargs).check()
    Settings(trials=np.int64(3), held_out=2, target=np.float64(1.0)).check()


def test_a_bad_setting_leaves_no_study_behind(config, tmp_path):
    """From Python, a wrong engine left a study recording it, and the corrected call was
    refused ("scored on other terms (engine 'Numba' -> 'numba')"); engine=None (the default
    engine, as simulate reads it) was recorded as None, and resuming it with the default
    Settings was refused the same way."""
    from gtmsim.optimize.search import Settings, search

    short = dict(trials=2, scenarios=2, replications=1, top=1, held_out=1)
    with pytest.raises(GtmsimError, match="--engine"):
        search(config, Settings(**short, engine="Numba"), tmp_path / "a")
    search(config, Settings(**short), tmp_path / "a")
    first = search(config, Settings(**short, engine=None), tmp_path / "b")
    again = search(config, Settings(**short), tmp_path / "b")
    assert again.study.trials_dataframe().equals(first.study.trials_dataframe())
    # a study an older gtmsim recorded with engine None resumes too (it was refused "engine
    # None -> 'numba'" whatever engine the call gave)
    from gtmsim.optimize.search import open_storage

    storage = open_storage(None, tmp_path / "b")
    study_id = storage.get_study_id_from_name("gtmsim")
    terms = storage.get_study_user_attrs(study_id)["scored_by"]
    storage.set_study_user_attr(study_id, "scored_by", {**terms, "engine": None})
    for engine in (None, "numba"):
        resumed = search(config, Settings(**short, engine=engine), tmp_path / "b")
        assert resumed.study.trials_dataframe().equals(first.study.trials_dataframe())


def test_a_design_that_meets_its_target_in_one_scenario_is_said_so():
    """`--held-out 1`: 'in its one scenario', not 'in all 1 scenarios'."""
    from gtmsim.optimize.breaks import Breakdown

    assert Breakdown([], 0, 1, 0, 0).words() == "meets the target in its one scenario"
    assert Breakdown([], 0, 8, 0, 0).words() == "meets the target in all 8 scenarios"


def test_a_pareto_front_wider_than_top_keeps_its_best_on_the_main_objective(config,
                                                                           monkeypatch):
    """With two objectives the candidates were the first `--top` designs of the Pareto
    front in trial order, so the front's best on the first objective (the design chosen)
    was dropped when it came later: here the search chose cvar10 20 over 30."""
    import optuna
    import polars as pl

    from gtmsim.optimize import search as S

    own = S.current_design(config)
    name, lever = next((k, v) for k, v in config.levers.items() if v.integer)
    study = optuna.create_study(directions=["maximize", "minimize"])
    for i, (score, cost) in enumerate(((10.0, 1.0), (20.0, 2.0), (30.0, 3.0))):
        design = {**own, name: int(lever.low) + i}
        study.add_trial(optuna.trial.create_trial(
            params=design, values=[score, cost],
            distributions={k: optuna.distributions.CategoricalDistribution([v])
                           for k, v in design.items()},
            user_attrs={"over_budget": -1.0, "scenario_values": [score]}))
    monkeypatch.setattr(S, "evaluate", lambda *a, **k: pl.DataFrame())
    monkeypatch.setattr(S, "per_scenario", lambda df, outcome: pl.DataFrame({outcome: [1.0]}))
    cands = S.held_out_candidates(config, study, S.Settings(objective="cvar10,cost", top=2),
                                  held_out=[])
    assert S.pick_best(cands, "cvar10").search_score == 30.0
    assert {c.trial for c in cands if c.trial >= 0} >= {2, 1}


def test_a_kpi_undefined_in_one_replication_is_left_out_of_the_candidate_s_mean():
    """One held-out replication with no renewals due (a KPI of NaN) made the chosen design's
    CS attainment '-' in the optimize text and null in comparison.json, where `run` and
    `compare` show the mean of the replications where it is defined."""
    import polars as pl

    from gtmsim.optimize.compare import describe
    from gtmsim.optimize.search import Candidate

    frame = pl.DataFrame({"kpi_attainment_cs": [1.2, 1.0, float("nan")],
                          "win_rate": [0.2, float("nan"), 0.3], "won": [4, 0, 6],
                          "leaked_forgotten": [3, 5, 7]})
    c = Candidate(trial=1, design={}, search_score=0.0, cost=0.0,
                  held_out=np.array([1.0, 2.0, 3.0]), frame=frame)
    row = describe(c, "bookings")
    assert row["kpi_attainment_cs"] == pytest.approx(1.1)
    assert row["win_rate"] == pytest.approx(0.25)
    assert row["won"] == pytest.approx(10 / 3) and row["leaked_forgotten"] == 5.0
    undefined = Candidate(trial=1, design={}, search_score=0.0, cost=0.0,
                          held_out=np.array([1.0]),
                          frame=pl.DataFrame({"kpi_attainment_cs": [float("nan")]}))
    assert np.isnan(describe(undefined, "bookings")["kpi_attainment_cs"])


def test_the_own_design_of_a_whole_number_lever_on_an_hours_field_is_its_trial(monkeypatch):
    """A whole-number lever on a field of hours: the config gives 8.0, the search's trial of
    the own design 8. Told apart, the own design was listed twice, as trial 0 and again as
    trial -1 'never run', and the text set the chosen own design against itself."""
    import optuna
    import polars as pl

    from gtmsim.optimize import search as S

    config = load_config(None, "realistic", ["levers.sdr_sla.integer=true"])
    own = S.current_design(config)
    assert own["sdr_sla"] == 8.0
    trial_design = {**own, "sdr_sla": int(own["sdr_sla"])}
    study = optuna.create_study(direction="maximize")
    study.add_trial(optuna.trial.create_trial(
        params=trial_design, value=10.0,
        distributions={k: optuna.distributions.CategoricalDistribution([v])
                       for k, v in trial_design.items()},
        user_attrs={"over_budget": -1.0, "scenario_values": [10.0]}))
    monkeypatch.setattr(S, "evaluate", lambda *a, **k: pl.DataFrame())
    monkeypatch.setattr(S, "per_scenario", lambda df, outcome: pl.DataFrame({outcome: [1.0]}))
    cands = S.held_out_candidates(config, study, S.Settings(), held_out=[],
                                  baselines=[own], ideal=own)
    assert [(c.trial, c.own, c.ideal_tuned) for c in cands] == [(0, True, True)]


def test_a_pruned_trial_keeps_each_value_at_its_scenario(monkeypatch):
    """A pruned trial's outcome per search scenario was stored as the values it had seen,
    closed up (scenario 0's place held the first seen one's), where the cluster's search
    keeps each at its scenario and None for the rest."""
    import polars as pl

    from gtmsim.optimize import search as S

    config = load_config(None, "realistic")
    monkeypatch.setattr(S, "evaluate", lambda cfg, _d, scenarios, *a, **k: pl.DataFrame(
        {"scenario": [sc.index for sc in scenarios]}))
    monkeypatch.setattr(S, "per_scenario", lambda df, outcome: pl.DataFrame(
        {outcome: [100.0 + i for i in df["scenario"]]}))
    calls = []

    def prune_second_trial_at_its_third_scenario(trial):
        calls.append(trial.number)
        return trial.number == 1 and calls.count(1) == 3

    monkeypatch.setattr(S, "should_prune", prune_second_trial_at_its_third_scenario)
    result = S.search(config, S.Settings(objective="mean", trials=2, scenarios=6, top=1))
    pruned = result.study.trials[1]
    assert pruned.state.name == "PRUNED"
    stored = pruned.user_attrs["scenario_values"]
    assert len(stored) == 6
    assert {i: v for i, v in enumerate(stored) if v is not None} == {
        i: 100.0 + i for i in pruned.intermediate_values}


def test_tied_search_scores_keep_the_highest_mean_among_the_candidates(monkeypatch):
    """Satisficing scores tie (every design meets the target in all, or none, of the
    scenarios): the top designs were the first `--top` trials by number, so the design with
    the highest mean among the tied ones (how `pick_best` breaks ties) was not a candidate,
    and the one chosen was not the search's best by its own rule."""
    import optuna
    import polars as pl

    from gtmsim.optimize import search as S

    config = load_config(None, "realistic")
    own = S.current_design(config)
    name, lever = next((k, v) for k, v in config.levers.items() if v.integer)
    study = optuna.create_study(direction="maximize")
    for i, mean in enumerate((10.0, 20.0, 15.0, 40.0, 30.0)):
        design = {**own, name: int(lever.low) + i}
        study.add_trial(optuna.trial.create_trial(
            params=design, value=0.0,
            distributions={k: optuna.distributions.CategoricalDistribution([v])
                           for k, v in design.items()},
            user_attrs={"over_budget": -1.0, "scenario_values": [mean, mean]}))
    monkeypatch.setattr(S, "evaluate", lambda *a, **k: pl.DataFrame())
    monkeypatch.setattr(S, "per_scenario", lambda df, outcome: pl.DataFrame({outcome: [1.0]}))
    settings = S.Settings(objective="satisficing", target=1e12, top=2)
    cands = S.held_out_candidates(config, study, settings, held_out=[])
    assert [c.trial for c in cands if c.trial >= 0][:2] == [3, 4]
    assert S.pick_best(cands, "satisficing").trial == 3


def test_evaluate_refuses_two_scenarios_of_one_index(config, monkeypatch):
    """A search set and a held-out set (each numbered from 0) evaluated together ran, and
    their rows shared `scenario` numbers: per_scenario then averaged scenario i of one set
    with scenario i of the other, so a robust statistic of the result (P10, CVaR10) was taken
    over half the scenarios, each a blend of two. Two scenarios of one index are named
    before anything runs."""
    from gtmsim.optimize import Scenario
    from gtmsim.optimize.evaluate import per_scenario

    ev = importlib.import_module("gtmsim.optimize.evaluate")
    search = draw_scenarios(config, 2, seed=1)
    held_out = draw_scenarios(config, 2, seed=1, first_seed_index=1)
    runs = []
    monkeypatch.setattr(ev, "simulate", lambda *a, **k: runs.append(a) or 1 / 0)
    with pytest.raises(GtmsimError, match=r"^scenarios\[2\].index: 0 is also scenarios\[0\]'s"):
        evaluate(config, {}, search + held_out, 1)
    assert not runs
    monkeypatch.undo()
    cfg = load_config(profile="ideal", overrides=["run.horizon_days=7", "run.warmup_days=0"])
    a, b = draw_scenarios(cfg, 1, seed=1)[0], draw_scenarios(cfg, 1, seed=2)[0]
    df = evaluate(cfg, {}, [a, Scenario(1, b.values, b.seed)], 1)
    assert per_scenario(df).height == 2  # numbered apart, each is its own scenario


def test_draw_scenarios_refuses_more_than_memory_holds(config):
    """2**40 scenarios were numpy's MemoryError (40 TiB for the Sobol points) from the API,
    and a traceback from optimize and compare --scenarios."""
    from gtmsim.optimize.scenarios import MAX_SCENARIOS

    with pytest.raises(GtmsimError, match=f"scenarios: must be at most {MAX_SCENARIOS}"):
        draw_scenarios(config, 2**40, 1)
    assert len(draw_scenarios(config, 3, 1)) == 3


def test_the_batch_call_takes_what_its_hints_say(config):
    """evaluate takes any sequence of scenarios (a tuple of them runs) and any mapping of
    lever values, as it checks; its hints said list and dict, so a type checker refused
    calls that work (apply_design's and compile_spec's likewise)."""
    import typing
    from collections.abc import Mapping, Sequence
    from types import MappingProxyType

    from gtmsim.spec import compile_spec

    def admits(fn, arg, kind):
        hint = typing.get_type_hints(fn)[arg]
        return any(typing.get_origin(t) is kind for t in (hint, *typing.get_args(hint)))

    assert admits(evaluate, "scenarios", Sequence) and admits(evaluate, "design", Mapping)
    assert admits(apply_design, "design", Mapping) and admits(compile_spec, "scenario", Mapping)
    design = MappingProxyType({"sdr_headcount": 4})
    scenarios = tuple(draw_scenarios(config, 2, 1))
    df = evaluate(config, design, scenarios, 1)
    assert df["scenario"].to_list() == [0, 1]
