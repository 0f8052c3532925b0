"""The optimize report: written with the results, self-contained, its numbers comparison.json's."""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys

import pytest

TINY = ["--trials", "6", "--scenarios", "4", "--replications", "1", "--top", "3",
        "--engine", "numba"]


def optimize(out, *args: str) -> None:
    res = subprocess.run([sys.executable, "-m", "gtmsim", "optimize", *TINY, "--out", str(out),
                          *args], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "Warning" not in res.stderr, res.stderr  # nothing printed into the progress bar


def embedded(page: str) -> dict:
    return json.loads(re.search(
        r"<script type='application/json' id='gtmsim-summary'>(.*?)</script>", page).group(1))


def check_page(out) -> tuple[str, dict]:
    """The checks every optimize report passes; returns the page and comparison.json."""
    page = (out / "report.html").read_text(encoding="utf-8")
    comparison = json.loads((out / "comparison.json").read_text())
    assert embedded(page) == comparison  # every number, exactly
    # opens offline: plotly.js is inside the page, once, and nothing is fetched
    assert page.count("* plotly.js v") == 1
    assert not re.search(r"<script[^>]*\ssrc=", page)
    assert not re.search(r"<link[^>]*href=[\"']https?://", page)
    assert not list(out.glob(".*partial*"))  # written atomically
    for title in ("Held-out bookings of each candidate design", "Optimisation history",
                  "What breaks the chosen design"):
        assert title in page, title
    assert html.escape(comparison["what_breaks_it"]["words"]) in page
    # the chosen design's levers and held-out mean are in its table
    best = comparison["robust"] if "robust" in comparison else comparison["best"]
    for lever in best["levers"]:
        assert f"<code>{lever}</code>" in page
    assert f"{best['mean']:,.0f}" in page
    return page, comparison


@pytest.mark.slow
def test_optimize_writes_a_self_contained_report(tmp_path):
    out = tmp_path / "opt"
    optimize(out)
    page, comparison = check_page(out)
    assert "verdict" not in comparison
    # candidates, history, what breaks it; importance where it can be computed, else a note
    assert page.count("Plotly.newPlot") >= 3
    assert "Lever importance" in page or "No lever importance" in page
    # the status quo is named and the chosen design set against it, paired by scenario
    own = [c for c in comparison["candidates"] if c["own"]]
    assert len(own) == 1
    diff = comparison["chosen_minus_own"]["mean"]["diff"]
    assert diff == pytest.approx(comparison["best"]["mean"] - own[0]["mean"], abs=1e-6)
    assert html.escape(comparison["against_own"]) in page
    assert comparison["against_own"] in (out / "comparison.txt").read_text()
    assert "config's own design" in page
    assert comparison["what_breaks_it"]["target_from"].startswith("90% of the chosen")
    # the baseline tuned under ideal (10 trials by default) is named, in the text too
    tuned = [c for c in comparison["candidates"] if c["ideal_tuned"]]
    assert len(tuned) == 1 and comparison["ideal_trials"] == 10
    words = ("the ideal-tuned baseline is the own design" if tuned[0]["own"]
             else f"(the best of 10 trials under ideal) is trial {tuned[0]['trial']}")
    assert words in (out / "comparison.txt").read_text() and words in page
    label = ("the config's own design, also the ideal-tuned baseline" if tuned[0]["own"]
             else f"trial {tuned[0]['trial']}: the ideal-tuned baseline")
    assert label in page  # its row in the candidates' table
    # the held-out statistics can be checked from the files: held_out.parquet holds each
    # candidate's rows (scenario x replication) that candidates.parquet's scores come from
    import numpy as np
    import polars as pl

    from gtmsim.optimize.objectives import robust_score

    cands = pl.read_parquet(out / "candidates.parquet")
    rows = pl.read_parquet(out / "held_out.parquet")
    assert rows.height == cands.height * 4  # 4 held-out scenarios (the default) x 1 replication
    for c in cands.iter_rows(named=True):
        mine = rows.filter((pl.col("trial") == c["trial"]) & (pl.col("own") == c["own"])
                           & (pl.col("ideal_tuned") == c["ideal_tuned"]))
        per = mine.group_by("scenario").agg(pl.col("bookings").mean()).sort("scenario")
        assert per["scenario"].to_list() == [0, 1, 2, 3]
        values = per["bookings"].to_numpy()
        assert c["held_out_mean"] == pytest.approx(float(np.mean(values)), rel=1e-12)
        assert c["held_out_cvar10"] == pytest.approx(robust_score("cvar10", values), rel=1e-12)


@pytest.mark.slow
def test_compare_ideal_report_shows_both_designs_and_the_verdict(tmp_path):
    out = tmp_path / "cmp"
    optimize(out, "--compare-ideal")
    page, comparison = check_page(out)
    assert html.escape(comparison["verdict"]) in page
    assert "The design tuned for ideal people against the robust design" in page
    assert "ideal-tuned" in page and "robust (chosen)" in page
    assert "search tuned for ideal people" in page  # the ideal study's history too
    diff = comparison["difference_robust_minus_ideal"]
    assert set(diff) == {"mean", "p10", "cvar10"}
    # the ideal-tuned design is marked among the candidates, as the figure labels its box
    (tuned,) = [c for c in comparison["candidates"] if c["ideal_tuned"]]
    assert tuned["levers"] == comparison["ideal_tuned"]["levers"]
    # and so in the parquet files the page's figures can be checked against (they marked
    # no candidate ideal-tuned under --compare-ideal)
    import polars as pl

    cands = pl.read_parquet(out / "candidates.parquet").filter(pl.col("ideal_tuned"))
    assert cands["trial"].to_list() == [tuned["trial"]]
    assert cands["held_out_mean"].to_list() == [tuned["mean"]]
    rows = pl.read_parquet(out / "held_out.parquet").filter(pl.col("ideal_tuned"))
    assert rows["trial"].unique().to_list() == [tuned["trial"]]
    # the full search under ideal ran --trials (6) trials; the short baseline search's
    # setting, forced to 0 in this mode, was written as 0
    assert comparison["ideal_trials"] == 6


@pytest.mark.slow
def test_two_objectives_report_shows_the_pareto_front(tmp_path):
    out = tmp_path / "pareto"
    optimize(out, "--objective", "mean,cost", "--trials", "8")
    page, _ = check_page(out)
    assert "Pareto front" in page


def _study(params: list[str], n: int):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: sum(t.suggest_float(p, 0, 1) * (i + 1)
                                 for i, p in enumerate(params)), n_trials=n)
    return study


