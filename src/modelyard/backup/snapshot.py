"""A consistent snapshot of the store for a backup to read, while servers keep writing.

SQLite: the online backup API (``sqlite3.Connection.backup``) copies the database, its WAL
included, in one step under one read transaction into a temporary file, which the backup
then reads at leisure. PostgreSQL: one ``REPEATABLE READ, READ ONLY`` transaction, so every
table is read as of the same moment."""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import cast

from sqlalchemy import Connection, Engine, column, create_engine, inspect, select, table, text

from modelyard.backup.errors import BackupError
from modelyard.backup.protocol import Backend
from modelyard.store.migrate import VERSION_TABLE


def backend_of(name: str) -> Backend:
    """The backend a dialect name (``engine.dialect.name``) is, if backups support it."""
    if name not in ("sqlite", "postgresql"):
        raise BackupError(f"backups support SQLite and PostgreSQL stores, not {name}")
    return cast(Backend, name)


@contextmanager
def snapshot(engine: Engine) -> Iterator[Connection]:
    """A connection that sees the store as it was at one moment."""
    if backend_of(engine.dialect.name) == "sqlite":
        with _sqlite_copy(engine) as connection:
            yield connection
        return
    with engine.connect() as connection, connection.begin():
        connection.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))
        yield connection


@contextmanager
def _sqlite_copy(engine: Engine) -> Iterator[Connection]:
    database = engine.url.database
    if not database or database == ":memory:" or not Path(database).is_file():
        raise BackupError(f"no SQLite store at {database}: nothing to back up")
    with tempfile.TemporaryDirectory(prefix="modelyard-backup-") as directory:
        copy = Path(directory) / "snapshot.db"
        source = engine.raw_connection()
        try:
            with closing(sqlite3.connect(copy)) as target:
                source.driver_connection.backup(target)  # type: ignore[union-attr]
        finally:
            source.close()
        reader = create_engine(f"sqlite:///{copy}")
        try:
            with reader.connect() as connection:
                yield connection
        finally:
            reader.dispose()


def schema_revision(connection: Connection) -> str | None:
    """The Alembic revision the store is at (None: no schema yet)."""
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    versions = table(VERSION_TABLE, column("version_num"))
    stamped = sorted(str(v) for v in connection.execute(select(versions.c.version_num)).scalars())
    if len(stamped) > 1:
        raise BackupError(
            f"the store is stamped with several revisions {stamped}: migrate it first"
        )
    return stamped[0] if stamped else None
