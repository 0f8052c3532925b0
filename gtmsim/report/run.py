"""The report of a `run`: where leads go, outcome distributions, each team's KPI beside the
system outcome, trust and queues over time, and the bookings each human mechanism costs.
One HTML file that opens offline: plotly's JavaScript is embedded once, and the numbers the
page shows are embedded as JSON (`<script id="gtmsim-summary">`, and the mechanism costs in
`<script id="gtmsim-mechanism-costs">`) so they can be checked against summary.json.
"""

from __future__ import annotations

import html
import json
import math
from typing import TYPE_CHECKING

import polars as pl

from gtmsim.outcomes import FATES

if TYPE_CHECKING:
    import plotly.graph_objects as go

LEAKS = [f for f in FATES if f.startswith("leaked_")]


def _mean(summary: dict, key: str) -> float:
    row = summary.get(key)
    return float(row["mean"]) if row else math.nan


def _flow(summary: dict):
    """Leads by fate (counted by event time in the window), leaks split by cause."""
    import plotly.graph_objects as go

    labels = ["leads created", "won", "lost", "disqualified", "nurtured", "leaked",
              *[c.removeprefix("leaked_").replace("_", " ") for c in LEAKS]]
    idx = {name: i for i, name in enumerate(labels)}
    src, dst, val = [], [], []
    for fate in ("won", "lost", "disqualified", "nurtured"):
        src.append(idx["leads created"])
        dst.append(idx[fate])
        val.append(_mean(summary, fate))
    src.append(idx["leads created"])
    dst.append(idx["leaked"])
    val.append(sum(_mean(summary, c) for c in LEAKS))
    for c in LEAKS:
        src.append(idx["leaked"])
        dst.append(idx[c.removeprefix("leaked_").replace("_", " ")])
        val.append(_mean(summary, c))
    fig = go.Figure(go.Sankey(node={"label": labels, "pad": 18},
                              link={"source": src, "target": dst, "value": val}))
    fig.update_layout(title="Where leads end up (mean per replication)", height=420)
    return fig


def _distributions(reps: pl.DataFrame):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    cols = [c for c in ("bookings", "win_rate", "cycle_days_median", "leaked")
            if c in reps.columns]
    fig = make_subplots(rows=1, cols=len(cols), subplot_titles=cols)
    for i, c in enumerate(cols, start=1):
        fig.add_trace(go.Histogram(x=reps[c].drop_nans().to_list(), name=c, showlegend=False),
                      row=1, col=i)
    fig.update_layout(title="Outcome distributions over replications", height=340)
    return fig


def _kpis(summary: dict, teams: list[str]):
    import plotly.graph_objects as go

    names, values, errors = [], [], []
    for team in teams:
        row = summary.get(f"kpi_attainment_{team}")
        if row:
            names.append(team)
            values.append(row["mean"])
            errors.append((row["ci_high"] - row["ci_low"]) / 2)
    fig = go.Figure(go.Bar(x=names, y=values, error_y={"type": "data", "array": errors}))
    fig.add_hline(y=1.0, line_dash="dash", annotation_text="target")
    fig.update_layout(title="Each team's KPI against its target (attainment, 95% CI)",
                      yaxis_tickformat=".0%", height=360)
    return fig


def _weekly(weekly: pl.DataFrame, prefix: str, title: str, percent: bool = False):
    import plotly.graph_objects as go

    fig = go.Figure()
    cols = [c for c in weekly.columns if c.startswith(prefix)]
    agg = weekly.group_by("week").agg(
        [pl.col(c).mean().alias(c) for c in cols]).sort("week")
    for c in cols:
        fig.add_trace(go.Scatter(x=agg["week"].to_list(), y=agg[c].to_list(), mode="lines",
                                 name=c.removeprefix(prefix)))
    fig.update_layout(title=title, xaxis_title="week after warm-up", height=340,
                      yaxis_tickformat=".0%" if percent else None)
    return fig


def _finite(value) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def mechanism_cost_rows(costs: pl.DataFrame) -> list[dict]:
    """The mechanism-cost table as JSON-ready rows (NaN as null), costliest first."""
    return [{k: (_finite(v) if isinstance(v, float) else v) for k, v in r.items()}
            for r in costs.to_dicts()]


