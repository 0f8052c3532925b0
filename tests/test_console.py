"""What the terminal shows: the run's summary tables and the optimize text."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import tomli_w

from gtmsim.config import load_config, read_toml
from gtmsim.report.console import describe_config, pm, print_summary


def test_optimize_text_shows_a_missing_kpi_attainment_as_a_dash():
    """A team whose KPI has no target has no attainment (None in comparison.json): '-',
    as `run` prints it, not 'nan%'."""
    from gtmsim.report.console import optimize_text

    best = {"mean": 1e6, "mean_ci": [9e5, 1.1e6], "p10": 8e5, "cvar10": 7e5,
            "cvar10_ci": [6e5, 8e5], "cost": 2e6, "levers": {"sdr_headcount": 6},
            "kpi_attainment_sdr": 0.71, "kpi_attainment_cs": None,
            "kpi_attainment_ae": float("nan"), "leaked_decayed": 12.0}
    text = optimize_text({"objective": "cvar10", "outcome": "bookings", "trials": 6,
                         "scenarios": 2, "held_out_scenarios": 2, "best": best,
                         "what_breaks_it": {"target": 9e5, "words": "nothing found"}})
    assert "KPI attainment: sdr 71%, cs -, ae -" in text and "nan" not in text
    # the P10's interval, where the held-out scenarios give one (20 or more), as the report's
    assert "P10 800,000, CVaR10 700,000 [600,000, 800,000]" in text
    best["p10_ci"] = [7.5e5, 8.5e5]
    text = optimize_text({"objective": "cvar10", "outcome": "bookings", "trials": 6,
                         "scenarios": 2, "held_out_scenarios": 24, "best": best,
                         "what_breaks_it": {"target": 9e5, "words": "nothing found"}})
    assert "P10 800,000 [750,000, 850,000], CVaR10 700,000 [600,000, 800,000]" in text


def _printed(config, stats: dict, out, width: int = 200, spread: float = 0.0,
             designed: dict | None = None) -> str:
    """The run summary as printed for `config` in a terminal `width` columns wide, every
    outcome of `stats` at its value, its interval that share either side."""
    from io import StringIO

    from rich.console import Console

    summary = pl.DataFrame([{"outcome": k, "n": 10, "mean": v, "ci_low": (1 - spread) * v,
                             "ci_high": (1 + spread) * v, "sd": spread, "p10": v, "p50": v,
                             "p90": v}
                            for k, v in stats.items()])
    meta = {"replications": 10, "horizon_days": 182, "profile": "realistic",
            "engine": "numba", "seed": 0}
    buf = StringIO()
    print_summary(config, summary, meta, out, Console(file=buf, width=width),
                  designed=designed)
    return buf.getvalue()


def test_trust_table_says_what_crosses_each_handoff(tmp_path):
    """Qualified leads cross sdr_to_ae (the SDR pass rate), won deals cross ae_to_cs (the
    win rate, not the AE's pass rate into opportunity)."""
    config = load_config()
    stats = {"pass_rate_sdr_qualify": 0.413, "pass_rate_ae_close": 0.725, "win_rate": 0.247,
             "pass_rate_mql_review": 0.6}
    lines = {ln.split(":")[0].strip("│ "): ln
             for ln in _printed(config, stats, tmp_path).splitlines() if "->" in ln}
    assert "passed 41.3%" in lines["sdr_to_ae"]
    assert "won 24.7%" in lines["ae_to_cs"] and "72.5%" not in lines["ae_to_cs"]
    assert "passed 60.0%" in lines["mql_to_sdr"]



def test_the_kpi_table_sets_the_system_beside_its_design_with_ideal_behaviour(tmp_path):
    """The KPI table's caption gave the system's bookings alone. Given the design's run with
    every mechanism off, it says what share of that design's bookings the run reached, and
    each team's attainment there: marketing meets its target either way while the system
    books 40% of its design."""
    config = load_config()
    stats = {"bookings": 4_000_000.0, "kpi_attainment_marketing": 1.04}
    designed = {"replications": 64, "engine": "numba", "summary": [
        {"outcome": "bookings", "mean": 10_000_000.0},
        {"outcome": "kpi_attainment_marketing", "mean": 0.96},
        {"outcome": "kpi_attainment_ae", "mean": 2.9}],
        "bookings_share": {"mean": 0.41, "ci_low": 0.38, "ci_high": 0.44, "n": 64}}
    text = " ".join(_printed(config, stats, tmp_path, width=400, designed=designed).split())
    # the paired share, not the run's bookings over the design's (40%)
    assert ("41.0% ± 3.0% of the bookings 10,000,000 its design makes with ideal behaviour "
            "(every human mechanism off, paired on the run's first 64 replications on numba), "
            "where the KPIs are attained marketing 96.0%, ae 290.0%") in text
    # a SimPy run's costs, and so its share, come from the run repeated on numba
    designed["bookings_share"]["repeated"] = True
    text = " ".join(_printed(config, stats, tmp_path, width=400, designed=designed).split())
    assert "paired on the run's first 64 replications repeated on numba)" in text
    assert "its design makes" not in _printed(config, stats, tmp_path, width=400)


def test_summary_shows_a_cut_interval_as_its_ends():
    """A share's interval cut to [0, 1] is not mean +- a half-width: the summary gives its
    ends; a whole interval keeps the +- form."""
    cut = pm({"mean": 0.9, "ci_low": 0.674, "ci_high": 1.0, "n": 10}, "rate")
    assert "±" not in cut and "to" in cut and "100" in cut
    whole = pm({"mean": 0.5, "ci_low": 0.4, "ci_high": 0.6, "n": 10}, "rate")
    assert "±" in whole



def test_the_kpi_table_fits_80_columns_with_whole_headers(tmp_path):
    """In an 80-column terminal the KPI table cut its headers ('attainme…', 'utilisa…') and
    KPI names; the long names wrap now and every header is whole."""
    config = load_config()
    stats = {f"kpi_attainment_{t}": 0.926 for t in config.teams}
    stats |= {f"util_{t}": 0.435 for t in config.teams} | {"bookings": 932_674.0}
    for t, team in config.teams.items():  # a run's figures (retention is a rate)
        rate = team.kpi is not None and team.kpi.metric == "retained"
        stats[f"kpi_{t}"], stats[f"kpi_target_{t}"] = ((0.9, 0.9) if rate
                                                         else (932_674.0, 1_648_352.0))
    stats |= {f"queue_{t}": 17.3 for t in config.teams}
    lines = _printed(config, stats, tmp_path, width=80, spread=0.1).splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("Each team's KPI"))
    table = lines[start:start + 14]
    assert all(len(ln) <= 80 for ln in table)
    header = next(ln for ln in table if ln.startswith("┃ team"))
    for col in ("paid on", "KPI", "target", "attainment", "util.", "queue"):
        assert col in header
    assert "…" not in "\n".join(table)


