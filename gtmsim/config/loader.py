"""Load a TOML config, apply a profile and ``--set`` overrides, validate, explain errors."""

from __future__ import annotations

import copy
import datetime
import difflib
import re
import tomllib
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ValidationError

from gtmsim.config.schema import MECHANISMS, TERMINALS, Config, Mechanism, Stage, Uncertain
from gtmsim.errors import ConfigError

BUILTIN_PROFILES = ("ideal", "realistic", "stressed")
DEFAULT_CONFIG = "b2b_saas.toml"


def _package_text(name: str) -> str:
    return resources.files("gtmsim.config").joinpath(name).read_text(encoding="utf-8")


MAX_DEPTH = 64  # tables and arrays within each other; a config needs about 6


def _nested_too_deeply(value: Any) -> bool:
    """Whether `value` holds tables or arrays more than MAX_DEPTH deep. Dotted TOML headers
    (`[a.a.a...]`) parse flat, so tomllib's own recursion does not catch them, and copying or
    merging such a table later ended in a RecursionError."""
    level = [value]
    for _ in range(MAX_DEPTH + 1):
        level = [v for x in level for v in (x.values() if isinstance(x, dict) else
                                            x if isinstance(x, list) else ())]
        if not level:
            return False
    return True


def _parse_toml(text: str, source: str) -> dict:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = re.search(r"\(at line (\d+), column (\d+)\)", msg)
        where = f"{source}:{m.group(1)}" if m else source
        what = msg[: m.start()].strip() if m else msg
        col = f" (column {m.group(2)})" if m else ""
        raise ConfigError(where, f"not valid TOML: {what}{col}") from None
    except RecursionError:  # tomllib recurses once per level of [ or {
        raise ConfigError(source, "cannot read: a value is nested too deeply") from None
    if _nested_too_deeply(data):
        raise ConfigError(source, f"cannot read: tables are nested more than {MAX_DEPTH} deep")
    return data


def read_toml(path: str | Path | None, kind: str = "config") -> dict:
    """The raw TOML of a config file (or a `kind` of file), or of the embedded default when
    ``path`` is None."""
    if path is None:
        return _parse_toml(_package_text(DEFAULT_CONFIG), "the embedded default config")
    p = Path(path)
    if not p.is_file():
        what = (f"is a folder, not a {kind} file" if p.is_dir() else
                "is not a regular file" if p.exists() else
                "a symbolic link that leads nowhere (or round in a loop)" if p.is_symlink()
                else f"no such {kind} file")
        raise ConfigError(str(p), what)
    try:
        # utf-8-sig: an editor's byte-order mark is not TOML, and not the user's mistake
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigError(str(p), "not a text file (TOML must be UTF-8)") from None
    except OSError as exc:
        raise ConfigError(str(p), f"cannot read: {exc.strerror or exc}") from None
    return _parse_toml(text, str(p))


def profile_table(name: str, raw: dict) -> dict:
    """The ``people`` table of a profile: built-in, the config's own, or a TOML file."""
    own = raw.get("profiles", {})
    if isinstance(own, dict):
        for mine in own:
            if mine in BUILTIN_PROFILES:
                raise ConfigError(f"profiles.{mine}", "is a built-in profile's name; give "
                                  "yours another (the built-in one always means what the "
                                  "docs say)")
    if isinstance(own, dict) and name in own:
        table = own[name]
        where = f"profiles.{name}"
    elif name in BUILTIN_PROFILES:
        table = _parse_toml(_package_text(f"profiles/{name}.toml"), f"profile {name}")["people"]
        where = f"profile {name}"
    elif name.endswith(".toml"):
        data = read_toml(name, "profile")
        extra = [k for k in data if k != "people"] if "people" in data else []
        if extra:  # read for its people only: anything beside them would pass unseen
            raise ConfigError(f"{name}: {extra[0]}", "a profile file holds a [people] table "
                              "only; the rest of a model belongs in the config")
        table = data.get("people", data)
        where = f"{name}: people" if "people" in data else f"{name}:"
        if not table:  # nothing in it: every mechanism on at its defaults, silently
            raise ConfigError(name, "the profile file sets nothing; give it a [people] table "
                              "of mechanisms (docs/model.md lists them)")
    else:
        known = sorted(set(BUILTIN_PROFILES) | set(own if isinstance(own, dict) else ()))
        raise ConfigError("profile", f"unknown profile {name!r}{_did_you_mean(name, known)}; "
                          f"known: {', '.join(known)} or a path to a .toml file")
    if not isinstance(table, dict):
        raise ConfigError(where, f"expected a table of mechanisms, got {_show(table)}")
    for key in table:  # named here: once merged, a bad key would read as people.<key>
        if key not in MECHANISMS:
            # a file with no [people] table is read as one: a config given for a profile
            # has no mechanism in it, and should not read as a misspelt one
            bare = where.endswith(":")
            raise ConfigError(f"{where} {key}" if bare else f"{where}.{key}",
                              "unknown mechanism"
                              f"{_did_you_mean(key, MECHANISMS)}"
                              f"{', and the file has no [people] table' if bare else ''}; a "
                              f"profile is a table of mechanisms: {', '.join(MECHANISMS)}")
    return copy.deepcopy(table)


