"""`gtmsim compare`: designs side by side, paired by scenario; bad input is one line, exit 2."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import tomli_w
from cli_checks import fails_cleanly
from scipy import stats

from gtmsim.cli import main
from gtmsim.config import read_toml
from gtmsim.optimize.compare import STATS

PROFILES = ("realistic", "ideal")
TINY = ["--scenarios", "4", "--replications", "2", "--engine", "numba"]


def _config(folder: Path, name: str, **changes) -> str:
    """The embedded default, short, with some values changed (dotted path -> value)."""
    raw = read_toml(None)
    raw["run"]["horizon_days"], raw["run"]["warmup_days"] = 30, 7
    for path, value in changes.items():
        *parents, last = path.split(".")
        node = raw
        for p in parents:
            node = node[p]
        node[last] = value
    target = folder / name
    target.write_text(tomli_w.dumps(raw))
    return str(target)


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    """a (baseline), b (more SDRs, a lower MQL bar) and a again, under two profiles."""
    folder = tmp_path_factory.mktemp("compare")
    a = _config(folder, "a.toml")
    b = _config(folder, "b.toml", **{"teams.sdr.headcount": 9,
                                     "stages.mql_review.threshold": 0.2})
    out = folder / "out"
    argv = ["compare", a, b, a, *[x for p in PROFILES for x in ("--profile", p)], *TINY,
            "--out", str(out)]
    assert main(argv) == 0
    return out


def _summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text(encoding="utf-8"))


def _per_scenario(rows: pl.DataFrame, design: str, profile: str) -> np.ndarray:
    return (rows.filter((pl.col("design") == design) & (pl.col("profile") == profile))
            .group_by("scenario").agg(pl.col("bookings").mean()).sort("scenario")
            ["bookings"].to_numpy())


def test_writes_every_file(compared):
    assert sorted(p.name for p in compared.iterdir()) == [
        "comparison.parquet", "comparison.txt", "report.html", "summary.json"]
    rows = pl.read_parquet(compared / "comparison.parquet")
    # one row per design x profile x scenario x replication
    assert rows.height == 3 * len(PROFILES) * 4 * 2
    assert rows.group_by("design", "profile", "scenario", "replication").len()["len"].max() == 1
    s = _summary(compared)
    assert [d["name"] for d in s["designs"]] == ["a", "b", "a-2"]
    assert s["designs"][1]["levers"]["sdr_headcount"] == 9
    text = (compared / "comparison.txt").read_text(encoding="utf-8")
    for profile in PROFILES:
        assert s["profiles"][profile]["verdict"].startswith(f"Under {profile} (4 scenarios)")
        assert s["profiles"][profile]["verdict"][:60] in text
        assert set(s["profiles"][profile]["designs"]["a"]["kpi_attainment"]) == {
            "marketing", "sdr", "ae", "cs"}


def test_every_design_meets_the_same_scenarios(compared):
    rows = pl.read_parquet(compared / "comparison.parquet")
    for profile in PROFILES:
        seeds = {d: rows.filter((pl.col("design") == d) & (pl.col("profile") == profile))
                 .select("scenario", "scenario_seed").unique().sort("scenario")
                 for d in ("a", "b", "a-2")}
        assert seeds["a"].equals(seeds["b"]) and seeds["a"].equals(seeds["a-2"])
    # the scenario values (uncertain human parameters) are columns, the same for all designs
    real = rows.filter(pl.col("profile") == "realistic")
    assert "people.latency.median_hours" in real.columns
    assert real.group_by("scenario").agg(
        pl.col("people.latency.median_hours").n_unique())["people.latency.median_hours"
                                                           ].max() == 1


def test_difference_is_b_minus_a_paired_with_a_ci_around_it(compared):
    rows = pl.read_parquet(compared / "comparison.parquet")
    s = _summary(compared)
    for profile in PROFILES:
        a, b = _per_scenario(rows, "a", profile), _per_scenario(rows, "b", profile)
        entry = s["profiles"][profile]
        for stat, fn in STATS.items():
            d = entry["differences"]["b"][stat]
            assert d["diff"] == pytest.approx(fn(b) - fn(a), rel=1e-9, abs=1e-6)
            got = entry["designs"]["b"][stat]
            assert got == pytest.approx(fn(b), rel=1e-9)
            lo, hi = entry["designs"]["b"][f"{stat}_ci"]
            if stat == "mean":  # the paired t-interval, as scipy computes it
                ci = stats.ttest_rel(b, a).confidence_interval(0.95)
                assert (d["ci_low"], d["ci_high"]) == pytest.approx((ci.low, ci.high), rel=1e-9)
                ci = stats.ttest_1samp(b, 0.0).confidence_interval(0.95)
                # bookings are at least 0: the interval is cut there
                assert (lo, hi) == pytest.approx((max(ci.low, 0.0), ci.high), rel=1e-9)
            else:  # 4 scenarios: a tail is the single worst one, and has no honest interval
                assert d["ci_low"] is None and d["ci_high"] is None
                assert lo is None and hi is None
        # the mean difference is the difference of the plain means over all rows
        mean_rows = {d: rows.filter((pl.col("design") == d) & (pl.col("profile") == profile))
                     ["bookings"].mean() for d in ("a", "b")}
        assert entry["differences"]["b"]["mean"]["diff"] == pytest.approx(
            mean_rows["b"] - mean_rows["a"], rel=1e-9)
        assert entry["designs"]["a"]["scenario_values"] == pytest.approx(a.tolist())


def test_a_config_against_itself_differs_by_exactly_zero(compared):
    rows = pl.read_parquet(compared / "comparison.parquet")
    s = _summary(compared)
    outcomes = [c for c in rows.columns if c not in ("design",)]
    a = rows.filter(pl.col("design") == "a").select(outcomes)
    again = rows.filter(pl.col("design") == "a-2").select(outcomes)
    assert a.equals(again)  # the same seeds, draw for draw
    for profile in PROFILES:
        for stat in STATS:
            d = s["profiles"][profile]["differences"]["a-2"][stat]
            zero = 0.0 if stat == "mean" else None  # no tail interval under 20 scenarios
            assert d == {"diff": 0.0, "ci_low": zero, "ci_high": zero}
        # on the outcome compared: two different designs can tie on it (zero everywhere)
        assert "a-2 is identical to a on bookings:" in s["profiles"][profile]["verdict"]


def test_report_embeds_summary_json_and_is_self_contained(compared):
    page = (compared / "report.html").read_text(encoding="utf-8")
    embedded = json.loads(re.search(
        r"<script type='application/json' id='gtmsim-summary'>(.*?)</script>", page,
        re.S).group(1))
    assert embedded == _summary(compared)
    assert not re.search(r"<script[^>]*\ssrc=", page)
    assert not re.search(r"<link[^>]*href=[\"']https?://", page)
    assert page.count("Plotly.newPlot") == len(PROFILES)  # one figure per profile
    assert page.count("plotly.js v") == 1  # the library is embedded once
    for profile in PROFILES:
        assert f"Profile {profile}" in page


def test_default_out_folder_under_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    a = _config(tmp_path, "a.toml")
    b = _config(tmp_path, "b.toml", **{"stages.mql_review.threshold": 0.2})
    common = ["compare", a, b, "--scenarios", "2", "--replications", "1", "--engine", "numba"]
    assert main(common) == 0
    assert main(common) == 0  # a second run does not overwrite the first
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["compare-a-b",
                                                                     "compare-a-b-2"]


def test_a_default_folder_taken_during_the_run_is_left_alone(tmp_path, monkeypatch, capsys):
    """Two compares of the same configs started together both pick runs/compare-a-b; the one
    that finishes second takes the next free name instead of failing after all its work."""
    import gtmsim.optimize.designs as designs

    monkeypatch.chdir(tmp_path)
    a = _config(tmp_path, "a.toml")
    b = _config(tmp_path, "b.toml", **{"stages.mql_review.threshold": 0.2})
    real = designs.compare_designs

    def other_run_finishes_first(*args, **kwargs):
        result = real(*args, **kwargs)
        (tmp_path / "runs" / "compare-a-b").mkdir(parents=True)
        (tmp_path / "runs" / "compare-a-b" / "summary.json").write_text("{}")
        return result

    monkeypatch.setattr(designs, "compare_designs", other_run_finishes_first)
    assert main(["compare", a, b, "--scenarios", "2", "--replications", "1",
                 "--engine", "numba"]) == 0
    assert (tmp_path / "runs" / "compare-a-b" / "summary.json").read_text() == "{}"
    assert (tmp_path / "runs" / "compare-a-b-2" / "comparison.parquet").is_file()
    assert "compare-a-b-2" in capsys.readouterr().out.replace("\n", "")


def test_set_of_a_value_for_a_mechanism_off_in_every_design_says_so(tmp_path, capsys):
    """`compare --profile ideal --set people.latency.median_hours=20` changed nothing and
    said nothing, where run notes it; a profile that has the mechanism on gets no note."""
    a = _config(tmp_path, "a.toml")
    b = _config(tmp_path, "b.toml", **{"stages.mql_review.threshold": 0.2})
    for profiles, noted in ((["ideal"], True), (["ideal", "realistic"], False)):
        args = ["compare", a, b, *TINY, "--set", "people.latency.median_hours=20",
                "--out", str(tmp_path / f"o{len(profiles)}")]
        for profile in profiles:
            args += ["--profile", profile]
        assert main(args) == 0
        note = ("gtmsim: note: --set people.latency.median_hours changes nothing: latency is "
                "off in every design under 'ideal'")
        assert (note in capsys.readouterr().err) == noted


def test_the_default_folder_of_many_designs_is_a_name_the_file_system_takes(tmp_path,
                                                                           monkeypatch):
    """Seven designs with long names made a default folder name of 300 characters: the
    compare ran every design, then failed 'cannot write ...: File name too long'."""
    monkeypatch.chdir(tmp_path)
    names = [f"design_number_{i}_with_a_rather_long_descriptive_name.toml" for i in range(7)]
    files = [_config(tmp_path, n) for n in names]
    assert main(["compare", *files, "--scenarios", "2", "--replications", "1",
                 "--engine", "numba"]) == 0
    (out,) = (tmp_path / "runs").iterdir()
    assert len(out.name) <= 120 and (out / "summary.json").is_file()
    assert out.name.startswith("compare-design-number-0-with-a-rather-long-descr-")
    assert out.name.endswith("-more")


def test_an_out_folder_name_too_long_is_refused_before_anything_runs(tmp_path, monkeypatch,
                                                                      capsys):
    """--out with a name longer than the file system takes failed after every design ran."""
    import gtmsim.optimize.designs as designs

    monkeypatch.chdir(tmp_path)
    a = _config(tmp_path, "a.toml")

    def never(*args, **kwargs):
        raise AssertionError("simulated before --out was checked")

    monkeypatch.setattr(designs, "compare_designs", never)
    fails_cleanly(["compare", a, a, "--out", "x" * 300], "--out: ", tmp_path, capsys)


def test_the_kpi_of_a_team_with_none_is_refused_before_anything_runs(tmp_path, monkeypatch,
                                                                     capsys):
    """--outcome kpi_attainment_<team> of a team with no KPI passed the check made before
    work (every team's KPI columns were taken to exist), so every design of every scenario
    ran before the comparison found no such column and stopped."""
    import gtmsim.optimize.designs as designs

    monkeypatch.chdir(tmp_path)
    a = _config(tmp_path, "a.toml", **{"teams.idle": {"headcount": 2}})

    def never(*args, **kwargs):
        raise AssertionError("simulated before --outcome was checked")

    monkeypatch.setattr(designs, "compare_designs", never)
    for outcome in ("kpi_attainment_idle", "kpi_idle"):
        fails_cleanly(["compare", a, a, "--outcome", outcome],
                      f"--outcome: no outcome column '{outcome}' in a", tmp_path, capsys)


def test_an_outcome_no_design_is_scored_by_names_the_choices(tmp_path, capsys):
    """A real column that is no score (throughput_sdr) or a typo read 'no outcome column'
    and nothing more: the line names the nearest name and the outcomes a design is scored by
    (none where less is better, which are refused as such)."""
    a = _config(tmp_path, "a.toml")
    fails_cleanly(["compare", a, a, "--outcome", "bookingz"],
                  "no outcome column 'bookingz' in a (did you mean 'bookings'?); a design is "
                  "scored by one of: bookings, ", tmp_path, capsys)
    with pytest.raises(SystemExit):
        main(["compare", a, a, "--outcome", "throughput_sdr"])
    line = capsys.readouterr().err
    choices = line.split("scored by one of: ")[1].strip().split(", ")
    assert "kpi_attainment_sdr" in choices and "util_ae" in choices and "won" in choices
    assert "leaked" not in choices and "throughput_sdr" not in choices


BAD = {
    "one config": (lambda d, a: ["compare", a], "CONFIG: give at least two configs"),
    "no config": (lambda d, a: ["compare"], "missing required argument: CONFIG"),
    "missing file": (lambda d, a: ["compare", a, "nope.toml"], "nope.toml: no such config"),
    "malformed TOML": (lambda d, a: (d / "bad.toml").write_text('name = "x"\n[run\n')
                       and ["compare", a, "bad.toml"], "bad.toml:2: not valid TOML"),
    "unknown profile": (lambda d, a: ["compare", a, a, "--profile", "realistc"],
                        "profile: unknown profile 'realistc'"),
    "bad outcome": (lambda d, a: ["compare", a, a, "--outcome", "bookingz"],
                    "--outcome: no outcome column 'bookingz'"),
    "bad scenarios": (lambda d, a: ["compare", a, a, "--scenarios", "0"], "--scenarios:"),
    "one scenario": (lambda d, a: ["compare", a, a, "--scenarios", "1"],
                     "--scenarios: at least 2, got 1"),
    "less is better": (lambda d, a: ["compare", a, a, "--outcome", "leaked"],
                       "--outcome leaked: less is better for it"),
    "never defined": (lambda d, a: ["compare", a, a, "--outcome", "win_rate", "--set",
                                    "run.horizon_days=1", "--scenarios", "2",
                                    "--replications", "1"],
                      "--outcome win_rate: undefined in every replication of scenario 0"),
    "another window": (lambda d, a: ["compare", a, _config(d, "w.toml",
                                                           **{"run.horizon_days": 60})],
                       "w.toml: run.horizon_days: is 60 where the baseline's is 30; designs "
                       "are compared over one window: add --set run.horizon_days=30"),
    # both keys at once: it named the warm-up, then, once mended, the horizon
    "another window, both": (lambda d, a: ["compare", a, _config(d, "w2.toml", **{
        "run.horizon_days": 60, "run.warmup_days": 14})],
        "w2.toml: run.warmup_days: is 14 where the baseline's is 7; run.horizon_days is 60 "
        "where the baseline's is 30; designs are compared over one window: add --set "
        "run.warmup_days=7 --set run.horizon_days=30"),
    # which of the files is wrong (the message named only the key)
    "bad design": (lambda d, a: ["compare", a, _config(d, "low.toml", **{
        "stages.mql_review.threshold": 0.05})],
                   "low.toml: stages.mql_review: reject_below (0.08) must not exceed"),
    "out not empty": (lambda d, a: (d / "full").mkdir() or (d / "full" / "x").write_text("x")
                      and ["compare", a, a, "--out", "full"], "--out: full exists and is not"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_exit_2_and_writes_nothing(case, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    a = Path(_config(tmp_path, "a.toml")).name
    make_args, expected = BAD[case]
    fails_cleanly(make_args(tmp_path, a), expected, tmp_path, capsys)


def test_settings_that_differ_beside_the_levers_are_shown(tmp_path):
    """A design that pays its AEs on deals won instead of bookings and drops the partner
    channel differs in no lever: the comparison still says what differs (it used to print
    'levers: all equal')."""
    a = _config(tmp_path, "a.toml")
    raw = read_toml(a)
    raw["teams"]["ae"]["kpi"] = {"metric": "won_count", "stage": "ae_close",
                                 "target_per_quarter": 30}
    del raw["channels"]["partner"]
    (tmp_path / "c.toml").write_text(tomli_w.dumps(raw))
    out = tmp_path / "out"
    assert main(["compare", a, str(tmp_path / "c.toml"), *TINY, "--out", str(out)]) == 0
    diffs = {d["path"]: d for d in _summary(out)["designs"][1]["other_differences"]}
    assert diffs["teams.ae.kpi.metric"]["baseline"] == "won_value"
    assert diffs["teams.ae.kpi.metric"]["design"] == "won_count"
    assert diffs["channels.partner"]["design"] is None  # a removed channel: one difference
    assert diffs["channels.partner"]["baseline"]["rate_per_week"] == 8
    assert not any(p.startswith(("run.", "levers.", "name")) for p in diffs)
    text = (out / "comparison.txt").read_text(encoding="utf-8")
    assert "other settings that differ from the baseline" in text
    assert "teams.ae.kpi.metric" in text and "won_count" in text
    assert "teams.ae.kpi.metric" in (out / "report.html").read_text(encoding="utf-8")


def test_help(capsys):
    with pytest.raises(SystemExit) as info:
        main(["compare", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: gtmsim compare") and "--scenarios K" in out


def test_verdict_keeps_the_figures_of_a_rate():
    """A difference in win rate (-0.0122) is not rounded to '-0' as money would be."""
    from gtmsim.optimize.compare import signed

    assert [signed(v) for v in (-0.0122, -0.000171, 238_872.4, 0.0)] == [
        "-0.0122", "-0.000171", "+238,872", "+0"]


def test_mean_interval_covers_at_the_level_it_claims_with_few_scenarios():
    """The CI of a mean difference over K scenarios covers the true difference 95% of the
    time even at K = 4 (the percentile bootstrap it replaced covered ~79% at 4, 87% at 8).
    2,000 simulated comparisons: the coverage's binomial SE is 0.5%, so 93.5-96.5% is a
    3-SE band. Tail statistics have no interval below 20 scenarios."""
    from gtmsim.optimize.compare import paired_difference

    rng = np.random.default_rng(7)
    for k in (4, 8):
        covered = 0
        for _ in range(2000):
            base = rng.normal(100.0, 10.0, k)
            d, lo, hi = paired_difference(base, base + rng.normal(0.0, 5.0, k))["mean"]
            covered += lo <= 0.0 <= hi
        assert 0.935 <= covered / 2000 <= 0.965, (k, covered / 2000)
    x = rng.normal(size=19)
    assert all(np.isnan(v) for v in paired_difference(x, x + 1)["cvar10"][1:])
    lo, hi = paired_difference(rng.normal(size=20), rng.normal(size=20))["cvar10"][1:]
    assert lo < hi


def test_an_interval_stays_where_the_outcome_can_lie():
    """Two scenarios give a t-interval with 1 degree of freedom: 3.96M [-4.01M, 11.92M]
    bookings was shown; an amount is cut at 0, a share at 0 and 1."""
    from gtmsim.optimize.compare import interval, outcome_interval

    x = np.array([0.5e6, 7.4e6])
    assert interval("mean", x)[0] < 0
    lo, hi = outcome_interval("bookings", "mean", x)
    assert lo == 0.0 and hi == interval("mean", x)[1]
    lo, hi = outcome_interval("win_rate", "mean", np.array([0.2, 0.9]))
    assert (lo, hi) == (0.0, 1.0)
    # a retention KPI is a share where the model says so
    assert outcome_interval("kpi_cs", "mean", np.array([0.6, 0.98]))[1] > 1.0
    assert outcome_interval("kpi_cs", "mean", np.array([0.6, 0.98]), {"kpi_cs"})[1] == 1.0


def test_an_interval_is_written_in_one_unit():
    """'+151.0k [+7,366, +294.6k]' mixed units within one cell: the ends take the unit of
    the largest number."""
    from gtmsim.report.compare import _ci, _diff

    assert _diff({"diff": 151_000.0, "ci_low": 7_366.0, "ci_high": 294_600.0}, True) == (
        "+151.0k [+7.4k, +294.6k]")
    assert _ci(3.96e6, [0.0, 11.92e6], True) == "3.96M [0, 11.92M]"


def test_designs_with_the_same_file_name_are_named_by_their_folder():
    """Three run folders' config.toml were 'config', 'config-2', 'config-3', named by their
    place in the argument list; they take their folder's name."""
    from gtmsim.optimize.designs import design_labels

    assert design_labels(["runs/base/config.toml", "runs/warm/config.toml", "b.toml"]) == [
        "base", "warm", "b"]
    assert design_labels(["y/a.toml", "x/a.toml", "x/a.toml"]) == ["y", "x", "x-2"]
    assert design_labels(["a.toml", "b.toml"]) == ["a", "b"]


def test_a_value_a_design_fixes_is_its_own_in_every_scenario(tmp_path):
    """The baseline's forgetting rate is uncertain; a design that fixes it at 0.06 was run on
    the baseline's draws instead (its own value replaced) and read "identical to base: +0".
    It keeps 0.06 in every scenario, and differs."""
    from gtmsim.config import load_config
    from gtmsim.optimize.designs import compare_designs

    a = _config(tmp_path, "base.toml")
    assert load_config(a).people.forgetting.probability.range  # uncertain in the baseline
    b = _config(tmp_path, "forget.toml", people={"forgetting": {"probability": 0.06}})
    cmp = compare_designs([a, b], scenarios=3, replications=2, engine="numba")
    rows = cmp.rows
    fixed = rows.filter(pl.col("design") == "forget")["people.forgetting.probability"]
    drawn = rows.filter(pl.col("design") == "base")["people.forgetting.probability"]
    assert (fixed == 0.06).all() and drawn.n_unique() == 3
    assert (rows.filter(pl.col("design") == "forget")["leaked_forgotten"].mean()
            > rows.filter(pl.col("design") == "base")["leaked_forgotten"].mean())


def test_a_mechanism_a_design_switches_off_has_no_value_in_the_rows(tmp_path):
    """A design with forgetting off ran with no forgetting, but its rows showed the
    mechanism's central forgetting rate (0.04) as the value it ran with."""
    from gtmsim.optimize.designs import compare_designs

    a = _config(tmp_path, "base.toml")
    b = _config(tmp_path, "off.toml", people={"forgetting": {"enabled": False}})
    rows = compare_designs([a, b], scenarios=2, replications=1, engine="numba").rows
    off = rows.filter(pl.col("design") == "off")
    assert off["people.forgetting.probability"].null_count() == off.height
    assert (off["leaked_forgotten"] == 0).all()
    assert rows.filter(pl.col("design") == "base")["people.forgetting.probability"] \
        .null_count() == 0


def test_the_verdict_says_when_a_teams_kpi_and_the_outcome_disagree(tmp_path):
    """What gtmsim is for: a lower MQL bar lifts Marketing's KPI (MQLs) far past its target
    while bookings fall (the SDRs drown in junk). The verdict said only that bookings fell;
    it names the team whose KPI moved the other way, both beyond noise (paired by
    scenario). A design that changes nothing adds no such clause."""
    from gtmsim.optimize.designs import compare_designs

    window = {"run.horizon_days": 182, "run.warmup_days": 182}  # the pipeline full
    a = _config(tmp_path, "base.toml", **window)
    low = _config(tmp_path, "low_bar.toml", **window, **{
        "stages.mql_review.threshold": 0.1, "stages.mql_review.reject_below": 0.0})
    cmp = compare_designs([a, low, a], profiles=["ideal"], scenarios=6, replications=4,
                          engine="numba")
    verdict = cmp.verdict("ideal")
    low_part, same_part = verdict.split("; ")
    assert low_part.startswith("Under ideal (6 scenarios): low_bar trails base")
    assert "yet marketing's KPI attainment rose" in low_part
    assert "yet" not in same_part


def test_p10_shows_its_interval_where_there_is_one(compared):
    """The table gave P10 without its interval even from 20 scenarios, where summary.json has
    one; under 20 there is none, and the cell is the figure alone (as for CVaR10)."""
    from gtmsim.report.compare import table_rows

    summary = _summary(compared)
    header, rows = table_rows(summary, "realistic")
    col = header.index("P10 [95% CI]")
    first = next(iter(summary["profiles"]["realistic"]["designs"]))
    d = summary["profiles"]["realistic"]["designs"][first]
    assert d["p10_ci"][0] is None and "[" not in rows[0][col]  # 4 scenarios: no interval
    d["p10_ci"] = [d["p10"] - 10.0, d["p10"] + 10.0]  # as from 20 scenarios
    _, rows = table_rows(summary, "realistic")
    assert rows[0][col].endswith("]") and rows[0][col].count(",") >= 1


def test_a_market_the_baseline_leaves_uncertain_is_drawn_and_a_fixed_one_kept(tmp_path):
    """The market is part of a scenario: the baseline's inbound volume, uncertain, is drawn
    per scenario (and its leads follow the draw); a design that fixes the volume keeps it."""
    from gtmsim.optimize.designs import compare_designs

    a = _config(tmp_path, "base.toml", **{"channels.inbound.rate_per_week":
                                          {"value": 300.0, "range": [100.0, 600.0]}})
    b = _config(tmp_path, "fixed.toml", **{"channels.inbound.rate_per_week": 250.0})
    cmp = compare_designs([a, b], scenarios=3, replications=1, engine="numba")
    key = "channels.inbound.rate_per_week"
    base = cmp.rows.filter(pl.col("design") == "base").sort("scenario")
    fixed = cmp.rows.filter(pl.col("design") == "fixed")
    assert (fixed[key] == 250.0).all() and base[key].n_unique() == 3
    assert ((100.0 <= base[key]) & (base[key] <= 600.0)).all()
    # 30 days of a few hundred leads a week: the counts follow the drawn volumes' order
    assert base.sort(key)["leads_inbound"].is_sorted()


def test_a_design_without_the_baselines_uncertain_channel_is_compared(tmp_path):
    """A design may drop a channel (a setting difference, listed): the baseline's uncertain
    volume of it is no value of that design, which ran without it (the lookup of the
    design's own value read the channel's name as a human mechanism: AttributeError)."""
    from gtmsim.optimize.designs import compare_designs

    key = "channels.inbound.rate_per_week"
    a = _config(tmp_path, "base.toml", **{key: {"value": 300.0, "range": [100.0, 600.0]}})
    raw = read_toml(a)
    del raw["channels"]["inbound"]
    b = tmp_path / "no_inbound.toml"
    b.write_text(tomli_w.dumps(raw))
    cmp = compare_designs([a, str(b)], scenarios=2, replications=1, engine="numba")
    mine = cmp.rows.filter(pl.col("design") == "no_inbound")
    assert mine.height == 2 and mine[key].is_null().all()


def test_python_misuse_of_compare_designs_names_the_argument(tmp_path):
    """One path, profile or override given as a string was read character by character
    ('/: is a folder, not a config file', "unknown profile 'r'"), and a count given as text
    was a bare TypeError from a comparison ('<' not supported ...)."""
    from gtmsim.errors import GtmsimError
    from gtmsim.optimize.designs import compare_designs

    a = _config(tmp_path, "a.toml")
    with pytest.raises(TypeError, match="paths: expected a list"):
        compare_designs(a)
    with pytest.raises(TypeError, match="profiles: expected a list"):
        compare_designs([a, a], profiles="realistic")
    with pytest.raises(TypeError, match="overrides: expected a list"):
        compare_designs([a, a], overrides="run.seed=1")
    with pytest.raises(GtmsimError, match="scenarios: must be a whole number"):
        compare_designs([a, a], scenarios="4")
    with pytest.raises(GtmsimError, match="replications: must be a whole number"):
        compare_designs([a, a], replications="2")


def test_the_verdict_gives_a_small_relative_change_its_figures():
    """A design 3,000 ahead on a mean of a million read "+3,000 (+0%)", and one that is
    identical "+0 (+0%)": a small change has two significant figures, as optimize's verdict
    gives it (`change`)."""
    from gtmsim.optimize.designs import DesignComparison
    from gtmsim.optimize.scenarios import Scenario

    base = np.array([1.0e6, 1.1e6, 0.9e6, 1.05e6])
    rows = pl.DataFrame({
        "design": ["base"] * 4 + ["near"] * 4 + ["same"] * 4,
        "profile": ["realistic"] * 12, "scenario": list(range(4)) * 3,
        "replication": [0] * 12,
        "bookings": [*base, *(base + [1000.0, 5000.0, -2000.0, 8000.0]), *base]})
    cmp = DesignComparison(["base", "near", "same"], ["a", "b", "c"], ["realistic"],
                           "bookings", 1, 0, "numba",
                           {"realistic": [Scenario(i, {}, i) for i in range(4)]}, rows, {})
    verdict = cmp.verdict("realistic")
    assert "mean bookings +3,000 (+0.3%)" in verdict
    assert "mean bookings +0 (0%)" in verdict
    assert "(+0%)" not in verdict


def test_the_pages_difference_of_a_rate_keeps_its_figures():
    """The page's table rounded every difference to whole numbers: with --outcome win_rate
    a difference of -0.0084 [-0.081, +0.064] read '-0 [-0, +0]'."""
    from gtmsim.report.compare import _diff

    assert _diff({"diff": -0.00837, "ci_low": -0.081, "ci_high": 0.0643}) == (
        "-0.00837 [-0.081, +0.0643]")
    assert _diff({"diff": 151_000.4, "ci_low": 7_366.0, "ci_high": 294_600.0}) == (
        "+151,000 [+7,366, +294,600]")
    assert _diff({"diff": 0.0, "ci_low": None, "ci_high": None}) == "+0"


def test_names_in_the_text_tables_are_not_read_as_markup():
    """rich read '[v1]' in a design named by its file 'b[v1].toml' as a style tag: the tables
    of 'b[v1]' and 'b[v2]' showed two designs both named 'b' (and a team 's[b]r' as 'sr')."""
    from gtmsim.report.compare import comparison_text

    def design(name):
        return {"mean": 5.0, "mean_ci": [4.0, 6.0], "p10": 4.0, "p10_ci": None,
                "cvar10": 3.5, "cvar10_ci": None, "kpi_attainment": {"s[b]r": 0.9},
                "leaked": 10.0, "cost": 1.0}

    diff = {s: {"diff": 1.0, "ci_low": -1.0, "ci_high": 3.0} for s in ("mean", "p10", "cvar10")}
    names = ["b[v1]", "b[v2]"]
    summary = {"outcome": "bookings", "baseline": names[0], "replications": 1,
               "designs": [{"name": n, "file": f"{n}.toml", "levers": {"x": i},
                            "other_differences": []} for i, n in enumerate(names)],
               "profiles": {"realistic": {"scenarios": 3, "verdict": "-",
                                          "designs": {n: design(n) for n in names},
                                          "differences": {names[1]: diff}}}}
    text = comparison_text(summary)
    assert "┃ b[v1] ┃ b[v2] ┃" in text and "│ b[v2]  │" in text
    assert "KPI s[b]r" in text and "mean - b[v1]" in text


def test_comparison_txt_cuts_no_design_name_nor_number():
    """comparison.txt printed its tables squeezed into 160 columns: with nine designs the
    lever table cut every name to 'headcount_var…', so which design has which lever values
    could not be read, and a number could be cut the same way. The terminal's tables
    (print_whole) kept them whole; the file's now do too."""
    from gtmsim.report.compare import comparison_text

    def design():
        return {"mean": 123_456.0, "mean_ci": [100_000.0, 150_000.0], "p10": 4.0,
                "p10_ci": None, "cvar10": 3.5, "cvar10_ci": None,
                "kpi_attainment": {"marketing": 0.9}, "leaked": 10.0, "cost": 1.0}

    diff = {s: {"diff": 1.0, "ci_low": -1.0, "ci_high": 3.0} for s in ("mean", "p10", "cvar10")}
    names = ["baseline_design"] + [f"headcount_variant_{i}" for i in range(2, 10)]
    summary = {"outcome": "bookings", "baseline": names[0], "replications": 1,
               "designs": [{"name": n, "file": f"{n}.toml",
                            "levers": {"mql_threshold": 0.123456 + i,
                                       "sdr_headcount": 1_000_000 + i},
                            "other_differences": []} for i, n in enumerate(names)],
               "profiles": {"realistic": {"scenarios": 3, "verdict": "-",
                                          "designs": {n: design() for n in names},
                                          "differences": {n: diff for n in names[1:]}}}}
    text = comparison_text(summary)
    assert "…" not in text
    header = next(line for line in text.splitlines() if "headcount_variant_2" in line
                  and "┃" in line)
    assert all(n in header for n in names)
    assert all(f"1,000,00{i}" in text for i in range(9))


def test_design_names_in_the_figure_are_drawn_as_written():
    """A design named by its file 'b<i>x.toml' was drawn in the box plot and the legend as
    'bx' with the x in italics (plotly reads tags in a trace's name), while the tables and
    the console give 'b<i>x'."""
    from gtmsim.report.compare import compare_figures

    def design(values):
        return {"scenario_values": values}

    diff = {s: {"diff": 1.0, "ci_low": 0.0, "ci_high": 2.0} for s in STATS}
    summary = {"outcome": "bookings", "baseline": "a&b", "replications": 2,
               "profiles": {"<b>p</b>": {"designs": {"a&b": design([1.0, 2.0]),
                                                     "b<i>x": design([2.0, 3.0])},
                                         "differences": {"b<i>x": diff}}}}
    (fig,) = compare_figures(summary).values()
    names = [trace.name for trace in fig.data]
    assert names == ["a&amp;b", "b&lt;i&gt;x", "b&lt;i&gt;x"]
    assert fig.layout.title.text == "Profile '&lt;b&gt;p&lt;/b&gt;'"
    assert "difference from a&amp;b" in [a.text for a in fig.layout.annotations][1]


def test_the_headcount_cost_is_said_to_be_a_years():
    """The tables gave 'cost' (the console: 'headcount cost (means)') beside bookings
    counted over the run's window, though it is the design's headcount cost for a year,
    the same in every replication: it is headed as the annual cost."""
    from gtmsim.report.compare import comparison_text, table_rows

    d = {"mean": 5.0, "mean_ci": [4.0, 6.0], "p10": 4.0, "cvar10": 3.0,
         "cvar10_ci": [None, None], "kpi_attainment": {}, "leaked": 1.0, "cost": 2e6}
    summary = {"outcome": "bookings", "baseline": "a", "replications": 2,
               "designs": [{"name": "a", "file": "a.toml", "levers": {}}],
               "profiles": {"realistic": {"scenarios": 2, "designs": {"a": d},
                                          "differences": {}, "verdict": "v"}}}
    header, rows = table_rows(summary, "realistic")
    assert header[-1] == "annual cost" and rows[0][-1] == "2,000,000"
    text = comparison_text(summary)
    assert "annual cost" in text and "headcount cost (means)" not in text


@pytest.mark.parametrize("value, text", [
    (999_999, "1.00M"), (12_345, "12.3k"), (999_949, "999.9k"), (2.5e9, "2.50B"),
    (1e12, "1.00T"), (-999_999, "-1.00M"), (312, "312"), (0.25, "0.25"),
])
def test_short_numbers_stay_in_a_unit_under_a_thousand(value, text):
    """1e12 read '1000000.00M' and 999,999 '1000.0k': the unit is the one whose rounded
    figure stays under 1,000."""
    from gtmsim.report.compare import _short
    assert _short(value) == text


@pytest.mark.parametrize("outcome", ["bookingz", "throughput_sdr"])
def test_compare_designs_refuses_an_unknown_outcome_before_any_design_runs(tmp_path, outcome,
                                                                           monkeypatch):
    """The Python call checked the outcome only once the first design's first scenario had
    run, and took any column (throughput_sdr) the command refuses; now as the command."""
    import gtmsim.optimize.designs as designs
    from gtmsim.errors import GtmsimError

    def never(*args, **kwargs):
        raise AssertionError("a design ran before the outcome was checked")

    monkeypatch.setattr(designs, "evaluate", never)
    a = _config(tmp_path, "a.toml")
    with pytest.raises(GtmsimError, match=f"^--outcome: no outcome column '{outcome}' in a"):
        designs.compare_designs([a, a], scenarios=2, replications=1, outcome=outcome)


def _rates_compared(outcome: str = "win_rate", configs: dict | None = None):
    """A comparison of a rate over four scenarios with no simulation: 'lower' is 2 points
    under the baseline in every scenario but one (1 point)."""
    from gtmsim.optimize.designs import DesignComparison
    from gtmsim.optimize.scenarios import Scenario

    base = np.array([0.25, 0.27, 0.24, 0.26])
    rows = pl.DataFrame({
        "design": ["base"] * 4 + ["lower"] * 4, "profile": ["realistic"] * 8,
        "scenario": list(range(4)) * 2, "replication": [0] * 8,
        outcome: [*base, *(base - [0.02, 0.02, 0.01, 0.02])]})
    return DesignComparison(["base", "lower"], ["a", "b"], ["realistic"], outcome, 1, 0,
                            "numba", {"realistic": [Scenario(i, {}, i) for i in range(4)]},
                            rows, configs if configs is not None else {})


def test_a_rate_is_compared_in_percent_and_its_difference_in_points():
    """`compare --outcome win_rate` wrote 0.252 [0.232, 0.271] where `run` writes 25.2%, and
    a verdict 'mean win_rate -0.0201 (-8%)': an absolute fraction beside a relative percent.
    A share is in %, its difference in percentage points, the relative change said to be
    one; an amount is written as before."""
    from gtmsim.config import load_config
    from gtmsim.report.compare import table_rows

    verdict = _rates_compared().verdict("realistic")
    # -1.75 points on a mean of 25.5%: -6.9% of it
    assert "mean win_rate -1.75 pp (-7% relative) (95% CI " in verdict
    # the worst scenario: 24% in the baseline, 23% in the other
    assert re.search(r"\(95% CI -[\d.]+ to -[\d.]+ pp\), worst-10% -1 pp", verdict), verdict
    assert "0.0175" not in verdict and "-0.02" not in verdict
    # a retention KPI is a share where the model says so (cs's metric is 'retained')
    assert _rates_compared().outcome_in_percent()
    assert not _rates_compared("kpi_cs").outcome_in_percent()
    assert _rates_compared("kpi_cs", {("base", "realistic"): load_config()}).outcome_in_percent()

    def summary(outcome, **flag):
        d = {"mean": 0.2523, "mean_ci": [0.2321, 0.2714], "p10": 0.2418, "p10_ci": None,
             "cvar10": 0.2407, "cvar10_ci": [None, None], "kpi_attainment": {},
             "leaked": 10.0, "cost": 1.0}
        diff = {"mean": {"diff": -0.0244, "ci_low": -0.0594, "ci_high": 0.0106},
                "cvar10": {"diff": -0.0247, "ci_low": None, "ci_high": None}}
        return {"outcome": outcome, "baseline": "a", "replications": 2, **flag,
                "profiles": {"realistic": {"designs": {"a": d, "b": d},
                                           "differences": {"b": diff}}}}

    for short in (False, True):
        _, (_, b) = table_rows(summary("win_rate"), "realistic", short)
        assert b[1:6] == ["25.2% [23.2%, 27.1%]", "24.2%", "24.1%",
                          "-2.44 pp [-5.94, +1.06]", "-2.47 pp"]
        # summary.json says so for a retention KPI, whose name alone does not
        _, (_, b) = table_rows(summary("kpi_cs", outcome_in_percent=True), "realistic", short)
        assert b[1] == "25.2% [23.2%, 27.1%]"
        # and a summary.json written before outcome_in_percent, by its outcome_is_share
        _, (_, b) = table_rows(summary("kpi_cs", outcome_is_share=True), "realistic", short)
        assert b[1] == "25.2% [23.2%, 27.1%]"
        _, (_, b) = table_rows(summary("bookings", outcome_in_percent=False), "realistic", short)
        assert b[1] == "0.252 [0.232, 0.271]" and "pp" not in b[4]


def test_a_kpi_attainment_is_compared_in_percent_and_its_difference_in_points():
    """`compare --outcome kpi_attainment_sdr` wrote 0.87 [0.8, 0.94] where `run` writes
    attainment as 87%, and a verdict 'mean kpi_attainment_sdr -0.06 (-7%)'. An attainment
    passes 100%, so it is no share (its interval is not cut at 1), yet it is written in %
    and its differences in percentage points."""
    from gtmsim.report.compare import table_rows

    compared = _rates_compared("kpi_attainment_sdr")
    compared.rows = compared.rows.with_columns(pl.col("kpi_attainment_sdr") * 4)  # ~100%
    verdict = compared.verdict("realistic")
    # -7 points on a mean of 102%: -6.9% of it
    assert "mean kpi_attainment_sdr -7 pp (-7% relative) (95% CI " in verdict, verdict
    assert re.search(r"\(95% CI -[\d.]+ to -[\d.]+ pp\), worst-10% -4 pp", verdict), verdict
    assert compared.outcome_in_percent()  # summary.json says so: outcome_in_percent
    d = {"mean": 1.0523, "mean_ci": [0.9821, 1.1214], "p10": 0.87, "p10_ci": None,
         "cvar10": 0.8407, "cvar10_ci": [None, None], "kpi_attainment": {},
         "leaked": 10.0, "cost": 1.0}
    diff = {"mean": {"diff": -0.0544, "ci_low": -0.0894, "ci_high": -0.0194},
            "cvar10": {"diff": -0.0247, "ci_low": None, "ci_high": None}}
    # by its name where summary.json does not say (one from before)
    summary = {"outcome": "kpi_attainment_sdr", "baseline": "a", "replications": 2,
               "profiles": {"realistic": {"designs": {"a": d, "b": d},
                                          "differences": {"b": diff}}}}
    for short in (False, True):
        _, (_, b) = table_rows(summary, "realistic", short)
        assert b[1:6] == ["105.2% [98.2%, 112.1%]", "87.0%", "84.1%",
                          "-5.44 pp [-8.94, -1.94]", "-2.47 pp"]
    # written in %, and still no share: its interval is cut at 0, not at 1
    from gtmsim.outcomes import in_percent, is_proportion, where_it_can_lie

    assert in_percent("kpi_attainment_sdr") and not is_proportion("kpi_attainment_sdr")
    assert in_percent("win_rate") and in_percent("kpi_cs", {"kpi_cs"})
    assert not in_percent("bookings") and not in_percent("kpi_cs")
    assert where_it_can_lie("kpi_attainment_sdr", 0.9, 1.3, True) == (0.9, 1.3)


def test_the_difference_chart_of_a_rate_is_in_points():
    """The page drew a rate's differences as fractions (-0.02) under a table in points."""
    from gtmsim.report.compare import compare_figures

    diff = {s: {"diff": -0.02, "ci_low": -0.03, "ci_high": None} for s in STATS}
    summary = {"outcome": "win_rate", "baseline": "a", "replications": 2,
               "profiles": {"realistic": {"designs": {"a": {"scenario_values": [0.25, 0.26]},
                                                      "b": {"scenario_values": [0.23, 0.24]}},
                                          "differences": {"b": diff}}}}
    (fig,) = compare_figures(summary).values()
    assert list(fig.data[-1].y) == pytest.approx([-2.0] * 3)
    assert list(fig.data[-1].error_y.arrayminus) == pytest.approx([1.0] * 3)
    assert fig.layout.yaxis2.ticksuffix == " pp" and fig.layout.yaxis.tickformat.endswith("%")


def test_the_verdict_names_the_teams_whose_kpi_disagrees_in_one_sentence():
    """Two teams' KPIs rising while bookings fell read ', yet marketing's KPI attainment rose
    104% -> 154%, yet sdr's KPI attainment rose 72% -> 77%. (no interval ...)': one 'yet'
    for them all, and no full stop before a parenthesis that went on with the sentence."""
    from gtmsim.optimize.designs import DesignComparison
    from gtmsim.optimize.scenarios import Scenario

    def compared(teams):
        noise = np.array([0.0, 0.01, -0.01, 0.0])  # a mean of 0: the means are as given
        base = np.array([1.0e6, 1.1e6, 0.9e6, 1.05e6])
        cols = {"bookings": [*base, *(base - 50_000.0 + noise * 1e5)]}
        for team, (before, after) in teams.items():
            cols[f"kpi_attainment_{team}"] = [*(before + noise), *(after + noise[::-1])]
        rows = pl.DataFrame({"design": ["base"] * 4 + ["low_bar"] * 4,
                             "profile": ["realistic"] * 8, "scenario": list(range(4)) * 2,
                             "replication": [0] * 8, **cols})
        return DesignComparison(["base", "low_bar"], ["a", "b"], ["realistic"], "bookings",
                                1, 0, "numba",
                                {"realistic": [Scenario(i, {}, i) for i in range(4)]},
                                rows, {}).verdict("realistic")

    # ae's attainment does not move: it is not named
    two = compared({"marketing": (1.04, 1.54), "sdr": (0.72, 0.77), "ae": (0.9, 0.9)})
    assert two.count("yet") == 1 and "ae's" not in two
    assert ", yet marketing's KPI attainment rose 104% -> 154% and sdr's rose 72% -> 77%." \
        in two
    assert ". (" not in two
    assert two.endswith(" Under 20 scenarios the worst 10% is the single worst scenario, "
                        "with no interval.")
    three = compared({"cs": (0.5, 0.6), "marketing": (1.04, 1.54), "sdr": (0.72, 0.77)})
    assert (", yet cs's KPI attainment rose 50% -> 60%, marketing's rose 104% -> 154% and "
            "sdr's rose 72% -> 77%.") in three
    one = compared({"marketing": (1.04, 1.54)})
    assert ", yet marketing's KPI attainment rose 104% -> 154%." in one


def test_each_designs_difference_is_drawn_at_its_own_place():
    """With three designs or more every design's point and error bar sat in the middle of
    the statistic's category ("mean", "P10", "CVaR10") and hid the others: the difference
    chart groups them, each design at its own offset (as the box plot's boxes are)."""
    from gtmsim.report.compare import compare_figures

    names = ["base", "b", "c", "d"]
    summary = {"outcome": "bookings", "baseline": "base", "replications": 1,
               "profiles": {"realistic": {
                   "designs": {n: {"scenario_values": [1.0, 2.0]} for n in names},
                   "differences": {n: {s: {"diff": 0.5, "ci_low": 0.0, "ci_high": 1.0}
                                       for s in STATS} for n in names[1:]}}}}
    (fig,) = compare_figures(summary).values()
    points = [t for t in fig.data if t.type == "scatter"]
    assert [t.name for t in points] == names[1:]
    assert fig.layout.scattermode == "group"
    groups = [t.offsetgroup for t in points]
    assert None not in groups and len(set(groups)) == len(points)
