"""What the terminal shows: a config in a paragraph (`validate`), a run's summary tables
(the system outcome, each team's KPI beside it, trust, what each mechanism costs) and the
optimize text (also its `comparison.txt`). The CLI prints them; nothing here computes a
result."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

from gtmsim.report.export import counted, days


def _volume(rate) -> str:
    """A channel's leads a week: the number, or the central value with the scenarios' range."""
    from gtmsim.config.schema import Uncertain

    if isinstance(rate, Uncertain):
        return f"{rate.value:g}/week, {rate.range[0]:g}-{rate.range[1]:g} over scenarios"
    return f"{rate:g}/week"


def _stage(name: str, stage) -> str:
    """A stage's kind and team, its SLA (which every handoff into it without its own SLA
    shares); for a close stage whose win scale is uncertain, its range."""
    from gtmsim.config.schema import Uncertain

    ws = stage.win_scale
    market = (f", win scale {ws.value:g}, {ws.range[0]:g}-{ws.range[1]:g} over scenarios"
              if stage.kind == "close" and isinstance(ws, Uncertain) else "")
    sla = f", SLA {stage.sla_hours:g} working hours" if stage.sla_hours is not None else ""
    return f"{name} [{stage.kind}, {stage.team}{sla}{market}]"


def _lever(name: str, lever) -> str:
    """A lever's name, the value it sets and what the search may set it to."""
    if lever.choices is not None:
        choices = [str(c).lower() if isinstance(c, bool) else str(c) for c in lever.choices]
        return f"{name} ({lever.path}: {', '.join(choices)})"
    low, high = ((int(lever.low), int(lever.high)) if lever.integer else (lever.low, lever.high))
    return f"{name} ({lever.path}: {low:g} to {high:g})"


def describe_config(config, spec=None) -> str:
    """A config in one paragraph: its name and description, teams, stages, channels, handoffs
    (with `spec`, every cross-team route: one not declared is a handoff too, by CRM drop),
    levers, people."""
    from gtmsim.config import MECHANISMS

    teams = ", ".join(f"{n} ({t.headcount})" for n, t in config.teams.items())
    stages = ", ".join(_stage(n, s) for n, s in config.stages.items())
    channels = ", ".join(f"{n} ({_volume(c.rate_per_week)} -> {c.entry})"
                         for n, c in config.channels.items())
    sla = {(h.source, h.target): f", SLA {h.sla_hours:g} working hours"
           for h in config.handoffs.values() if h.sla_hours is not None}
    handoffs = ", ".join(f"{h.source} -> {h.target} ({h.protocol}"
                         f"{sla.get((h.source, h.target), '')})"
                         for h in config.handoffs.values()) or "none"
    if spec is not None:
        from gtmsim.spec import PROTOCOLS

        protocol = {v: k for k, v in PROTOCOLS.items()}
        declared = {(h.source, h.target) for h in config.handoffs.values()}
        edges = [(spec.stage_names[a], spec.stage_names[b], protocol[int(p)])
                 for a, b, p in zip(spec.edge_from, spec.edge_to, spec.edge_protocol,
                                    strict=True)]
        handoffs = ", ".join(f"{a} -> {b} ({p}" + ("" if (a, b) in declared else
                                                   ", not declared")
                             + sla.get((a, b), "") + ")"
                             for a, b, p in edges) or "none"
    levers = ", ".join(_lever(n, lv) for n, lv in config.levers.items()) or "none"
    on = [m for m in MECHANISMS if getattr(config.people, m).enabled]
    people = (f"all {len(MECHANISMS)} human mechanisms on" if len(on) == len(MECHANISMS)
              else "every human mechanism off" if not on
              else f"{len(on)} of {len(MECHANISMS)} human mechanisms on ({', '.join(on)})")
    about = config.description.strip()
    about = f" {about}" + ("" if about.endswith((".", "!", "?")) else ".") if about else ""
    return (f"{config.name}.{about} Teams (headcount): {teams}. Stages: {stages}. "
            f"Channels: {channels}. Handoffs: {handoffs}. Design levers: {levers}. "
            f"Profile {config.profile!r}: {people}. Run: "
            f"{counted(config.run.replications, 'replications')} of "
            f"{days(config.run.horizon_days)} after a {config.run.warmup_days:g}-day warm-up, "
            f"seed {config.run.seed}.")