def deep_merge(base: dict, top: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in top.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def parse_override(item: str) -> tuple[list[str], Any]:
    """``a.b.c=value`` -> (["a", "b", "c"], value); the value is read as TOML, else a string;
    a bare ``none`` is None, for an optional value such as a stage's `sla_hours` (TOML has no
    null): the schema refuses it where a value is required."""
    if not isinstance(item, str) or "=" not in item:
        raise ConfigError("--set", f"expected key.path=value, got {_show(item)}")
    key, text = item.split("=", 1)
    parts = [p.strip().strip('"\'') for p in key.strip().split(".")]  # TOML's two quotes
    if len(parts) > MAX_DEPTH:
        raise ConfigError("--set", f"the key path {key.strip()[:40]!r}... is more than "
                          f"{MAX_DEPTH} names deep")
    if not all(parts):
        raise ConfigError("--set", f"bad key path {key.strip()!r} in {item!r} "
                          "(expected dotted names like stages.sdr_qualify.threshold)")
    text = text.strip()
    if not text:
        raise ConfigError("--set", f"no value for {key.strip()!r} in {item!r}")
    if text == "none":
        if parts[0] == "people":  # merged over the profile's: removing one would not unset it
            mechanism = parts[1] if len(parts) > 1 else "NAME"
            raise ConfigError(".".join(parts), "a people value cannot be none (switch the "
                              f"mechanism off with --set people.{mechanism}.enabled=false)")
        return parts, None
    try:
        parsed = tomllib.loads(f"v = {text}")
        value = parsed["v"] if set(parsed) == {"v"} else text
    except tomllib.TOMLDecodeError:
        value = text
    except RecursionError:
        raise ConfigError(".".join(parts), "cannot read: the value is nested too deeply") from None
    if _nested_too_deeply(value):
        raise ConfigError(".".join(parts), f"cannot read: tables are nested more than "
                          f"{MAX_DEPTH} deep")
    return parts, value


def _no_index(path: str) -> ConfigError:
    return ConfigError(path, "is a list, whose items --set cannot reach by their index; give "
                       f"the whole list (--set '{path}=[...]')")


def _by_index(given: Any) -> bool:
    """A table --set made of a list's item paths (`bursts.0.multiplier=2`: {'0': ...})."""
    return isinstance(given, dict) and bool(given) and all(
        isinstance(k, str) and k.isdigit() for k in given)


def set_path(data: dict, parts: list[str], value: Any) -> None:
    """Set data[parts[0]][parts[1]]... to value, making tables on the way."""
    node = data
    for i, p in enumerate(parts[:-1]):
        nxt = node.get(p)
        if nxt is None:
            nxt = node[p] = {}
        if isinstance(nxt, list):  # TOML paths name tables' keys, never a list's items
            raise _no_index(".".join(parts[: i + 1]))
        if not isinstance(nxt, dict):
            raise ConfigError(".".join(parts[: i + 1]), "is a value, not a table")
        node = nxt
    node[parts[-1]] = value


NAMED = {"teams": "team", "stages": "stage", "channels": "channel", "handoffs": "handoff",
         "levers": "lever", "profiles": "profile"}


def _check_named(data: dict, parts: list[str]) -> None:
    """A --set into a team, stage, channel, handoff, lever or profile the config does not have
    is a typo (it would add a new, incomplete one); a new one is set as a whole table."""
    if len(parts) < 3 or parts[0] not in NAMED or not isinstance(data.get(parts[0]), dict):
        return
    have = data[parts[0]]
    if parts[1] not in have:
        what = NAMED[parts[0]]
        raise ConfigError(f"{parts[0]}.{parts[1]}", f"unknown {what}"
                          f"{_did_you_mean(parts[1], list(have))}; a new {what} is set as "
                          f"a whole table ({parts[0]}.{parts[1]}={{...}})")


def get_path(data: dict, parts: list[str]) -> Any:
    node: Any = data
    for i, p in enumerate(parts):
        if not isinstance(node, dict) or p not in node:
            raise KeyError(".".join(parts[: i + 1]))
        node = node[p]
    return node


def _check_own_profiles(data: dict) -> None:
    """Each of the config's own [profiles.X] on its own, whether chosen or not: a mistake in
    one is named where it was written (profiles.X.latency.median_hour), not as people.*, and
    does not wait for the day the profile is chosen."""
    own = data.get("profiles")
    if not isinstance(own, dict):
        return
    for name in own:
        trial = {**data, "profile": name, "people": profile_table(name, data)}
        try:
            try:
                check_people(Config.model_validate(trial))
            except ValidationError as exc:
                raise _explain(exc) from None
        except ConfigError as exc:
            if exc.path == "people" or exc.path.startswith("people."):
                raise ConfigError(f"profiles.{name}{exc.path.removeprefix('people')}",
                                  exc.message) from None
            # anything else is the config's own to report, with its own path


def _same_profile(a: Any, b: Any) -> bool:
    """Whether two profile names name one profile (a file by any path to it)."""
    if a == b:
        return True
    files = all(isinstance(x, str) and x.endswith(".toml") for x in (a, b))
    return files and Path(a).resolve() == Path(b).resolve()


def _check_profile_file(name: str, table: dict, data: dict) -> None:
    """A profile file's values on their own: a mistake is named in the file
    (my.toml: people.latency.median_hours), not as the config's people.*."""
    try:
        try:
            check_people(Config.model_validate({**data, "people": table}))
        except ValidationError as exc:
            raise _explain(exc) from None
    except ConfigError as exc:
        if exc.path == "people" or exc.path.startswith("people."):
            raise ConfigError(f"{name}: {exc.path}", exc.message) from None


def resolve(raw: dict, profile: str | Path | None = None, overrides: list[str] = ()) -> dict:
    """Raw TOML -> one dict: profile people table, then the config's own people, then --set."""
    return _resolve(raw, profile, overrides)[0]


def _per_value(parts: list[str], value: Any) -> list[tuple[list[str], Any]]:
    """A --set of a people table as one --set per value in it, so that it changes those
    values and keeps the rest, as the config's own [people] table does over a profile's:
    replaced whole, the table's other values (and its `enabled` flag) fell back to the schema's
    defaults, not the profile's. An empty table sets nothing (set whole, it switched the
    mechanism on under `ideal` with the schema's values)."""
    if parts[0] == "people" and len(parts) <= 2 and isinstance(value, dict):
        if len(parts) == 2 and parts[1] not in MECHANISMS:
            raise ConfigError(f"people.{parts[1]}",
                              f"unknown key{_did_you_mean(parts[1], MECHANISMS)}")
        return [one for key, v in value.items() for one in _per_value([*parts, key], v)]
    return [(parts, value)]


def _resolve(raw: dict, profile: str | Path | None,
             overrides: list[str]) -> tuple[dict, frozenset[tuple[str, str]]]:
    """`resolve`'s dict, and the (mechanism, key) of each people value the config or a --set
    gave (not the profile): `to_table` writes those out."""
    if not isinstance(raw, dict):
        raise ConfigError("config", f"expected a table, got {_show(raw)}")
    data = copy.deepcopy(raw)
    parsed = [one for item in overrides for one in _per_value(*parse_override(item))]
    for parts, value in parsed:
        _check_named(data, parts)
        set_path(data, parts, value)
    own_name = data.get("profile", "realistic")
    if isinstance(profile, PathLike):  # a profile file given as a pathlib.Path
        profile = str(profile)
    name = profile if profile is not None else own_name
    if not isinstance(name, str) or not name:
        raise ConfigError("profile", f"expected a profile name, got {_show(name)}")
    _check_own_profiles(data)
    people = data.get("people", {})
    if not isinstance(people, dict):
        raise ConfigError("people", f"expected a table, got {_show(people)}")
    base = profile_table(name, data)
    if name.endswith(".toml"):
        _check_profile_file(name, base, data)
    data["profile"] = name
    data["people"] = deep_merge(base, people)
    own_keys = {(mech, key) for mech, table in people.items() if isinstance(table, dict)
                for key in table}
    if profile is not None and not _same_profile(profile, own_name):
        own_keys = {(m, key) for m, key in own_keys if key != "enabled"}  # the profile's
        # Another profile than the config's own decides which mechanisms are on, so
        # `--profile ideal` is ideal whatever the file says; naming the config's own profile
        # changes nothing (its `enabled` flags refine that profile). A mechanism the profile
        # leaves out, or gives no flag, is on under it (the schema's default), as under
        # `stressed`, which names every flag.
        for mech in MECHANISMS:
            table = base.get(mech, {})
            if isinstance(table, dict):
                mine = data["people"].get(mech)
                if isinstance(mine, dict):
                    own = people.get(mech)
                    if (isinstance(own, dict) and "enabled" in own
                            and not isinstance(own["enabled"], bool)):
                        # about to be replaced by the profile's: still the user's mistake,
                        # never silently dropped
                        raise ConfigError(f"people.{mech}.enabled", "expected true or false, "
                                          f"got {_show(own['enabled'])}")
                    mine["enabled"] = table.get("enabled", Mechanism().enabled)
    for parts, value in parsed:  # --set on people.* beats the profile too
        if parts[0] == "people":
            set_path(data, parts, value)
            if len(parts) > 2:
                own_keys.add((parts[1], parts[2]))
    return data, frozenset(own_keys)


def load_config(
    path: str | Path | None = None, profile: str | Path | None = None,
    overrides: Sequence[str] | None = ()
) -> Config:
    """Read, resolve and validate a config; raises ConfigError naming the bad key. No
    overrides (None or empty) leaves the file's values."""
    if path is not None and not isinstance(path, str | PathLike):  # not pathlib's TypeError
        raise TypeError(f"path: expected a config file's path or None (the default), got "
                        f"{type(path).__name__}")
    if overrides is None:
        overrides = ()
    if isinstance(overrides, str):  # its letters would be read as overrides one by one
        raise ConfigError("overrides", f"expected a list of 'key.path=value' strings, got the "
                          f"string {overrides!r}")
    if isinstance(overrides, Mapping):  # its keys would be read as overrides, without values
        given = [f"{k}={v}" for k, v in overrides.items()]
        raise ConfigError("overrides", f"expected a list of 'key.path=value' strings, got a "
                          f"{type(overrides).__name__}; write it as {given!r}")
    if not isinstance(overrides, Iterable):  # list() would fail with no name
        raise ConfigError("overrides", f"expected a list of 'key.path=value' strings, got "
                          f"{type(overrides).__name__} {_show(overrides)}")
    try:
        raw = read_toml(path)
        mine = raw.get("profile") if isinstance(raw, dict) else None
        if (path is not None and isinstance(mine, str) and mine.endswith(".toml")
                and not Path(mine).is_absolute()):
            # a profile file named in a config file is found beside it, as paths in a file are
            # (also when --profile names one: naming the config's own changes nothing)
            raw["profile"] = str(Path(path).parent / mine)
        data, own = _resolve(raw, profile, list(overrides))
    except ConfigError as exc:
        raise _one_line(exc) from None
    config = validate(data)
    _check_lever_bounds(config, data)
    config._own_people = own
    return config


def need_config(value: Any) -> None:
    """A TypeError naming the argument unless `value` is a loaded Config (not its path)."""
    if not isinstance(value, Config):
        raise TypeError(f"config: expected a Config (gtmsim.load_config(path)), got "
                        f"{type(value).__name__}")


def _check_lever_bounds(config: Config, data: dict) -> None:
    """Every value a lever may take makes a valid config with the other values as they are:
    a bound the model refuses (a headcount of 0, a threshold above 1) would stop the
    optimiser or a sweep midway, when it first tried it."""
    for name, lever in config.levers.items():
        parts = lever.path.split(".")
        if lever.choices is not None:
            ends = [("choices", v) for v in lever.choices]
        else:
            cast = int if lever.integer else float
            ends = [("low", cast(lever.low)), ("high", cast(lever.high))]
        for key, value in ends:
            trial = copy.deepcopy(data)
            set_path(trial, parts, value)
            try:
                validate(trial)
            except ConfigError as exc:
                raise ConfigError(f"levers.{name}.{key}",
                                  f"the lever may set {lever.path} = {value!r}, which is "
                                  f"refused ({exc}); narrow the lever") from None


def to_table(config: Config) -> dict:
    """The config as a TOML table that loads back to the same config.

    A profile file's table is copied in under ``[profiles]``. Its people values are kept where
    the config set them itself (its ``[people]`` table, a --set: `_own_people`) or where they
    differ from what its profile gives (with the schema's defaults): the rest come from the
    profile when the file is loaded, so loading it with another --profile gives that profile's
    people with the config's own values over them, as for the config it was made from, and
    not this profile's values under the other profile's name."""
    data = config.model_dump(mode="json", by_alias=True, exclude_none=True)
    prof = data["profile"]
    if prof.endswith(".toml"):
        # a profile file goes in as one of the config's own profiles, so that the table
        # reruns the same model wherever it is read and whatever becomes of the file
        own = data.setdefault("profiles", {})
        table = profile_table(prof, data)
        name = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(prof).stem) or "file"
        stem, k = name, 1
        while name in BUILTIN_PROFILES or (name in own and own[name] != table):
            k += 1  # another table under that name (the same one is reused: no copies)
            name = f"{stem}_{k}"
        own[name] = table
        data["profile"] = name
    given = validate({**data, "people": profile_table(data["profile"], data)}).model_dump(
        mode="json", by_alias=True, exclude_none=True)["people"]
    people = {}
    for mech, table in data["people"].items():
        own = {k: v for k, v in table.items()
               if given.get(mech, {}).get(k) != v or (mech, k) in config._own_people}
        if own:
            people[mech] = own
    data["people"] = people
    if not people:
        del data["people"]
    return data


