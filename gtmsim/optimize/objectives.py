"""Robust statistics of a design's outcome over scenarios (higher is better)."""

from __future__ import annotations

import math
import numbers

import numpy as np

OBJECTIVES = ("mean", "p10", "cvar10", "regret", "satisficing")


def cvar(x: np.ndarray, alpha: float = 0.10) -> float:
    """Mean of the worst `alpha` share of the values (at least one value)."""
    x = np.sort(np.asarray(x, dtype=float))
    n = max(1, int(np.floor(alpha * len(x))))
    return float(x[:n].mean())


def regret(matrix: np.ndarray) -> np.ndarray:
    """Per design (rows), its largest shortfall over scenarios (columns) against the best
    design in that scenario (Savage's minimax regret); 0 for a design that is best
    everywhere. The mean shortfall would rank designs exactly as their means do (it is the
    mean of the per-scenario best, the same for every design, minus the design's mean), so
    it could never choose another design."""
    m = np.asarray(matrix, dtype=float)
    return (m.max(axis=0, keepdims=True) - m).max(axis=1)


def robust_score(name: str, values: np.ndarray, target: float | None = None) -> float:
    """One design's score over its per-scenario outcomes (regret needs all designs: see
    `regret`)."""
    if name == "regret":
        raise ValueError("regret compares designs: score all of them at once with "
                         "objectives.regret(matrix)")
    x = np.asarray(values, dtype=float)
    if x.size == 0 or not np.isfinite(x).all():
        # a score of NaN would pass silently into the optimiser
        raise ValueError(f"{name}: expected per-scenario outcomes, all finite; got "
                         f"{x.size} values{'' if x.size == 0 else ', some not finite'}")
    if name == "mean":
        return float(x.mean())
    if name == "p10":
        return float(np.quantile(x, 0.10))
    if name == "cvar10":
        return cvar(x, 0.10)
    if name == "satisficing":
        if target is None:
            raise ValueError("satisficing needs a target")
        if (isinstance(target, bool) or not isinstance(target, numbers.Real)
                or not math.isfinite(target)):  # '1' was NumPy's UFuncTypeError
            raise ValueError(f"satisficing: target must be a finite number, got {target!r}")
        return float((x >= target).mean())
    raise ValueError(f"unknown objective {name!r}; choose from {', '.join(OBJECTIVES)}")
