"""Restore a backup into an empty home and store (or, forced, over them).

The archive is opened and checked whole before anything is written. The rows are loaded in
one transaction: the schema made at the backup's revision, the rows inserted, then the
migrations run up to this code's head. SQLite builds the new database in a file beside the
old one and moves it in place; PostgreSQL commits (or rolls back) the one transaction. The
home's secret files are staged beside their places and moved in once the store is."""

from __future__ import annotations

import secrets
import tempfile
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import Connection, MetaData, create_engine, inspect, make_url

from modelyard.backup import home
from modelyard.backup.archive import read_backup
from modelyard.backup.errors import DamagedArchive, RestoreRefused
from modelyard.backup.protocol import Manifest, RestoreReport, TableCount
from modelyard.backup.rows import count_rows, load_table, reflected, reset_sequences
from modelyard.backup.sealing import BackupSecret
from modelyard.backup.snapshot import backend_of, schema_revision
from modelyard.config import Settings
from modelyard.guard import crypto
from modelyard.store import open_store
from modelyard.store.audit import append_audit
from modelyard.store.migrate import is_known_revision, script_head, upgrade_connection


def restore(
    source: BinaryIO, secret: BackupSecret, settings: Settings, actor: str, *, force: bool = False
) -> RestoreReport:
    """Restore the backup read from ``source`` into the home and store of ``settings``."""
    url = settings.store_url
    if not force:
        refuse_unless_empty(settings)
    with tempfile.TemporaryDirectory(prefix="modelyard-restore-") as directory:
        unpacked = Path(directory)
        manifest = read_backup(source, secret, unpacked)
        _check(manifest, settings)
        names = [
            name
            for name in manifest.home_files
            if not (name == crypto.KEY_FILE and settings.content_keys is not None)
        ]
        staged = home.stage(unpacked / "home", settings.home, names)
        try:
            counts, revision = _load_store(url, manifest, unpacked, force)
        except BaseException:
            home.discard(staged)
            raise
        home.install(staged, settings.home)
    _audit(url, manifest, actor)
    return RestoreReport(
        backup_created_at=manifest.created_at,
        backup_modelyard_version=manifest.modelyard_version,
        backend=backend_of(make_url(url).get_backend_name()),
        schema_from=manifest.schema_revision,
        schema_to=revision,
        tables=counts,
        home_files=names,
    )


def refuse_unless_empty(settings: Settings) -> None:
    found = [str(settings.home / name) for name in home.present(settings.home)]
    tables = _tables_in(settings.store_url)
    if tables:
        found.append(f"{len(tables)} tables in {make_url(settings.store_url).render_as_string()}")
    if found:
        raise RestoreRefused(
            f"refusing to restore over a home that is not empty ({'; '.join(found)}): restore "
            "into an empty MODELYARD_HOME (and an empty database), or give --force to replace "
            "them (stop every server on them first)"
        )


def _tables_in(url: str) -> list[str]:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and not Path(parsed.database or "").is_file():
        return []  # connecting would create the file
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return list(inspect(connection).get_table_names())
    finally:
        engine.dispose()


def _check(manifest: Manifest, settings: Settings) -> None:
    if not is_known_revision(manifest.schema_revision):
        raise RestoreRefused(
            f"this backup's schema ({manifest.schema_revision}, modelyard "
            f"{manifest.modelyard_version}) is not one this modelyard knows (its head is "
            f"{script_head()}): restore it with that modelyard version or a newer one"
        )
    home.check_content_keys(settings, manifest.content_keys)


def _load_store(
    url: str, manifest: Manifest, unpacked: Path, force: bool
) -> tuple[list[TableCount], str]:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        engine = create_engine(url)
        try:
            with engine.begin() as connection:
                if force:
                    _drop_everything(connection)
                return _load(connection, manifest, unpacked)
        finally:
            engine.dispose()
    path = Path(parsed.database or "")
    path.parent.mkdir(parents=True, exist_ok=True)
    building = path.with_name(f".{path.name}.restoring-{secrets.token_hex(4)}")
    engine = create_engine(parsed.set(database=str(building)))
    try:
        with engine.begin() as connection:
            loaded = _load(connection, manifest, unpacked)
        engine.dispose()  # closed: nothing of it is left in a journal
        _swap(building, path)
    finally:
        engine.dispose()
        building.unlink(missing_ok=True)
    return loaded


def _load(
    connection: Connection, manifest: Manifest, unpacked: Path
) -> tuple[list[TableCount], str]:
    upgrade_connection(connection, manifest.schema_revision)
    tables = {table.name: table for table in reflected(connection)}
    for dump in manifest.tables:
        table = tables.get(dump.name)
        if table is None:
            raise DamagedArchive(
                f"the backup has table {dump.name}, which schema {manifest.schema_revision} lacks"
            )
        load_table(connection, table, dump, unpacked / dump.member)
    reset_sequences(connection, tables.values())
    upgrade_connection(connection, "head")
    counts = [TableCount(name=n, rows=r) for n, r in count_rows(connection, reflected(connection))]
    revision = schema_revision(connection)
    assert revision is not None  # just migrated
    return counts, revision


def _drop_everything(connection: Connection) -> None:
    metadata = MetaData()
    metadata.reflect(connection)
    metadata.drop_all(connection)


def _swap(building: Path, path: Path) -> None:
    """Put the new SQLite database in place. The old one's WAL and shared-memory files go
    first: SQLite would replay a leftover WAL into the new file."""
    for suffix in ("-wal", "-shm", "-journal"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    building.replace(path)


def _audit(url: str, manifest: Manifest, actor: str) -> None:
    store = open_store(url)
    try:
        with store.session() as session:
            append_audit(
                session,
                actor=actor,
                action="backup.restore",
                target=manifest.created_at.isoformat(),
                after={
                    "modelyard_version": manifest.modelyard_version,
                    "backend": manifest.backend,
                    "schema_revision": manifest.schema_revision,
                },
            )
    finally:
        store.close()