def validate(data: dict) -> Config:
    """A resolved dict -> a Config; raises ConfigError (one line, naming the key) otherwise.
    A headcount over the budget is valid (see over_budget)."""
    try:
        try:
            config = Config.model_validate(data)
        except ValidationError as exc:
            raise _explain(exc) from None
        check_graph(config)
        check_people(config)
    except ConfigError as exc:
        raise _one_line(exc) from None
    return config


def check(config: Config) -> Config:
    """The config validated again as a whole, for one that may have been changed since it was
    loaded: assignment checks each field alone, and a change in place (a list appended to, a
    table added) nothing at all. Returns the validated copy, the one to compile; raises
    ConfigError, one line, naming the key."""
    # warnings off: a table added as a dict is validated here, not warned about
    checked = validate(config.model_dump(by_alias=True, warnings=False))
    checked._own_people = config._own_people
    return checked


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _one_line(exc: ConfigError) -> ConfigError:
    """Keys and values may hold newlines or control characters: show them escaped."""
    def esc(text: str) -> str:
        return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode(), text)

    if _CONTROL.search(exc.path) or _CONTROL.search(exc.message):
        return ConfigError(esc(exc.path), esc(exc.message))
    return exc


# --------------------------------------------------------------------------- explaining errors


def _did_you_mean(word: str, options) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


