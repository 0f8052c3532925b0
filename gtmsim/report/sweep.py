"""The report of a `sweep`: the mean outcome over the grid, one panel per profile.

Two or more levers in a factorial grid: heatmaps over the first two levers (averaged over
the others, each point counting once); a Latin hypercube: the points scattered over the first
two levers, coloured by the mean; one lever: the mean against the lever with 95% CIs, a line
per profile; profiles only: bars with CIs. A dropdown switches between key outcomes. The
numbers shown (every point's means, and the heatmap cells) are embedded in the page as JSON
(`<script id="gtmsim-summary">`); plotly's JavaScript is embedded once: it opens offline.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from gtmsim.outcomes import in_percent, less_is_better, t_quantile, where_it_can_lie
from gtmsim.report.export import change, counted, plain, script_json
from gtmsim.report.plotlyjs import figures_html
from gtmsim.report.run import error_bars, percent_ticks
from gtmsim.sweep import MANIFEST, read_sweep

if TYPE_CHECKING:
    import plotly.graph_objects as go

# with each team's KPI attainment, so a sweep shows where a function's KPI and the system's
# outcome part ways
KEY_OUTCOMES = ("bookings", "win_rate", "leaked", "pipeline_created", "won", "rework_hours")


def _clean(v: Any) -> Any:
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    return v


def point_means(rows: pl.DataFrame, outcomes: list[str]) -> pl.DataFrame:
    """Per point: replications and, per outcome, the mean with a t-based 95% CI (NaN values,
    e.g. a win rate with no decisions, are left out), cut as a run's summary cuts it: a
    share's to [0, 1], an outcome never negative at the point at 0."""
    aggs = [pl.len().alias("replications")]
    for o in outcomes:
        x = pl.col(o).cast(pl.Float64).fill_nan(None)
        aggs += [x.mean().alias(f"{o}__mean"), x.std().alias(f"{o}__sd"),
                 x.count().alias(f"{o}__n"), x.min().alias(f"{o}__min")]
    df = rows.group_by("point", maintain_order=True).agg(aggs).sort("point")
    out = []
    for r in df.to_dicts():
        row = {"point": r["point"], "replications": r["replications"]}
        for o in outcomes:
            m, sd, n = r[f"{o}__mean"], r[f"{o}__sd"], r[f"{o}__n"]
            # one replication says nothing about the spread: no interval (as in a run)
            given = m is not None and sd is not None and n > 1
            half = t_quantile(0.975, n - 1) * sd / math.sqrt(n) if given else None
            low, high = (where_it_can_lie(o, m - half, m + half, r[f"{o}__min"] >= 0)
                         if given else (None, None))  # as in a run's summary
            row[o] = m
            row[f"{o}_ci_low"] = low
            row[f"{o}_ci_high"] = high
        out.append(row)
    return pl.DataFrame(out)