@pytest.mark.parametrize(("params", "n", "drawn"), [
    (["a", "b"], 12, True),
    (["a"], 12, False),  # a single lever: nothing to rank
    (["a", "b"], 2, False),  # too few completed trials
])
def test_importance_falls_back_to_a_note(params, n, drawn):
    from gtmsim.report.optimize import _optuna_figures

    figs, notes = _optuna_figures(_study(params, n), ["mean"], "")
    titles = [f.layout.title.text for f in figs.values()]
    assert ("importance" in figs) == drawn and "history" in figs
    assert any(t.startswith("Optimisation history") for t in titles)
    assert any(t.startswith("Lever importance") for t in titles) == drawn
    assert any(n.startswith("No lever importance") for n in notes) != drawn


def test_importance_of_a_two_objective_study_ranks_what_makes_a_design_good():
    """With two objectives the figure ranks by the outcome through `target`, and Optuna's
    importance (PED-ANOVA) reads a target as one to minimise: 'Lever importance for mean'
    ranked the lever that sets the worst designs apart (b here: b near 0 costs up to 10),
    not the one that makes the best (a: a near 1 adds up to 10)."""
    import optuna

    from gtmsim.report.optimize import _optuna_figures

    def objective(t):
        a, b = t.suggest_float("a", 0, 1), t.suggest_float("b", 0, 1)
        return 10.0 * a ** 20 - 10.0 * (1 - b) ** 20, 1.0

    study = optuna.create_study(directions=["maximize", "minimize"],
                                sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(objective, n_trials=200)
    figs, _ = _optuna_figures(study, ["mean", "cost"], "")
    bars = figs["importance"].data[0]
    importance = dict(zip(bars.y, bars.x, strict=True))
    assert importance["a"] > 0.8 > importance["b"]


def test_importance_names_the_method_that_ranked_it():
    """The figure was titled '(fANOVA over N completed trials)', but Optuna 5, which gtmsim
    requires, ranks by PED-ANOVA (fANOVA would need scikit-learn): the title named another
    method than the one behind the bars. It names PED-ANOVA, asked for by name."""
    from optuna.importance import PedAnovaImportanceEvaluator, get_param_importances

    from gtmsim.report.optimize import _optuna_figures

    study = _study(["a", "b", "c"], 20)
    fig = _optuna_figures(study, ["mean"], "")[0]["importance"]
    assert "PED-ANOVA" in fig.layout.title.text and "fANOVA" not in fig.layout.title.text
    drawn = dict(zip(fig.data[0].y, fig.data[0].x, strict=True))
    want = get_param_importances(study, evaluator=PedAnovaImportanceEvaluator())
    assert drawn == pytest.approx(want)


def test_importance_leaves_out_trials_over_the_budget():
    """Over-budget trials are told a placeholder (never simulated); importance over them would
    rank the lever that breaks the budget (b here), not the one that moves the outcome (a)."""
    import optuna

    from gtmsim.report.optimize import _optuna_figures

    def objective(t):
        a, b = t.suggest_float("a", 0, 1), t.suggest_float("b", 0, 1)
        t.set_user_attr("over_budget", b - 0.5)
        return 0.0 if b > 0.5 else a

    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.RandomSampler(seed=1))
    study.optimize(objective, n_trials=40)
    figs, _ = _optuna_figures(study, ["mean"], "")
    bars = figs["importance"].data[0]
    importance = dict(zip(bars.y, bars.x, strict=True))
    assert importance["a"] > 0.8 > importance["b"]
    within = sum(t.user_attrs["over_budget"] <= 0 for t in study.trials)
    assert f"over {within} completed trials within the budget" in (
        figs["importance"].layout.title.text)


@pytest.mark.slow
def test_a_resumed_study_counts_the_trials_as_trials_does(tmp_path):
    """A search stopped by Ctrl-C leaves its running trial failed; resumed to --trials N, the
    report said N + 1 trials. It counts the N finished and says the interrupted one apart."""
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    out = tmp_path / "opt"
    optimize(out, "--trials", "2", "--ideal-trials", "0")
    storage = JournalStorage(JournalFileBackend(str(out / "study.journal")))
    study = optuna.load_study(study_name="gtmsim", storage=storage)
    first = study.trials[0]  # as Ctrl-C leaves a trial: failed, its design drawn
    study.add_trial(optuna.trial.create_trial(
        state=optuna.trial.TrialState.FAIL, params=first.params,
        distributions=first.distributions))
    optimize(out, "--trials", "4", "--ideal-trials", "0")
    states = [t.state.name for t in study.trials]
    assert states.count("COMPLETE") + states.count("PRUNED") == 4 and len(states) == 5
    page, comparison = check_page(out)
    assert comparison["trials"] == 4 and comparison["trials_interrupted"] == 1
    words = "4 trials (1 more interrupted, not counted), scored on 4 scenarios"
    assert words in (out / "comparison.txt").read_text() and words in page


