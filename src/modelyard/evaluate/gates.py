"""Gates: the thresholds a candidate run must meet, alone or against a baseline, to pass.

Each threshold a rule sets is checked on its own and gives one ``GateCheck`` whose reason
names the threshold and the numbers; the gate passes when every check does. A value exactly
on a threshold passes (up to float rounding, so ``0.80 - 0.78`` is a drop of ``0.02``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, model_validator

from modelyard.evaluate.stats import PairedDifference
from modelyard.wire import Number


class GateRule(BaseModel):
    """Thresholds on one metric; loadable from YAML or JSON."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str = Field(min_length=1)
    greater_is_better: bool = True
    # The absolute floor, or the ceiling when greater_is_better is False (latency, cost).
    min_value: float | None = None
    # The largest allowed absolute worsening against the baseline.
    max_drop: Number | None = Field(default=None, ge=0)
    # The largest allowed worsening relative to the baseline's magnitude: 0.02 is 2%.
    max_relative_drop: Number | None = Field(default=None, ge=0)
    # The paired bootstrap interval of the difference must lie entirely on the better side.
    require_significant_improvement: bool = False
    # The metric on a slice of the items: "group=b", or "group" for its worst slice.
    slice: str | None = Field(default=None, min_length=1, max_length=200)
    # A fairness measure's sensitive attribute, and the label taken as the positive outcome
    # (default: the worst over the labels).
    sensitive: str | None = Field(default=None, min_length=1, max_length=200)
    positive: str | None = Field(default=None, max_length=200)

    @property
    def key(self) -> str:
        """What the rule reads: the metric, or ``metric[slice]``, ``metric[sensitive]``."""
        if self.sensitive is not None:
            positive = "" if self.positive is None else f", positive={self.positive}"
            return f"{self.metric}[{self.sensitive}{positive}]"
        if self.slice is not None:
            return f"{self.metric}[{self.slice if '=' in self.slice else 'worst ' + self.slice}]"
        return self.metric

    @model_validator(mode="after")
    def _one_breakdown(self) -> GateRule:
        if self.positive is not None and self.sensitive is None:
            raise ValueError(f"the rule on {self.metric!r} sets positive without sensitive")
        if self.slice is not None and self.sensitive is not None:
            raise ValueError(f"the rule on {self.metric!r} sets both slice and sensitive")
        return self

    @model_validator(mode="after")
    def _checks_something(self) -> GateRule:
        if (
            self.min_value is None
            and self.max_drop is None
            and self.max_relative_drop is None
            and not self.require_significant_improvement
        ):
            raise ValueError(
                f"the rule on {self.metric!r} sets no threshold: set min_value, max_drop, "
                "max_relative_drop or require_significant_improvement"
            )
        return self


@dataclass(frozen=True)
class GateCheck:
    rule: GateRule
    value: float
    baseline: float | None
    passed: bool
    reason: str


@dataclass(frozen=True)
class GateResult:
    passed: bool
    checks: list[GateCheck]


def evaluate_gate(
    rules: Sequence[GateRule],
    candidate: Mapping[str, float],
    baseline: Mapping[str, float] | None = None,
    differences: Mapping[str, PairedDifference] | None = None,
) -> GateResult:
    """Check every threshold of every rule against the candidate's metrics.

    A threshold that compares with a baseline, or a significance requirement without its
    paired difference, fails with a reason saying what is missing; a metric missing from the
    candidate is a ``ValueError``.
    """
    if not rules:
        raise ValueError("a gate needs at least one rule")
    checks: list[GateCheck] = []
    for rule in rules:
        if rule.key not in candidate:
            raise ValueError(
                f"the candidate has no metric {rule.key!r} (it has: "
                f"{', '.join(sorted(candidate)) or 'none'})"
            )
        value = float(candidate[rule.key])
        base = None if baseline is None else baseline.get(rule.key)
        base = None if base is None else float(base)
        difference = None if differences is None else differences.get(rule.key)
        checks.extend(_check_rule(rule, value, base, difference))
    return GateResult(passed=all(check.passed for check in checks), checks=checks)


