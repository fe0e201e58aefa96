"""Classification metrics against direct scikit-learn calls on the same labels."""

from __future__ import annotations

import pytest
from sklearn import metrics as sk  # type: ignore[import-untyped]

from modelyard.evaluate.metrics import MetricInputError, MetricOptionError, metric

# Three labels, unbalanced, one ("neutral") never predicted correctly and "spam" only
# predicted, never a reference: per-class zero divisions on both sides.
TRUTH = ["pos", "neg", "pos", "neutral", "neg", "pos", "neutral", "pos", "neg", "pos"]
PRED = ["pos", "neg", "neg", "pos", "neg", "pos", "spam", "pos", "pos", "neg"]
LABELS = ["neg", "neutral", "pos", "spam"]  # sorted union


def test_accuracy_and_its_per_item_scores() -> None:
    result = metric("accuracy").compute(PRED, TRUTH)
    assert result.value == pytest.approx(sk.accuracy_score(TRUTH, PRED))
    assert result.value == pytest.approx(0.5)
    assert result.per_item == [float(p == t) for p, t in zip(PRED, TRUTH, strict=True)]


@pytest.mark.parametrize("name", ["precision", "recall", "f1"])
@pytest.mark.parametrize("average", ["macro", "micro", "weighted"])
def test_precision_recall_f1_match_sklearn(name: str, average: str) -> None:
    result = metric(name, average=average).compute(PRED, TRUTH)
    direct = {"precision": sk.precision_score, "recall": sk.recall_score, "f1": sk.f1_score}[name]
    expected = direct(TRUTH, PRED, labels=LABELS, average=average, zero_division=0)
    assert result.value == pytest.approx(expected, abs=1e-12)
    assert result.details["labels"] == LABELS
    assert result.details["average"] == average


def test_averages_differ_so_the_option_is_used() -> None:
    values = {a: metric("f1", average=a).compute(PRED, TRUTH).value for a in ("macro", "micro")}
    assert values["macro"] != pytest.approx(values["micro"])


def test_per_class_details_match_sklearn_support() -> None:
    result = metric("f1").compute(PRED, TRUTH)
    p, r, f, s = sk.precision_recall_fscore_support(
        TRUTH, PRED, labels=LABELS, average=None, zero_division=0
    )
    per_class = result.details["per_class"]
    for i, label in enumerate(LABELS):
        assert per_class[label] == pytest.approx(
            {"precision": p[i], "recall": r[i], "f1": f[i], "support": s[i]}
        )
    assert per_class["spam"]["support"] == 0
    assert per_class["neutral"]["recall"] == 0.0


def test_explicit_labels_restrict_and_order() -> None:
    labels = ["pos", "neg"]
    result = metric("precision", average="micro", labels=labels).compute(PRED, TRUTH)
    expected = sk.precision_score(TRUTH, PRED, labels=labels, average="micro", zero_division=0)
    assert result.value == pytest.approx(expected)
    assert list(result.details["per_class"]) == labels


def test_confusion_matrix_rows_are_references_in_label_order() -> None:
    result = metric("confusion_matrix").compute(PRED, TRUTH)
    assert result.details["labels"] == LABELS
    assert result.details["matrix"] == sk.confusion_matrix(TRUTH, PRED, labels=LABELS).tolist()
    assert result.details["matrix"][1] == [0, 0, 1, 1]  # neutral -> pos, neutral -> spam
    assert result.value == pytest.approx(0.5)  # the trace share is the accuracy here


def test_confusion_matrix_value_is_the_trace_share_within_labels() -> None:
    result = metric("confusion_matrix", labels=["pos", "neg"]).compute(PRED, TRUTH)
    # 8 items have both labels in {pos, neg}; 5 of them agree (accuracy is 5 / 10).
    assert result.details["matrix"] == [[3, 2], [1, 2]]
    assert result.value == pytest.approx(5 / 8)


BINARY_TRUTH = ["yes", "no", "yes", "yes", "no", "no", "yes", "no"]
BINARY_SCORES = [0.9, 0.2, 0.4, 0.8, 0.5, 0.1, 0.35, 0.6]


def test_roc_auc_binary_scores_are_for_the_second_sorted_label() -> None:
    result = metric("roc_auc").compute(BINARY_TRUTH, BINARY_TRUTH, scores=BINARY_SCORES)
    positives = [t == "yes" for t in BINARY_TRUTH]
    assert result.value == pytest.approx(sk.roc_auc_score(positives, BINARY_SCORES))
    assert result.details["positive_label"] == "yes"
    flipped = metric("roc_auc", positive_label="no")
    assert flipped.compute(BINARY_TRUTH, BINARY_TRUTH, scores=BINARY_SCORES).value == (
        pytest.approx(1 - result.value)
    )


def test_roc_auc_multiclass_one_vs_rest() -> None:
    truth = ["a", "b", "c", "a", "b", "c", "a", "c"]
    rows = [
        [0.7, 0.2, 0.1],
        [0.3, 0.4, 0.3],
        [0.2, 0.5, 0.3],
        [0.4, 0.4, 0.2],
        [0.1, 0.6, 0.3],
        [0.1, 0.1, 0.8],
        [0.3, 0.3, 0.4],
        [0.5, 0.1, 0.4],
    ]
    scores = [dict(zip("abc", row, strict=True)) for row in rows]
    for average in ("macro", "weighted"):
        result = metric("roc_auc", average=average).compute(truth, truth, scores=scores)
        expected = sk.roc_auc_score(truth, rows, multi_class="ovr", average=average)
        assert result.value == pytest.approx(expected)
    two = [{"a": row[0], "b": 1 - row[0]} for row in rows[:4]]
    binary = metric("roc_auc").compute(truth[:4], ["a", "b", "b", "a"], scores=two)
    assert binary.value == pytest.approx(
        sk.roc_auc_score([False, True, True, False], [s["b"] for s in two])
    )


@pytest.mark.parametrize(
    ("scores", "truth", "message"),
    [
        (None, BINARY_TRUTH, "pass scores="),
        (BINARY_SCORES[:3], BINARY_TRUTH, "pass scores="),
        (BINARY_SCORES, ["yes"] * 8, "exactly two reference labels"),
        ([0.1, {"yes": 1.0}] * 4, BINARY_TRUTH, "all numbers or all"),
        ([{"a": 0.5, "b": 0.2, "c": 0.3}] * 8, BINARY_TRUTH, "not scored"),
    ],
)
def test_roc_auc_rejects_bad_scores(scores: object, truth: list[str], message: str) -> None:
    with pytest.raises(MetricInputError, match=message):
        metric("roc_auc").compute(truth, truth, scores=scores)  # type: ignore[arg-type]


def test_classification_input_errors() -> None:
    with pytest.raises(MetricInputError, match="2 predictions but 3 references"):
        metric("accuracy").compute(["a", "b"], ["a", "b", "c"])
    with pytest.raises(MetricInputError, match="exactly one label"):
        metric("f1").compute(["a"], [["a", "b"]])
    with pytest.raises(MetricInputError, match="no items"):
        metric("accuracy").compute([], [])


def test_classification_option_errors() -> None:
    with pytest.raises(MetricOptionError, match="'average' must be one of macro, micro"):
        metric("f1", average="samples")
    with pytest.raises(MetricOptionError, match="distinct strings"):
        metric("recall", labels=["a", "a"])
    with pytest.raises(MetricOptionError, match="'average' must be one of macro, weighted"):
        metric("roc_auc", average="micro")
