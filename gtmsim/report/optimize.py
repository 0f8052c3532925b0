"""The report of an `optimize`: the chosen design's levers, how it and the other candidates did
on the held-out scenarios, the ideal-tuned design against the robust one (with
--compare-ideal), the Pareto front of a two-objective study, the search's history and the
levers' importance (Optuna's own plots), and the conditions that break the chosen design.

One HTML file that opens offline: plotly's JavaScript is embedded once. Every number the page
prints comes from the report dict written to comparison.json, which is embedded as JSON
(`<script id="gtmsim-summary">`) so the two can be checked against each other; the figures
draw the per-scenario values behind those numbers.
"""

from __future__ import annotations

import html
import warnings
from typing import Any

import numpy as np

from gtmsim.report.export import counted, jsonable, plain, script_json
from gtmsim.report.plotlyjs import figures_html
from gtmsim.report.run import error_bars, percent_ticks

STATS = (("mean", "mean"), ("p10", "P10"), ("cvar10", "CVaR10 (worst 10%)"))


def _num(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, (bool, str)):
        return html.escape(str(v))
    if isinstance(v, int):
        return f"{v:,}"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.3g}"


def _ci(row: dict, key: str, percent: bool = False) -> str:
    """A statistic of the outcome with its interval; in % where the outcome is written so."""
    value = (lambda v: _figure(v, True)) if percent else _num
    lo, hi = row.get(f"{key}_ci") or (None, None)
    text = value(row.get(key))
    if lo is None or not np.isfinite(lo):  # no interval (a tail under 20 scenarios)
        return text
    return f"{text} <small>[{value(lo)}, {value(hi)}]</small>"


def in_percent(report: dict) -> bool:
    """Whether the optimised outcome is written in % (a share, a KPI attainment), its
    differences in percentage points, as `compare` writes it: comparison.json says so
    (outcome_in_percent); one written before, by the outcome's name."""
    from gtmsim.report.compare import outcome_in_percent

    return outcome_in_percent(report)


def trials_words(report: dict) -> str:
    """'40 trials', and how many more were interrupted (not counted), if any."""
    n, stopped = report["trials"], report.get("trials_interrupted", 0)
    return counted(n, "trials") + (f" ({stopped} more interrupted, not counted)" if stopped
                                   else "")


def refused_words(report: dict) -> str:
    """One line on the trials whose design the model refused (infeasible, not simulated),
    naming the first and its reason; '' when there were none."""
    n = report.get("trials_refused", 0)
    if not n:
        return ""
    return (f"{n} of the {report['trials']} trials {'was' if n == 1 else 'were'} refused by "
            f"the model and not simulated (first, {report['first_refusal']}).")


def regret_words(report: dict) -> str:
    """The chosen design's regret in one line: on the search's scenarios, which chose it,
    and on the held-out ones, which estimate it."""
    best = report["best"]
    percent = in_percent(report)
    # a candidate the search never ran has no search regret: None in comparison.json, NaN
    # in the report dict the text is written from
    ran = sum(_given(c.get("search_regret")) for c in report["candidates"])
    return (f"Regret of the chosen design (its largest shortfall against the best candidate "
            f"in a scenario): {_shortfall(best.get('search_regret'), percent)} on the "
            f"search's scenarios, the least of the {counted(ran, 'candidates')} the search "
            f"ran, and {_shortfall(best.get('regret'), percent)} on the held-out scenarios.")


def _given(v: float | None) -> bool:
    """A number, not None (comparison.json) nor NaN (the report dict before it is written)."""
    return v is not None and bool(np.isfinite(v))


def _figure(v: float | None, percent: bool = False) -> str:
    """A value of the outcome (`optimize.compare.figure`: in % where `percent`)."""
    from gtmsim.optimize.compare import figure

    return "-" if v is None or not np.isfinite(v) else figure(v, percent)


