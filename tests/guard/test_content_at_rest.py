"""Encryption at rest (AES-GCM key ring, rotation), store_content=false, retention."""

from __future__ import annotations

import base64
import json
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from modelyard.config import Settings
from modelyard.guard import crypto
from modelyard.guard.retention import purge_content
from modelyard.registry import Registry
from modelyard.store.tables import RequestLogRow
from tests.conftest import AppClient, app_client, register_scripted

pytestmark = pytest.mark.anyio
ASK = {"model": "echo", "messages": [{"role": "user", "content": "the launch code is 0000"}]}


def test_seal_and_open_round_trip_and_tampering(tmp_path: Path) -> None:
    cipher = crypto.load_or_create(tmp_path)
    assert stat.S_IMODE((tmp_path / crypto.KEY_FILE).stat().st_mode) == 0o600
    sealed = cipher.seal("秘密 secret".encode())
    assert b"secret" not in sealed and cipher.open(sealed) == "秘密 secret".encode()
    assert cipher.seal(b"x") != cipher.seal(b"x")  # a fresh nonce each time
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(crypto.ContentKeyError, match="authentication"):
        cipher.open(tampered)
    with pytest.raises(crypto.ContentKeyError):
        cipher.open(b"plain text")


def test_rotation_keeps_old_content_readable(tmp_path: Path) -> None:
    before = crypto.load_or_create(tmp_path)
    old_blob = before.seal(b"old row")
    old, new = crypto.rotate(tmp_path)
    assert old == before.primary and new != old
    after = crypto.load_or_create(tmp_path)
    assert after.primary == new
    new_blob = after.seal(b"new row")
    assert after.key_of(new_blob) == new and after.key_of(old_blob) == old
    assert after.open(old_blob) == b"old row" and after.open(new_blob) == b"new row"
    only_new = crypto.ContentCipher(primary=new, keys={new: after.keys[new]})
    with pytest.raises(crypto.ContentKeyError, match="not in the key ring"):
        only_new.open(old_blob)


# Sealed by the code before seal_many (one AESGCM and one token_bytes call per blob), with
# key bytes 0..31 under the id "k1-abc123": rows already in stores look like this.
OLD_KEY = bytes(range(32))
OLD_BLOB = base64.b64decode(
    "TVkxCWsxLWFiYzEyMwyMqHQFu3aexgQmgAzMpgpJsx4bzxK868o5x9izH4mThrMerxzPuUAPizwwX4EdvBOKp0E3c/UD"
)


def test_seal_many_blobs_open_and_each_has_its_own_nonce(tmp_path: Path) -> None:
    cipher = crypto.load_or_create(tmp_path)
    plain = [f"row {i} 秘密".encode() for i in range(200)] + [b"", b"same", b"same"]
    sealed = cipher.seal_many(plain)
    assert [cipher.open(blob) for blob in sealed] == plain
    assert cipher.seal_many([]) == []
    header = crypto.MAGIC + bytes([len(cipher.primary)]) + cipher.primary.encode()
    assert all(blob.startswith(header) for blob in sealed)  # the layout seal() writes
    assert {cipher.key_of(blob) for blob in sealed} == {cipher.primary}
    nonces = [blob[len(header) : len(header) + crypto.NONCE_BYTES] for blob in sealed]
    assert all(len(nonce) == crypto.NONCE_BYTES for nonce in nonces)
    assert len(set(nonces)) == len(nonces)  # distinct within the batch
    assert sealed[-1] != sealed[-2]  # equal plaintexts, different blobs
    # Single and batch sealing make interchangeable blobs (another cipher over the ring).
    again = crypto.load_or_create(tmp_path)
    assert again.open(sealed[0]) == plain[0] and cipher.open(again.seal(b"one")) == b"one"
    tampered = sealed[0][:-1] + bytes([sealed[0][-1] ^ 1])
    with pytest.raises(crypto.ContentKeyError, match="authentication"):
        cipher.open(tampered)


def test_blobs_sealed_before_seal_many_still_open() -> None:
    cipher = crypto.ContentCipher(primary="k1-abc123", keys={"k1-abc123": OLD_KEY})
    assert cipher.key_of(OLD_BLOB) == "k1-abc123"
    assert cipher.open(OLD_BLOB) == '{"prompt": "秘密 old row"}'.encode()
    # A newer primary seals new rows; the old key still opens the old blob, before and
    # after the cipher has cached its AESGCM objects.
    newer = crypto.ContentCipher(
        primary="k2-def456", keys={"k2-def456": os.urandom(32), "k1-abc123": OLD_KEY}
    )
    (fresh,) = newer.seal_many([b"new row"])
    assert newer.key_of(fresh) == "k2-def456"
    assert newer.open(fresh) == b"new row" and newer.open(OLD_BLOB) == cipher.open(OLD_BLOB)
    assert newer.open(newer.seal(b"single")) == b"single"
    assert cipher == crypto.ContentCipher(primary="k1-abc123", keys={"k1-abc123": OLD_KEY})
    with pytest.raises(crypto.ContentKeyError, match="not in the key ring"):
        crypto.ContentCipher(primary="k2", keys={"k2": os.urandom(32)}).open(OLD_BLOB)


