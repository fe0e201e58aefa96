"""API keys in the store: format, hashing, revoke, rotate with grace, the admin key file."""

from __future__ import annotations

import hashlib
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from modelyard.guard.errors import InvalidKeyChange, KeyNotFound
from modelyard.guard.keyring import AuthenticationFailed, KeyRing
from modelyard.guard.keys import KeyService, ensure_admin_key, read_admin_key
from modelyard.guard.protocol import KeyCreate, KeyLimits
from modelyard.guard.roles import Role
from modelyard.store import Store
from modelyard.store.tables import ApiKeyRow, AuditEventRow


def ring_of(keys: KeyService) -> KeyRing:
    ring = KeyRing()
    ring.replace(*keys.records())
    return ring


def test_keys_are_random_prefixed_and_stored_only_as_a_hash(store: Store) -> None:
    keys = KeyService(store)
    created = keys.create(KeyCreate(name="app", limits=KeyLimits(daily_tokens=10)), "tests")
    other = keys.create(KeyCreate(name="app"), "tests")
    prefix, key_id, secret = created.secret.split("_")
    assert prefix == "my" and key_id == created.id and len(secret) == 32
    assert created.secret.startswith(created.prefix)
    assert created.secret != other.secret and created.id != other.id
    with store.session() as session:
        rows = session.scalars(select(ApiKeyRow)).all()
        stored = " ".join(f"{r.secret_sha256} {r.name} {r.limits}" for r in rows)
        row = session.get_one(ApiKeyRow, created.id)
        assert row.secret_sha256 == hashlib.sha256(created.secret.encode()).hexdigest()
    assert secret not in stored
    assert "secret" not in keys.get(created.id).model_dump()  # shown once, at creation


def test_authentication_by_the_ring(store: Store) -> None:
    keys = KeyService(store)
    created = keys.create(KeyCreate(name="app", role=Role.viewer), "tests")
    ring = ring_of(keys)
    now = datetime.now(UTC)
    principal = ring.authenticate(created.secret, now)
    assert (principal.key_id, principal.role) == (created.id, Role.viewer)
    # The last character changed (to "0", or to "1" when it already is "0": the secret
    # ends in "0" about one time in 62, and was then "wrong" only by name).
    last = "1" if created.secret.endswith("0") else "0"
    for wrong in ("", "my_", created.secret + "x", created.secret[:-1] + last, "sk-123"):
        with pytest.raises(AuthenticationFailed):
            ring.authenticate(wrong, now)


def test_revoke_stops_a_key_and_is_audited(store: Store) -> None:
    keys = KeyService(store)
    created = keys.create(KeyCreate(name="app"), "alice")
    revoked = keys.revoke(created.id, "bob")
    assert revoked.status == "revoked"
    with pytest.raises(AuthenticationFailed):
        ring_of(keys).authenticate(created.secret, datetime.now(UTC))
    with pytest.raises(InvalidKeyChange):
        keys.revoke(created.id, "bob")
    with pytest.raises(KeyNotFound):
        keys.revoke("nosuchkey", "bob")
    with store.session() as session:
        events = session.scalars(select(AuditEventRow).order_by(AuditEventRow.id)).all()
        trail = [(e.action, e.actor, e.target) for e in events]
        last = events[-1]
        assert (last.before or {})["status"] == "active"
        assert (last.after or {})["status"] == "revoked"
    assert trail == [("key.create", "alice", created.id), ("key.revoke", "bob", created.id)]


def test_rotation_keeps_the_old_secret_for_the_grace_period(store: Store) -> None:
    keys = KeyService(store)
    created = keys.create(KeyCreate(name="app"), "tests")
    rotated = keys.rotate(created.id, grace_seconds=60, actor="tests")
    assert rotated.id == created.id and rotated.secret != created.secret
    ring = ring_of(keys)
    now = datetime.now(UTC)
    assert ring.authenticate(created.secret, now).key_id == created.id
    assert ring.authenticate(rotated.secret, now).key_id == created.id
    later = now + timedelta(seconds=61)
    with pytest.raises(AuthenticationFailed):
        ring.authenticate(created.secret, later)
    assert ring.authenticate(rotated.secret, later).key_id == created.id

    again = keys.rotate(created.id, grace_seconds=0, actor="tests")
    ring = ring_of(keys)
    for old in (created.secret, rotated.secret):
        with pytest.raises(AuthenticationFailed):
            ring.authenticate(old, now)
    assert ring.authenticate(again.secret, now).key_id == created.id


def test_expired_keys_fail_with_their_own_code(store: Store) -> None:
    keys = KeyService(store)
    soon = datetime.now(UTC) + timedelta(minutes=5)
    created = keys.create(KeyCreate(name="app", expires_at=soon), "tests")
    ring = ring_of(keys)
    assert ring.authenticate(created.secret, datetime.now(UTC))
    with pytest.raises(AuthenticationFailed) as failure:
        ring.authenticate(created.secret, soon + timedelta(seconds=1))
    assert failure.value.code == "expired_api_key"
    assert keys.get(created.id).status == "active"


def test_the_first_start_writes_an_admin_key_file_0600(store: Store, tmp_path: Path) -> None:
    keys = KeyService(store)
    path = ensure_admin_key(tmp_path, keys, actor="modelyard")
    assert path is not None and stat.S_IMODE(path.stat().st_mode) == 0o600
    key = read_admin_key(tmp_path)
    assert key is not None
    assert ring_of(keys).authenticate(key, datetime.now(UTC)).role == Role.admin
    assert ensure_admin_key(tmp_path, keys, actor="modelyard") is None  # only once
    assert read_admin_key(tmp_path) == key


def test_the_last_active_admin_key_cannot_be_revoked(store: Store, tmp_path: Path) -> None:
    keys = KeyService(store)
    ensure_admin_key(tmp_path, keys, actor="modelyard")
    (admin,) = keys.list_keys()
    with pytest.raises(InvalidKeyChange, match="last active admin"):
        keys.revoke(admin.id, "tests")
    second = keys.create(KeyCreate(name="ops", role=Role.admin), "tests")
    assert keys.revoke(admin.id, "tests").status == "revoked"
    with pytest.raises(InvalidKeyChange, match="last active admin"):
        keys.revoke(second.id, "tests")
    # A new home (or a lost key file) gets a fresh admin key only when none is active.
    assert ensure_admin_key(tmp_path, keys, actor="modelyard") is None