def _check_rule(
    rule: GateRule, value: float, base: float | None, difference: PairedDifference | None
) -> list[GateCheck]:
    checks = []
    if rule.min_value is not None:
        checks.append(_check_bound(rule, rule.min_value, value, base))
    if rule.max_drop is not None:
        checks.append(_check_drop(rule, rule.max_drop, value, base))
    if rule.max_relative_drop is not None:
        checks.append(_check_relative_drop(rule, rule.max_relative_drop, value, base))
    if rule.require_significant_improvement:
        checks.append(_check_significance(rule, value, base, difference))
    return checks


def _check_bound(rule: GateRule, bound: float, value: float, base: float | None) -> GateCheck:
    name = rule.key
    if rule.greater_is_better:
        passed = value >= bound or _on_boundary(value, bound)
        verdict = "is at or above" if passed else "is below"
        reason = f"min_value: {name} = {value:g} {verdict} the floor {bound:g}"
    else:
        passed = value <= bound or _on_boundary(value, bound)
        verdict = "is at or below" if passed else "is above"
        reason = f"min_value: {name} = {value:g} {verdict} the ceiling {bound:g}"
    return GateCheck(rule, value, base, passed, reason)


def _check_drop(rule: GateRule, limit: float, value: float, base: float | None) -> GateCheck:
    if base is None:
        return _no_baseline(rule, "max_drop", value)
    drop = _worsening(rule, value, base)
    passed = drop <= limit or _on_boundary(drop, limit)
    verdict = "within" if passed else "exceeds"
    reason = (
        f"max_drop: {rule.key} worsened by {drop:g} ({base:g} -> {value:g}), "
        f"{verdict} the allowed {limit:g}"
    )
    return GateCheck(rule, value, base, passed, reason)


def _check_relative_drop(
    rule: GateRule, limit: float, value: float, base: float | None
) -> GateCheck:
    if base is None:
        return _no_baseline(rule, "max_relative_drop", value)
    drop = _worsening(rule, value, base)
    # Any worsening of a zero baseline is infinitely large relative to it.
    zero_base = 0.0 if drop <= 0 else math.inf
    relative = drop / abs(base) if base != 0 else zero_base
    passed = relative <= limit or _on_boundary(relative, limit)
    verdict = "within" if passed else "exceeds"
    reason = (
        f"max_relative_drop: {rule.key} worsened by {relative:.4%} ({base:g} -> {value:g}), "
        f"{verdict} the allowed {limit:.4%}"
    )
    return GateCheck(rule, value, base, passed, reason)


def _check_significance(
    rule: GateRule, value: float, base: float | None, difference: PairedDifference | None
) -> GateCheck:
    name = rule.metric
    if difference is None:
        reason = (
            f"require_significant_improvement: no paired comparison of {name} was given; "
            "compute one with paired_bootstrap"
        )
        return GateCheck(rule, value, base, False, reason)
    if difference.metric != name:
        raise ValueError(
            f"the paired difference given for {name!r} is of metric {difference.metric!r}"
        )
    passed = difference.ci_low > 0 if rule.greater_is_better else difference.ci_high < 0
    verdict = "a significant improvement" if passed else "not a significant improvement"
    reason = (
        f"require_significant_improvement: {name} changed by {difference.difference:g}, "
        f"{difference.confidence:.0%} CI [{difference.ci_low:g}, {difference.ci_high:g}], "
        f"{verdict}"
    )
    return GateCheck(rule, value, base, passed, reason)


def _no_baseline(rule: GateRule, threshold: str, value: float) -> GateCheck:
    reason = f"{threshold}: needs a baseline value of {rule.key}, and none was given"
    return GateCheck(rule, value, None, False, reason)


def _worsening(rule: GateRule, value: float, base: float) -> float:
    return base - value if rule.greater_is_better else value - base


def _on_boundary(value: float, bound: float) -> bool:
    return math.isclose(value, bound, rel_tol=1e-9, abs_tol=1e-12)
