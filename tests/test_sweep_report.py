"""The sweep's report.html: its numbers are the means of the point files; it opens offline."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from gtmsim.cli import main
from gtmsim.report.sweep import sweep_report
from gtmsim.sweep import load_grid, plan_sweep, read_sweep, run_sweep

SHORT = ["--set", "run.horizon_days=30", "--set", "run.warmup_days=7"]
GRID = """profiles = ["ideal", "realistic"]

[levers]
sdr_headcount = [3, 5]
mql_threshold = { range = [0.2, 0.4], steps = 2 }
"""


def embedded(page: str) -> dict:
    return json.loads(re.search(
        r"<script type='application/json' id='gtmsim-summary'>(.*?)</script>", page,
        re.S).group(1))


def sweep_report_html(folder: Path, grid: str = GRID, replications: int = 3,
                      extra: tuple[str, ...] = ()) -> Path:
    """Run a tiny sweep in this process into folder/out and return its report.html."""
    (folder / "grid.toml").write_text(grid)
    out = folder / "out"
    assert main(["sweep", "--grid", str(folder / "grid.toml"), *SHORT, "--replications",
                 str(replications), "--workers", "0", "--out", str(out), *extra]) == 0
    return out / "report.html"


def _point_means(out: Path, outcome: str) -> dict[int, float]:
    """The mean of each point's replications, from the parquet files (NaN left out)."""
    files = sorted((out / "points").glob("point-*.parquet"))
    means = {}
    for f in files:
        df = pl.read_parquet(f)
        x = df[outcome].cast(pl.Float64).to_numpy()
        means[int(df["point"][0])] = float(np.nanmean(x)) if np.isfinite(x).any() else math.nan
    return means


@pytest.fixture(scope="module")
def factorial(tmp_path_factory) -> Path:
    return sweep_report_html(tmp_path_factory.mktemp("sweep_report"))


def test_embedded_means_are_the_parquet_means(factorial):
    out = factorial.parent
    s = embedded(factorial.read_text(encoding="utf-8"))
    assert s["layout"] == "heatmap" and (s["x"], s["y"]) == ("sdr_headcount", "mql_threshold")
    assert s["profiles"] == ["ideal", "realistic"] and "bookings" in s["outcomes"]
    assert len(s["points"]) == 8
    rows = read_sweep(out)
    for outcome in s["outcomes"]:
        want = _point_means(out, outcome)
        for p in s["points"]:
            assert p["replications"] == 3
            if np.isnan(want[p["point"]]):  # undefined in every replication: no mean, no CI
                assert p["mean"][outcome] is None and p["ci_low"][outcome] is None
                continue
            assert p["mean"][outcome] == pytest.approx(want[p["point"]], rel=1e-12, abs=1e-12)
            assert p["ci_low"][outcome] <= p["mean"][outcome] <= p["ci_high"][outcome]
    # each point's lever values and profile are those in its rows
    for p in s["points"]:
        row = rows.filter(pl.col("point") == p["point"]).row(0, named=True)
        assert row["profile"] == p["profile"]
        assert {k: row[k] for k in p["values"]} == p["values"]
    # two levers only: each heatmap cell is one point
    assert len(s["cells"]) == 8
    by_point = {(p["profile"], p["values"]["sdr_headcount"], p["values"]["mql_threshold"]):
                p["mean"]["bookings"] for p in s["points"]}
    for c in s["cells"]:
        assert c["mean"]["bookings"] == by_point[(c["profile"], c["x"], c["y"])]


def test_report_is_self_contained(factorial):
    page = factorial.read_text(encoding="utf-8")
    assert not re.search(r"<script[^>]*\ssrc=", page)
    assert not re.search(r"<link[^>]*href=[\"']https?://", page)
    assert page.count("plotly.js v") == 1 and page.count("Plotly.newPlot") == 1
    assert "Mean bookings over sdr_headcount and mql_threshold" in page
    assert factorial.stat().st_size < 8 * 1024 * 1024


def test_resumed_sweep_rewrites_the_report(factorial, tmp_path):
    out = factorial.parent
    before = embedded(factorial.read_text(encoding="utf-8"))
    (out / "points" / "point-00003.parquet").unlink()
    factorial.unlink()
    assert main(["sweep", "--grid", str(out.parent / "grid.toml"), *SHORT, "--replications",
                 "3", "--workers", "0", "--out", str(out)]) == 0
    assert embedded(factorial.read_text(encoding="utf-8")) == before


