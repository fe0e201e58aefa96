"""Short-answer metrics: each item scores 1 or 0 (char_f1: between), the best over the
item's references, and the value is the mean."""

from __future__ import annotations

import math
import re
import string
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from modelyard.evaluate.metrics.cmrc import cmrc_em, cmrc_f1
from modelyard.evaluate.metrics.result import (
    MetricInputError,
    MetricOptionError,
    MetricResult,
    Reference,
    Scores,
    check_bool,
    check_choice,
    mean_result,
    reference_lists,
)

_ARTICLES = re.compile(r"\b(a|an|the)\b")
# A number: digits with optional thousands commas, decimals and exponent; a sign only when
# it does not follow a word character (so "x-5" reads 5, "-5" reads -5).
_NUMBER = re.compile(r"(?:(?<![\w.])[-+])?(?:\d+(?:,\d{3})*(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
REGEX_MATCHES = ("search", "full")


def squad_normalize(text: str) -> str:
    """SQuAD's normalize_answer, with CJK punctuation too: lower-case, drop ASCII
    punctuation and every Unicode punctuation character (，。？、《》 ...), drop the articles
    a, an, the, collapse whitespace."""
    text = "".join(char for char in text.lower() if not _is_punctuation(char))
    return " ".join(_ARTICLES.sub(" ", text).split())


def _is_punctuation(char: str) -> bool:
    return char in string.punctuation or unicodedata.category(char).startswith("P")


def first_number(text: str) -> float | None:
    found = _NUMBER.search(text.replace("\u2212", "-"))  # the Unicode minus sign
    return float(found.group().replace(",", "")) if found else None


def _per_item(
    name: str,
    predictions: Sequence[str],
    references: Sequence[Reference],
    score: Callable[[str, list[str]], float],
) -> list[float]:
    refs = reference_lists(name, predictions, references)
    return [score(p, r) for p, r in zip(predictions, refs, strict=True)]


@dataclass(frozen=True)
class ExactMatch:
    """1 when the prediction equals any reference after squad_normalize (as NQ-open and
    SQuAD score), or exactly as given with ``normalize: false``."""

    normalize: bool = True
    name: str = field(default="exact_match", init=False)
    higher_is_better: bool = field(default=True, init=False)

    def __post_init__(self) -> None:
        check_bool(self.name, "normalize", self.normalize)

    def compute(
        self,
        predictions: Sequence[str],
        references: Sequence[Reference],
        *,
        scores: Scores | None = None,
    ) -> MetricResult:
        norm = squad_normalize if self.normalize else str
        per_item = _per_item(
            self.name,
            predictions,
            references,
            lambda p, refs: float(any(norm(p) == norm(r) for r in refs)),
        )
        return mean_result(self.name, per_item, {"normalize": self.normalize})


@dataclass(frozen=True)
class CharF1:
    """CMRC 2018's F1 (see ``cmrc``), on a 0-1 scale (the script reports it times 100)."""

    name: str = field(default="char_f1", init=False)
    higher_is_better: bool = field(default=True, init=False)

    def compute(
        self,
        predictions: Sequence[str],
        references: Sequence[Reference],
        *,
        scores: Scores | None = None,
    ) -> MetricResult:
        return mean_result(self.name, _per_item(self.name, predictions, references, cmrc_f1), {})


@dataclass(frozen=True)
class CmrcExactMatch:
    """CMRC 2018's EM (see ``cmrc``): equal after dropping its punctuation list."""

    name: str = field(default="cmrc_exact_match", init=False)
    higher_is_better: bool = field(default=True, init=False)

    def compute(
        self,
        predictions: Sequence[str],
        references: Sequence[Reference],
        *,
        scores: Scores | None = None,
    ) -> MetricResult:
        return mean_result(self.name, _per_item(self.name, predictions, references, cmrc_em), {})


@dataclass(frozen=True)
class NumericMatch:
    """1 when the first number in the prediction is close to the first number of any
    reference (math.isclose with ``rel_tol``, default 1e-9, and ``abs_tol``, default 0).
    Thousands commas are read ("1,234" is 1234); no number in the prediction scores 0."""

    rel_tol: float = 1e-9
    abs_tol: float = 0.0
    name: str = field(default="numeric_match", init=False)
    higher_is_better: bool = field(default=True, init=False)

    def __post_init__(self) -> None:
        for option in ("rel_tol", "abs_tol"):
            value = getattr(self, option)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise MetricOptionError(
                    f"{self.name}: option {option!r} must be a number >= 0; got {value!r}"
                )

    def compute(
        self,
        predictions: Sequence[str],
        references: Sequence[Reference],
        *,
        scores: Scores | None = None,
    ) -> MetricResult:
        refs = reference_lists(self.name, predictions, references)
        per_item = []
        for index, (prediction, answers) in enumerate(zip(predictions, refs, strict=True)):
            expected = [n for n in map(first_number, answers) if n is not None]
            if not expected:
                raise MetricInputError(f"{self.name}: item {index} has no number in {answers}")
            got = first_number(prediction)
            per_item.append(
                float(
                    got is not None
                    and any(
                        math.isclose(got, n, rel_tol=self.rel_tol, abs_tol=self.abs_tol)
                        for n in expected
                    )
                )
            )
        details = {"rel_tol": self.rel_tol, "abs_tol": self.abs_tol}
        return mean_result(self.name, per_item, details)


@dataclass(frozen=True)
class Contains:
    """1 when any reference occurs in the prediction; ``ignore_case`` (default true)
    compares case-folded text."""

    ignore_case: bool = True
    name: str = field(default="contains", init=False)
    higher_is_better: bool = field(default=True, init=False)

    def __post_init__(self) -> None:
        check_bool(self.name, "ignore_case", self.ignore_case)

    def compute(
        self,
        predictions: Sequence[str],
        references: Sequence[Reference],
        *,
        scores: Scores | None = None,
    ) -> MetricResult:
        fold = str.casefold if self.ignore_case else str
        per_item = _per_item(
            self.name,
            predictions,
            references,
            lambda p, refs: float(any(fold(r) in fold(p) for r in refs)),
        )
        return mean_result(self.name, per_item, {"ignore_case": self.ignore_case})


@dataclass(frozen=True)
class RegexMatch:
    """1 when the prediction matches ``pattern`` (Python syntax): anywhere with ``match:
    search`` (the default), the whole prediction with ``match: full``; ``ignore_case``
    defaults to false. The references are not used (their count is still checked)."""

    pattern: str
    match: str = "search"
    ignore_case: bool = False
    name: str = field(default="regex", init=False)
    higher_is_better: bool = field(default=True, init=False)

    def __post_init__(self) -> None:
        check_choice(self.name, "match", self.match, REGEX_MATCHES)
        check_bool(self.name, "ignore_case", self.ignore_case)
        if not isinstance(self.pattern, str):
            raise MetricOptionError(f"{self.name}: option 'pattern' must be a string")
        try:
            re.compile(self.pattern)
        except re.error as error:
            raise MetricOptionError(
                f"{self.name}: option 'pattern' is not a valid regular expression: {error}"
            ) from error

    def compute(
        self,
        predictions: Sequence[str],
        references: Sequence[Reference],
        *,
        scores: Scores | None = None,
    ) -> MetricResult:
        compiled = re.compile(self.pattern, re.IGNORECASE if self.ignore_case else 0)
        test = compiled.fullmatch if self.match == "full" else compiled.search
        per_item = _per_item(
            self.name, predictions, references, lambda p, _: float(test(p) is not None)
        )
        details = {"pattern": self.pattern, "match": self.match, "ignore_case": self.ignore_case}
        return mean_result(self.name, per_item, details)