def sweep_summary(out: str | Path, outcomes: list[str] | None = None) -> dict[str, Any]:
    """What the report shows, as plain data: the sweep's settings, the layout, every point's
    means with CIs, and (heatmaps) each cell's mean over the points in it."""
    out = Path(out)
    manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    rows = read_sweep(out)
    axes = list(manifest["points"][0]["values"]) if manifest["points"] else []
    levers = [a for a in axes if a != "profile"]
    kpis = [c for c in rows.columns if c.startswith("kpi_attainment_")]
    outcomes = [o for o in (outcomes or [*KEY_OUTCOMES, *kpis]) if o in rows.columns]
    means = {r["point"]: r for r in point_means(rows, outcomes).to_dicts()}
    profile_of = dict(rows.select("point", "profile").unique().iter_rows())
    points = []
    for p in manifest["points"]:
        if p["point"] not in means:  # not written yet
            continue
        m = means[p["point"]]
        points.append({"point": p["point"], "profile": profile_of[p["point"]],
                       "values": {k: p["values"][k] for k in levers},
                       "replications": m["replications"],
                       "mean": {o: m[o] for o in outcomes},
                       "ci_low": {o: m[f"{o}_ci_low"] for o in outcomes},
                       "ci_high": {o: m[f"{o}_ci_high"] for o in outcomes}})
    profiles = list(dict.fromkeys(p["profile"] for p in points))
    if not levers:
        layout = "bars"
    elif len(levers) == 1:
        layout = "lines"
    else:
        layout = "heatmap" if manifest["design"] == "factorial" else "scatter"
    x = levers[0] if levers else None
    y = levers[1] if len(levers) > 1 else None
    summary = {"sweep": {k: manifest[k] for k in ("config", "seed", "replications", "engine",
                                                  "design", "common_random_numbers")},
               "outcomes": outcomes, "profiles": profiles, "levers": levers,
               "layout": layout, "x": x, "y": y, "averaged_over": levers[2:],
               "points": points,
               "cells": _cells(points, profiles, x, y, outcomes) if layout == "heatmap" else [],
               "leaders": (_leaders(rows, points, profiles, outcomes[0],
                                    bool(manifest["common_random_numbers"]))
                           if outcomes else [])}
    summary["kpi_choices"] = _kpi_choices(summary, rows,
                                          bool(manifest["common_random_numbers"]))
    return _finite(summary)


def _kpi_choices(s: dict, rows: pl.DataFrame, paired: bool) -> list[dict]:
    """Per profile and team, the point its KPI attainment ranks best, and the first
    outcome there against the best point's: where each team, left to choose the design by
    its own KPI, would take the system (the essay's claim, on the grid). A team is named
    where its KPI's 95% interval at its own best point lies above its interval at the best
    point: one whose choice is the best point's, or within noise of it, is left out."""
    if not s["outcomes"] or not s["leaders"]:
        return []
    o = s["outcomes"][0]
    by_point = {p["point"]: p for p in s["points"]}
    out = []
    for lead in s["leaders"]:
        if lead["runner_up"] is None:
            continue
        best = by_point[lead["best"]]
        mine = [p for p in s["points"] if p["profile"] == lead["profile"]]
        for kpi in (k for k in s["outcomes"] if k.startswith("kpi_attainment_") and k != o):
            ranked = [p for p in mine if p["mean"][kpi] is not None
                      and math.isfinite(p["mean"][kpi]) and p["mean"][o] is not None]
            if not ranked:
                continue
            top = max(ranked, key=lambda p: p["mean"][kpi])
            low, high = top["ci_low"].get(kpi), best["ci_high"].get(kpi)
            if top["point"] == best["point"] or low is None or high is None or not low > high:
                continue  # the same point, or a KPI not clearly higher there (CIs overlap)
            margin = _lead(rows, best["point"], top["point"], o, paired)
            if margin is None or not margin[1] > 0:
                continue  # the outcome no worse there beyond noise: no trade-off to show
            gap = top["mean"][o] - best["mean"][o]
            out.append({"profile": lead["profile"], "team": kpi.removeprefix("kpi_attainment_"),
                        "point": top["point"], "attainment": top["mean"][kpi],
                        "attainment_at_best": best["mean"][kpi], "outcome": o,
                        "value": top["mean"][o], "best_value": best["mean"][o],
                        "relative": gap / abs(best["mean"][o]) if best["mean"][o] else None,
                        "lead": margin[0], "lead_ci": [margin[1], margin[2]]})
    return out