def test_three_levers_average_over_the_third(tmp_path):
    grid = ('profiles = ["realistic"]\n[levers]\nsdr_headcount = [3, 5]\n'
            'mql_threshold = [0.2, 0.4]\n"stages.sdr_qualify.sla_hours" = [4.0, 24.0]\n')
    report = sweep_report_html(tmp_path, grid, replications=2)
    s = embedded(report.read_text(encoding="utf-8"))
    assert s["layout"] == "heatmap" and s["averaged_over"] == ["stages.sdr_qualify.sla_hours"]
    assert len(s["points"]) == 8 and len(s["cells"]) == 4
    want = _point_means(report.parent, "bookings")
    for c in s["cells"]:
        inside = [p["point"] for p in s["points"]
                  if (p["values"]["sdr_headcount"], p["values"]["mql_threshold"])
                  == (c["x"], c["y"])]
        assert c["points"] == 2
        assert c["mean"]["bookings"] == pytest.approx(np.mean([want[i] for i in inside]),
                                                      rel=1e-12)
    assert "averaged over stages.sdr_qualify.sla_hours" in report.read_text(encoding="utf-8")


def test_one_lever_is_lines_and_lhs_is_a_scatter(tmp_path):
    one = tmp_path / "one"
    one.mkdir()
    s = embedded(sweep_report_html(one, 'profiles = ["ideal", "realistic"]\n[levers]\n'
                                        'sdr_headcount = [3, 5, 8]\n', 2)
                 .read_text(encoding="utf-8"))
    assert s["layout"] == "lines" and s["cells"] == [] and len(s["points"]) == 6
    grid = load_grid(_write(tmp_path / "lhs.toml", 'design = "lhs"\npoints = 4\n[levers]\n'
                            'sdr_headcount = { range = [2, 8] }\n'
                            'mql_threshold = { range = [0.1, 0.5] }\n'))
    plan = plan_sweep(None, None, SHORT[1::2], grid, replications=2, seed=1)
    run_sweep(plan, tmp_path / "lhs")
    s = embedded(sweep_report(tmp_path / "lhs"))
    assert s["layout"] == "scatter" and len(s["points"]) == 4
    want = _point_means(tmp_path / "lhs", "bookings")
    assert {p["point"]: p["mean"]["bookings"] for p in s["points"]} == pytest.approx(want)


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_one_replication_has_no_interval():
    """A point of one replication says nothing about the spread: no CI (as in a run), not a
    zero-width one; two replications give the t-interval."""
    import polars as pl

    from gtmsim.report.sweep import point_means

    rows = pl.DataFrame({"point": [0, 1, 1], "bookings": [5.0, 4.0, 6.0]})
    p0, p1 = point_means(rows, ["bookings"]).to_dicts()
    assert p0["bookings"] == 5.0 and p0["bookings_ci_low"] is None
    assert p0["bookings_ci_high"] is None
    half = 12.706204736174707 * 2 ** 0.5 / 2 ** 0.5  # t(0.975, 1) x sd / sqrt(n)
    # cut at 0, where bookings can lie
    assert (p1["bookings_ci_low"], p1["bookings_ci_high"]) == pytest.approx((0.0, 5 + half))



def test_a_points_interval_stays_where_the_outcome_can_lie():
    """A point's t-interval over two replications reached below 0 bookings and past a win
    rate of 1; cut as a run's summary cuts it: a share to [0, 1], an outcome that is never
    negative at 0."""
    import polars as pl

    from gtmsim.report.sweep import point_means

    rows = pl.DataFrame({"point": [0, 0], "bookings": [1.0, 9.0], "win_rate": [0.2, 0.9]})
    (p,) = point_means(rows, ["bookings", "win_rate"]).to_dicts()
    assert p["bookings_ci_low"] == 0.0 and p["bookings_ci_high"] > 9.0
    assert p["win_rate_ci_low"] == 0.0 and p["win_rate_ci_high"] == 1.0

