"""``modelyard backup FILE`` and ``modelyard restore FILE``: the store and the home's key
files, sealed with a passphrase or a key file."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import click

from modelyard.backup.archive import record_backup, write_backup, write_backup_file
from modelyard.backup.errors import BackupError
from modelyard.backup.protocol import Manifest, RestoreReport
from modelyard.backup.restore import refuse_unless_empty, restore
from modelyard.backup.sealing import BackupSecret, Passphrase, read_key_file
from modelyard.cli.common import json_option, print_json
from modelyard.config import Settings
from modelyard.services import local_actor
from modelyard.store import open_store
from modelyard.store.migrate import is_at_head

FilePath = click.Path(dir_okay=False, allow_dash=True, path_type=Path)


def secret_options(command: Callable[..., Any]) -> Callable[..., Any]:
    command = click.option(
        "--key-file",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="A file holding 32 random bytes in base64 (`openssl rand -base64 32`).",
    )(command)
    return click.option(
        "--passphrase-file",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="A file whose first line is the passphrase (else MODELYARD_BACKUP_PASSPHRASE, "
        "else a prompt).",
    )(command)


@click.command("backup")
@click.argument("file", type=FilePath)
@secret_options
def backup(file: Path, passphrase_file: Path | None, key_file: Path | None) -> None:
    """Write a sealed backup to FILE ('-': standard output): a consistent snapshot of the
    store (SQLite or PostgreSQL) and the home's admin key, content key ring and session
    secret. Servers keep running meanwhile."""
    settings = Settings()
    secret = _secret(settings, passphrase_file, key_file, confirm=True)
    store = open_store(settings.store_url, migrate=False)
    try:
        if str(file) == "-":
            manifest = write_backup(store.engine, settings, sys.stdout.buffer, secret)
        else:
            manifest = write_backup_file(store.engine, settings, file, secret)
        if is_at_head(store.engine):  # an older schema's audit table may differ from ours
            record_backup(store, manifest, local_actor())
    finally:
        store.close()
    click.echo(_backed_up(manifest, file), err=str(file) == "-")


@click.command("restore")
@click.argument(
    "file", type=click.Path(exists=True, dir_okay=False, allow_dash=True, path_type=Path)
)
@secret_options
@click.option(
    "--force",
    is_flag=True,
    help="Replace a home and database that are not empty (stop every server on them first).",
)
@json_option
def restore_command(
    file: Path, passphrase_file: Path | None, key_file: Path | None, force: bool, as_json: bool
) -> None:
    """Restore a backup into an empty MODELYARD_HOME and database (MODELYARD_DATABASE_URL, or
    SQLite in the home), with no server running on them. A backup of an older version is
    migrated to this version's schema; nothing is written unless the whole archive opens and
    checks out."""
    settings = Settings()
    if not force:
        refuse_unless_empty(settings)
    secret = _secret(settings, passphrase_file, key_file, confirm=False)
    with _opened(file) as source:
        report = restore(source, secret, settings, local_actor(), force=force)
    if as_json:
        print_json(report)
    else:
        click.echo(_restored(report, settings))


def _secret(
    settings: Settings, passphrase_file: Path | None, key_file: Path | None, *, confirm: bool
) -> BackupSecret:
    if passphrase_file is not None and key_file is not None:
        raise click.UsageError("give --passphrase-file or --key-file, not both")
    if key_file is not None:
        return read_key_file(key_file)
    if passphrase_file is not None:
        try:
            lines = passphrase_file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as error:
            raise BackupError(f"cannot read the passphrase file: {error}") from error
        return Passphrase(lines[0] if lines else "")
    if settings.backup_passphrase is not None:
        return Passphrase(settings.backup_passphrase.get_secret_value())
    if not sys.stdin.isatty():
        raise click.UsageError(
            "no passphrase: give --passphrase-file, --key-file or MODELYARD_BACKUP_PASSPHRASE"
        )
    typed = click.prompt("Backup passphrase", hide_input=True, confirmation_prompt=confirm)
    return Passphrase(str(typed))


def _opened(file: Path) -> BinaryIO:
    if str(file) == "-":
        return sys.stdin.buffer
    return file.open("rb")


def _backed_up(manifest: Manifest, file: Path) -> str:
    rows = sum(table.rows for table in manifest.tables)
    where = "standard output" if str(file) == "-" else str(file)
    return (
        f"backed up {rows} rows of {len(manifest.tables)} tables ({manifest.backend}, schema "
        f"{manifest.schema_revision}) and {', '.join(manifest.home_files) or 'no key files'} "
        f"to {where}"
    )


def _restored(report: RestoreReport, settings: Settings) -> str:
    rows = sum(table.rows for table in report.tables)
    migrated = (
        f", migrated {report.schema_from} → {report.schema_to}"
        if report.schema_from != report.schema_to
        else ""
    )
    return (
        f"restored the backup of {report.backup_created_at.isoformat()} (modelyard "
        f"{report.backup_modelyard_version}): {rows} rows into {report.backend}{migrated}; "
        f"{', '.join(report.home_files) or 'no key files'} into {settings.home}"
    )