def _shortfall(v: float | None, percent: bool = False) -> str:
    """A regret: a difference of the outcome, unsigned (never below 0); of a share or an
    attainment in percentage points, as `points` writes a difference."""
    if not percent:
        return _figure(v)
    from gtmsim.optimize.compare import amount

    return "-" if v is None or not np.isfinite(v) else f"{amount(100 * v)} pp"


def _table(header: list[str], rows: list[list[str]], caption: str = "") -> str:
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _designs_table(report: dict) -> str:
    """The chosen design(s): levers, then the held-out statistics, team KPIs and leakage."""
    cols = ([("ideal-tuned", report["ideal_tuned"]), ("robust (chosen)", report["robust"])]
            if "robust" in report else [("chosen design", report["best"])])
    levers = list(dict.fromkeys(k for _, c in cols for k in c["levers"]))
    rows = [[f"lever <code>{html.escape(k)}</code>", *[_num(c["levers"].get(k)) for _, c in cols]]
            for k in levers]
    percent = in_percent(report)
    for key, label in STATS:
        rows.append([f"held-out {label} [95% CI]", *[_ci(c, key, percent) for _, c in cols]])
    rows.append(["annual headcount cost", *[_num(c["cost"]) for _, c in cols]])
    extra = [k for k in cols[-1][1] if k.startswith(("kpi_attainment_", "leaked_"))
             or k in ("won", "win_rate")]
    for k in extra:
        pct = k.startswith("kpi_attainment_") or k == "win_rate"
        rows.append([html.escape(k.replace("kpi_attainment_", "KPI attainment: ")
                                 .replace("leaked_", "leaked: ").replace("_", " ")),
                     *[(f"{c[k]:.0%}" if pct and c.get(k) is not None else _num(c.get(k)))
                       for _, c in cols]])
    return _table(["", *[html.escape(n) for n, _ in cols]], rows,
                  f"Held-out: {counted(report['held_out_scenarios'], 'fresh scenarios')} x "
                  f"{counted(report['replications'], 'replications')}, {report['outcome']}")


def optimize_summary(result, best, cmp, settings, shares: frozenset[str] = frozenset()) -> dict:
    """comparison.json: the search's terms and counts, the chosen design, the candidates and
    the baselines on the held-out scenarios, what breaks the chosen design, and with
    `cmp` (--compare-ideal) the ideal-tuned design against the robust one."""
    from gtmsim.optimize.breaks import default_target, what_breaks
    from gtmsim.optimize.compare import against_own, paired_difference
    from gtmsim.optimize.compare import describe as describe_candidate
    from gtmsim.optimize.search import trial_counts

    target = settings.target if settings.target is not None else default_target(best.held_out)
    breaks = cmp.breaks if cmp is not None else what_breaks(best.held_out, result.held_out,
                                                           target)
    from gtmsim.outcomes import in_percent as outcome_in_percent

    # the study the files come from: two --study-name runs into one --out each replace them
    report = {"study": result.study.study_name, "objective": settings.objective,
              "outcome": settings.outcome,
              # a share or an attainment in %, its differences in points, as compare's
              "outcome_in_percent": outcome_in_percent(settings.outcome, shares),
              "target": settings.target,
              # with --compare-ideal the short baseline search gives way to a full one;
              # either way the trials its study finished, whatever --ideal-trials now says
              "ideal_trials": (result.ideal_trials if cmp is None
                               else trial_counts(cmp.ideal.study)["trials"]),
              **trial_counts(result.study), "scenarios": settings.scenarios,
              "held_out_scenarios": len(result.held_out), "replications": settings.replications,
              "best": describe_candidate(best, settings.outcome, shares),
              "candidates": [describe_candidate(c, settings.outcome, shares)
                             for c in result.candidates],
              "what_breaks_it": {"target": target, "words": breaks.words(),
                                 "target_from": ("--target" if settings.target is not None
                                                 else "90% of the chosen design's held-out "
                                                 "median (--target sets it)")}}
    own = next((c for c in result.candidates if c.own), None)
    chosen = cmp.robust_best if cmp is not None else best
    if own is not None:
        report["own"] = describe_candidate(own, settings.outcome, shares)
        report["chosen_minus_own"] = {
            k: {"diff": d, "ci_low": lo, "ci_high": hi}
            for k, (d, lo, hi) in paired_difference(own.held_out, chosen.held_out).items()}
        report["against_own"] = against_own(report["chosen_minus_own"], own is chosen,
                                            settings.outcome, shares)
    if cmp is not None:
        report["ideal_tuned"] = describe_candidate(cmp.ideal_tuned, settings.outcome, shares)
        report["robust"] = describe_candidate(cmp.robust_best, settings.outcome, shares)
        report["difference_robust_minus_ideal"] = {
            k: {"diff": d, "ci_low": lo, "ci_high": hi}
            for k, (d, lo, hi) in cmp.difference.items()}
        report["verdict"] = cmp.verdict()
    return report


