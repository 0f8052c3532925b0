"""Parameter sweeps: a grid of designs and profiles, each point run for R replications, on Dask.

A grid file (TOML) names the axes: design levers of the config (``sdr_headcount``), any config
value by its path (``"stages.sdr_qualify.sla_hours"``) and profiles, each with a list of
values or a range; the points are their full factorial or a Latin hypercube of N points::

    design = "factorial"          # or "lhs" (then `points = N`, and `seed` for the sampler)
    profiles = ["ideal", "realistic"]

    [levers]
    sdr_headcount = [3, 5, 8]
    mql_threshold = { range = [0.1, 0.6], steps = 3 }
    "stages.sdr_qualify.sla_hours" = [4.0, 24.0]

Work is split into tasks of (point, a chunk of replications). A task's numbers depend only on
its point's seed (derived from the root seed and the point index, or the root seed itself
with ``common_random_numbers = true``) and the replication indices, through
``simulate(..., first=k)``: never on which worker ran it or how the work was split. Each point
lands in its own parquet file, written atomically by the driver when its last chunk is in;
an interrupted sweep run again into the same folder skips the points already written.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import hashlib
import itertools
import json
import logging
import math
import os
import signal
import socket
import sys
import tempfile
import threading
import time
import tomllib
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from gtmsim.config import MECHANISMS, Config, load_config, validate
from gtmsim.config.loader import get_path, set_path, unreached_stages
from gtmsim.errors import (
    MAX_REPLICATIONS,
    SEED_MAX,
    ClusterLost,
    ConfigError,
    GtmsimError,
    TaskFailed,
    cannot_write,
    whole,
)
from gtmsim.mechanisms import enabled_mechanisms
from gtmsim.outcomes import outcome_names
from gtmsim.report.export import write_parquet
from gtmsim.simulate import ENGINES, simulate, usable_cores
from gtmsim.spec import ModelSpec, compile_spec

DEFAULT_CHUNK = 64  # replications per task: ~2-3 s of the default config on one core
GRID_KEYS = ("design", "points", "seed", "common_random_numbers", "profiles", "levers")
POINTS_DIR = "points"
MANIFEST = "sweep.json"

Progress = Callable[[int, int], None]


# --------------------------------------------------------------------------- the grid


@dataclass(frozen=True)
class Axis:
    """One dimension of the grid: a lever, a config path, or the profile."""

    name: str                    # as written in the grid: lever name, config path or "profile"
    path: str | None             # the config path it sets (None for the profile)
    values: tuple = ()           # the listed values (factorial, or categories for lhs)
    low: float | None = None     # a range (factorial with steps, or continuous for lhs)
    high: float | None = None
    steps: int | None = None
    integer: bool | None = None  # None: decided by the lever or the config value's type

    def factorial_values(self) -> list:
        if self.values:
            return list(self.values)
        if self.low == self.high:  # one value, however many steps (the size check counts
            return [int(self.low) if self.integer else self.low]  # it once when whole)
        vals = np.linspace(self.low, self.high, self.steps).tolist()
        if self.integer:  # whole steps (see _check_whole): rounding only takes off the ulps
            return list(dict.fromkeys(int(round(v)) for v in vals))
        # 12 significant digits: 0.3, not linspace's 0.30000000000000004, in the tables; a
        # value once, as listed values are (range = [0.3, 0.3] in 3 steps ran 0.3 thrice)
        return list(dict.fromkeys(float(f"{v:.12g}") for v in vals))

    def sample(self, u: float) -> Any:
        """The value at quantile `u` in [0, 1) of this axis (a Latin hypercube coordinate)."""
        if self.values:
            return self.values[min(int(u * len(self.values)), len(self.values) - 1)]
        if self.integer:
            lo, hi = int(self.low), int(self.high)
            return min(lo + int(u * (hi - lo + 1)), hi)
        return float(self.low + u * (self.high - self.low))

    def table(self) -> Any:
        """The axis as a grid file writes it under [levers] (profiles: the list); its name
        says what it sets (a lever's path is resolved from it when planned)."""
        values = [_plain(v) for v in self.values]
        if self.path is None:
            return values
        spec: dict[str, Any] = ({"values": values} if values
                                else {"range": [_plain(self.low), _plain(self.high)]})
        if self.steps is not None:
            spec["steps"] = _plain(self.steps)
        if self.integer is not None:
            spec["integer"] = _plain(self.integer)
        return spec


def _plain(value: Any) -> Any:
    """NumPy's scalars (np.arange's values, say) as the Python numbers a grid file gives."""
    return value.item() if isinstance(value, np.generic) else value


@dataclass
class Grid:
    source: str
    design: str                       # "factorial" or "lhs"
    axes: list[Axis]
    samples: int | None = None        # lhs points
    seed: int = 0                     # lhs sampler seed
    common_random_numbers: bool = False
    notes: tuple[str, ...] = ()       # values listed again, run once: `sweep` says so

    def points(self) -> list[dict[str, Any]]:
        """Axis name -> value, one dict per point, in a fixed order."""
        if not self.axes:
            return [{}]
        if self.design == "factorial":
            combos = itertools.product(*(a.factorial_values() for a in self.axes))
            return [dict(zip([a.name for a in self.axes], c, strict=True)) for c in combos]
        from scipy.stats import qmc

        unit = qmc.LatinHypercube(len(self.axes), seed=self.seed).random(self.samples)
        drawn = [tuple(a.sample(float(u[j])) for j, a in enumerate(self.axes)) for u in unit]
        # a point drawn again (categories and whole numbers repeat) runs once: as a second
        # point it was one design ranked 'ahead of the runner-up', itself
        return [dict(zip([a.name for a in self.axes], p, strict=True))
                for p in dict.fromkeys(drawn)]

    def table(self) -> dict[str, Any]:
        """The grid as its file writes it: `grid_from_table` reads it back the same."""
        raw: dict[str, Any] = {"design": self.design,
                               "common_random_numbers": self.common_random_numbers}
        if self.samples is not None:
            raw["points"] = _plain(self.samples)
        if self.design == "lhs" or self.seed != 0:  # a factorial grid's seed is refused
            raw["seed"] = _plain(self.seed)
        if not isinstance(self.axes, list | tuple):
            raise ConfigError(f"{self.source}: levers", f"expected a list of axes, got "
                              f"{self.axes!r}")
        for axis in self.axes:
            if not isinstance(axis, Axis):
                raise ConfigError(f"{self.source}: levers", f"expected an Axis, got {axis!r}")
            # a table keeps one of each name: the second would silently replace the first
            table, key = ((raw, "profiles") if axis.path is None
                          else (raw.setdefault("levers", {}), axis.name))
            if key in table:
                where = key if axis.path is None else f"levers.{key}"
                raise ConfigError(f"{self.source}: {where}", "an axis named twice; keep one")
            table[key] = axis.table()
        return raw

    def checked(self) -> Grid:
        """A copy checked as its file would be, its axes in this grid's order (a grid file
        lists the profiles first; a point's index, and so its seed, follows the order)."""
        grid = grid_from_table(self.table(), self.source)
        order = [a.name for a in self.axes]
        # a loaded grid's notes: its table lists each value once
        return replace(grid, axes=sorted(grid.axes, key=lambda a: order.index(a.name)),
                       notes=tuple(dict.fromkeys((*self.notes, *grid.notes))))


def _bad(where: str, message: str) -> ConfigError:
    return ConfigError(where, message)


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def load_grid(path: str | Path, design: str | None = None, samples: int | None = None) -> Grid:
    """Read and check a grid file; every problem is one ConfigError naming the key."""
    p = Path(path)
    src = str(p)
    if not p.is_file():
        raise _bad("--grid", f"{src} is a folder, not a grid file" if p.is_dir()
                   else f"no such grid file {src}")
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError:
        raise _bad(src, "not a text file (TOML must be UTF-8)") from None
    except OSError as exc:
        raise _bad(src, f"cannot read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise _bad(src, f"not valid TOML: {exc}") from None
    except RecursionError:  # tomllib recurses once per level of [ or {
        raise _bad(src, "cannot read: a value is nested too deeply") from None
    return grid_from_table(raw, src, design, samples)


def grid_from_table(raw: dict[str, Any], src: str, design: str | None = None,
                    samples: int | None = None) -> Grid:
    """A grid file's table, checked: every problem is one ConfigError naming the key."""
    for key in raw:
        if key not in GRID_KEYS:
            close = difflib.get_close_matches(key, GRID_KEYS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise _bad(f"{src}: {key}", f"unknown key{hint}; expected {', '.join(GRID_KEYS)}")
    design = design or raw.get("design", "factorial")
    if design not in ("factorial", "lhs"):
        raise _bad(f"{src}: design", f"expected 'factorial' or 'lhs', got {design!r}")
    if samples is None:
        samples = raw.get("points")
    if design == "lhs":
        if not isinstance(samples, int) or isinstance(samples, bool) or samples < 1:
            raise _bad(f"{src}: points", "a Latin hypercube needs points = N (a whole "
                       f"number >= 1), got {samples!r}")
    else:  # the Latin hypercube's keys: in a factorial grid they would be silently ignored
        if samples is not None:
            raise _bad(f"{src}: points", "a factorial grid runs every combination of its "
                       "axes' values, so points has no meaning there; remove it, or give "
                       "design = 'lhs' for a Latin hypercube of points = N")
        if "seed" in raw:
            raise _bad(f"{src}: seed", "seed is the Latin hypercube sampler's and a factorial "
                       "grid draws nothing; the simulations' seed is --seed")
    seed = raw.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise _bad(f"{src}: seed", f"expected a whole number >= 0, got {seed!r}")
    crn = raw.get("common_random_numbers", False)
    if not isinstance(crn, bool):
        raise _bad(f"{src}: common_random_numbers", f"expected true or false, got {crn!r}")
    axes: list[Axis] = []
    notes: list[str] = []
    profiles = raw.get("profiles")
    if profiles is not None:
        if (not isinstance(profiles, list) or not profiles
                or not all(isinstance(x, str) and x for x in profiles)):
            raise _bad(f"{src}: profiles", f"expected a list of profile names, got {profiles!r}")
        listed, again = _distinct(f"{src}: profiles", profiles)
        axes.append(Axis("profile", None, listed))
        notes += again
    levers = raw.get("levers", {})
    if not isinstance(levers, dict):
        raise _bad(f"{src}: levers", f"expected a table of lever = values, got {levers!r}")
    for name, spec in levers.items():
        axis, again = _axis(f"{src}: levers.{name}", name, spec, design)
        axes.append(axis)
        notes += again
    if not axes:
        raise _bad(src, "the grid names no levers and no profiles")
    size = samples if design == "lhs" else math.prod(_axis_size(a) for a in axes)
    if size > MAX_POINTS:
        raise _bad(f"{src}: points" if design == "lhs" else src,
                   f"the grid has {size:,} points, at most {MAX_POINTS:,}; use fewer steps "
                   "or values, or design = 'lhs' with points = N")
    return Grid(src, design, axes, samples if design == "lhs" else None, seed, crn,
                tuple(dict.fromkeys(notes)))


# A grid this large is a typo, not a sweep: refused before expanding. Planning validates and
# compiles every point up front (about 14 KB and 0.5 ms each): 20,000 points take ~10 s and
# ~300 MB before the first task; split a larger study into several sweeps.
MAX_POINTS = 20_000


def _axis_size(a: Axis) -> int:
    """The number of values a factorial axis takes (without building them)."""
    if a.values:
        return len(a.values)
    if a.low == a.high:  # one value however many steps, as factorial_values runs it
        return 1
    if a.integer:
        return min(a.steps, int(math.floor(a.high)) - int(math.ceil(a.low)) + 1)
    return a.steps


def _axis(where: str, name: str, spec: Any, design: str) -> tuple[Axis, list[str]]:
    """The axis of one [levers] entry, and a note for each value it lists again."""
    if name == "profile":
        raise _bad(where, "sweep profiles with the top-level key profiles = [...]")
    if isinstance(spec, list):
        spec = {"values": spec}
    if not isinstance(spec, dict):
        raise _bad(where, "expected a list of values or a table {range = [low, high], "
                   f"steps = N}}, got {spec!r}")
    extra = set(spec) - {"values", "range", "steps", "integer"}
    if extra:
        raise _bad(f"{where}.{sorted(extra)[0]}", "unknown key; expected values, range, "
                   "steps or integer")
    if "values" in spec and "range" in spec:
        raise _bad(where, "give values or range, not both")
    if "steps" in spec and "values" in spec:  # it would be silently ignored
        raise _bad(f"{where}.steps", "steps goes with a range, not with listed values")
    if "steps" in spec and design == "lhs":
        raise _bad(f"{where}.steps", "a Latin hypercube samples a range continuously, so "
                   "steps has no meaning there; list the values to sample from them, or "
                   "give design = 'factorial'")
    integer = spec.get("integer")
    if integer is not None and not isinstance(integer, bool):
        raise _bad(f"{where}.integer", f"expected true or false, got {integer!r}")
    if "values" in spec:
        vals = spec["values"]
        if not isinstance(vals, list) or not vals:
            raise _bad(where, f"expected a non-empty list of values, got {vals!r}")
        if any(isinstance(v, (dict, list)) for v in vals):
            raise _bad(where, "values must be numbers, strings or true/false")
        listed, again = _distinct(where, vals)
        return Axis(name, name, listed, integer=integer), again
    rng = spec.get("range")
    if (not isinstance(rng, list) or len(rng) != 2 or not all(_number(x) for x in rng)
            or rng[0] > rng[1]):
        raise _bad(f"{where}.range", f"expected [low, high] with low <= high, got {rng!r}")
    steps = spec.get("steps")
    if design == "factorial":
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
            raise _bad(f"{where}.steps", "a range in a factorial grid needs steps = N "
                       f"(a whole number >= 1), got {steps!r}")
        if steps == 1 and rng[0] < rng[1]:  # linspace's one step is the low end: the high
            raise _bad(f"{where}.steps", f"1 step of [{rng[0]}, {rng[1]}] runs only its low "
                       "end; a range's steps include both ends: give steps >= 2, or list "
                       "the one value")  # end, which the range promises, was dropped
    return Axis(name, name, (), float(rng[0]), float(rng[1]), steps, integer), []


def _distinct(where: str, values: Sequence) -> tuple[tuple, list[str]]:
    """The listed values, each once, and a note for each listed again: a point is one design,
    run once, but a value dropped without a word looked like a lost point (3 and 3.0 are one
    value). True and 1 are two values, not one (dict.fromkeys kept the first, so `[true, 1]`
    ran true alone, and the 1 was never refused as a number for a true/false value)."""
    kept: dict[tuple[bool, Any], Any] = {}
    notes = []
    for v in values:
        key = (isinstance(v, bool), v)
        if key not in kept:
            kept[key] = v
        else:
            first = kept[key]
            notes.append(f"{where}: {v!r} is listed more than once; it runs once"
                         if repr(first) == repr(v) else
                         f"{where}: {first!r} and {v!r} are one value; it runs once")
    return tuple(kept.values()), notes


# --------------------------------------------------------------------------- the plan


@dataclass
class Point:
    index: int
    values: dict[str, Any]    # axis name -> value (the profile under "profile")
    profile: str
    seed: int
    spec: ModelSpec = field(repr=False)
    digest: str               # hash of the point's resolved config, for resume checks
    # as an earlier gtmsim hashed it, with the config's run.seed and run.replications in it
    earlier_digest: str = ""


@dataclass
class Plan:
    grid: Grid
    points: list[Point]
    replications: int
    seed: int
    engine: str
    chunk: int
    columns: dict[str, pl.DataType]   # axis column -> dtype, the same in every point file
    config_name: str
    unreached: tuple[str, ...] = ()  # stages no lead reaches at any point (unreached_stages)
    mechanisms_on: tuple[str, ...] = ()  # the human mechanisms on at some point

    def tasks(self, point: Point) -> list[tuple[int, int]]:
        """(first replication, count) of each task of a point."""
        return [(f, min(self.chunk, self.replications - f))
                for f in range(0, self.replications, self.chunk)]

    def manifest(self, earlier: bool = False) -> dict:
        """What identifies the sweep's numbers (not where or how it runs); `earlier`: with
        the point digests an earlier gtmsim wrote (`Point.earlier_digest`)."""
        return {"config": self.config_name, "seed": self.seed,
                "replications": self.replications, "engine": self.engine,
                "design": self.grid.design,
                "common_random_numbers": self.grid.common_random_numbers,
                "points": [{"point": p.index, "seed": p.seed,
                            "config_digest": p.earlier_digest if earlier else p.digest,
                            "values": p.values} for p in self.points]}


def point_seed(root: int, index: int) -> int:
    """The seed of a point: from the root seed and the point index only. 63 bits, so that
    `run --seed` (and a config's run.seed, a TOML integer) takes it: a point reruns alone."""
    return int(np.random.SeedSequence(root, spawn_key=(index,)).generate_state(
        1, dtype=np.uint64)[0] >> np.uint64(1))


def plan_sweep(config_path: str | None, profile: str | None, overrides: Sequence[str],
               grid: Grid, replications: int | None = None, seed: int | None = None,
               engine: str = "numba", chunk: int = DEFAULT_CHUNK) -> Plan:
    """Every point's config, resolved and validated up front: bad input fails before work."""
    if engine not in ENGINES:
        raise ConfigError("--engine", f"unknown engine {engine!r}; choose from "
                          f"{', '.join(ENGINES)}")
    if not isinstance(grid, Grid):  # a grid file's path, say
        raise TypeError(f"grid: expected a Grid (load_grid(path)), got {type(grid).__name__}")
    # checked as its file would be, and copied: one built in code ran unchecked (design 'LHS'
    # as a Latin hypercube; a range without steps failed in numpy)
    grid = grid.checked()
    if profile is not None and any(a.name == "profile" for a in grid.axes):
        raise ConfigError("--profile", f"{grid.source} sweeps profiles; give --profile or the "
                          "grid's profiles, not both")
    if isinstance(overrides, str):  # its characters were read as overrides
        raise TypeError(f"overrides: expected a list of 'key.path=value' strings, got the "
                        f"string {overrides!r}")
    base = load_config(config_path, profile, list(overrides))
    bases = _profile_bases(config_path, overrides, grid, base)
    # the axes are resolved against this config (a lever's path, whole numbers or not) on
    # the copy made above: resolved in the caller's grid, they carried over to the next
    # config planned
    _check_axes(grid, base)
    # checked before run_sweep writes the plan: 2.5 replications made a sweep.json, then a
    # TypeError; a negative seed was NumPy's 'expected non-negative integer'
    reps = (whole("replications", replications, 1, MAX_REPLICATIONS)  # as --replications
            if replications is not None else base.run.replications)
    root = whole("seed", seed, 0, SEED_MAX) if seed is not None else base.run.seed
    chunk = whole("chunk", chunk, 1)
    points = []
    planned = []
    unreached: list[str] | None = None
    for i, values in enumerate(grid.points()):
        prof = values.get("profile", base.profile)
        cfg = _apply(bases[prof], grid, values, f"{grid.source}: point {i}")
        planned.append(cfg)
        unreached = [name for name in unreached_stages(cfg)  # an axis over a route reaches
                     if unreached is None or name in unreached]
        # the sweep's seed and replications are the manifest's own: in the digest too, a
        # resume given --replications 3 refused a sweep begun with --set run.replications=3
        same = cfg.model_copy(update={"run": cfg.run.model_copy(update={"seed": 0,
                                                                        "replications": 1})})
        s = root if grid.common_random_numbers else point_seed(root, i)
        points.append(Point(i, values, prof, s, compile_spec(cfg), _digest(same),
                            _digest(cfg)))
    on = _mechanisms_on(planned, grid)
    columns = {a.name: _dtype([p.values[a.name] for p in points]) for a in grid.axes}
    columns.setdefault("profile", pl.Utf8)
    return Plan(grid, points, reps, root, engine, chunk, columns, base.name,
                tuple(unreached or ()), tuple(m for m in MECHANISMS if m in on))


def _digest(config: Config) -> str:
    """A short hash of a resolved config: a resumed sweep's points must be the same models."""
    return hashlib.sha256(config.model_dump_json(by_alias=True).encode()).hexdigest()[:16]


def _profile_bases(config_path: str | None, overrides: Sequence[str], grid: Grid,
                   base: Config) -> dict[str, Config]:
    """The config under each of the grid's profiles, every one loaded before any point (a
    Latin hypercube may sample only some): an error names the grid's profiles key.

    A profile file named by a relative path is found beside the grid file, as a config's is
    beside the config; the config keeps the name as the grid wrote it, so its digest (what a
    resume checks) is the same from whichever folder the sweep runs."""
    bases: dict[str, Config] = {base.profile: base}
    for axis in grid.axes:
        if axis.name != "profile":
            continue
        for prof in axis.values:
            if prof in bases:
                continue
            where = prof
            if prof.endswith(".toml") and not Path(prof).is_absolute():
                where = str(Path(grid.source).parent / prof)
            try:
                cfg = load_config(config_path, where, list(overrides))
            except ConfigError as exc:  # the config loaded without it: the profile's fault
                message = exc.message if exc.path == "profile" else str(exc)
                raise ConfigError(f"{grid.source}: profiles", message) from None
            bases[prof] = cfg.model_copy(update={"profile": prof})
    return bases


def _check_axes(grid: Grid, config: Config) -> None:
    """Each axis names a lever or a config value; lever values lie within its bounds."""
    raw = config.model_dump(by_alias=True)
    levers = config.levers
    # a point's rows hold each axis's value in a column named after it, in place of an
    # outcome of that name (a lever named 'won' replaced the deals won, silently)
    spec = compile_spec(config)
    outcomes = {"point", "replication", "seed", *outcome_names(spec)}
    for axis in grid.axes:
        if axis.name in outcomes:
            raise ConfigError(f"{grid.source}: levers.{axis.name}",
                              f"{axis.name!r} is a result column of the sweep's rows, which "
                              "would hold the lever's value in its place; give the lever "
                              "another name")
    for i, axis in enumerate(grid.axes):
        if axis.path is None:
            continue
        where = f"{grid.source}: levers.{axis.name}"
        if axis.name in FIXED_PER_SWEEP:
            raise ConfigError(where, f"{axis.name} is not an axis: a sweep's seed and "
                              "replications are --seed and --replications (common_random_"
                              "numbers = true gives every point the same seed)")
        if axis.name == "run.horizon_days":
            raise ConfigError(where, "run.horizon_days is not an axis: outcomes counted over "
                              "different windows do not compare (the best point would be the "
                              "longest window); run a sweep per window, with --set "
                              "run.horizon_days=...")
        lever = levers.get(axis.name)
        if lever is None:
            if "." not in axis.name:
                hint = difflib.get_close_matches(axis.name, list(levers), n=1)
                raise ConfigError(where, f"no lever {axis.name!r} in the config"
                                  + (f" (did you mean {hint[0]!r}?)" if hint else "")
                                  + f"; levers: {', '.join(levers) or 'none'}"
                                  + _path_example(config))
            unseen = _unseen(axis.name, levers)
            if unseen:
                raise ConfigError(where, f"{axis.name} is not an axis: {unseen}")
            try:
                current = get_path(raw, axis.name.split("."))
            except KeyError as exc:
                raise ConfigError(where, f"not a lever, and no config value at "
                                  f"{exc.args[0]!r}") from None
            for v in list(axis.values) or [axis.low, axis.high]:
                _check_kind(where, v, current)
            whole_only = isinstance(current, int) and not isinstance(current, bool)
            _check_not_fractional(where, axis, whole_only)
            if axis.integer is None:
                grid.axes[i] = axis = Axis(axis.name, axis.path, axis.values, axis.low,
                                           axis.high, axis.steps, whole_only)
            _check_whole(where, axis)
            grid.axes[i] = _whole_values(axis)
            continue
        _check_not_fractional(where, axis, bool(lever.integer))
        integer = axis.integer if axis.integer is not None else bool(lever.integer)
        grid.axes[i] = axis = Axis(axis.name, lever.path, axis.values, axis.low, axis.high,
                                   axis.steps, integer)
        checks = list(axis.values) or [axis.low, axis.high]
        for v in checks:
            if lever.choices is not None:
                # not `v in choices`: 1 == true, so it took 1 for true
                if not any(isinstance(v, bool) == isinstance(c, bool) and v == c
                           for c in lever.choices):
                    if all(isinstance(c, bool) for c in lever.choices):
                        _check_kind(where, v, True)
                    raise ConfigError(where, f"{v!r} is not one of {lever.choices}")
            elif not _number(v):
                raise ConfigError(where, f"expected a number, got {v!r}")
            elif not lever.low <= v <= lever.high:
                raise ConfigError(where, f"{v!r} is outside the lever's bounds "
                                  f"{lever.bounds()}")
        _check_whole(where, axis)
        grid.axes[i] = _whole_values(axis)
    # two axes on one config value: only the later one was applied, each point labelled with
    # both values
    first: dict[str, str] = {}
    for axis in grid.axes:
        if axis.path is not None:
            if axis.path in first:
                raise ConfigError(f"{grid.source}: levers.{axis.name}",
                                  f"sets {axis.path}, as levers.{first[axis.path]} does; "
                                  "keep one of the two")
            first[axis.path] = axis.name


def _path_example(config: Config) -> str:
    """', or give a config path such as ...', with a path of this config (another config's
    stage names would not be there)."""
    for name, stage in config.stages.items():
        if stage.kind != "retain":  # a retain stage reads no threshold
            return f", or give a config path such as stages.{name}.threshold"
    for lever in config.levers.values():
        return f", or give a config path such as {lever.path}"
    return ", or give a config path (section.key)"


# A sweep's seed and replication count are its own (--seed, --replications), not the config's.
FIXED_PER_SWEEP = ("run.seed", "run.replications")


def _unseen(path: str, levers: dict) -> str | None:
    """Why a config path no simulation reads is not an axis (None if one reads it): its
    points ran the same model under different labels, and a report ranked them."""
    parts = path.split(".")
    if parts[0] == "levers" or parts[:2] == ["design", "annual_budget"]:
        hint = (f"; sweep the lever itself: {parts[1]} = [...]"
                if len(parts) > 2 and parts[1] in levers else "")
        return ("it bounds the optimiser's search (a lever's range, the budget) and changes "
                f"nothing a simulation sees{hint}")
    if parts[0] == "profiles":
        return ("a config's [profiles] are read when it loads, into its people values, so "
                "changing one changes nothing a simulation sees; sweep profiles with the "
                "grid's profiles = [...]")
    if parts[0] == "teams" and parts[-1] == "cost_per_head":
        return ("what a head costs moves no outcome of the model (the optimiser's budget "
                "reads it); set it in the config")
    return None


def _mechanisms_on(configs: list[Config], grid: Grid) -> set[str]:
    """The human mechanisms switched on at some point of the grid (by its profile, or an
    axis over people.<mechanism>.enabled); a people axis of one off at every point is
    refused: its values change nothing a simulation sees."""
    on = {m for cfg in configs for m in enabled_mechanisms(cfg)}
    for axis in grid.axes:
        parts = (axis.path or "").split(".")
        if parts[0] == "people" and len(parts) > 2 and parts[2] != "enabled" \
                and parts[1] not in on:
            raise ConfigError(f"{grid.source}: levers.{axis.name}",
                              f"{axis.name} is not an axis: {parts[1]} is off at every point "
                              "of the grid, so its values change nothing a simulation sees; "
                              f"sweep it where {parts[1]} is on (a profile that has it, or "
                              f"people.{parts[1]}.enabled = true)")
    return on


def _check_kind(where: str, value: Any, like: Any) -> None:
    """A true/false value takes true or false, and a number takes no true or false: each
    passed as the other (1 == true), to be refused point by point, or not at all."""
    if isinstance(like, bool) and not isinstance(value, bool):
        raise ConfigError(where, f"expected true or false, got {value!r}")
    if _number(like) and isinstance(value, bool):
        raise ConfigError(where, f"expected a number, got {value!r}")


def _check_not_fractional(where: str, axis: Axis, whole_only: bool) -> None:
    """`integer = false` on a value that takes whole numbers only: its fractions would be
    refused point by point ('point 0: ...: expected an integer, got 3.0')."""
    if axis.integer is False and whole_only:
        raise ConfigError(f"{where}.integer", "false, but this value takes whole numbers "
                          "only; leave integer out")


def _whole_values(axis: Axis) -> Axis:
    """An integer axis's listed values as ints: [2.0, 3.0] ran as 2 and 3 but the table's
    column read 2.0 and 3.0 (a float column)."""
    if not axis.integer or not axis.values:
        return axis
    return replace(axis, values=tuple(int(v) if _number(v) else v for v in axis.values))


def _check_whole(where: str, axis: Axis) -> None:
    """An integer axis takes whole values: 3.4 headcount would run as 3 and be recorded as
    3.4, and a range's steps must land on whole numbers ([3, 6] in 3 steps ran 4.5 as 4)."""
    if not axis.integer:
        return
    for v in (*axis.values, *(b for b in (axis.low, axis.high) if b is not None)):
        if _number(v) and v != int(v):
            raise ConfigError(where, f"{v!r} is not a whole number, and this axis takes whole "
                              "numbers")
    if axis.steps is not None and axis.steps > 1 and not axis.values:
        # a step between whole numbers that is not whole would be rounded (half to even)
        span = int(axis.high) - int(axis.low)
        if span % (axis.steps - 1):
            fits = [k + 1 for k in range(1, span + 1) if span % k == 0]
            shown = ", ".join(str(k) for k in fits[:6])
            raise ConfigError(where, f"[{int(axis.low)}, {int(axis.high)}] in {axis.steps} "
                              f"steps falls between whole numbers; steps that land on them: "
                              f"{shown}, or list the values")


def _apply(base: Config, grid: Grid, values: dict[str, Any], where: str) -> Config:
    raw = base.model_dump(by_alias=True, exclude_none=True)
    for axis in grid.axes:
        if axis.path is None:
            continue
        v = values[axis.name]
        if axis.integer and _number(v):
            v = int(round(v))
        set_path(raw, axis.path.split("."), v)
    try:
        return validate(raw)
    except ConfigError as exc:
        raise ConfigError(where, f"{exc.path}: {exc.message}") from None


def _dtype(values: list) -> pl.DataType:
    if all(isinstance(v, bool) for v in values):
        return pl.Boolean
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return pl.Int64
    if all(_number(v) for v in values):
        return pl.Float64
    return pl.Utf8


# --------------------------------------------------------------------------- the output folder


def point_file(out: Path, index: int) -> Path:
    return out / POINTS_DIR / f"point-{index:05d}.parquet"


def _what_differs(old: dict, new: dict) -> str:
    """Which of a sweep's settings differ between a folder's manifest and this plan."""
    def same(a: Any, b: Any) -> bool:
        return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)

    said = []
    for key, name in (("config", "config"), ("seed", "seed"), ("replications", "replications"),
                      ("engine", "engine"), ("design", "grid design"),
                      ("common_random_numbers", "common_random_numbers")):
        if not same(old.get(key), new.get(key)):
            said.append(f"{name} {old.get(key)!r} there, {new.get(key)!r} here")
    there, here = old.get("points") or [], new.get("points") or []
    if len(there) != len(here):
        said.append(f"{len(there)} grid points there, {len(here)} here")
    elif not same([p.get("values") for p in there], [p["values"] for p in here]):
        said.append("the grid's values")
    elif not same([p.get("config_digest") for p in there], [p["config_digest"] for p in here]):
        said.append("the points' configs (the config file, --profile or --set)")
    elif not said and not same([p.get("seed") for p in there], [p["seed"] for p in here]):
        # the root seed and common_random_numbers change every point's seed: said above
        said.append("the points' seeds (a sweep begun by an earlier gtmsim, whose point "
                    "seeds were 64 bits)")
    return "; ".join(said) or "its manifest"


def prepare_out(out: Path, plan: Plan, create: bool = True) -> list[int]:
    """Create (unless `create` is false: only check) or reopen the output folder; the
    indices of the points already done.

    A folder holding another sweep (other config, grid, seed, replications or engine) is an
    error: resuming into it would mix numbers that do not belong together."""
    manifest = plan.manifest()
    mpath = out / MANIFEST
    if out.exists() and not out.is_dir():
        raise ConfigError("--out", f"{out} exists and is not a folder")
    if mpath.is_file():
        try:
            old = json.loads(mpath.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError("--out", f"cannot read {mpath}: {exc}") from None
        # compared as JSON text: 4 == 4.0 in Python, but a grid's [4, 8] and [4.0, 8.0]
        # give the axis column other types, and point files of both do not read together;
        # a sweep begun by an earlier gtmsim has its digests (its file stays as it is)
        if all(json.dumps(old, sort_keys=True) != json.dumps(m, sort_keys=True)
               for m in (manifest, plan.manifest(earlier=True))):
            raise ConfigError("--out", f"{out} holds a different sweep "
                              f"({_what_differs(old, manifest)}); give a new folder, or the "
                              "same settings to resume it")
    elif out.is_dir() and any(out.iterdir()):
        raise ConfigError("--out", f"{out} exists, is not empty and holds no sweep")
    if not create:  # checked now, before a cluster starts or a SLURM job waits in the queue
        _check_writable(out)
        return [p.index for p in plan.points if point_file(out, p.index).is_file()]
    try:
        (out / POINTS_DIR).mkdir(parents=True, exist_ok=True)
        if not mpath.is_file():
            _atomic(mpath, lambda p: p.write_text(json.dumps(manifest, indent=1) + "\n",
                                                  encoding="utf-8"))
        if not (out / "points.parquet").is_file():  # a sweep stopped between the two
            _atomic(out / "points.parquet",
                    lambda p: write_parquet(_points_frame(plan), p))
    except OSError as exc:
        raise cannot_write(out, exc) from None
    return [p.index for p in plan.points if point_file(out, p.index).is_file()]


def _check_writable(out: Path) -> None:
    """`out` (or, not there yet, the nearest folder above it that is) is a folder this
    process can write in: a file in the path or a read-only folder was found only when the
    first point was written, after the cluster had started and run it."""
    where = out.absolute()
    while not where.exists():
        where = where.parent
    if not where.is_dir():
        raise ConfigError("--out", f"{where} is not a folder")
    try:  # as root os.access says yes to /proc; making a folder there says no
        os.rmdir(tempfile.mkdtemp(prefix=".gtmsim-probe.", dir=where))
    except OSError as exc:
        raise cannot_write(where, exc, "cannot write in") from None


def _points_frame(plan: Plan) -> pl.DataFrame:
    rows = {"point": [p.index for p in plan.points], "seed": [p.seed for p in plan.points]}
    for name in plan.columns:
        rows[name] = [p.profile if name == "profile" else p.values[name] for p in plan.points]
    schema = {"point": pl.Int64, "seed": pl.Int64, **plan.columns}
    return pl.DataFrame(rows, schema=schema)


def _atomic(target: Path, write: Callable[[Path], Any]) -> None:
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.partial")
    try:
        write(tmp)
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def point_frame(plan: Plan, point: Point, parts: list[pl.DataFrame]) -> pl.DataFrame:
    """A point's rows: point, replication, its axis values, then the outcomes."""
    df = pl.concat(parts, how="vertical").sort("replication")
    values = {name: (point.profile if name == "profile" else point.values[name])
              for name in plan.columns}
    lead = [pl.lit(point.index, pl.Int64).alias("point"), pl.col("replication")]
    lead += [pl.lit(v, plan.columns[name]).alias(name) for name, v in values.items()]
    rest = [c for c in df.columns if c != "replication" and c not in values and c != "point"]
    return df.select(*lead, *rest)


def read_sweep(out: str | Path) -> pl.DataFrame:
    """Every point's replications of a sweep folder, in point and replication order."""
    files = sorted((Path(out) / POINTS_DIR).glob("point-*.parquet"))
    if not files:
        raise GtmsimError(f"no point files in {out}/{POINTS_DIR}")
    return pl.concat([pl.read_parquet(f) for f in files], how="diagonal").sort(
        "point", "replication")


# --------------------------------------------------------------------------- the tasks

_NUMBA_THREADS: int | None = None   # set on a worker by the warm-up plugin
_KERNEL_LOCK = threading.Lock()     # one numba batch at a time per process


def run_task(spec: ModelSpec, seed: int, first: int, count: int, engine: str) -> pl.DataFrame:
    """Replications ``first .. first + count - 1`` of one point: what each task runs."""
    if engine == "numba":
        import numba

        with _KERNEL_LOCK:  # numba's workqueue layer takes one parallel launch at a time
            if _NUMBA_THREADS is not None:  # set_num_threads is per calling thread
                numba.set_num_threads(min(_NUMBA_THREADS, numba.config.NUMBA_NUM_THREADS))
            return simulate(spec, count, seed, engine=engine, first=first).replications
    return simulate(spec, count, seed, engine=engine, workers=1, first=first).replications


def _warm(spec: ModelSpec, engine: str, threads: int | None) -> None:
    global _NUMBA_THREADS
    if threads is not None:
        _NUMBA_THREADS = max(1, threads)
    if engine == "numba":
        run_task(spec, 0, 0, 1, engine)


try:
    from distributed.diagnostics.plugin import WorkerPlugin
except ImportError:  # the in-process path needs no Dask
    WorkerPlugin = object  # type: ignore[misc,assignment]


class Warmup(WorkerPlugin):
    """On every worker, now and when it joins later: set numba's threads and load (or compile)
    the kernels once, before the first task, off the worker's event loop."""

    name = "gtmsim-warmup"

    def __init__(self, spec: ModelSpec, engine: str, threads_by_host: dict[str, int]):
        self.spec = spec
        self.engine = engine
        self.threads_by_host = threads_by_host

    async def setup(self, worker):
        threads = self._threads(worker)
        await asyncio.get_running_loop().run_in_executor(
            None, _warm, self.spec, self.engine, threads)

    def _threads(self, worker) -> int:
        env = os.environ.get("NUMBA_NUM_THREADS")
        if env and env.isdigit():
            return int(env)  # the operator (or LocalCluster) said how many
        host = worker.address.split("://")[-1].rsplit(":", 1)[0]
        slots = self.threads_by_host.get(host, worker.state.nthreads)
        return max(1, usable_cores() // max(1, slots))


# --------------------------------------------------------------------------- clusters


@contextlib.contextmanager
def connect(scheduler: str | None, workers: int, timeout: float = 30.0,
            numba_threads: int | None = None) -> Iterator[Any]:
    """A Dask client: to `scheduler` when given, else to a new LocalCluster of `workers`
    processes (one task thread each, numba threads = `numba_threads` or cores // workers, so
    processes x threads never exceeds the cores)."""
    with _quiet_dask(), _client(scheduler, workers, timeout, numba_threads) as client:
        yield client


@contextlib.contextmanager
def _quiet_dask() -> Iterator[None]:
    """Dask's own logging off while gtmsim talks to the cluster: a closing cluster logs lost
    comms, a lost scheduler or an interrupt mid-broadcast logs tracebacks, and gtmsim says
    what happened in one line of its own. Distributed sets levels on its child loggers, so
    each is quieted, with asyncio's (unretrieved futures of a cluster torn down)."""
    names = ["asyncio", "tornado", "distributed",
             *(n for n in logging.root.manager.loggerDict if n.startswith("distributed."))]
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        yield
    except BaseException:
        # stopped (Ctrl-C while the cluster starts, a lost scheduler): the process is on its
        # way out, and the cluster's orphaned tasks are collected after this block, each
        # logging its closed stream; they stay quiet
        raise
    else:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _probe(scheduler: str, timeout: float) -> None:
    """Ask the address who it is, within `timeout`: a port that accepts but does not speak
    Dask (a dashboard, another service) would hold the client's own connect forever."""
    if "://" in scheduler and not scheduler.startswith("tcp://"):
        return  # tls:// and others need their security settings: the client checks them
    from distributed.comm import connect as comm_connect

    async def identity() -> Any:
        comm = await comm_connect(scheduler, timeout=timeout)
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            comm.abort()

    try:
        info = asyncio.run(asyncio.wait_for(identity(), timeout))
    except Exception as exc:  # refused, unreachable, or no answer in time
        reason = "no answer" if isinstance(exc, TimeoutError) else _one_line(exc)
        raise ConfigError("--scheduler", f"cannot reach a Dask scheduler at {scheduler!r} "
                          f"within {timeout:g}s ({reason})") from None
    if not (isinstance(info, dict) and info.get("type") == "Scheduler"):
        raise ConfigError("--scheduler", f"{scheduler} answers, but not as a Dask scheduler "
                          "(a dashboard's port?)")


@contextlib.contextmanager
def _client(scheduler: str | None, workers: int, timeout: float,
            numba_threads: int | None) -> Iterator[Any]:
    from distributed import LocalCluster

    cluster = None
    if scheduler:
        from distributed.comm import get_address_host_port

        try:
            _, port = get_address_host_port(scheduler)
            if not 0 < port < 65536:  # Dask takes 99999 and waits out the timeout on it
                raise ValueError(f"port {port} is not in 1..65535")
        except Exception as exc:  # a malformed address: no client is made
            raise ConfigError("--scheduler", f"not a scheduler address: {_one_line(exc)} "
                              "(expected e.g. tcp://10.0.0.5:8786)") from None
        _probe(scheduler, timeout)
        try:
            client = _new_client(scheduler, timeout=f"{timeout}s", set_as_default=False)
        except Exception as exc:  # OSError, TimeoutError, ValueError for a bad address
            raise ConfigError("--scheduler", f"cannot reach a Dask scheduler at {scheduler!r} "
                              f"within {timeout:g}s ({_one_line(exc)})") from None
        try:
            client.wait_for_workers(1, timeout=timeout)
        except Exception:
            client.close()
            raise ConfigError("--scheduler", f"no worker joined the scheduler at {scheduler} "
                              f"within {timeout:g}s") from None
    else:
        threads = numba_threads or max(1, usable_cores() // workers)
        cluster = LocalCluster.__new__(LocalCluster)  # in hand if its start is interrupted
        held: list[int] = []
        try:
            with _workers_deaf_to_ctrl_c(), _signals_held(held):
                cluster.__init__(n_workers=workers, threads_per_worker=1, processes=True,
                                 dashboard_address=":0", silence_logs=logging.CRITICAL,
                                 env={"NUMBA_NUM_THREADS": str(threads)})
        except BaseException as exc:
            _leave_half_started(cluster)
            if held and isinstance(exc, Exception):  # the held signal is why: SIGTERM to
                # the process group killed the workers mid-start ('Nanny failed to start');
                # it is acted on, not the error
                signal.raise_signal(held[0])
            raise
        try:
            for signum in held:  # now the cluster has started, it is closed in order
                signal.raise_signal(signum)
            client = _new_client(cluster, set_as_default=False)
        except BaseException:
            with contextlib.suppress(Exception):
                cluster.close(timeout=10)
            raise
    try:
        yield client
    finally:
        with contextlib.suppress(Exception):
            client.close(timeout=10)
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close(timeout=10)


def _new_client(*args: Any, **kwargs: Any) -> Any:
    """A dask Client; one whose start fails or is interrupted is closed at once. Left to the
    garbage collector, it tries to close at exit, on a loop that is gone: a 'Client.__del__'
    traceback after gtmsim's one line, seconds later."""
    from distributed import Client

    client = Client.__new__(Client)  # in hand when __init__ raises
    try:
        client.__init__(*args, **kwargs)
    except BaseException:
        with contextlib.suppress(Exception):
            client.close(timeout=2)
        raise
    return client


@contextlib.contextmanager
def _workers_deaf_to_ctrl_c() -> Iterator[None]:
    """Ctrl-C at a terminal signals the whole process group: workers still importing Dask
    each printed a KeyboardInterrupt traceback. SIGINT is blocked while the cluster starts:
    the worker processes inherit the mask (Dask's threads that spawn them are made now, and
    multiprocessing's resource tracker, whose start unblocks its caller, is started first),
    and this process takes a Ctrl-C that came meanwhile as soon as the start is over. The
    workers stop with the cluster, which this process closes."""
    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not \
            threading.main_thread():
        yield
        return
    _start_quiet_resource_tracker()
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


@contextlib.contextmanager
def _signals_held(held: list[int]) -> Iterator[None]:
    """A first Ctrl-C or SIGTERM while a LocalCluster starts is held (appended to `held`) till
    the start is over; a second one acts at once. Acted on mid-start, it left Dask starting
    worker processes in its threads as this process exited: a worker that had read half of
    what it was to run, or whose queues' semaphores were already removed, printed a traceback
    after gtmsim's line. Started, the cluster is closed in order: no process is left behind."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    signums = [signal.SIGINT, signal.SIGTERM]
    previous = {s: signal.getsignal(s) for s in signums}

    def hold(signum: int, frame: Any) -> None:
        if held:  # the second: the previous handler (gtmsim's raises) acts now
            act = previous[signum]
            if callable(act):
                act(signum, frame)
            elif act == signal.SIG_DFL and signum == signal.SIGINT:
                raise KeyboardInterrupt
            elif act == signal.SIG_DFL:
                signal.signal(signum, signal.SIG_DFL)
                signal.raise_signal(signum)
            return
        held.append(signum)

    for s in signums:
        signal.signal(s, hold)
    try:
        yield
    finally:
        for s, act in previous.items():
            signal.signal(s, act)


_TRACKER_QUIET = "ignore::UserWarning:multiprocessing.resource_tracker"


def _start_quiet_resource_tracker() -> None:
    """Start multiprocessing's resource tracker (if it is not running) with its warnings off.
    A cluster interrupted while it starts leaves its workers' queues' semaphores registered;
    the tracker removes them when this process exits, and warned about each (a UserWarning
    and its source line, twice) after gtmsim's one line. The filter goes on the tracker's
    command line, as a -W option taken from `sys.warnoptions`, and only there."""
    from multiprocessing import resource_tracker

    sys.warnoptions.append(_TRACKER_QUIET)
    try:
        resource_tracker.ensure_running()
    finally:
        sys.warnoptions.remove(_TRACKER_QUIET)


def _leave_half_started(cluster: Any) -> None:
    """A LocalCluster whose start failed, or was stopped by a second Ctrl-C, goes on starting
    in Dask's loop thread, and Dask's exit hook would close it half-started: an AssertionError
    traceback after gtmsim's one line, and seconds waiting for workers the interrupt already
    stopped. Its workers are daemon processes of this one (and each exits when this process
    does), so the hook is told to leave it."""
    cluster.shutdown_on_close = False


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def warm_up(client, spec: ModelSpec, engine: str) -> None:
    """Register the warm-up plugin: every worker now (waited for) and every later one, its
    numba threads the host's cores shared among the task threads of its workers."""
    hosts: dict[str, int] = {}
    for addr, info in client.scheduler_info(n_workers=-1)["workers"].items():
        host = addr.split("://")[-1].rsplit(":", 1)[0]
        hosts[host] = hosts.get(host, 0) + int(info.get("nthreads", 1))
    try:
        client.register_plugin(Warmup(spec, engine, hosts))
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # a worker that cannot import gtmsim or compile its kernels
        raise ClusterLost(f"a Dask worker could not start gtmsim: {_one_line(exc)}; check "
                          "that every worker has this gtmsim installed") from None


# --------------------------------------------------------------------------- running


@dataclass
class SweepSummary:
    points: int
    skipped: int
    written: int
    replications: int
    tasks: int


def run_sweep(plan: Plan, out: str | Path, client=None,
              progress: Progress | None = None, patience: float = 30.0) -> SweepSummary:
    """Run every point not yet written into `out`; in this process when `client` is None,
    else as Dask tasks on the client's cluster (given up as lost after `patience` seconds
    with no worker on it). Each point's file appears when it is done."""
    out = Path(out)
    done = set(prepare_out(out, plan, create=False))
    todo = [p for p in plan.points if p.index not in done]
    if client is not None and todo:
        # before the folder is made: a worker that fails leaves none
        warm_up(client, plan.points[0].spec, plan.engine)
    prepare_out(out, plan)
    total = len(plan.points) * plan.replications
    finished = len(done) * plan.replications
    if progress:
        progress(finished, total)
    ntasks = sum(len(plan.tasks(p)) for p in todo)
    if client is None:
        for p in todo:
            parts = []
            for first, n in plan.tasks(p):
                parts.append(run_task(p.spec, p.seed, first, n, plan.engine))
                finished += n
                if progress:
                    progress(finished, total)
            _write_point(out, plan, p, parts)
    elif todo:
        finished = _run_distributed(plan, out, client, todo, finished, total, progress,
                                    patience)
    return SweepSummary(len(plan.points), len(done), len(todo),
                        len(todo) * plan.replications, ntasks)


def _write_point(out: Path, plan: Plan, point: Point, parts: list[pl.DataFrame]) -> None:
    df = point_frame(plan, point, parts)
    try:
        _atomic(point_file(out, point.index), lambda p: write_parquet(df, p))
    except OSError as exc:
        raise cannot_write(out, exc) from None


class _Watch:
    """Waits on a cluster's tasks without waiting for ever: a cluster whose workers have all
    gone (a finished result can go with them) counts as lost after `patience` seconds
    without a worker; losing the scheduler is one clear error, not a traceback."""

    def __init__(self, client, patience: float):
        self.client, self.patience = client, patience
        self.alone_since: float | None = None
        self.checked = time.monotonic()

    def check(self) -> None:
        now = time.monotonic()
        if now - self.checked < min(1.0, self.patience / 4):
            return
        self.checked = now
        try:
            workers = len(self.client.nthreads())
        except Exception as exc:
            raise _lost(exc) from None
        if workers:
            self.alone_since = None
        elif self.alone_since is None:
            self.alone_since = now
        elif now - self.alone_since >= self.patience:
            raise ClusterLost(f"no Dask worker has been on the cluster for {self.patience:g}s "
                              "(--connect-timeout); what was finished is kept: start workers "
                              "and run the same command to resume")

    def completed(self, futures: list) -> Iterator[Any]:
        """Futures as they finish."""
        from distributed import as_completed

        try:
            ready = as_completed(futures, loop=self.client.loop)
            while not ready.is_empty():
                batch = ready.next_batch(block=False)
                if not batch:
                    self.check()
                    time.sleep(0.05)
                yield from batch
        except ClusterLost:
            raise
        except Exception as exc:
            raise _lost(exc) from None

    def first_done(self, futures: list) -> set:
        """At least one of `futures` (a trial's few scenarios) finished."""
        from distributed import wait

        while True:
            try:
                with self.client.as_current():  # `wait` uses the current client
                    return wait(futures, timeout=0.5, return_when="FIRST_COMPLETED").done
            except TimeoutError:
                self.check()
            except Exception as exc:
                raise _lost(exc) from None

    def result(self, future) -> Any:
        """A finished future's result; it is computed again if its worker left meanwhile."""
        while True:
            try:
                return future.result(timeout=0.5)
            except TimeoutError:
                if future.status == "error":  # the task itself raised it
                    raise
                self.check()


def _lost(exc: BaseException) -> ClusterLost:
    return ClusterLost(f"lost the Dask cluster ({_one_line(exc)}); what was finished is kept: "
                       "run the same command to resume")


def _cancelled(exc: BaseException, client, future=None) -> bool:
    """Whether a task failed because the cluster went away rather than in gtmsim's code: a
    connection error while fetching the result of a task that did not itself fail (a
    scheduler killed mid-sweep can reset the fetch before the client notices) counts too."""
    from concurrent.futures import CancelledError

    fetch = (isinstance(exc, OSError) and future is not None
             and getattr(future, "status", "error") != "error")
    return fetch or isinstance(exc, CancelledError) or "Cancelled" in type(exc).__name__ or (
        getattr(client, "status", "running") != "running")


def _run_distributed(plan: Plan, out: Path, client, todo: list[Point], finished: int,
                     total: int, progress: Progress | None, patience: float) -> int:
    run_id = uuid.uuid4().hex[:8]
    futures = {}
    for p in todo:
        for first, n in plan.tasks(p):
            f = client.submit(run_task, p.spec, p.seed, first, n, plan.engine, pure=False,
                              key=f"gtmsim-sweep-{run_id}-p{p.index}-r{first}",
                              priority=-p.index)  # earlier points first: files appear early
            futures[f] = (p, first, n)
    pending: dict[int, dict[int, pl.DataFrame]] = {}
    try:
        watch = _Watch(client, patience)
        for f in watch.completed(list(futures)):
            p, first, n = futures.pop(f)
            try:
                df = watch.result(f)
            except ClusterLost:
                raise
            except Exception as exc:
                if _cancelled(exc, client, f):
                    raise _lost(exc) from None
                raise TaskFailed(f"point {p.index}, replications {first}..{first + n - 1} "
                                 f"failed on the cluster: {_one_line(exc)}; what was finished "
                                 "is kept: run the same command to resume") from None
            f.release()
            parts = pending.setdefault(p.index, {})
            if first in parts:  # a result arrives once per future; this guards the file
                continue
            parts[first] = df
            finished += n
            if progress:
                progress(finished, total)
            if len(parts) == len(plan.tasks(p)):
                _write_point(out, plan, p, [parts[k] for k in sorted(parts)])
                del pending[p.index]
    finally:
        if futures:
            with contextlib.suppress(Exception):
                client.cancel(list(futures))
    return finished


# --------------------------------------------------------------------------- optimising on a
# cluster: one driver process asks Optuna for several trials at once and fans each trial's
# scenario evaluations out as tasks (ask-and-tell); the study and its storage stay in the
# driver (`gtmsim optimize --scheduler`).


def scenario_value(config: Config, scenario, replications: int, engine: str,
                   outcome: str) -> float:
    """One task of a trial: the design's mean outcome in one scenario (common random
    numbers: the scenario's own seed, whatever the design)."""
    from gtmsim.optimize.evaluate import per_scenario

    spec = compile_spec(config, scenario.values)
    df = run_task(spec, scenario.seed, 0, replications, engine)
    df = df.with_columns(pl.lit(scenario.index).alias("scenario"))
    return float(per_scenario(df, outcome)[outcome][0])  # as the serial search scores it


def search_on_cluster(config: Config, settings, client, out_dir: Path | None = None,
                      parallel_trials: int | None = None, progress: Progress | None = None,
                      patience: float = 30.0):
    """`optimize.search.search`, with each trial's scenarios evaluated as Dask tasks and up to
    `parallel_trials` trials in flight (default: twice the cluster's task threads, at least 2).

    Each scenario value is exactly what the serial search computes for the same design; the
    designs tried differ from a serial run (the sampler sees fewer finished trials when it
    asks), as with any parallel Optuna study. Pruning (Wilcoxon) reports each scenario as it
    comes in and cancels a pruned trial's remaining tasks."""
    import optuna

    from gtmsim.optimize import search as S
    from gtmsim.optimize.levers import annual_cost
    from gtmsim.optimize.objectives import robust_score

    ready = S.prepare(config, settings, out_dir, constant_liar=True, progress=progress)
    study, scenarios, held_out = ready.study, ready.scenarios, ready.held_out
    objectives, multi = ready.objectives, ready.multi

    warm_up(client, compile_spec(config), settings.engine)
    if parallel_trials is None:
        threads = sum(int(w.get("nthreads", 1)) for w in
                      client.scheduler_info(n_workers=-1)["workers"].values())
        parallel_trials = max(2, 2 * threads)
    watch = _Watch(client, patience)

    def finished() -> int:
        return sum(t.state in S.FINISHED for t in study.get_trials(deepcopy=False))

    active: dict[int, dict] = {}      # trial number -> its trial, futures, values
    owner: dict[Any, tuple[int, int]] = {}  # future -> (trial number, scenario step)
    asked = 0
    remaining = max(0, settings.trials - finished())

    def tell(number: int, **kw) -> None:
        entry = active.pop(number)
        for f in entry["futures"]:
            owner.pop(f, None)
        client.cancel(entry["futures"])
        study.tell(entry["trial"], **kw)
        if progress:
            progress(settings.ideal_trials + finished(), settings.trials + settings.ideal_trials)

    try:
        while asked < remaining or active:
            while asked < remaining and len(active) < parallel_trials:
                trial = study.ask()
                asked += 1
                # in `active` at once: a trial asked for and interrupted while its levers
                # were drawn stayed RUNNING, and a process on another host sharing the study
                # waited on it for ever
                active[trial.number] = {"trial": trial, "futures": [], "values": {},
                                        "cost": None}
                trial.set_user_attr("host", socket.gethostname())
                trial.set_user_attr("pid", os.getpid())
                if S.beyond_quota(study, trial.number, settings.trials):  # another driver
                    trial.set_user_attr("surplus", True)  # took the last slots
                    del active[trial.number]
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
                    remaining = asked
                    break
                cfg = S.screen(trial, config, S.suggest(trial, config))
                active[trial.number]["cost"] = None if cfg is None else annual_cost(cfg)
                if cfg is None:  # over the budget or refused by the model: not simulated
                    worst = [S._worst(o) for o in objectives]
                    tell(trial.number, values=worst if multi else worst[0])
                    continue
                for step, sc in enumerate(scenarios):
                    f = client.submit(scenario_value, cfg, sc, settings.replications,
                                      settings.engine, settings.outcome, pure=False,
                                      priority=-trial.number)
                    owner[f] = (trial.number, step)
                    active[trial.number]["futures"].append(f)
            if not owner:
                continue
            for f in watch.first_done(list(owner)):
                number, step = owner.pop(f, (None, None))
                if number is None or number not in active:
                    continue
                entry = active[number]
                try:
                    v = watch.result(f)
                except ClusterLost:
                    raise
                except Exception as exc:
                    if _cancelled(exc, client, f):
                        raise _lost(exc) from None
                    raise TaskFailed(f"trial {number}: a scenario failed on the cluster: "
                                     f"{_one_line(exc)}") from None
                entry["values"][step] = v
                trial = entry["trial"]
                if not multi and len(entry["values"]) < len(scenarios):  # seen all: scored
                    trial.report(v, step)
                    if S.should_prune(trial):
                        trial.set_user_attr("scenario_values", [
                            entry["values"].get(i) for i in range(len(scenarios))])
                        tell(number, state=optuna.trial.TrialState.PRUNED)
                        continue
                if len(entry["values"]) == len(scenarios):
                    per = np.array([entry["values"][i] for i in range(len(scenarios))])
                    trial.set_user_attr("scenario_values", per.tolist())
                    scores = [entry["cost"] if o == "cost" else
                              robust_score("mean" if o == "regret" else o, per,
                                           settings.target) for o in objectives]
                    tell(number, values=scores if multi else scores[0])
    finally:
        for entry in active.values():  # interrupted: give the trials back, run them again
            with contextlib.suppress(Exception):
                client.cancel(entry["futures"])
            S._run_again(study, entry["trial"], config.levers)
    # trials other processes sharing the study still run count in the quota: chosen among
    # without them, the best design could be missing (or none be feasible yet), as in the
    # serial search
    S.await_others(study)
    candidates = S.held_out_candidates(config, study, settings, held_out, ready.baselines,
                                       ready.ideal)
    best = S.pick_best(candidates, settings.objectives[0])
    return S.SearchResult(study, scenarios, held_out, candidates, best, ready.ideal_trials)
