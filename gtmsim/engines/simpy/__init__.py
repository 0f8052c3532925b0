"""The SimPy reference engine: readable, traceable, writes event logs."""

from gtmsim.engines.simpy.engine import Replication, run_replication

__all__ = ["Replication", "run_replication"]