SYSTEM_ROWS = (
    ("Bookings (won value)", "bookings", "money"),
    ("Pipeline created", "pipeline_created", "money"),
    ("Leads created", "leads_created", "count"),
    ("Deals won", "won", "count"),
    ("Deals lost", "lost", "count"),
    ("Customers renewed", "retained", "count"),  # these two where a stage renews
    ("Customers churned at renewal", "churned", "count"),
    ("Win rate", "win_rate", "rate"),
    ("Sales cycle, median days", "cycle_days_median", "number"),
    ("Leads leaked, all causes", "leaked", "count"),
    ("  forgotten", "leaked_forgotten", "count"),
    ("  decayed (touched too late)", "leaked_decayed", "count"),
    ("  ignored (low trust)", "leaked_ignored", "count"),
    ("  lost in a handoff", "leaked_handoff", "count"),
    ("  lost in turnover", "leaked_turnover", "count"),
    ("Leads open at the end", "open_at_end", "count"),
    ("Rework hours", "rework_hours", "number"),
)
KPI_NAMES = {"passed": "{stage} passed", "won_value": "bookings", "won_count": "deals won",
              "retained": "retention"}


def fmt(value: float | None, kind: str) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    if kind == "rate":
        return f"{100 * value:.1f}%"
    if kind == "money" or (kind == "count" and abs(value) >= 100):
        return f"{value:,.0f}"
    if kind == "trust":
        return f"{value:.2f}"
    return f"{value:,.1f}"


def pm(row: dict | None, kind: str, total: int | None = None) -> str:
    """mean +- half-width of the 95% CI (the interval itself where it was cut: at 0, and a
    share's at 1); `[n of N]` when the outcome is defined in only n of the N replications (a median
    cycle with no deal won, a win rate with none decided), `- [0 of N]` in none."""
    if row is None:  # defined in no replication (a win rate with no deal decided)
        return "-" if total is None else f"- \\[0 of {total}]"
    text = fmt(row["mean"], kind)
    if row["n"] >= 2 and text != "-":
        low, mean, high = row["ci_low"], row["mean"], row["ci_high"]
        if math.isclose(high - mean, mean - low, rel_tol=1e-9, abs_tol=1e-12):
            text += f" ± {fmt((high - low) / 2, kind)}"
        else:
            text += f" ({fmt(low, kind)} to {fmt(high, kind)})"
    if total is not None and row["n"] < total:
        text += f" \\[{row['n']} of {total}]"  # \\[: a bracket, not rich markup
    return text


def crossing(source, handoff, closers: list[str], mean) -> str:
    """The share of the sender's decisions that cross a handoff: its pass rate where the
    qualified go on, the win rate where won deals do (per stage only with one close stage)."""
    if source.routes.qualified == handoff.target:
        return "passed " + fmt(mean(f"pass_rate_{handoff.source}"), "rate")
    if source.routes.won == handoff.target and closers == [handoff.source]:
        return "won " + fmt(mean("win_rate"), "rate")
    return "-"


def print_whole(console, table) -> None:
    """Print `table` with no number cut: each column at least as wide as its longest word, and
    the table, where a narrow terminal (COLUMNS=40) cannot hold it, wider than the terminal
    (which wraps its lines) rather than cropped. Squeezed, a KPI of 932,674 read '93…' and the
    columns at the right (util., queue) were cut off."""
    from rich.measure import Measurement
    from rich.table import Table
    from rich.text import Text

    if not isinstance(table, Table):  # a line of text wraps as it is
        console.print(table)
        return

    def longest(cell) -> int:
        """The widest word of `cell`, a line's indent counted with its first word."""
        widths = [0]
        for line in Text.from_markup(str(cell)).plain.splitlines():
            if words := line.split():
                indent = len(line) - len(line.lstrip())
                widths += [indent + Text(words[0]).cell_len, *(Text(w).cell_len for w in words[1:])]
        return max(widths)

    for column in table.columns:
        column.min_width = max(column.min_width or 0, longest(column.header),
                               *(longest(cell) for cell in column.cells))
    need = Measurement.get(console, console.options.update_width(10_000), table).minimum
    if need > console.width:
        console.print(table, width=need, crop=False)
    else:
        console.print(table)


