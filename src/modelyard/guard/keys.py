"""API keys in the store: create, list, update, revoke, rotate; the admin key of a new home."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from modelyard.guard import keyformat
from modelyard.guard.errors import InvalidKeyChange, KeyNotFound
from modelyard.guard.protocol import (
    KeyCreate,
    KeyCreated,
    KeyLimits,
    KeyOut,
    KeyStatus,
    KeyUpdate,
)
from modelyard.guard.roles import Role
from modelyard.store import Store
from modelyard.store.audit import append_audit
from modelyard.store.tables import ApiKeyRow, utcnow

ADMIN_KEY_FILE = "admin.key"


@dataclass(frozen=True)
class KeyRecord:
    """What the in-memory key ring holds of one key: never the secret, only its hashes."""

    id: str
    name: str
    role: Role
    secret_sha256: str
    previous_sha256: str | None
    previous_valid_until: datetime | None
    allowed_routes: tuple[str, ...]
    expires_at: datetime | None
    limits: KeyLimits
    revoked: bool


KeyMarker = tuple[int, datetime | None]


class KeyService:
    def __init__(self, store: Store) -> None:
        self._store = store

    def create(self, spec: KeyCreate, actor: str) -> KeyCreated:
        now = utcnow()
        key_id = keyformat.new_key_id()
        key = keyformat.new_key(key_id)
        with self._store.session() as session:
            row = ApiKeyRow(
                id=key_id,
                name=spec.name,
                role=spec.role.value,
                secret_sha256=keyformat.digest(key),
                allowed_routes=list(spec.allowed_routes),
                expires_at=spec.expires_at,
                limits=spec.limits.model_dump(exclude_none=True),
                created_at=now,
                created_by=actor,
                updated_at=now,
            )
            session.add(row)
            session.flush()
            out = _out(row, now)
            append_audit(
                session, actor=actor, action="key.create", target=key_id, after=_audited(out)
            )
        return KeyCreated(**out.model_dump(), secret=key)

    def list_keys(self, include_revoked: bool = True) -> list[KeyOut]:
        now = utcnow()
        with self._store.session() as session:
            query = select(ApiKeyRow).order_by(ApiKeyRow.created_at, ApiKeyRow.id)
            if not include_revoked:
                query = query.where(ApiKeyRow.revoked_at.is_(None))
            return [_out(row, now) for row in session.scalars(query)]

    def get(self, key_id: str) -> KeyOut:
        with self._store.session() as session:
            return _out(_row(session, key_id), utcnow())

    def update(self, key_id: str, change: KeyUpdate, actor: str) -> KeyOut:
        now = utcnow()
        with self._store.session() as session:
            row = _row(session, key_id)
            before = _out(row, now)
            fields = change.model_dump(exclude_unset=True)
            if "name" in fields and change.name is not None:
                row.name = change.name
            if "allowed_routes" in fields and change.allowed_routes is not None:
                row.allowed_routes = list(change.allowed_routes)
            if "expires_at" in fields:
                row.expires_at = change.expires_at
            if "limits" in fields and change.limits is not None:
                row.limits = change.limits.model_dump(exclude_none=True)
            row.updated_at = now
            after = _out(row, now)
            append_audit(
                session,
                actor=actor,
                action="key.update",
                target=key_id,
                before=_audited(before),
                after=_audited(after),
            )
            return after

    def revoke(self, key_id: str, actor: str) -> KeyOut:
        now = utcnow()
        with self._store.session() as session:
            row = _row(session, key_id)
            if row.revoked_at is not None:
                raise InvalidKeyChange(f"API key '{key_id}' is already revoked")
            if row.role == Role.admin.value and _active_admins(session, now) <= 1:
                raise InvalidKeyChange(
                    f"API key '{key_id}' is the last active admin key; create another admin "
                    "key first (`modelyard keys create NAME --role admin`)"
                )
            before = _out(row, now)
            row.revoked_at = now
            row.previous_sha256 = None
            row.previous_valid_until = None
            row.updated_at = now
            after = _out(row, now)
            append_audit(
                session,
                actor=actor,
                action="key.revoke",
                target=key_id,
                before=_audited(before),
                after=_audited(after),
            )
            return after

    def rotate(self, key_id: str, grace_seconds: int, actor: str) -> KeyCreated:
        """A new secret for the same key; the old one keeps working for ``grace_seconds``."""
        now = utcnow()
        with self._store.session() as session:
            row = _row(session, key_id)
            if row.revoked_at is not None:
                raise InvalidKeyChange(f"API key '{key_id}' is revoked; create a new key")
            before = _out(row, now)
            key = keyformat.new_key(key_id)
            if grace_seconds > 0:
                row.previous_sha256 = row.secret_sha256
                row.previous_valid_until = now + timedelta(seconds=grace_seconds)
            else:
                row.previous_sha256 = None
                row.previous_valid_until = None
            row.secret_sha256 = keyformat.digest(key)
            row.updated_at = now
            after = _out(row, now)
            append_audit(
                session,
                actor=actor,
                action="key.rotate",
                target=key_id,
                before=_audited(before),
                after={**_audited(after), "grace_seconds": grace_seconds},
            )
        return KeyCreated(**after.model_dump(), secret=key)

    # -- what the key ring reads -------------------------------------------------------

    def marker(self) -> KeyMarker:
        with self._store.session() as session:
            return _marker(session)

    def records(self) -> tuple[KeyMarker, list[KeyRecord]]:
        """Every key that can still authenticate (not revoked), read in one transaction."""
        with self._store.session() as session:
            marker = _marker(session)
            rows = session.scalars(select(ApiKeyRow).where(ApiKeyRow.revoked_at.is_(None)))
            return marker, [_record(row) for row in rows]

    def has_admin(self) -> bool:
        with self._store.session() as session:
            return _active_admins(session, utcnow()) > 0


def ensure_admin_key(home: Path, keys: KeyService, actor: str) -> Path | None:
    """On a store without an active admin key, create one and write it to
    ``home/admin.key`` (mode 0600). Returns the file's path when a key was written."""
    if keys.has_admin():
        return None
    created = keys.create(KeyCreate(name="admin", role=Role.admin), actor=actor)
    path = home / ADMIN_KEY_FILE
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(created.secret + "\n")
    return path


