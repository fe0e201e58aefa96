"""The request-log writer's batch path (Core INSERT, one seal_many per batch) stores
exactly what writing ORM objects one by one stored, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import String, cast, inspect, select

from modelyard.guard import crypto
from modelyard.observe.language import language_of, prompt_text
from modelyard.observe.requestlog import RequestLogWriter, RequestRecord
from modelyard.store import Store
from modelyard.store.tables import RequestLogRow

pytestmark = pytest.mark.anyio
COLUMNS = [column.key for column in inspect(RequestLogRow).columns]


def records() -> list[RequestRecord]:
    """Rows unlike each other in every way a column can differ."""
    return [
        RequestRecord(
            id="full",
            at=datetime(2026, 11, 24, 23, 30, 15, 123456, tzinfo=UTC),
            key_id="k1",
            endpoint="chat.completions",
            route="bot",
            version="bot@3",
            status=200,
            error_code=None,
            latency_ms=123.25,
            ttft_ms=12.5,
            prompt_tokens=80,
            completion_tokens=120,
            cost=0.0012,
            streamed=True,
            pii={"EMAIL": 2, "PHONE": 1},
            injection=["ignore_previous", "system_prompt"],
            content={
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "Résume ce texte, s'il te plaît: 秘密"},
                ],
                "response": "d'accord ✓",
            },
            overhead_ms=0.75,
            energy_wh=0.01,
            carbon_g=0.004,
            user="ann@example.com",
            variant="candidate",
            fallback_from="bot@2",
        ),
        RequestRecord(
            id="bare",
            # Not UTC: stored as the same instant in UTC; day is the record's own date.
            at=datetime(2026, 11, 25, 0, 45, tzinfo=timezone(timedelta(hours=2))),
            key_id="k2",
            endpoint="embeddings",
            route="embed",
            version=None,
            status=502,
            error_code="engine_error",
            latency_ms=5.0,
        ),
        RequestRecord(
            id="cjk",
            at=datetime(2026, 11, 24, 8, tzinfo=UTC),
            key_id="k1",
            endpoint="completions",
            route="bot",
            version="bot@3",
            status=200,
            error_code=None,
            latency_ms=9.5,
            ttft_ms=None,
            streamed=False,
            pii={},
            injection=[],
            content={"prompt": "こんにちは世界"},
        ),
    ]


def orm_row(record: RequestRecord, row_id: str, content: bytes | None) -> RequestLogRow:
    """The row as the writer used to build it (an ORM object through the unit of work)."""
    fields = record.model_dump()
    fields.pop("content")
    fields.pop("tool_parts")
    prompt = prompt_text(record.content)
    return RequestLogRow(
        **{**fields, "id": row_id},
        day=record.at.date().isoformat(),
        content=content,
        language=language_of(prompt),
        prompt_chars=len(prompt),
    )


def stored(store: Store, row_id: str) -> dict[str, Any]:
    with store.session() as session:
        row = session.get_one(RequestLogRow, row_id)
        return {key: getattr(row, key) for key in COLUMNS}


def raw(store: Store, row_id: str) -> dict[str, Any]:
    """Every column but the key and content as the database holds it, as text."""
    keys = [key for key in COLUMNS if key not in ("id", "content")]
    table = RequestLogRow.__table__
    query = select(*(cast(table.c[key], String).label(key) for key in keys)).where(
        table.c.id == row_id
    )
    with store.session() as session:
        return dict(session.execute(query).one()._mapping)


async def test_a_batch_reads_back_as_written(store: Store, tmp_path: Path) -> None:
    cipher = crypto.load_or_create(tmp_path)
    calls: list[int] = []

    class Counting:
        def seal_many(self, plaintexts: Sequence[bytes]) -> list[bytes]:
            calls.append(len(plaintexts))
            return cipher.seal_many(plaintexts)

    log = RequestLogWriter(
        store,
        seal=Counting(),
        store_content=True,
        flush_interval_s=0.05,
        batch_rows=100,
        queue_rows=100,
    )
    batch = records()
    for record in batch:
        log.submit(record)
    await log.close()
    assert calls == [2]  # one seal_many per batch, for the rows that have content
    assert (log.stats.written, log.stats.failed) == (3, 0)
    # The same records written the old way, to compare with column by column.
    with store.session() as session:
        for record in batch:
            session.add(orm_row(record, f"orm-{record.id}", None))
    for record in batch:
        row = stored(store, record.id)
        old = stored(store, f"orm-{record.id}")
        assert {k: v for k, v in row.items() if k not in ("id", "content")} == {
            k: v for k, v in old.items() if k not in ("id", "content")
        }
        assert raw(store, record.id) == raw(store, f"orm-{record.id}")
        assert row["at"] == record.at and row["at"].tzinfo == UTC
        assert row["pii"] == record.pii and row["injection"] == record.injection
        assert row["ttft_ms"] == record.ttft_ms and row["streamed"] is record.streamed
        assert row["cache_hit"] is False  # the column default still applies
        if record.content is None:
            assert row["content"] is None
        else:
            assert row["content"].startswith(crypto.MAGIC)
            assert json.loads(cipher.open(row["content"])) == record.content
    full = stored(store, "full")
    assert full["pii"] == {"EMAIL": 2, "PHONE": 1} and full["streamed"] is True
    assert (full["language"], full["fallback_from"], full["user"]) == (
        "fr",
        "bot@2",
        "ann@example.com",
    )
    bare = stored(store, "bare")
    assert bare["day"] == "2026-11-25" and bare["at"] == datetime(2026, 11, 24, 22, 45, tzinfo=UTC)
    assert (bare["ttft_ms"], bare["version"], bare["language"], bare["prompt_chars"]) == (
        None,
        None,
        None,
        0,
    )
    assert stored(store, "cjk")["language"] == "ja"


async def test_a_one_by_one_sealer_and_no_sealer(store: Store) -> None:
    sealed = RequestLogWriter(
        store,
        seal=lambda plain: plain[::-1],
        store_content=True,
        flush_interval_s=0.05,
        batch_rows=100,
        queue_rows=100,
    )
    plain = RequestLogWriter(
        store,
        seal=None,
        store_content=True,
        flush_interval_s=0.05,
        batch_rows=100,
        queue_rows=100,
    )
    first, second, third = records()
    sealed.submit(first)
    sealed.submit(second)
    plain.submit(third)
    await sealed.close()
    await plain.close()
    text = json.dumps(first.content, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    assert stored(store, "full")["content"] == text[::-1]
    assert stored(store, "bare")["content"] is None
    assert stored(store, "cjk")["content"] == '{"prompt":"こんにちは世界"}'.encode()


async def test_store_content_false_never_calls_the_sealer(store: Store) -> None:
    class Refusing:
        def seal_many(self, plaintexts: Sequence[bytes]) -> list[bytes]:
            raise AssertionError("sealed with store_content off")

    log = RequestLogWriter(
        store,
        seal=Refusing(),
        store_content=False,
        flush_interval_s=0.05,
        batch_rows=100,
        queue_rows=100,
    )
    for record in records():
        log.submit(record)
    await log.close()
    assert [stored(store, r.id)["content"] for r in records()] == [None, None, None]
    assert stored(store, "full")["prompt_chars"] > 0  # metadata is still derived