def ideal_words(report: dict) -> str:
    """One line on the baseline a short search under `ideal` chose, or "" without one (with
    --compare-ideal the verdict sets the full search's winner against the robust design)."""
    tuned = next((c for c in report.get("candidates", ()) if c.get("ideal_tuned")), None)
    if tuned is None or "robust" in report:
        return ""
    n = counted(report.get("ideal_trials") or 0, "trials")
    if tuned.get("own"):
        return (f"The short search under ideal ({n}) found no design better than the config's "
                "own: the ideal-tuned baseline is the own design.")
    # trial -1 is no trial: the search never ran it (fewer trials than baselines)
    which = (f" is trial {tuned['trial']}" if tuned["trial"] >= 0 else
             ", not run by the search")
    return (f"The ideal-tuned baseline (the best of {n} under ideal){which}: held-out mean "
            f"{_figure(tuned['mean'], in_percent(report))} with these people.")


def _candidates_table(report: dict) -> str:
    """The candidates' held-out statistics; by regret, also each one's regret on the search's
    scenarios (what chose the design) and on the held-out ones; by satisficing, the share of
    held-out scenarios where each meets the target."""
    chosen = report["best"]["levers"]
    objectives = str(report["objective"]).split(",")
    by_regret, by_target = "regret" in objectives, "satisficing" in objectives
    percent = in_percent(report)
    rows = []
    for c in report["candidates"]:
        # a baseline the search never ran (trial -1) is named by its role alone: the
        # ideal-tuned one was "config's own design: the ideal-tuned baseline"
        ran = c["trial"] >= 0
        label = (f"trial {c['trial']}: the config's own design" if ran and c.get("own") else
                 "the config's own design" if c.get("own") else
                 f"trial {c['trial']}" if ran else "")
        if c.get("ideal_tuned"):
            label += (", also the ideal-tuned baseline" if c.get("own") else
                      ": the ideal-tuned baseline" if ran else "the ideal-tuned baseline")
        if not ran:
            label += " (not run by the search)"
        if c["levers"] == chosen:
            label = f"<b>{label} (chosen)</b>"
        regrets = ([_shortfall(c.get("search_regret"), percent),
                    _shortfall(c.get("regret"), percent)] if by_regret else [])
        share = c.get("satisficing")
        met = ["-" if share is None else f"{share:.0%}"] if by_target else []
        rows.append([label, *[_ci(c, k, percent) for k, _ in STATS], *regrets, *met,
                     _num(c["cost"])])
    extra = ["regret (search)", "held-out regret"] if by_regret else []
    if by_target:
        extra.append("held-out scenarios meeting the target")
    caption = ("The top designs of the search (and the baselines), re-evaluated on the "
               "held-out scenarios")
    if by_regret:
        caption += "; regret is the largest shortfall against the best candidate in a scenario"
    if by_target:
        caption += (f"; the target is {_figure(report.get('target'), percent)} "
                    f"{report['outcome']}")
    return _table(["design", *[f"held-out {label}" for _, label in STATS], *extra,
                   "annual cost"],
                  rows, caption)


# --------------------------------------------------------------------------- figures