def test_the_best_point_is_set_against_the_runner_up():
    """The best point per profile comes with its lead over the runner-up and a 95% CI: two
    points whose replications move together are told apart when paired (common random
    numbers) and not when the spread between replications is all there is (Welch)."""
    from gtmsim.report.sweep import _leaders

    rows = pl.DataFrame({"point": [0, 0, 0, 1, 1, 1], "replication": [0, 1, 2] * 2,
                         "profile": ["realistic"] * 6,
                         "bookings": [10.0, 20.0, 30.0, 9.0, 19.5, 29.0]})
    points = [{"point": k, "profile": "realistic", "mean": {"bookings": m}}
              for k, m in ((0, 20.0), (1, 57.5 / 3))]
    (paired,) = _leaders(rows, points, ["realistic"], "bookings", paired=True)
    assert (paired["best"], paired["runner_up"]) == (0, 1)
    assert paired["difference"] == pytest.approx(2.5 / 3)
    assert paired["separated"] and 0 < paired["ci_low"] < paired["ci_high"]
    (welch,) = _leaders(rows, points, ["realistic"], "bookings", paired=False)
    assert welch["difference"] == pytest.approx(2.5 / 3)
    assert not welch["separated"] and welch["ci_low"] < 0 < welch["ci_high"]


def test_where_less_is_better_the_best_point_is_the_lowest():
    """Ranked by leaks, the 'best' point was the one that leaked most and its lead over the
    runner-up was that excess; the best is now the lowest and its lead counts in its favour."""
    from gtmsim.report.sweep import _leaders, leaders_text

    rows = pl.DataFrame({"point": [0, 0, 0, 1, 1, 1], "replication": [0, 1, 2] * 2,
                         "profile": ["realistic"] * 6,
                         "leaked": [10.0, 20.0, 30.0, 9.0, 19.5, 29.0]})
    points = [{"point": k, "profile": "realistic", "values": {"sdr_headcount": k + 3},
               "mean": {"leaked": m}} for k, m in ((0, 20.0), (1, 57.5 / 3))]
    for paired in (True, False):
        (lead,) = _leaders(rows, points, ["realistic"], "leaked", paired=paired)
        assert (lead["best"], lead["runner_up"]) == (1, 0)
        assert lead["difference"] == pytest.approx(2.5 / 3)
    s = {"outcomes": ["leaked"], "points": points, "leaders": [lead]}
    (line,) = leaders_text(s)
    assert line.startswith("lowest leaked under realistic: sdr_headcount=4")
    # a profile's only point is not 'best' of anything
    (alone,) = _leaders(rows, points[:1], ["realistic"], "leaked", paired=False)
    (line,) = leaders_text({"outcomes": ["leaked"], "points": points, "leaders": [alone]})
    assert line == "leaked under realistic: sdr_headcount=3, mean 20", line


def test_each_teams_kpi_is_set_beside_the_design_it_would_choose():
    """The sweep showed a team's KPI only by switching the menu: nothing said that
    marketing's KPI is highest at the lowest MQL bar, where bookings are far below the best
    point's. Per profile, each team whose KPI ranks another point best is named, with the
    outcome there against the best point; a team that agrees with the outcome is not."""
    from gtmsim.report.sweep import _kpi_choices, _kpi_table, kpi_choices_text

    def point(k, bar, bookings, marketing, sdr, cs):
        mean = {"bookings": bookings, "kpi_attainment_marketing": marketing,
                "kpi_attainment_sdr": sdr, "kpi_attainment_cs": cs}
        return {"point": k, "profile": "realistic", "values": {"mql_threshold": bar},
                "replications": 20, "mean": mean,
                "ci_low": {o: 0.99 * v for o, v in mean.items()},
                "ci_high": {o: 1.01 * v for o, v in mean.items()}}

    # cs's KPI is highest at 0.5, but within 1% of the best point's: noise, not a choice
    points = [point(0, 0.1, 4_000_000.0, 2.16, 0.7, 1.0),
              point(1, 0.3, 5_000_000.0, 1.04, 0.9, 1.0),
              point(2, 0.5, 4_500_000.0, 0.6, 0.8, 1.005)]
    s = {"outcomes": ["bookings", "kpi_attainment_marketing", "kpi_attainment_sdr",
                      "kpi_attainment_cs"],
         "points": points, "leaders": [{"profile": "realistic", "best": 1, "runner_up": 2}]}
    # bookings per replication (common random numbers): point 1 clearly ahead of point 0
    rows = pl.DataFrame({"point": [k for k in (0, 1, 2) for _ in range(4)],
                         "replication": [0, 1, 2, 3] * 3,
                         "bookings": [m + d for m in (4e6, 5e6, 4.5e6)
                                      for d in (-1e5, 0.0, 5e4, 5e4)]})
    (choice,) = _kpi_choices(s, rows, paired=True)  # sdr's KPI peaks where bookings do
    assert (choice["team"], choice["point"]) == ("marketing", 0)
    assert choice["relative"] == pytest.approx(-0.2)
    s["kpi_choices"] = [choice]
    (line,) = kpi_choices_text(s)
    assert line == ("under realistic, marketing's KPI attainment is highest at "
                    "mql_threshold=0.1 (216.0%, against 104.0% at the best point), with "
                    "bookings 4,000,000 there: -20% against the best point"), line
    assert "Where each team's KPI would take the design" in _kpi_table(s)
    # bookings at marketing's point within noise of the best: no trade-off to show
    noisy = rows.with_columns(pl.when(pl.col("point") == 0).then(
        pl.col("bookings") + pl.Series([2e6, -1e6, 3e6, -3e6] + [0.0] * 8)).otherwise(
        pl.col("bookings")).alias("bookings"))
    assert _kpi_choices(s, noisy, paired=True) == []
    s["leaders"][0]["runner_up"] = None  # a profile's one point: no choice to set apart
    assert _kpi_choices(s, rows, paired=True) == []


