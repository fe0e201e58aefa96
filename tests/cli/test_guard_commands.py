"""``modelyard keys|policy|usage|audit|content``: the guard's CLI faces."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from modelyard.cli import main
from modelyard.config import Settings
from modelyard.guard import crypto
from modelyard.observe.requestlog import RequestLogWriter, RequestRecord
from modelyard.store import open_store


@pytest.fixture
def cli() -> CliRunner:
    return CliRunner()


def run(cli: CliRunner, *args: str) -> str:
    result = cli.invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_keys_create_list_rotate_revoke(cli: CliRunner) -> None:
    created = json.loads(
        run(cli, "keys", "create", "mobile", "--route", "chat-*", "--rpm", "60", "--json")
    )
    secret, key_id = created["secret"], created["id"]
    assert secret.startswith(f"my_{key_id}_")
    limits = {name: value for name, value in created["limits"].items() if value is not None}
    assert limits == {"requests_per_minute": 60}
    plain = run(cli, "keys", "create", "ops", "--role", "admin")
    assert "shown once" in plain and "my_" in plain
    listed = json.loads(run(cli, "keys", "list", "--json"))
    assert [k["name"] for k in listed] == ["mobile", "ops"]
    assert secret not in json.dumps(listed)
    table = run(cli, "keys", "list")
    assert "mobile" in table and "chat-*" in table
    updated = json.loads(run(cli, "keys", "update", key_id, "--daily-tokens", "500", "--json"))
    assert updated["limits"]["requests_per_minute"] == 60  # kept
    assert updated["limits"]["daily_tokens"] == 500
    rotated = json.loads(run(cli, "keys", "rotate", key_id, "--grace", "60", "--json"))
    assert rotated["secret"] != secret and rotated["previous_valid_until"]
    assert "revoked" in run(cli, "keys", "revoke", key_id)
    assert json.loads(run(cli, "keys", "list", "--active", "--json"))[0]["name"] == "ops"
    again = cli.invoke(main, ["keys", "revoke", key_id])
    assert again.exit_code == 1 and "already revoked" in again.output
    missing = cli.invoke(main, ["keys", "show", "nosuchkey"])
    assert missing.exit_code == 1 and "no API key with id 'nosuchkey'" in missing.output
    audit = json.loads(run(cli, "audit", "--action", "key", "--json"))
    assert [e["action"] for e in audit] == [
        "key.revoke",
        "key.rotate",
        "key.update",
        "key.create",
        "key.create",
    ]
    assert all("@" in e["actor"] for e in audit)  # user@host of this machine


def test_policy_commands_validate_and_audit(cli: CliRunner) -> None:
    out = json.loads(
        run(cli, "policy", "set", "chat", "--pii", "redact", "--entity", "cn_id", "--json")
    )
    assert out[0]["pii"] == "redact" and out[0]["pii_entities"] == ["CN_ID"]
    bad = cli.invoke(main, ["policy", "set", "chat", "--entity", "NAME"])
    assert bad.exit_code == 1 and "invalid pii_entities: unknown PII type(s) NAME" in bad.output
    assert "chat" in run(cli, "policy", "list")
    run(cli, "policy", "delete", "chat")
    gone = cli.invoke(main, ["policy", "delete", "chat"])
    assert gone.exit_code == 1 and "no policy for route 'chat'" in gone.output
    actions = [e["action"] for e in json.loads(run(cli, "audit", "--json"))]
    assert actions == ["policy.delete", "policy.set"]


async def write_rows(records: list[RequestRecord]) -> None:
    settings = Settings()
    settings.ensure_home()
    store = open_store(settings.store_url)
    writer = RequestLogWriter(
        store,
        seal=crypto.load_or_create(settings.home).seal,
        store_content=True,
        flush_interval_s=0.01,
        batch_rows=10,
        queue_rows=100,
    )
    for record in records:
        writer.submit(record)
    await writer.close()
    store.close()


@pytest.mark.anyio
async def test_usage_table_json_and_csv(cli: CliRunner) -> None:
    day = datetime(2026, 11, 20, 12, tzinfo=UTC)
    await write_rows(
        [
            RequestRecord(
                id=f"r{i}",
                at=day,
                key_id="k1" if i < 3 else "k2",
                endpoint="chat.completions",
                route="chat",
                version="chat@1",
                status=200 if i != 1 else 500,
                error_code=None,
                latency_ms=5.0,
                prompt_tokens=10,
                completion_tokens=5,
                cost=0.25,
                content={"prompt": "x"},
            )
            for i in range(4)
        ]
    )
    rows = json.loads(run(cli, "usage", "--json"))
    assert [(r["key_id"], r["requests"], r["errors"], r["total_tokens"]) for r in rows] == [
        ("k1", 3, 1, 45),
        ("k2", 1, 0, 15),
    ]
    table = list(csv.DictReader(io.StringIO(run(cli, "usage", "--csv", "--key", "k1"))))
    assert table == [
        {
            "key_id": "k1",
            "route": "chat",
            "day": "2026-11-20",
            "requests": "3",
            "errors": "1",
            "prompt_tokens": "30",
            "completion_tokens": "15",
            "total_tokens": "45",
            "cost": "0.75",
        }
    ]
    assert json.loads(run(cli, "usage", "--since", "2026-11-21", "--json")) == []


@pytest.mark.anyio
async def test_content_key_rotation_and_purge(cli: CliRunner, modelyard_home: Path) -> None:
    old = datetime(2020, 1, 1, tzinfo=UTC)
    record = RequestRecord(
        id="old",
        at=old,
        key_id="k",
        endpoint="completions",
        route="r",
        version=None,
        status=200,
        error_code=None,
        latency_ms=1.0,
        content={"prompt": "p"},
    )
    await write_rows([record])
    first = run(cli, "content", "keys").split()[1]
    out = run(cli, "content", "rotate-key")
    assert f"{first} →" in out
    listing = run(cli, "content", "keys")
    assert first in listing and listing.split()[1] != first
    assert "erased the content of 1 requests" in run(cli, "content", "purge", "--days", "30")
    actions = [e["action"] for e in json.loads(run(cli, "audit", "--json"))]
    assert actions == ["encryption.rotate"]
    assert (modelyard_home / "content.keys").exists()


@pytest.mark.anyio
async def test_requests_list_show_export(cli: CliRunner) -> None:
    at = datetime(2026, 11, 20, 12, tzinfo=UTC)
    await write_rows(
        [
            RequestRecord(
                id=f"r{i}",
                at=at,
                key_id="k1",
                endpoint="chat.completions",
                route="chat" if i else "other",
                version="chat@1",
                status=200,
                error_code=None,
                latency_ms=5.0,
                content={"prompt": f"secret {i}"},
            )
            for i in range(3)
        ]
    )
    listed = json.loads(run(cli, "requests", "list", "--route", "chat", "--json"))
    assert sorted(r["id"] for r in listed) == ["r1", "r2"]
    assert "r0" in run(cli, "requests", "list")
    shown = json.loads(run(cli, "requests", "show", "r2"))
    assert shown["content"] == {"prompt": "secret 2"}
    jsonl = run(cli, "requests", "export").strip().split("\n")
    assert [json.loads(line)["id"] for line in jsonl] == ["r0", "r1", "r2"]
    csv_rows = run(cli, "requests", "export", "--format", "csv", "--route", "other").split("\n")
    assert csv_rows[0].startswith("id,") and csv_rows[1].startswith("r0,")
    missing = cli.invoke(main, ["requests", "show", "nope"])
    assert missing.exit_code == 1 and "no logged request with id 'nope'" in missing.output
