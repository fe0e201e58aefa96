"""The backup's API and console faces: readers see what a backup holds, an admin downloads
one (made off the event loop), and what is downloaded restores."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from modelyard.backup.restore import restore
from modelyard.backup.sealing import Passphrase
from modelyard.config import Settings
from modelyard.store.migrate import script_head
from tests.conftest import AppClient, bearer, new_key

pytestmark = pytest.mark.anyio
PASSPHRASE = "a passphrase for tests"


async def test_readers_see_what_a_backup_holds(api: AppClient) -> None:
    viewer = bearer(await new_key(api, "viewer"))
    status = await api.get("/api/backup", headers=viewer)
    assert status.status_code == 200, status.text
    value = status.json()
    assert value["backend"] == "sqlite" and value["schema_revision"] == script_head()
    assert {"admin.key", "content.keys", "session.secret"} <= set(value["home_files"])
    assert {t["name"]: t["rows"] for t in value["tables"]}["api_keys"] == 2
    assert value["content_keys"] == "file"
    page = await api.get("/ui/backup", headers=viewer)
    assert page.status_code == 200 and "modelyard restore" in page.text
    assert page.headers["link"] == '</api/backup>; rel="alternate"; type="application/json"'
    assert 'id="take-backup"' not in page.text  # the download is an admin's
    assert 'id="take-backup"' in (await api.get("/ui/backup")).text
    developer = bearer(await new_key(api, "developer"))
    assert (await api.get("/api/backup", headers=developer)).status_code == 403
    assert (await api.get("/ui/backup", headers=developer)).status_code == 403


async def test_an_admin_downloads_a_backup_that_restores(
    api: AppClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    viewer = bearer(await new_key(api, "viewer"))
    refused = await api.post("/api/backup", json={"passphrase": PASSPHRASE}, headers=viewer)
    assert refused.status_code == 403
    short = await api.post("/api/backup", json={"passphrase": "short"})
    assert short.status_code == 400 and short.json()["error"]["param"] == "passphrase"
    answer = await api.post("/api/backup", json={"passphrase": PASSPHRASE})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/octet-stream"
    assert "modelyard-" in answer.headers["content-disposition"]
    assert answer.content.startswith(b"MYBACKUP")
    audit = (await api.get("/api/audit", params={"action": "backup"})).json()["data"]
    assert [event["action"] for event in audit] == ["backup.create"]
    assert "passphrase" not in str(audit) and PASSPHRASE not in str(audit)
    monkeypatch.setenv("MODELYARD_HOME", str(tmp_path / "restored"))
    report = restore(io.BytesIO(answer.content), Passphrase(PASSPHRASE), Settings(), "tests")
    assert {t.name: t.rows for t in report.tables}["api_keys"] == 2
    assert sorted(report.home_files) == ["admin.key", "content.keys", "session.secret"]
