"""Answers in memory: bounded by count (least recently used out first) and by TTL; the
semantic index answers with the nearest live neighbour of the same bucket."""

from __future__ import annotations

import numpy as np

from modelyard.routing.cache.answer import CachedAnswer
from modelyard.routing.cache.memory import BUCKET_ENTRIES, MemoryAnswers, SemanticAnswers
from tests.guard.conftest import FakeClock


def said(text: str) -> CachedAnswer:
    return CachedAnswer(text, "stop", 3, 2)


def unit(*values: float) -> np.ndarray:
    vector = np.array(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def test_the_least_recently_used_goes_first() -> None:
    answers = MemoryAnswers(2)
    answers.put("a", said("A"), 60, 2)
    answers.put("b", said("B"), 60, 2)
    assert answers.get("a") == said("A")  # a is now the more recent
    answers.put("c", said("C"), 60, 2)
    assert (answers.get("a"), answers.get("b"), answers.get("c")) == (said("A"), None, said("C"))
    assert len(answers) == 2


def test_an_answer_lives_for_its_ttl() -> None:
    clock = FakeClock()
    answers = MemoryAnswers(10, clock=clock)
    answers.put("a", said("A"), 5, 10)
    clock.advance(4.9)
    assert answers.get("a") == said("A")
    clock.advance(0.2)
    assert answers.get("a") is None
    assert len(answers) == 0


def test_the_nearest_live_neighbour_of_the_bucket_answers() -> None:
    clock = FakeClock()
    index = SemanticAnswers(clock=clock)
    index.put("b1", unit(1, 0, 0), said("x"), 10, 100)
    index.put("b1", unit(0, 1, 0), said("y"), 100, 100)
    index.put("b2", unit(1, 0.1, 0), said("other bucket"), 100, 100)
    found = index.nearest("b1", unit(1, 0.2, 0))
    assert found is not None and found[0] == said("x")
    assert found[1] == np.float32(unit(1, 0, 0) @ unit(1, 0.2, 0))
    clock.advance(11)  # x expired: the next nearest answers
    found = index.nearest("b1", unit(1, 0.2, 0))
    assert found is not None and found[0] == said("y")
    assert index.nearest("b3", unit(1, 0, 0)) is None


def test_the_index_is_bounded_per_bucket_and_in_all() -> None:
    index = SemanticAnswers()
    for i in range(BUCKET_ENTRIES + 5):
        index.put("b1", unit(1, i, 0), said(str(i)), 60, 10_000)
    assert len(index) == BUCKET_ENTRIES
    found = index.nearest("b1", unit(1, 0, 0))  # the oldest (0, 1, ...) went
    assert found is not None and found[0] == said("5")
    for bucket in ("b2", "b3"):
        index.put(bucket, unit(1, 0, 0), said(bucket), 60, BUCKET_ENTRIES + 1)
    assert len(index) <= BUCKET_ENTRIES + 1
    assert index.nearest("b1", unit(1, 0, 0)) is None  # the least recently used bucket went