def test_one_replication_is_said_in_the_singular(tmp_path):
    """The run's caption and `validate`'s paragraph said "1 replications"."""
    from io import StringIO

    from rich.console import Console

    config = load_config(overrides=["run.replications=1"])
    assert "Run: 1 replication of" in describe_config(config)
    summary = pl.DataFrame([{"outcome": "bookings", "n": 1, "mean": 1.0, "ci_low": None,
                             "ci_high": None, "sd": None, "p10": 1.0, "p50": 1.0, "p90": 1.0}])
    meta = {"replications": 1, "horizon_days": 30, "profile": "realistic", "engine": "numba",
            "seed": 1}
    buf = StringIO()
    print_summary(config, summary, meta, tmp_path, Console(file=buf, width=200))
    assert "1 replication of 30 days" in buf.getvalue()
    meta["horizon_days"] = 1
    buf = StringIO()
    print_summary(config, summary, meta, tmp_path, Console(file=buf, width=200))
    assert "1 replication of 1 day," in buf.getvalue()


def test_the_config_paragraph_gives_the_configs_description():
    """A config's `description` was accepted and shown nowhere; `validate` gives it after the
    name (a full stop added where it has none)."""
    text = describe_config(load_config(overrides=['description="Two SDR pods"']))
    assert text.startswith(f"{load_config().name}. Two SDR pods. Teams (headcount): ")
    assert "Product signups dominate; a sales-assist team works product-qualified leads. " \
        "Teams" in describe_config(
        load_config(Path(__file__).resolve().parents[1] / "configs" / "product_led.toml"))
    assert ". Teams (headcount): " in describe_config(load_config(overrides=['description=""']))


