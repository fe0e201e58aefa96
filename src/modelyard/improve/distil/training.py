"""Training a student's head: which items train and which are held out, a multinomial
logistic regression (scikit-learn) over the encoder's vectors, exported as the linear
head the ``classifier`` kind serves, and what the exported head scores on the hold-out.

CPU work: the callers run it on a worker thread."""

from __future__ import annotations

import random
import warnings
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from modelyard.engines.classifier.artifact import LinearHead
from modelyard.improve.distil.errors import InvalidDistillation
from modelyard.lazy import lazy_module

linear_model = lazy_module("sklearn.linear_model")
sk_exceptions = lazy_module("sklearn.exceptions")
sk_metrics = lazy_module("sklearn.metrics")
threadpoolctl = lazy_module("threadpoolctl")  # scikit-learn's own dependency

HELD_OUT_SPLITS = ("test", "dev")


@dataclass(frozen=True)
class Partition:
    """Item indices that train and that are held out, and how they were chosen."""

    train: list[int]
    holdout: list[int]
    how: str


def partition(
    labels: Sequence[str | None], splits: Sequence[str | None], share: float, seed: int
) -> Partition:
    """The items' own splits when they have them (``train`` trains, ``test`` or else
    ``dev`` is held out), else ``share`` of each label held out at random (``seed``), at
    least one item of each label kept for training. Items without a label are left out."""
    usable = [i for i, label in enumerate(labels) if label is not None]
    given = {splits[i] for i in usable if splits[i] is not None}
    if given:
        held = next((name for name in HELD_OUT_SPLITS if name in given), None)
        train = [i for i in usable if splits[i] in ("train", None)]
        holdout = [i for i in usable if held is not None and splits[i] == held]
        return Partition(train, holdout, f"the items' splits: train, hold-out {held or 'none'}")
    by_label: dict[str, list[int]] = defaultdict(list)
    for i in usable:
        by_label[str(labels[i])].append(i)
    rng = random.Random(seed)
    train, holdout = [], []
    for label in sorted(by_label):
        members = by_label[label]
        rng.shuffle(members)
        cut = min(round(len(members) * share), len(members) - 1)
        holdout += members[:cut]
        train += members[cut:]
    return Partition(
        sorted(train), sorted(holdout), f"{share:.0%} of each label held out (seed {seed})"
    )


def fit_head(
    vectors: NDArray[np.float32],
    labels: Sequence[str],
    *,
    c: float,
    max_iter: int,
    class_weight: str | None,
    seed: int,
) -> tuple[LinearHead, bool]:
    """A multinomial logistic regression, as the linear head it is: softmax(W·x + b);
    and whether the solver converged within ``max_iter``."""
    classes = sorted(set(labels))
    if len(classes) < 2:
        raise InvalidDistillation(
            f"the training items have {len(classes)} label(s); a classifier needs 2 or more",
            param="dataset",
        )
    model = linear_model.LogisticRegression(
        C=c, max_iter=max_iter, class_weight=class_weight, random_state=seed
    )
    # One BLAS thread: lbfgs's small products gain nothing from more, and on a busy
    # 2-core machine more threads made the banking77 fit 28 times slower (10 s, not 0.4).
    with warnings.catch_warnings(), threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        warnings.simplefilter("ignore", sk_exceptions.ConvergenceWarning)  # ``converged`` says
        model.fit(vectors, np.asarray(labels))
    weight = np.asarray(model.coef_, dtype=np.float32)
    bias = np.asarray(model.intercept_, dtype=np.float32)
    if len(classes) == 2:  # one row, a sigmoid: the same as a softmax over (-z/2, z/2)
        weight, bias = np.vstack([-weight / 2, weight / 2]), np.concatenate([-bias / 2, bias / 2])
    head = LinearHead(tuple(str(label) for label in model.classes_), weight, bias)
    return head, bool(np.max(model.n_iter_) < max_iter)


def scores(head: LinearHead, vectors: NDArray[np.float32], truth: Sequence[str]) -> dict[str, Any]:
    """Accuracy and macro F1 of the exported head's answers against ``truth``."""
    if not truth:
        return {"accuracy": None, "macro_f1": None, "items": 0}
    predicted = [head.labels[i] for i in head.probabilities(vectors).argmax(axis=1)]
    return {
        "accuracy": float(sk_metrics.accuracy_score(truth, predicted)),
        "macro_f1": float(sk_metrics.f1_score(truth, predicted, average="macro", zero_division=0)),
        "items": len(truth),
    }
