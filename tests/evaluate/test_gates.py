"""Gates: each threshold passes on its boundary and fails just past it, in both directions."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from modelyard.evaluate.gates import GateRule, evaluate_gate
from modelyard.evaluate.stats import PairedDifference


def difference(metric: str, ci_low: float, ci_high: float) -> PairedDifference:
    middle = (ci_low + ci_high) / 2
    return PairedDifference(
        metric=metric,
        baseline=0.5,
        candidate=0.5 + middle,
        difference=middle,
        ci_low=ci_low,
        ci_high=ci_high,
        confidence=0.95,
        resamples=1000,
        significant=ci_low > 0 or ci_high < 0,
    )


@pytest.mark.parametrize(
    ("greater_is_better", "value", "passed", "words"),
    [
        (True, 0.75, True, "accuracy = 0.75 is at or above the floor 0.75"),
        (True, 1.13 - 0.38, True, "at or above"),  # 0.7499999999999999: float rounding
        (True, 0.7499, False, "accuracy = 0.7499 is below the floor 0.75"),
        (False, 0.75, True, "accuracy = 0.75 is at or below the ceiling 0.75"),
        (False, 0.7501, False, "accuracy = 0.7501 is above the ceiling 0.75"),
        (False, 0.2, True, "at or below"),
    ],
)
def test_min_value_is_a_floor_or_a_ceiling(
    greater_is_better: bool, value: float, passed: bool, words: str
) -> None:
    rule = GateRule(metric="accuracy", greater_is_better=greater_is_better, min_value=0.75)
    result = evaluate_gate([rule], {"accuracy": value})
    (check,) = result.checks
    assert (result.passed, check.passed) == (passed, passed)
    assert words in check.reason
    assert check.reason.startswith("min_value:")
    assert (check.rule, check.value, check.baseline) == (rule, value, None)


@pytest.mark.parametrize(
    ("baseline", "value", "passed"),
    [
        (0.80, 0.78, True),  # exactly the allowed drop, though 0.80 - 0.78 > 0.02 in floats
        (0.80, 0.7799, False),
        (0.80, 0.85, True),  # an improvement
    ],
)
def test_max_drop_when_greater_is_better(baseline: float, value: float, passed: bool) -> None:
    rule = GateRule(metric="accuracy", max_drop=0.02)
    result = evaluate_gate([rule], {"accuracy": value}, {"accuracy": baseline})
    (check,) = result.checks
    assert (result.passed, check.passed) == (passed, passed)
    assert check.baseline == baseline
    assert check.reason.startswith("max_drop: accuracy worsened by")
    assert f"({baseline:g} -> {value:g})" in check.reason
    assert ("within the allowed 0.02" if passed else "exceeds the allowed 0.02") in check.reason


@pytest.mark.parametrize(("value", "passed"), [(450.0, True), (450.5, False), (300.0, True)])
def test_max_drop_of_a_latency_is_a_rise(value: float, passed: bool) -> None:
    rule = GateRule(metric="latency_p95_ms", greater_is_better=False, max_drop=50)
    result = evaluate_gate([rule], {"latency_p95_ms": value}, {"latency_p95_ms": 400.0})
    assert result.passed == passed
    assert "worsened by" in result.checks[0].reason


@pytest.mark.parametrize(
    ("greater_is_better", "baseline", "value", "passed"),
    [
        (True, 0.50, 0.49, True),  # 2% of 0.50 is 0.01
        (True, 0.50, 0.4899, False),
        (True, -2.0, -2.04, True),  # a log-likelihood: 2% of |-2.0|
        (True, -2.0, -2.0401, False),
        (False, 200.0, 204.0, True),
        (False, 200.0, 204.1, False),
        (False, 200.0, 150.0, True),
    ],
)
def test_max_relative_drop(
    greater_is_better: bool, baseline: float, value: float, passed: bool
) -> None:
    rule = GateRule(metric="m", greater_is_better=greater_is_better, max_relative_drop=0.02)
    result = evaluate_gate([rule], {"m": value}, {"m": baseline})
    (check,) = result.checks
    assert check.passed == passed
    assert check.reason.startswith("max_relative_drop: m worsened by")
    assert "the allowed 2.0000%" in check.reason


@pytest.mark.parametrize(("value", "passed"), [(0.0, True), (0.3, True), (-0.001, False)])
def test_any_worsening_of_a_zero_baseline_is_an_infinite_relative_drop(
    value: float, passed: bool
) -> None:
    rule = GateRule(metric="m", max_relative_drop=0.5)
    assert evaluate_gate([rule], {"m": value}, {"m": 0.0}).passed == passed


@pytest.mark.parametrize(
    ("baseline", "threshold"),
    [(None, "max_drop"), ({"other": 0.5}, "max_drop"), (None, "max_relative_drop")],
)
def test_a_threshold_against_a_missing_baseline_fails_and_says_so(
    baseline: dict[str, float] | None, threshold: str
) -> None:
    rule = GateRule.model_validate({"metric": "accuracy", threshold: 0.1})
    result = evaluate_gate([rule], {"accuracy": 0.9}, baseline)
    (check,) = result.checks
    assert not result.passed
    assert check.baseline is None
    assert check.reason == f"{threshold}: needs a baseline value of accuracy, and none was given"


@pytest.mark.parametrize(
    ("greater_is_better", "ci", "passed"),
    [
        (True, (0.001, 0.03), True),
        (True, (0.0, 0.03), False),  # touches 0: not significant
        (True, (-0.03, -0.001), False),  # significant, but worse
        (False, (-30.0, -0.5), True),  # latency fell
        (False, (0.5, 30.0), False),
        (False, (-3.0, 3.0), False),
    ],
)
def test_significant_improvement_needs_the_interval_on_the_better_side(
    greater_is_better: bool, ci: tuple[float, float], passed: bool
) -> None:
    rule = GateRule(
        metric="m", greater_is_better=greater_is_better, require_significant_improvement=True
    )
    result = evaluate_gate([rule], {"m": 0.5}, differences={"m": difference("m", *ci)})
    (check,) = result.checks
    assert check.passed == passed
    assert check.reason.startswith("require_significant_improvement: m changed by")
    assert f"95% CI [{ci[0]:g}, {ci[1]:g}]" in check.reason
    assert check.reason.endswith("not a significant improvement") != passed


def test_significant_improvement_without_a_comparison_fails_and_says_so() -> None:
    rule = GateRule(metric="m", require_significant_improvement=True)
    result = evaluate_gate([rule], {"m": 0.5}, {"m": 0.4}, {"other": difference("other", 1, 2)})
    assert not result.passed
    assert "no paired comparison of m was given" in result.checks[0].reason


def test_a_comparison_of_another_metric_is_a_mistake() -> None:
    rule = GateRule(metric="m", require_significant_improvement=True)
    with pytest.raises(ValueError, match="for 'm' is of metric 'other'"):
        evaluate_gate([rule], {"m": 0.5}, differences={"m": difference("other", 1, 2)})


def test_every_threshold_is_its_own_check_and_one_failure_fails_the_gate() -> None:
    rules = [
        GateRule(metric="accuracy", min_value=0.7, max_drop=0.05, max_relative_drop=0.01),
        GateRule(metric="latency_ms", greater_is_better=False, min_value=500),
    ]
    result = evaluate_gate(
        rules, {"accuracy": 0.78, "latency_ms": 320.0}, {"accuracy": 0.80, "latency_ms": 300.0}
    )
    assert [check.reason.split(":")[0] for check in result.checks] == [
        "min_value",
        "max_drop",
        "max_relative_drop",
        "min_value",
    ]
    assert [check.passed for check in result.checks] == [True, True, False, True]
    assert not result.passed

    relaxed = [rules[0].model_copy(update={"max_relative_drop": 0.03}), rules[1]]
    baseline = {"accuracy": 0.80, "latency_ms": 300.0}
    assert evaluate_gate(relaxed, {"accuracy": 0.78, "latency_ms": 320.0}, baseline).passed


def test_a_metric_missing_from_the_candidate_is_an_error_naming_it() -> None:
    rule = GateRule(metric="f1", min_value=0.5)
    with pytest.raises(ValueError, match=r"no metric 'f1' \(it has: accuracy, latency_ms\)"):
        evaluate_gate([rule], {"latency_ms": 1.0, "accuracy": 0.9})


def test_a_gate_without_rules_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one rule"):
        evaluate_gate([], {"accuracy": 0.9})


def test_rules_load_from_json() -> None:
    rule = GateRule.model_validate_json(
        '{"metric": "latency_ms", "greater_is_better": false, "min_value": 800, "max_drop": 25}'
    )
    assert rule == GateRule(
        metric="latency_ms", greater_is_better=False, min_value=800, max_drop=25
    )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"metric": "m"}, "sets no threshold"),
        ({"metric": "m", "max_drop": -0.1}, "greater than or equal to 0"),
        ({"metric": "m", "max_relative_drop": -0.1}, "greater than or equal to 0"),
        ({"metric": "m", "min_value": 1, "max_dorp": 0.1}, "Extra inputs are not permitted"),
        ({"metric": "", "min_value": 1}, "at least 1 character"),
    ],
)
def test_rules_reject_mistakes(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        GateRule.model_validate(fields)


def test_a_rule_on_a_slice_or_a_fairness_measure_reads_its_own_value() -> None:
    plain = GateRule(metric="accuracy", min_value=0.7)
    one = GateRule(metric="accuracy", slice="group=b", min_value=0.7)
    worst = GateRule(metric="accuracy", slice="length", max_drop=0.05)
    fair = GateRule(metric="disparate_impact_ratio", sensitive="group", positive="1", min_value=0.8)
    assert plain.key == "accuracy" and one.key == "accuracy[group=b]"
    assert worst.key == "accuracy[worst length]"
    assert fair.key == "disparate_impact_ratio[group, positive=1]"
    values = {
        "accuracy": 0.9,
        "accuracy[group=b]": 0.6,
        "accuracy[worst length]": 0.5,
        "disparate_impact_ratio[group, positive=1]": 0.85,
    }
    result = evaluate_gate(
        [plain, one, worst, fair], values, baseline={"accuracy[worst length]": 0.6}
    )
    assert [c.passed for c in result.checks] == [True, False, False, True]
    assert result.checks[1].reason == "min_value: accuracy[group=b] = 0.6 is below the floor 0.7"
    assert "accuracy[worst length] worsened by 0.1" in result.checks[2].reason
    with pytest.raises(ValueError, match=r"no metric 'accuracy\[group=c\]'"):
        evaluate_gate([GateRule(metric="accuracy", slice="group=c", min_value=0.1)], values)
    with pytest.raises(ValidationError, match="positive without sensitive"):
        GateRule(metric="disparate_impact_ratio", positive="1", min_value=0.8)
    with pytest.raises(ValidationError, match="both slice and sensitive"):
        GateRule(metric="accuracy", slice="group", sensitive="group", min_value=0.8)
