from __future__ import annotations

import httpx
import pytest

from modelyard.registry import Registry
from tests.conftest import register_scripted

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def models(home_registry: Registry) -> None:
    register_scripted(home_registry, "alpha")
    register_scripted(home_registry, "alpha")
    home_registry.rollback("alpha", "production", actor="ops@example", reason="latency up")


async def test_root_is_the_playground_with_the_served_models(api: httpx.AsyncClient) -> None:
    page = await api.get("/")
    assert page.status_code == 200
    assert '<option value="alpha">' in page.text
    assert "/static/playground.js" in page.text
    script = await api.get("/static/playground.js")
    assert script.status_code == 200 and "/v1/chat/completions" in script.text


async def test_models_pages_render_what_the_api_returns(api: httpx.AsyncClient) -> None:
    listing = (await api.get("/api/models")).json()["data"]
    page = (await api.get("/ui/models")).text
    for model in listing:
        assert f'href="/ui/models/{model["name"]}"' in page
        for alias in model["aliases"]:
            assert f"{alias['name']} → v{alias['version']}" in page

    detail = (await api.get("/api/models/alpha")).json()
    page = (await api.get("/ui/models/alpha")).text
    assert 'href="/api/models/alpha"' in page  # the JSON twin
    for move in detail["history"]:
        assert move["actor"] in page and move["reason"] in page
    assert "latency up" in page
    assert page.count("<tr>") >= len(detail["versions"]) + len(detail["history"])


async def test_unknown_model_page_is_404(api: httpx.AsyncClient) -> None:
    assert (await api.get("/ui/models/ghost")).status_code == 404