def _leaders(rows: pl.DataFrame, points: list[dict], profiles: list[str], outcome: str,
             paired: bool) -> list[dict]:
    """Per profile: the best point by mean `outcome` (the lowest where less is better), the
    runner-up, and the best's lead over it with a 95% CI (positive: better), paired by
    replication when the points share seeds (common random numbers), Welch's otherwise;
    `separated` says whether the CI excludes 0."""
    sign = -1.0 if less_is_better(outcome) else 1.0
    out = []
    for prof in profiles:
        pts = sorted((p for p in points if p["profile"] == prof and p["mean"][outcome]
                      is not None), key=lambda p: sign * p["mean"][outcome], reverse=True)
        if not pts:
            continue
        lead = {"profile": prof, "best": pts[0]["point"], "runner_up": None, "difference": None,
                "ci_low": None, "ci_high": None, "paired": paired, "separated": None}
        out.append(lead)
        if len(pts) < 2:
            continue
        lead["runner_up"] = pts[1]["point"]
        gap = _lead(rows, pts[0]["point"], pts[1]["point"], outcome, paired)
        if gap is not None:
            diff, low, high = gap
            lead.update(difference=diff, ci_low=low, ci_high=high, separated=bool(low > 0))
    return out


def _lead(rows: pl.DataFrame, first: int, second: int, outcome: str,
          paired: bool) -> tuple[float, float, float] | None:
    """Point `first`'s lead over point `second` on `outcome` (positive: better) with its 95%
    CI, paired by replication or Welch's; None with too few replications to say."""
    sign = -1.0 if less_is_better(outcome) else 1.0

    def values(point: int) -> pl.DataFrame:
        return (rows.filter(pl.col("point") == point)
                .select("replication", pl.col(outcome).cast(pl.Float64).fill_nan(None))
                .drop_nulls())

    a, b = values(first), values(second)
    if paired:
        d = sign * a.join(b, on="replication", suffix="_b").select(
            pl.col(outcome) - pl.col(f"{outcome}_b")).to_series().to_numpy()
        n = len(d)
        if n < 2:
            return None
        diff, se, df = float(d.mean()), float(d.std(ddof=1)) / math.sqrt(n), n - 1
    else:
        xa, xb = a[outcome].to_numpy(), b[outcome].to_numpy()
        if len(xa) < 2 or len(xb) < 2:
            return None
        va, vb = xa.var(ddof=1) / len(xa), xb.var(ddof=1) / len(xb)
        diff, se = sign * float(xa.mean() - xb.mean()), math.sqrt(va + vb)
        df = ((va + vb) ** 2 / (va ** 2 / (len(xa) - 1) + vb ** 2 / (len(xb) - 1))
              if va + vb > 0 else 1.0)
    half = t_quantile(0.975, df) * se
    return diff, diff - half, diff + half