@pytest.mark.slow
def test_designs_the_model_refused_are_said_in_one_line(tmp_path):
    """A search whose levers together made configs the model refused died midway (exit 2,
    'reject_below ... must not exceed threshold') and counted those trials as interrupted.
    They are infeasible trials: the console, comparison.txt and the page say how many, and
    the first with its reason, in one line; trials.parquet keeps each reason."""
    import polars as pl

    out = tmp_path / "opt"
    optimize(out, "--trials", "12", "--ideal-trials", "0", "--scenarios", "2",
             "--set", "levers.mql_threshold.high=0.3",
             "--set", 'levers.rb={path="stages.mql_review.reject_below", low=0.0, high=0.3}')
    page, comparison = check_page(out)
    assert comparison["trials"] == 12 and comparison["trials_interrupted"] == 0
    n = comparison["trials_refused"]
    assert n > 0, "the seed drew no clashing design: the test proves nothing"
    lines = [line for line in (out / "comparison.txt").read_text().splitlines()
             if "refused by the model" in line]
    assert len(lines) == 1 and lines[0].startswith(f"{n} of the 12 trials"), lines
    assert "stages.mql_review: reject_below (" in lines[0]
    assert html.escape(lines[0]) in page
    trials = pl.read_parquet(out / "trials.parquet")
    refused = trials.filter(pl.col("refused").is_not_null())
    assert refused.height == n and not refused["feasible"].any()


def test_the_chosen_design_s_regret_is_shown_by_regret():
    """By regret, the chosen design's regret was not in the candidate table and the text gave
    only the held-out one: both show it on the search's scenarios, which chose it, and on
    the held-out ones."""
    from gtmsim.report.console import optimize_text
    from gtmsim.report.optimize import _candidates_table

    def cand(trial, search_regret, held_regret):
        return {"trial": trial, "levers": {"x": trial}, "cost": 1.0, "own": False,
                "mean": 5.0, "p10": 4.0, "cvar10": 3.0, "mean_ci": None, "cvar10_ci": None,
                "search_regret": search_regret, "regret": held_regret}

    best = cand(2, 40.0, 80.0)
    report = {"objective": "regret", "outcome": "bookings", "target": None, "trials": 2,
              "scenarios": 3, "held_out_scenarios": 3, "replications": 1, "best": best,
              "candidates": [cand(1, 50.0, 0.0), best, cand(-1, None, 90.0)],
              "what_breaks_it": {"target": 1.0, "words": "nothing"}}
    table = _candidates_table(report)
    assert "<th>regret (search)</th><th>held-out regret</th>" in table
    assert ("<td><b>trial 2 (chosen)</b></td><td>5</td><td>4</td><td>3</td><td>40</td>"
            "<td>80</td>") in table
    text = optimize_text(report)
    assert ("regret of the chosen design (its largest shortfall against the best candidate in "
            "a scenario): 40 on the search's scenarios, the least of the 2 candidates the "
            "search ran, and 80 on the held-out scenarios") in text.lower()
    report["objective"] = "mean"
    assert "regret" not in _candidates_table(report) and "egret" not in optimize_text(report)


def test_the_share_meeting_the_target_is_shown_by_satisficing():
    """By satisficing, the page's candidate table gave no candidate's share of held-out
    scenarios meeting the target, the figure the design was chosen by (only the text had the
    chosen one's)."""
    from gtmsim.report.optimize import _candidates_table

    def cand(trial, share):
        return {"trial": trial, "levers": {"x": trial}, "cost": 1.0, "own": False,
                "mean": 5.0, "p10": 4.0, "cvar10": 3.0, "mean_ci": None, "cvar10_ci": None,
                "satisficing": share}

    best = cand(2, 0.75)
    report = {"objective": "satisficing", "outcome": "bookings", "target": 4_500_000.0,
              "best": best, "candidates": [cand(1, 0.5), best, cand(-1, None)]}
    table = _candidates_table(report)
    assert "<th>held-out scenarios meeting the target</th><th>annual cost</th>" in table
    assert "<td><b>trial 2 (chosen)</b></td><td>5</td><td>4</td><td>3</td><td>75%</td>" in table
    assert "<td>trial 1</td><td>5</td><td>4</td><td>3</td><td>50%</td>" in table
    assert "the target is 4,500,000 bookings" in table
    report["objective"] = "mean"
    assert "target" not in _candidates_table(report)


@pytest.mark.slow
def test_a_rerun_without_png_leaves_no_figures_of_the_last_run(tmp_path):
    """A resumed optimize without --png left the earlier run's figures/*.png beside the new
    report; the folder is replaced as a whole, so they go."""
    out = tmp_path / "opt"
    (out / "figures").mkdir(parents=True)  # as a first run with --png leaves them
    (out / "figures" / "candidates.png").write_bytes(b"\x89PNG old")
    optimize(out, "--trials", "2", "--ideal-trials", "0")
    assert not (out / "figures").exists()
    assert not list(out.glob(".*"))  # nothing set aside is left


def _one_design_report(**changes) -> dict:
    """An optimize summary (comparison.json's) with one candidate, the own design, chosen;
    2 trials on 3 search and 3 held-out scenarios x 1 replication unless `changes` say."""
    best = {"trial": 0, "levers": {"x": 1}, "cost": 1.0, "own": True, "mean": 5.0,
            "p10": 4.0, "cvar10": 3.0, "mean_ci": None, "cvar10_ci": None}
    return {"objective": "mean", "outcome": "bookings", "target": None, "trials": 2,
            "scenarios": 3, "held_out_scenarios": 3, "replications": 1, "best": best,
            "candidates": [best], "what_breaks_it": {"target": 1.0, "words": "nothing"},
            **changes}


