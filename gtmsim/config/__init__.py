"""Config: schema, loading, built-in profiles and the embedded default."""

from gtmsim.config.loader import BUILTIN_PROFILES, load_config, read_toml, resolve, validate
from gtmsim.config.schema import MECHANISMS, Config

__all__ = ["BUILTIN_PROFILES", "MECHANISMS", "Config", "load_config", "read_toml", "resolve",
           "validate"]
