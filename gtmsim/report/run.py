"""The report of a `run`: where leads go, outcome distributions, each team's KPI beside the
system outcome, trust and queues over time, and the bookings each human mechanism costs.
One HTML file that opens offline: plotly's JavaScript is embedded once, and the numbers the
page shows are embedded as JSON (`<script id="gtmsim-summary">`, and the mechanism costs in
`<script id="gtmsim-mechanism-costs">`) so they can be checked against summary.json.
"""

from __future__ import annotations

import html
import math
import textwrap
from typing import TYPE_CHECKING

import polars as pl

from gtmsim.outcomes import FATES
from gtmsim.report.console import fmt
from gtmsim.report.export import counted, days, plain, script_json
from gtmsim.report.plotlyjs import figures_html

if TYPE_CHECKING:
    import plotly.graph_objects as go

LEAKS = [f for f in FATES if f.startswith("leaked_")]


def _mean(summary: dict, key: str) -> float:
    row = summary.get(key)
    return float(row["mean"]) if row else math.nan


FLOW_TITLE = "Where leads end up: from each channel through the stages (mean per replication)"
FLOW_CAPTION = "<br>".join(textwrap.wrap(  # lines as wide as the figure
    "Means per replication of events counted in the measured window. Each fate flows from "
    "the stages that sent leads to it, as counted; leaks flow from the stage where they "
    "happened to 'leaked', then split by cause; leads still at a team when the run ends (no "
    "fate yet) flow to 'open at the end'. Won deals handed to a retain stage flow on to it, "
    "and from it to retained or churned at its renewal. Leads a stage routes on to a stage "
    "(recycled, rejected, unreached or lost, counted as each is handed over) flow on to it, "
    "or back to an earlier one, from 'sent back to' at the right to 'back from' at the left. "
    "Leads that enter a stage again come in at the left too: 'back from nurture', and 'back "
    "from rework' to the stage whose error a later stage caught (which sends them to 'sent "
    "back for rework' at the right). The links need not balance where leads are in flight "
    "at the window's edges (with a buyer, say).",
    160))
STAGE_FATES = ("won", "lost", "disqualified", "nurtured")


def flow_routing(config) -> dict:
    """What the flow diagram needs of a config: each channel's entry stage, and each stage's
    kind, team and routes (plain data, so a report can be drawn without the config object)."""
    return {"channels": {name: ch.entry for name, ch in config.channels.items()},
            "stages": {name: {"kind": st.kind, "team": st.team,
                              "routes": st.routes.model_dump()}
                       for name, st in config.stages.items()}}


def flow_links(summary: dict, routing: dict) -> list[tuple[str, str, float, str]]:
    """The flow diagram's links as (source, target, mean per replication, how it is known).

    Nodes are "channel: NAME", "stage: NAME" and the fates ("won", "lost", "disqualified",
    "nurtured", "retained", "churned", "leaked", "leaked: CAUSE"), and OPEN (leads still at a
    team at the end, from the team's stages: `open_<team>`). Channel -> entry stage is
    `leads_<channel>`; stage -> the stage its qualified leads go to is `qualified_<stage>`;
    stage -> fate is `<fate>_at_<stage>`, the leads whose fate the stage decided. Won deals a
    close stage hands to a retain stage go on from "won" to it, and the retain stage sends
    its renewals to "retained" and "churned" (`_after_won`). Leads routed on to a stage
    recycled, rejected, unreached or lost go to it (`_routed_on`); those routed back to an
    earlier stage and leads that enter a stage again, back from nurture or sent back for
    rework (`_coming_back`), come into it from a "back from" node at the left.
    """
    stages = routing["stages"]
    links: list[tuple[str, str, float, str]] = []
    for channel, entry in routing["channels"].items():
        links.append((f"channel: {channel}", f"stage: {entry}",
                      _mean(summary, f"leads_{channel}"), "leads created in the channel"))
    for name, st in stages.items():
        if st["kind"] in ("review", "contact") and st["routes"].get("qualified") in stages:
            links.append((f"stage: {name}", f"stage: {st['routes']['qualified']}",
                          _mean(summary, f"qualified_{name}"), "qualified at the stage"))
        for fate in STAGE_FATES:
            links.append((f"stage: {name}", fate, _mean(summary, f"{fate}_at_{name}"),
                          f"{fate} at the stage"))
    links += _routed_on(summary, stages)
    links += _coming_back(summary, stages)
    links += _after_won(summary, stages)
    for name in stages:
        links.append((f"stage: {name}", "leaked", _mean(summary, f"leaks_at_{name}"),
                      "leaked at the stage (every cause)"))
    leaks = [(c, _mean(summary, c)) for c in LEAKS]
    for cause, value in leaks:
        links.append(("leaked", "leaked: " + cause.removeprefix("leaked_").replace("_", " "),
                      value, "leaked, by cause (every stage)"))
    teams: dict[str, list[str]] = {}
    for name, st in stages.items():
        if st.get("team"):
            teams.setdefault(st["team"], []).append(name)
    for team, held in teams.items():  # a team's open leads, from its stages
        how = (f"still at team {team} when the run ends (no fate yet)" if len(held) == 1
               else f"estimated: the open leads of team {team} split evenly between its "
                    f"{len(held)} stages")
        for name in held:
            links.append((f"stage: {name}", OPEN, _mean(summary, f"open_{team}") / len(held),
                          how))
    return [link for link in links if math.isfinite(link[2]) and link[2] > 0]


