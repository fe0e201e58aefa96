"""Retention of stored content: prompts and responses older than N days are erased
(the metadata rows stay, so usage and billing are unaffected)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlalchemy.exc import SQLAlchemyError

from modelyard.store import Store
from modelyard.store.lease import Leader
from modelyard.store.tables import RequestLogRow

log = logging.getLogger(__name__)
PURGE_EVERY_S = 3600.0


def purge_content(store: Store, older_than_days: int, now: datetime | None = None) -> int:
    """Erase the content of rows older than ``older_than_days``; returns how many."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=older_than_days)
    with store.session() as session:
        result = session.execute(
            update(RequestLogRow)
            .where(RequestLogRow.at < cutoff, RequestLogRow.content.is_not(None))
            .values(content=None)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def purge_periodically(
    store: Store, older_than_days: int, leader: Leader | None = None
) -> None:
    """Purge at start and then hourly (run as a background task); 0 days keeps all."""
    if older_than_days <= 0:
        return
    while True:
        try:
            if leader is not None and not await leader():
                await asyncio.sleep(PURGE_EVERY_S)
                continue
            purged = await asyncio.to_thread(purge_content, store, older_than_days)
            if purged:
                log.info("retention: erased the content of %d requests", purged)
        except SQLAlchemyError as error:
            log.warning("retention purge failed: %s", error)
        await asyncio.sleep(PURGE_EVERY_S)