@pytest.mark.parametrize("layout", ["heatmap", "scatter"])
def test_the_bright_end_of_the_colour_scale_is_the_better_one(layout):
    """Heatmaps and scatters coloured every outcome on one scale, so the brightest cell was
    the best bookings and the worst leaks alike; where less is better the scale is reversed
    and its title says so."""
    from gtmsim.report.sweep import sweep_figures

    means = [{"bookings": 1e6 + x * 1e3 + y, "leaked": 100.0 - x - y} for x in (3, 5)
             for y in (0.2, 0.4)]
    values = [(x, y) for x in (3, 5) for y in (0.2, 0.4)]
    cells = [{"profile": "realistic", "x": x, "y": y, "points": 1, "mean": m}
             for (x, y), m in zip(values, means, strict=True)]
    points = [{"point": i, "profile": "realistic",
               "values": {"sdr_headcount": x, "mql_threshold": y}, "mean": m}
              for i, ((x, y), m) in enumerate(zip(values, means, strict=True))]
    s = {"profiles": ["realistic"], "x": "sdr_headcount", "y": "mql_threshold",
         "layout": layout, "outcomes": ["bookings", "leaked"],
         "cells": cells if layout == "heatmap" else [], "points": points,
         "averaged_over": []}
    bookings, leaked = sweep_figures(s)["means"].data

    def scale(trace):
        return trace.colorscale if layout == "heatmap" else trace.marker.colorscale

    def title(trace):
        bar = trace.colorbar if layout == "heatmap" else trace.marker.colorbar
        return bar.title.text

    # plotly expands a named scale into its stops: reversed, the first stop is the other end
    assert scale(bookings)[0][1] == scale(leaked)[-1][1]
    assert scale(bookings)[-1][1] == scale(leaked)[0][1] != scale(bookings)[0][1]
    assert title(bookings) == "bookings" and title(leaked) == "leaked (less is better)"


def test_the_reports_leaders_are_its_points(factorial):
    s = embedded(factorial.read_text(encoding="utf-8"))
    assert [lead["profile"] for lead in s["leaders"]] == s["profiles"]
    by_point = {p["point"]: p for p in s["points"]}
    for lead in s["leaders"]:
        pts = [p for p in s["points"] if p["profile"] == lead["profile"]]
        means = sorted((p["mean"]["bookings"] for p in pts), reverse=True)
        assert by_point[lead["best"]]["mean"]["bookings"] == means[0]
        assert by_point[lead["runner_up"]]["mean"]["bookings"] == means[1]
        assert lead["ci_low"] <= lead["difference"] <= lead["ci_high"]
    assert "lead over the runner-up" in factorial.read_text(encoding="utf-8")
    # each team's KPI attainment is in the outcome menu, beside the system's outcomes
    assert {"kpi_attainment_sdr", "kpi_attainment_ae"} <= set(s["outcomes"])


def test_the_sweep_prints_the_best_point_per_profile(tmp_path, capsys):
    sweep_report_html(tmp_path, 'profiles = ["realistic"]\n[levers]\nsdr_headcount = [3, 5]\n',
                      replications=3)
    out = capsys.readouterr().out
    assert "best bookings under realistic: sdr_headcount=" in out
    assert "ahead of the runner-up by" in out