def _finite(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return _clean(value)


def _order(values: list) -> list:
    """Distinct values, numbers sorted, others as first seen."""
    distinct = list(dict.fromkeys(json.dumps(v) for v in values))
    vals = [json.loads(v) for v in distinct]
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
        return sorted(vals)
    return vals


def _cells(points: list[dict], profiles: list[str], x: str, y: str,
           outcomes: list[str]) -> list[dict]:
    """Per profile and (x, y): the mean over the points there of each point's mean."""
    cells = []
    for prof in profiles:
        pts = [p for p in points if p["profile"] == prof]
        for xv in _order([p["values"][x] for p in pts]):
            for yv in _order([p["values"][y] for p in pts]):
                inside = [p for p in pts if p["values"][x] == xv and p["values"][y] == yv]
                if not inside:
                    continue
                mean = {}
                for o in outcomes:
                    vals = [p["mean"][o] for p in inside if p["mean"][o] is not None]
                    mean[o] = sum(vals) / len(vals) if vals else None
                cells.append({"profile": prof, "x": xv, "y": yv, "points": len(inside),
                              "mean": mean})
    return cells


# --------------------------------------------------------------------------- the figure


def _label(v: Any) -> Any:
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else plain(v)


def _traces(s: dict, outcome: str, first: bool) -> list[tuple[Any, int]]:
    """(trace, subplot column) for one outcome."""
    import plotly.graph_objects as go

    profiles, x, y, layout = s["profiles"], s["x"], s["y"], s["layout"]
    out: list[tuple[Any, int]] = []
    # the bright end of the scale is the better one, for leaks and waiting as for bookings
    scale = "Viridis_r" if less_is_better(outcome) else "Viridis"
    # a share or a KPI attainment in %, as run, compare and optimize write it (29.6%, not 0.296)
    percent = in_percent(outcome)

    def scaled(vals: list[float]) -> tuple[float, float, dict]:
        """A panel's colour range and bar: each profile's own, so its best point is the
        bright one (over all profiles, a realistic panel far below the ideal one was dark
        throughout); the bar is set beside its panel in _figure."""
        bar = {"title": {"text": plain(f"{outcome} (less is better)"
                                       if less_is_better(outcome) else outcome),
                         "side": "right"}, "thickness": 14}
        if percent:
            bar["tickformat"] = percent_ticks(vals)
        return (min(vals), max(vals)) if vals else (0.0, 1.0), bar

    if layout == "heatmap":
        vals = [c["mean"][outcome] for c in s["cells"] if c["mean"][outcome] is not None]
        # SI prefixes suit money and counts (1.86M); below 1 they read a rate as milli (250m)
        text = ("%{z:.1%}" if percent else
                "%{z:.3~s}" if all(v == 0 or abs(v) >= 1 for v in vals) else "%{z:.3~g}")
        for j, prof in enumerate(profiles, start=1):
            cells = [c for c in s["cells"] if c["profile"] == prof]
            (lo, hi), bar = scaled([c["mean"][outcome] for c in cells
                                    if c["mean"][outcome] is not None])
            xs, ys = _order([c["x"] for c in cells]), _order([c["y"] for c in cells])
            z = [[None] * len(xs) for _ in ys]
            for c in cells:
                z[ys.index(c["y"])][xs.index(c["x"])] = c["mean"][outcome]
            out.append((go.Heatmap(
                x=[_label(v) for v in xs], y=[_label(v) for v in ys], z=z, zmin=lo, zmax=hi,
                colorscale=scale, showscale=True, visible=first,
                colorbar=bar, name=plain(f"{prof}: {outcome}"),
                texttemplate=text,
                hovertemplate=f"{plain(x)}=%{{x}}<br>{plain(y)}=%{{y}}<br>{plain(outcome)}"
                              + ("=%{z:.2%}" if percent else "=%{z:,.4g}") +
                              "<extra></extra>"), j))
    elif layout == "scatter":
        for j, prof in enumerate(profiles, start=1):
            # a point where the outcome is undefined (a retention rate before any renewal)
            # has no colour to show
            pts = [p for p in s["points"] if p["profile"] == prof
                   and p["mean"][outcome] is not None]
            (lo, hi), bar = scaled([p["mean"][outcome] for p in pts])
            out.append((go.Scatter(
                x=[_label(p["values"][x]) for p in pts], y=[_label(p["values"][y]) for p in pts],
                mode="markers", visible=first, name=plain(f"{prof}: {outcome}"),
                showlegend=False,
                marker={"size": 12, "color": [p["mean"][outcome] for p in pts],
                        "colorscale": scale, "cmin": lo, "cmax": hi,
                        "showscale": True, "colorbar": bar}), j))
    elif layout == "lines":
        for prof in profiles:
            pts = [p for p in s["points"] if p["profile"] == prof]
            order = _order([q["values"][x] for q in pts])
            pts.sort(key=lambda p, order=order: order.index(p["values"][x]))
            out.append((go.Scatter(
                x=[_label(p["values"][x]) for p in pts], y=[p["mean"][outcome] for p in pts],
                mode="lines+markers", name=plain(prof), visible=first, legendgroup=outcome,
                error_y=_error_bars(pts, outcome)), 1))
    else:  # bars: profiles only
        out.append((go.Bar(
            x=[plain(p["profile"]) for p in s["points"]],
            y=[p["mean"][outcome] for p in s["points"]], visible=first, name=plain(outcome),
            error_y=_error_bars(s["points"], outcome)), 1))
    return out


def _error_bars(points: list[dict], outcome: str) -> dict:
    """Asymmetric error bars from each point's 95% CI; none where it has no interval (one
    replication), not a bar of zero width (`run.error_bars`)."""
    return error_bars([{k: p[k][outcome] for k in ("mean", "ci_low", "ci_high")}
                       for p in points], centre="mean")


def _figure(s: dict):
    from plotly.subplots import make_subplots

    small = s["layout"] in ("heatmap", "scatter")
    cols = len(s["profiles"]) if small else 1
    # room between the panels for each one's colour bar
    fig = make_subplots(rows=1, cols=max(1, cols), shared_yaxes=True,
                        horizontal_spacing=0.14 if cols > 1 else None,
                        subplot_titles=[plain(f"profile {p}") for p in s["profiles"]] if small
                        else None)
    owner: list[str] = []
    for i, o in enumerate(s["outcomes"]):
        for trace, col in _traces(s, o, i == 0):
            if small:  # the panel's own colour bar, just right of it
                coloured = trace.marker if s["layout"] == "scatter" else trace
                coloured.colorbar.x = fig.get_subplot(1, col).xaxis.domain[1] + 0.005
                coloured.colorbar.xanchor = "left"
            fig.add_trace(trace, row=1, col=col)
            owner.append(o)
    titles = {o: plain(_title(s, o)) for o in s["outcomes"]}
    if small and cols > 1:
        what = "cell" if s["layout"] == "heatmap" else "point"
        titles = {o: t + f"<br><sub>each profile on its own colour scale: its brightest {what} "
                  "is its best</sub>" for o, t in titles.items()}
    # the y axis of lines and bars is the outcome's: a share's or an attainment's in %
    ticks = {o: (percent_ticks([v for p in s["points"] for v in (p["mean"][o], p["ci_low"][o],
                                                                 p["ci_high"][o])])
                 if in_percent(o) and not small else "") for o in s["outcomes"]}
    buttons = [{"label": plain(o), "method": "update",
                "args": [{"visible": [w == o for w in owner]},
                         {"title.text": titles[o], "yaxis.tickformat": ticks[o]}
                         if not small else {"title.text": titles[o]}]}
               for o in s["outcomes"]]
    if s["outcomes"] and ticks[s["outcomes"][0]]:
        fig.update_yaxes(tickformat=ticks[s["outcomes"][0]])
    fig.update_layout(title=titles[s["outcomes"][0]] if s["outcomes"] else "",
                      height=460 if small else 420,
                      updatemenus=[{"buttons": buttons, "direction": "down", "x": 1.0,
                                    "xanchor": "right", "y": 1.18, "yanchor": "top"}])
    if s["x"]:
        for j in range(1, max(1, cols) + 1):
            fig.update_xaxes(title_text=plain(s["x"]), row=1, col=j)
    if s["layout"] == "heatmap":  # one equal cell per grid value, in grid order
        fig.update_xaxes(type="category")
        fig.update_yaxes(type="category")
    ytitle = plain(s["y"]) if small else "mean (95% CI)"
    fig.update_yaxes(title_text=ytitle, row=1, col=1)
    return fig


def _title(s: dict, outcome: str) -> str:
    layout = s["layout"]
    if layout == "heatmap":
        rest = (f", averaged over {', '.join(s['averaged_over'])}" if s["averaged_over"]
                else "")
        return f"Mean {outcome} over {s['x']} and {s['y']}{rest}"
    if layout == "scatter":
        return f"Mean {outcome} of each point over {s['x']} and {s['y']} (Latin hypercube)"
    if layout == "lines":
        return f"Mean {outcome} against {s['x']} (95% CI)"
    return f"Mean {outcome} per profile (95% CI)"


def _fmt(v: float | None, percent: bool = False, difference: bool = False) -> str:
    """A mean of the outcome; in % where it is a share or an attainment (`in_percent`), a
    difference of one in percentage points."""
    if v is None:
        return "-"
    if percent:
        return f"{100 * v:.3g} pp" if difference else f"{100 * v:.1f}%"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"


def _point_name(p: dict, empty: str) -> str:
    """A point by its lever values (`empty` when the grid varies only the profile)."""
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in p["values"].items()) or empty


