"""What breaks a design: the human (or market) factors that best separate failing scenarios
from the rest.

A PRIM-style box, peeled greedily: the condition on one uncertain parameter whose box best
describes the failures (the F1 score of "in the box" as a predictor of "fails": precise and
covering, so a narrow lucky box does not win), then, inside it, a second condition if it
describes them better still. Said in plain words.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gtmsim.optimize.scenarios import Scenario


def default_target(values: np.ndarray) -> float:
    """The target a design fails to reach when none is given: 90% of its median outcome
    over the scenarios."""
    return 0.9 * float(np.median(np.asarray(values, dtype=float)))


@dataclass
class Rule:
    parameter: str
    above: bool
    threshold: float

    def holds(self, x: np.ndarray) -> np.ndarray:
        return x > self.threshold if self.above else x <= self.threshold

    def words(self) -> str:
        name = self.parameter.removeprefix("people.")
        # a market's volume runs to thousands of leads a week: whole numbers, not 1.52e+03
        t = self.threshold
        shown = f"{t:,.0f}" if abs(t) >= 1000 else f"{t:.3g}"
        return f"{name} {'>' if self.above else '<='} {shown}"


@dataclass
class Breakdown:
    rules: list[Rule]
    failures: int
    scenarios: int
    failures_in_box: int
    box_size: int

    def words(self) -> str:
        if self.failures == 0:
            if self.scenarios == 1:
                return "meets the target in its one scenario"
            return f"meets the target in all {self.scenarios} scenarios"
        if not self.rules:
            return (f"fails in {self.failures} of {self.scenarios} scenarios, with no single "
                    "human or market factor that separates them")
        rest_fail = self.failures - self.failures_in_box
        rest = self.scenarios - self.box_size
        return (f"fails when {' and '.join(r.words() for r in self.rules)}: "
                f"{self.failures_in_box} of {self.box_size} such scenarios fail, against "
                f"{rest_fail} of {rest} otherwise")


def _best_rule(X: np.ndarray, fail: np.ndarray, names: list[str], inside: np.ndarray,
               min_support: int) -> tuple[Rule | None, float]:
    best, best_rate = None, -1.0
    for j, name in enumerate(names):
        xs = np.unique(X[inside, j])
        for t in (xs[:-1] + xs[1:]) / 2:
            for above in (True, False):
                box = inside & ((X[:, j] > t) if above else (X[:, j] <= t))
                n = box.sum()
                if n < min_support:
                    continue
                score = _f1(box, fail)
                if score > best_rate + 1e-12:
                    best, best_rate = Rule(name, above, float(t)), score
    return best, best_rate


def _f1(box: np.ndarray, fail: np.ndarray) -> float:
    hit = (box & fail).sum()
    if hit == 0:
        return 0.0
    precision, recall = hit / box.sum(), hit / fail.sum()
    return float(2 * precision * recall / (precision + recall))


def what_breaks(values: np.ndarray, scenarios: list[Scenario], target: float,
                min_support: float = 0.1, max_rules: int = 2) -> Breakdown:
    """Failure is an outcome below `target` in a scenario."""
    names = sorted(scenarios[0].values) if scenarios else []
    fail = np.asarray(values) < target
    n = len(fail)
    X = np.array([[s.values[k] for k in names] for s in scenarios]) if names else np.zeros((n, 0))
    inside = np.ones(n, dtype=bool)
    rules: list[Rule] = []
    support = max(2, int(np.ceil(min_support * n)))
    rate = _f1(inside, fail) if n else 0.0
    while len(rules) < max_rules and fail.any() and names:
        rule, new_rate = _best_rule(X, fail, names, inside, support)
        if rule is None or new_rate <= rate + 1e-9:
            break
        rules.append(rule)
        inside &= rule.holds(X[:, names.index(rule.parameter)])
        rate = new_rate
    return Breakdown(rules, int(fail.sum()), n, int(fail[inside].sum()) if rules else 0,
                     int(inside.sum()) if rules else 0)
