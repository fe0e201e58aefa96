"""``/api/routes``: traffic policies set, shown, refused, audited and deleted through the API,
and the traffic that follows them."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select

from modelyard.registry import Registry
from modelyard.routing.protocol import TrafficPolicy
from modelyard.routing.table import assign, bucket
from modelyard.store.tables import RequestLogRow
from tests.conftest import AppClient, register_scripted

pytestmark = pytest.mark.anyio
HELLO = [{"role": "user", "content": "hello"}]
SALT = "rollout-7"


@pytest.fixture(autouse=True)
def models(home_registry: Registry) -> None:
    register_scripted(home_registry, "chat", replies=["from stable"])
    register_scripted(home_registry, "chat", alias="staging", replies=["from candidate"])
    register_scripted(home_registry, "other")


def canary(weight: float, **more: Any) -> dict[str, Any]:
    return {"salt": SALT, "candidates": [{"version": 2, "weight": weight}], **more}


async def put(api: httpx.AsyncClient, policy: dict[str, Any], reason: str = "") -> httpx.Response:
    return await api.put("/api/routes/chat", json={"policy": policy, "reason": reason})


def assert_error(response: httpx.Response, status: int, code: str | None) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == code
    assert error["message"]
    return str(error["message"])


async def actor(api: httpx.AsyncClient) -> str:
    me = (await api.get("/api/keys/me")).json()
    return f"key:{me['id']} ({me['name']})"


async def chat(api: httpx.AsyncClient, **body: Any) -> httpx.Response:
    headers = body.pop("headers", None)
    response = await api.post(
        "/v1/chat/completions", json={"model": "chat", "messages": HELLO, **body}, headers=headers
    )
    assert response.status_code == 200, response.text
    return response


def expected_variant(user: str, weight: float) -> str:
    return assign(TrafficPolicy.model_validate(canary(weight)), bucket(SALT, user))[0]


# -- the policy store through the API -------------------------------------------------------


async def test_a_policy_put_shows_on_the_route(api: AppClient) -> None:
    response = await put(api, canary(30, shadows=[{"version": 2, "share": 5}]), "canary")
    assert response.status_code == 200, response.text
    out = response.json()
    assert out["model"] == "chat"
    assert out["updated_by"] == await actor(api)
    assert out["policy"]["candidates"] == [{"name": "candidate", "version": 2, "weight": 30}]
    route = (await api.get("/api/routes/chat")).json()
    assert route["model"] == "chat"
    assert route["policy"] == out["policy"]
    assert route["variants"] == [
        {"name": "stable", "alias": "production", "weight": 70},
        {"name": "candidate", "version": 2, "weight": 30},
        {"name": "shadow", "version": 2, "share": 5},
    ]
    assert route["breakers"] == []
    listed = (await api.get("/api/routes")).json()
    assert [p["model"] for p in listed["data"]] == ["chat"]
    # A route without a policy is shown too, with no variants.
    bare = (await api.get("/api/routes/other")).json()
    assert (bare["policy"], bare["variants"]) == (None, [])


async def test_an_unknown_version_is_refused(api: AppClient) -> None:
    response = await put(api, {"candidates": [{"version": 9, "weight": 10}]})
    message = assert_error(response, 400, "invalid_policy")
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert "version 9" in message
    shadow = await put(api, {"shadows": [{"version": 12, "share": 10}]})
    assert "version 12" in assert_error(shadow, 400, "invalid_policy")
    assert (await api.get("/api/routes/chat")).json()["policy"] is None


async def test_an_unknown_stable_alias_or_fallback_is_refused(api: AppClient) -> None:
    message = assert_error(await put(api, {"stable_alias": "gold"}), 400, "invalid_policy")
    assert "alias 'gold'" in message
    for name in ["ghost", "other:canary", "other@5", "other@x"]:
        response = await put(api, {"fallbacks": [{"model": name}]})
        assert f"fallback '{name}'" in assert_error(response, 400, "invalid_policy")


async def test_an_unknown_model_is_404(api: AppClient) -> None:
    response = await api.put("/api/routes/ghost", json={"policy": {}})
    assert "'ghost' does not exist" in assert_error(response, 404, "not_found")
    assert_error(await api.delete("/api/routes/chat"), 404, "not_found")


@pytest.mark.parametrize(
    ("policy", "words"),
    [
        (
            {
                "candidates": [
                    {"name": "a", "version": 2, "weight": 60},
                    {"name": "b", "version": 1, "weight": 50},
                ]
            },
            "more than 100%",
        ),
        ({"candidates": [{"version": 2, "weight": 150}]}, "policy.candidates.0.weight"),
        ({"candidates": [{"name": "shadow", "version": 2, "weight": 1}]}, "reserved"),
        ({"weights": 3}, "policy.weights"),
    ],
)
async def test_an_invalid_policy_is_400_in_the_error_shape(
    api: AppClient, policy: dict[str, Any], words: str
) -> None:
    message = assert_error(await put(api, policy), 400, "invalid_request")
    assert words in message


async def test_history_and_audit_record_every_change(api: AppClient) -> None:
    assert (await put(api, canary(10), "start")).status_code == 200
    assert (await put(api, canary(50), "grow")).status_code == 200
    deleted = await api.delete("/api/routes/chat", params={"reason": "done"})
    assert deleted.status_code == 204
    who = await actor(api)
    history = (await api.get("/api/routes/chat/history")).json()["data"]
    assert [(c["reason"], c["actor"]) for c in history] == [
        ("done", who),
        ("grow", who),
        ("start", who),
    ]
    assert history[0]["after"] is None
    assert history[0]["before"]["candidates"][0]["weight"] == 50
    assert history[1]["before"]["candidates"][0]["weight"] == 10
    assert history[1]["after"]["candidates"][0]["weight"] == 50
    assert history[2]["before"] is None
    assert [c["id"] for c in history] == sorted((c["id"] for c in history), reverse=True)
    limited = (await api.get("/api/routes/chat/history", params={"limit": 1})).json()["data"]
    assert [c["reason"] for c in limited] == ["done"]

    audit = (await api.get("/api/audit", params={"target": "chat"})).json()["data"]
    policy_events = [e for e in audit if e["action"].startswith("route.policy")]
    assert len(policy_events) == 3
    by_action = sorted((e["action"], (e["after"] or {}).get("reason")) for e in policy_events)
    assert by_action == [
        ("route.policy", "grow"),
        ("route.policy", "start"),
        ("route.policy.delete", None),
    ]
    assert {e["actor"] for e in policy_events} == {who}


async def test_delete_removes_the_policy(api: AppClient) -> None:
    assert (await put(api, canary(100))).status_code == 200
    assert (await chat(api)).headers["x-modelyard-variant"] == "candidate"
    assert (await api.delete("/api/routes/chat")).status_code == 204
    route = (await api.get("/api/routes/chat")).json()
    assert (route["policy"], route["variants"]) == (None, [])
    assert (await api.get("/api/routes")).json()["data"] == []
    response = await chat(api)
    assert "x-modelyard-variant" not in response.headers
    assert response.headers["x-modelyard-version"] == "chat@1"


async def test_a_policy_owned_by_a_rollout_cannot_be_changed_by_hand(api: AppClient) -> None:
    owned = TrafficPolicy.model_validate(canary(5, owner="rollout:1"))
    api.services.policies.put("chat", owned, actor="x", owner="rollout:1")
    message = assert_error(await put(api, canary(90)), 409, "conflict")
    assert "rollout 1" in message
    assert "rollout 1" in assert_error(await api.delete("/api/routes/chat"), 409, "conflict")
    current = api.services.policies.get("chat")
    assert current is not None
    assert current.policy.candidates[0].weight == 5
    # The owner itself may change it.
    api.services.policies.put(
        "chat", owned.model_copy(update={"salt": "next"}), actor="x", owner="rollout:1"
    )
    current = api.services.policies.get("chat")
    assert current is not None and current.policy.salt == "next"


# -- traffic follows the policy -------------------------------------------------------------


async def test_the_candidate_takes_all_traffic_at_100(api: AppClient) -> None:
    assert (await put(api, canary(100))).status_code == 200
    for _ in range(5):
        response = await chat(api)
        assert response.headers["x-modelyard-variant"] == "candidate"
        assert response.headers["x-modelyard-version"] == "chat@2"
        assert response.json()["choices"][0]["message"]["content"] == "from candidate"
    # A pinned name still bypasses it.
    pinned = await api.post("/v1/chat/completions", json={"model": "chat@1", "messages": HELLO})
    assert pinned.headers["x-modelyard-version"] == "chat@1"
    assert "x-modelyard-variant" not in pinned.headers


async def test_a_user_keeps_a_variant(api: AppClient) -> None:
    assert (await put(api, canary(50))).status_code == 200
    users = [f"u{i}" for i in range(1, 9)]
    expected = {user: expected_variant(user, 50) for user in users}
    assert set(expected.values()) == {"candidate", "stable"}, "pick users on both variants"
    for _ in range(20):
        response = await chat(api, user="u1")
        assert response.headers["x-modelyard-variant"] == expected["u1"]
    for user in users:
        for _ in range(3):
            response = await chat(api, user=user)
            variant = response.headers["x-modelyard-variant"]
            assert variant == expected[user], user
            version = "chat@2" if variant == "candidate" else "chat@1"
            assert response.headers["x-modelyard-version"] == version


async def test_the_sticky_header_names_the_user_when_the_body_does_not(api: AppClient) -> None:
    assert (await put(api, canary(50))).status_code == 200
    users = [f"u{i}" for i in range(1, 9)]
    for user in users:
        for _ in range(3):
            response = await chat(api, headers={"x-modelyard-user": user})
            assert response.headers["x-modelyard-variant"] == expected_variant(user, 50), user
    # The body's user wins over the header.
    stable_user = next(u for u in users if expected_variant(u, 50) == "stable")
    candidate_user = next(u for u in users if expected_variant(u, 50) == "candidate")
    response = await chat(api, user=stable_user, headers={"x-modelyard-user": candidate_user})
    assert response.headers["x-modelyard-variant"] == "stable"


async def test_a_custom_sticky_header(api: AppClient) -> None:
    assert (await put(api, canary(50, sticky_header="x-tenant-user"))).status_code == 200
    for user in [f"u{i}" for i in range(1, 9)]:
        for _ in range(3):
            response = await chat(api, headers={"x-tenant-user": user})
            assert response.headers["x-modelyard-variant"] == expected_variant(user, 50), user


async def test_a_sticky_header_without_the_x_prefix(api: AppClient) -> None:
    assert (await put(api, canary(50, sticky_header="end-user"))).status_code == 200
    users = [f"u{i}" for i in range(1, 9)]
    seen = {
        user: {
            (await chat(api, headers={"end-user": user})).headers["x-modelyard-variant"]
            for _ in range(10)
        }
        for user in users
    }
    assert seen == {user: {expected_variant(user, 50)} for user in users}


async def test_request_log_rows_carry_the_variant(api: AppClient) -> None:
    assert (await put(api, canary(50))).status_code == 200
    sent: dict[str, tuple[str, str, str]] = {}
    for user in ["u1", "u2", "u3", "u4", "u5", "u6"]:
        response = await chat(api, user=user)
        sent[response.headers["x-modelyard-request-id"]] = (
            user,
            response.headers["x-modelyard-variant"],
            response.headers["x-modelyard-version"],
        )
    anonymous = await chat(api, headers={"x-modelyard-user": "u7"})
    sent[anonymous.headers["x-modelyard-request-id"]] = (
        "u7",
        anonymous.headers["x-modelyard-variant"],
        anonymous.headers["x-modelyard-version"],
    )
    await api.logged()
    with api.services.store.session() as session:
        rows = session.scalars(select(RequestLogRow).where(RequestLogRow.id.in_(sent))).all()
        logged = {r.id: (r.user, r.variant, r.version) for r in rows}
        assert all(r.fallback_from is None and r.status == 200 for r in rows)
    assert logged == sent
    assert {variant for _, variant, _ in sent.values()} == {"candidate", "stable"}