def leaders_text(s: dict) -> list[str]:
    """The best point per profile and its lead over the runner-up, a line each."""
    if not s["outcomes"]:
        return []
    o = s["outcomes"][0]
    pc = in_percent(o)  # a share or an attainment in %, its differences in points
    by_point = {p["point"]: p for p in s["points"]}
    lines = []
    for lead in s.get("leaders", []):
        b = by_point[lead["best"]]
        best = (o if lead["runner_up"] is None  # the profile's only point: best of one
                else f"lowest {o}" if less_is_better(o) else f"best {o}")
        line = (f"{best} under {lead['profile']}: {_point_name(b, 'the config')}, "
                f"mean {_fmt(b['mean'][o], pc)}")
        if lead["difference"] is not None:
            line += (f"; ahead of the runner-up by {_fmt(lead['difference'], pc, True)} "
                     f"[{_fmt(lead['ci_low'], pc, True)}, {_fmt(lead['ci_high'], pc, True)}]"
                     + ("" if lead["separated"] else ", within noise"))
        elif lead["runner_up"] is not None:  # as the page's table says it
            line += "; too few replications to set it against the runner-up"
        lines.append(line)
    return lines


def kpi_choices_text(s: dict) -> list[str]:
    """A line per team whose KPI ranks another point best than the outcome does: 'under
    realistic, marketing's KPI attainment is highest at mql_threshold=0.1 (216.0%, against
    104.0% at the best point), with bookings 4,000,000 there: -20% against the best point'."""
    by_point = {p["point"]: p for p in s["points"]}
    lines = []
    for c in s.get("kpi_choices", []):
        pc = in_percent(c["outcome"])
        rel = ("" if c["relative"] is None else f": {change(c['relative'])}"
               f"{' relative' if pc else ''} against the best point")
        lines.append(f"under {c['profile']}, {c['team']}'s KPI attainment is highest at "
                     f"{_point_name(by_point[c['point']], 'the config')} "
                     f"({_fmt(c['attainment'], True)}, against "
                     f"{_fmt(c['attainment_at_best'], True)} at the best point), with "
                     f"{c['outcome']} {_fmt(c['value'], pc)} there{rel}")
    return lines