def _label(c, best, cmp) -> str:
    """A candidate as the table names it: its trial and its roles (own design, the
    ideal-tuned baseline), so each box has its row."""
    tuned = c.ideal_tuned or (cmp is not None and c is cmp.ideal_tuned)
    roles = ", ".join(r for r, on in (("own design", c.own), ("ideal-tuned", tuned)) if on)
    name = roles if c.trial < 0 else f"trial {c.trial}" + (f" ({roles})" if roles else "")
    return f"{name} (chosen)" if c is best else name


def _candidates_figure(result, best, cmp, outcome: str, percent: bool = False):
    import plotly.graph_objects as go

    fig = go.Figure()
    if percent:  # a share or an attainment in %, as run draws a rate
        fig.update_yaxes(tickformat=percent_ticks(
            [v for c in result.candidates for v in np.asarray(c.held_out, dtype=float)]))
    for c in result.candidates:
        chosen = c is best
        fig.add_trace(go.Box(y=np.asarray(c.held_out, dtype=float).tolist(),
                             name=_label(c, best, cmp), boxpoints="all", jitter=0.3,
                             marker_color="#c0392b" if chosen else "#2c3e50"))
    fig.update_layout(title=plain(f"Held-out {outcome} of each candidate design (one point "
                                  "per scenario)"), showlegend=False, height=380,
                      yaxis_title=plain(outcome))
    return fig


def _ideal_vs_robust_figure(report: dict, cmp, outcome: str, percent: bool = False):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    ideal = np.asarray(cmp.ideal_tuned.held_out, dtype=float)
    robust = np.asarray(cmp.robust_best.held_out, dtype=float)
    fig = make_subplots(rows=1, cols=2, column_widths=[0.6, 0.4], subplot_titles=(
        plain(f"{outcome} per held-out scenario"), "robust minus ideal-tuned (paired, 95% CI)"))
    for name, x, color in (("ideal-tuned", ideal, "#7f8c8d"), ("robust", robust, "#c0392b")):
        fig.add_trace(go.Histogram(x=x.tolist(), name=name, opacity=0.6, marker_color=color,
                                   nbinsx=max(5, min(30, len(x)))), row=1, col=1)
    # a share's or an attainment's differences in percentage points, as the verdict's
    scale = 100.0 if percent else 1.0
    diff = {k: {s: None if v is None else scale * v for s, v in d.items()}
            for k, d in report["difference_robust_minus_ideal"].items()}
    keys = [k for k, _ in STATS if k in diff]
    d = [diff[k]["diff"] for k in keys]
    fig.add_trace(go.Bar(
        x=[dict(STATS)[k] for k in keys], y=d, name="difference", showlegend=False,
        marker_color=["#27ae60" if v > 0 else "#c0392b" for v in d],
        error_y=error_bars([diff[k] for k in keys])),
        row=1, col=2)
    fig.add_hline(y=0.0, line_color="black", line_width=1, row=1, col=2)
    if percent:
        fig.update_xaxes(tickformat=percent_ticks([*ideal, *robust]), row=1, col=1)
        fig.update_yaxes(ticksuffix=" pp", row=1, col=2)
    fig.update_layout(barmode="overlay", height=380,
                      title="The design tuned for ideal people against the robust design, "
                            "both run by these people on the held-out scenarios")
    return fig


