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
