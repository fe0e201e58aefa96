"""Language identification and near-duplicate detection on real public text from
../shared/datasets (see its README for sources and licenses): banking77 and NQ-open
questions (English), CMRC 2018 questions (Chinese), poem verses (English)."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest

from modelyard.improve.dedup import NearDuplicates, shingles
from modelyard.improve.language import LanguageId

DATASETS = Path(__file__).resolve().parents[3] / "shared" / "datasets"


def dataset(name: str) -> Path:
    path = DATASETS / name
    if not path.is_file():
        pytest.skip(f"{path} is not here")
    return path


def banking77() -> list[str]:
    with dataset("banking77_test.csv").open(encoding="utf-8") as handle:
        return [row["text"] for row in csv.DictReader(handle)]


def nq_open() -> list[str]:
    lines = dataset("nq_open_dev.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["question"] for line in lines]


def cmrc2018() -> list[str]:
    data = json.loads(dataset("cmrc2018_dev_squad.json").read_text(encoding="utf-8"))
    return [
        qa["question"]
        for article in data["data"]
        for paragraph in article["paragraphs"]
        for qa in paragraph["qas"]
    ]


def poems() -> list[str]:
    lines = dataset("poem_sentiment_test.tsv").read_text(encoding="utf-8").splitlines()
    return [line.split("\t")[1] for line in lines]


@pytest.mark.parametrize(
    ("source", "language", "accuracy"),
    [(banking77, "en", 0.99), (nq_open, "en", 0.99), (poems, "en", 0.95), (cmrc2018, "zh", 0.99)],
)
def test_language_is_identified_on_real_questions(
    source: object, language: str, accuracy: float
) -> None:
    texts = source()  # type: ignore[operator]
    identify = LanguageId().identify
    found = [identify(text) for text in texts]
    share = sum(code == language for code in found) / len(found)
    print(f"{source.__name__}: {share:.4f} of {len(found)} identified as {language}")  # type: ignore[attr-defined]
    assert share >= accuracy


def retyped(text: str, rng: random.Random) -> str:
    """The text as a user types it again: two letters of one word swapped, and the final
    question mark dropped (or added)."""
    words = text.split()
    i = rng.choice([n for n, word in enumerate(words) if len(word) >= 5])
    word = words[i]
    j = rng.randrange(1, len(word) - 2)
    words[i] = word[:j] + word[j + 1] + word[j] + word[j + 2 :]
    out = " ".join(words)
    return out.rstrip("?.!") if out[-1] in "?.!" else out + "?"


def jaccard(a: str, b: str) -> float:
    first, second = set(shingles(a)), set(shingles(b))
    return len(first & second) / len(first | second)


def test_near_duplicates_of_real_questions_are_found() -> None:
    """300 real questions typed again, among 1,000 other real questions: each copy is
    matched with its original, and what else is matched is really near (exact Jaccard)."""
    rng = random.Random(1)
    pool = [
        text
        for text in dict.fromkeys(banking77() + nq_open())
        if len(text) >= 40 and any(len(word) >= 5 for word in text.split())
    ]
    rng.shuffle(pool)
    originals, others = pool[:300], pool[300:1300]
    rows = [(text, i) for i, text in enumerate(originals)]
    rows += [(retyped(text, rng), i) for i, text in enumerate(originals)]
    rows += [(text, -1 - i) for i, text in enumerate(others)]
    rng.shuffle(rows)
    index = NearDuplicates(threshold=0.6, num_perm=128)
    found, matched, honest = 0, 0, 0
    for key, (text, source) in enumerate(rows):
        signature = index.signature(text)
        match = index.match(signature)
        if match is None:
            index.add(key, signature)
            continue
        matched += 1
        kept, kept_source = rows[match.key]
        found += kept_source == source
        honest += jaccard(text, kept) >= 0.5
    recall, precision = found / len(originals), found / matched
    print(f"real questions: recall {recall:.3f}, precision {precision:.3f}, {matched} matched")
    assert recall >= 0.95 and precision >= 0.9
    assert honest == matched  # no match is far from the threshold in exact Jaccard
