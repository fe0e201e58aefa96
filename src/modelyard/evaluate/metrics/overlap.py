"""N-gram overlap with references: BLEU and chrF by sacrebleu, ROUGE by rouge-score.

Values are on each library's own scale, so they compare with published numbers: BLEU and
chrF from 0 to 100, ROUGE F-measure from 0 to 1. The value is the corpus score for BLEU and
chrF (not the mean of the per-item sentence scores, which are there for paired comparisons)
and the mean per-item F-measure for ROUGE. Several references per item are supported.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from modelyard.evaluate.metrics.result import (
    MetricOptionError,
    MetricResult,
    Reference,
    Scores,
    check_choice,
    reference_lists,
)
from modelyard.lazy import lazy_module

sacrebleu = lazy_module("sacrebleu")
rouge_scorer = lazy_module("rouge_score.rouge_scorer")

# sacrebleu tokenizers that need no extra package or download; 'zh' is for Chinese.
BLEU_TOKENIZERS = ("13a", "intl", "zh", "char", "none")
ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")
CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# One CJK character, or a run of other letters and digits.
_ROUGE_TOKEN = re.compile(rf"[{CJK}]|[^\W_{CJK}]+")


def reference_streams(references: list[list[str]]) -> list[list[str | None]]:
    """sacrebleu's layout: stream k holds every item's k-th reference (None when it has
    fewer, which sacrebleu skips)."""
    width = max(len(refs) for refs in references)
    return [[refs[k] if k < len(refs) else None for refs in references] for k in range(width)]


@dataclass(frozen=True)
class Bleu:
    """sacrebleu's corpus BLEU (``tokenize``: 13a by default, zh for Chinese, intl, char,
    none), with sentence BLEU per item (sacrebleu's sentence_bleu: effective order)."""

    tokenize: str = "13a"
    name: str = field(default="bleu", init=False)
    higher_is_better: bool = field(default=True, init=False)

    def __post_init__(self) -> None:
        check_choice(self.name, "tokenize", self.tokenize, BLEU_TOKENIZERS)

    def compute(
        self,
        predictions: Sequence[str],
        references: Sequence[Reference],
        *,
        scores: Scores | None = None,
    ) -> MetricResult:
        refs = reference_lists(self.name, predictions, references)
        corpus = sacrebleu.corpus_bleu(
            list(predictions),
            reference_streams(refs),
            tokenize=self.tokenize,
        )
        per_item = [
            float(sacrebleu.sentence_bleu(p, r, tokenize=self.tokenize).score)
            for p, r in zip(predictions, refs, strict=True)
        ]
        details = {
            "tokenize": self.tokenize,
            "precisions": [float(p) for p in corpus.precisions],
            "brevity_penalty": float(corpus.bp),
            "prediction_length": int(corpus.sys_len),
            "reference_length": int(corpus.ref_len),
        }
        return MetricResult(self.name, float(corpus.score), per_item, details)


@dataclass(frozen=True)
class Chrf:
    """sacrebleu's corpus chrF, sentence chrF per item; ``word_order`` 2 gives chrF++.
    It reads characters, so it needs no tokenizer for Chinese."""

    word_order: int = 0
    name: str = field(default="chrf", init=False)
    higher_is_better: bool = field(default=True, init=False)

    def __post_init__(self) -> None:
        if self.word_order not in (0, 1, 2) or isinstance(self.word_order, bool):
            raise MetricOptionError(
                f"{self.name}: option 'word_order' must be 0, 1 or 2; got {self.word_order!r}"
            )

    def compute(
        self,
        predictions: Sequence[str],
        references: Sequence[Reference],
        *,
        scores: Scores | None = None,
    ) -> MetricResult:
        refs = reference_lists(self.name, predictions, references)
        corpus = sacrebleu.corpus_chrf(
            list(predictions),
            reference_streams(refs),
            word_order=self.word_order,
        )
        per_item = [
            float(sacrebleu.sentence_chrf(p, r, word_order=self.word_order).score)
            for p, r in zip(predictions, refs, strict=True)
        ]
        return MetricResult(
            self.name, float(corpus.score), per_item, {"word_order": self.word_order}
        )


class MixedScriptTokenizer:
    """A rouge-score tokenizer for any script: each CJK character is a token, other text is
    lower-cased runs of letters and digits (the default one drops non-ASCII text)."""

    def tokenize(self, text: str) -> list[str]:
        return _ROUGE_TOKEN.findall(text.lower())


@dataclass(frozen=True)
class Rouge:
    """rouge-score's ``rouge1``, ``rouge2`` or ``rougeL`` F-measure per item (the best over
    the item's references, as RougeScorer.score_multi picks), tokenized by
    MixedScriptTokenizer, without stemming."""

    name: str
    higher_is_better: bool = field(default=True, init=False)

    def __post_init__(self) -> None:
        check_choice("rouge", "name", self.name, ROUGE_TYPES)

    def compute(
        self,
        predictions: Sequence[str],
        references: Sequence[Reference],
        *,
        scores: Scores | None = None,
    ) -> MetricResult:
        refs = reference_lists(self.name, predictions, references)
        scorer = rouge_scorer.RougeScorer([self.name], tokenizer=MixedScriptTokenizer())
        per_item = [
            float(scorer.score_multi(r, p)[self.name].fmeasure)
            for p, r in zip(predictions, refs, strict=True)
        ]
        return MetricResult(
            self.name, sum(per_item) / len(per_item), per_item, {"measure": "fmeasure"}
        )
