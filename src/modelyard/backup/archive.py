"""A backup archive: a tar sealed by ``sealing``, ``manifest.json`` first, then each table's
rows (``tables/<name>.jsonl.gz``) and the home's secret files (``home/<name>``).

The members are spooled to a temporary directory first (a tar member's size comes before
its bytes, and the manifest, which comes first, holds their SHA-256)."""

from __future__ import annotations

import hashlib
import io
import os
import re
import tarfile
import tempfile
from pathlib import Path
from typing import IO, BinaryIO, cast

from pydantic import ValidationError
from sqlalchemy import Connection, Engine, Table

from modelyard import __version__
from modelyard.backup import home
from modelyard.backup.errors import BackupError, DamagedArchive
from modelyard.backup.protocol import Manifest, TableDump
from modelyard.backup.rows import dump_table, reflected
from modelyard.backup.sealing import BackupSecret, OpenedReader, SealedWriter
from modelyard.backup.snapshot import backend_of, schema_revision, snapshot
from modelyard.config import Settings
from modelyard.store import Store
from modelyard.store.audit import append_audit
from modelyard.store.tables import utcnow

MANIFEST = "manifest.json"
MEMBER = re.compile(r"^(tables/[A-Za-z0-9_]+\.jsonl\.gz|home/[A-Za-z0-9_][A-Za-z0-9_.]*)$")
MAX_MANIFEST_BYTES = 16 << 20
COPY_BYTES = 1 << 20


def write_backup(
    engine: Engine, settings: Settings, out: BinaryIO, secret: BackupSecret
) -> Manifest:
    """Write a sealed backup of the store behind ``engine`` and the secret files of
    ``settings.home`` to ``out``."""
    with tempfile.TemporaryDirectory(prefix="modelyard-backup-") as directory:
        spool = Path(directory)
        manifest = _spool(engine, settings, spool)
        sealed = SealedWriter(out, secret)
        with tarfile.open(
            fileobj=cast(IO[bytes], sealed), mode="w|", format=tarfile.PAX_FORMAT
        ) as tar:
            data = manifest.model_dump_json(indent=2).encode("utf-8")
            tar.addfile(_info(MANIFEST, len(data)), io.BytesIO(data))
            for member in manifest.members:
                path = spool / member
                with path.open("rb") as file:
                    tar.addfile(_info(member, path.stat().st_size), file)
        sealed.finish()
    return manifest


def write_backup_file(
    engine: Engine, settings: Settings, path: Path, secret: BackupSecret
) -> Manifest:
    """``write_backup`` to the file ``path`` (mode 0600), which appears only once complete."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            manifest = write_backup(engine, settings, file, secret)
            file.flush()
            os.fsync(file.fileno())
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return manifest


def backup_name(manifest: Manifest) -> str:
    """The file name a backup is offered under: ``modelyard-20261203T120000Z.backup``."""
    return f"modelyard-{manifest.created_at.strftime('%Y%m%dT%H%M%SZ')}.backup"


def record_backup(store: Store, manifest: Manifest, actor: str) -> None:
    """The audit trail's line of a backup taken (what it holds, never a secret)."""
    with store.session() as session:
        append_audit(
            session,
            actor=actor,
            action="backup.create",
            target=backup_name(manifest),
            after={
                "schema_revision": manifest.schema_revision,
                "rows": sum(table.rows for table in manifest.tables),
                "home_files": manifest.home_files,
            },
        )


def _spool(engine: Engine, settings: Settings, spool: Path) -> Manifest:
    (spool / "tables").mkdir()
    with snapshot(engine) as connection:
        revision = schema_revision(connection)
        if revision is None:
            raise BackupError("the store has no schema yet: nothing to back up")
        tables = [_dump(connection, table, spool) for table in reflected(connection)]
    # The key ring is read after the rows: a key added meanwhile is in it, so every row opens.
    home_files, key_ids = home.collect(settings, spool / "home")
    members = [table.member for table in tables] + [f"home/{name}" for name in home_files]
    return Manifest(
        modelyard_version=__version__,
        created_at=utcnow(),
        backend=backend_of(engine.dialect.name),
        schema_revision=revision,
        tables=tables,
        home_files=home_files,
        content_keys=key_ids,
        members={member: _sha256(spool / member) for member in members},
    )


def _dump(connection: Connection, table: Table, spool: Path) -> TableDump:
    member = f"tables/{table.name}.jsonl.gz"
    if not MEMBER.match(member):
        raise BackupError(f"table name {table.name!r} cannot be a member of a backup")
    return dump_table(connection, table, spool / member, member)


def read_backup(source: BinaryIO, secret: BackupSecret, directory: Path) -> Manifest:
    """Open, authenticate and unpack a backup into ``directory``: every member is checked
    against the manifest's SHA-256, and the archive to its last byte, before this returns."""
    reader = OpenedReader(source, secret)
    try:
        with tarfile.open(fileobj=cast(IO[bytes], reader), mode="r|") as tar:
            manifest, digests = _unpack(tar, directory)
    except tarfile.TarError as error:
        raise DamagedArchive(f"the backup's contents are not a tar archive: {error}") from error
    reader.drain()
    missing = sorted(set(manifest.members) - set(digests))
    if missing:
        raise DamagedArchive(f"the backup lacks members its manifest lists: {missing}")
    wrong = sorted(name for name, digest in digests.items() if manifest.members[name] != digest)
    if wrong:
        raise DamagedArchive(f"members of the backup fail their SHA-256 check: {wrong}")
    return manifest


def _unpack(tar: tarfile.TarFile, directory: Path) -> tuple[Manifest, dict[str, str]]:
    manifest: Manifest | None = None
    digests: dict[str, str] = {}
    for member in tar:
        file = tar.extractfile(member) if member.isfile() else None
        if file is None:
            raise DamagedArchive(f"the backup holds {member.name!r}, which is not a file")
        if manifest is None:
            manifest = _manifest(member, file)
            continue
        if member.name not in manifest.members or member.name in digests:
            raise DamagedArchive(
                f"the backup holds {member.name!r}, which its manifest does not list"
            )
        digests[member.name] = _extract(file, directory / member.name)
    if manifest is None:
        raise DamagedArchive("the backup is empty")
    return manifest, digests


def _manifest(member: tarfile.TarInfo, file: IO[bytes]) -> Manifest:
    if member.name != MANIFEST or member.size > MAX_MANIFEST_BYTES:
        raise DamagedArchive(f"the backup does not begin with {MANIFEST}")
    try:
        manifest = Manifest.model_validate_json(file.read())
    except ValidationError as error:
        raise DamagedArchive(f"the backup's manifest is not valid: {error}") from error
    listed = {table.member for table in manifest.tables} | {
        f"home/{name}" for name in manifest.home_files
    }
    if listed != set(manifest.members) or not all(MEMBER.match(name) for name in listed):
        raise DamagedArchive("the backup's manifest does not match its members")
    return manifest


def _extract(file: IO[bytes], path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with path.open("wb") as out:
        while chunk := file.read(COPY_BYTES):
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def _info(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o600
    info.mtime = int(utcnow().timestamp())
    return info


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(COPY_BYTES):
            digest.update(chunk)
    return digest.hexdigest()
