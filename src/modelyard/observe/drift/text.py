"""Text drift: how well a classifier tells current texts from reference texts.

As Evidently's text content drift does: TF-IDF features and a linear classifier trained on
half of the pooled texts (split with random_state 42, here stratified), scored by ROC-AUC on
the other half.
Drift when the AUC is above 0.55 and, so that small windows do not alarm on noise (the job
Evidently's percentile variant does), the held-out scores separate the windows at p < 0.05
(one-sided Mann-Whitney U, whose statistic is the AUC times the pair count).

Unlike Evidently, tokens are words and also single CJK characters (prompts are not only
English, and Chinese has no spaces), with word pairs, and no stop words are dropped; the
classifier is an L2 logistic regression (deterministic, converges without warnings); windows
above 5,000 texts are sampled.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from modelyard.lazy import lazy_module
from modelyard.observe.drift.stattests import P_VALUE_THRESHOLD, StatResult

sk_text = lazy_module("sklearn.feature_extraction.text")
sk_linear = lazy_module("sklearn.linear_model")
sk_metrics = lazy_module("sklearn.metrics")
sk_selection = lazy_module("sklearn.model_selection")

stats = lazy_module("scipy.stats")

AUC_THRESHOLD = 0.55
SEED = 42
MAX_TEXTS = 5000  # per window; the AUC of 2,500 held-out pairs is precise to about 0.01
MIN_TEXTS = 2  # per window: one to train on, one to score
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# One CJK character, or a run of two or more other word characters.
TOKEN_PATTERN = rf"(?u)[{_CJK}]|[^\W{_CJK}]{{2,}}"


def domain_classifier(reference: list[str], current: list[str]) -> StatResult:
    for window, given in (("reference", reference), ("current", current)):
        if len(given) < MIN_TEXTS:
            raise ValueError(
                f"text drift needs at least {MIN_TEXTS} texts in each window; the {window} "
                f"window has {len(given)}"
            )
    rng = np.random.default_rng(SEED)
    texts = _sample(reference, rng) + _sample(current, rng)
    labels = np.repeat([0, 1], [min(len(reference), MAX_TEXTS), min(len(current), MAX_TEXTS)])
    train, test, train_labels, test_labels = sk_selection.train_test_split(
        texts, labels, test_size=0.5, random_state=SEED, shuffle=True, stratify=labels
    )
    return separation("domain_classifier", test_labels, _scores(train, train_labels, test))


def separation(
    test: str, labels: npt.NDArray[np.int64], scores: npt.NDArray[np.float64]
) -> StatResult:
    """The verdict on held-out classifier scores: AUC above 0.55, and significant."""
    auc = float(sk_metrics.roc_auc_score(labels, scores))
    p_value = float(
        stats.mannwhitneyu(scores[labels == 1], scores[labels == 0], alternative="greater").pvalue
    )
    drifted = auc > AUC_THRESHOLD and p_value < P_VALUE_THRESHOLD
    return StatResult(test, auc, AUC_THRESHOLD, p_value, drifted)


def _sample(texts: list[str], rng: np.random.Generator) -> list[str]:
    if len(texts) <= MAX_TEXTS:
        return texts
    picked = rng.choice(len(texts), size=MAX_TEXTS, replace=False)
    return [texts[i] for i in np.sort(picked)]


def _scores(
    train: list[str], train_labels: npt.NDArray[np.int64], test: list[str]
) -> npt.NDArray[np.float64]:
    """The classifier's score that each test text is current (all equal when it learnt
    nothing)."""
    vectorizer = sk_text.TfidfVectorizer(
        token_pattern=TOKEN_PATTERN, ngram_range=(1, 2), sublinear_tf=True
    )
    try:
        features = vectorizer.fit_transform(train)
    except ValueError:  # raised when no training text has a single token
        return np.zeros(len(test))
    classifier = sk_linear.LogisticRegression(solver="liblinear", random_state=SEED)
    classifier.fit(features, train_labels)
    scores: npt.NDArray[np.float64] = classifier.decision_function(vectorizer.transform(test))
    return scores