SENT_BACK = "sent back to "  # a sink at the right: routed on to an earlier stage
BACK_FROM = "back from "  # its twin at the left, feeding that stage (a Sankey draws no loops)
# the routes drawn from their routed_<outcome>_<stage> counts, as a link's hover names them
ROUTED_ON = {"recycled": "recycled", "rejected": "rejected",
             "unreached": "unreached (attempts used up)", "lost": "lost (the buyer said no)"}


def _routed_on(summary: dict, stages: dict) -> list[tuple]:
    """Leads a stage routes on to a stage recycled, rejected, unreached or lost:
    `routed_<outcome>_<stage>`, counted as each is handed to that stage (a route to a fate
    is that fate's link). One link per stage and destination, its routes summed. To a stage
    the drawn stage links lead on from (an earlier one, or its own) the flow would loop: the
    stage sends them to a node of their own at the right, and a twin at the left feeds them
    to the stage they go back to."""
    onward: dict[str, set[str]] = {}
    for name, st in stages.items():
        if st["kind"] in ("review", "contact") and st["routes"].get("qualified") in stages:
            onward.setdefault(name, set()).add(st["routes"]["qualified"])

    def reaches(a: str, b: str) -> bool:
        seen, todo = set(), [a]
        while todo:
            n = todo.pop()
            if n == b:
                return True
            if n not in seen:
                seen.add(n)
                todo += onward.get(n, ())
        return False

    links = []
    for name, st in stages.items():
        routed: dict[str, list[tuple[str, float]]] = {}
        for outcome in ROUTED_ON:
            to = st["routes"].get(outcome)
            value = _mean(summary, f"routed_{outcome}_{name}")
            if to in stages and math.isfinite(value) and value > 0:
                routed.setdefault(to, []).append((outcome, value))
        for to, parts in routed.items():
            value = sum(v for _, v in parts)
            how = (f"routed from {name} to {to}: "
                   + ", ".join(f"{ROUTED_ON[o]} {v:,.1f}" for o, v in parts))
            if reaches(to, name):
                links.append((f"stage: {name}", f"{SENT_BACK}{to} (from {name})", value,
                              how + f"; drawn again at the left, where {to} takes them"))
                links.append((f"{BACK_FROM}{name} (sent back to {to})", f"stage: {to}", value,
                              how + f"; drawn at the right of {name} as well"))
            else:
                onward.setdefault(name, set()).add(to)
                links.append((f"stage: {name}", f"stage: {to}", value, how))
    return links


NURTURE_BACK = f"{BACK_FROM}nurture (nurtured leads that came back)"
REWORK_BACK = f"{BACK_FROM}rework (errors caught at a later stage)"
REWORK_SENT = "sent back for rework (errors caught at {})"


