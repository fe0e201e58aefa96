"""The console language each user chose, kept in the store so that it follows them to
another browser or machine: read when they log in, written when they switch (both on a
worker thread: the store is never read on the event loop)."""

from __future__ import annotations

from modelyard.store import Store
from modelyard.store.tables import ConsolePreferenceRow, utcnow


def stored_language(store: Store, key_id: str) -> str | None:
    """The language code ``key_id`` last chose, if any."""
    with store.session() as session:
        row = session.get(ConsolePreferenceRow, key_id)
        return None if row is None else row.language


def remember_language(store: Store, key_id: str, code: str) -> None:
    """Keep ``code`` as ``key_id``'s language (replacing an earlier choice)."""
    with store.session() as session:
        session.merge(ConsolePreferenceRow(key_id=key_id, language=code, updated_at=utcnow()))
