from __future__ import annotations

import httpx
import pytest

from modelyard.registry import Registry
from tests.conftest import AppClient, bearer, new_key, register_scripted

pytestmark = pytest.mark.anyio
FORM = {"content-type": "application/x-www-form-urlencoded"}
USER = [{"role": "user", "content": "hi"}]


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


async def test_console_login_sets_a_secure_httponly_cookie(api: AppClient) -> None:
    anonymous = {"authorization": ""}
    page = await api.get("/ui/keys", headers=anonymous)
    assert page.status_code == 303 and page.headers["location"] == "/ui/login?next=%2Fui%2Fkeys"
    form = await api.get("/ui/login?next=/ui/keys", headers=anonymous)
    assert form.status_code == 200 and 'name="key"' in form.text
    wrong = await api.post(
        "/ui/login", content="key=my_nope&next=/ui/keys", headers={**anonymous, **FORM}
    )
    assert wrong.status_code == 401 and "Incorrect API key" in wrong.text
    admin = api.headers["authorization"].removeprefix("Bearer ")
    # An outside ``next`` is ignored: login never redirects off this site.
    logged_in = await api.post(
        "/ui/login",
        content=f"key={admin}&next=//evil.example/x",
        headers={**anonymous, **FORM},
    )
    assert logged_in.status_code == 303 and logged_in.headers["location"] == "/"
    cookie = logged_in.headers["set-cookie"]
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=lax" in cookie
    assert admin not in cookie  # the cookie names the key, it does not hold it
    session = cookie.split(";")[0].split("=", 1)[1]
    for path in ("/ui/keys", "/ui/usage", "/ui/audit", "/"):
        page = await api.get(path, headers={**anonymous, "cookie": f"modelyard_session={session}"})
        assert page.status_code == 200, path
    forged = session[:-2] + ("00" if not session.endswith("00") else "11")
    page = await api.get("/ui/keys", headers={**anonymous, "cookie": f"modelyard_session={forged}"})
    assert page.status_code == 303


async def test_keys_usage_and_audit_pages_render_their_json(api: AppClient) -> None:
    key = await new_key(api, "viewer", allowed_routes=["alpha"])
    key_id = key.split("_")[1]
    await api.post("/v1/chat/completions", json={"model": "alpha", "messages": USER})
    await api.logged()
    keys_page = (await api.get("/ui/keys")).text
    for item in (await api.get("/api/keys")).json()["data"]:
        assert item["prefix"] in keys_page and item["name"] in keys_page
    usage_page = (await api.get("/ui/usage")).text
    for row in (await api.get("/api/usage")).json()["data"]:
        assert row["key_id"] in usage_page and row["route"] in usage_page
    assert 'href="/api/usage.csv"' in usage_page
    audit_page = (await api.get("/ui/audit")).text
    for event in (await api.get("/api/audit")).json()["data"]:
        assert event["action"] in audit_page
    assert key_id in audit_page
    await api.post(f"/api/keys/{key_id}/revoke")
    audit_page = (await api.get("/ui/audit?action=key.revoke")).text
    assert 'status: "active" → "revoked"' in audit_page  # only what changed is shown
    # A viewer sees the pages but gets no create form; a developer cannot see the keys.
    viewer = await new_key(api, "viewer")
    viewer_page = (await api.get("/ui/keys", headers=bearer(viewer))).text
    assert "create-key" not in viewer_page and key_id in viewer_page
    developer = await new_key(api, "developer")
    assert (await api.get("/ui/keys", headers=bearer(developer))).status_code == 403


async def test_observe_pages_render_their_json(api: AppClient) -> None:
    made = await api.post("/v1/chat/completions", json={"model": "alpha", "messages": USER})
    request_id = made.headers["x-modelyard-request-id"]
    await api.post(
        "/v1/feedback", json={"request_id": request_id, "name": "thumbs", "value": False}
    )
    await api.post(
        "/api/alerts/rules",
        json={"name": "slow", "metric": "p95_latency_ms", "comparison": ">", "threshold": 500},
    )
    await api.logged()
    monitor = await api.get("/ui/monitor?hours=1")
    assert monitor.status_code == 200 and "/ui/vendor/plotly.min.js" in monitor.text
    stats = (await api.get("/api/stats?hours=1")).json()
    assert stats["points"] and stats["points"][0]["version"] in monitor.text
    plotly = await api.get("/ui/vendor/plotly.min.js")
    assert plotly.status_code == 200 and len(plotly.content) > 1_000_000
    listing = (await api.get("/ui/requests")).text
    assert f'href="/ui/requests/{request_id}"' in listing
    detail = (await api.get(f"/ui/requests/{request_id}")).text
    for part in ("echo: hi", "thumbs", "alpha@1"):
        assert part in detail, part
    alerts = (await api.get("/ui/alerts")).text
    assert "p95_latency_ms &gt; 500" in alerts or "p95_latency_ms > 500" in alerts