def test_one_replication_or_scenario_is_said_in_the_singular():
    """The text and the page said '1 replications' and '1 held-out scenarios'."""
    from gtmsim.report.console import optimize_text
    from gtmsim.report.optimize import _designs_table

    report = _one_design_report(scenarios=1, held_out_scenarios=1)
    assert "scored on 1 scenario, re-evaluated on 1 held-out scenario." in optimize_text(report)
    assert "Held-out: 1 fresh scenario x 1 replication, bookings" in _designs_table(report)
    report.update(scenarios=2, held_out_scenarios=3, replications=2)
    assert "on 2 scenarios, re-evaluated on 3 held-out scenarios." in optimize_text(report)
    assert "Held-out: 3 fresh scenarios x 2 replications" in _designs_table(report)


def test_the_history_is_scaled_to_the_simulated_trials():
    """An over-budget trial is told the sampler's worst value (0 here) without a simulation:
    plotted at it, it stretched the history's axis from 0 and flattened every real score.
    The axis spans the simulated values, and the title says one trial is off the scale."""
    import optuna

    from gtmsim.report.optimize import _optuna_figures

    study = optuna.create_study(direction="maximize")
    for i, v in enumerate([5.0e6, 5.2e6, 0.0, 5.5e6]):
        trial = optuna.trial.create_trial(params={"x": float(i)}, value=v,
                                          distributions={"x": optuna.distributions
                                                         .FloatDistribution(0, 10)},
                                          user_attrs={"over_budget": 1.0 if v == 0 else -1.0})
        study.add_trial(trial)
    figs, _ = _optuna_figures(study, ["mean"], "", importance=False)
    fig = figs["history"]
    lo, hi = fig.layout.yaxis.range
    assert 4.9e6 < lo < 5.0e6 and 5.5e6 < hi < 5.6e6
    assert "1 over the budget or refused by the model" in fig.layout.title.text


def test_the_history_says_how_many_trials_were_pruned():
    """Optuna's history plots finished trials only: with six of twelve pruned, the chart drew
    two points and its title accounted for the four over the budget alone."""
    import optuna

    from gtmsim.report.optimize import _optuna_figures

    study = optuna.create_study(direction="maximize")
    dist = {"x": optuna.distributions.FloatDistribution(0, 10)}
    for i in range(3):
        study.add_trial(optuna.trial.create_trial(params={"x": float(i)}, value=5.0e6 + i,
                                                  distributions=dist,
                                                  user_attrs={"over_budget": -1.0}))
    for i in range(2):
        study.add_trial(optuna.trial.create_trial(params={"x": 5.0 + i}, distributions=dist,
                                                  state=optuna.trial.TrialState.PRUNED))
    title = _optuna_figures(study, ["mean"], "", importance=False)[0]["history"].layout.title
    assert "2 trials pruned before they finished, not plotted" in title.text


def test_a_long_history_title_is_wrapped_to_fit_the_figure():
    """The ideal search's history title, with pruned and over-budget trials, was one line of
    about 190 characters, cut off in figures/history_ideal.png and on the page: its notes go
    on a second line, each line short enough to fit (the PNG is 1,200 px wide)."""
    import optuna

    from gtmsim.report.optimize import _optuna_figures

    study = optuna.create_study(direction="maximize")
    dist = {"x": optuna.distributions.FloatDistribution(0, 10)}
    for i, v in enumerate([5.0e6, 0.0, 5.5e6]):
        study.add_trial(optuna.trial.create_trial(
            params={"x": float(i)}, value=v, distributions=dist,
            user_attrs={"over_budget": 1.0 if v == 0 else -1.0}))
    for i in range(2):
        study.add_trial(optuna.trial.create_trial(params={"x": 5.0 + i}, distributions=dist,
                                                  state=optuna.trial.TrialState.PRUNED))
    figs, _ = _optuna_figures(study, ["mean"], " (search tuned for ideal people)",
                              importance=False)
    title = figs["history"].layout.title.text
    lines = [re.sub(r"<[^>]+>", "", line) for line in title.split("<br>")]
    assert lines[0] == "Optimisation history (search tuned for ideal people): mean of each trial"
    assert "2 trials pruned" in lines[1] and "1 over the budget" in lines[1]
    assert max(len(line) for line in lines) <= 125, lines
    assert title.count("<br><sub>") == 1 and title.endswith("</sub>")


def test_the_importance_title_puts_its_method_on_a_second_line():
    """'Lever importance (search tuned for ideal people) for mean (PED-ANOVA: what sets the
    best 10% apart, over 12 completed trials within the budget)', about 130 characters on
    one line, ran past the figure as the history's title did."""
    import optuna

    from gtmsim.report.optimize import _optuna_figures

    study = optuna.create_study(direction="maximize")
    dist = {"x": optuna.distributions.FloatDistribution(0, 10),
            "y": optuna.distributions.FloatDistribution(0, 10)}
    for i in range(12):
        study.add_trial(optuna.trial.create_trial(
            params={"x": float(i % 10), "y": float((3 * i) % 10)}, value=1e6 * (i % 10),
            distributions=dist, user_attrs={"over_budget": -1.0}))
    figs, notes = _optuna_figures(study, ["mean"], " (search tuned for ideal people)")
    assert "importance" in figs, notes
    title = figs["importance"].layout.title.text
    lines = [re.sub(r"<[^>]+>", "", line) for line in title.split("<br>")]
    assert lines[0] == "Lever importance (search tuned for ideal people) for mean"
    assert "PED-ANOVA" in lines[1] and "12 completed trials" in lines[1]
    assert max(len(line) for line in lines) <= 125, lines


