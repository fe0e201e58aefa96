"""The robustness gate rule: a perturbed run may be worse than its clean run by at most a
margin, ``{robustness: {perturbation: typos, max_drop: 0.05}}`` in a gate file beside the
metric rules. The drop is the paired difference of the metric (the task's first one unless
named); with ``use_interval`` the worst end of its bootstrap interval must be within the
margin too."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from modelyard.evaluate.gates import GateCheck, GateResult, GateRule, evaluate_gate
from modelyard.evaluate.robustness.report import robustness_report
from modelyard.evaluate.runs import EvalRuns
from modelyard.wire import Number


class RobustnessThreshold(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    perturbation: str = Field(min_length=1, description="A label: typos, casing:lower, ...")
    metric: str | None = Field(default=None, description="Default: the task's first metric.")
    max_drop: Number | None = Field(default=None, ge=0)
    max_relative_drop: Number | None = Field(default=None, ge=0)
    use_interval: bool = Field(
        default=False,
        description="Also the worst end of the 95% interval of the drop must be within max_drop.",
    )

    @model_validator(mode="after")
    def _checks_something(self) -> RobustnessThreshold:
        if self.max_drop is None and self.max_relative_drop is None:
            raise ValueError(
                f"the robustness rule on {self.perturbation!r} sets no threshold: set max_drop "
                "or max_relative_drop"
            )
        if self.use_interval and self.max_drop is None:
            raise ValueError("use_interval checks the interval against max_drop: set max_drop")
        return self


class RobustnessRule(BaseModel):
    """``{robustness: {...}}``: one entry of a gate file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    robustness: RobustnessThreshold


def is_robustness_rule(raw: object) -> bool:
    return isinstance(raw, Mapping) and "robustness" in raw


def split_rules(raw: list[Any]) -> tuple[list[Any], list[RobustnessRule]]:
    """A gate file's entries: the metric rules (as given), and the robustness rules."""
    robust = [RobustnessRule.model_validate(rule) for rule in raw if is_robustness_rule(rule)]
    return [rule for rule in raw if not is_robustness_rule(rule)], robust


def with_robustness(
    result: GateResult, rules: list[RobustnessRule], runs: EvalRuns, run_id: int
) -> GateResult:
    """``result`` (of the metric rules) with the checks of ``rules`` on run ``run_id``."""
    if not rules:
        return result
    checks = [*result.checks, *robustness_checks(rules, robustness_report(runs, run_id))]
    return GateResult(passed=all(check.passed for check in checks), checks=checks)


def robustness_checks(rules: list[RobustnessRule], report: dict[str, Any]) -> list[GateCheck]:
    """One check per threshold, from ``robustness_report`` of the gated (clean) run; a
    rule's metric defaults to the run's first."""
    first_metric = next(iter(report["higher_is_better"]), "")
    rows = {row["perturbation"]: row for row in report["perturbations"]}
    clean_id = report["clean"]["id"]
    checks: list[GateCheck] = []
    for rule in (r.robustness for r in rules):
        metric = rule.metric or first_metric
        higher = report["higher_is_better"].get(metric, True)
        gate_rule = GateRule(
            metric=metric,
            greater_is_better=higher,
            max_drop=rule.max_drop,
            max_relative_drop=rule.max_relative_drop,
        )
        row = rows.get(rule.perturbation)
        prefix = f"robustness {rule.perturbation}: "
        if row is None or metric not in row["differences"]:
            missing = (
                f"no finished run of run {clean_id}'s task with perturbation "
                f"{rule.perturbation} (`modelyard eval robustness`; it has: "
                f"{', '.join(rows) or 'none'})"
                if row is None
                else f"run {row['run']} has no per-item scores of {metric}"
            )
            checks.append(GateCheck(gate_rule, float("nan"), None, False, prefix + missing))
            continue
        difference = row["differences"][metric]
        result = evaluate_gate(
            [gate_rule], {metric: difference["candidate"]}, {metric: difference["baseline"]}
        )
        checks += [replace(c, reason=prefix + c.reason) for c in result.checks]
        if rule.use_interval and rule.max_drop is not None:
            checks.append(_interval_check(gate_rule, rule.max_drop, difference, prefix))
    return checks


def _interval_check(
    rule: GateRule, limit: float, difference: Mapping[str, Any], prefix: str
) -> GateCheck:
    # The worst plausible drop: the interval's end on the worse side.
    worst = -difference["ci_low"] if rule.greater_is_better else difference["ci_high"]
    passed = worst <= limit + 1e-12
    verdict = "within" if passed else "exceeds"
    reason = (
        f"{prefix}use_interval: the 95% interval of the change of {rule.metric} is "
        f"[{difference['ci_low']:+g}, {difference['ci_high']:+g}]; its worst drop {worst:g} "
        f"{verdict} the allowed {limit:g}"
    )
    return GateCheck(rule, difference["candidate"], difference["baseline"], passed, reason)
