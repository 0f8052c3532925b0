"""What each human mechanism costs: the run with one mechanism off against the full run.

For every mechanism enabled in a config, the config is run again with only that mechanism
switched off, on the same replication seeds as the full run (common random numbers:
replication i draws from the same stream in both), and the outcome is compared replication by
replication. A mechanism's cost is the mean of the paired differences, off minus full: the
bookings (or other outcome) the organisation would gain were that human behaviour absent,
with a t-interval from the paired differences.

Asked for (`together=True`), two more rows: every mechanism off at once (``TOGETHER``: what
the people cost in all, the gap to ideal behaviour) and the ``INTERACTION``, that less the sum
of the costs one at a time, replication by replication: what the mechanisms cost only in
each other's company (a slow reply to a lead that was also misjudged and then forgotten).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import polars as pl

from gtmsim import outcomes as O
from gtmsim.config import MECHANISMS, Config, validate
from gtmsim.config.loader import need_config, set_path
from gtmsim.errors import GtmsimError, whole
from gtmsim.simulate import simulate
from gtmsim.spec import compile_spec

# replications per mechanism: enough to see a few-percent effect with paired seeds, cheap on
# the numba engine (13 mechanisms x 64 replications in seconds)
MAX_REPLICATIONS = 64
COLUMNS = ("mechanism", "outcome", "replications", "engine", "full_mean", "off_mean", "cost",
           "ci_low", "ci_high")

TOGETHER = "all together"  # every mechanism costed, off at once
INTERACTION = "interaction"  # TOGETHER less the sum of the costs one at a time

Progress = Callable[[int, int], None]


def enabled_mechanisms(config: Config) -> list[str]:
    """The human mechanisms switched on in `config`, in the schema's order."""
    return [m for m in MECHANISMS if getattr(config.people, m).enabled]


def without(config: Config, *mechanisms: str) -> Config:
    """`config` with these human mechanisms switched off (``people.<mechanism>.enabled``)."""
    raw = config.model_dump(by_alias=True, exclude_none=True)
    for mechanism in mechanisms:
        if mechanism not in MECHANISMS:
            raise GtmsimError(f"unknown mechanism {mechanism!r}; choose from "
                              f"{', '.join(MECHANISMS)}")
        set_path(raw, ["people", mechanism, "enabled"], False)
    return validate(raw)


def ideal(config: Config) -> Config:
    """`config` as the `ideal` profile runs it: every human mechanism off."""
    cfg = without(config, *MECHANISMS)
    cfg.profile = "ideal"
    return cfg


