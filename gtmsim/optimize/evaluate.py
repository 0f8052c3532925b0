"""The batch evaluation the optimiser and sweeps use: a design over a scenario set."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from gtmsim.config import Config
from gtmsim.errors import SEED_MAX, GtmsimError, whole
from gtmsim.optimize.levers import apply_design
from gtmsim.optimize.scenarios import Scenario
from gtmsim.simulate import simulate
from gtmsim.spec import compile_spec


def evaluate(config: Config, design: Mapping[str, Any] | None, scenarios: Sequence[Scenario],
             replications: int, engine: str | None = None, workers: int | None = None
             ) -> pl.DataFrame:
    """One row per (scenario, replication): the design's outcomes, with the scenario's index
    and seed (``scenario``, ``scenario_seed``: a held-out set numbers its scenarios from 0
    too). Scenario i always runs with its own seed, whatever the design: common random
    numbers. An empty or None design is the config's own. The engine is numba unless given."""
    if not isinstance(config, Config):
        raise TypeError(f"config: expected a Config (gtmsim.load_config(path)), got "
                        f"{type(config).__name__}")
    if not isinstance(scenarios, Sequence) or isinstance(scenarios, str):  # a count, say
        raise TypeError(f"scenarios: expected a list of Scenario objects (draw_scenarios), "
                        f"got {type(scenarios).__name__} {scenarios!r}")
    if not scenarios:
        raise GtmsimError("scenarios: give at least one scenario to evaluate on")
    bad = [sc for sc in scenarios if not isinstance(sc, Scenario)]
    if bad:
        raise TypeError(f"scenarios: expected Scenario objects (draw_scenarios), got "
                        f"{type(bad[0]).__name__}")
    seen: dict[int, int] = {}
    for i, sc in enumerate(scenarios):  # before any runs: the columns are 64-bit integers
        index = whole(f"scenarios[{i}].index", sc.index, 0, SEED_MAX)
        whole(f"scenarios[{i}].seed", sc.seed, 0, SEED_MAX)
        # rows are told apart by `scenario`: two scenarios of one index would be read as one
        # (per_scenario averaged them, so a robust statistic saw half the scenarios)
        if index in seen:
            raise GtmsimError(f"scenarios[{i}].index: {index} is also scenarios[{seen[index]}]'s "
                              "(a held-out set numbers its scenarios from 0 too): evaluate "
                              "each set on its own, or number them apart")
        seen[index] = i
    if design is not None and not isinstance(design, Mapping):  # [] would run as no design
        raise TypeError(f"design: expected a mapping of lever name to value, got "
                        f"{type(design).__name__}")
    cfg = apply_design(config, design) if design else config
    frames = []
    for sc in scenarios:
        spec = compile_spec(cfg, sc.values)
        df = simulate(spec, replications, sc.seed, engine=engine, workers=workers).replications
        frames.append(df.with_columns(pl.lit(sc.index, pl.Int64).alias("scenario"),
                                      pl.lit(sc.seed, pl.Int64).alias("scenario_seed")))
    return pl.concat(frames, how="diagonal")


def per_scenario(df: pl.DataFrame, outcome: str = "bookings") -> pl.DataFrame:
    """The outcome's mean over replications in each scenario, in scenario order. A
    replication where the outcome is undefined (NaN: a win rate with no decisions) is left
    out, as in a run's summary; a scenario where it is undefined in every replication is an
    error, since a design cannot be scored on it."""
    if outcome not in df.columns:
        raise GtmsimError(f"outcome: no column {outcome!r} in the evaluation")
    per = (df.group_by("scenario").agg(pl.col(outcome).fill_nan(None).mean())
           .sort("scenario"))
    empty = per.filter(pl.col(outcome).is_null())["scenario"].to_list()
    if empty:
        raise GtmsimError(f"--outcome {outcome}: undefined in every replication of scenario "
                          f"{empty[0]} (e.g. a rate with nothing to divide by); choose "
                          "another outcome or a longer run.horizon_days")
    return per