def test_the_config_paragraph_gives_slas_and_what_each_lever_may_set():
    """A handoff's `sla_hours` rules the leads that cross it, but `validate` did not show it,
    nor a stage's SLA (which a handoff without its own keeps), nor what a lever sets and
    within which bounds: the paragraph listed the levers' names only."""
    from gtmsim.spec import compile_spec

    config = load_config(overrides=["handoffs.sdr_to_ae.sla_hours=6.5"])
    for text in (describe_config(config), describe_config(config, compile_spec(config))):
        assert "sdr_qualify -> ae_close (crm_drop, SLA 6.5 working hours)" in text, text
        assert "mql_review -> sdr_qualify (crm_drop), " in text, text
        assert "ae_close [close, ae, SLA 16 working hours]" in text, text
        assert "mql_review [review, marketing]" in text, text
        assert "sdr_headcount (teams.sdr.headcount: 2 to 12)" in text, text
        assert "mql_threshold (stages.mql_review.threshold: 0.1 to 0.6)" in text, text
        assert "sdr_to_ae_protocol (handoffs.sdr_to_ae.protocol: crm_drop, warm)" in text
        assert "feedback (design.feedback.enabled: false, true)" in text, text


def test_the_config_paragraph_names_an_uncertain_market():
    """`validate` says which market values scenarios draw: a channel's volume and a close
    stage's win scale, each with its range (the win scale's was left out)."""
    config = load_config(overrides=[
        "channels.inbound.rate_per_week={value=150, range=[100, 200]}",
        "stages.ae_close.win_scale={value=0.55, range=[0.4, 0.7]}"])
    text = describe_config(config)
    assert "inbound (150/week, 100-200 over scenarios -> mql_review)" in text
    assert ("ae_close [close, ae, SLA 16 working hours, win scale 0.55, 0.4-0.7 over "
            "scenarios]") in text
    assert "mql_review [review, marketing]" in text


def test_trust_table_lists_a_route_between_teams_not_declared_as_a_handoff(tmp_path):
    """A route between teams with no [handoffs] entry is a CRM-drop handoff with a trust of
    its own (trust_<from>-><to> in the results and the report's trust figure); the trust
    table left it out, and with no handoff declared printed no table at all."""
    config = load_config(None, overrides=["handoffs={}", "levers={}"])
    stats = {"trust_mql_review->sdr_qualify": 0.81, "trust_sdr_qualify->ae_close": 0.62,
             "trust_ae_close->cs_onboard": 0.7, "pass_rate_sdr_qualify": 0.413}
    text = _printed(config, stats, tmp_path)
    assert "Trust per handoff" in text
    row = next(ln for ln in text.splitlines() if "sdr_qualify -> ae_close" in ln)
    assert "not declared" in row and "crm_drop" in row and "0.62" in row
    assert "passed 41.3%" in row
    assert "mql_review -> sdr_qualify" in text and "ae_close -> cs_onboard" in text


def test_names_are_printed_as_text_not_rich_markup(tmp_path):
    """A config, team or handoff named with brackets, or an output folder 'x[v2]', is printed
    as named: rich read '[b]' as markup, so a team 's[b]r' showed as 'sr' and 'x[v2]' as
    'x'."""
    from importlib.resources import files

    text = (files("gtmsim.config") / "b2b_saas.toml").read_text()
    text = (text.replace("[teams.sdr]", '[teams."s[b]r"]').replace('team = "sdr"',
                                                                   'team = "s[b]r"')
            .replace("[handoffs.sdr_to_ae]", '[handoffs."h[v1]"]'))
    path = tmp_path / "c.toml"
    path.write_text(text)
    config = load_config(path, overrides=['name="a[b]c"', "levers={}"])
    printed = _printed(config, {"util_s[b]r": 0.5}, tmp_path / "x[v2]")
    assert "System outcome: a[b]c" in printed
    assert "│ s[b]r " in printed and "h[v1]: " in printed
    assert "Results in " + str(tmp_path / "x[v2]") in printed.replace("\n", "")