def test_heatmap_cells_show_a_rate_as_a_number_not_in_milli():
    """A cell's label used SI prefixes for every outcome: a win rate of 0.25 read '250m' and
    a KPI attainment of 0.66 '660m'; below 1 the label is the number, money keeps 1.86M."""
    from gtmsim.report.sweep import sweep_figures

    cells = [{"profile": "realistic", "x": x, "y": y, "points": 1,
              "mean": {"bookings": 1.86e6 + x, "rework_hours": 0.25 + y / 10}}
             for x in (3, 5) for y in (0.2, 0.4)]
    s = {"profiles": ["realistic"], "x": "sdr_headcount", "y": "mql_threshold",
         "layout": "heatmap", "outcomes": ["bookings", "rework_hours"], "cells": cells,
         "points": [], "averaged_over": []}
    bookings, rework = sweep_figures(s)["means"].data
    assert bookings.texttemplate == "%{z:.3~s}"
    assert "s}" not in rework.texttemplate and rework.texttemplate == "%{z:.3~g}"


def test_a_share_and_an_attainment_are_in_percent_as_the_other_reports_write_them():
    """The sweep wrote a win rate as 0.296 and a KPI attainment as 2.29 (cells, hover, colour
    bar, the best-point table), where run, compare and optimize write 29.6% and 229%."""
    from gtmsim.report.sweep import _best_table, sweep_figures

    outcomes = ["win_rate", "kpi_attainment_sdr", "bookings"]
    cells = [{"profile": "realistic", "x": x, "y": y, "points": 1,
              "mean": {"win_rate": 0.25 + y / 10, "kpi_attainment_sdr": 2.0 + y,
                       "bookings": 1e6}}
             for x in (3, 5) for y in (0.2, 0.4)]
    s = {"profiles": ["realistic"], "x": "sdr_headcount", "y": "mql_threshold",
         "layout": "heatmap", "outcomes": outcomes, "cells": cells, "points": [],
         "averaged_over": []}
    win_rate, attainment, bookings = sweep_figures(s)["means"].data
    for trace in (win_rate, attainment):
        assert trace.texttemplate == "%{z:.1%}"
        assert "%{z:.2%}" in trace.hovertemplate
        assert trace.colorbar.tickformat.endswith("%")
    assert bookings.texttemplate == "%{z:.3~s}" and bookings.colorbar.tickformat is None
    # lines: the y axis is the outcome's, in % for the one the menu shows
    points = [{"point": k, "profile": "realistic", "values": {"sdr_headcount": k + 3},
               "replications": 2, "mean": {o: 0.3 + k / 10 for o in outcomes},
               "ci_low": {o: 0.2 + k / 10 for o in outcomes},
               "ci_high": {o: 0.4 + k / 10 for o in outcomes}} for k in (0, 1)]
    s.update(layout="lines", y=None, cells=[], points=points)
    fig = sweep_figures(s)["means"]
    assert fig.layout.yaxis.tickformat.endswith("%")
    menu = {b.label: b.args[1]["yaxis.tickformat"] for b in fig.layout.updatemenus[0].buttons}
    assert menu["win_rate"].endswith("%") and menu["bookings"] == ""
    s.update(sweep={"common_random_numbers": True},
             leaders=[{"profile": "realistic", "best": 1, "runner_up": 0, "difference": 0.1,
                       "ci_low": 0.05, "ci_high": 0.15, "separated": True, "paired": True}])
    table = _best_table(s)
    assert "<td>40.0%</td><td>[30.0%, 50.0%]</td>" in table
    assert "10 pp [5 pp, 15 pp], ahead" in table


def test_a_point_without_an_interval_has_no_error_bar(sweep_lines):
    """A point of one replication has no CI, yet the chart drew an error bar of zero width
    at it (a certainty the data do not give); it draws none, as a run's report does."""
    from gtmsim.report.run import NO_BAR
    from gtmsim.report.sweep import sweep_figures

    (line,) = sweep_figures(sweep_lines)["means"].data
    # none: a length plotly.js reads as NaN (None reached it as null, a length of 0)
    assert list(line.error_y.array) == [NO_BAR, 3.0]
    assert list(line.error_y.arrayminus) == [NO_BAR, 2.0]
    sweep_lines["layout"] = "bars"
    (bars,) = sweep_figures(sweep_lines)["means"].data
    assert list(bars.error_y.array) == [NO_BAR, 3.0]


