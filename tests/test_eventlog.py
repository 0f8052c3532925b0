"""The SimPy event log opens in a process-mining tool: pm4py reads the CSV that
`python -m gtmsim eventlog` writes, with its XES columns intact, and discovers a process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pm4py = pytest.importorskip("pm4py", reason="pm4py (a test extra) is not installed")
pd = pytest.importorskip("pandas")

XES = ("case:concept:name", "concept:name", "org:resource", "time:timestamp")


@pytest.fixture(scope="module")
def log_csv(tmp_path_factory) -> Path:
    """Three replications of a 20-day horizon after a 5-day warm-up, as CSV."""
    out = tmp_path_factory.mktemp("eventlog") / "log.csv"
    res = subprocess.run([sys.executable, "-m", "gtmsim", "eventlog", "--out", str(out),
                          "--replications", "3", "--set", "run.horizon_days=20",
                          "--set", "run.warmup_days=5"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    return out


@pytest.fixture(scope="module")
def source(log_csv):
    import polars as pl

    return pl.read_csv(log_csv, try_parse_dates=True)


@pytest.fixture(scope="module")
def frame(log_csv):
    """The log as pm4py takes it: a pandas frame, formatted by pm4py."""
    df = pd.read_csv(log_csv, dtype={"outcome": "string"}, keep_default_na=False)
    return pm4py.format_dataframe(df, case_id="case:concept:name",
                                  activity_key="concept:name", timestamp_key="time:timestamp")


def test_pm4py_keeps_cases_events_activities_and_resources(source, frame):
    assert frame.shape[0] == source.height > 1000
    for column in XES:
        assert column in frame.columns
    assert pd.api.types.is_datetime64_any_dtype(frame["time:timestamp"])
    assert frame["case:concept:name"].nunique() == source["case:concept:name"].n_unique()
    assert set(frame["concept:name"]) == set(source["concept:name"])
    assert {"mql_review", "sdr_qualify", "ae_close"} <= set(frame["concept:name"])
    assert frame["org:resource"].notna().all() and (frame["org:resource"] != "").all()
    assert set(frame["org:resource"]) == set(source["org:resource"])


def test_pm4py_event_log_traces_in_time_order(source, frame):
    log = pm4py.convert_to_event_log(frame)
    assert len(log) == source["case:concept:name"].n_unique()
    assert sum(len(trace) for trace in log) == source.height
    by_case = {}
    for row in source.iter_rows(named=True):
        by_case.setdefault(row["case:concept:name"], []).append(row)
    for trace in log:
        stamps = [e["time:timestamp"] for e in trace]
        assert stamps == sorted(stamps)  # increasing within each case
        rows = by_case[trace.attributes["concept:name"]]
        # the same activities, in the order the source file lists them
        assert [e["concept:name"] for e in trace] == [r["concept:name"] for r in rows]
        assert all(e["org:resource"] for e in trace)
    # each activity ends after it starts (pm4py's default start-timestamp column)
    assert (pd.to_datetime(frame["start_timestamp"], utc=True)
            <= pd.to_datetime(frame["time:timestamp"], utc=True)).all()


def test_pm4py_discovers_the_process(source, frame):
    activities = set(source["concept:name"])
    dfg, starts, ends = pm4py.discover_dfg(frame)
    assert {a for edge in dfg for a in edge} | set(starts) | set(ends) == activities
    # every case starts where its lead arrived: the entry stages of the three channels
    assert set(starts) == {"mql_review:arrived", "sdr_qualify:arrived", "ae_close:arrived"}
    net, _initial, _final = pm4py.discover_petri_net_inductive(frame)
    labels = {t.label for t in net.transitions if t.label is not None}
    assert labels == activities


def test_people_work_only_in_working_hours(source):
    """A person's activity starts in working time (Mon-Fri 09:00-17:00 in the default
    config): an item taken up at night, e.g. a retry that came due, starts at the next
    opening, not when it was taken (which showed a 0.1 h attempt as 12 h of work)."""
    import polars as pl

    # a leak is no one's work: it happens when it happens (a handoff at night), its team
    # as the resource
    people = source.filter(~pl.col("org:resource").is_in(["buyer", "customer"])
                           & ~pl.col("concept:name").str.ends_with(":leaked")
                           & ~pl.col("concept:name").str.ends_with(":arrived"))
    start = pl.col("start_timestamp")
    hour = start.dt.hour() + start.dt.minute() / 60 + start.dt.second() / 3600
    outside = people.filter((hour < 9) | (hour >= 17) | (start.dt.weekday() > 5))
    assert people.height > 1000
    assert outside.height == 0, outside.head()


def test_each_case_starts_where_and_when_its_lead_arrived(source):
    """A case began at its first finished activity (or a leak), so the time from a lead's
    arrival to its first touch, the lead-response figure the model is built around, could
    not be read from the log, nor a lead's channel. Each case now opens with one
    `<entry stage>:arrived` row, its channel as the resource, at its arrival; and
    `case:channel` carries the channel on every row (XES's case-attribute prefix)."""
    import polars as pl

    from gtmsim import load_config

    config = load_config(None, None, ["run.horizon_days=20", "run.warmup_days=5"])
    entry = {name: ch.entry for name, ch in config.channels.items()}
    first = source.group_by("case:concept:name", maintain_order=True).first()
    assert first.height == source["case:concept:name"].n_unique() > 1000
    assert (first["concept:name"] == first["org:resource"].replace_strict(entry)
            + ":arrived").all()
    assert (first["start_timestamp"] == first["time:timestamp"]).all()
    arrivals = source.filter(pl.col("concept:name").str.ends_with(":arrived"))
    assert arrivals.height == first.height  # one a case, as its first row
    assert (source["case:channel"] == source["case:concept:name"].replace_strict(
        dict(zip(first["case:concept:name"], first["org:resource"], strict=True)))).all()
    # first touch: an SDR's first attempt at an inbound lead comes after its arrival
    touched = source.filter(pl.col("concept:name") == "sdr_qualify:attempt").group_by(
        "case:concept:name").agg(pl.col("start_timestamp").min().alias("touch")).join(
        first.select("case:concept:name", arrived="time:timestamp"), on="case:concept:name")
    assert touched.height > 100 and (touched["touch"] >= touched["arrived"]).all()


def test_every_activity_has_an_outcome(source):
    """Each row says how the activity ended; a contact attempt says whether it reached the
    lead, and a contact stage's main task follows a reached attempt directly (attempt rows
    had an empty outcome)."""
    import polars as pl

    assert source.filter(pl.col("outcome").is_null() | (pl.col("outcome") == "")).height == 0
    attempts = source.filter(pl.col("concept:name") == "sdr_qualify:attempt")
    assert set(attempts["outcome"]) == {"reached", "no answer", "unreached"}
    before = {}
    mains = 0
    for row in source.iter_rows(named=True):
        case = row["case:concept:name"]
        if row["concept:name"] == "sdr_qualify":
            mains += 1
            assert before.get(case) == ("sdr_qualify:attempt", "reached"), row
        before[case] = (row["concept:name"], row["outcome"])
    assert mains > 100


@pytest.mark.parametrize("profile", ["realistic", "stressed"])
def test_each_fate_a_route_gives_is_in_its_cases_last_rows(profile):
    """Every lead a stage routes to a fate shows it in the log: the row where the routing
    happened names the outcome it was routed by (a main task's 'recycled' or 'rejected', a
    buyer's 'lost', a contact stage's last attempt 'unreached'), so the fates counted in the
    window are the log's rows mapped through the config's routes. The last unanswered
    attempt at a live lead read 'no answer', as every earlier one does and as a lead still
    between attempts when the run ends does: a process-mining tool could not tell those
    leads nurtured (or disqualified) from leads still open. No warm-up: every row counts."""
    import polars as pl

    from gtmsim import load_config, spec
    from gtmsim.simulate import simulate

    config = load_config(None, profile, ["run.horizon_days=30", "run.warmup_days=0"])
    sp = spec.compile_spec(config)
    res = simulate(sp, 2, 5, "simpy", 1, event_log=True)
    fates = {spec.NURTURE: "nurtured", spec.DISQUALIFIED: "disqualified",
             spec.LOST_FATE: "lost"}
    counted = {(r, f): 0 for r in range(2) for f in fates.values()}
    log = res.event_log
    for rep, activity, outcome in log.select("replication", "concept:name",
                                             "outcome").iter_rows():
        stage = activity.removesuffix(":attempt").removesuffix(":decision")
        if stage not in sp.stage_names or outcome not in spec.OUTCOMES:
            continue  # a handoff, a rework, a leak, a renewal, an answered attempt
        target = sp.route[sp.stage_names.index(stage)][spec.OUTCOMES.index(outcome)]
        if int(target) in fates:
            counted[rep, fates[int(target)]] += 1
    unreached = log.filter(pl.col("outcome") == "unreached")
    assert unreached.height > 0  # the case under test (SDRs send unreached leads to nurture)
    assert set(unreached["concept:name"]) == {"sdr_qualify:attempt"}
    for rep in range(2):
        row = res.replications.row(rep, named=True)
        for fate in fates.values():
            assert counted[rep, fate] == row[fate], (rep, fate)