def _coming_back(summary: dict, stages: dict) -> list[tuple]:
    """Leads that enter a stage again, each from a node at the left as the leads routed back
    to an earlier stage are (a Sankey draws no loop): nurtured leads that came back,
    `nurture_returns_<stage>` (they went to "nurtured" at the right when they left), and
    leads sent back for rework to the stage that made an error a later stage caught,
    `rework_returns_<stage>`; the stage that caught it sends them to a node of its own at the
    right, `rework_sent_back_<stage>`. Both ends of a send-back are counted at one instant,
    so the two sides carry the same leads."""
    links = []
    for name in stages:
        links.append((NURTURE_BACK, f"stage: {name}", _mean(summary, f"nurture_returns_{name}"),
                      f"nurtured leads that came back and entered {name} again (drawn into "
                      "'nurtured' at the right when they left)"))
        links.append((REWORK_BACK, f"stage: {name}", _mean(summary, f"rework_returns_{name}"),
                      f"sent back to {name} for rework: a later stage caught an error made "
                      "here (drawn at the right of the stage that caught it as well)"))
        links.append((f"stage: {name}", REWORK_SENT.format(name),
                      _mean(summary, f"rework_sent_back_{name}"),
                      f"caught an earlier stage's error at {name}, sent the lead back to it "
                      "for rework (drawn again at the left, into the stage that takes it)"))
    return links


def _after_won(summary: dict, stages: dict) -> list[tuple]:
    """Won deals on to the retain stages they are handed to, and from those to retained or
    churned at their renewals (deals won straight into "customer" end at won: no stage
    renews them)."""
    links = []
    for name, st in stages.items():
        onward = st["routes"].get("won") if st["kind"] == "close" else None
        if onward in stages:
            links.append(("won", f"stage: {onward}", _mean(summary, f"won_at_{name}"),
                          f"won at {name}, handed to {onward}"))
    for name, st in stages.items():
        if st["kind"] == "retain":
            for fate in ("retained", "churned"):
                links.append((f"stage: {name}", fate, _mean(summary, f"{fate}_at_{name}"),
                              f"{fate} at the stage's renewals"))
    return links


OPEN = "open at the end"
_FLOW_COLORS = {"channel": "#2c3e50", "stage": "#2980b9", "won": "#27ae60", "lost": "#c0392b",
                "disqualified": "#8e44ad", "nurtured": "#95a5a6", "leaked": "#e67e22",
                "retained": "#1e8449", "churned": "#a93226", OPEN: "#34495e"}
_FLOW_LINKS = {"won": "rgba(39,174,96,0.5)", "lost": "rgba(192,57,43,0.35)",
               "leaked": "rgba(230,126,34,0.45)", "retained": "rgba(30,132,73,0.5)",
               "churned": "rgba(169,50,38,0.4)"}
_FATE_ORDER = ("won", "retained", "churned", "lost", "disqualified", "nurtured", OPEN)


def _flow_positions(names: list[str], links: list) -> tuple[list[float], list[float]]:
    """Columns: channels (and leads coming back from a later stage), then each stage one step
    right of the stage or channel that feeds it, the leak node right of the last stage (the
    stages feed it), every fate and cause at the right; rows spread evenly."""
    depth = {n: 0 for n in names
             if n.startswith(("channel: ", BACK_FROM)) or n == "leads created"}
    # a fate that feeds a stage (won, handed to onboarding) stands between them
    between = {s for s, t, _, _ in links if t.startswith("stage: ")}
    for _ in names:  # longest path over the (acyclic, as drawn) links between stages
        for s, t, _, _ in links:
            if ((t.startswith("stage: ") or t in between) and s in depth
                    and depth.get(t, -1) < depth[s] + 1):
                depth[t] = depth[s] + 1
    last = max(depth.values(), default=0)
    for n in names:  # a stage no drawn link leads to (onboarding, after won): with the last
        if n.startswith("stage: ") and n not in depth:
            depth[n] = last
    fates = [n for n in names if n not in depth and n != "leaked"]
    fates.sort(key=lambda n: (_FATE_ORDER.index(n) if n in _FATE_ORDER else len(_FATE_ORDER),
                              names.index(n)))
    depth["leaked"] = last + 1
    cols = last + 3
    column = {n: depth.get(n, cols - 1) for n in names}
    x, y = [], []
    for n in names:
        members = [m for m in (fates if n in fates else names) if column[m] == column[n]]
        x.append(0.001 + 0.998 * column[n] / (cols - 1))
        y.append(0.001 + 0.998 * (members.index(n) + 0.5) / len(members))
    if "leaked" in names and fates:
        # its label runs right, toward the labels the fates' column writes leftward: level
        # with the shortest of those, nearest the middle (centred, it lay across 'nurtured')
        row = min(fates, key=lambda n: (len(n), abs(y[names.index(n)] - 0.5)))
        y[names.index("leaked")] = y[names.index(row)]
    return x, y


