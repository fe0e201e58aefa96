from __future__ import annotations

from sqlalchemy import inspect, text

from modelyard.store import Store, open_store
from modelyard.store.migrate import current_revision


def test_migrations_create_the_registry_tables(store: Store) -> None:
    tables = set(inspect(store.engine).get_table_names())
    assert {"models", "model_versions", "aliases", "alias_moves", "alembic_version"} <= tables
    assert current_revision(store.engine) == "0015_console_language"


def test_opening_again_is_idempotent_and_keeps_data(database_url: str, store: Store) -> None:
    with store.session() as session:
        session.execute(
            text(
                "INSERT INTO models (name, task, description, created_at) "
                "VALUES ('kept', 'chat', '', CURRENT_TIMESTAMP)"
            )
        )
    again = open_store(database_url)
    try:
        with again.session() as session:
            assert session.execute(text("SELECT name FROM models")).scalars().all() == ["kept"]
    finally:
        again.close()


def test_sqlite_runs_in_wal_mode(tmp_path: object) -> None:
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    opened = open_store(f"sqlite:///{tmp_path / 'wal.db'}")
    try:
        with opened.engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    finally:
        opened.close()


def test_a_failed_transaction_leaves_nothing_behind(store: Store) -> None:
    try:
        with store.session() as session:
            session.execute(
                text(
                    "INSERT INTO models (name, task, description, created_at) "
                    "VALUES ('half', 'chat', '', CURRENT_TIMESTAMP)"
                )
            )
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    with store.session() as session:
        assert session.execute(text("SELECT count(*) FROM models")).scalar() == 0
