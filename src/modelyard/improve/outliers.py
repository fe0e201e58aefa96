"""Outliers: scikit-learn's isolation forest over a few numbers per item.

The features are what makes a logged exchange unusual without reading it: how long the
question and the answer are, how long it took, how many characters a token holds in each
(code, tables or another script tokenize differently from prose; token counts themselves
would only repeat the lengths), and how common its language is in the batch (a lone
Finnish prompt among English ones is unusual). Lengths and latency enter as log(1 + x), so a
10x longer answer is a fixed step whatever the scale. A value a row lacks (a dataset item
has no latency) is the column's median.

Which scores are outliers: with ``contamination`` a share, that share of the lowest; with
``auto``, those below Tukey's far-out fence of the scores (Q1 - 3 IQR). scikit-learn's own
``auto`` (a score below -0.5) flagged about one item in ten of a log with nothing unusual
in it (tests/improve), which is no use for deciding what to drop."""

from __future__ import annotations

import math
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from modelyard.improve.protocol import Outliers
from modelyard.lazy import lazy_module

sk_ensemble = lazy_module("sklearn.ensemble")

FEATURES = (
    "prompt_chars",
    "answer_chars",
    "latency_ms",
    "prompt_chars_per_token",
    "answer_chars_per_token",
    "language_share",
)
FENCE = 3.0  # Tukey's far-out fence, in interquartile ranges below the first quartile


@dataclass
class FeatureColumns:
    """The features of the items kept so far, as compact columns (8 bytes a value)."""

    columns: dict[str, array[float]] = field(
        default_factory=lambda: {name: array("d") for name in FEATURES[:-1]}
    )
    languages: list[str] = field(default_factory=list)

    def add(
        self,
        prompt: str,
        answer: str | None,
        latency_ms: float | None,
        tokens: tuple[int | None, int | None],
        language: str,
    ) -> None:
        lengths = (len(prompt), len(answer or ""))
        for name, value in zip(FEATURES, (*lengths, latency_ms), strict=False):
            self.columns[name].append(math.nan if value is None else math.log1p(value))
        for name, chars, count in zip(FEATURES[3:5], lengths, tokens, strict=True):
            self.columns[name].append(chars / count if count else math.nan)
        self.languages.append(language)

    def __len__(self) -> int:
        return len(self.languages)

    def matrix(self) -> Any:
        """The rows as a numpy matrix, missing values filled with the column's median."""
        import numpy as np

        shares = Counter(self.languages)
        share = np.array([shares[code] / len(self) for code in self.languages])
        matrix = np.column_stack(
            [np.frombuffer(self.columns[name], dtype=np.float64) for name in FEATURES[:-1]]
            + [share]
        )
        for j in range(matrix.shape[1]):
            column = matrix[:, j]
            missing = np.isnan(column)
            if missing.any():
                column[missing] = 0.0 if missing.all() else float(np.nanmedian(column))
        return matrix


@dataclass(frozen=True)
class Scores:
    """Per item: the forest's score (lower is more anomalous) and whether it is flagged."""

    scores: list[float]
    flagged: list[bool]


def isolation_scores(features: FeatureColumns, options: Outliers) -> Scores:
    """Fit the forest on the items and score them."""
    import numpy as np

    if len(features) < 2:
        return Scores([0.0] * len(features), [False] * len(features))
    share = options.contamination
    forest = sk_ensemble.IsolationForest(
        n_estimators=100, contamination=share, random_state=options.seed, n_jobs=2
    )
    matrix = features.matrix()
    forest.fit(matrix)
    scores = forest.score_samples(matrix)
    if share == "auto":
        first, third = np.percentile(scores, [25, 75])
        threshold = first - FENCE * (third - first)
    else:
        threshold = forest.offset_
    return Scores(scores.tolist(), (scores < threshold).tolist())
