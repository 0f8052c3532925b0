"""The report of a `compare`: designs side by side under each profile, from its summary.

Everything shown comes from the comparison's summary dict (the one written to summary.json),
which is also embedded in the page as JSON (`<script id="gtmsim-summary">`). One HTML file
that opens offline: plotly's JavaScript is embedded once. The same numbers as tables for the
terminal and comparison.txt: `comparison_tables`.
"""

from __future__ import annotations

import html
import json
import re
from typing import TYPE_CHECKING, Any

from gtmsim.optimize.compare import TAIL_MIN_SCENARIOS, points, signed
from gtmsim.optimize.designs import is_setting
from gtmsim.outcomes import in_percent
from gtmsim.report.console import fmt
from gtmsim.report.export import counted, plain, script_json
from gtmsim.report.plotlyjs import figures_html
from gtmsim.report.run import error_bars, percent_ticks

if TYPE_CHECKING:
    import plotly.graph_objects as go

STAT_NAMES = {"mean": "mean", "p10": "P10", "cvar10": "CVaR10 (worst 10%)"}


def _num(v: Any, pct: bool = False) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool) or isinstance(v, str):
        return str(v)
    if pct:
        return f"{v:.0%}"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.3g}"


def _short(v: float | None, sign: bool = False, scale: float | None = None) -> str:
    """A number in a few characters: 1.23M, 49.6k, 312, 0.25; in the unit that suits
    `scale` when given (an interval's ends in the unit of its largest number)."""
    if v is None:
        return "-"
    if v == 0:
        return "0"
    plus = "+" if sign and v > 0 else ""
    a = abs(v) if scale is None else scale
    if a >= 1e4:
        # the unit whose rounded figure stays under 1,000 (999,999 is 1.00M, not 1000.0k)
        for unit, suffix, digits in ((1e3, "k", 1), (1e6, "M", 2), (1e9, "B", 2), (1e12, "T", 2)):
            if round(a / unit, digits) < 1000 or suffix == "T":
                return f"{plus}{v / unit:.{digits}f}{suffix}"
    if a >= 100 or v == 0:
        return f"{plus}{v:,.0f}"
    return f"{plus}{v:.3g}"


def outcome_in_percent(summary: dict) -> bool:
    """Whether the compared outcome is written in % as `run` writes it (a share: a win rate,
    a retention KPI; or a KPI attainment), its differences in percentage points; a
    summary.json from before it said so: by the outcome's name, or its older
    `outcome_is_share` (a retention KPI, whose name alone does not say)."""
    if "outcome_in_percent" in summary:
        return summary["outcome_in_percent"]
    return bool(summary.get("outcome_is_share")) or in_percent(summary["outcome"])


def _ci(v: float | None, ci: list | None, short: bool = False, percent: bool = False) -> str:
    if v is None:
        return "-"
    if percent:  # in % as run writes a rate: 25.2% [23.2%, 27.1%], not 0.252 [0.232, 0.271]
        if not ci or ci[0] is None:
            return fmt(v, "rate")
        return f"{fmt(v, 'rate')} [{fmt(ci[0], 'rate')}, {fmt(ci[1], 'rate')}]"
    if not ci or ci[0] is None:
        return _short(v) if short else _num(v)
    if short:
        scale = max(abs(x) for x in (v, *ci) if x is not None)
        return f"{_short(v, scale=scale)} [{_short(ci[0], scale=scale)}, " \
               f"{_short(ci[1], scale=scale)}]"
    return f"{_num(v)} [{_num(ci[0])}, {_num(ci[1])}]"