def _optuna_figures(study, objectives: list[str], label: str, importance: bool = True
                    ) -> tuple[dict, list[str]]:
    """The Pareto front (two objectives), history and importance by name ("pareto_front",
    "history", "importance"); notes where one can't be drawn."""
    import optuna
    import optuna.visualization as vis

    from gtmsim.optimize.search import is_feasible, main_objective

    figs, notes = {}, []
    multi = len(study.directions) > 1
    # the objective the chosen design is ranked by (not cost, even when named first)
    main = main_objective(objectives) if multi else 0
    target = (lambda t: t.values[main]) if multi else None
    # Optuna's importance (PED-ANOVA) reads a target as one to minimise: given the outcome
    # itself it ranked what sets the worst designs apart; a maximised outcome goes negated
    down = multi and study.directions[main] == optuna.study.StudyDirection.MAXIMIZE
    ranked = (lambda t: -t.values[main]) if down else target
    name = objectives[main]
    if name == "regret":  # regret needs every design: the search scores each by its mean
        name = "mean (regret's stand-in during the search)"
    # over-budget and refused trials are told a placeholder score without a simulation:
    # importance over them would rank what drives cost over the budget, not the outcome
    complete = [t for t in study.trials if is_feasible(t)]
    within = optuna.create_study(directions=study.directions)
    within.add_trials(complete)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if multi:
            try:
                # the simulated trials: a placeholder's worst values stretched the axis to 0
                fig = _pareto_front(complete, within, objectives)
                left = sum(t.state.name == "COMPLETE" for t in study.trials) - len(complete)
                fig.update_layout(title=_wrapped(
                    f"Pareto front{label}: {objectives[0]} against {objectives[1]}",
                    ["the best trials are highlighted",
                     *([f"{left} over the budget or refused by the model, not simulated, "
                        "left out"] if left > 0 else [])]))
                figs["pareto_front"] = fig
            except Exception as exc:  # noqa: BLE001 - a figure, never the run, may fail
                notes.append(f"No Pareto front{label}: {_reason(exc)}.")
        try:
            fig = vis.plot_optimization_history(study, target=target, target_name=name)
            # Optuna plots finished trials only: the pruned ones are said, not drawn
            pruned = sum(t.state.name == "PRUNED" for t in study.trials)
            notes_here = ([f"{counted(pruned, 'trials')} pruned before they finished, not "
                           "plotted"] if pruned else [])
            off = _scale_to_simulated(fig, study, complete, target)
            _tick_whole_trials(fig, [x for trace in fig.data for x in (trace.x or ())])
            # on two lines: in one, the search tuned for ideal people's ran past the PNG's width
            fig.update_layout(title=_wrapped(f"Optimisation history{label}: {name} of each "
                                             "trial", notes_here + ([off] if off else [])))
            figs["history"] = fig
        except Exception as exc:  # noqa: BLE001
            notes.append(f"No optimisation history{label}: {_reason(exc)}.")
        levers = {k for t in complete for k in t.params}
        if not importance:
            pass
        elif len(levers) < 2:
            notes.append(f"No lever importance{label}: the study searched "
                         f"{len(levers)} lever(s); importance ranks two or more.")
        elif len(complete) < 4:
            notes.append(f"No lever importance{label}: only {len(complete)} trial(s) completed "
                         "within the budget (importance needs at least 4).")
        else:
            try:
                # asked for by name, so the title names the method behind the bars (fANOVA,
                # which it said before Optuna 5 changed the default, needs scikit-learn)
                fig = vis.plot_param_importances(
                    within, evaluator=optuna.importance.PedAnovaImportanceEvaluator(),
                    target=ranked, target_name=name)
                fig.update_layout(title=_wrapped(
                    f"Lever importance{label} for {name}",
                    [f"PED-ANOVA: what sets the best 10% apart, over {len(complete)} completed "
                     "trials within the budget"]))
                figs["importance"] = fig
            except Exception as exc:  # noqa: BLE001
                notes.append(f"No lever importance{label}: {_reason(exc)}.")
    return figs, notes