def _kpi_table(s: dict) -> str:
    """The rows of `kpi_choices_text`, as a table: where a team's own KPI would take the
    design."""
    if not s.get("kpi_choices"):
        return ""
    o = s["outcomes"][0]
    pc = in_percent(o)
    by_point = {p["point"]: p for p in s["points"]}
    rows = "".join(
        f"<tr><td>{html.escape(c['profile'])}</td><td>{html.escape(c['team'])}</td>"
        f"<td>{html.escape(_point_name(by_point[c['point']], '-'))}</td>"
        f"<td>{_fmt(c['attainment'], True)}</td><td>{_fmt(c['attainment_at_best'], True)}</td>"
        f"<td>{_fmt(c['value'], pc)}</td>"
        f"<td>{'-' if c['relative'] is None else change(c['relative'])}</td></tr>"
        for c in s["kpi_choices"])
    return (f"<h2>Where each team's KPI would take the design</h2><p>The point each team's "
            f"own KPI attainment ranks best, where it is not the best point by mean "
            f"{html.escape(o)} and the KPI's 95% intervals at the two points lie apart, and "
            f"{html.escape(o)} there: the design a team would choose by its own KPI, against "
            "what the system needs (means over replications).</p>"
            "<table><thead><tr><th>profile</th><th>team</th><th>its KPI's best point</th>"
            "<th>attainment there</th><th>attainment at the best point</th>"
            f"<th>{html.escape(o)} there</th><th>against the best point</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>")


