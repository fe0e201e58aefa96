"""The request log sliced by the prompt's language: API, CLI and console."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from modelyard.cli import main
from modelyard.registry import Registry
from tests.conftest import AppClient, register_scripted

pytestmark = pytest.mark.anyio

PROMPTS = {
    "en": "Could you tell me when my new card will arrive in the post?",
    "fr": "Pourriez-vous me dire quand ma nouvelle carte arrivera par la poste ?",
    "zh": "请问我的新银行卡什么时候能寄到？",
}


async def test_requests_are_listed_by_language(api: AppClient, home_registry: Registry) -> None:
    register_scripted(home_registry, "bot", replies=["ok"])
    await api.reload_routes()
    for prompt in PROMPTS.values():
        body = {"model": "bot", "messages": [{"role": "user", "content": prompt}]}
        assert (await api.post("/v1/chat/completions", json=body)).status_code == 200
    await api.logged()

    every = (await api.get("/api/requests?route=bot")).json()["data"]
    assert sorted(row["language"] for row in every) == ["en", "fr", "zh"]
    for language in PROMPTS:
        rows = (await api.get(f"/api/requests?language={language}")).json()["data"]
        assert [row["language"] for row in rows] == [language]
    assert (await api.get("/api/requests?language=latin")).json()["data"] == []
    exported = (await api.get("/api/requests.jsonl?language=fr")).text.splitlines()
    assert [json.loads(line)["language"] for line in exported] == ["fr"]

    too_long = await api.get("/api/requests?language=" + "x" * 17)
    assert too_long.status_code in (400, 422) and "error" in too_long.json()

    listed = CliRunner().invoke(main, ["requests", "list", "--language", "zh", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [row["language"] for row in json.loads(listed.output)] == ["zh"]

    page = await api.get("/ui/requests?language=fr")
    assert page.status_code == 200
    [fr_id] = [row["id"] for row in every if row["language"] == "fr"]
    [zh_id] = [row["id"] for row in every if row["language"] == "zh"]
    assert fr_id in page.text and zh_id not in page.text
    assert "/api/requests?language=fr" in page.headers["link"]