def _mechanism_costs(costs: pl.DataFrame):
    """Horizontal bars: the outcome lost to each mechanism (off minus full), 95% CI."""
    import plotly.graph_objects as go

    rows = mechanism_cost_rows(costs)[::-1]  # plotly draws the first bar at the bottom
    outcome = rows[0]["outcome"] if rows else "bookings"
    cost = [r["cost"] for r in rows]
    plus = [r["ci_high"] - r["cost"] if r["ci_high"] is not None else 0.0 for r in rows]
    minus = [r["cost"] - r["ci_low"] if r["ci_low"] is not None else 0.0 for r in rows]
    fig = go.Figure(go.Bar(
        x=cost, y=[r["mechanism"].replace("_", " ") for r in rows], orientation="h",
        error_x={"type": "data", "symmetric": False, "array": plus, "arrayminus": minus},
        marker_color=["#c0392b" if c > 0 else "#7f8c8d" for c in cost],
        hovertemplate="%{y}: %{x:,.0f}<extra></extra>"))
    n = rows[0]["replications"] if rows else 0
    fig.add_vline(x=0.0, line_color="black", line_width=1)
    fig.update_layout(
        title=f"{outcome.capitalize().replace('_', ' ')} lost to each mechanism (with it off, "
              f"minus the full run; {n} paired replications, 95% CI)",
        xaxis_title=f"{outcome.replace('_', ' ')} per replication", height=120 + 28 * len(rows))
    return fig


def run_figures(replications: pl.DataFrame, weekly: pl.DataFrame, summary: pl.DataFrame,
                teams: list[str], mechanism_costs: pl.DataFrame | None = None,
                ) -> dict[str, go.Figure]:
    """The report's plotly figures by name, in the page's order (`run --png` writes them)."""
    rows = {r["outcome"]: r for r in summary.to_dicts()}
    figures = {"flow": _flow(rows), "distributions": _distributions(replications),
               "kpis": _kpis(rows, teams)}
    if mechanism_costs is not None and mechanism_costs.height:
        figures["mechanism_costs"] = _mechanism_costs(mechanism_costs)
    figures["trust"] = _weekly(weekly, "trust_",
                               "Trust per handoff over time (mean over replications)")
    figures["wip"] = _weekly(weekly, "wip_", "Leads in each team over time (mean)")
    figures["utilisation"] = _weekly(weekly, "util_", "Utilisation per team over time (mean)",
                                     percent=True)
    return figures


def run_report(replications: pl.DataFrame, weekly: pl.DataFrame, summary: pl.DataFrame,
               meta: dict, teams: list[str], mechanism_costs: pl.DataFrame | None = None,
               note: str | None = None) -> str:
    """The whole page as one HTML string; `mechanism_costs` (see gtmsim.mechanisms) adds the
    figure of what each human mechanism costs, `note` a line where it is missing."""
    rows = {r["outcome"]: r for r in summary.to_dicts()}
    figures = list(run_figures(replications, weekly, summary, teams, mechanism_costs).values())
    parts = [fig.to_html(full_html=False, include_plotlyjs=(i == 0))
             for i, fig in enumerate(figures)]
    if note:
        parts.insert(3, f"<p class='note'>{html.escape(note)}</p>")
    costs = json.dumps(mechanism_cost_rows(mechanism_costs)
                       if mechanism_costs is not None else None, allow_nan=False)
    headline = (f"Bookings {_mean(rows, 'bookings'):,.0f} per replication; win rate "
                f"{_mean(rows, 'win_rate'):.1%}; {_mean(rows, 'leaked'):,.0f} leads leaked")
    data = json.dumps({k: {m: (float(v[m]) if math.isfinite(v[m]) else None)
                           for m in ("mean", "ci_low", "ci_high")}
                       for k, v in rows.items()}, allow_nan=False)
    title = html.escape(f"gtmsim: {meta.get('config', '')}")
    sub = html.escape(f"{meta.get('replications')} replications, profile "
                      f"{meta.get('profile')!r}, engine {meta.get('engine')}, seed "
                      f"{meta.get('seed')}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
            "<style>body{font-family:sans-serif;margin:2em;max-width:1100px}</style></head>"
            f"<body><h1>{title}</h1><p>{sub}</p><p><b>{html.escape(headline)}</b></p>"
            + "".join(parts)
            + f"<script type='application/json' id='gtmsim-summary'>{data}</script>"
            f"<script type='application/json' id='gtmsim-mechanism-costs'>{costs}</script>"
            "</body></html>")
