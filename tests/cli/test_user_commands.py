"""``modelyard user show|export|erase``: a user's data on request from this machine's store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from modelyard.cli import main
from modelyard.registry import Registry
from tests.conftest import AppClient, register_scripted

pytestmark = pytest.mark.anyio


async def traffic(api: AppClient, registry: Registry) -> str:
    """Two requests of gina (one with feedback), one of hal; gina's pseudonym."""
    register_scripted(registry, "bot", replies=["fine"])
    await api.reload_routes()
    ids = []
    for user, text in (("gina", "gina asks"), ("gina", "gina again"), ("hal", "hal asks")):
        body = {"model": "bot", "user": user, "messages": [{"role": "user", "content": text}]}
        ids.append(
            (await api.post("/v1/chat/completions", json=body)).headers["x-modelyard-request-id"]
        )
    await api.logged()
    feedback = {"request_id": ids[0], "name": "thumbs", "value": True, "comment": "gina likes"}
    assert (await api.post("/v1/feedback", json=feedback)).status_code == 201
    name: str = (await api.get("/api/users/gina/summary")).json()["pseudonym"]
    return name


async def test_show_export_and_erase(
    api: AppClient, home_registry: Registry, tmp_path: Path
) -> None:
    pseudonym = await traffic(api, home_registry)
    cli = CliRunner()
    shown = json.loads(cli.invoke(main, ["user", "show", "gina", "--json"]).output)
    assert (shown["requests"], shown["feedback"], shown["pseudonym"]) == (2, 1, pseudonym)
    table = cli.invoke(main, ["user", "show", "gina"]).output
    assert "gina" in table and f"an erasure writes {pseudonym} instead" in table

    out = tmp_path / "gina.json"
    exported = cli.invoke(main, ["user", "export", "gina", "-o", str(out)])
    assert exported.exit_code == 0, exported.output
    document = json.loads(out.read_text())
    texts = [r["content"]["messages"][0]["content"] for r in document["requests"]]
    assert texts == ["gina asks", "gina again"] and "hal" not in out.read_text()
    stdout = json.loads(cli.invoke(main, ["user", "export", "gina"]).output)
    assert [r["id"] for r in stdout["requests"]] == [r["id"] for r in document["requests"]]

    refused = cli.invoke(main, ["user", "erase", "gina"])
    assert refused.exit_code == 1
    assert "erases 2 requests (2 with content), 1 feedback" in refused.output
    assert "add --yes" in refused.output
    erased = cli.invoke(main, ["user", "erase", "gina", "--yes"])
    assert erased.exit_code == 0, erased.output
    assert f"erased 'gina' as {pseudonym}: 2 requests, 2 contents, 1 feedback comments" in (
        erased.output
    )
    audit = json.loads(cli.invoke(main, ["audit", "--action", "user.erase", "--json"]).output)
    assert [(e["target"], "@" in e["actor"]) for e in audit] == [(pseudonym, True)]

    again = cli.invoke(main, ["user", "export", "gina"])
    assert again.exit_code == 1 and "no logged request names the user 'gina'" in again.output
    assert json.loads(cli.invoke(main, ["user", "show", "hal", "--json"]).output)["requests"] == 1
