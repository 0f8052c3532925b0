"""Designs side by side: whole configs run by the same people on the same scenarios.

For each profile, K scenarios of the profile's uncertain human-variability values are drawn
once, from the first config (the baseline), and every design is run on them with the same
seeds (common random numbers); a value a design fixes (a number, not a range) is its own in
every scenario. A design's outcome per scenario is its mean over R
replications; the robust statistics (mean, P10, CVaR10) are taken over scenarios, with a
t-interval for the mean and, from 20 scenarios, bootstrap intervals for the tails; each
design's difference from the baseline is paired by scenario.
A parameter that is uncertain only in a later design is held at its central value there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from gtmsim.config import Config, load_config
from gtmsim.config.schema import central, market
from gtmsim.errors import MAX_REPLICATIONS, ConfigError, GtmsimError, whole
from gtmsim.optimize.compare import (
    STATS,
    TAIL_MIN_SCENARIOS,
    change,
    differences,
    kpi_disagreement,
    outcome_interval,
    paired_difference,
    standing,
)
from gtmsim.optimize.evaluate import evaluate, per_scenario
from gtmsim.optimize.levers import annual_cost, current_design
from gtmsim.optimize.scenarios import (
    MAX_SCENARIOS,
    Scenario,
    draw_scenarios,
    uncertain_parameters,
)
from gtmsim.outcomes import (
    check_ranked_outcome,
    check_scored_outcome,
    in_percent,
    share_kpis,
)

Progress = Callable[[int, int], None]
KEYS = ("design", "profile", "scenario", "replication")


def design_labels(paths: Sequence[str | Path]) -> list[str]:
    """A short unique name per config: its file stem; where other files have that name (run
    folders' own config.toml), the folder's name; numbered when two are still equal (the
    same file twice)."""
    files = {Path(p).absolute() for p in paths}
    stems = [f.stem for f in files]
    labels: list[str] = []
    for p in paths:
        stem = Path(p).stem or "design"
        if stems.count(Path(p).stem) > 1 and Path(p).absolute().parent.name:
            stem = Path(p).absolute().parent.name  # another file has this name
        label, i = stem, 2
        while label in labels:
            label, i = f"{stem}-{i}", i + 1
        labels.append(label)
    return labels


@dataclass
class DesignComparison:
    """Every design under every profile, on the profile's scenarios; the first is the
    baseline."""

    designs: list[str]
    files: list[str]
    profiles: list[str]
    outcome: str
    replications: int
    seed: int
    engine: str
    scenarios: dict[str, list[Scenario]]        # profile -> its scenarios
    rows: pl.DataFrame                          # design x profile x scenario x replication
    configs: dict[tuple[str, str], Config] = field(repr=False)  # (design, profile) -> config

    @property
    def baseline(self) -> str:
        return self.designs[0]

    def per_scenario(self) -> pl.DataFrame:
        """design, profile, scenario and the outcome's mean over replications."""
        return (self.rows.group_by("design", "profile", "scenario", maintain_order=True)
                .agg(pl.col(self.outcome).fill_nan(None).mean())
                .sort("profile", "design", "scenario"))

    def values(self, design: str, profile: str) -> np.ndarray:
        """The design's outcome per scenario (mean over replications), in scenario order."""
        df = self.rows.filter((pl.col("design") == design) & (pl.col("profile") == profile))
        return per_scenario(df, self.outcome)[self.outcome].to_numpy().astype(float)

    def stats(self) -> pl.DataFrame:
        """One row per design and profile: mean, P10, CVaR10 over scenarios with 95% CIs
        (see `interval`), KPI attainment per team, leakage, wins and headcount cost."""
        out = []
        for profile in self.profiles:
            for design in self.designs:
                out.append(self._describe(design, profile))
        return pl.DataFrame(out)

    def differences(self) -> pl.DataFrame:
        """Each design minus the baseline, per profile and statistic, paired by scenario,
        with a 95% CI (see `paired_difference`)."""
        out = []
        for profile in self.profiles:
            base = self.values(self.baseline, profile)
            for design in self.designs[1:]:
                diff = paired_difference(base, self.values(design, profile))
                for stat, (d, lo, hi) in diff.items():
                    out.append({"design": design, "profile": profile, "statistic": stat,
                                "diff": d, "ci_low": lo, "ci_high": hi})
        schema = {"design": pl.Utf8, "profile": pl.Utf8, "statistic": pl.Utf8,
                  "diff": pl.Float64, "ci_low": pl.Float64, "ci_high": pl.Float64}
        return pl.DataFrame(out, schema=schema)

    def _shares(self) -> frozenset[str]:
        """The outcomes that are shares in any design's model (a retention KPI)."""
        return frozenset().union(*(share_kpis({n: t.kpi.metric if t.kpi else None
                                               for n, t in c.teams.items()})
                                   for c in self.configs.values()))

    def outcome_in_percent(self) -> bool:
        """Whether the outcome is written in %, its differences in percentage points: a share
        (a win rate, a retention KPI) or a KPI attainment (`outcomes.in_percent`)."""
        return in_percent(self.outcome, self._shares())

    def _describe(self, design: str, profile: str) -> dict[str, Any]:
        x = self.values(design, profile)
        row: dict[str, Any] = {"design": design, "profile": profile}
        shares = self._shares()
        for name, fn in STATS.items():
            row[name] = float(fn(x))
            row[f"{name}_ci_low"], row[f"{name}_ci_high"] = outcome_interval(
                self.outcome, name, x, shares)
        df = self.rows.filter((pl.col("design") == design) & (pl.col("profile") == profile))
        for col in df.columns:
            if col.startswith(("kpi_attainment_", "leaked")) or col in ("won", "win_rate"):
                v = df[col].drop_nulls().drop_nans()
                row[col] = float(v.mean()) if len(v) else None
        row["cost"] = annual_cost(self.configs[(design, profile)])
        return row

    def verdict(self, profile: str, diffs: pl.DataFrame | None = None) -> str:
        """One line: each design against the baseline on the mean and the worst 10%."""
        diffs = self.differences() if diffs is None else diffs
        d = {(r["design"], r["statistic"]): r for r in diffs.filter(
            pl.col("profile") == profile).to_dicts()}
        base_mean = float(np.mean(self.values(self.baseline, profile)))
        percent = self.outcome_in_percent()
        # a share's difference in points beside its relative change: "-0.0201 (-8%)" set
        # an absolute fraction beside a relative percent
        diff, ends = differences(percent)
        parts = []
        for design in self.designs[1:]:
            m, c = d[(design, "mean")], d[(design, "cvar10")]
            word = f"{standing(m['diff'], m['ci_low'], m['ci_high'])} {self.baseline}"
            if word.startswith("is identical to"):  # on this outcome: the designs may differ
                word += f" on {self.outcome}"
            rel = (f" ({change(m['diff'] / base_mean)}{' relative' if percent else ''})"
                   if base_mean else "")  # not "+0%"
            tail = (f" ({ends(c['ci_low'], c['ci_high'])})" if np.isfinite(c["ci_low"])
                    else "")
            parts.append(f"{design} {word}: mean {self.outcome} {diff(m['diff'])}{rel} "
                         f"(95% CI {ends(m['ci_low'], m['ci_high'])}), "
                         f"worst-10% {diff(c['diff'])}{tail}"
                         + self._kpi_disagreement(design, profile, m))
        k = len(self.scenarios[profile])
        # a sentence of its own: "... rose 72% -> 77%. (no interval ...)" stopped the
        # sentence the parenthesis went on with
        note = "" if k >= TAIL_MIN_SCENARIOS else (
            f" Under {TAIL_MIN_SCENARIOS} scenarios the worst 10% is the single worst "
            "scenario, with no interval.")
        return f"Under {profile} ({k} scenarios): " + "; ".join(parts) + "." + note

    def _kpi_disagreement(self, design: str, profile: str, m: dict) -> str:
        """', yet <team>'s KPI attainment rose 103% -> 183%': `kpi_disagreement` between the
        baseline's rows and the design's under `profile`."""
        rows = self.rows.filter(pl.col("profile") == profile)
        return kpi_disagreement(rows.filter(pl.col("design") == self.baseline),
                                rows.filter(pl.col("design") == design),
                                m["ci_low"], m["ci_high"])

    def summary(self) -> dict[str, Any]:
        """Every number of the comparison as plain JSON-able data (NaN becomes None)."""
        stats = {(r["design"], r["profile"]): r for r in self.stats().to_dicts()}
        diffs = self.differences()
        per = self.per_scenario()
        designs = []
        base = self.configs[(self.baseline, self.profiles[0])]
        for name, path in zip(self.designs, self.files, strict=True):
            cfg = self.configs[(name, self.profiles[0])]
            designs.append({"name": name, "file": path, "config": cfg.name,
                            "levers": {k: _plain(v) for k, v in current_design(cfg).items()},
                            "other_differences": setting_differences(base, cfg),
                            "cost": annual_cost(cfg)})
        profiles: dict[str, Any] = {}
        for profile in self.profiles:
            entry: dict[str, Any] = {"scenarios": len(self.scenarios[profile]),
                                     "uncertain": sorted(self.scenarios[profile][0].values),
                                     "designs": {}, "differences": {}}
            for name in self.designs:
                s = stats[(name, profile)]
                entry["designs"][name] = {
                    **{k: s[k] for k in STATS},
                    **{f"{k}_ci": [s[f"{k}_ci_low"], s[f"{k}_ci_high"]] for k in STATS},
                    "scenario_values": per.filter((pl.col("design") == name)
                                                  & (pl.col("profile") == profile))
                    [self.outcome].to_list(),
                    "kpi_attainment": {k.removeprefix("kpi_attainment_"): v for k, v in s.items()
                                       if k.startswith("kpi_attainment_")},
                    "leaked": s.get("leaked"),
                    "leaked_by_cause": {k.removeprefix("leaked_"): v for k, v in s.items()
                                        if k.startswith("leaked_")},
                    "won": s.get("won"), "win_rate": s.get("win_rate"), "cost": s["cost"]}
            for r in diffs.filter(pl.col("profile") == profile).to_dicts():
                entry["differences"].setdefault(r["design"], {})[r["statistic"]] = {
                    "diff": r["diff"], "ci_low": r["ci_low"], "ci_high": r["ci_high"]}
            entry["verdict"] = self.verdict(profile, diffs)
            profiles[profile] = entry
        doc = {"outcome": self.outcome, "outcome_in_percent": self.outcome_in_percent(),
               "baseline": self.baseline,
               "replications": self.replications, "seed": self.seed, "engine": self.engine,
               "designs": designs, "profiles": profiles}
        return _finite(doc)


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return _plain(value)


# what the designs must share to be compared (a longer window books more); a sweep or an
# optimisation sets these for every design alike
WINDOW = ("warmup_days", "horizon_days")
# what is not a difference of design: names, the run's own numbers, profile tables (the
# people under a profile are set by --profile), lever declarations (their values are shown)
NOT_DESIGN = ("name", "description", "profile", "profiles", "levers", "run.seed",
              "run.replications")


def load_designs(paths: Sequence[str | Path], profiles: Sequence[str],
                 overrides: Sequence[str] = ()) -> dict[tuple[str, str], Config]:
    """Every config under every profile, validated before anything runs; every design must
    count over the baseline's window."""
    if len(paths) < 2:
        raise GtmsimError("compare: give at least two configs (the first is the baseline)")
    if not profiles:
        raise GtmsimError("--profile: give at least one profile")
    labels = design_labels(paths)
    configs = {(label, prof): _load(path, prof, overrides)
               for label, path in zip(labels, paths, strict=True) for prof in profiles}
    base = configs[(labels[0], profiles[0])].run
    for label, path in zip(labels[1:], paths[1:], strict=True):
        run = configs[(label, profiles[0])].run
        differ = [key for key in WINDOW if getattr(run, key) != getattr(base, key)]
        if differ:  # every key that differs, so one correction is enough
            key = differ[0]
            was = "; ".join(f"run.{k} is {getattr(run, k):g} where the baseline's is "
                            f"{getattr(base, k):g}" for k in differ)
            sets = " ".join(f"--set run.{k}={getattr(base, k):g}" for k in differ)
            raise ConfigError(f"{path}: run.{key}", (
                f"{was.removeprefix(f'run.{key} ')}; designs are compared over one window: "
                f"add {sets} (it applies to every design)"))
    return configs


def _load(path: str | Path, profile: str, overrides: Sequence[str]) -> Config:
    """One design under one profile; an error names the file (of several) it is in."""
    try:
        return load_config(str(path), profile, list(overrides))
    except ConfigError as exc:
        if exc.path.startswith(str(path)) or exc.path == "profile":  # --profile's own
            raise
        raise ConfigError(f"{path}: {exc.path}", exc.message) from None


def setting_differences(base: Config, other: Config) -> list[dict[str, Any]]:
    """Every setting of `other` that differs from `base`, beside its levers (shown apart)
    and what is not a design (NOT_DESIGN): path, the baseline's value, the design's (None
    where one of them has no such setting; a table only one has is one difference)."""
    skip = {lv.path for lv in (*base.levers.values(), *other.levers.values())}
    out: list[dict[str, Any]] = []
    _differences(*(c.model_dump(mode="json", by_alias=True, exclude_none=True)
                   for c in (base, other)), "", skip, out)
    return out


def _differences(a: dict, b: dict, prefix: str, skip: set[str], out: list) -> None:
    for key in sorted(set(a) | set(b)):
        path = f"{prefix}{key}"
        if path in skip or any(path == k or path.startswith(k + ".") for k in NOT_DESIGN):
            continue
        x, y = a.get(key), b.get(key)
        if isinstance(x, dict) and isinstance(y, dict) and not (is_setting(x) or is_setting(y)):
            _differences(x, y, path + ".", skip, out)
        elif x != y:
            out.append({"path": path, "baseline": x, "design": y})


def is_setting(value: dict) -> bool:
    """A table that is one setting: a distribution, or an uncertain value {value, range}."""
    return "dist" in value or set(value) == {"value", "range"}


def _own(config: Config, key: str) -> float | None:
    """The central value of uncertain parameter `key` (people.<mechanism>.<value>, or the
    market's) in `config`; None where it has no such value (the baseline's channel or close
    stage is not in this design, or the mechanism is off in it: the engines then use its
    neutral value, not the central one)."""
    the_market = market(config)
    if key in the_market:
        return central(the_market[key])
    if not key.startswith("people."):
        return None
    _, mech, name = key.split(".")
    table = getattr(config.people, mech)
    return central(getattr(table, name)) if table.enabled else None


def compare_designs(paths: Sequence[str | Path], profiles: Sequence[str] = ("realistic",),
                    overrides: Sequence[str] = (), scenarios: int = 8, replications: int = 4,
                    seed: int | None = None, engine: str = "numba", workers: int | None = None,
                    outcome: str = "bookings", method: str = "sobol",
                    progress: Progress | None = None,
                    configs: dict[tuple[str, str], Config] | None = None) -> DesignComparison:
    """Run every design (a whole config) under every profile on the same scenarios.

    `seed` defaults to the first config's run.seed; the scenarios of each profile are drawn
    from the first config under that profile. `configs` (from `load_designs`) saves loading
    the configs again."""
    # one string is not a list of them: its characters were read as files ('/: is a
    # folder'), profiles ('unknown profile 'r'') or overrides
    for name, value in (("paths", paths), ("profiles", profiles), ("overrides", overrides)):
        if isinstance(value, str | Path):
            raise TypeError(f"{name}: expected a list, got the single {type(value).__name__} "
                            f"{str(value)!r}")
    # '8' failed in the comparison below; 2**40 was numpy's MemoryError drawing them
    scenarios = whole("scenarios", scenarios, 1, MAX_SCENARIOS)
    if scenarios < 2:
        raise GtmsimError(f"--scenarios: at least 2, got {scenarios} (the confidence "
                          "intervals resample scenarios: one gives no interval)")
    replications = whole("replications", replications, 1, MAX_REPLICATIONS)  # before loading
    check_ranked_outcome(outcome)
    profiles = list(dict.fromkeys(profiles))
    if configs is None:
        configs = load_designs(paths, profiles, overrides)
    labels = design_labels(paths)
    for (label, _profile), cfg in configs.items():  # before any design runs
        check_scored_outcome(outcome, cfg, label)
    root = seed if seed is not None else configs[(labels[0], profiles[0])].run.seed
    drawn = {p: draw_scenarios(configs[(labels[0], p)], scenarios, root, method)
             for p in profiles}
    total = len(labels) * len(profiles) * scenarios * replications
    done = 0
    if progress:
        progress(done, total)
    frames = []
    for profile in profiles:
        params = sorted(uncertain_parameters(configs[(labels[0], profile)]))
        for label in labels:
            cfg = configs[(label, profile)]
            mine = uncertain_parameters(cfg)
            for drawn_sc in drawn[profile]:
                # a value this design fixes is its own, not the baseline's draw (a fixed
                # forgetting rate of 0.06 was replaced by the draw and read "identical")
                sc = Scenario(drawn_sc.index, {k: v for k, v in drawn_sc.values.items()
                                               if k in mine}, drawn_sc.seed)
                df = evaluate(cfg, {}, [sc], replications, engine, workers)
                if outcome not in df.columns:
                    raise GtmsimError(f"--outcome: no outcome column {outcome!r}")
                per_scenario(df, outcome)  # refuses a scenario where it is never defined
                lead = [pl.lit(label).alias("design"), pl.lit(profile).alias("profile"),
                        pl.lit(sc.index, pl.Int64).alias("scenario"),
                        pl.lit(sc.seed, pl.Int64).alias("scenario_seed"),
                        pl.col("replication").cast(pl.Int64)]
                lead += [pl.lit(sc.values[n] if n in sc.values else _own(cfg, n),
                                pl.Float64).alias(n) for n in params]
                rest = [c for c in df.columns
                        if c not in ("scenario", "scenario_seed", "replication")]
                frames.append(df.select(*lead, *rest))
                done += replications
                if progress:
                    progress(done, total)
    rows = pl.concat(frames, how="diagonal_relaxed")
    return DesignComparison(labels, [str(p) for p in paths], profiles, outcome, replications,
                            root, engine, drawn, rows, configs)
