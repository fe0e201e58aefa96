"""Leases: which process runs a singleton job (the release controller, alerts, drift,
retention) when several serve the same store (``--workers N``, replicas). A holder renews
its lease each round; a lease whose holder stopped renewing lapses after its time to live
and the next process to ask takes it."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from modelyard.store.database import Store
from modelyard.store.tables import LeaseRow, utcnow

Leader = Callable[[], Awaitable[bool]]


def acquire_lease(
    store: Store, name: str, holder: str, ttl: timedelta, now: datetime | None = None
) -> bool:
    """Take or renew lease ``name``; False while another holder's lease is valid."""
    now = now or utcnow()
    with store.session() as session:
        taken = session.execute(
            update(LeaseRow)
            .where(LeaseRow.name == name, (LeaseRow.holder == holder) | (LeaseRow.expires_at < now))
            .values(holder=holder, expires_at=now + ttl)
        )
        if taken.rowcount:  # type: ignore[attr-defined]
            return True
        if session.get(LeaseRow, name) is not None:
            return False
    try:
        with store.session() as session:
            session.add(LeaseRow(name=name, holder=holder, expires_at=now + ttl))
    except IntegrityError:
        return False  # another process created it first
    return True


def this_process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def leader(store: Store, name: str, ttl: timedelta, holder: str | None = None) -> Leader:
    """A check a job's loop calls each round: does this process hold (and so renew) ``name``?"""
    me = holder or this_process()

    async def held() -> bool:
        return await asyncio.to_thread(acquire_lease, store, name, me, ttl)

    return held