def test_an_outcome_defined_in_no_replication_keeps_its_row(tmp_path):
    """No deal decided in any replication: the win rate and the median cycle are defined in
    none, and their rows vanished from the system table (while the KPI table's caption said
    'win rate -'); they read '- [0 of N]', as one defined in some reads '[n of N]'."""
    config = load_config()
    text = _printed(config, {"bookings": 0.0, "won": 0.0, "leaked": 4.7}, tmp_path)
    rows = {ln.split("│")[1].strip(): ln for ln in text.splitlines() if ln.count("│") > 3}
    assert "- [0 of 10]" in rows["Win rate"]
    assert "- [0 of 10]" in rows["Sales cycle, median days"]
    assert pm(None, "rate") == "-"  # the trust table's: no count of replications


def test_renewals_and_churn_are_system_rows_where_a_stage_renews(tmp_path):
    """Churn, a fate of the model, showed only as the CS team's retention KPI: the system
    table has customers renewed and churned, where a retain stage renews them, and not in a
    model with none."""
    config = load_config()
    text = _printed(config, {"bookings": 1.0, "retained": 137.0, "churned": 13.0}, tmp_path)
    rows = {ln.split("│")[1].strip(): ln for ln in text.splitlines() if ln.count("│") > 3}
    assert "137" in rows["Customers renewed"] and "13" in rows["Customers churned at renewal"]
    raw = read_toml(None)
    raw["stages"]["ae_close"]["routes"]["won"] = "customer"
    del raw["stages"]["cs_onboard"], raw["handoffs"]["ae_to_cs"]
    del raw["teams"]["cs"]["kpi"]
    no_cs = tmp_path / "no_cs.toml"
    no_cs.write_text(tomli_w.dumps(raw))
    text = _printed(load_config(no_cs), {"bookings": 1.0, "retained": 5.0}, tmp_path)
    assert "Customers renewed" not in text and "churned" not in text


def test_a_narrow_terminal_cuts_no_number_and_no_column(tmp_path):
    """At COLUMNS=40 the KPI table's numbers read '93…' and '1,648…', its util. and queue
    columns were cropped away, and the caption lost the win rate; each table is now printed
    no narrower than its words (the terminal wraps a longer line), so every figure is whole."""
    config = load_config()
    stats = {"bookings": 3_701_663.0, "win_rate": 0.249, "leaked": 845.0,
             "leaked_forgotten": 193.0}
    for t in config.teams:
        stats |= {f"kpi_{t}": 932_674.0, f"kpi_target_{t}": 1_648_352.0,
                  f"kpi_attainment_{t}": 0.926, f"util_{t}": 0.435, f"queue_{t}": 17.3}
    text = _printed(config, stats, tmp_path, width=40, spread=0.1)
    assert "…" not in text
    for figure in ("3,701,663", "932,674", "1,648,352", "43.5%", "17.3", "forgotten",
                   "win rate 24.9%, 845 leads leaked"):
        assert figure in text, figure
    header = next(ln for ln in text.splitlines() if ln.startswith("┃ team"))
    for col in ("paid on", "KPI", "target", "attainment", "util.", "queue"):
        assert col in header


def test_the_caption_explains_a_cut_interval(tmp_path):
    """A count's interval cut at 0 is printed '0.0 (0.0 to 0.1)', a form the caption, which
    explained only '±' and '[n of N]', did not."""
    from io import StringIO

    from rich.console import Console

    summary = pl.DataFrame([{"outcome": "leaked_turnover", "n": 10, "mean": 0.04,
                             "ci_low": 0.0, "ci_high": 0.1, "sd": 0.1, "p10": 0.0, "p50": 0.0,
                             "p90": 0.0}])
    meta = {"replications": 10, "horizon_days": 30, "profile": "realistic", "engine": "numba",
            "seed": 1}
    buf = StringIO()
    print_summary(load_config(), summary, meta, tmp_path, Console(file=buf, width=400))
    text = " ".join(buf.getvalue().split())
    assert "(0.0 to 0.1)" in text
    assert "(low to high) the CI where it was cut to the values an outcome can take" in text