def _diff(d: dict | None, short: bool = False, percent: bool = False) -> str:
    if not d:
        return "baseline"
    if d.get("diff") is None:
        return "-"
    if percent:  # a difference of shares in points: -2.44 pp [-5.94, +1.06]
        text = points(d["diff"])
        return text if d["ci_low"] is None else (f"{text} [{signed(100 * d['ci_low'])}, "
                                                 f"{signed(100 * d['ci_high'])}]")
    if short:
        ci = (d["ci_low"], d["ci_high"])
        if ci[0] is None:
            return _short(d["diff"], True)
        scale = max(abs(x) for x in (d["diff"], *ci))
        return (f"{_short(d['diff'], True, scale)} [{_short(ci[0], True, scale)}, "
                f"{_short(ci[1], True, scale)}]")
    text = signed(d["diff"])  # a rate's difference keeps its figures, not "+0"
    return text if d["ci_low"] is None else (f"{text} [{signed(d['ci_low'])}, "
                                             f"{signed(d['ci_high'])}]")


def _teams(summary: dict) -> list[str]:
    teams: dict[str, None] = {}
    for prof in summary["profiles"].values():
        for d in prof["designs"].values():
            teams.update(dict.fromkeys(d["kpi_attainment"]))
    return list(teams)


def _levers(summary: dict) -> tuple[list[str], set[str]]:
    """All levers of all designs, and those whose values differ between designs."""
    names: dict[str, None] = {}
    for d in summary["designs"]:
        names.update(dict.fromkeys(d["levers"]))
    differ = {n for n in names
              if len({json.dumps(d["levers"].get(n)) for d in summary["designs"]}) > 1}
    return list(names), differ


def table_rows(summary: dict, profile: str, short: bool = False
               ) -> tuple[list[str], list[list[str]]]:
    """The per-profile table: header and one row of strings per design (the first six
    columns: the outcome; then KPI attainment per team, leakage and cost)."""
    out, base = summary["outcome"], summary["baseline"]
    teams = _teams(summary)
    header = ["design", f"mean {out} [95% CI]", "P10 [95% CI]", "CVaR10 [95% CI]",
              f"mean - {base} [95% CI]", f"CVaR10 - {base} [95% CI]",
              *[f"KPI {t}" for t in teams], "leaked", "annual cost"]
    entry = summary["profiles"][profile]
    percent = outcome_in_percent(summary)
    rows = []
    for name, d in entry["designs"].items():
        diff = entry["differences"].get(name, {})
        number = _short if short else _num
        rows.append([name, _ci(d["mean"], d["mean_ci"], short, percent),
                     _ci(d["p10"], d.get("p10_ci"), short, percent),
                     _ci(d["cvar10"], d["cvar10_ci"], short, percent),
                     _diff(diff.get("mean"), short, percent),
                     _diff(diff.get("cvar10"), short, percent),
                     *[_num(d["kpi_attainment"].get(t), pct=True) for t in teams],
                     number(d["leaked"]), number(d["cost"])])
    return header, rows


def comparison_tables(summary: dict) -> list:
    """Rich renderables: the designs and the levers that differ, then per profile the outcome
    table, the KPI table and the verdict. Names are text, never markup: a design 'b[v2]'
    is not cut to 'b'."""
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    out: list = []
    names, differ = _levers(summary)
    shown = [n for n in names if n in differ]
    files = ", ".join(f"{d['name']} = {d['file']}" for d in summary["designs"])
    out.append(Text(f"Designs (the first is the baseline): {files}", style="bold"))
    levers = Table()
    levers.add_column("lever that differs" if shown else "levers")
    for d in summary["designs"]:
        levers.add_column(escape(d["name"]), justify="right")
    for n in shown:
        levers.add_row(*map(escape, [n, *[_num(d["levers"].get(n))
                                          for d in summary["designs"]]]))
    if not shown:
        levers.add_row("all equal", *["" for _ in summary["designs"]])
    out.append(levers)
    rows = other_difference_rows(summary, limit=12)
    if rows:
        other = Table(title="other settings that differ from the baseline",
                      title_justify="left")
        for i, col in enumerate(["design", "setting", summary["baseline"], "design's"]):
            other.add_column(escape(col), justify="left" if i < 2 else "right")
        for r in rows:
            other.add_row(*map(escape, r))
        out.append(other)
    for profile, entry in summary["profiles"].items():
        header, rows = table_rows(summary, profile, short=True)
        out.append(Text(f"Profile {profile!r}: {summary['outcome']} over "
                        f"{counted(entry['scenarios'], 'scenarios')} x "
                        f"{counted(summary['replications'], 'replications')}, paired by "
                        f"scenario ({CI_NOTE})", style="bold"))
        t = Table()
        for i, col in enumerate(header[:6]):
            t.add_column(escape(col), justify="left" if i == 0 else "right")
        for r in rows:
            t.add_row(*map(escape, r[:6]))
        out.append(t)
        k = Table(title="each team's KPI attainment and leads leaked (means), annual headcount "
                        "cost",
                  title_justify="left")
        for i, col in enumerate([header[0], *header[6:]]):
            k.add_column(escape(col), justify="left" if i == 0 else "right")
        for r in rows:
            k.add_row(*map(escape, [r[0], *r[6:]]))
        out.append(k)
        out.append(Text(entry["verdict"]))
    return out