def test_a_rate_s_figures_are_not_rounded_to_whole_numbers():
    """With --outcome win_rate every figure of the text was rounded as money: 'held-out mean
    0 [0, 0], P10 0, CVaR10 0', 'mean win_rate +0 (95% CI -0 to +0)', 'target 0'. A rate is
    in % as run writes it, its differences in percentage points (as compare writes them);
    money keeps its whole numbers."""
    from types import SimpleNamespace

    from gtmsim.optimize.compare import Comparison, against_own
    from gtmsim.report.console import optimize_text
    from gtmsim.report.optimize import ideal_words

    best = {"trial": 2, "levers": {"x": 1}, "cost": 2_295_000.0, "own": False, "mean": 0.28,
            "p10": 0.23, "cvar10": 0.22, "mean_ci": [0.197, 0.362], "cvar10_ci": None}
    tuned = {**best, "trial": 1, "mean": 0.271, "ideal_tuned": True}
    own = against_own({"mean": {"diff": -0.00837, "ci_low": -0.081, "ci_high": 0.0643},
                       "cvar10": {"diff": -0.0133}}, False, "win_rate")
    report = {"objective": "mean", "outcome": "win_rate", "target": None, "trials": 4,
              "ideal_trials": 10, "scenarios": 4, "held_out_scenarios": 4, "replications": 1,
              "best": best, "candidates": [best, tuned], "against_own": own,
              "what_breaks_it": {"target": 0.256, "words": "nothing"}}
    text = optimize_text(report)
    assert "held-out mean 28.0% [19.7%, 36.2%], P10 23.0%, CVaR10 22.0%, annual cost 2,295,000" \
        in text
    assert "mean win_rate -0.837 pp (95% CI -8.1 to +6.43 pp), worst-10% -1.33 pp." in text
    assert "(target 25.6%)" in text
    assert "held-out mean 27.1% with these people" in ideal_words(report)
    one = SimpleNamespace
    cmp = Comparison(ideal=one(best=one(scores={"mean": 0.3})), robust=None,
                     ideal_tuned=one(scores={"mean": 0.25}),
                     robust_best=one(scores={"mean": 0.27}),
                     difference={"mean": (0.02, -0.01, 0.05),
                                 "cvar10": (0.01, float("nan"), float("nan"))},
                     breaks=None, outcome="win_rate")
    assert ("promises 30.0% win_rate but delivers 25.0% (-17% relative) when these people run "
            "it; the robust design delivers 27.0% (+8% relative: +2 pp, 95% CI -1 to +5 pp), "
            "and the difference in the worst-10% mean is +1 pp (no interval") in cmp.verdict()
    # money keeps its whole numbers
    assert "promises 1,234,567 " in Comparison(
        ideal=one(best=one(scores={"mean": 1_234_567.4})), robust=None,
        ideal_tuned=one(scores={"mean": 1e6}), robust_best=one(scores={"mean": 1e6}),
        difference=cmp.difference, breaks=None, outcome="bookings").verdict()


def test_the_optimize_verdict_names_a_team_whose_kpi_moved_against_the_outcome():
    """compare's verdict said ', yet marketing's KPI attainment rose ...' where a team's KPI
    and the system's outcome moved apart; optimize's, on the robust design against the
    ideal-tuned one, never did, though its table showed it. Paired by held-out scenario as
    compare pairs them; a KPI within its noise, or moving with the outcome, is not named."""
    import math
    from types import SimpleNamespace as N

    import polars as pl

    from gtmsim.optimize.compare import Comparison

    def frame(marketing, sdr):  # two replications a scenario, three scenarios
        return pl.DataFrame({"scenario": [0, 0, 1, 1, 2, 2],
                             "kpi_attainment_marketing": [m for m in marketing for _ in (0, 1)],
                             "kpi_attainment_sdr": [v for v in sdr for _ in (0, 1)]})

    c = Comparison.__new__(Comparison)
    c.ideal, c.outcome, c.shares = N(best=N(scores={"mean": 9e6})), "bookings", frozenset()
    c.ideal_tuned = N(scores={"mean": 5e6}, frame=frame([1.9, 2.0, 2.1], [0.9, 1.0, 1.1]))
    c.robust_best = N(scores={"mean": 6e6}, frame=frame([1.0, 1.05, 1.1], [1.0, 1.1, 1.15]))
    c.difference = {"mean": (1e6, 0.5e6, 1.5e6), "cvar10": (0.5e6, math.nan, math.nan)}
    text = c.verdict()
    assert ("the robust design beats the ideal-tuned one, yet marketing's KPI attainment fell "
            "200% -> 105%.") in text
    assert "sdr" not in text  # it rose with the bookings
    c.difference = {"mean": (1e5, -0.5e6, 0.7e6), "cvar10": (0.5e6, math.nan, math.nan)}
    assert "yet" not in c.verdict()  # the outcome within its noise: nothing to disagree with


