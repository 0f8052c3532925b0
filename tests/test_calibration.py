"""The `realistic` profile is realistic: every published fact docs/model.md cites, measured
inside the simulator on the default config, lies inside the band the docs give for it.

The bands live in `gtmsim.calibration.BANDS` (one place, used by scripts/calibrate.py too).
The fast check runs 8 replications of the default window on 2 workers (about 30 s). The
lead-response ratio rests on rare events (a handful of leads qualified after a day's wait in
8 replications), so the fast check asks only that its 95% interval reach into the band; the
slow check, with 32 replications, asks the point value itself to lie inside.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gtmsim.calibration import BANDS, measure
from gtmsim.errors import GtmsimError

RARE = {"qualify_ratio_1h_24h_inbound"}
DOCS = Path(__file__).resolve().parents[1] / "docs" / "model.md"


@pytest.fixture(scope="module")
def measured():
    return measure(replications=8, workers=2)


@pytest.mark.parametrize("key", [k for k in BANDS if k not in RARE])
@pytest.mark.slow
def test_fact_inside_band(measured, key):
    b = BANDS[key]
    x = measured.values[key]
    assert b.holds(x), f"{key}: simulated {x:.4g}, published {b.published}, band " \
                       f"[{b.low}, {b.high}]"


@pytest.mark.parametrize("key", sorted(RARE))
def test_rare_event_fact_consistent_with_band(measured, key):
    b = BANDS[key]
    lo, hi = measured.intervals[key]
    assert measured.consistent(key), f"{key}: 95% interval [{lo:.3g}, {hi:.3g}] misses " \
                                     f"[{b.low}, {b.high}]"


@pytest.mark.slow
def test_rare_event_facts_inside_band_with_more_replications():
    m = measure(replications=32, workers=2, attrition_replications=4)
    for key in RARE:
        assert m.holds(key), (key, m.values[key], m.intervals[key])


def test_bands_are_honest_and_documented():
    """Every band has a published figure, a source and a stated tolerance, and docs/model.md
    lists it."""
    text = DOCS.read_text(encoding="utf-8")
    for key, b in BANDS.items():
        assert b.low < b.high and b.published and b.source and b.why, key
        assert f"`{key}`" in text, f"docs/model.md does not list the calibration fact {key}"


def _calibrate_script():
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "scripts" / "calibrate.py"
    spec = importlib.util.spec_from_file_location("calibrate_script", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def test_calibrate_script_refuses_a_bad_set_in_one_line(capsys):
    """scripts/calibrate.py follows the CLI's rule: a bad --set is one line and exit 2."""
    script = _calibrate_script()
    assert script.main(["--replications", "2", "--set", "people.latency.nope=1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("calibrate: error: people.latency.nope"), err


def test_calibrate_script_uses_the_cpus_it_may_run_on_by_default(monkeypatch):
    """--workers defaulted to 2 whatever the machine (run, simulate and sweep use the CPUs
    this process may run on); an explicit --workers is kept."""
    script = _calibrate_script()
    asked = []

    def measure(replications, workers, *rest):
        asked.append(workers)
        raise script.GtmsimError("stop here")

    monkeypatch.setattr(script, "measure", measure)
    monkeypatch.setattr(script, "usable_cores", lambda: 7)
    script.main(["--replications", "2"])
    script.main(["--replications", "2", "--workers", "3"])
    assert asked == [7, 3]


@pytest.mark.parametrize("argv, key", [(["--replications", "0"], "replications"),
                                       (["--replications", "1", "--seed", "-1"], "seed"),
                                       (["--replications", "1", "--workers", "0"], "workers")])
def test_calibrate_script_refuses_a_bad_number_in_one_line(capsys, argv, key):
    """--replications 0 and --seed -1 ended in a traceback (a process pool of no workers, a
    negative SeedSequence), --workers 0 only after the whole main run."""
    script = _calibrate_script()
    assert script.main([*argv, "--set", "run.horizon_days=5", "--set", "run.warmup_days=0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"calibrate: error: {key}: "), err


@pytest.mark.parametrize("argv, start", [(["--replications", "abc"], "--replications: invalid"),
                                         (["--replicatons", "3"], "unrecognized arguments")])
def test_calibrate_script_refuses_a_bad_flag_in_one_line(capsys, argv, start):
    """A flag argparse refuses printed its usage (three lines) before the error."""
    script = _calibrate_script()
    with pytest.raises(SystemExit) as info:
        script.main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"calibrate: error: {start}"), err


def test_calibrate_script_shows_a_small_ratio_as_it_is():
    """A qualify ratio of 0.79 (leads touched after a day qualified more) read '1x', its
    interval '1x - 1x', and 0.4 read '0x'."""
    fmt = _calibrate_script().fmt
    assert [fmt(x, "x") for x in (0.79, 0.4, 5.25, 87.3, 4157.0)] == [
        "0.79x", "0.4x", "5.2x", "87x", "4157x"]


def test_calibrate_script_names_what_another_config_lacks(capsys):
    """A config without the B2B SaaS names (product_led has no team 'sdr') is one line and
    exit 2 before anything runs; it ran the main measurement, then ended in polars'
    ColumnNotFoundError for attrition_sdr (a config with no 'inbound' channel: a ValueError)."""
    script = _calibrate_script()
    config = Path(__file__).resolve().parents[1] / "configs" / "product_led.toml"
    assert script.main(["--config", str(config), "--replications", "1", "--workers", "1",
                        "--set", "run.horizon_days=5", "--set", "run.warmup_days=0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("calibrate: error: teams.sdr: no team"), err


def test_qualify_ratio_is_undefined_when_no_lead_waited_a_day():
    """With no inbound lead first touched after 24 h (a 2-day run) there is no ratio: it read
    0x with an interval of 0x - 0x (a division by zero as numpy's inf), and raised
    ZeroDivisionError on plain numbers."""
    import math

    from gtmsim.calibration import _ratio_interval

    assert all(math.isnan(x) for x in _ratio_interval(4.0, 7.0, 0.0, 0.0))
    assert all(math.isnan(x) for x in _ratio_interval(0.0, 0.0, 1.0, 9.0))
    m = measure(replications=1, workers=1, overrides=("run.horizon_days=2", "run.warmup_days=0"),
                attrition_replications=1, attrition_years=1.0)
    key = "qualify_ratio_1h_24h_inbound"
    assert math.isnan(m.values[key]) and key not in m.intervals
    assert not m.holds(key) and not m.consistent(key)


@pytest.mark.slow
def test_sdr_attrition_interval_is_the_t_interval_and_none_from_one_run():
    """The attrition interval used 1.96 (not the t quantile of its few runs) and gave a
    zero-width interval from a single run, as if the figure were exact."""
    from scipy import stats

    from gtmsim import load_config, simulate
    from gtmsim.spec import compile_spec

    one = measure(replications=1, workers=1, attrition_replications=1, attrition_years=2.0)
    assert "sdr_attrition" not in one.intervals
    three = measure(replications=1, workers=1, attrition_replications=3, attrition_years=2.0)
    quiet = [f"channels.{n}.rate_per_week=0" for n in load_config().channels]
    cfg = load_config(None, "realistic", [*quiet, "run.warmup_days=0",
                                          f"run.horizon_days={2.0 * 365.0}"])
    att = simulate(compile_spec(cfg), 3, cfg.run.seed).replications["attrition_sdr"].to_numpy()
    half = stats.t.ppf(0.975, 2) * att.std(ddof=1) / 3 ** 0.5
    lo, hi = three.intervals["sdr_attrition"]
    assert three.values["sdr_attrition"] == pytest.approx(att.mean())
    assert hi - att.mean() == pytest.approx(half)
    assert lo == pytest.approx(max(0.0, att.mean() - half))


@pytest.mark.parametrize("years", [0, -1.0, 20, float("nan"), "3", True])
def test_a_bad_attrition_run_length_is_named_before_anything_runs(years, monkeypatch):
    """measure() checked its replication counts, workers and seed before running but not
    attrition_years: 0, 20 or NaN ran the whole main measurement first and then failed on
    run.horizon_days, a key the caller never set ('3' a TypeError); now one line naming
    attrition_years, before any replication."""
    from gtmsim import calibration
    from gtmsim.errors import ConfigError

    def no_run(*_a, **_k):
        raise AssertionError("a replication ran before the argument was checked")

    monkeypatch.setattr(calibration, "_one", no_run)
    monkeypatch.setattr(calibration, "simulate", no_run)
    with pytest.raises(ConfigError, match=r"^attrition_years: .*at most 10\.027 .*3,660 days"):
        measure(replications=1, workers=1, attrition_replications=1, attrition_years=years)


@pytest.mark.parametrize(("kwargs", "error", "words"), [
    # split into its characters: "--set: expected key.path=value, got 'r'"
    ({"overrides": "run.horizon_days=2"}, GtmsimError, r"^overrides: expected a list"),
    ({"replications": 2_000_000}, GtmsimError, r"^replications: must be at most 1000000"),
    ({"attrition_replications": 2_000_000}, GtmsimError,
     r"^attrition_replications: must be at most 1000000"),  # ran on, for hours
    ({"config": {"name": "x"}}, TypeError, r"^config: expected a Config, a path"),
])
def test_measure_names_a_bad_argument_before_anything_runs(kwargs, error, words, monkeypatch):
    from gtmsim import calibration

    def no_run(*_a, **_k):
        raise AssertionError("a replication ran before the argument was checked")

    monkeypatch.setattr(calibration, "_one", no_run)
    monkeypatch.setattr(calibration, "simulate", no_run)
    with pytest.raises(error, match=words):
        measure(**{"replications": 1, "workers": 1} | kwargs)


def test_measure_takes_a_loaded_config_as_its_file():
    """A loaded Config was refused ("path: expected a config file's path", an argument
    measure does not have): it measures what the same file and overrides measure."""
    from gtmsim import load_config

    short = ("run.horizon_days=2", "run.warmup_days=0")
    args = {"replications": 1, "workers": 1, "attrition_replications": 1,
            "attrition_years": 0.5}
    from_file = measure(**args, overrides=short)
    loaded = measure(**args, config=load_config(None, "realistic", list(short)))
    assert loaded.values == pytest.approx(from_file.values, nan_ok=True)
    with pytest.raises(GtmsimError, match="profile and overrides apply when a config is loaded"):
        measure(**args, config=load_config(), overrides=short)
