"""The Routes page shows a combination route (issue 18) as its JSON twin holds it: what
decides, its members, and how its requests are logged."""

from __future__ import annotations

import html

import pytest

from tests.conftest import AppClient, register_scripted

pytestmark = pytest.mark.anyio


async def test_the_routes_page_shows_a_combination(api: AppClient) -> None:
    for model in ("triage", "small", "large"):
        register_scripted(api.services.registry, model)
    await api.reload_routes()
    combine = {
        "kind": "cascade",
        "small": "small",
        "large": "large@1",
        "confidence": {"pattern": "[a-z]+"},
    }
    put = await api.put("/api/routes/triage", json={"policy": {"combine": combine}})
    assert put.status_code == 200, put.text

    route = (await api.get("/api/routes/triage")).json()
    assert route["variants"] == [
        {"name": "cascade.small", "model": "small"},
        {"name": "cascade.large", "model": "large@1"},
    ]
    page = html.unescape((await api.get("/ui/routes")).text)
    section = page.split('data-model="triage"', 1)[1].split("</section>", 1)[0]
    assert "a cascade:" in section and "does not match" in section and "[a-z]+" in section
    for variant in route["variants"]:
        assert variant["name"] in section and variant["model"] in section
    assert "cascade:<decision>" in section