def print_summary(config, summary, meta: dict, out: Path, console=None, costs=None,
                  designed: dict | None = None) -> None:
    """The run's story in tables: the system, each team's KPI beside it (and, given
    `designed` (mechanisms.as_designed), beside the design with ideal behaviour), trust, and
    (given `costs`) the bookings each human mechanism costs. Names are text, never rich
    markup: a team 's[b]r' is not cut to 'sr'."""
    from rich.markup import escape
    from rich.table import Table

    if console is None:
        from rich.console import Console

        console = Console()
    rows = {r["outcome"]: r for r in summary.to_dicts()}

    def mean(key: str) -> float | None:
        return rows[key]["mean"] if key in rows else None

    caption = (f"{counted(meta['replications'], 'replications')} of {days(meta['horizon_days'])}, "
               f"profile {escape(repr(meta['profile']))}, engine {meta['engine']}, "
               f"seed {meta['seed']}; "
               "± is the half-width of the 95% CI, (low to high) the CI where it was cut "
               "to the values an outcome can take (0 and up, a share at most 100%); "
               "\\[n of N]: defined in n replications only")
    system = Table(title=f"System outcome: {escape(config.name)}", caption=caption,
                   title_justify="left")
    for col in ("outcome", "mean ± 95% CI", "P10", "P90"):
        system.add_column(col, justify="left" if col == "outcome" else "right")
    renews = any(st.kind == "retain" for st in config.stages.values())
    for label, key, kind in SYSTEM_ROWS:
        if key in ("retained", "churned") and not renews:
            continue
        r = rows.get(key)  # every row is a column; none in the summary: defined nowhere
        system.add_row(label, pm(r, kind, meta["replications"]),
                       *(("-", "-") if r is None else (fmt(r["p10"], kind),
                                                       fmt(r["p90"], kind))))
        if key == "leaked_turnover":  # and where: the stages that leak
            for stage in config.stages:
                r = rows.get(f"leaks_at_{stage}")
                if r is not None and r["mean"] > 0:
                    system.add_row(f"  at stage {escape(stage)}",
                                   pm(r, "count", meta["replications"]),
                                   fmt(r["p10"], "count"), fmt(r["p90"], "count"))
    print_whole(console, system)

    caption = (f"the system: bookings {fmt(mean('bookings'), 'money')}, "
               f"win rate {fmt(mean('win_rate'), 'rate')}, "
               f"{fmt(mean('leaked'), 'count')} leads leaked")
    ideal = {r["outcome"]: r["mean"] for r in designed["summary"]} if designed else {}
    share = (designed or {}).get("bookings_share")
    if share and math.isfinite(share["mean"]):
        kpis = ", ".join(f"{escape(name)} {fmt(ideal[f'kpi_attainment_{name}'], 'rate')}"
                         for name in config.teams if f"kpi_attainment_{name}" in ideal)
        caption += (f"; {pm(share, 'rate')} of the bookings "
                    f"{fmt(ideal['bookings'], 'money')} its design makes with ideal behaviour "
                    f"(every human mechanism off, paired on the run's first "
                    f"{counted(designed['replications'], 'replications')}"
                    f"{' repeated' if share.get('repeated') else ''} on "
                    f"{designed['engine']}), where the KPIs are attained {kpis or '-'}")
    teams = Table(title="Each team's KPI beside the system outcome", title_justify="left",
                  caption=caption)
    for col in ("team", "paid on", "KPI", "target", "attainment", "util.", "queue"):
        # in 80 columns the long KPI names wrap, not the headers and numbers beside them
        teams.add_column(col, justify="left" if col in ("team", "paid on") else "right",
                         min_width=None if col == "paid on" else len(col),
                         overflow="fold" if col == "paid on" else "ellipsis")
    for name, team in config.teams.items():
        util = fmt(mean(f"util_{name}"), "rate")
        queue = fmt(mean(f"queue_{name}"), "number")
        if team.kpi is None:
            teams.add_row(escape(name), "-", "-", "-", "-", util, queue)
            continue
        kind = {"retained": "rate", "won_value": "money"}.get(team.kpi.metric, "count")
        teams.add_row(escape(name), escape(KPI_NAMES[team.kpi.metric].format(stage=team.kpi.stage)),
                      fmt(mean(f"kpi_{name}"), kind), fmt(mean(f"kpi_target_{name}"), kind),
                      pm(rows.get(f"kpi_attainment_{name}"), "rate", meta["replications"]),
                      util, queue)
    print_whole(console, teams)

    # every handoff: the declared ones, then each route between teams not declared (a CRM
    # drop, with a trust of its own in the results)
    handoffs = [(f"{hname}: {h.source} -> {h.target}", h)
                for hname, h in config.handoffs.items()]
    declared = {(h.source, h.target) for h in config.handoffs.values()}
    pairs = {f"trust_{a}->{b}": (a, b) for a in config.stages for b in config.stages}
    for key in rows:
        if key in pairs and pairs[key] not in declared:
            a, b = pairs[key]
            handoffs.append((f"{a} -> {b} (not declared)",
                             SimpleNamespace(source=a, target=b, protocol="crm_drop")))
    if handoffs:
        trust = Table(title="Trust per handoff at the end (0..1)", title_justify="left")
        for col in ("handoff", "protocol", "trust", "what crosses it"):
            trust.add_column(col, justify="left" if col in ("handoff", "protocol") else "right")
        closers = [n for n, st in config.stages.items() if st.kind == "close"]
        for label, h in handoffs:
            trust.add_row(escape(label), h.protocol,
                          pm(rows.get(f"trust_{h.source}->{h.target}"), "trust"),
                          crossing(config.stages[h.source], h, closers, mean))
        print_whole(console, trust)
    if costs is not None and costs.height:
        first = costs.row(0, named=True)
        # a SimPy run's costs come from the numba engine, its full run repeated there
        there = (f" on the {first['engine']} engine (the full run repeated there)"
                 if first["engine"] != meta["engine"] else "")
        from gtmsim.mechanisms import INTERACTION, TOGETHER

        rows = costs.to_dicts()
        alone = [r for r in rows if r["mechanism"] not in (TOGETHER, INTERACTION)]
        caption = (f"with it alone off, minus the full run, paired on "
                   f"{counted(first['replications'], 'replications')}{there}; negative: it adds")
        if len(alone) < len(rows):
            caption += (f". All together: the {len(alone)} off at once. Interaction: that, less "
                        "the sum of the costs alone (above 0: together they cost more than "
                        "one by one)")
        lost = Table(title=f"{first['outcome'].capitalize()} lost to each mechanism",
                     title_justify="left", caption=caption)
        for col in ("mechanism", "cost ± 95% CI"):
            lost.add_column(col, justify="left" if col == "mechanism" else "right")
        for r in rows:
            cost = fmt(r["cost"], "money")
            if r["ci_low"] is not None and math.isfinite(r["ci_low"]):
                cost += f" ± {fmt((r['ci_high'] - r['ci_low']) / 2, 'money')}"
            if r["mechanism"] == TOGETHER:
                lost.add_section()
            name = (f"all {len(alone)} together" if r["mechanism"] == TOGETHER
                    else r["mechanism"].replace("_", " "))
            lost.add_row(name, cost)
        print_whole(console, lost)
    console.print(f"Results in [bold]{escape(str(out))}[/bold]")