_SCALAR_TAGS = {"float": "a number", "int": "an integer", "str": "a string",
                "bool": "true or false"}
_KIND_WORDS = {"int_type": "an integer", "int_parsing": "an integer",
               "int_from_float": "a whole number", "float_type": "a number",
               "float_parsing": "a number", "bool_type": "true or false",
               "bool_parsing": "true or false", "string_type": "a string",
               "list_type": "a list", "tuple_type": "a list", "dict_type": "a table",
               "model_type": "a table", "model_attributes_type": "a table",
               "finite_number": "a finite number"}
_BOUNDS = {"greater_than": ("gt", ">"), "greater_than_equal": ("ge", ">="),
           "less_than": ("lt", "<"), "less_than_equal": ("le", "<=")}


def _strip(tp: Any) -> Any:
    """Annotated[X, ...] -> X; Optional[X] -> X."""
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif _is_optional(tp):
            members = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(members) != 1:
                return tp
            tp = members[0]
        else:
            return tp


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _step(tp: Any, part: Any) -> Any:
    """The type one step down the schema from `tp`, following a part of an error location."""
    tp = _strip(tp)
    if _is_model(tp):
        for name, f in tp.model_fields.items():
            if part in (name, f.alias):
                return f.annotation
        return None
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is dict:
        return args[1]
    if origin in (list, tuple):
        return args[0] if args else None
    if _is_optional(tp):  # a union: the location names the branch
        for m in args:
            m = _strip(m)
            if not _is_model(m):
                continue
            tag = m.model_fields.get("dist")
            if tag is not None and part in typing.get_args(tag.annotation):
                return m
            if isinstance(part, str) and part.startswith("function-") and m.__name__ in part:
                return m
        return None
    return None


def _fields_at(loc: tuple) -> list[str]:
    """Keys allowed where an unknown key was found, to suggest a fix for a typo."""
    tp: Any = Config
    try:
        for part in loc[:-1]:
            tp = _step(tp, part)
            if tp is None:
                return []
        tp = _strip(tp)
    except Exception:  # the schema is only a hint here; never fail while explaining
        return []
    if _is_model(tp):
        return [f.alias or n for n, f in tp.model_fields.items()]
    return []