def test_keys_from_the_environment_format() -> None:
    key = base64.b64encode(os.urandom(32)).decode()
    older = base64.b64encode(os.urandom(32)).decode()
    cipher = crypto.parse_key_list(f"k2:{key},k1:{older}")
    assert cipher.primary == "k2" and set(cipher.keys) == {"k1", "k2"}
    for bad in ("nocolon", "k1:notbase64!", f"k1:{base64.b64encode(b'short').decode()}"):
        with pytest.raises(crypto.ContentKeyError):
            crypto.parse_key_list(bad)


async def stored_rows(api: AppClient) -> list[RequestLogRow]:
    await api.logged()
    with api.services.store.session() as session:
        return list(session.scalars(select(RequestLogRow)))


async def test_content_is_sealed_in_the_store_and_opened_by_the_api(
    api: AppClient, home_registry: Registry
) -> None:
    register_scripted(home_registry, "echo")
    await api.reload_routes()
    answer = await api.post("/v1/chat/completions", json=ASK)
    (row,) = await stored_rows(api)
    assert row.content is not None and b"launch code" not in row.content
    assert row.content.startswith(crypto.MAGIC)
    detail = (await api.get(f"/api/requests/{answer.headers['x-modelyard-request-id']}")).json()
    assert detail["content"]["messages"][0]["content"] == "the launch code is 0000"
    assert detail["content"]["response"] == "echo: the launch code is 0000"


async def test_env_keys_and_rotation_through_the_app(home_registry: Registry) -> None:
    register_scripted(home_registry, "echo")
    first = base64.b64encode(os.urandom(32)).decode()
    second = base64.b64encode(os.urandom(32)).decode()
    async with app_client(Settings(content_keys=f"a:{first}")) as api:
        old_id = (await api.post("/v1/chat/completions", json=ASK)).headers[
            "x-modelyard-request-id"
        ]
        await api.logged()
    async with app_client(Settings(content_keys=f"b:{second},a:{first}")) as api:
        new_id = (await api.post("/v1/chat/completions", json=ASK)).headers[
            "x-modelyard-request-id"
        ]
        await api.logged()
        for request_id in (old_id, new_id):
            detail = (await api.get(f"/api/requests/{request_id}")).json()
            assert detail["content"]["messages"][0]["content"] == ASK["messages"][0]["content"]
        rows = {row.id: row for row in await stored_rows(api)}
        cipher = api.services.guard.cipher
        assert cipher.key_of(rows[old_id].content or b"") == "a"
        assert cipher.key_of(rows[new_id].content or b"") == "b"
    async with app_client(Settings(content_keys=f"b:{second}")) as api:
        detail = (await api.get(f"/api/requests/{old_id}")).json()
        assert detail["content"] is None and "not in the key ring" in detail["content_error"]


async def test_store_content_false_keeps_metadata_only(home_registry: Registry) -> None:
    register_scripted(home_registry, "echo")
    async with app_client(Settings(store_content=False)) as api:
        await api.post("/v1/chat/completions", json=ASK)
        (row,) = await stored_rows(api)
    assert row.content is None and row.completion_tokens > 0 and row.status == 200


async def test_retention_erases_old_content_but_keeps_usage(
    api: AppClient, home_registry: Registry
) -> None:
    register_scripted(home_registry, "echo")
    await api.reload_routes()
    for _ in range(2):
        await api.post("/v1/chat/completions", json=ASK)
    rows = await stored_rows(api)
    store = api.services.store
    with store.session() as session:
        session.execute(
            update(RequestLogRow)
            .where(RequestLogRow.id == rows[0].id)
            .values(at=datetime.now(UTC) - timedelta(days=40))
        )
    assert purge_content(store, older_than_days=30) == 1
    assert purge_content(store, older_than_days=30) == 0
    with store.session() as session:
        kept = {r.id: r.content for r in session.scalars(select(RequestLogRow))}
    assert kept[rows[0].id] is None and kept[rows[1].id] is not None
    usage = (await api.get("/api/usage")).json()["data"]
    assert sum(r["requests"] for r in usage) == 2
    assert json.dumps(usage)  # still there for billing