def _pareto_front(simulated: list, within, objectives: list[str]):
    """The simulated trials over the two objectives, the Pareto-best of them in red, each
    named and coloured by its number in the study. Optuna's plot of `within` (the simulated
    trials copied into a fresh study, which numbers them anew from 0) named trial 2 'trial 1',
    unlike the history and the candidates table."""
    import plotly.colors as pc
    import plotly.graph_objects as go

    # `within` holds `simulated` in order: its trial i is simulated[i]
    best = {simulated[t.number].number for t in within.best_trials}
    numbers = [t.number for t in simulated] or [0]
    fig = go.Figure()
    # the palest quarter of a scale is cut: at its bottom, the lowest trial was all but white
    for front, scale, bar, x in ((False, pc.sequential.Blues[3:], "Trial", 1.0),
                                 (True, pc.sequential.Reds[3:], "Best trial", 1.12)):
        trials = [t for t in simulated if (t.number in best) == front]
        fig.add_trace(go.Scatter(
            x=[t.values[0] for t in trials], y=[t.values[1] for t in trials], mode="markers",
            showlegend=False, name=bar.lower(),
            text=["<br>".join([f"trial {t.number}", *(plain(f"{k}={v:.4g}" if isinstance(
                v, float) else f"{k}={v}") for k, v in t.params.items())]) for t in trials],
            hovertemplate=(f"%{{text}}<br>{plain(objectives[0])}=%{{x:,.4g}}<br>"
                           f"{plain(objectives[1])}=%{{y:,.4g}}<extra>{bar}</extra>"),
            marker={"color": [t.number for t in trials], "colorscale": scale,
                    "cmin": min(numbers), "cmax": max(numbers),
                    "line": {"width": 0.5, "color": "grey"},
                    "colorbar": {"title": {"text": bar}, "x": x, "xpad": 40,
                                 **_whole_ticks(numbers)}}))
    fig.update_layout(xaxis_title=plain(objectives[0]), yaxis_title=plain(objectives[1]))
    return fig


def _whole_ticks(numbers: list) -> dict:
    """Tick settings for an axis (or a colour bar) of trial numbers: trials are whole, yet
    plotly ticked a few of them at halves (0, 0.5, 1, 1.5 ...); one tick a trial where they
    span 20 or fewer, as run ticks its weeks, plotly's own choice beyond."""
    if not numbers or max(numbers) - min(numbers) > 20:
        return {}
    return {"dtick": 1, "tick0": 0}


def _tick_whole_trials(fig, numbers: list) -> None:
    """The x axis of trial numbers ticked at whole trials (`_whole_ticks`), half a trial of
    room either side so the first and the last are not cut in half."""
    ticks = _whole_ticks(numbers)
    if ticks:
        fig.update_xaxes(**ticks, range=[min(numbers) - 0.5, max(numbers) + 0.5])


def _wrapped(title: str, notes: list[str]) -> str:
    """A figure's title with its notes on a line of their own, in smaller type: on one line
    a long title was cut off at the figure's width."""
    return title + (f"<br><sub>{'; '.join(notes)}</sub>" if notes else "")


def _scale_to_simulated(fig, study, simulated: list, target) -> str:
    """Over-budget and refused trials carry the sampler's worst value, not a simulated one:
    plotted at it, they stretched the axis from 0 and flattened every real score. The y axis
    spans the simulated trials' values; returned, the note for the title that says how many
    are off the scale ("" when none are)."""
    values = [target(t) if target else t.value for t in simulated]
    values = [v for v in values if v is not None and np.isfinite(v)]
    placeholders = sum(1 for t in study.trials if t.state.name == "COMPLETE") - len(simulated)
    if not values or placeholders <= 0:
        return ""
    lo, hi = min(values), max(values)
    pad = 0.05 * (hi - lo) if hi > lo else 0.05 * max(abs(hi), 1.0)
    fig.update_yaxes(range=[lo - pad, hi + pad])
    return f"{placeholders} over the budget or refused by the model, not simulated: off the scale"


