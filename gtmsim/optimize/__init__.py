"""Robust design search: levers, scenarios, robust statistics, batch evaluation.

The optimiser never sees engines: it asks `evaluate` for a design's outcomes over a scenario
set, with the same seeds for every design (common random numbers).
"""

from gtmsim.optimize.evaluate import evaluate
from gtmsim.optimize.levers import annual_cost, apply_design, current_design
from gtmsim.optimize.objectives import OBJECTIVES, robust_score
from gtmsim.optimize.scenarios import Scenario, draw_scenarios, uncertain_parameters

__all__ = ["OBJECTIVES", "Scenario", "annual_cost", "apply_design", "current_design",
           "draw_scenarios", "evaluate", "robust_score", "uncertain_parameters"]
