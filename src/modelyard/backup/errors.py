"""Errors of backup and restore: one line a person can act on (the CLI prints it, the API
answers it)."""

from __future__ import annotations

from modelyard.errors import ModelyardError


class BackupError(ModelyardError):
    """A backup or restore that cannot go on; nothing was written."""

    status = 400
    code = "backup_error"


class WrongSecret(BackupError):
    """The passphrase or key file does not open the archive."""

    code = "wrong_backup_secret"


class DamagedArchive(BackupError):
    """The archive is truncated, altered, or not a modelyard backup."""

    code = "damaged_backup"


class RestoreRefused(BackupError):
    """The target is not empty, or the backup is from a newer modelyard."""

    status = 409
    code = "restore_refused"