def _is_optional(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:  # only `--set KEY=none` gives one
        return "none"
    if isinstance(value, (datetime.date, datetime.time)):  # TOML reads 2026-01-01 as a date
        return f"the {'time' if isinstance(value, datetime.time) else 'date'} {value.isoformat()}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _branch(loc: tuple) -> tuple[int, str] | None:
    """(position, tag) of the union branch an error location goes through, if any."""
    for i, part in enumerate(loc):
        if isinstance(part, str) and (part in _SCALAR_TAGS or part.startswith("function-")):
            return i, part
    return None


def _pick(errors: list[dict]) -> tuple[dict, list[str]]:
    """The error that explains best, and the alternatives a union would have accepted.

    A union (a number, or a {value, range} table) reports one error per branch; show the
    branch the user meant: the table's error for a table, the scalar's for a scalar.
    """
    first = errors[0]
    if first["type"] == "missing":  # a typo makes a missing key and an unknown one: explain both
        parent = tuple(first["loc"])[:-1]
        for e in errors:
            if e["type"] == "extra_forbidden" and tuple(e["loc"])[:-1] == parent:
                return e, []
    b = _branch(tuple(first["loc"]))
    if b is None:
        return first, []
    pos = b[0]
    prefix = tuple(first["loc"])[:pos]
    same = [e for e in errors if tuple(e["loc"])[:pos] == prefix and _branch(tuple(e["loc"]))]
    tags = []
    for e in same:
        tag = tuple(e["loc"])[pos]
        word = _SCALAR_TAGS.get(tag, "a table")
        if word not in tags:
            tags.append(word)
    is_table = isinstance(first.get("input"), dict) and len(tuple(first["loc"])) == pos + 1
    for e in same:
        tag = tuple(e["loc"])[pos]
        if (tag in _SCALAR_TAGS) != is_table:
            return e, tags if tag in _SCALAR_TAGS else []
    return first, tags


def _explain(exc: ValidationError) -> ConfigError:
    err, alternatives = _pick(exc.errors())
    loc = tuple(err["loc"])
    path = ".".join(_key_path(loc))
    kind = err["type"]
    given = err.get("input")
    ctx = err.get("ctx") or {}
    if kind == "extra_forbidden":
        return ConfigError(path, f"unknown key{_did_you_mean(str(loc[-1]), _fields_at(loc))}")
    if kind == "missing":
        return ConfigError(path, "required key is missing")
    if kind == "union_tag_invalid":
        return ConfigError(path, f"unknown distribution {_show(ctx.get('tag'))}"
                           f"{_did_you_mean(str(ctx.get('tag')), _DISTS)}; "
                           f"expected one of {', '.join(_DISTS)}")
    if kind == "union_tag_not_found":
        return ConfigError(path, f"a distribution needs 'dist' (one of {', '.join(_DISTS)})")
    if alternatives and len(alternatives) > 1 and kind in _KIND_WORDS:
        return ConfigError(path, f"expected {' or '.join(alternatives)}, got {_show(given)}")
    if kind in ("list_type", "tuple_type") and _by_index(given):
        return _no_index(path)
    if kind in _KIND_WORDS:
        return ConfigError(path, f"expected {_KIND_WORDS[kind]}, got {_show(given)}")
    if kind == "literal_error":
        expected = str(ctx.get("expected", "")).replace("'", "")
        options = expected.replace(" or ", ", ").split(", ")
        return ConfigError(path, f"expected one of {expected}, got {_show(given)}"
                           f"{_did_you_mean(str(given), options)}")
    if kind in _BOUNDS:
        key, op = _BOUNDS[kind]
        return ConfigError(path, f"must be {op} {ctx.get(key)}, got {_show(given)}")
    msg = " ".join(str(err["msg"]).removeprefix("Value error, ").split())
    if isinstance(given, (dict, list)) or kind == "value_error":
        return ConfigError(path, msg)
    return ConfigError(path, f"{msg}; got {_show(given)}")


_DISTS = ("fixed", "exponential", "lognormal", "gamma", "uniform", "triangular", "beta",
          "empirical")
_TAGS = {*_DISTS, *_SCALAR_TAGS, "Uncertain"}


def _is_tag(part: Any) -> bool:
    return isinstance(part, str) and (part in _TAGS or part.startswith("function-"))


def _key_path(loc: tuple) -> list[str]:
    """The keys of an error location. pydantic puts a union's branch into it ('lognormal',
    'float', 'function-after[...]'), which is no key of the file; which parts are branches
    is read off the schema, so a stage, channel or team named 'beta' keeps its name."""
    tp: Any = Config
    shown: list[str] = []
    for i, part in enumerate(loc):
        if tp is None:  # off the schema (after a scalar's branch): by name, as a last resort
            shown += [str(p) for p in loc[i:] if not _is_tag(p)]
            break
        if not _is_optional(_strip(tp)):
            shown.append(str(part))
        tp = _step(tp, part)
    return shown


# --------------------------------------------------------------------------- graph checks


# the keys and routes each stage kind reads (besides team, kind and effort_hours): one set
# to other than its default anywhere else would be ignored, so it is refused (a default is
# harmless: a config written out by `run` holds every key)
_KIND_KEYS = {
    "review": {"threshold", "reject_below", "sla_hours"},
    "contact": {"threshold", "reject_below", "sla_hours", "attempts", "attempt_hours",
                "attempt_gap_hours", "contact_probability"},
    "close": {"threshold", "reject_below", "sla_hours", "attempt_hours", "buyer_days",
              "win_scale"},
    "retain": {"sla_hours", "renewal_days", "churn_base"},
}
_KIND_ROUTES = {"review": {"qualified", "recycled", "rejected"},
                "contact": {"qualified", "recycled", "rejected", "unreached"},
                "close": {"recycled", "rejected", "won", "lost"},
                "retain": set()}


def _check_lever_path(c: Config, name: str, parts: list[str]) -> None:
    """A lever is a design choice: not the run's window or seed (a longer horizon 'wins' by
    counting longer), not what a stage is or who owns it, nor a key its stage never reads."""
    where = f"levers.{name}.path"
    if parts[0] in ("run", "name", "profile", "profiles"):
        raise ConfigError(where, f"{'.'.join(parts)} is how the model is run, not a design "
                          "choice; a lever sets headcounts, thresholds, SLAs, protocols, "
                          "routing, discipline, persistence or the design table")
    if parts[0] == "levers" or parts[:2] == ["design", "annual_budget"]:
        # a drawn budget bound nothing (the config's own is the constraint), and one below
        # the chosen design's cost made its design_best.toml refuse to load
        raise ConfigError(where, f"{'.'.join(parts)} is what the search is bounded by (the "
                          "budget, a lever's range), not a design choice")
    if parts[0] == "people":
        # a search free to pick faster, steadier people would tune the design for the very
        # behaviour it should hold up under; the scenarios vary people, the design does not
        raise ConfigError(where, f"{'.'.join(parts)} is how people behave, not a design "
                          "choice (the scenarios vary it); a lever sets what a planner "
                          "controls: headcounts, thresholds, SLAs, protocols, routing, "
                          "discipline, persistence, enablement or the shared KPI share")
    if parts[0] == "teams" and parts[-1] == "cost_per_head":
        raise ConfigError(where, f"{'.'.join(parts)} is what a head costs, which moves no "
                          "outcome of the model: a search would only cut it; set it in the "
                          "config")
    if parts[0] == "stages" and len(parts) == 3 and parts[1] in c.stages:
        st, key = c.stages[parts[1]], parts[2]
        if key in ("kind", "team"):
            raise ConfigError(where, f"a stage's {key} is the org's shape, not a lever")
        if key in Stage.model_fields and key not in _KIND_KEYS[st.kind] | {"effort_hours"}:
            raise ConfigError(where, f"a {st.kind} stage does not use {key}")


def _check_kind_keys(name: str, st: Stage) -> None:
    def changed(model: BaseModel, key: str) -> bool:
        return getattr(model, key) != type(model).model_fields[key].get_default(
            call_default_factory=True)

    for key in sorted(set(Stage.model_fields) - {"team", "kind", "effort_hours", "routes"}
                      - _KIND_KEYS[st.kind]):
        if changed(st, key):
            raise ConfigError(f"stages.{name}.{key}", f"a {st.kind} stage does not use it; "
                              f"it reads {', '.join(sorted(_KIND_KEYS[st.kind]))}")
    for key in sorted(set(type(st.routes).model_fields) - _KIND_ROUTES[st.kind]):
        if changed(st.routes, key):
            uses = ", ".join(sorted(_KIND_ROUTES[st.kind])) or "none (a customer stays)"
            what = ("sends qualified deals to the buyer" if (st.kind, key) == ("close",
                    "qualified") else f"has no {key!r} outcome")
            raise ConfigError(f"stages.{name}.routes.{key}",
                              f"a {st.kind} stage {what}; its routes: {uses}")


# which stage kinds count each KPI metric (anywhere else it reads 0 for ever)
_KPI_KINDS = {"passed": ("review", "contact", "close"), "won_value": ("close",),
              "won_count": ("close",), "retained": ("retain",)}


def _check_kpi_fits(team: str, kpi: Any, stage: Stage) -> None:
    kinds = _KPI_KINDS[kpi.metric]
    if stage.kind not in kinds:
        raise ConfigError(f"teams.{team}.kpi.metric",
                          f"{kpi.metric!r} is counted at a {' or '.join(kinds)} stage, and "
                          f"{kpi.stage!r} is a {stage.kind} stage: it would read 0 for ever")
    if kpi.metric == "retained" and kpi.target_per_quarter > 1:
        raise ConfigError(f"teams.{team}.kpi.target_per_quarter",
                          f"a retention target is a share (0.9 for 90%), got "
                          f"{kpi.target_per_quarter:g}")


def _check_nonnegative(c: Config) -> None:
    """Durations and deal values drawn from a uniform, triangular or empirical distribution
    must not go below 0 (a negative effort or buyer delay would run time backwards); a
    lead's quality is a chance, cut to [0, 1], and may be drawn past it."""
    def walk(value: Any, where: str) -> None:
        if isinstance(value, BaseModel):
            low = None
            if getattr(value, "dist", None) in ("uniform", "triangular"):
                low, key = value.low, "low"
            elif getattr(value, "dist", None) == "empirical":
                low, key = min(value.values), "values"
            if low is not None and low < 0 and not where.endswith(".quality"):
                raise ConfigError(f"{where}.{key}", f"must not be negative, got {low:g} "
                                  "(a duration or an amount)")
            for name in type(value).model_fields:
                walk(getattr(value, name), f"{where}.{name}" if where else name)
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{where}.{k}")

    walk(c, "")


# the result columns that name no channel, team or stage (gtmsim.outcomes.replication_row)
_FIXED_COLUMNS = ("replication", "seed", "leads_created", "bookings", "pipeline_created",
                  "opportunities", "won", "lost", "disqualified", "nurtured", "churned",
                  "retained", "leaked_forgotten", "leaked_decayed", "leaked_ignored",
                  "leaked_handoff", "leaked_turnover", "leaked", "open_at_end", "win_rate",
                  "cycle_days_mean", "cycle_days_median", "rework_hours", "events",
                  "attempts_per_lead", "never_contacted_share")


def _check_columns(c: Config) -> None:
    """Each result column belongs to one thing: a channel named 'created' would write its
    leads into `leads_created`, a team named 'at_end' its open leads into `open_at_end`, a
    team 'target_x' its KPI into team x's `kpi_target_x`, silently, one over the other."""
    owner = {col: "an outcome of the whole run" for col in _FIXED_COLUMNS}
    made = []
    for name in c.channels:
        made += [(f"{p}{name}", f"channels.{name}") for p in
                 ("leads_", "never_contacted_share_", "qualify_rate_1h_", "qualify_rate_24h_")]
    for name, t in c.teams.items():
        made += [(f"{p}{name}", f"teams.{name}") for p in
                 ("util_", "wip_", "queue_", "throughput_", "open_", "sojourn_",
                  "attrition_", "staffed_")]
        if t.kpi is not None:
            made += [(f"{p}{name}", f"teams.{name}")
                     for p in ("kpi_", "kpi_target_", "kpi_attainment_")]
    for name, st in c.stages.items():
        made += [(f"{p}{name}", f"stages.{name}")
                 for p in ("pass_rate_", "decisions_", "qualified_", "leaks_at_", "won_at_",
                           "lost_at_", "disqualified_at_", "nurtured_at_", "retained_at_",
                           "churned_at_", "nurture_returns_", "rework_returns_",
                           "rework_sent_back_")]
        # each handoff edge (a route to another team's stage) has its trust_<from>-><to>
        targets = {getattr(st.routes, k) for k in _KIND_ROUTES[st.kind]}
        made += [(f"trust_{name}->{t}", f"stages.{name}") for t in sorted(targets, key=str)
                 if t in c.stages and c.stages[t].team != st.team]
    for col, who in made:
        if col in owner and owner[col] != who:
            raise ConfigError(who, f"its result column {col!r} is taken by {owner[col]} "
                              "(one would overwrite the other); give it another name")
        owner[col] = who


MAX_DEAL_VALUE = 1e15


def _average(value: Any) -> float:
    """The mean of a config's distribution table, as the engines draw it."""
    from gtmsim import distributions as D

    pool: list[float] = []
    kind, p0, p1, p2 = D.encode(value, pool)
    return D.mean(kind, p0, p1, p2, np.asarray(pool, dtype=float))


def _check_deal_value(value: Any, where: str) -> None:
    """A channel's deal value, on average, at most MAX_DEAL_VALUE: bookings, their spread and
    the AE's attainment went past a float's range (inf, and numpy's overflow warnings) with
    a deal of 1e308."""
    average = _average(value)
    if not average <= MAX_DEAL_VALUE:
        raise ConfigError(where, f"a deal worth {average:.3g} on average; at most "
                          f"{MAX_DEAL_VALUE:g}")


def _check_quality(value: Any, where: str) -> None:
    """A lead's quality is a chance, cut to [0, 1]: a draw may pass an end, but a mean
    outside it can only be a mistake (30 for 0.3 ran with every lead's quality at 1)."""
    average = _average(value)
    if not 0.0 <= average <= 1.0:
        raise ConfigError(where, f"a lead's quality is a chance in [0, 1], but its mean is "
                          f"{average:.4g} (0.3 for 30%)")


def _not_into_retain(stages: dict, target: str | None, where: str, what: str) -> None:
    """A retain stage onboards and renews customers, and the `customer` fate counts one
    retained at once: of the routes, only a close stage's won deals go to either (a lost,
    turned-away or nurtured lead would be counted a customer without a deal ever won). A
    channel may enter a retain stage: customers who bought on their own."""
    if target == "customer":
        raise ConfigError(where, f"'customer' is the fate of a close stage's won deals, "
                          f"counted retained at once; {what} are not customers")
    if target in stages and stages[target].kind == "retain":
        raise ConfigError(where, f"{target!r} is a retain stage, which takes a close stage's "
                          f"won deals only (and a channel's own customers); {what} are not "
                          "customers")


def check_graph(c: Config) -> None:
    """Cross-references a schema cannot see: every name must point at something real."""
    stages, teams = c.stages, c.teams
    targets = set(stages) | set(TERMINALS)
    for table in ("channels", "teams", "stages", "handoffs", "levers"):
        for name in getattr(c, table):
            if not name.strip():  # no --set or lever path reaches it, and "" reads as no name
                raise ConfigError(f"{table}", f"name {name!r} is blank; give it a name")
            if "." in name:  # --set and lever paths split on dots: it could not be reached
                raise ConfigError(f"{table}", f"name {name!r} holds a dot, which --set and "
                                  "lever paths read as a separator; use _ or -")
    _check_columns(c)
    for name in stages:
        if ":" in name:  # the event log's leak rows are `<stage>:leaked`: 'a:leaked' read as a's
            raise ConfigError("stages", f"name {name!r} holds a colon, which the event log "
                              "reads as the end of a stage's name (`<stage>:leaked`); use _ or -")
        if name in TERMINALS:  # a route to it would reach the stage, never the fate
            raise ConfigError(f"stages.{name}", f"{name!r} is the name of a fate (one of "
                              f"{', '.join(TERMINALS)}); give the stage another name")
    _check_nonnegative(c)
    for name, ch in c.channels.items():
        if ch.entry not in stages:
            raise ConfigError(f"channels.{name}.entry",
                              f"no stage {ch.entry!r}{_did_you_mean(ch.entry, stages)}")
        _check_deal_value(ch.value, f"channels.{name}.value")
        _check_quality(ch.quality, f"channels.{name}.quality")
    for name, st in stages.items():
        _check_kind_keys(name, st)
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
            if not (st.kind == "close" and outcome == "won"):
                _not_into_retain(stages, target, f"stages.{name}.routes.{outcome}",
                                 f"{outcome} leads")
        if st.kind in ("review", "contact") and st.routes.qualified is None:
            raise ConfigError(f"stages.{name}.routes.qualified",
                              f"a {st.kind} stage must say where qualified leads go")
        if st.routes.qualified == name:  # judged again and again, never moving on
            raise ConfigError(f"stages.{name}.routes.qualified", "qualified leads go on to "
                              "another stage, not back to this one")
        if st.kind == "close":
            if st.routes.won is None:
                raise ConfigError(f"stages.{name}.routes.won", "a close stage must route won deals")
            won = st.routes.won
            if won != "customer" and (won not in stages or stages[won].kind != "retain"):
                # anywhere else a won deal is decided again (won again: its value booked
                # twice) or ends as something it is not
                raise ConfigError(f"stages.{name}.routes.won",
                                  f"{won!r}: a won deal goes to a retain stage or 'customer'")
            if st.buyer_days is None:
                raise ConfigError(f"stages.{name}.buyer_days",
                                  "a close stage needs the buyer's decision time")
    joined: dict[tuple[str, str], str] = {}
    for name, h in c.handoffs.items():
        first = joined.setdefault((h.source, h.target), name)
        if first != name:  # the spec keeps one protocol per edge: the other was ignored
            raise ConfigError(f"handoffs.{name}", f"joins {h.source!r} to {h.target!r}, as "
                              f"handoffs.{first} does; give a pair of stages one handoff")
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
        if t.kpi is not None and stages[t.kpi.stage].team == name:
            _check_kpi_fits(name, t.kpi, stages[t.kpi.stage])
        if t.kpi is not None and stages[t.kpi.stage].team != name:
            # the KPI counts the team's own work: it would read 0 for ever
            own = [s for s, st in stages.items() if st.team == name]
            raise ConfigError(f"teams.{name}.kpi.stage",
                              f"stage {t.kpi.stage!r} belongs to team "
                              f"{stages[t.kpi.stage].team!r}; a team's KPI counts a stage it "
                              f"owns ({', '.join(repr(s) for s in own) or 'none'})")
    rs = c.nurture.return_stage
    if rs is not None and rs not in stages:
        raise ConfigError("nurture.return_stage", f"no stage {rs!r}{_did_you_mean(rs, stages)}")
    _not_into_retain(stages, rs, "nurture.return_stage", "returning leads")
    raw = c.model_dump(by_alias=True)
    owner: dict[str, str] = {}
    for name, lever in c.levers.items():
        parts = lever.path.split(".")
        _check_lever_path(c, name, parts)
        first = owner.setdefault(lever.path, name)
        if first != name:  # which of the two would a design's value be?
            raise ConfigError(f"levers.{name}.path", f"{lever.path} is levers.{first}'s "
                              "path already; give a value one lever")
        try:
            value = get_path(raw, parts)
        except KeyError as exc:
            raise ConfigError(f"levers.{name}.path",
                              f"no config value at {exc.args[0]!r}") from None
        if lever.choices is not None:
            if value not in lever.choices:
                raise ConfigError(f"levers.{name}", f"current value {value!r} is not a choice")
        elif value is None:
            raise ConfigError(f"levers.{name}.path", f"{lever.path} is not set in the config; "
                              "give it a value within the lever's bounds")
        elif not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ConfigError(f"levers.{name}.path", f"{lever.path} is not a number")
        elif not lever.low <= value <= lever.high:
            raise ConfigError(f"levers.{name}",
                              f"current value {value} is outside {lever.bounds()}; "
                              f"widen levers.{name}.low/high, or remove the lever")
        elif lever.integer and not float(value).is_integer():
            # the own design is the search's first trial: refused there as 'expected a whole
            # number', the search then stopped on it after every trial had run
            raise ConfigError(f"levers.{name}",
                              f"current value {value} is not a whole number, as "
                              f"levers.{name}.integer = true asks")


def over_budget(c: Config) -> str | None:
    """How the config's headcount breaks `design.annual_budget`, or None. The budget is the
    optimiser's constraint (a design over it is not chosen); `run` and `validate` note it,
    and a planner may still simulate a design over it ("what if we hired two more?")."""
    budget = c.design.annual_budget
    cost = sum(t.headcount * t.cost_per_head for t in c.teams.values())
    if budget is None or cost <= budget:
        return None
    return f"headcount costs {cost:,.0f} a year, over the budget {budget:,.0f}"


# human-model parameters that are probabilities (or shares); every other one is >= 0
_PROBABILITIES = {("forgetting", "probability"), ("errors", "probability"),
                  ("handoff_loss", "crm_drop_loss"), ("handoff_loss", "warm_loss"),
                  ("handoff_loss", "crm_drop_leak"), ("trust", "initial"),
                  ("availability", "mean"), ("compliance", "probability")}


def check_people(c: Config) -> None:
    """Human-model parameters (plain numbers or {value, range}) within their meaning."""
    for mech in MECHANISMS:
        table = getattr(c.people, mech)
        for field in type(table).model_fields:
            value = getattr(table, field)
            if isinstance(value, Uncertain):
                numbers = (value.value, *value.range)
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                numbers = (value,)
            else:
                continue
            problem = people_value_problem(mech, field, numbers)
            if problem:
                raise ConfigError(f"people.{mech}.{field}",
                                  f"{problem}, got {_show(_plain(value))}")


# the largest sensible value of the other human-model parameters (a larger one is a typo, and
# some would make a run step through years of calendar for ever)
_MAXIMA = {("latency", "median_hours"): 2000.0, ("speed", "person_cv"): 5.0,
           ("speed", "task_cv"): 5.0, ("judgement", "noise_sd"): 10.0,
           ("interpretation", "threshold_sd"): 1.0, ("turnover", "annual_attrition"): 52.0,
           ("turnover", "ramp_days"): 3650.0, ("turnover", "vacancy_days"): 3650.0,
           ("persistence", "habit_mean_attempts"): 100.0}


# the smallest sensible value where it is not 0: a habit is 1 + Poisson(mean - 1) attempts,
# so a mean below 1 is not a mean (0.5 gave the habit of 1), and 0 read as persistence off
# (everyone made every prescribed attempt)
_MINIMA = {("persistence", "habit_mean_attempts"): 1.0}


def people_value_problem(mech: str, field: str, numbers: tuple[float, ...]) -> str | None:
    """What is wrong with these values of a human-model parameter, or None."""
    if (mech, field) in _PROBABILITIES:
        return None if all(0.0 <= x <= 1.0 for x in numbers) else "must lie in [0, 1]"
    if not all(x >= 0.0 for x in numbers):
        return "must not be negative"
    low = _MINIMA.get((mech, field))
    if low is not None and not all(x >= low for x in numbers):
        return f"must be at least {low:g} (every person makes a first attempt)"
    top = _MAXIMA.get((mech, field))
    if top is not None and not all(x <= top for x in numbers):
        return f"must be at most {top:g}"
    return None


def _plain(value: Any) -> Any:
    if isinstance(value, Uncertain):
        return {"value": value.value, "range": list(value.range)}
    return value


def _routes(st: Stage) -> dict[str, str | None]:
    return st.routes.model_dump()


def unreached_stages(c: Config) -> list[str]:
    """The stages no lead can reach: no channel enters them, no route or nurture return
    leads there, under any choice of the levers. Not an error (a sweep may route around a
    stage), but its team does no work and its KPI reads 0, which a planner should hear of."""
    def options(path: str, value: Any) -> set:
        return {value} | {ch for lv in c.levers.values() if lv.path == path
                          for ch in (lv.choices or ())}

    todo = {s for name, ch in c.channels.items() for s in options(f"channels.{name}.entry",
                                                                   ch.entry)}
    if c.nurture.return_probability > 0:
        todo |= options("nurture.return_stage", c.nurture.return_stage) - {None}
    seen: set = set()
    while todo:
        name = todo.pop()
        if name in seen or name not in c.stages:
            continue
        seen.add(name)
        for outcome, target in _routes(c.stages[name]).items():
            todo |= options(f"stages.{name}.routes.{outcome}", target)
    return [name for name in c.stages if name not in seen]
