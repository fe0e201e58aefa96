"""The secret files of a home that a server needs, into and out of a backup.

- ``admin.key``: the admin key the first start wrote (the store holds only its hash; the
  CLI's client commands send it);
- ``content.keys``: the content key ring, without which logged content cannot be read. When
  the keys come from ``MODELYARD_CONTENT_KEYS`` (or the TOML file), the backup holds that
  ring, in the file's form;
- ``session.secret``: signs console sessions (without it, people log in again).

Configuration (``modelyard.toml``, the environment) is the deployment's, not the backup's."""

from __future__ import annotations

import os
from pathlib import Path

from modelyard.backup.errors import RestoreRefused
from modelyard.config import Settings
from modelyard.guard import crypto
from modelyard.guard.keys import ADMIN_KEY_FILE
from modelyard.guard.sessions import SECRET_FILE

SECRET_FILES = (ADMIN_KEY_FILE, crypto.KEY_FILE, SECRET_FILE)
STAGED_PREFIX = ".restoring-"


def content_ring(settings: Settings) -> crypto.ContentCipher | None:
    """The content key ring this home's server uses, without making one."""
    if settings.content_keys is not None:
        return crypto.parse_key_list(settings.content_keys.get_secret_value())
    if (settings.home / crypto.KEY_FILE).is_file():
        return crypto.load_or_create(settings.home)
    return None


def collect(settings: Settings, directory: Path) -> tuple[list[str], list[str]]:
    """Copy the home's secret files into ``directory``: their names and the content key ids."""
    directory.mkdir(parents=True, exist_ok=True)
    names: list[str] = []
    for name in (ADMIN_KEY_FILE, SECRET_FILE):
        source = settings.home / name
        if source.is_file():
            write_private(directory / name, source.read_bytes())
            names.append(name)
    ring = content_ring(settings)
    if ring is not None:
        write_private(directory / crypto.KEY_FILE, crypto.ring_text(ring).encode("utf-8"))
        names.append(crypto.KEY_FILE)
    return sorted(names), list(ring.keys) if ring is not None else []


def present(home: Path) -> list[str]:
    return [name for name in SECRET_FILES if (home / name).exists()]


def check_content_keys(settings: Settings, backed_up: list[str]) -> None:
    """With ``MODELYARD_CONTENT_KEYS`` set, the restored server reads content with those keys
    and not with the backup's ring: every key the backup's content may be sealed with must be
    there."""
    if settings.content_keys is None:
        return
    configured = crypto.parse_key_list(settings.content_keys.get_secret_value()).keys
    missing = [key_id for key_id in backed_up if key_id not in configured]
    if missing:
        raise RestoreRefused(
            f"MODELYARD_CONTENT_KEYS lacks the content keys {', '.join(missing)} of this backup, "
            "so its logged content would not open: unset it for the restore (the backup's ring "
            "is then written to content.keys) or add those keys to it"
        )


def stage(source: Path, home: Path, names: list[str]) -> list[tuple[Path, Path]]:
    """Write the backup's files beside their places in ``home``; (staged, final) pairs."""
    home.mkdir(parents=True, exist_ok=True)
    staged: list[tuple[Path, Path]] = []
    for name in names:
        path = home / f"{STAGED_PREFIX}{name}"
        write_private(path, (source / name).read_bytes())
        staged.append((path, home / name))
    return staged


def install(staged: list[tuple[Path, Path]], home: Path) -> None:
    """Move the staged files in place; a secret file of the home the backup has no copy of
    goes (an ``admin.key`` of another store would not authenticate)."""
    kept = {final.name for _, final in staged}
    for name in SECRET_FILES:
        if name not in kept:
            (home / name).unlink(missing_ok=True)
    for path, final in staged:
        path.replace(final)


def discard(staged: list[tuple[Path, Path]]) -> None:
    for path, _ in staged:
        path.unlink(missing_ok=True)


def write_private(path: Path, data: bytes) -> None:
    """``data`` to a new file at ``path``, mode 0600 from its creation."""
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
