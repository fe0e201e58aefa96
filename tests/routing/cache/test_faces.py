"""The cache's three faces: the policy's ``cache`` in the JSON API (and its refusals), the
CLI's ``modelyard route cache``, and the console's Routes page with this replica's counts."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from modelyard.cli import main
from modelyard.registry import Registry
from modelyard.routing.protocol import DEFAULT_SIMILARITY
from tests.conftest import AppClient, register_scripted


def run(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


def test_the_cli_turns_a_routes_cache_on_changes_it_and_off(home_registry: Registry) -> None:
    register_scripted(home_registry, "chat")
    assert "exact cache in memory, ttl 3600 s" in run("route", "cache", "chat")
    changed = json.loads(
        run("route", "cache", "chat", "--mode", "semantic", "--ttl", "60", "--json")
    )
    cache = changed["policy"]["cache"]
    assert (cache["mode"], cache["ttl_s"], cache["threshold"]) == (
        "semantic",
        60,
        DEFAULT_SIMILARITY,
    )
    run("route", "cache", "chat", "--shared")
    shown = json.loads(run("route", "show", "chat", "--json"))["policy"]["cache"]
    assert (shown["mode"], shown["ttl_s"], shown["shared"]) == ("semantic", 60, True)  # kept
    refused = run("route", "cache", "chat", "--backend", "redis", code=1)
    assert "keeps its index in memory" in refused
    assert "cache off" in run("route", "cache", "chat", "--off")
    assert json.loads(run("route", "show", "chat", "--json"))["policy"]["cache"] is None
    history = json.loads(run("route", "history", "chat", "--json"))
    assert len(history) == 4


@pytest.mark.anyio
async def test_the_api_refuses_a_bad_cache_and_the_console_shows_the_counts(
    api: AppClient, home_registry: Registry
) -> None:
    register_scripted(home_registry, "chat", replies=["one", "two"])
    await api.reload_routes()
    bad = await api.put("/api/routes/chat", json={"policy": {"cache": {"ttl_s": 0}}})
    assert bad.status_code == 400
    bad = await api.put("/api/routes/chat", json={"policy": {"cache": {"colour": "red"}}})
    assert bad.status_code == 400
    put = await api.put("/api/routes/chat", json={"policy": {"cache": {"ttl_s": 30}}})
    assert put.status_code == 200
    for _ in range(3):
        body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}], "seed": 1}
        assert (await api.post("/v1/chat/completions", json=body)).status_code == 200
    route = (await api.get("/api/routes/chat")).json()
    assert route["policy"]["cache"]["ttl_s"] == 30
    assert route["cache"]["hits"] == 2 and route["cache"]["misses"] == 1
    page = await api.get("/ui/routes")
    assert page.status_code == 200
    assert '<span class="cache-hits">2</span> hits, 1 misses (66.7 % hit rate)' in page.text
    assert "deterministic requests only" in page.text
