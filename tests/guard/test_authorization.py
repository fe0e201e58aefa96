"""Who may call what: every route declares its access; each role against each route."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from modelyard.app import build_app
from modelyard.config import Settings
from modelyard.guard.auth import REQUIRED_ACCESS
from modelyard.guard.roles import GRANTS, Access, Role
from modelyard.registry import Registry
from tests.conftest import AppClient, bearer, new_key, register_scripted

pytestmark = pytest.mark.anyio

# Routes anyone may call: probes, the login form, and logging out.
# /ui/language: the login page has the switch too (a logged-in choice is also stored).
PUBLIC = {"/healthz", "/readyz", "/ui/login", "/ui/logout", "/ui/language"}
PATH_VALUES = {
    "name": "nomodel",
    "number": "1",
    "alias": "production",
    "key_id": "nokey",
    "route": "noroute",
    "request_id": "noreq",
    "report_id": "1",
    "run_id": "1",
    "version": "1",
    "model": "nomodel",
    "rollout_id": "1",
    "review_id": "1",
    "item_index": "0",
    "distillation_id": "1",
    "compression_id": "1",
    "study_id": "1",
    "export_id": "1",
    "user": "nouser",
}


def declared(route: APIRoute) -> frozenset[Access] | None:
    for dependency in route.dependant.dependencies:
        access = getattr(dependency.call, REQUIRED_ACCESS, None)
        if access is not None:
            return frozenset(access)
    return None


def api_routes(candidates: list[Any]) -> list[APIRoute]:
    """Every APIRoute, looking into included routers (FastAPI keeps them nested; our
    routers carry their prefix themselves)."""
    found: list[APIRoute] = []
    for route in candidates:
        nested = getattr(route, "original_router", None)
        if nested is not None:
            found.extend(api_routes(nested.routes))
        elif isinstance(route, APIRoute):
            found.append(route)
    return found


def routes(app: FastAPI) -> list[tuple[str, str, APIRoute]]:
    found = []
    for route in api_routes(list(app.routes)):
        if route.path not in PUBLIC:
            for method in sorted(route.methods - {"HEAD"}):
                found.append((method, route.path, route))
    return found


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: PATH_VALUES[m.group(1)], path)  # {id:int}


def test_every_route_but_the_public_ones_declares_its_access() -> None:
    app = build_app(Settings())
    undeclared = [f"{m} {p}" for m, p, route in routes(app) if declared(route) is None]
    assert undeclared == []
    assert len(routes(app)) > 25  # the matrix below covers the whole API


async def test_the_role_matrix(api: AppClient, home_registry: Registry) -> None:
    register_scripted(home_registry, "bot", replies=["hi"])
    keys = {
        Role.admin: api.headers["authorization"].removeprefix("Bearer "),
        Role.developer: await new_key(api, "developer"),
        Role.viewer: await new_key(api, "viewer"),
    }
    app = build_app(Settings())
    checked = 0
    for method, path, route in routes(app):
        needed = declared(route)
        assert needed is not None
        url = concrete(path)
        anonymous = await api.request(method, url, headers={"authorization": ""})
        if path.startswith("/ui") or path in ("/", "/docs"):
            assert anonymous.status_code == 303, (method, path)
            assert anonymous.headers["location"].startswith("/ui/login")
        else:
            assert anonymous.status_code == 401, (method, path, anonymous.text)
            assert anonymous.json()["error"]["type"] == "authentication_error"
        for role, key in keys.items():
            response = await api.request(method, url, headers=bearer(key), json={})
            allowed = bool(GRANTS[role] & needed)
            if allowed:
                assert response.status_code not in (401, 403), (role, method, path)
            else:
                assert response.status_code == 403, (role, method, path, response.text)
                assert response.json()["error"]["type"] == "permission_error"
            checked += 1
    assert checked == 3 * len(routes(app))


async def test_a_developer_never_reads_another_keys_usage_or_logs(
    api: AppClient, home_registry: Registry
) -> None:
    register_scripted(home_registry, "bot", replies=["hi there"])
    await api.reload_routes()
    alice, bob = await new_key(api, "developer"), await new_key(api, "developer")
    alice_id = alice.split("_")[1]
    ask = {"model": "bot", "messages": [{"role": "user", "content": "secret of alice"}]}
    done = await api.post("/v1/chat/completions", json=ask, headers=bearer(alice))
    assert done.status_code == 200
    request_id = done.headers["x-modelyard-request-id"]
    await api.logged()

    as_bob = bearer(bob)
    assert (await api.get(f"/api/usage?key_id={alice_id}", headers=as_bob)).status_code == 403
    own = (await api.get("/api/usage", headers=as_bob)).json()["data"]
    assert own == []  # bob's own usage: nothing, and never alice's rows
    assert (await api.get(f"/api/requests?key_id={alice_id}", headers=as_bob)).status_code == 403
    listed = (await api.get("/api/requests", headers=as_bob)).json()["data"]
    assert listed == []
    detail = await api.get(f"/api/requests/{request_id}", headers=as_bob)
    assert detail.status_code == 404 and "alice" not in detail.text
    assert (await api.get(f"/api/keys/{alice_id}", headers=as_bob)).status_code == 404
    csv = await api.get(f"/api/usage.csv?key_id={alice_id}", headers=as_bob)
    assert csv.status_code == 403

    # Alice sees her own, and the admin sees everyone's.
    mine = await api.get(f"/api/requests/{request_id}", headers=bearer(alice))
    assert mine.status_code == 200
    assert mine.json()["content"]["messages"][0]["content"] == "secret of alice"
    rows = (await api.get(f"/api/usage?key_id={alice_id}")).json()["data"]
    assert [(r["key_id"], r["requests"]) for r in rows] == [(alice_id, 1)]


async def test_revoked_and_expired_keys_are_401(api: AppClient, home_registry: Registry) -> None:
    register_scripted(home_registry, "bot", replies=["hi"])
    await api.reload_routes()
    ask = {"model": "bot", "messages": [{"role": "user", "content": "q"}]}
    key = await new_key(api, "developer")
    assert (await api.post("/v1/chat/completions", json=ask, headers=bearer(key))).is_success
    revoked = await api.post(f"/api/keys/{key.split('_')[1]}/revoke")
    assert revoked.json()["status"] == "revoked"
    refused = await api.post("/v1/chat/completions", json=ask, headers=bearer(key))
    assert refused.status_code == 401

    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    expired = await new_key(api, "developer", expires_at=past)
    refused = await api.post("/v1/chat/completions", json=ask, headers=bearer(expired))
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "expired_api_key"

    forged = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    refused = await api.post("/v1/chat/completions", json=ask, headers=bearer(forged))
    assert refused.status_code == 401


async def test_a_key_calls_only_its_allowed_routes(api: AppClient, home_registry: Registry) -> None:
    register_scripted(home_registry, "chat-bot", replies=["hi"])
    register_scripted(home_registry, "internal", replies=["classified"])
    await api.reload_routes()
    key = await new_key(api, "developer", allowed_routes=["chat-*"])
    ask = {"messages": [{"role": "user", "content": "q"}]}
    ok = await api.post(
        "/v1/chat/completions", json={**ask, "model": "chat-bot"}, headers=bearer(key)
    )
    assert ok.status_code == 200
    refused = await api.post(
        "/v1/chat/completions", json={**ask, "model": "internal"}, headers=bearer(key)
    )
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "model_not_allowed"
    models = (await api.get("/v1/models", headers=bearer(key))).json()["data"]
    assert [m["id"] for m in models] == ["chat-bot"]
