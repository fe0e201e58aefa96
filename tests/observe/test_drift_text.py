"""Text drift: a domain classifier tells different prompts apart and not the same ones.

The texts are public datasets read from ../shared/datasets (see its README for sources and
licences): NQ-open questions (English), CMRC 2018 questions (Chinese), Banking77 queries.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest

from modelyard.observe.drift import column_drift, drift_report
from modelyard.observe.drift import text as text_drift

DATASETS = Path(__file__).resolve().parents[3] / "shared" / "datasets"


def dataset(name: str) -> Path:
    path = DATASETS / name
    if not path.exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{path} is required in CI")
        pytest.skip(f"{path} is not here")
    return path


def english_questions() -> list[str]:
    with dataset("nq_open_dev.jsonl").open(encoding="utf-8") as lines:
        return [json.loads(line)["question"] for line in lines]


def chinese_questions() -> list[str]:
    squad = json.loads(dataset("cmrc2018_dev_squad.json").read_text(encoding="utf-8"))
    return [
        qa["question"]
        for article in squad["data"]
        for paragraph in article["paragraphs"]
        for qa in paragraph["qas"]
    ]


def banking(where: str = "") -> list[str]:
    """Banking77 queries, of the intents whose name contains one of ``where``'s words."""
    with dataset("banking77_test.csv").open(encoding="utf-8", newline="") as rows:
        return [
            row["text"]
            for row in csv.DictReader(rows)
            if not where or any(word in row["category"] for word in where.split())
        ]


def halves(texts: list[str], seed: int, size: int) -> tuple[list[str], list[str]]:
    order = np.random.default_rng(seed).permutation(len(texts))
    return [texts[i] for i in order[:size]], [texts[i] for i in order[size : 2 * size]]


def test_english_and_chinese_prompts_drift() -> None:
    english, chinese = english_questions()[:300], chinese_questions()[:300]

    result = column_drift("prompt", english, chinese)

    assert (result.kind, result.test, result.threshold) == ("text", "domain_classifier", 0.55)
    assert result.statistic > 0.95
    assert result.p_value is not None
    assert result.p_value < 1e-6
    assert result.drifted


@pytest.mark.parametrize("size", [40, 300])
def test_two_banking_topics_drift(size: int) -> None:
    cards = halves(banking("card"), seed=0, size=size)[0]
    transfers = halves(banking("transfer top_up"), seed=0, size=size)[0]

    result = column_drift("prompt", cards, transfers, kind="text")

    assert result.statistic > 0.8
    assert result.drifted


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_random_split_of_one_set_does_not_drift(seed: int) -> None:
    reference, current = halves(banking(), seed, size=500)

    result = column_drift("prompt", reference, current)

    assert result.kind == "text"
    assert 0.4 < result.statistic <= 0.55
    assert not result.drifted


def test_small_windows_need_significance_not_only_an_auc_above_055() -> None:
    texts = banking()
    results = [column_drift("prompt", *halves(texts, seed, size=12)) for seed in range(12)]

    assert any(r.statistic > 0.55 for r in results), "noise should pass 0.55 in small windows"
    assert not any(r.drifted for r in results)


def test_the_verdict_is_deterministic() -> None:
    reference, current = halves(banking(), seed=3, size=200)

    assert column_drift("q", reference, current) == column_drift("q", reference, current)


def test_windows_above_the_cap_are_sampled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(text_drift, "MAX_TEXTS", 60)
    cards, transfers = banking("card")[:200], banking("transfer")[:150]

    result = column_drift("prompt", cards, transfers, kind="text")

    assert (result.reference_rows, result.current_rows) == (200, 150)
    assert result.drifted


def test_texts_without_a_single_word_learn_nothing() -> None:
    reference = ["?!", "...", "-- --", "!", "??"]
    current = ["!!", ". . .", "~", "?", "--"]

    result = column_drift("prompt", reference, current, kind="text")

    assert (result.statistic, result.p_value, result.drifted) == (0.5, 1.0, False)


def test_a_text_window_needs_two_texts() -> None:
    with pytest.raises(ValueError, match="at least 2 texts in each window; the current"):
        column_drift("prompt", ["a question", "another one"], ["one", None], kind="text")


def test_a_text_column_counts_in_the_dataset_verdict() -> None:
    english, chinese = english_questions()[:100], chinese_questions()[:100]
    lengths = [float(len(t)) for t in english]

    report = drift_report(
        {"prompt": english, "prompt_chars": lengths},
        {"prompt": chinese, "prompt_chars": lengths},
    )

    assert [(c.column, c.drifted) for c in report.columns] == [
        ("prompt", True),
        ("prompt_chars", False),
    ]
    assert (report.share_drifted, report.drifted) == (0.5, True)