def _flow(summary: dict, routing: dict | None = None):
    """A Sankey of where leads go: channel -> stages -> fates, leaks split by cause.
    Without `routing` (see flow_routing), leads created -> fates."""
    import plotly.graph_objects as go

    if routing is None:
        links = [("leads created", f, _mean(summary, f), f) for f in
                 ("won", "lost", "disqualified", "nurtured")]
        links.append(("leads created", "leaked", _mean(summary, "leaked"), "leaked"))
        links += [("leaked", "leaked: " + c.removeprefix("leaked_").replace("_", " "),
                   _mean(summary, c), c) for c in LEAKS]
        links.append(("leads created", OPEN, _mean(summary, "open_at_end"), "open_at_end"))
        links = [link for link in links if math.isfinite(link[2]) and link[2] > 0]
    else:
        links = flow_links(summary, routing)
    names: dict[str, int] = {}
    for src, dst, _, _ in links:
        names.setdefault(src, len(names))
        names.setdefault(dst, len(names))
    told = [n.removeprefix("stage: ").removeprefix("channel: ").replace("_", " ")
            for n in names]
    told = [f"{label} (channel)" if n.startswith("channel: ") else label
            for label, n in zip(told, names, strict=True)]
    # a node at the left writes its label rightward, across the next column's nodes: one
    # coming back is labelled by where it comes from, its hover says the rest, unless a stage
    # sends leads back to two stages (two nodes 'back from ae close' read as one)
    short = [label.split(" (")[0] if n.startswith(BACK_FROM) else label
             for label, n in zip(told, names, strict=True)]
    labels = [plain(brief if short.count(brief) == 1 else whole)
              for brief, whole in zip(short, told, strict=True)]
    x, y = _flow_positions(list(names), links)
    fig = go.Figure(go.Sankey(
        arrangement="snap",
        node={"label": labels, "pad": 18, "x": x, "y": y,
              "color": [_FLOW_COLORS.get(n.split(":")[0], "#7f8c8d") for n in names],
              "customdata": [plain(label) for label in told],
              "hovertemplate": "%{customdata}: %{value:,.1f} per replication<extra></extra>"},
        link={"source": [names[s] for s, _, _, _ in links],
              "target": [names[t] for _, t, _, _ in links],
              "value": [v for _, _, v, _ in links],
              "color": [_FLOW_LINKS.get(t.split(":")[0], "rgba(127,140,141,0.35)")
                        for _, t, _, _ in links],
              "customdata": [plain(how) for _, _, _, how in links],
              "hovertemplate": "%{source.label} → %{target.label}: %{value:,.1f} per "
                               "replication<br>%{customdata}<extra></extra>"}))
    fig.update_layout(title=FLOW_TITLE, height=520, margin={"b": 120})
    fig.add_annotation(text=FLOW_CAPTION, showarrow=False, xref="paper", yref="paper",
                       x=0.0, y=-0.04, xanchor="left", yanchor="top", align="left",
                       font={"size": 11, "color": "#555"})
    return fig