def bracket(ci, percent: bool = False) -> str:
    """ [low, high] (in % where `percent`), or nothing where there is no interval."""
    if ci is None or ci[0] is None or not math.isfinite(ci[0]):
        return ""
    from gtmsim.optimize.compare import figure

    return f" [{figure(ci[0], percent)}, {figure(ci[1], percent)}]"


def optimize_text(report: dict) -> str:
    from gtmsim.optimize.compare import figure
    from gtmsim.report.optimize import (
        ideal_words,
        in_percent,
        refused_words,
        regret_words,
        trials_words,
    )

    # a share or an attainment in % (25.2%), as run writes it; else an amount
    percent = in_percent(report)

    def amount(v: float) -> str:
        return figure(v, percent)

    lines = [f"Objective {report['objective']} of {report['outcome']}; "
             f"{trials_words(report)}, scored on {counted(report['scenarios'], 'scenarios')}, "
             f"re-evaluated on {counted(report['held_out_scenarios'], 'held-out scenarios')}."]
    if refused_words(report):
        lines.append(refused_words(report))
    if ideal_words(report):
        lines.append(ideal_words(report))
    columns = [("chosen by the search", report["best"])]
    if "robust" in report:
        columns = [("ideal-tuned", report["ideal_tuned"]), ("robust", report["robust"])]
    for label, c in columns:
        lines.append(f"{label}: held-out mean {amount(c['mean'])}"
                     f"{bracket(c['mean_ci'], percent)}, "
                     f"P10 {amount(c['p10'])}{bracket(c.get('p10_ci'), percent)}, "
                     f"CVaR10 {amount(c['cvar10'])}"
                     f"{bracket(c['cvar10_ci'], percent)}, annual cost {c['cost']:,.0f}")
        lines.append("  levers: " + ", ".join(f"{k}={v}" for k, v in c["levers"].items()))
        kpis = {k: v for k, v in c.items() if k.startswith("kpi_attainment_")}
        leaks = {k: v for k, v in c.items() if k.startswith("leaked_")}
        lines.append("  KPI attainment: " + ", ".join(
            f"{k.removeprefix('kpi_attainment_')} "
            f"{'-' if v is None or not math.isfinite(v) else format(v, '.0%')}"
            for k, v in kpis.items()))
        lines.append("  leaked: " + ", ".join(
            f"{k.removeprefix('leaked_')} {v:,.0f}" for k, v in leaks.items()))
    best = report["best"]
    if "regret" in report["objective"]:
        lines.append(regret_words(report))
    if "satisficing" in report["objective"]:
        lines.append(f"Held-out scenarios where the chosen design meets the target "
                     f"{amount(report['target'])}: {best['satisficing']:.0%}")
        if not any((c.get("search_score") or 0) > 0 for c in report["candidates"]):
            lines.append("  No design met the target in any of the search's scenarios; the "
                         "chosen one has the highest mean there.")
    if "against_own" in report:
        lines.append(report["against_own"])
    wb = report["what_breaks_it"]
    source = f", {wb['target_from']}" if wb.get("target_from") else ""
    lines.append(f"What breaks the chosen design (target {amount(wb['target'])}{source}): "
                 f"{wb['words']}")
    if "verdict" in report:
        lines.append(report["verdict"])
    return "\n".join(lines) + "\n"
