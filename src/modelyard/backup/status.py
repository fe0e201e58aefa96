"""What a backup of this server would hold, and how to take and restore one."""

from __future__ import annotations

from sqlalchemy import Engine

from modelyard.backup import home
from modelyard.backup.protocol import BackupStatus, TableCount
from modelyard.backup.rows import count_rows, reflected
from modelyard.backup.snapshot import backend_of, schema_revision
from modelyard.config import Settings
from modelyard.guard import crypto

COMMANDS = (
    "modelyard backup modelyard.backup --passphrase-file /run/secrets/backup-passphrase",
    "curl -X POST $MODELYARD_URL/api/backup -H 'authorization: Bearer $ADMIN_KEY' "
    "-H 'content-type: application/json' -d '{\"passphrase\": \"...\"}' -o modelyard.backup",
    "modelyard restore modelyard.backup --passphrase-file /run/secrets/backup-passphrase "
    "(into an empty MODELYARD_HOME and database, no server running on them)",
)


def backup_status(engine: Engine, settings: Settings) -> BackupStatus:
    with engine.connect() as connection:
        revision = schema_revision(connection)
        tables = [
            TableCount(name=name, rows=rows)
            for name, rows in count_rows(connection, reflected(connection))
        ]
    files = set(home.present(settings.home))
    from_environment = settings.content_keys is not None
    if from_environment:
        files.add(crypto.KEY_FILE)  # the backup holds the configured ring in its form
    return BackupStatus(
        backend=backend_of(engine.dialect.name),
        schema_revision=revision,
        tables=tables,
        home_files=sorted(files),
        content_keys="environment" if from_environment else "file",
        commands=list(COMMANDS),
    )
