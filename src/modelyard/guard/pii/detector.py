"""``PiiDetector``: runs the recognizers over a text and keeps one finding per span."""

from __future__ import annotations

import bisect
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Protocol

from modelyard.guard.pii.phones import DEFAULT_PHONE_REGIONS, PhoneRecognizer, known_regions
from modelyard.guard.pii.recognizers import ENTITIES, PRIORITY, RECOGNIZERS, Span


@dataclass(frozen=True)
class Finding:
    """One piece of personal data: its entity type, where it is, and what it says."""

    entity: str
    start: int
    end: int
    text: str
    validated: bool  # passed a checksum (or, for IP_ADDRESS, the ipaddress module)
    # A card's scheme ("visa", "unionpay", ...), a phone number's country ("GB"), else None.
    subtype: str | None = None


class UnknownEntity(ValueError):
    """An entity type the detector does not know."""


class Finds(Protocol):
    """What the detector needs of a recognizer."""

    @property
    def entities(self) -> frozenset[str]: ...
    @property
    def validated(self) -> bool: ...
    def find(self, text: str) -> Iterator[Span]: ...


class PiiDetector:
    """Finds PII in texts. Compiled once, immutable and safe to share between threads.

    ``phone_regions`` are the countries whose national phone formats are recognized
    (international ``+`` numbers are recognized for every country)."""

    def __init__(
        self,
        entities: Collection[str] | None = None,
        phone_regions: Collection[str] = DEFAULT_PHONE_REGIONS,
    ) -> None:
        wanted = ENTITIES if entities is None else frozenset(e.upper() for e in entities)
        unknown = wanted - ENTITIES
        if unknown:
            raise UnknownEntity(
                f"unknown PII entity type(s) {', '.join(sorted(unknown))}; "
                f"known: {', '.join(sorted(ENTITIES))}"
            )
        self.entities: frozenset[str] = wanted
        self.phone_regions: tuple[str, ...] = known_regions(phone_regions)
        everything: tuple[Finds, ...] = (*RECOGNIZERS, PhoneRecognizer(self.phone_regions))
        self._recognizers: tuple[Finds, ...] = tuple(r for r in everything if r.entities & wanted)

    def detect(self, text: str) -> list[Finding]:
        """Findings sorted by start, none overlapping another."""
        candidates = [
            Finding(entity, start, end, text[start:end], recognizer.validated, subtype)
            for recognizer in self._recognizers
            for entity, start, end, subtype in recognizer.find(text)
            if entity in self.entities
        ]
        return resolve_overlaps(candidates)


def resolve_overlaps(candidates: list[Finding]) -> list[Finding]:
    """Keep one finding per span: checksum-validated first, then the longer, then the more
    specific entity (``PRIORITY``), then the earlier."""
    if len(candidates) < 2:
        return candidates
    ranked = sorted(
        candidates,
        key=lambda f: (not f.validated, f.start - f.end, -PRIORITY[f.entity], f.start),
    )
    starts: list[int] = []
    kept: list[Finding] = []
    for finding in ranked:
        i = bisect.bisect_right(starts, finding.start)
        if i and kept[i - 1].end > finding.start:
            continue  # overlaps the kept finding that starts at or before it
        if i < len(kept) and kept[i].start < finding.end:
            continue  # overlaps the kept finding that starts after it
        starts.insert(i, finding.start)
        kept.insert(i, finding)
    return kept