def test_a_share_s_verdicts_are_in_percent_and_its_differences_in_points():
    """optimize wrote a share as a fraction and its differences as fractions beside relative
    percents ('delivers 0.87 (+4%: +0.0335, 95% CI ...)', 'mean kpi_cs +0.0335') where
    compare writes 87.0% and '+3.35 pp (+4% relative)': the same in both, for a retention
    KPI (a share by the model) and a KPI attainment (in %, past 100%) as for a win rate."""
    import math
    from types import SimpleNamespace as N

    import polars as pl

    from gtmsim.optimize.compare import Comparison, against_own
    from gtmsim.report.console import optimize_text
    from gtmsim.report.optimize import (
        _candidates_table,
        _designs_table,
        _ideal_vs_robust_figure,
        regret_words,
    )

    diff = {"mean": {"diff": 0.0335, "ci_low": 0.0121, "ci_high": 0.0549},
            "cvar10": {"diff": 0.0212, "ci_low": None, "ci_high": None}}
    assert "mean kpi_attainment_sdr +3.35 pp (95% CI " in against_own(
        diff, False, "kpi_attainment_sdr")
    # kpi_cs is a share where the model says so (its metric is 'retained')
    assert ("mean kpi_cs +3.35 pp (95% CI +1.21 to +5.49 pp), worst-10% +2.12 pp."
            in against_own(diff, False, "kpi_cs", {"kpi_cs"}))
    assert "mean kpi_cs +0.0335 (95% CI +0.0121 to +0.0549)" in against_own(diff, False,
                                                                             "kpi_cs")

    c = Comparison.__new__(Comparison)
    c.ideal, c.outcome, c.shares = N(best=N(scores={"mean": 0.9})), "kpi_cs", {"kpi_cs"}
    no_kpi = pl.DataFrame({"scenario": [0]})
    c.ideal_tuned = N(scores={"mean": 0.8365}, frame=no_kpi)
    c.robust_best = N(scores={"mean": 0.87}, frame=no_kpi)
    c.difference = {"mean": (0.0335, 0.0121, 0.0549), "cvar10": (0.0212, math.nan, math.nan)}
    assert ("promises 90.0% kpi_cs but delivers 83.7% (-7% relative) when these people run "
            "it; the robust design delivers 87.0% (+4% relative: +3.35 pp, 95% CI +1.21 to "
            "+5.49 pp), and the difference in the worst-10% mean is +2.12 pp (no interval"
            ) in c.verdict()
    c.outcome = "kpi_attainment_sdr"  # an attainment passes 100%: in % all the same
    c.ideal.best.scores["mean"] = 1.25
    assert "promises 125.0% kpi_attainment_sdr but delivers 83.7% (-33% relative)" \
        in c.verdict()

    # the text, the page's tables and its difference chart: comparison.json says so
    best = {"trial": 2, "levers": {"x": 1}, "cost": 1.0, "own": False, "mean": 0.87,
            "p10": 0.82, "cvar10": 0.8, "mean_ci": [0.85, 0.89], "cvar10_ci": None,
            "search_regret": 0.0123, "regret": 0.021, "kpi_attainment_cs": 0.97}
    report = {"objective": "mean,regret", "outcome": "kpi_cs", "outcome_in_percent": True,
              "target": None, "trials": 4, "ideal_trials": 10, "scenarios": 4,
              "held_out_scenarios": 4, "replications": 1, "best": best,
              "candidates": [best], "what_breaks_it": {"target": 0.8, "words": "nothing"}}
    text = optimize_text(report)
    assert "held-out mean 87.0% [85.0%, 89.0%], P10 82.0%, CVaR10 80.0%," in text, text
    assert "(target 80.0%)" in text
    assert ": 1.23 pp on the search's scenarios" in regret_words(report)
    assert "2.1 pp on the held-out scenarios" in regret_words(report)
    assert "<td>87.0% <small>[85.0%, 89.0%]</small></td>" in _designs_table(report)
    table = _candidates_table(report)
    assert "<td>87.0% <small>[85.0%, 89.0%]</small></td><td>82.0%</td>" in table
    assert "<td>1.23 pp</td><td>2.1 pp</td>" in table
    report["difference_robust_minus_ideal"] = {
        k: {"diff": d, "ci_low": lo, "ci_high": hi} for k, (d, lo, hi) in c.difference.items()}
    fig = _ideal_vs_robust_figure(report, N(ideal_tuned=N(held_out=[0.83, 0.84]),
                                            robust_best=N(held_out=[0.86, 0.88])),
                                  "kpi_cs", True)
    assert list(fig.data[-1].y) == pytest.approx([3.35, 2.12])
    assert fig.layout.yaxis2.ticksuffix == " pp" and fig.layout.xaxis.tickformat.endswith("%")
    # an amount is written as before
    report.update(outcome="bookings", outcome_in_percent=False)
    assert "held-out mean 0.87 [0.85, 0.89]" in optimize_text(report)


def test_one_trial_is_said_in_the_singular():
    """`optimize --trials 1` printed and showed 'Objective mean of bookings; 1 trials'."""
    from gtmsim.report.console import optimize_text
    from gtmsim.report.optimize import trials_words

    report = _one_design_report(trials=1)
    assert "Objective mean of bookings; 1 trial, scored on 3 scenarios" in optimize_text(report)
    assert trials_words({"trials": 1, "trials_interrupted": 2}) == (
        "1 trial (2 more interrupted, not counted)")


def test_a_candidate_s_box_is_named_as_its_table_row():
    """With --compare-ideal the box of the ideal-tuned design was named 'ideal-tuned' alone
    (its trial number and 'own design' dropped) while the candidate table, and
    comparison.json, did not mark it: the box had no row to match."""
    from types import SimpleNamespace as N

    from gtmsim.report.optimize import _label

    own, tuned, other = (N(trial=t, own=t == 0, ideal_tuned=False) for t in (0, 3, 5))
    cmp = N(ideal_tuned=own)
    assert _label(own, other, cmp) == "trial 0 (own design, ideal-tuned)"
    assert _label(other, other, cmp) == "trial 5 (chosen)"
    assert _label(tuned, other, N(ideal_tuned=tuned)) == "trial 3 (ideal-tuned)"
    baseline = N(trial=-1, own=False, ideal_tuned=True)
    assert _label(baseline, other, None) == "ideal-tuned"
    assert _label(own, own, None) == "trial 0 (own design) (chosen)"


def test_the_history_and_importance_follow_the_outcome_when_cost_is_named_first():
    """With --objective cost,mean the design is chosen by the mean, yet the history plotted
    each trial's cost and the importance ranked the levers that drive cost (b here), not the
    outcome (a)."""
    import optuna

    from gtmsim.report.optimize import _optuna_figures

    def objective(t):
        a, b = t.suggest_float("a", 0, 1), t.suggest_float("b", 0, 1)
        return 1e6 * b, 5e6 * a

    study = optuna.create_study(directions=["minimize", "maximize"],
                                sampler=optuna.samplers.RandomSampler(seed=1))
    study.optimize(objective, n_trials=30)
    figs, _ = _optuna_figures(study, ["cost", "mean"], "")
    assert "mean of each trial" in figs["history"].layout.title.text
    assert list(figs["history"].data[0].y) == [t.values[1] for t in study.trials]
    bars = figs["importance"].data[0]
    importance = dict(zip(bars.y, bars.x, strict=True))
    assert importance["a"] > 0.8 > importance["b"]
    assert "Lever importance for mean" in figs["importance"].layout.title.text


