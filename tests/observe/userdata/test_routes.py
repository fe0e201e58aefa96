"""The HTTP faces of a user's data on request: admin only, a user id in the path with any
character percent-encoded, and the request log's latest rows counted."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from modelyard.registry import Registry
from tests.conftest import AppClient, bearer, new_key, register_scripted

pytestmark = pytest.mark.anyio
ODD = "team/alice?x=1#a b%"  # a slash, a query, a fragment, a space, a percent sign


async def ask(api: AppClient, user: str, headers: dict[str, str] | None = None) -> str:
    body = {"model": "bot", "user": user, "messages": [{"role": "user", "content": "hello"}]}
    answered = await api.post("/v1/chat/completions", json=body, headers=headers or {})
    assert answered.status_code == 200, answered.text
    return answered.headers["x-modelyard-request-id"]


async def test_only_an_admin_reads_or_erases_a_user(
    api: AppClient, home_registry: Registry
) -> None:
    register_scripted(home_registry, "bot", replies=["hi"])
    await api.reload_routes()
    developer = bearer(await new_key(api, "developer"))
    await ask(api, "carol", developer)
    for role in ("viewer", "developer"):
        key = developer if role == "developer" else bearer(await new_key(api, role))
        for method, path in (("GET", "summary"), ("GET", "export"), ("POST", "erase")):
            refused = await api.request(method, f"/api/users/carol/{path}", headers=key)
            assert refused.status_code == 403, (role, path)
            assert refused.json()["error"]["type"] == "permission_error"
    assert (await api.get("/api/users/carol/summary")).json()["requests"] == 1


async def test_a_user_id_with_any_character(api: AppClient, home_registry: Registry) -> None:
    register_scripted(home_registry, "bot", replies=["hi"])
    await api.reload_routes()
    mine = await ask(api, ODD)
    await ask(api, "team")  # the id's first segment is another user
    # Not flushed: the route writes what the log holds before it reads.
    path = f"/api/users/{quote(ODD, safe='')}"
    summary = await api.get(f"{path}/summary")
    assert summary.status_code == 200, summary.text
    assert summary.json()["user"] == ODD and summary.json()["requests"] == 1
    export = (await api.get(f"{path}/export")).json()
    assert [r["id"] for r in export["requests"]] == [mine]
    erased = await api.post(f"{path}/erase")
    assert erased.json()["counts"]["requests"] == 1
    assert (await api.get("/api/users/team/summary")).json()["requests"] == 1
    assert (await api.get(f"{path}/summary")).status_code == 404


async def test_a_pseudonym_is_not_erased_again(api: AppClient, home_registry: Registry) -> None:
    register_scripted(home_registry, "bot", replies=["hi"])
    await api.reload_routes()
    await ask(api, "dave")
    name = (await api.post("/api/users/dave/erase")).json()["pseudonym"]
    again = await api.post(f"/api/users/{name}/erase")
    assert again.status_code == 400 and again.json()["error"]["code"] == "invalid_user"
    # What is left of dave: his rows' figures, under the pseudonym, without content.
    left = (await api.get(f"/api/users/{name}/export")).json()["requests"]
    assert [(r["user"], r["content"], r["prompt_tokens"] > 0) for r in left] == [(name, None, True)]
