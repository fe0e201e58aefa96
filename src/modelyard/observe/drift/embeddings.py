"""Embedding drift: how well a classifier tells current prompt embeddings from reference
ones — Evidently's default ("model") method for embeddings, with the same split and verdict
as text drift (see ``text``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from modelyard.lazy import lazy_module
from modelyard.observe.drift.report import ColumnDrift
from modelyard.observe.drift.text import MIN_TEXTS, SEED, separation

sk_linear = lazy_module("sklearn.linear_model")
sk_selection = lazy_module("sklearn.model_selection")


def embedding_drift(
    column: str, reference: Sequence[Sequence[float]], current: Sequence[Sequence[float]]
) -> ColumnDrift:
    for window, given in (("reference", reference), ("current", current)):
        if len(given) < MIN_TEXTS:
            raise ValueError(
                f"embedding drift needs at least {MIN_TEXTS} vectors in each window; the "
                f"{window} window has {len(given)}"
            )
    if len({len(vector) for window in (reference, current) for vector in window}) != 1:
        raise ValueError("embeddings must all have the same dimensions")
    vectors = np.asarray([*reference, *current], dtype=np.float64)
    labels = np.repeat([0, 1], [len(reference), len(current)])
    train, test, train_labels, test_labels = sk_selection.train_test_split(
        vectors, labels, test_size=0.5, random_state=SEED, shuffle=True, stratify=labels
    )
    classifier = sk_linear.LogisticRegression(random_state=SEED, max_iter=1000)
    classifier.fit(train, train_labels)
    result = separation("domain_classifier", test_labels, classifier.decision_function(test))
    return ColumnDrift(
        column=column,
        kind="embedding",
        test=result.test,
        statistic=result.statistic,
        threshold=result.threshold,
        p_value=result.p_value,
        drifted=result.drifted,
        reference_rows=len(reference),
        current_rows=len(current),
    )