def percent_ticks(values: list[float | None]) -> str:
    """A plotly tick format in % with as many decimals as the values' spread needs: plotly
    puts at most ten ticks on an axis, a step of 1, 2 or 5 times a power of ten, so over
    win rates 1.7% apart it ticks every 0.5%, and ".0%" wrote 24% 25% 25% 26% 26%. Whole
    percents where the spread is ten or more (or nothing spreads); "~" drops trailing zeros
    (24.5%, 25%)."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    # rounded: 0.3 - 0.2 is 9.999...% apart, which asked for a decimal
    spread = round(100 * (max(finite) - min(finite)), 9) if finite else 0.0
    decimals = max(0, -math.floor(math.log10(spread / 10))) if spread > 0 else 0
    return ".0%" if decimals == 0 else f".{decimals}~%"


DISTRIBUTIONS = {"bookings": "Bookings", "win_rate": "Win rate",
                 "cycle_days_median": "Sales cycle, median days", "leaked": "Leads leaked"}


def _distributions(reps: pl.DataFrame):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    cols = [c for c in DISTRIBUTIONS if c in reps.columns]
    fig = make_subplots(rows=1, cols=len(cols), subplot_titles=[DISTRIBUTIONS[c] for c in cols])
    for i, c in enumerate(cols, start=1):
        values = reps[c].drop_nans().to_list()
        fig.add_trace(go.Histogram(x=values, name=c, showlegend=False), row=1, col=i)
        if not values:  # a win rate with no deal decided: an empty panel says why
            fig.add_annotation(text="defined in no replication", showarrow=False, x=0.5,
                               y=0.5, xref=f"x{i} domain", yref=f"y{i} domain")
        if c == "win_rate":  # a share, in % as the console and the headline write it
            fig.update_xaxes(tickformat=percent_ticks(values), row=1, col=i)
    fig.update_layout(title="Outcome distributions over replications", height=340)
    return fig


SYSTEM = "the system (bookings)"
DESIGNED = "as designed (every human mechanism off)"


def _kpis(summary: dict, teams: list[str], designed: dict | None = None):
    """Each team's KPI attainment; with `designed` (mechanisms.as_designed), beside the same
    design run with ideal behaviour, and the system's bookings as a share of the design's:
    a team can meet its KPI either way while the system falls short of what it was designed
    to book (the value lost in the interaction, not by one team)."""
    import plotly.graph_objects as go

    names = [team for team in teams if summary.get(f"kpi_attainment_{team}")]
    rows = [summary[f"kpi_attainment_{team}"] for team in names]
    ideal = {r["outcome"]: r for r in designed["summary"]} if designed else {}
    share = (designed or {}).get("bookings_share")
    system = [share] if share and math.isfinite(share["mean"]) else []
    x = [plain(team) for team in names] + ([SYSTEM] if system else [])
    # the interval is cut at 0 (an attainment of 3% read down to -0.6%): drawn as it is
    fig = go.Figure(go.Bar(x=x, y=[r["mean"] for r in rows + system], name="as run",
                           error_y=error_bars(rows + system, centre="mean")))
    if ideal:
        nan = {"mean": math.nan, "ci_low": math.nan, "ci_high": math.nan}
        given = [ideal.get(f"kpi_attainment_{team}", nan) for team in names]
        given += [{"mean": 1.0, "ci_low": math.nan, "ci_high": math.nan}] if system else []
        fig.add_trace(go.Bar(x=x, y=[r["mean"] for r in given], name=DESIGNED,
                             marker_color="#95a5a6", error_y=error_bars(given, centre="mean")))
        fig.update_layout(barmode="group", legend={"orientation": "h", "y": -0.15})
    # the label outside the plot, at the line's right end: inside, it lay across the last bar
    fig.add_hline(y=1.0, line_dash="dash", annotation_text="target",
                  annotation_position="right")
    # a team with no bar says why: an empty chart read as if every team were missing data
    missing = [(team, "no KPI" if f"kpi_target_{team}" not in summary
                else "attainment defined in no replication")
               for team in teams if team not in names]
    if missing:
        fig.add_annotation(text=plain("Not drawn: " + "; ".join(f"{t} ({why})"
                                                               for t, why in missing)),
                           showarrow=False, xref="paper", yref="paper", x=0.0, y=1.0,
                           xanchor="left", yanchor="bottom", align="left",
                           font={"size": 11, "color": "#555"})
    title = "Each team's KPI against its target (attainment, 95% CI)"
    if system:
        # a SimPy run's share is of the run repeated on numba: not of the bookings it printed
        again = f", repeated on the {designed['engine']} engine," if share.get("repeated") else ""
        title = ("Each team's KPI beside the system, as run and as designed (attainment, "
                 f"95% CI)<br><sub>the system: bookings as run{again} are "
                 f"{fmt(share['mean'], 'rate')} of the design's with ideal behaviour "
                 f"({counted(designed['replications'], 'replications')} with every human "
                 f"mechanism off on the {designed['engine']} engine, paired with the run's "
                 f"first {designed['replications']:,})</sub>")
    fig.update_layout(title=title, yaxis_tickformat=".0%", height=400 if system else 360)
    return fig


def _weekly(weekly: pl.DataFrame, prefix: str, title: str, percent: bool = False,
            empty: str = "none in this config", yaxis_title: str | None = None):
    import plotly.graph_objects as go

    fig = go.Figure()
    cols = [c for c in weekly.columns if c.startswith(prefix)]
    # a week with no one staffed has no utilisation (NaN): the mean is of the others
    agg = weekly.group_by("week").agg(
        [pl.col(c).fill_nan(None).mean().alias(c) for c in cols]).sort("week")
    # one measured week (a horizon of a week or less) is one point: a line draws nothing
    mode = "lines" if agg.height > 1 else "markers"
    for c in cols:
        fig.add_trace(go.Scatter(x=agg["week"].to_list(), y=agg[c].to_list(), mode=mode,
                                 name=plain(c.removeprefix(prefix))))
    if not cols:  # an empty chart says why (no route between teams: no trust to draw)
        fig.add_annotation(text=empty, showarrow=False, xref="paper", yref="paper", x=0.5,
                           y=0.5)
    drawn = [v for c in cols for v in agg[c].to_list()]
    fig.update_layout(title=title, xaxis_title="week after warm-up", height=340,
                      yaxis_title=yaxis_title,
                      yaxis_tickformat=percent_ticks(drawn) if percent else None)
    # weeks are whole: a few of them were ticked at halves ('-0.5', '0.5' round one point)
    if agg.height <= 20:
        weeks = agg["week"].to_list() or [0]
        fig.update_xaxes(dtick=1, tick0=0, range=[min(weeks) - 0.5, max(weeks) + 0.5])
    return fig


def _wip(weekly: pl.DataFrame):
    """Each team's work in progress: wip_<team> counts the deals waiting on the buyer too
    (docs/model.md), so an AE team's line is its pipeline, in the hundreds for six AEs; the
    chart says so, where it read as leads being worked."""
    return _weekly(weekly, "wip_", "Leads in each team over time (mean)<br><sub>deals "
                   "waiting on the buyer included: an AE team's line is its whole pipeline"
                   "</sub>", yaxis_title="leads at the team, time-average")


STILL = " (did not move)"


def _trust(weekly: pl.DataFrame):
    """Trust per handoff over time, on its own scale (0 to 1: a flat line at 1 was drawn on an
    axis to 2). A handoff whose trust never moved, in any week of any replication (two values
    at least), is named so: the trust mechanism is off (the ideal profile) or nothing crossed
    it, and its flat line may hide another's."""
    fig = _weekly(weekly, "trust_", "Trust per handoff over time (mean over replications)",
                  empty="No handoff: no route in this config goes from one team to another",
                  yaxis_title="trust (0 to 1)")
    cols = [c for c in weekly.columns if c.startswith("trust_")]
    # one week of one replication is one value: equal to itself, moved or not
    still = [c for c in cols if weekly.height > 1 and weekly[c].min() == weekly[c].max()]
    for col, trace in zip(cols, fig.data, strict=True):
        if col in still:
            trace.name += STILL
    if still and len(still) == len(cols):
        fig.add_annotation(text="Trust did not move at any handoff in the measured weeks: "
                                "the trust mechanism is off (as under the ideal profile, where "
                                "it stays at its initial value) or nothing crossed a handoff",
                           showarrow=False, xref="paper", yref="paper", x=0.0, y=1.0,
                           xanchor="left", yanchor="bottom", align="left",
                           font={"size": 11, "color": "#555"})
    fig.update_yaxes(range=[0, 1.05])
    return fig