def test_the_pareto_front_leaves_out_the_trials_never_simulated():
    """An over-budget trial is told the sampler's worst values (0 bookings, infinite cost)
    without a simulation: drawn on the Pareto front, it stretched the outcome's axis to 0
    and squeezed the front into a corner. The front shows the simulated trials, and its
    title says how many were left out."""
    import optuna

    from gtmsim.report.optimize import _optuna_figures

    study = optuna.create_study(directions=["minimize", "maximize"])
    for i, (cost, v, over) in enumerate([(1.7e6, 5.0e6, -1.0), (2.0e6, 5.5e6, -1.0),
                                         (float("inf"), 0.0, 1.0), (1.9e6, 5.2e6, -1.0)]):
        study.add_trial(optuna.trial.create_trial(
            params={"x": float(i)}, values=[cost, v],
            distributions={"x": optuna.distributions.FloatDistribution(0, 10)},
            user_attrs={"over_budget": over}))
    figs, _ = _optuna_figures(study, ["cost", "cvar10"], "", importance=False)
    fig = figs["pareto_front"]
    drawn = [y for trace in fig.data for y in (trace.y or ()) if y is not None]
    assert drawn and min(drawn) >= 5.0e6
    assert "1 over the budget or refused by the model" in fig.layout.title.text


def test_a_baseline_the_search_never_ran_is_not_named_the_own_design():
    """With fewer trials than baselines (`--trials 1` and a short search under ideal) the
    ideal-tuned baseline is never run by the search (trial -1): the candidate table named its
    row "config's own design: the ideal-tuned baseline" beside the real own design's row, and
    the text said the baseline 'is trial -1'."""
    from gtmsim.report.optimize import _candidates_table, ideal_words

    report = _one_design_report(ideal_trials=4)
    tuned = {**report["best"], "trial": -1, "own": False, "ideal_tuned": True,
             "levers": {"x": 2}, "mean": 6.0}
    report["candidates"].append(tuned)
    table = _candidates_table(report)
    assert "config's own design: the ideal-tuned baseline" not in table
    assert "<td>the ideal-tuned baseline (not run by the search)</td>" in table
    assert "<td><b>trial 0: the config's own design (chosen)</b></td>" in table
    words = ideal_words(report)
    assert "trial -1" not in words
    assert words == ("The ideal-tuned baseline (the best of 4 trials under ideal), not run by "
                     "the search: held-out mean 6 with these people.")
    # the own design as a baseline the search never ran keeps its name
    report["candidates"][0] = {**report["best"], "trial": -1}
    assert "<b>the config's own design (not run by the search) (chosen)</b>" in (
        _candidates_table(report))


def test_the_regret_text_counts_only_the_candidates_the_search_ran():
    """The text is written from the report dict before comparison.json turns NaN into null:
    a baseline the search never ran has a search regret of NaN there, and was counted among
    'the candidates the search ran' (2, where the search ran 1)."""
    import math

    from gtmsim.report.console import optimize_text

    def cand(trial, search_regret):
        return {"trial": trial, "levers": {"x": trial}, "cost": 1.0, "own": trial == 0,
                "mean": 5.0, "p10": 4.0, "cvar10": 3.0, "mean_ci": None, "cvar10_ci": None,
                "search_regret": search_regret, "regret": 7.0}

    best = cand(0, 0.0)
    report = {"objective": "regret", "outcome": "bookings", "target": None, "trials": 1,
              "scenarios": 3, "held_out_scenarios": 3, "replications": 1, "best": best,
              "candidates": [best, cand(-1, math.nan)],
              "what_breaks_it": {"target": 1.0, "words": "nothing"}}
    assert "the least of the 1 candidate the search ran" in optimize_text(report)


def test_a_resume_names_the_trials_the_ideal_baseline_was_chosen_from(tmp_path):
    """The ideal-tuned baseline's line took its count from this run's --ideal-trials: a
    resume with fewer ('--ideal-trials 2' after 4) read 'the best of 2 trials under ideal'
    and comparison.json said 2, while the baseline was the best of the 4 its study ran."""
    from gtmsim.config import load_config
    from gtmsim.optimize.search import Settings, search
    from gtmsim.report.optimize import ideal_words, optimize_summary

    config = load_config(None, "realistic", ["run.warmup_days=7", "run.horizon_days=14"])

    def run(ideal_trials: int) -> dict:
        settings = Settings(objective="mean", trials=2, scenarios=1, replications=1, top=1,
                            ideal_trials=ideal_trials, storage=str(tmp_path / "s.journal"))
        result = search(config, settings)
        return optimize_summary(result, result.best, None, settings)

    first = run(4)
    assert first["ideal_trials"] == 4
    # which study of the storage the files describe: two --study-name runs into one --out
    # replace each other's, and comparison.json did not say whose it was
    assert first["study"] == Settings().study_name
    resumed = run(2)
    assert resumed["ideal_trials"] == 4
    assert "of 4 trials under ideal" in ideal_words(resumed) or "(4 trials)" in ideal_words(
        resumed)