def _reason(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text.rstrip(".")


def _breaks_figure(report: dict, result, best, outcome: str, percent: bool = False):
    """The held-out scenarios over the two human or market factors that best separate
    failures; where every scenario meets the target (or none does), nothing separates
    them and the title says so, the axes two of the sampled factors."""
    import plotly.graph_objects as go

    scenarios = result.held_out
    names = sorted(scenarios[0].values) if scenarios else []
    if not names:
        return None
    from gtmsim.optimize.breaks import what_breaks

    target = report["what_breaks_it"]["target"]
    values = np.asarray(best.held_out, dtype=float)
    fail = values < target
    X = np.array([[s.values[k] for k in names] for s in scenarios])
    found = what_breaks(values, scenarios, target).rules  # the rule the page states
    rules = list(dict.fromkeys(r.parameter for r in found))

    def separation(j: int) -> float:
        if fail.all() or not fail.any():
            return 0.0
        span = X[:, j].max() - X[:, j].min()
        return abs(X[fail, j].mean() - X[~fail, j].mean()) / span if span > 0 else 0.0

    order = rules + sorted((n for n in names if n not in rules),
                           key=lambda n: -separation(names.index(n)))
    short = [plain(n.removeprefix("people.")) for n in order]
    fig = go.Figure()
    for flag, label, color in ((True, "fails", "#c0392b"), (False, "meets the target",
                                                            "#27ae60")):
        m = fail == flag
        if not m.any():  # its legend entry would name a colour no point has
            continue
        text = [plain(f"{outcome} {_figure(v, percent)}") for v in values[m]]
        x = X[m, names.index(order[0])]
        y = X[m, names.index(order[1])] if len(order) > 1 else values[m]
        fig.add_trace(go.Scatter(x=x.tolist(), y=y.tolist(), mode="markers", name=label,
                                 text=text, marker={"color": color, "size": 10}))
    for r in found:
        where = order.index(r.parameter)
        line = {"line_dash": "dot", "line_color": "#555",
                "annotation_text": plain(r.words().removeprefix(
                    r.parameter.removeprefix("people.")))}
        if where == 0:
            fig.add_vline(x=r.threshold, **line)
        elif where == 1:
            fig.add_hline(y=r.threshold, **line)
    title = ("What breaks the chosen design: held-out scenarios by the factors that "
             f"best separate failures (target {_figure(target, percent)})")
    if fail.all() or not fail.any():
        # with no failure (or nothing else) every factor separates them by 0: the axes are
        # the first two by name, which the title above said best separated failures
        title = _one_sided_title(fail, names, _figure(target, percent))
    fig.update_layout(
        title=title, showlegend=True,  # a lone trace's colour is named in the legend too
        xaxis_title=short[0], yaxis_title=short[1] if len(short) > 1 else plain(outcome),
        height=420)
    if len(order) == 1:
        fig.add_hline(y=target, line_dash="dash", annotation_text="target")
        if percent:  # the outcome on the y axis
            fig.update_yaxes(tickformat=percent_ticks([*values, target]))
    return fig


def _one_sided_title(fail: np.ndarray, names: list[str], target: str) -> str:
    """The what-breaks title where every held-out scenario meets the target, or none does:
    no factor separates failures, so the axes are sampled factors in name order."""
    n, met = len(fail), not fail.any()
    if n == 1:
        head = f"its one held-out scenario {'meets' if met else 'misses'} the target"
    elif n == 2:
        head = ("both held-out scenarios meet the target" if met
                else "neither held-out scenario meets the target")
    else:
        head = (f"all {n} held-out scenarios meet the target" if met
                else f"none of the {n} held-out scenarios meets the target")
    axes = ("the x axis is the one sampled factor" if len(names) == 1 else
            "the axes are the two sampled factors" if len(names) == 2 else
            f"the axes are the first two of the {len(names)} sampled factors by name")
    return _wrapped(f"What breaks the chosen design: {head} ({target})",
                    [f"no factor separates failures from the rest, so {axes}"])


# --------------------------------------------------------------------------- the page


class Figures(dict):
    """Figures by name in the page's order, with notes on those that could not be drawn."""

    notes: list[str]


def optimize_figures(report: dict, result, best, cmp=None, objectives: list[str] | None = None
                     ) -> Figures:
    """The report's plotly figures by name, in the page's order (`optimize --png` writes
    them): candidates, ideal_vs_robust (with --compare-ideal), pareto_front, history,
    importance (with --compare-ideal also history_ideal), what_breaks. Arguments as for
    optimize_report."""
    data = jsonable(report)
    outcome = report["outcome"]
    objectives = objectives or str(report["objective"]).split(",")
    percent = in_percent(data)
    figures = Figures(candidates=_candidates_figure(result, best, cmp, outcome, percent))
    notes: list[str] = []
    if cmp is not None:
        figures["ideal_vs_robust"] = _ideal_vs_robust_figure(data, cmp, outcome, percent)
        for study, names, suffix, label, imp in (
                (result.study, objectives, "", " (robust search)", True),
                (cmp.ideal.study, ["mean"], "_ideal", " (search tuned for ideal people)",
                 False)):
            f, n = _optuna_figures(study, names, label, imp)
            figures.update({k + suffix: v for k, v in f.items()})
            notes += n
    else:
        f, n = _optuna_figures(result.study, objectives, "")
        figures.update(f)
        notes += n
    breaks = _breaks_figure(data, result, best, outcome, percent)
    if breaks is None:
        notes.append("No scatter of what breaks the design: the profile has no uncertain "
                     "human-variability values, so the held-out scenarios differ only in "
                     "their seeds.")
    else:
        figures["what_breaks"] = breaks
    figures.notes = notes
    return figures


def optimize_report(report: dict, result, best, cmp=None, objectives: list[str] | None = None,
                    name: str = "", figures: Figures | None = None) -> str:
    """The whole page as one HTML string.

    `report` is the dict written to comparison.json; `result` the SearchResult whose
    candidates and held-out scenarios it describes, `best` the chosen Candidate, `cmp` the
    Comparison of --compare-ideal (or None); `objectives` the study's objective names;
    `figures` those of optimize_figures (drawn here when not given).
    """
    data = jsonable(report)
    outcome = report["outcome"]
    if figures is None:
        figures = optimize_figures(report, result, best, cmp, objectives)
    notes = figures.notes
    names = list(figures)
    breaks_at = names.index("what_breaks") if "what_breaks" in figures else len(names)
    # the rule in words goes just above its scatter
    parts = figures_html(figures.values())
    title = html.escape(f"gtmsim optimise: {name}" if name else "gtmsim optimise")
    sub = (f"Objective {report['objective']} of {outcome}; {trials_words(report)}, scored "
           f"on {counted(report['scenarios'], 'scenarios')} x "
           f"{counted(report['replications'], 'replications')}, re-evaluated on "
           f"{counted(report['held_out_scenarios'], 'held-out scenarios')}.")
    if refused_words(report):
        sub += " " + refused_words(report)
    if ideal_words(report):
        sub += " " + ideal_words(report)
    verdict = (f"<p class='verdict'><b>{html.escape(report['verdict'])}</b></p>"
               if "verdict" in report else "")
    wb = report["what_breaks_it"]
    breaks_words = (f"<p><b>What breaks the chosen design</b> (target "
                    f"{_figure(wb['target'], in_percent(data))} {html.escape(outcome)}, "
                    f"{html.escape(wb.get('target_from', '--target'))}): "
                    f"{html.escape(wb['words'])}.</p>")
    if "against_own" in report:
        verdict += f"<p class='verdict'>{html.escape(report['against_own'])}</p>"
    note_html = "".join(f"<p class='note'>{html.escape(n)}</p>" for n in notes)
    style = ("body{font-family:sans-serif;margin:2em;max-width:1100px}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
             "padding:3px 8px;text-align:right}td:first-child,th:first-child{text-align:left}"
             "caption{text-align:left;color:#555;padding:4px 0}.note{color:#666}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
            f"<style>{style}</style></head><body><h1>{title}</h1><p>{html.escape(sub)}</p>"
            + verdict + _designs_table(data) + parts[0] + _candidates_table(data)
            + "".join(parts[1:breaks_at]) + breaks_words + "".join(parts[breaks_at:])
            + note_html
            + "<script type='application/json' id='gtmsim-summary'>"
            + script_json(data) + "</script>"
            "</body></html>")