# what an error bar's length is where there is no interval. plotly.js reads each length as
# a number (+value): null (None; NaN too, which plotly.py writes as null) is 0, a flat cap
# that reads as certainty; "NaN" is NaN, and a point both of whose lengths are NaN has no bar
NO_BAR = "NaN"


def error_bars(rows: list[dict], centre: str = "diff") -> dict:
    """Plotly's asymmetric error bars from each row's `centre` (a difference, a mean) and its
    ci_low/ci_high (an interval cut at 0 or 1 is not symmetric); none (`NO_BAR`) where there
    is no interval."""
    def gap(d: dict, a: str, b: str) -> float | str:
        given = all(v is not None and math.isfinite(v) for v in (d[a], d[b]))
        return d[a] - d[b] if given else NO_BAR

    return {"type": "data", "symmetric": False,
            "array": [gap(d, "ci_high", centre) for d in rows],
            "arrayminus": [gap(d, centre, "ci_low") for d in rows]}


def _finite(value) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def mechanism_cost_rows(costs: pl.DataFrame) -> list[dict]:
    """The mechanism-cost table as JSON-ready rows (NaN as null), costliest first."""
    return [{k: (_finite(v) if isinstance(v, float) else v) for k, v in r.items()}
            for r in costs.to_dicts()]


