"""Design levers: the config values a planner controls, read and set by path."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np

from gtmsim.config import Config, validate
from gtmsim.config.loader import _did_you_mean, check, get_path, need_config, set_path
from gtmsim.config.schema import Team
from gtmsim.errors import ConfigError


def current_design(config: Config) -> dict[str, Any]:
    """The config's own value of every lever."""
    need_config(config)
    config = check(config)  # it may have been changed since it was loaded (a lever's path)
    raw = config.model_dump(by_alias=True)
    return {name: get_path(raw, lever.path.split(".")) for name, lever in config.levers.items()}


def apply_design(config: Config, design: Mapping[str, Any]) -> Config:
    """The config with the design's lever values, validated (the budget is not checked here:
    for the optimiser it is a constraint, see `annual_cost`)."""
    need_config(config)
    if not isinstance(design, Mapping):
        raise TypeError(f"design: expected a mapping of lever name to value, got "
                        f"{type(design).__name__}")
    # it may have been changed since it was loaded: a lever added as a dict, or one whose path
    # leads nowhere (set_path would make a new, half-empty stage there and blame it)
    config = check(config)
    raw = config.model_dump(by_alias=True, exclude_none=True)
    for name, value in design.items():
        lever = config.levers.get(name)
        if lever is None:
            raise ConfigError(f"levers.{name}", "no such lever in the config"
                              f"{_did_you_mean(str(name), config.levers)}")
        if isinstance(value, np.generic):  # numpy's scalars of every kind (from a grid or an
            value = value.item()           # array): a bool, number or text like any other
        if lever.choices is not None:
            if value not in lever.choices:
                raise ConfigError(f"levers.{name}", f"{value!r} is not one of {lever.choices}")
            set_path(raw, lever.path.split("."), value)
            continue
        # a boolean is not a number
        if (isinstance(value, bool) or not isinstance(value, numbers.Real)
                or not math.isfinite(value)):
            raise ConfigError(f"levers.{name}", f"expected a number, got {value!r}")
        if not lever.low <= value <= lever.high:
            raise ConfigError(f"levers.{name}",
                              f"{value!r} is outside {lever.bounds()}")
        if lever.integer:
            if value != int(value):  # 6.5 heads is a mistake, not a 6 or a 7
                raise ConfigError(f"levers.{name}", f"expected a whole number, got {value!r}")
            value = int(value)
        set_path(raw, lever.path.split("."), value)
    designed = validate(raw)
    designed._own_people = config._own_people  # written out as the config's (design_*.toml)
    return designed


def annual_cost(config: Config) -> float:
    """Headcount cost a year: what the budget constrains."""
    need_config(config)
    if not all(isinstance(t, Team) for t in config.teams.values()):
        config = check(config)  # a team added as a dict since loading (0.8 ms, twice a trial)
    return float(sum(t.headcount * t.cost_per_head for t in config.teams.values()))


def budget_slack(config: Config) -> float:
    """Budget left (>= 0 is feasible); +inf when the config sets no budget."""
    budget = config.design.annual_budget
    return float("inf") if budget is None else budget - annual_cost(config)