def test_the_pareto_front_names_each_trial_by_its_number_in_the_study():
    """The front was Optuna's plot of the simulated trials copied into a fresh study, which
    numbered them anew: with trial 1 over the budget, trial 2 was hovered and coloured as
    'trial 1', unlike the history and the candidates table. And trial 0, at the pale end of
    the scale, was drawn all but white."""
    import optuna
    import plotly.colors as pc

    from gtmsim.report.optimize import _optuna_figures

    study = optuna.create_study(directions=["minimize", "maximize"])
    for i, (cost, v, over) in enumerate([(1.7e6, 5.0e6, -1.0), (float("inf"), 0.0, 1.0),
                                         (2.0e6, 5.5e6, -1.0), (2.1e6, 5.2e6, -1.0)]):
        study.add_trial(optuna.trial.create_trial(
            params={"x": float(i)}, values=[cost, v],
            distributions={"x": optuna.distributions.FloatDistribution(0, 10)},
            user_attrs={"over_budget": over}))
    fig = _optuna_figures(study, ["cost", "mean"], "", importance=False)[0]["pareto_front"]
    drawn = {}
    for trace in fig.data:
        for colour, text, x, y in zip(trace.marker.color, trace.text, trace.x, trace.y,
                                      strict=True):
            # Optuna wrote it as JSON ("number": 1), this report as "trial 2"
            number = int(re.search(r"(?:^trial |\"number\": )(\d+)", text).group(1))
            assert colour == number
            drawn[number] = (x, y, trace.name)
    assert drawn == {0: (1.7e6, 5.0e6, "best trial"), 2: (2.0e6, 5.5e6, "best trial"),
                     3: (2.1e6, 5.2e6, "trial")}
    for trace in fig.data:  # each scale's lowest colour is visibly coloured, not near white
        low = pc.unlabel_rgb(trace.marker.colorscale[0][1])
        assert sum(low) / 3 < 215, low
        assert (trace.marker.cmin, trace.marker.cmax) == (0, 3)


def test_the_history_and_the_pareto_front_tick_whole_trials():
    """The ideal search's history (4 trials) was ticked 'Trial' 0, 0.5, 1, 1.5 ..., and the
    Pareto front's colour bars of trial numbers likewise: trials are whole. With 20 or fewer
    each trial has its tick, and the axis half a trial of room either side; a long search
    keeps plotly's own ticks."""
    import optuna

    from gtmsim.report.optimize import _optuna_figures

    dist = {"x": optuna.distributions.FloatDistribution(0, 10)}

    def study(values: list, directions=("maximize",)):
        s = optuna.create_study(directions=list(directions))
        for i, v in enumerate(values):
            s.add_trial(optuna.trial.create_trial(
                params={"x": float(i % 10)}, values=v if isinstance(v, list) else [v],
                distributions=dist, user_attrs={"over_budget": -1.0}))
        return s

    for label in ("", " (search tuned for ideal people)"):
        axis = _optuna_figures(study([5.0, 5.2, 4.0, 5.5]), ["mean"], label,
                               importance=False)[0]["history"].layout.xaxis
        assert (axis.dtick, axis.tick0, axis.range) == (1, 0, (-0.5, 3.5)), label
    figs = _optuna_figures(study([[1.7e6, 5.0e6], [2.0e6, 5.5e6], [1.9e6, 5.2e6],
                                  [2.1e6, 5.1e6]], ("minimize", "maximize")),
                           ["cost", "mean"], "", importance=False)[0]
    axis = figs["history"].layout.xaxis  # of the outcome, in a two-objective study
    assert (axis.dtick, axis.tick0, axis.range) == (1, 0, (-0.5, 3.5))
    bars = {t.name: t.marker.colorbar for t in figs["pareto_front"].data}
    assert set(bars) == {"trial", "best trial"}  # a trial's number is its colour
    assert all((b.dtick, b.tick0) == (1, 0) for b in bars.values())
    long = _optuna_figures(study([float(i) for i in range(30)]), ["mean"], "",
                           importance=False)[0]["history"].layout.xaxis
    assert long.dtick is None and long.range is None


def test_what_breaks_says_so_when_no_scenario_fails_or_none_meets_the_target():
    """With every held-out scenario meeting the target the console said so, yet the scatter's
    title still drew its axes as 'the factors that best separate failures': with no failure
    every factor separates them by 0, and the axes were the first two by name. Its points
    were all green with no legend to say what green meant. The title says what happened and
    why the axes are what they are, and the legend names the one colour; the same where
    every scenario fails. A design that fails in some keeps its title and both colours."""
    from types import SimpleNamespace as N

    from gtmsim.optimize.scenarios import Scenario
    from gtmsim.report.optimize import _breaks_figure

    factors = ["people.c.z", "people.a.x", "people.b.y"]
    scenarios = [Scenario(i, {f: 0.1 * (i + j) for j, f in enumerate(factors)}, i)
                 for i in range(4)]

    def figure(values: list[float]):
        return _breaks_figure({"what_breaks_it": {"target": 5.0}}, N(held_out=scenarios),
                              N(held_out=values), "bookings")

    for values, head, legend in (
            ([6.0, 7.0, 8.0, 9.0], "all 4 held-out scenarios meet the target (5)",
             "meets the target"),
            ([1.0, 2.0, 3.0, 4.0], "none of the 4 held-out scenarios meets the target (5)",
             "fails")):
        fig = figure(values)
        lines = fig.layout.title.text.split("<br>")
        assert lines[0] == f"What breaks the chosen design: {head}"
        assert "best separate failures" not in fig.layout.title.text
        assert ("no factor separates failures from the rest, so the axes are the first two "
                "of the 3 sampled factors by name") in lines[1]
        assert (fig.layout.xaxis.title.text, fig.layout.yaxis.title.text) == ("a.x", "b.y")
        # one trace, every point, its colour named in a legend that is shown
        assert [(t.name, len(t.x)) for t in fig.data] == [(legend, 4)]
        assert fig.layout.showlegend is True
    fig = figure([1.0, 2.0, 8.0, 9.0])  # the two that fail are told apart by every factor
    assert fig.layout.title.text == ("What breaks the chosen design: held-out scenarios by the "
                                     "factors that best separate failures (target 5)")
    assert [(t.name, len(t.x)) for t in fig.data] == [("fails", 2), ("meets the target", 2)]