CI_NOTE = (f"95% CIs: a t-interval for the mean; a bootstrap over scenarios for the worst 10% "
           f"from {TAIL_MIN_SCENARIOS} scenarios, none below")


def other_difference_rows(summary: dict, limit: int | None = None) -> list[list[str]]:
    """Per design, the settings beside its levers that differ from the baseline (a team's
    KPI, a removed channel...): design, setting, the baseline's value, the design's; at most
    `limit` per design, then a line saying how many more summary.json lists."""
    rows = []
    for d in summary["designs"][1:]:
        diffs = d.get("other_differences") or []
        for x in diffs[:limit]:
            rows.append([d["name"], x["path"], _setting(x["baseline"]), _setting(x["design"])])
        if limit is not None and len(diffs) > limit:
            rows.append([d["name"], f"... and {len(diffs) - limit} more (summary.json)", "",
                         ""])
    return rows


def _setting(value) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, float):
        return _num(value)
    if isinstance(value, dict) and not is_setting(value):
        return "(a table)"  # a whole channel, team, stage... that the other has not
    return json.dumps(value) if isinstance(value, (dict, list)) else str(value)


def comparison_text(summary: dict, width: int = 160) -> str:
    """The tables as plain text (comparison.txt), each as wide as it needs past `width`
    (print_whole, as the terminal prints them): squeezed, nine designs' names were all cut
    to 'headcount_var…'."""
    import io

    from rich.console import Console

    from gtmsim.report.console import print_whole

    buf = io.StringIO()
    console = Console(file=buf, width=width, color_system=None, force_terminal=False)
    for t in comparison_tables(summary):
        print_whole(console, t)
    return buf.getvalue()


# --------------------------------------------------------------------------- the page


def _figure(summary: dict, profile: str):
    import plotly.graph_objects as go
    from plotly.colors import qualitative
    from plotly.subplots import make_subplots

    entry = summary["profiles"][profile]
    out, base = summary["outcome"], summary["baseline"]
    fig = make_subplots(rows=1, cols=2, column_widths=[0.55, 0.45], subplot_titles=(
        plain(f"{out} per scenario (mean of {counted(summary['replications'], 'replications')})"
              if summary["replications"] != 1 else f"{out} per scenario (one replication)"),
        plain(f"difference from {base}, paired by scenario (95% CI)")))
    colors = qualitative.Plotly
    percent = outcome_in_percent(summary)
    # a share's differences in percentage points, as the tables and the verdict give them
    scale = 100.0 if percent else 1.0
    for i, (name, d) in enumerate(entry["designs"].items()):
        color = colors[i % len(colors)]
        fig.add_trace(go.Box(y=d["scenario_values"], name=plain(name), boxpoints="all",
                             jitter=0.3, pointpos=0, marker_color=color, boxmean=True,
                             showlegend=False),
                      row=1, col=1)
        diff = entry["differences"].get(name)
        if not diff:
            continue
        stats = list(STAT_NAMES)
        rows = [{k: None if v is None else scale * v for k, v in diff[s].items()}
                for s in stats]
        # each design at its own place in a statistic's category (scattermode "group"):
        # at its middle, three designs' points and bars hid each other
        fig.add_trace(go.Scatter(
            x=[STAT_NAMES[s] for s in stats], y=[r["diff"] for r in rows], mode="markers",
            name=plain(name), marker={"size": 11, "color": color}, offsetgroup=str(i),
            error_y=error_bars(rows)), row=1, col=2)
    fig.add_hline(y=0, line_dash="dash", row=1, col=2)
    if percent:
        values = [v for d in entry["designs"].values() for v in d["scenario_values"]]
        fig.update_yaxes(tickformat=percent_ticks(values), row=1, col=1)
        fig.update_yaxes(ticksuffix=" pp", row=1, col=2)
    fig.update_layout(title=plain(f"Profile {profile!r}"), height=420, boxmode="group",
                      scattermode="group", legend_title_text="design")
    return fig