def test_a_sweep_of_one_point_is_said_in_the_singular(tmp_path, capsys):
    """A grid of one point printed 'swept 1 points ... 1 points run (1 tasks)' and its
    report '1 points (factorial)'."""
    page = sweep_report_html(tmp_path, "[levers]\nsdr_headcount = [4]\n", replications=2)
    out = capsys.readouterr().out
    assert "swept 1 point x 2 replications" in out and "1 point run (1 task)," in out
    assert "1 point (factorial) x 2 replications" in page.read_text(encoding="utf-8")


def test_with_one_replication_the_console_says_the_lead_is_unknown():
    """With one replication per point there is no interval for the lead over the runner-up:
    the page's table says 'too few replications to say', but the console named the 'best'
    point with no word on it, as if its lead were clear."""
    from gtmsim.report.sweep import leaders_text

    points = [{"point": i, "values": {"sdr_headcount": v}, "mean": {"bookings": m}}
              for i, (v, m) in enumerate([(3, 5.0), (5, 4.0)])]
    s = {"outcomes": ["bookings"], "points": points,
         "leaders": [{"profile": "realistic", "best": 0, "runner_up": 1, "difference": None,
                      "ci_low": None, "ci_high": None, "paired": False, "separated": None}]}
    (line,) = leaders_text(s)
    assert line == ("best bookings under realistic: sdr_headcount=3, mean 5; too few "
                    "replications to set it against the runner-up")


def test_profile_names_in_the_figure_are_drawn_as_written():
    """A profile file 'my<b>people</b>.toml' was drawn in the bars as 'mypeople' in bold:
    plotly reads tags in a figure's text; escaped, the name is drawn as written."""
    from gtmsim.report.sweep import sweep_figures

    points = [{"point": i, "profile": p, "values": {}, "replications": 2,
               "mean": {"bookings": m}, "ci_low": {"bookings": m - 1},
               "ci_high": {"bookings": m + 1}}
              for i, (p, m) in enumerate([("realistic", 5.0), ("my<b>people</b>", 4.0)])]
    s = {"profiles": ["realistic", "my<b>people</b>"], "levers": [], "layout": "bars",
         "x": None, "y": None, "averaged_over": [], "outcomes": ["bookings"],
         "points": points, "cells": []}
    (bars,) = sweep_figures(s)["means"].data
    assert list(bars.x) == ["realistic", "my&lt;b&gt;people&lt;/b&gt;"]


def test_each_profile_panel_is_coloured_on_its_own_scale():
    """The panels shared one colour range over every profile: a realistic panel far below the
    ideal one was dark throughout, its best point no brighter than its worst, though 'the
    bright end of a colour scale is the better one'. Each panel spans its own values, with
    its own colour bar beside it, and the title says so."""
    from gtmsim.report.sweep import sweep_figures

    cells = [{"profile": prof, "x": x, "y": y, "points": 1,
              "mean": {"bookings": base * (1 + x / 10 + y)}}
             for prof, base in (("realistic", 1.0e6), ("ideal", 3.0e6))
             for x in (3, 5) for y in (0.2, 0.4)]
    s = {"profiles": ["realistic", "ideal"], "x": "sdr_headcount", "y": "mql_threshold",
         "layout": "heatmap", "outcomes": ["bookings"], "cells": cells, "points": [],
         "averaged_over": []}
    fig = sweep_figures(s)["means"]
    bars = []
    for trace, prof, axis in zip(fig.data, s["profiles"], ("xaxis", "xaxis2"), strict=True):
        own = [c["mean"]["bookings"] for c in cells if c["profile"] == prof]
        assert (trace.zmin, trace.zmax) == (min(own), max(own))
        assert trace.showscale
        assert trace.colorbar.x >= fig.layout[axis].domain[1]
        bars.append(trace.colorbar.x)
    assert bars[0] < fig.layout.xaxis2.domain[0]  # the first bar is between the panels
    assert "each profile on its own colour scale" in fig.layout.title.text
    # a Latin hypercube's scatter likewise
    points = [{"point": i, "profile": c["profile"], "values": {"sdr_headcount": c["x"],
                                                                "mql_threshold": c["y"]},
               "replications": 1, "mean": c["mean"], "ci_low": {"bookings": None},
               "ci_high": {"bookings": None}} for i, c in enumerate(cells)]
    s.update(layout="scatter", cells=[], points=points)
    for trace, prof in zip(sweep_figures(s)["means"].data, s["profiles"], strict=True):
        own = [c["mean"]["bookings"] for c in cells if c["profile"] == prof]
        assert (trace.marker.cmin, trace.marker.cmax) == (min(own), max(own))
        assert trace.marker.showscale