def _mechanism_costs(costs: pl.DataFrame):
    """Horizontal bars: the outcome lost to each mechanism (off minus full), 95% CI; below
    them, where the table has them, all the mechanisms off at once and their interaction
    (that less the sum of the bars above)."""
    import plotly.graph_objects as go

    from gtmsim.mechanisms import INTERACTION, TOGETHER

    rows = mechanism_cost_rows(costs)[::-1]  # plotly draws the first bar at the bottom
    outcome = rows[0]["outcome"] if rows else "bookings"
    alone = sum(r["mechanism"] not in (TOGETHER, INTERACTION) for r in rows)
    names = {TOGETHER: f"all {alone} together", INTERACTION: "interaction"}
    colours = {TOGETHER: "#2c3e50", INTERACTION: "#8e44ad"}
    cost = [r["cost"] for r in rows]
    # no bar where there is no interval (one replication): a zero-width one reads as certainty
    bars = error_bars(rows, centre="cost")
    fig = go.Figure(go.Bar(
        x=cost, y=[names.get(r["mechanism"], r["mechanism"].replace("_", " ")) for r in rows],
        orientation="h", error_x=bars,
        # a mechanism with no defined pair has no cost (None): no bar, not a crash
        marker_color=[colours.get(r["mechanism"],
                                  "#c0392b" if c is not None and c > 0 else "#7f8c8d")
                      for r, c in zip(rows, cost, strict=True)],
        hovertemplate="%{y}: %{x:,.0f}<extra></extra>"))
    # the pairs behind the bars (the last row may be one with none: its cost undefined)
    n = max((r["replications"] for r in rows), default=0)
    ci = "95% CI" if any(x != NO_BAR for x in bars["array"]) else "no CI from one replication"
    fig.add_vline(x=0.0, line_color="black", line_width=1)
    together = (", and with all off at once;<br>interaction: that less the sum of the rest"
                if alone < len(rows) else "")
    engines = sorted({r["engine"] for r in rows if r.get("engine")})
    on = f" on the {engines[0]} engine" if len(engines) == 1 else ""
    # on lines of their own: one line was cut off at the page's width
    fig.update_layout(
        title=f"{outcome.capitalize().replace('_', ' ')} lost to each mechanism<br>"
              f"<sub>with it off, minus the full run{together}; "
              f"{counted(n, 'paired replications')}{on}, {ci}</sub>",
        margin={"t": 110},
        xaxis_title=f"{outcome.replace('_', ' ')} per replication", height=170 + 28 * len(rows))
    return fig