def _best_table(s: dict) -> str:
    """The best point per profile by the first outcome."""
    if not s["outcomes"]:
        return ""
    o = s["outcomes"][0]
    pc = in_percent(o)  # a share or an attainment in %, its differences in points
    by_point = {p["point"]: p for p in s["points"]}
    rows = []
    for lead in s.get("leaders", []):
        b = by_point[lead["best"]]
        if lead["runner_up"] is None:
            ahead = "-"
        else:
            r = by_point[lead["runner_up"]]
            ahead = f"{_point_name(r, '-')}: "
            if lead["difference"] is None:
                ahead += "too few replications to say"
            else:
                verdict = ("ahead" if lead["separated"] else
                           "within noise (the interval holds 0)")
                ahead += (f"{_fmt(lead['difference'], pc, True)} "
                          f"[{_fmt(lead['ci_low'], pc, True)}, "
                          f"{_fmt(lead['ci_high'], pc, True)}], {verdict}")
        rows.append(f"<tr><td>{html.escape(lead['profile'])}</td>"
                    f"<td>{html.escape(_point_name(b, '-'))}</td>"
                    f"<td>{_fmt(b['mean'][o], pc)}</td><td>[{_fmt(b['ci_low'][o], pc)}, "
                    f"{_fmt(b['ci_high'][o], pc)}]</td><td>{b['replications']}</td>"
                    f"<td>{html.escape(ahead)}</td></tr>")
    how = ("paired by replication (common random numbers)" if s["sweep"]["common_random_numbers"]
           else "unpaired (Welch)")
    lowest = " (the lowest: less is better)" if less_is_better(o) else ""
    return (f"<h2>Best point per profile by mean {html.escape(o)}{lowest}</h2>"
            "<table><thead><tr>"
            "<th>profile</th><th>point</th><th>mean</th><th>95% CI</th><th>replications</th>"
            f"<th>lead over the runner-up, 95% CI, {how}</th>"
            "</tr></thead><tbody>" + "".join(rows) + "</tbody></table>")


def sweep_figures(summary: dict[str, Any]) -> dict[str, go.Figure]:
    """The report's plotly figures by name (`sweep --png` writes them), from sweep_summary:
    one, "means", whose menu switches between outcomes (a PNG shows the first outcome)."""
    return {"means": _figure(summary)}


def sweep_report(out: str | Path, outcomes: list[str] | None = None,
                 summary: dict[str, Any] | None = None) -> str:
    """The report page of the sweep in folder `out`, as one HTML string (`summary`: that of
    sweep_summary(out, outcomes), read here when not given)."""
    s = summary if summary is not None else sweep_summary(out, outcomes)
    fig = "".join(figures_html(sweep_figures(s).values()))
    sw = s["sweep"]
    title = html.escape(f"gtmsim sweep: {sw['config']}")
    sub = html.escape(
        f"{counted(len(s['points']), 'points')} ({sw['design']}) x "
        f"{counted(sw['replications'], 'replications')}, "
        f"levers {', '.join(s['levers']) or 'none'}, profiles {', '.join(s['profiles'])}; "
        f"engine {sw['engine']}, seed {sw['seed']}"
        + ("; common random numbers" if sw["common_random_numbers"] else "")
        + ". Pick the outcome in the menu at the top right.")
    data = script_json(s)
    style = ("body{font-family:sans-serif;margin:2em;max-width:1200px}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
            f"<style>{style}</style></head><body><h1>{title}</h1><p>{sub}</p>{fig}"
            f"{_best_table(s)}{_kpi_table(s)}"
            f"<script type='application/json' id='gtmsim-summary'>{data}</script>"
            "</body></html>")
