"""Banking77's real texts for the improve tests: ../shared/datasets/banking77_test.csv
(PolyAI, CC BY 4.0), in a seeded order (the file is sorted by intent)."""

from __future__ import annotations

import csv
import random
from pathlib import Path

CSV = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "banking77_test.csv"


def banking77_rows() -> list[dict[str, str]]:
    """Every row (`text`, `category`), shuffled with a fixed seed."""
    with CSV.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    random.Random(77).shuffle(rows)
    return rows


def noisy_answers(
    truth: dict[str, str], share: float, seed: int
) -> tuple[dict[str, str], set[str]]:
    """A model's answer to each text: its intent, but another intent for ``share`` of the
    texts (drawn with ``seed``); also returns the texts answered wrong."""
    rng = random.Random(seed)
    intents = sorted(set(truth.values()))
    answers, wrong = {}, set()
    for text, intent in truth.items():
        answer = intent
        if rng.random() < share:
            answer = rng.choice([i for i in intents if i != intent])
            wrong.add(text)
        answers[text] = answer
    return answers, wrong