def run_figures(replications: pl.DataFrame, weekly: pl.DataFrame, summary: pl.DataFrame,
                teams: list[str], mechanism_costs: pl.DataFrame | None = None,
                routing: dict | None = None,
                designed: dict | None = None) -> dict[str, go.Figure]:
    """The report's plotly figures by name, in the page's order (`run --png` writes them);
    `routing` (flow_routing of the config) draws the flow from channels through stages,
    `designed` (mechanisms.as_designed) sets the design with ideal behaviour beside each
    team's KPI."""
    rows = {r["outcome"]: r for r in summary.to_dicts()}
    figures = {"flow": _flow(rows, routing), "distributions": _distributions(replications),
               "kpis": _kpis(rows, teams, designed)}
    if mechanism_costs is not None and mechanism_costs.height:
        figures["mechanism_costs"] = _mechanism_costs(mechanism_costs)
    figures["trust"] = _trust(weekly)
    figures["wip"] = _wip(weekly)
    figures["utilisation"] = _weekly(weekly, "util_", "Utilisation per team over time (mean)",
                                     percent=True)
    figures["staffed"] = _weekly(weekly, "staffed_", "People on each team's staff over time "
                                 "(mean; vacancies after quits show as dips)")
    return figures


def run_report(replications: pl.DataFrame, weekly: pl.DataFrame, summary: pl.DataFrame,
               meta: dict, teams: list[str], mechanism_costs: pl.DataFrame | None = None,
               note: str | None = None, routing: dict | None = None,
               designed: dict | None = None) -> str:
    """The whole page as one HTML string; `mechanism_costs` (see gtmsim.mechanisms) adds the
    figure of what each human mechanism costs, `note` a line where it is missing, `routing`
    (flow_routing of the config) the flow from channels through stages."""
    rows = {r["outcome"]: r for r in summary.to_dicts()}
    figures = list(run_figures(replications, weekly, summary, teams, mechanism_costs,
                               routing, designed).values())
    parts = figures_html(figures)
    if note:
        parts.insert(3, f"<p class='note'>{html.escape(note)}</p>")
    costs = script_json(mechanism_cost_rows(mechanism_costs)
                        if mechanism_costs is not None else None)
    # as the console writes them: a win rate with no deal decided is '-', not 'nan%'
    headline = (f"Bookings {fmt(_mean(rows, 'bookings'), 'money')} per replication; win rate "
                f"{fmt(_mean(rows, 'win_rate'), 'rate')}; "
                f"{fmt(_mean(rows, 'leaked'), 'count')} leads leaked")
    data = script_json({k: {m: (float(v[m]) if math.isfinite(v[m]) else None)
                            for m in ("mean", "ci_low", "ci_high")}
                        for k, v in rows.items()})
    title = html.escape(f"gtmsim: {meta.get('config', '')}")
    window = (f" of {days(meta['horizon_days'])} measured after a {meta['warmup_days']:g}-day "
              "warm-up" if "horizon_days" in meta and "warmup_days" in meta else "")
    sub = html.escape(f"{counted(meta.get('replications', 0), 'replications')}{window}, profile "
                      f"{meta.get('profile')!r}, engine {meta.get('engine')}, seed "
                      f"{meta.get('seed')}; bookings are won deal values in the config's "
                      "currency")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
            "<style>body{font-family:sans-serif;margin:2em;max-width:1100px}</style></head>"
            f"<body><h1>{title}</h1><p>{sub}</p><p><b>{html.escape(headline)}</b></p>"
            + "".join(parts)
            + f"<script type='application/json' id='gtmsim-summary'>{data}</script>"
            f"<script type='application/json' id='gtmsim-mechanism-costs'>{costs}</script>"
            "</body></html>")
