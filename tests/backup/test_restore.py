"""Backup and restore end to end: a home populated through the app (a key, a request whose
content is sealed, a model and its alias) is backed up, restored into an empty home, and
served again: the old keys authenticate and the logged content opens. On SQLite and
PostgreSQL, and from one to the other."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import MetaData, insert, inspect, select

from modelyard.backup.archive import write_backup, write_backup_file
from modelyard.backup.errors import DamagedArchive, RestoreRefused, WrongSecret
from modelyard.backup.restore import restore
from modelyard.backup.sealing import BackupKey, Passphrase
from modelyard.config import Settings
from modelyard.guard import crypto
from modelyard.guard.sessions import SECRET_FILE
from modelyard.registry import Registry
from modelyard.store import open_store
from modelyard.store.migrate import alembic_config, current_revision, script_head
from modelyard.store.tables import Base, utcnow
from tests.conftest import _postgres_schema_url, admin_key, app_client, bearer, new_key
from tests.conftest import register_scripted as register

pytestmark = pytest.mark.anyio
ASK = {"model": "echo", "messages": [{"role": "user", "content": "the launch code is 0000"}]}
SECRET = Passphrase("a passphrase for tests")
Use = Callable[[str, str], Settings]
OLDER = "0011_review"  # a revision before the last ones (0012 made the compressions table)


@dataclass(frozen=True)
class Populated:
    admin: str
    developer: str
    request_id: str
    session_secret: bytes


@pytest.fixture
def use(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Use]:
    """``use(name, backend)``: point the settings at home ``name`` and, for PostgreSQL, at
    a fresh schema of the test database."""
    with contextlib.ExitStack() as schemas:

        def point(name: str, backend: str) -> Settings:
            monkeypatch.setenv("MODELYARD_HOME", str(tmp_path / name))
            if backend == "postgresql":
                url = schemas.enter_context(contextlib.contextmanager(_postgres_schema_url)())
                monkeypatch.setenv("MODELYARD_DATABASE_URL", url)
            else:
                monkeypatch.delenv("MODELYARD_DATABASE_URL", raising=False)
            return Settings()

        yield point


async def populate(settings: Settings) -> Populated:
    settings.ensure_home()
    store = open_store(settings.store_url)
    register(Registry(store), "echo")
    store.close()
    async with app_client(settings) as api:
        developer = await new_key(api, "developer")
        answer = await api.post("/v1/chat/completions", json=ASK, headers=bearer(developer))
        assert answer.status_code == 200, answer.text
        await api.logged()
    return Populated(
        admin=admin_key(settings.home),
        developer=developer,
        request_id=answer.headers["x-modelyard-request-id"],
        session_secret=(settings.home / SECRET_FILE).read_bytes(),
    )


async def served_again(settings: Settings, populated: Populated) -> None:
    """The restored home serves: its keys authenticate, its logged content opens, new rows
    get ids past the restored ones."""
    assert admin_key(settings.home) == populated.admin
    assert (settings.home / SECRET_FILE).read_bytes() == populated.session_secret
    async with app_client(settings) as api:
        me = await api.get("/api/keys/me", headers=bearer(populated.developer))
        assert me.status_code == 200 and me.json()["name"] == "developer-key"
        detail = (await api.get(f"/api/requests/{populated.request_id}")).json()
        assert detail["content"]["messages"][0]["content"] == ASK["messages"][0]["content"]
        assert detail["content"]["response"] == "echo: the launch code is 0000"
        again = await api.post(
            "/v1/chat/completions", json=ASK, headers=bearer(populated.developer)
        )
        assert again.status_code == 200, again.text
        await new_key(api, "viewer")  # an audit row and a key: ids after the restored ones
        await api.logged()
        audit = (await api.get("/api/audit")).json()["data"]
        assert audit[0]["action"] == "key.create" and audit[1]["action"] == "backup.restore"


@pytest.mark.parametrize(
    ("source", "target"),
    [
        ("sqlite", "sqlite"),
        pytest.param("postgresql", "postgresql", marks=pytest.mark.postgres),
        pytest.param("sqlite", "postgresql", marks=pytest.mark.postgres),
        pytest.param("postgresql", "sqlite", marks=pytest.mark.postgres),
    ],
)
async def test_a_restored_home_serves_as_the_old_one_did(
    use: Use, tmp_path: Path, source: str, target: str
) -> None:
    settings = use("old", source)
    populated = await populate(settings)
    store = open_store(settings.store_url)
    try:
        manifest = write_backup_file(store.engine, settings, tmp_path / "x.backup", SECRET)
    finally:
        store.close()
    assert manifest.backend == source and manifest.schema_revision == script_head()
    assert set(manifest.home_files) == {"admin.key", "content.keys", "session.secret"}
    assert {t.name: t.rows for t in manifest.tables}["request_log"] == 1
    restored_settings = use("new", target)
    with (tmp_path / "x.backup").open("rb") as archive:
        report = restore(archive, SECRET, restored_settings, "tests")
    assert report.backend == target and report.schema_from == report.schema_to
    assert {t.name: t.rows for t in report.tables}["api_keys"] == 2
    await served_again(restored_settings, populated)


async def test_a_backup_of_an_older_schema_is_migrated_on_restore(use: Use, tmp_path: Path) -> None:
    settings = use("old", "sqlite")
    settings.ensure_home()
    store = open_store(settings.store_url)
    command.downgrade(alembic_config(store.engine), OLDER)
    older = current_revision(store.engine)
    assert older == OLDER != script_head()
    metadata = MetaData()
    metadata.reflect(store.engine)
    newer_tables = set(Base.metadata.tables) - set(metadata.tables)
    assert "compressions" in newer_tables  # made by the migration after OLDER
    with store.engine.begin() as connection:
        connection.execute(
            insert(metadata.tables["models"]),
            [{"name": "kept", "task": "chat", "description": "", "created_at": utcnow()}],
        )
    key = BackupKey.generate()
    out = io.BytesIO()
    manifest = write_backup(store.engine, settings, out, key)
    store.close()
    assert manifest.schema_revision == older
    report = restore(io.BytesIO(out.getvalue()), key, use("new", "sqlite"), "tests")
    assert (report.schema_from, report.schema_to) == (older, script_head())
    restored = open_store(Settings().store_url, migrate=False)
    try:
        assert current_revision(restored.engine) == script_head()
        assert newer_tables <= set(inspect(restored.engine).get_table_names())
        with restored.engine.connect() as connection:
            names = connection.execute(select(Base.metadata.tables["models"].c.name)).scalars()
            assert list(names) == ["kept"]
    finally:
        restored.close()


def backed_up(settings: Settings, secret: Passphrase | BackupKey = SECRET) -> bytes:
    settings.ensure_home()
    crypto.load_or_create(settings.home)
    store = open_store(settings.store_url)
    try:
        out = io.BytesIO()
        write_backup(store.engine, settings, out, secret)
        return out.getvalue()
    finally:
        store.close()


def nothing_written(home: Path) -> bool:
    return not home.exists() or not any(home.iterdir())


def test_a_wrong_passphrase_or_a_damaged_archive_writes_nothing(use: Use) -> None:
    archive = backed_up(use("old", "sqlite"))
    target = use("new", "sqlite")
    with pytest.raises(WrongSecret, match="wrong passphrase"):
        restore(io.BytesIO(archive), Passphrase("not the passphrase"), target, "tests")
    middle = len(archive) // 2
    tampered = archive[:middle] + bytes([archive[middle] ^ 1]) + archive[middle + 1 :]
    with pytest.raises(DamagedArchive, match="altered"):
        restore(io.BytesIO(tampered), SECRET, target, "tests")
    with pytest.raises(DamagedArchive, match="cut short"):
        restore(io.BytesIO(archive[:-10]), SECRET, target, "tests")
    assert nothing_written(target.home)


def test_a_home_that_is_not_empty_is_refused_unless_forced(use: Use) -> None:
    old = use("old", "sqlite")
    archive = backed_up(old)
    old_ring = crypto.load_or_create(old.home)
    target = use("new", "sqlite")
    backed_up(target)  # a store and a key ring of its own
    before = (target.home / crypto.KEY_FILE).read_bytes()
    with pytest.raises(RestoreRefused, match="not empty"):
        restore(io.BytesIO(archive), SECRET, target, "tests")
    assert (target.home / crypto.KEY_FILE).read_bytes() == before
    restore(io.BytesIO(archive), SECRET, target, "tests", force=True)
    assert crypto.load_or_create(target.home) == old_ring


@pytest.mark.postgres
def test_a_database_that_is_not_empty_is_refused_unless_forced(use: Use) -> None:
    archive = backed_up(use("old", "sqlite"))
    target = use("new", "postgresql")
    store = open_store(target.store_url)  # the tables, in an otherwise empty home
    register(Registry(store), "other")
    store.close()
    with pytest.raises(RestoreRefused, match="tables in postgresql"):
        restore(io.BytesIO(archive), SECRET, target, "tests")
    report = restore(io.BytesIO(archive), SECRET, target, "tests", force=True)
    assert {t.name: t.rows for t in report.tables}["models"] == 0


def test_content_keys_from_the_environment(use: Use, monkeypatch: pytest.MonkeyPatch) -> None:
    """A source's configured ring is backed up in content.keys' form; a target whose
    configured ring lacks one of its keys is refused."""
    ring = crypto.ContentCipher(primary="a", keys={"a": bytes(32)})
    monkeypatch.setenv("MODELYARD_CONTENT_KEYS", f"a:{'A' * 43}=")
    archive = backed_up(use("old", "sqlite"))
    monkeypatch.setenv("MODELYARD_CONTENT_KEYS", f"b:{'B' * 43}=")
    with pytest.raises(RestoreRefused, match="lacks the content keys a"):
        restore(io.BytesIO(archive), SECRET, use("new", "sqlite"), "tests")
    monkeypatch.delenv("MODELYARD_CONTENT_KEYS")
    restore(io.BytesIO(archive), SECRET, use("new", "sqlite"), "tests")
    assert crypto.load_or_create(Settings().home) == ring
