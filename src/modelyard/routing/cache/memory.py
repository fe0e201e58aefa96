"""Answers in this replica's memory: least recently used out first, each for its TTL.

numpy is imported where a semantic answer is looked up or kept: a server whose routes
cache nothing semantically does not load it (issue 8)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from modelyard.routing.cache.answer import CachedAnswer

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Vector = npt.NDArray[np.float32]
# A semantic bucket's most neighbours: bounds one lookup's work (a 384 x 256 product).
BUCKET_ENTRIES = 256


@dataclass(slots=True)
class _Kept:
    answer: CachedAnswer
    expires: float


class MemoryAnswers:
    """At most ``max_entries`` answers by exact key."""

    def __init__(self, max_entries: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._entries: OrderedDict[str, _Kept] = OrderedDict()
        self._max = max_entries
        self._clock = clock

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> CachedAnswer | None:
        kept = self._entries.get(key)
        if kept is None:
            return None
        if kept.expires <= self._clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return kept.answer

    def put(self, key: str, answer: CachedAnswer, ttl_s: float, max_entries: int) -> None:
        self._max = max_entries
        self._entries[key] = _Kept(answer, self._clock() + ttl_s)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)


@dataclass(slots=True)
class _Bucket:
    vectors: Vector  # one unit vector per row
    answers: list[_Kept]


class SemanticAnswers:
    """Answers by bucket (the request without its last user message) and by the vector of
    that message; a lookup takes the most similar live neighbour in its bucket."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._count = 0
        self._clock = clock

    def __len__(self) -> int:
        return self._count

    def nearest(self, bucket: str, vector: Vector) -> tuple[CachedAnswer, float] | None:
        import numpy as np

        found = self._buckets.get(bucket)
        if found is None:
            return None
        self._buckets.move_to_end(bucket)
        similarity = found.vectors @ vector
        now = self._clock()
        for row in np.argsort(-similarity):
            kept = found.answers[int(row)]
            if kept.expires > now:
                return kept.answer, float(similarity[row])
        return None

    def put(
        self, bucket: str, vector: Vector, answer: CachedAnswer, ttl_s: float, max_entries: int
    ) -> None:
        import numpy as np

        kept = _Kept(answer, self._clock() + ttl_s)
        found = self._buckets.get(bucket)
        if found is None:
            self._buckets[bucket] = _Bucket(vector[np.newaxis, :], [kept])
        else:
            if len(found.answers) >= BUCKET_ENTRIES:  # the bucket's oldest goes
                found.vectors, found.answers = found.vectors[1:], found.answers[1:]
                self._count -= 1
            found.vectors = np.vstack([found.vectors, vector[np.newaxis, :]])
            found.answers.append(kept)
            self._buckets.move_to_end(bucket)
        self._count += 1
        while self._count > max_entries and len(self._buckets) > 1:
            _, dropped = self._buckets.popitem(last=False)
            self._count -= len(dropped.answers)
