"""Scenarios: quasi-random draws of the profile's uncertain human-variability values and of
the config's uncertain market.

A parameter given as ``{value = 0.04, range = [0.02, 0.08]}`` is uncertain: scenarios sample
it across its range (Sobol or Latin hypercube, scipy.stats.qmc), while people within a run
still differ around the drawn value. The market's uncertain values are each channel's lead
volume (``channels.<channel>.rate_per_week``) and each close stage's win scale (``stages.<close
stage>.win_scale``: how many willing buyers pick us), uncertain under every profile (``ideal``
switches off the people's variability, not the market's). Each scenario carries a fixed seed,
so every candidate design meets the same people and the same market (common random numbers).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import qmc

from gtmsim.config import Config
from gtmsim.config.loader import check, need_config
from gtmsim.config.schema import Uncertain, market
from gtmsim.errors import SEED_MAX, GtmsimError, whole

MAX_SCENARIOS = 100_000
"""The most scenarios of one set: the Sobol points of more took numpy's MemoryError (2**40 asked
for 40 TiB), and each is run for every design."""


@dataclass(frozen=True)
class Scenario:
    index: int
    values: dict[str, float]  # "people.<mechanism>.<parameter>" -> drawn value
    seed: int


def uncertain_parameters(config: Config) -> dict[str, tuple[float, float]]:
    """Every uncertain value of an enabled mechanism and of the market: path -> (low, high)."""
    need_config(config)
    config = check(config)  # it may have been changed since it was loaded (a table added)
    out: dict[str, tuple[float, float]] = {}
    for path, value in market(config).items():
        if isinstance(value, Uncertain) and value.range[1] > value.range[0]:
            out[path] = (float(value.range[0]), float(value.range[1]))
    for mech in type(config.people).model_fields:
        table = getattr(config.people, mech)
        if not table.enabled:
            continue
        for name in type(table).model_fields:
            value = getattr(table, name)
            if isinstance(value, Uncertain) and value.range[1] > value.range[0]:
                out[f"people.{mech}.{name}"] = (float(value.range[0]), float(value.range[1]))
    return out


def draw_scenarios(config: Config, k: int, seed: int, method: str = "sobol",
                   first_seed_index: int = 0) -> list[Scenario]:
    """K scenarios; `first_seed_index` moves to fresh seeds (a held-out set)."""
    k = whole("scenarios", k, 1, MAX_SCENARIOS)
    seed = whole("seed", seed, 0, SEED_MAX)
    first_seed_index = whole("first_seed_index", first_seed_index, 0)
    if method not in ("sobol", "lhs"):  # also when nothing is uncertain and none is drawn
        raise GtmsimError(f"unknown scenario design {method!r}; choose sobol or lhs")
    params = uncertain_parameters(config)
    names = sorted(params)
    if names:
        if method == "sobol":
            sampler = qmc.Sobol(len(names), scramble=True, seed=seed + first_seed_index)
            m = int(np.ceil(np.log2(k)))
            unit = sampler.random_base2(m)[:k]
        else:
            unit = qmc.LatinHypercube(len(names), seed=seed + first_seed_index).random(k)
        lo = np.array([params[n][0] for n in names])
        hi = np.array([params[n][1] for n in names])
        points = qmc.scale(unit, lo, hi) if len(names) else unit
    else:
        points = np.zeros((k, 0))
    seeds = np.random.SeedSequence(seed, spawn_key=(first_seed_index,)).generate_state(
        k, dtype=np.uint32)
    return [Scenario(i, {n: float(points[i, j]) for j, n in enumerate(names)}, int(seeds[i]))
            for i in range(k)]