def read_admin_key(home: Path) -> str | None:
    path = home / ADMIN_KEY_FILE
    if not path.exists():
        return None
    return path.read_text(encoding="utf-8").strip() or None


def _row(session: Session, key_id: str) -> ApiKeyRow:
    row = session.get(ApiKeyRow, key_id)
    if row is None:
        raise KeyNotFound(key_id)
    return row


def _active_admins(session: Session, now: datetime) -> int:
    count = session.scalar(
        select(func.count())
        .select_from(ApiKeyRow)
        .where(
            ApiKeyRow.role == Role.admin.value,
            ApiKeyRow.revoked_at.is_(None),
            (ApiKeyRow.expires_at.is_(None)) | (ApiKeyRow.expires_at > now),
        )
    )
    return int(count or 0)


def _marker(session: Session) -> KeyMarker:
    count, latest = session.execute(
        select(func.count(), func.max(ApiKeyRow.updated_at)).select_from(ApiKeyRow)
    ).one()
    return int(count), latest


def _status(row: ApiKeyRow, now: datetime) -> KeyStatus:
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at is not None and row.expires_at <= now:
        return "expired"
    return "active"


def _out(row: ApiKeyRow, now: datetime) -> KeyOut:
    grace = row.previous_valid_until
    return KeyOut(
        id=row.id,
        name=row.name,
        role=Role(row.role),
        prefix=keyformat.visible_prefix(row.id),
        allowed_routes=list(row.allowed_routes),
        expires_at=row.expires_at,
        limits=KeyLimits(**row.limits),
        created_at=row.created_at,
        created_by=row.created_by,
        revoked_at=row.revoked_at,
        previous_valid_until=grace if grace is not None and grace > now else None,
        status=_status(row, now),
    )


def _audited(out: KeyOut) -> dict[str, Any]:
    return out.model_dump(mode="json", exclude={"created_at", "created_by", "prefix"})


def _record(row: ApiKeyRow) -> KeyRecord:
    return KeyRecord(
        id=row.id,
        name=row.name,
        role=Role(row.role),
        secret_sha256=row.secret_sha256,
        previous_sha256=row.previous_sha256,
        previous_valid_until=row.previous_valid_until,
        allowed_routes=tuple(row.allowed_routes),
        expires_at=row.expires_at,
        limits=KeyLimits(**row.limits),
        revoked=row.revoked_at is not None,
    )
