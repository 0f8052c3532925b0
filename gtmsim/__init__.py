"""gtmsim: simulate go-to-market organisations whose boxes are people.

    import gtmsim
    res = gtmsim.run("configs/b2b_saas.toml", profile="realistic", replications=50)
    res.replications      # polars DataFrame, one row per replication
    res.weekly            # weekly aggregates per replication
    res.summary()         # mean, 95% CI, P10/P50/P90 per outcome
"""

from gtmsim.config import load_config
from gtmsim.errors import ConfigError, GtmsimError
from gtmsim.simulate import Result, run, simulate
from gtmsim.spec import ModelSpec, compile_spec

__all__ = ["ConfigError", "GtmsimError", "ModelSpec", "Result", "compile_spec", "load_config",
           "run", "simulate"]
__version__ = "0.1.0"
