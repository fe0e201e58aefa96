"""The in-memory key ring: authenticates a presented key without touching the store."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType

from modelyard.errors import ModelyardError
from modelyard.guard import keyformat
from modelyard.guard.keys import KeyMarker, KeyRecord
from modelyard.guard.protocol import KeyLimits
from modelyard.guard.roles import Role, sees_all


@dataclass(frozen=True)
class Principal:
    """The caller of a request, as its key says."""

    key_id: str
    name: str
    role: Role
    allowed_routes: tuple[str, ...]
    limits: KeyLimits

    def may_call(self, route: str) -> bool:
        return any(fnmatch.fnmatchcase(route, pattern) for pattern in self.allowed_routes)

    @property
    def sees_all(self) -> bool:
        return sees_all(self.role)

    def owns(self, key_id: str) -> bool:
        return self.sees_all or key_id == self.key_id


class AuthenticationFailed(ModelyardError):
    """The request's key is missing, malformed, unknown, revoked or expired."""

    status = 401
    headers = MappingProxyType({"www-authenticate": 'Bearer realm="modelyard"'})

    def __init__(self, message: str, code: str = "invalid_api_key") -> None:
        super().__init__(message, code=code)


class KeyRing:
    """A snapshot of the store's usable keys, swapped whole on change (no locks needed)."""

    def __init__(self) -> None:
        self._records: dict[str, KeyRecord] = {}
        self.marker: KeyMarker | None = None

    def replace(self, marker: KeyMarker, records: list[KeyRecord]) -> None:
        self._records = {record.id: record for record in records if not record.revoked}
        self.marker = marker

    def forget(self, key_id: str) -> None:
        """Drop a key at once (revoked here); the next reload confirms it."""
        records = dict(self._records)
        records.pop(key_id, None)
        self._records = records

    @property
    def size(self) -> int:
        return len(self._records)

    def record(self, key_id: str) -> KeyRecord | None:
        return self._records.get(key_id)

    def authenticate(self, key: str, now: datetime) -> Principal:
        key_id = keyformat.key_id_of(key)
        record = self._records.get(key_id) if key_id else None
        if record is None or not _secret_matches(record, key, now):
            raise AuthenticationFailed(_incorrect(key))
        return self.principal(record, now)

    def principal(self, record: KeyRecord, now: datetime) -> Principal:
        if record.expires_at is not None and record.expires_at <= now:
            raise AuthenticationFailed(
                f"The API key {keyformat.visible_prefix(record.id)}… expired at "
                f"{record.expires_at.isoformat()}.",
                code="expired_api_key",
            )
        return Principal(
            key_id=record.id,
            name=record.name,
            role=record.role,
            allowed_routes=record.allowed_routes,
            limits=record.limits,
        )


def _secret_matches(record: KeyRecord, key: str, now: datetime) -> bool:
    current = keyformat.same_digest(key, record.secret_sha256)
    previous = False
    if record.previous_sha256 is not None and record.previous_valid_until is not None:
        # Compared even when the grace period is over, so timing says nothing about it.
        previous = keyformat.same_digest(key, record.previous_sha256)
        previous = previous and now < record.previous_valid_until
    return current or previous


def _incorrect(key: str) -> str:
    shown = key[:16] + "…" if len(key) > 16 else "(malformed)"
    return (
        f"Incorrect API key provided: {shown}. Keys look like my_<id>_<secret>; "
        "an admin creates them with `modelyard keys create`."
    )