def paired_ci(diff: np.ndarray, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean of paired differences with its t-interval; NaN bounds below two pairs."""
    d = np.asarray(diff, dtype=float)
    mean = float(d.mean())
    if len(d) < 2:
        return mean, math.nan, math.nan
    sd = float(d.std(ddof=1))
    half = O.t_quantile(0.5 + confidence / 2, len(d) - 1) * sd / math.sqrt(len(d))
    return mean, mean - half, mean + half


def mechanism_costs(config: Config, n: int, seed: int, engine: str = "numba",
                    workers: int = 1, progress: Progress | None = None,
                    outcome: str = "bookings", full: pl.DataFrame | None = None,
                    mechanisms: list[str] | None = None,
                    together: bool = False,
                    off_runs: dict[str, pl.DataFrame] | None = None) -> pl.DataFrame:
    """Per enabled mechanism, the outcome with it off and its cost (off minus full, paired).

    Replications ``0 .. n-1`` with root `seed`, on `engine`. `full` may hold the full run's
    replications already (from the same engine and seed, replications 0 .. n-1 at least) to
    save running them again. Rows are sorted by cost, the costliest first; columns are
    ``COLUMNS``; ``replications`` counts the pairs where the outcome is defined in both runs
    (the others are left out). With `together` and two mechanisms or more, the ``TOGETHER``
    and ``INTERACTION`` rows follow (one more run; the interaction's `off_mean` is null, and
    it counts the replications where the outcome is defined in every run).
    `progress(done, total)` counts replications of the mechanism runs. A dict given as
    `off_runs` gets each run's replications by its row's label (``TOGETHER``: the design as
    it would run with ideal behaviour, which the run report sets beside the run).
    """
    # a path, a count given as text or a frame without the run's columns failed deep inside
    # (AttributeError, a '<' between str and int, polars' ColumnNotFoundError): each is named
    need_config(config)
    n = whole("replications", n, 1)
    if isinstance(mechanisms, str):  # its letters would be read as mechanisms one by one
        raise GtmsimError(f"mechanisms: expected a list of mechanism names, got the string "
                          f"{mechanisms!r}")
    mechs = enabled_mechanisms(config) if mechanisms is None else list(mechanisms)
    on = enabled_mechanisms(config)
    for i, mech in enumerate(mechs):  # before the full run, not after it and the mechanisms
        if mech not in MECHANISMS:
            raise GtmsimError(f"unknown mechanism {mech!r}; choose from {', '.join(MECHANISMS)}")
        # a repeat made a false interaction (all together = one of them off, so minus its
        # cost, with a CI); an off mechanism costs 0 whatever it would do
        if mech in mechs[:i]:
            raise GtmsimError(f"mechanisms: {mech!r} is named twice")
        if mech not in on:
            raise GtmsimError(f"mechanisms: {mech!r} is off in this config, so switching it "
                              f"off costs nothing; the mechanisms on: {', '.join(on) or 'none'}")
    spec = compile_spec(config)
    # the outcome is named before anything runs (a misspelt one failed in polars after the
    # full run): the columns of a replication's row are the model's, whatever it counts
    if not isinstance(outcome, str) or outcome not in O.outcome_names(spec):
        raise GtmsimError(f"outcome: no outcome column {outcome!r} in this model's results "
                          "(bookings, won, win_rate, a team's kpi_..., ...)")
    if full is None:
        full = simulate(spec, n, seed, engine, workers).replications
    elif not isinstance(full, pl.DataFrame):
        raise TypeError(f"full: expected the full run's replications (a polars DataFrame, "
                        f"res.replications), got {type(full).__name__}")
    elif missing := [c for c in ("replication", outcome) if c not in full.columns]:
        raise GtmsimError(f"full: no column {missing[0]!r}; expected the full run's "
                          "replications (res.replications) of this model")
    full = full.filter(pl.col("replication") < n).sort("replication")
    if full.height != n:
        raise GtmsimError(f"the full run has {full.height} of the {n} replications needed")
    base = full[outcome].to_numpy().astype(float)
    together = together and len(mechs) >= 2
    runs = [[m] for m in mechs] + ([mechs] if together else [])
    total = n * len(runs)
    rows, offs = [], []
    for k, off_now in enumerate(runs):
        def step(done: int, _n: int, k: int = k) -> None:
            if progress:
                progress(k * n + done, total)

        off = simulate(compile_spec(without(config, *off_now)), n, seed, engine, workers, step)
        values = off.replications.sort("replication")[outcome].to_numpy().astype(float)
        offs.append(values)
        label = off_now[0] if len(off_now) == 1 else TOGETHER
        if off_runs is not None:
            off_runs[label] = off.replications
        rows.append(_cost_row(label, outcome, engine, base, values, values - base))
    schema = {"mechanism": pl.Utf8, "outcome": pl.Utf8, "replications": pl.Int64,
              "engine": pl.Utf8, **{c: pl.Float64 for c in COLUMNS[4:]}}
    alone = rows[:len(mechs)]
    if together:
        # per replication: all off at once, less each one off alone
        diff = (offs[-1] - base) - sum(v - base for v in offs[:-1])
        rows.append(_cost_row(INTERACTION, outcome, engine, base, base, diff))
        rows[-1]["off_mean"] = None  # no run of its own: null, not a number
    # a mechanism with no defined pair has no cost (NaN): listed last, not first (polars
    # sorts NaN above every number) as if it were the costliest
    ranked = pl.DataFrame(alone, schema=schema).sort(pl.col("cost").is_nan(), pl.col("cost"),
                                                     descending=[False, True])
    return pl.concat([ranked, pl.DataFrame(rows[len(mechs):], schema=schema)])


def as_designed(together: pl.DataFrame, engine: str, full: pl.DataFrame | None = None,
                repeated: bool = False) -> dict:
    """The run with every mechanism off at once (the ``TOGETHER`` run's replications) in
    the terms the run report sets beside the run: the system's bookings and each team's KPI
    attainment, summarised as the run's are. Where a team meets its KPI with people as they
    are and as designed while the bookings fall far short of the design's, the value was lost
    in the interaction, not by a team.

    Given `full` (the run's replications on the same engine and seed, the same replication
    numbers at least), ``bookings_share`` is the run's bookings as a share of the design's,
    paired replication by replication (`ratio_ci`), so the two means are of the same
    replications, not of the run's N against the design's first few. `repeated` says that
    `full` is the run repeated on `engine` (a SimPy run's costs come from numba), which the
    share's words then say: it is not the share of the bookings the run printed."""
    columns = [c for c in together.columns
               if c == "bookings" or c.startswith("kpi_attainment_")]
    summary = O.summarize(together.select(columns)) if columns else None
    out = {"replications": together.height, "engine": engine,
           "summary": summary.to_dicts() if summary is not None else []}
    if full is not None and "bookings" in together.columns:
        ideal = together.sort("replication")
        run = full.filter(pl.col("replication").is_in(ideal["replication"].implode()))
        if run.height == ideal.height:
            num = run.sort("replication")["bookings"].to_numpy().astype(float)
            den = ideal["bookings"].to_numpy().astype(float)
            ok = np.isfinite(num) & np.isfinite(den)
            share, lo, hi = ratio_ci(num[ok], den[ok]) if ok.any() else (math.nan,) * 3
            # a share is 0 or more: the interval is cut there, as the summaries' are
            out["bookings_share"] = {"mean": share, "ci_high": hi, "n": int(ok.sum()),
                                     "ci_low": lo if math.isnan(lo) else max(lo, 0.0),
                                     "repeated": repeated}
    return out


def ratio_ci(num: np.ndarray, den: np.ndarray,
             confidence: float = 0.95) -> tuple[float, float, float]:
    """The ratio of two paired means, mean(num) / mean(den), with its interval by the delta
    method: the t-interval of the residuals num_i - r den_i, over mean(den). NaN where
    mean(den) is not positive; NaN bounds below two pairs."""
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    if len(den) == 0 or den.mean() <= 0:
        return math.nan, math.nan, math.nan
    ratio = float(num.mean() / den.mean())
    _, lo, hi = paired_ci((num - ratio * den) / den.mean(), confidence)
    return ratio, ratio + lo, ratio + hi


def _cost_row(label: str, outcome: str, engine: str, base: np.ndarray, values: np.ndarray,
              diff: np.ndarray) -> dict:
    """A row of the cost table: the paired differences `diff` where they are defined (a
    replication where the outcome is undefined in a run, a median cycle with no deal won, has
    no difference: left out, as the summary leaves it out)."""
    ok = ~(np.isnan(diff) | np.isnan(base))
    pairs = int(ok.sum())
    cost, lo, hi = paired_ci(diff[ok]) if pairs else (math.nan, math.nan, math.nan)
    return {"mechanism": label, "outcome": outcome, "replications": pairs, "engine": engine,
            "full_mean": float(base[ok].mean()) if pairs else math.nan,
            "off_mean": float(values[ok].mean()) if pairs else math.nan,
            "cost": cost, "ci_low": lo, "ci_high": hi}
