"""The console's Users page: an admin looks a user up, downloads the export and erases."""

from __future__ import annotations

import html

import pytest

from modelyard.registry import Registry
from tests.conftest import AppClient, bearer, new_key, register_scripted

pytestmark = pytest.mark.anyio


async def test_the_users_page_looks_up_exports_and_offers_the_erasure(
    api: AppClient, home_registry: Registry
) -> None:
    register_scripted(home_registry, "bot", replies=["hi"])
    await api.reload_routes()
    body = {"model": "bot", "user": "team/erin", "messages": [{"role": "user", "content": "q"}]}
    assert (await api.post("/v1/chat/completions", json=body)).status_code == 200

    blank = await api.get("/ui/users")
    assert blank.status_code == 200 and 'name="user"' in blank.text
    assert "link" not in blank.headers and "users.js" not in blank.text

    page = await api.get("/ui/users?user=team/erin")
    assert page.status_code == 200, page.text
    twin = "/api/users/team%2Ferin/summary"
    assert page.headers["link"] == f'<{twin}>; rel="alternate"; type="application/json"'
    summary = (await api.get(twin)).json()
    assert f"<td>{summary['requests']}</td>" in page.text
    assert html.escape(summary["pseudonym"]) in page.text
    assert 'href="/api/users/team%2Ferin/export" download=' in page.text
    assert 'data-erase="/api/users/team%2Ferin/erase"' in page.text
    assert "/static/users.js" in page.text

    missing = await api.get("/ui/users?user=nobody")
    assert missing.status_code == 200 and "no logged request names the user" in missing.text
    assert "erase-user" not in missing.text

    viewer = bearer(await new_key(api, "viewer"))
    assert (await api.get("/ui/users?user=team/erin", headers=viewer)).status_code == 403
    script = await api.get("/static/users.js")
    assert script.status_code == 200 and "/erase" not in script.text  # the page names it
