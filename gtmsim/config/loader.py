"""Load a TOML config, apply a profile and ``--set`` overrides, validate, explain errors."""

from __future__ import annotations

import copy
import difflib
import tomllib
import typing
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from gtmsim.config.schema import TERMINALS, Config, Stage
from gtmsim.errors import ConfigError

BUILTIN_PROFILES = ("ideal", "realistic", "stressed")
DEFAULT_CONFIG = "b2b_saas.toml"


def _package_text(name: str) -> str:
    return resources.files("gtmsim.config").joinpath(name).read_text(encoding="utf-8")


def _parse_toml(text: str, source: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("", f"{source} is not valid TOML: {exc}") from None


def read_toml(path: str | Path | None) -> dict:
    """The raw TOML of a config file, or of the embedded default when ``path`` is None."""
    if path is None:
        return _parse_toml(_package_text(DEFAULT_CONFIG), "the embedded default config")
    p = Path(path)
    if not p.is_file():
        raise ConfigError("", f"config file not found: {p}")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("", f"cannot read {p}: {exc}") from None
    return _parse_toml(text, str(p))


def profile_table(name: str, raw: dict) -> dict:
    """The ``people`` table of a profile: built-in, the config's own, or a TOML file."""
    own = raw.get("profiles", {})
    if isinstance(own, dict) and name in own:
        return copy.deepcopy(own[name])
    if name in BUILTIN_PROFILES:
        return _parse_toml(_package_text(f"profiles/{name}.toml"), f"profile {name}")["people"]
    if name.endswith(".toml"):
        data = read_toml(name)
        return data.get("people", data)
    known = sorted(set(BUILTIN_PROFILES) | set(own if isinstance(own, dict) else ()))
    raise ConfigError("profile", f"unknown profile {name!r}{_did_you_mean(name, known)}; "
                      f"known: {', '.join(known)} or a path to a .toml file")


def deep_merge(base: dict, top: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in top.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def parse_override(item: str) -> tuple[list[str], Any]:
    """``a.b.c=value`` -> (["a", "b", "c"], value); the value is read as TOML, else a string."""
    if "=" not in item:
        raise ConfigError("--set", f"expected key.path=value, got {item!r}")
    key, text = item.split("=", 1)
    parts = [p.strip().strip('"') for p in key.strip().split(".")]
    if not all(parts):
        raise ConfigError("--set", f"bad key path {key!r}")
    try:
        value = tomllib.loads(f"v = {text.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = text.strip()
    return parts, value


def set_path(data: dict, parts: list[str], value: Any) -> None:
    node = data
    for i, p in enumerate(parts[:-1]):
        nxt = node.get(p)
        if nxt is None:
            nxt = node[p] = {}
        if not isinstance(nxt, dict):
            raise ConfigError(".".join(parts[: i + 1]), "is a value, not a table")
        node = nxt
    node[parts[-1]] = value


def get_path(data: dict, parts: list[str]) -> Any:
    node: Any = data
    for i, p in enumerate(parts):
        if not isinstance(node, dict) or p not in node:
            raise KeyError(".".join(parts[: i + 1]))
        node = node[p]
    return node


def resolve(raw: dict, profile: str | None = None, overrides: list[str] = ()) -> dict:
    """Raw TOML -> one dict: profile people table, then the config's own people, then --set."""
    data = copy.deepcopy(raw)
    for item in overrides:
        parts, value = parse_override(item)
        set_path(data, parts, value)
    name = profile or data.get("profile", "realistic")
    if not isinstance(name, str):
        raise ConfigError("profile", f"expected a profile name, got {name!r}")
    people = data.get("people", {})
    if not isinstance(people, dict):
        raise ConfigError("people", "expected a table")
    data["profile"] = name
    data["people"] = deep_merge(profile_table(name, data), people)
    if profile is not None:
        # An explicit profile wins over the config's own people table for `enabled` flags,
        # so `--profile ideal` is ideal whatever the file says.
        base = profile_table(name, data)
        for mech, table in base.items():
            if isinstance(table, dict) and "enabled" in table:
                data["people"].setdefault(mech, {})["enabled"] = table["enabled"]
    for item in overrides:  # --set on people.* beats the profile too
        parts, value = parse_override(item)
        if parts[0] == "people":
            set_path(data, parts, value)
    return data


def load_config(
    path: str | Path | None = None, profile: str | None = None, overrides: list[str] = ()
) -> Config:
    """Read, resolve and validate a config; raises ConfigError naming the bad key."""
    return validate(resolve(read_toml(path), profile, list(overrides)))


def validate(data: dict) -> Config:
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise _explain(exc) from None
    check_graph(config)
    return config


# --------------------------------------------------------------------------- explaining errors


def _did_you_mean(word: str, options) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _fields_at(loc: tuple) -> list[str]:
    """Field names allowed at a location of the schema, to suggest a fix for a typo."""
    model: Any = Config
    for part in loc[:-1]:
        if model is None:
            return []
        if isinstance(model, type) and issubclass(model, BaseModel):
            field = model.model_fields.get(str(part))
            if field is None:
                return []
            model = field.annotation
        else:  # a dict value or a union: unwrap to the model it holds
            model = _unwrap(model, part)
        while typing.get_origin(model) in (dict,) or _is_optional(model):
            model = _unwrap(model, part)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return [f.alias or n for n, f in model.model_fields.items()]
    return []


def _is_optional(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, getattr(__import__("types"), "UnionType", None))


def _unwrap(tp: Any, part: Any) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is dict:
        return args[1]
    if origin is typing.Annotated:
        return _unwrap(args[0], part)
    if args:
        models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
        for m in models:  # discriminated union: the loc names the tag
            tag = m.model_fields.get("dist")
            if tag is not None and part in typing.get_args(tag.annotation):
                return m
        if len(models) == 1:
            return models[0]
    return None


def _explain(exc: ValidationError) -> ConfigError:
    err = exc.errors()[0]
    loc = tuple(err["loc"])
    # pydantic puts the union tag (e.g. 'lognormal') into loc; it is not a key of the file
    shown = [str(p) for p in loc if not _is_tag(p, loc)]
    path = ".".join(shown)
    kind = err["type"]
    given = err.get("input")
    if kind == "extra_forbidden":
        return ConfigError(path, f"unknown key{_did_you_mean(str(loc[-1]), _fields_at(loc))}")
    if kind == "missing":
        return ConfigError(path, "required key is missing")
    if kind == "union_tag_invalid":
        return ConfigError(path, f"unknown distribution {given.get('dist')!r}" if isinstance(
            given, dict) else err["msg"])
    if kind == "union_tag_not_found":
        return ConfigError(path, "a distribution needs 'dist' (fixed, exponential, lognormal, "
                           "gamma, uniform, triangular, beta, empirical)")
    msg = err["msg"].removeprefix("Value error, ")
    return ConfigError(path, f"{msg}; given {given!r}" if not isinstance(given, dict) else msg)


_TAGS = {"fixed", "exponential", "lognormal", "gamma", "uniform", "triangular", "beta",
         "empirical", "float", "Uncertain", "function-after[_value_in_range(), Uncertain]"}


def _is_tag(part: Any, loc: tuple) -> bool:
    return isinstance(part, str) and (part in _TAGS or part.startswith("function-"))


# --------------------------------------------------------------------------- graph checks


def check_graph(c: Config) -> None:
    """Cross-references a schema cannot see: every name must point at something real."""
    stages, teams = c.stages, c.teams
    targets = set(stages) | set(TERMINALS)
    for name, ch in c.channels.items():
        if ch.entry not in stages:
            raise ConfigError(f"channels.{name}.entry",
                              f"no stage {ch.entry!r}{_did_you_mean(ch.entry, stages)}")
    for name, st in stages.items():
        if st.team not in teams:
            raise ConfigError(f"stages.{name}.team",
                              f"no team {st.team!r}{_did_you_mean(st.team, teams)}")
        if teams[st.team].headcount == 0:
            raise ConfigError(f"teams.{st.team}.headcount",
                              f"team has no people but owns stage {name!r}")
        for outcome, target in _routes(st).items():
            if target is not None and target not in targets:
                raise ConfigError(f"stages.{name}.routes.{outcome}",
                                  f"no stage or fate {target!r}"
                                  f"{_did_you_mean(target, targets)}")
        if st.kind in ("review", "contact") and st.routes.qualified is None:
            raise ConfigError(f"stages.{name}.routes.qualified",
                              f"a {st.kind} stage must say where qualified leads go")
        if st.kind == "close":
            if st.routes.won is None:
                raise ConfigError(f"stages.{name}.routes.won", "a close stage must route won deals")
            if st.buyer_days is None:
                raise ConfigError(f"stages.{name}.buyer_days",
                                  "a close stage needs the buyer's decision time")
    for name, h in c.handoffs.items():
        for key, stage in (("from", h.source), ("to", h.target)):
            if stage not in stages:
                raise ConfigError(f"handoffs.{name}.{key}",
                                  f"no stage {stage!r}{_did_you_mean(stage, stages)}")
        if stages[h.source].team == stages[h.target].team:
            raise ConfigError(f"handoffs.{name}", "a handoff joins stages of different teams")
        if h.target not in _routes(stages[h.source]).values():
            raise ConfigError(f"handoffs.{name}.to",
                              f"stage {h.source!r} never routes to {h.target!r}")
    for name, t in teams.items():
        if t.kpi is not None and t.kpi.stage not in stages:
            raise ConfigError(f"teams.{name}.kpi.stage",
                              f"no stage {t.kpi.stage!r}{_did_you_mean(t.kpi.stage, stages)}")
    rs = c.nurture.return_stage
    if rs is not None and rs not in stages:
        raise ConfigError("nurture.return_stage", f"no stage {rs!r}{_did_you_mean(rs, stages)}")
    raw = c.model_dump(by_alias=True)
    for name, lever in c.levers.items():
        parts = lever.path.split(".")
        try:
            value = get_path(raw, parts)
        except KeyError as exc:
            raise ConfigError(f"levers.{name}.path", f"no config value at {exc.args[0]!r}") from None
        if lever.choices is not None:
            if value not in lever.choices:
                raise ConfigError(f"levers.{name}", f"current value {value!r} is not a choice")
        elif not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ConfigError(f"levers.{name}.path", f"{lever.path} is not a number")
        elif not lever.low <= value <= lever.high:
            raise ConfigError(f"levers.{name}",
                              f"current value {value} is outside [{lever.low}, {lever.high}]")
    budget = c.design.annual_budget
    if budget is not None:
        cost = sum(t.headcount * t.cost_per_head for t in teams.values())
        if cost > budget:
            raise ConfigError("design.annual_budget",
                              f"headcount costs {cost:,.0f} a year, over the budget {budget:,.0f}")


def _routes(st: Stage) -> dict[str, str | None]:
    return st.routes.model_dump()
