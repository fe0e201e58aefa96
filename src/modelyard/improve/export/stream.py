"""A dataset version's items converted and framed as an export's bytes, a page of items at
a time (memory holds one page), hashed and counted on the way."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from sqlalchemy import select

from modelyard.evaluate.datasets import DatasetNotFound, DatasetOut
from modelyard.improve.export.formats import (
    Conversation,
    Item,
    Unconvertible,
    conversation,
    encoded,
    openai_line,
    sharegpt_line,
)
from modelyard.improve.export.protocol import ExportCounts, ExportFormat, Skipped
from modelyard.store import Store
from modelyard.store.tables import DatasetItemRow, DatasetRow

PAGE = 500  # items read per query
EXAMPLES = 20  # skipped items a manifest lists


@dataclass(frozen=True)
class Framing:
    """How a format lays out its conversations: JSONL is a line each, the JSON array
    wraps them in brackets."""

    line: Callable[[Conversation], dict[str, Any]]
    opening: bytes
    separator: bytes  # between two conversations
    terminator: bytes  # after each conversation
    closing: bytes
    media_type: str
    suffix: str


FRAMINGS: MappingProxyType[str, Framing] = MappingProxyType(
    {
        "openai": Framing(openai_line, b"", b"", b"\n", b"", "application/x-ndjson", "jsonl"),
        "sharegpt": Framing(sharegpt_line, b"", b"", b"\n", b"", "application/x-ndjson", "jsonl"),
        "sharegpt-json": Framing(
            sharegpt_line, b"[\n", b",\n", b"", b"\n]\n", "application/json", "json"
        ),
    }
)


@dataclass
class Tally:
    """What an export read, wrote and left out, and the SHA-256 and size of its bytes."""

    items: int = 0
    other_splits: int = 0
    written: int = 0
    corrected: int = 0
    skipped_by: Counter[str] = field(default_factory=Counter)
    examples: list[Skipped] = field(default_factory=list)
    size: int = 0
    digest: Any = field(default_factory=hashlib.sha256)

    def add(self, data: bytes) -> bytes:
        self.size += len(data)
        self.digest.update(data)
        return data

    def skip(self, index: int, why: Unconvertible) -> None:
        self.skipped_by[why.reason] += 1
        if len(self.examples) < EXAMPLES:
            self.examples.append(Skipped(item_index=index, reason=why.reason, detail=why.detail))

    def counts(self) -> ExportCounts:
        return ExportCounts(
            items=self.items,
            other_splits=self.other_splits,
            written=self.written,
            corrected=self.corrected,
            skipped=sum(self.skipped_by.values()),
            skipped_by=dict(sorted(self.skipped_by.items())),
        )


def export_chunks(
    store: Store, dataset: DatasetOut, format: ExportFormat, split: str | None, tally: Tally
) -> Iterator[bytes]:
    """The export's bytes, a page of conversations per chunk; ``tally`` counts as they go."""
    framing = FRAMINGS[format]
    if framing.opening:
        yield tally.add(framing.opening)
    for page in item_pages(store, dataset.name, dataset.version):
        chunk = bytearray()
        for index, item in page:
            tally.items += 1
            if split is not None and item.get("split") != split:
                tally.other_splits += 1
                continue
            try:
                conv = conversation(item)
                data = encoded(framing.line(conv))
            except Unconvertible as why:
                tally.skip(index, why)
                continue
            chunk += (framing.separator if tally.written else b"") + data + framing.terminator
            tally.written += 1
            tally.corrected += conv.corrected
        if chunk:
            yield tally.add(bytes(chunk))
    if framing.closing:
        yield tally.add(framing.closing)


def item_pages(
    store: Store, name: str, version: int, page: int = PAGE
) -> Iterator[list[tuple[int, Item]]]:
    """The items of ``name@version`` in order, ``page`` at a time, each read by keyset in a
    session of its own (none is held between pages)."""
    with store.session() as session:
        dataset_id = session.scalar(
            select(DatasetRow.id).where(DatasetRow.name == name, DatasetRow.version == version)
        )
    if dataset_id is None:
        raise DatasetNotFound(name, version)
    last = -1
    while True:
        query = (
            select(DatasetItemRow.item_index, DatasetItemRow.data)
            .where(DatasetItemRow.dataset_id == dataset_id, DatasetItemRow.item_index > last)
            .order_by(DatasetItemRow.item_index)
            .limit(page)
        )
        with store.session() as session:
            rows = [(index, dict(data)) for index, data in session.execute(query)]
        if not rows:
            return
        yield rows
        last = rows[-1][0]
