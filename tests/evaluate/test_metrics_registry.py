"""The registry: every metric by name, clear errors for unknown names and options."""

from __future__ import annotations

import pytest

from modelyard.evaluate.metrics import (
    METRICS,
    MetricOptionError,
    UnknownMetric,
    metric,
    metric_options,
)


def test_unknown_metric_names_the_known_ones() -> None:
    with pytest.raises(UnknownMetric, match=r"unknown metric 'bleurt'; known metrics: .*chrf"):
        metric("bleurt")
    assert issubclass(UnknownMetric, ValueError)


def test_unknown_option_names_the_metrics_options() -> None:
    with pytest.raises(MetricOptionError, match=r"f1: .*'avg'.*its options: average, labels"):
        metric("f1", avg="macro")
    with pytest.raises(MetricOptionError, match="its options: none"):
        metric("char_f1", normalize=False)
    with pytest.raises(MetricOptionError, match="pattern"):
        metric("regex")


def test_registry_is_read_only() -> None:
    with pytest.raises(TypeError):
        METRICS["mine"] = METRICS["accuracy"]  # type: ignore[index]


# The red-team measures are lower-is-better or read no reference: tests/evaluate/redteam.
REDTEAM = {"attack_success", "leak", "refusal"}


@pytest.mark.parametrize("name", sorted(set(METRICS) - {"regex", "roc_auc"} - REDTEAM))
def test_every_metric_scores_a_perfect_answer_at_the_top(name: str) -> None:
    built = metric(name)
    assert built.name == name
    assert built.higher_is_better
    answers = ["the 42 cats sat on mats", "北京 是 中国 的 首都 7"]
    classifying = name in {"accuracy", "precision", "recall", "f1", "confusion_matrix"}
    alternatives = [answers[1]] if classifying else ["上海", answers[1]]
    result = built.compute(answers, [answers[0], alternatives])
    assert result.name == name
    assert result.value == pytest.approx(100.0 if name in ("bleu", "chrf") else 1.0)


def test_options_are_listed() -> None:
    assert metric_options("bleu") == ["tokenize"]
    assert metric_options("accuracy") == []
