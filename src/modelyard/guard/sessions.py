"""Console sessions: a signed cookie naming a key, bound to that key's current secret.

The cookie is ``<key id>.<expiry>.<mac>`` with the MAC over the id, the expiry and the
key's stored secret hash, keyed by a server secret. Rotating or revoking the key, or
reaching the expiry, ends the session; nothing is stored per session.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from modelyard.guard.keys import KeyRecord

COOKIE = "modelyard_session"
SECRET_FILE = "session.secret"


@dataclass(frozen=True)
class SessionSigner:
    secret: bytes
    ttl_s: int

    def issue(self, record: KeyRecord, now: datetime) -> str:
        expiry = int(now.timestamp()) + self.ttl_s
        return f"{record.id}.{expiry}.{self._mac(record.id, expiry, record.secret_sha256)}"

    def key_id_of(self, cookie: str) -> str | None:
        parts = cookie.split(".")
        return parts[0] if len(parts) == 3 else None

    def verify(self, cookie: str, record: KeyRecord, now: datetime) -> bool:
        parts = cookie.split(".")
        if len(parts) != 3 or parts[0] != record.id or not parts[1].isdigit():
            return False
        expiry = int(parts[1])
        if datetime.fromtimestamp(expiry, UTC) <= now:
            return False
        expected = self._mac(record.id, expiry, record.secret_sha256)
        return hmac.compare_digest(expected, parts[2])

    def _mac(self, key_id: str, expiry: int, secret_sha256: str) -> str:
        message = f"{key_id}.{expiry}.{secret_sha256}".encode()
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()


def load_session_secret(home: Path, configured: str | None) -> bytes:
    """The configured secret (shared by replicas), else ``home/session.secret`` (0600)."""
    if configured:
        return configured.encode("utf-8")
    path = home / SECRET_FILE
    if not path.exists():
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(secrets.token_hex(32))
    return path.read_text(encoding="utf-8").strip().encode("utf-8")
