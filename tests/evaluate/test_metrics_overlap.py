"""BLEU and chrF against direct sacrebleu calls, ROUGE against RougeScorer with the same
tokenizer, on English and Chinese, with one or several references per item."""

from __future__ import annotations

import pytest
import sacrebleu
from rouge_score.rouge_scorer import RougeScorer  # type: ignore[import-untyped]

from modelyard.evaluate.metrics import MetricOptionError, MixedScriptTokenizer, metric

EN_PRED = [
    "the cat sat on the mat",
    "a quick brown fox jumps over the lazy dog",
    "hello there general kenobi",
]
EN_REFS: list[str | list[str]] = [
    "the cat is sitting on the mat",
    ["the quick brown fox jumped over the lazy dog", "a fast brown fox leaps over a lazy dog"],
    "hello there",
]
ZH_PRED = ["今天天气很好，我们去公园散步。", "他喜欢读书和写字", "机器学习是人工智能的一个分支"]
ZH_REFS = ["今天天气不错，我们去公园走走。", "他爱读书，也爱写字。", "机器学习属于人工智能"]


def streams(refs: list[str | list[str]]) -> list[list[str | None]]:
    lists = [[r] if isinstance(r, str) else r for r in refs]
    return [[r[k] if k < len(r) else None for r in lists] for k in range(2)]


def test_bleu_matches_corpus_bleu_with_several_references() -> None:
    result = metric("bleu").compute(EN_PRED, EN_REFS)
    expected = sacrebleu.corpus_bleu(EN_PRED, streams(EN_REFS))  # type: ignore[arg-type]
    assert result.value == pytest.approx(expected.score)
    assert result.details["brevity_penalty"] == pytest.approx(expected.bp)
    assert result.details["reference_length"] == expected.ref_len


def test_bleu_per_item_is_sentence_bleu() -> None:
    result = metric("bleu").compute(EN_PRED, EN_REFS)
    expected = [
        sacrebleu.sentence_bleu(p, [r] if isinstance(r, str) else r).score
        for p, r in zip(EN_PRED, EN_REFS, strict=True)
    ]
    assert result.per_item == pytest.approx(expected)
    # The second reference of item 2 counts: dropping it changes the score.
    alone = metric("bleu").compute(EN_PRED[1:2], [EN_REFS[1][1]]).value
    assert result.per_item is not None
    assert result.per_item[1] != pytest.approx(alone)


def test_bleu_zh_tokenizer_on_chinese() -> None:
    result = metric("bleu", tokenize="zh").compute(ZH_PRED, ZH_REFS)
    expected = sacrebleu.corpus_bleu(ZH_PRED, [ZH_REFS], tokenize="zh")
    assert result.value == pytest.approx(expected.score)
    assert result.per_item == pytest.approx(
        [
            sacrebleu.sentence_bleu(p, [r], tokenize="zh").score
            for p, r in zip(ZH_PRED, ZH_REFS, strict=True)
        ]
    )
    # 13a leaves unspaced Chinese as whole-sentence tokens: a different (lower) score.
    assert metric("bleu").compute(ZH_PRED, ZH_REFS).value < result.value


@pytest.mark.parametrize(("pred", "refs"), [(EN_PRED, EN_REFS), (ZH_PRED, ZH_REFS)])
@pytest.mark.parametrize("word_order", [0, 2])
def test_chrf_matches_corpus_and_sentence_chrf(
    pred: list[str], refs: list[str | list[str]], word_order: int
) -> None:
    result = metric("chrf", word_order=word_order).compute(pred, refs)
    expected = sacrebleu.corpus_chrf(pred, streams(refs), word_order=word_order)  # type: ignore[arg-type]
    assert result.value == pytest.approx(expected.score)
    assert result.per_item == pytest.approx(
        [
            sacrebleu.sentence_chrf(
                p, [r] if isinstance(r, str) else r, word_order=word_order
            ).score
            for p, r in zip(pred, refs, strict=True)
        ]
    )


def test_tokenizer_splits_cjk_into_characters_and_lowercases_words() -> None:
    tokens = MixedScriptTokenizer().tokenize("用GPT-4o写代码, Hello World_2!")
    assert tokens == ["用", "gpt", "4o", "写", "代", "码", "hello", "world", "2"]


@pytest.mark.parametrize("name", ["rouge1", "rouge2", "rougeL"])
@pytest.mark.parametrize(("pred", "refs"), [(EN_PRED, EN_REFS), (ZH_PRED, ZH_REFS)])
def test_rouge_matches_rouge_scorer_with_the_same_tokenizer(
    name: str, pred: list[str], refs: list[str | list[str]]
) -> None:
    result = metric(name).compute(pred, refs)
    scorer = RougeScorer([name], tokenizer=MixedScriptTokenizer())
    expected = [
        scorer.score_multi([r] if isinstance(r, str) else r, p)[name].fmeasure
        for p, r in zip(pred, refs, strict=True)
    ]
    assert result.per_item == pytest.approx(expected)
    assert result.value == pytest.approx(sum(expected) / len(expected))
    assert 0 < result.value < 1


def test_rouge_on_chinese_is_not_zero_as_the_default_tokenizer_would_make_it() -> None:
    assert RougeScorer(["rouge1"]).score(ZH_REFS[0], ZH_PRED[0])["rouge1"].fmeasure == 0
    # 今天天气很好我们去公园散步 vs 今天天气不错我们去公园走走: 9 of 13 characters shared.
    assert metric("rouge1").compute(ZH_PRED[:1], ZH_REFS[:1]).value == pytest.approx(9 / 13)


def test_overlap_option_errors() -> None:
    with pytest.raises(MetricOptionError, match="'tokenize' must be one of 13a, intl, zh"):
        metric("bleu", tokenize="jieba")
    with pytest.raises(MetricOptionError, match="'word_order' must be 0, 1 or 2"):
        metric("chrf", word_order=3)
