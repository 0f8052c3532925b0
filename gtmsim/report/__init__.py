"""Reports a planner looks at: self-contained HTML pages with plotly figures."""

from gtmsim.report.run import run_figures, run_report

__all__ = ["run_figures", "run_report"]