def _html_table(header: list[str], rows: list[list[str]], marked: set[int] = ()) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr" + (" class='differs'" if i in marked else "") + ">"
        + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>"
        for i, r in enumerate(rows))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def compare_figures(summary: dict) -> dict[str, go.Figure]:
    """The report's plotly figures by name, one per profile in the page's order
    (`compare --png` writes them): profile_NAME, the name made safe as a file name."""
    figures: dict[str, go.Figure] = {}
    for profile in summary["profiles"]:
        name = "profile_" + (re.sub(r"[^A-Za-z0-9_.-]+", "_", profile).strip("._") or "_")
        while name in figures:  # two profiles whose names differ only in odd characters
            name += "_"
        figures[name] = _figure(summary, profile)
    return figures


def compare_report(summary: dict, figures: dict[str, go.Figure] | None = None) -> str:
    """The whole page as one HTML string (`figures`: those of compare_figures, drawn here
    when not given)."""
    profiles = list(summary["profiles"])
    drawn = list((figures if figures is not None else compare_figures(summary)).values())
    names, differ = _levers(summary)
    lever_rows = [[n, *[_num(d["levers"].get(n)) for d in summary["designs"]]] for n in names]
    lever_table = _html_table(["lever", *[d["name"] for d in summary["designs"]]], lever_rows,
                              {i for i, n in enumerate(names) if n in differ})
    other = other_difference_rows(summary)
    if other:
        lever_table += ("<p>Other settings that differ from the baseline:</p>" + _html_table(
            ["design", "setting", summary["baseline"], "design's"], other))
    sections = []
    for profile, fig in zip(profiles, figures_html(drawn[:len(profiles)]), strict=True):
        header, rows = table_rows(summary, profile)
        verdict = summary["profiles"][profile]["verdict"]
        sections.append(f"<h2>Profile {html.escape(profile)}</h2>"
                        f"<p class='verdict'><b>{html.escape(verdict)}</b></p>{fig}"
                        f"<h3>Outcome, KPI attainment and leakage</h3>"
                        f"{_html_table(header, rows)}")
    files = ", ".join(f"{d['name']} = {d['file']}" for d in summary["designs"])
    sub = (f"{summary['outcome']} of {len(summary['designs'])} designs under "
           f"{', '.join(profiles)}; {counted(summary['replications'], 'replications')} per "
           "scenario, "
           f"engine {summary['engine']}, seed {summary['seed']}. Every design meets the same "
           "scenarios and seeds (common random numbers), so differences are paired by scenario; "
           f"the baseline is {summary['baseline']}. {CI_NOTE}.")
    data = script_json(summary)
    title = html.escape(f"gtmsim compare: {' vs '.join(d['name'] for d in summary['designs'])}")
    style = ("body{font-family:sans-serif;margin:2em;max-width:1200px}"
             "table{border-collapse:collapse;margin:1em 0}"
             "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
             "td:first-child,th:first-child{text-align:left}"
             "tr.differs td{background:#fff6d5}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
            f"<style>{style}</style></head><body><h1>{title}</h1>"
            f"<p>{html.escape(sub)}</p><p>{html.escape(files)}</p>"
            f"<h2>Designs</h2><p>Levers of each design (highlighted: they differ).</p>"
            f"{lever_table}" + "".join(sections)
            + f"<script type='application/json' id='gtmsim-summary'>{data}</script>"
            "</body></html>")
