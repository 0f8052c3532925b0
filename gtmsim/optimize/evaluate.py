"""The batch evaluation the optimiser and sweeps use: a design over a scenario set."""

from __future__ import annotations

from typing import Any

import polars as pl

from gtmsim.config import Config
from gtmsim.errors import GtmsimError
from gtmsim.optimize.levers import apply_design
from gtmsim.optimize.scenarios import Scenario
from gtmsim.simulate import simulate
from gtmsim.spec import compile_spec


def evaluate(config: Config, design: dict[str, Any], scenarios: list[Scenario],
             replications: int, engine: str | None = None, workers: int | None = None
             ) -> pl.DataFrame:
    """One row per (scenario, replication): the design's outcomes. Scenario i always runs
    with its own seed, whatever the design: common random numbers. The engine is numba unless
    given."""
    if not scenarios:
        raise GtmsimError("scenarios: give at least one scenario to evaluate on")
    cfg = apply_design(config, design) if design else config
    frames = []
    for sc in scenarios:
        spec = compile_spec(cfg, sc.values)
        df = simulate(spec, replications, sc.seed, engine=engine, workers=workers).replications
        frames.append(df.with_columns(pl.lit(sc.index).alias("scenario")))
    return pl.concat(frames, how="diagonal")


def per_scenario(df: pl.DataFrame, outcome: str = "bookings") -> pl.DataFrame:
    """The outcome's mean over replications in each scenario, in scenario order."""
    if outcome not in df.columns:
        raise GtmsimError(f"outcome: no column {outcome!r} in the evaluation")
    return df.group_by("scenario").agg(pl.col(outcome).mean()).sort("scenario")
