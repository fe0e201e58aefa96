"""``POST /v1/feedback``: only the key that made a request (or an admin) may judge it."""

from __future__ import annotations

import pytest

from modelyard.registry import Registry
from tests.conftest import AppClient, bearer, new_key, register_scripted

pytestmark = pytest.mark.anyio
ASK = {"model": "bot", "messages": [{"role": "user", "content": "hi"}]}


async def test_feedback_by_owner_or_admin_and_where_it_shows(
    api: AppClient, home_registry: Registry
) -> None:
    register_scripted(home_registry, "bot", replies=["hello"])
    await api.reload_routes()
    alice, bob = await new_key(api), await new_key(api)
    made = await api.post(
        "/v1/chat/completions", json={**ASK, "user": "end-user-42"}, headers=bearer(alice)
    )
    request_id = made.headers["x-modelyard-request-id"]

    # Right after the answer, before the log row is even written: the owner may judge it.
    thumbs = {"request_id": request_id, "name": "thumbs", "value": True}
    given = await api.post("/v1/feedback", json=thumbs, headers=bearer(alice))
    assert given.status_code == 201, given.text
    assert given.json()["value"] is True and given.json()["source"] == "human"
    other = await api.post("/v1/feedback", json=thumbs, headers=bearer(bob))
    assert other.status_code == 404 and other.json()["error"]["code"] == "request_not_found"
    await api.logged()
    judged = {
        "request_id": request_id,
        "name": "helpfulness",
        "value": 0.25,
        "source": "judge",
        "comment": "terse",
    }
    assert (await api.post("/v1/feedback", json=judged)).status_code == 201  # the admin
    label = {"request_id": request_id, "name": "topic", "value": "greeting", "source": "code"}
    assert (await api.post("/v1/feedback", json=label, headers=bearer(alice))).status_code == 201
    missing = {**thumbs, "request_id": "req_nope"}
    assert (await api.post("/v1/feedback", json=missing)).status_code == 404
    for bad in ({**thumbs, "source": "crowd"}, {**thumbs, "value": ""}, {**thumbs, "name": ""}):
        response = await api.post("/v1/feedback", json=bad, headers=bearer(alice))
        assert response.status_code == 400, bad

    detail = (await api.get(f"/api/requests/{request_id}", headers=bearer(alice))).json()
    assert detail["user"] == "end-user-42"  # the client's end-user id, kept for the log
    assert [(f["name"], f["value"], f["source"]) for f in detail["feedback"]] == [
        ("thumbs", True, "human"),
        ("helpfulness", 0.25, "judge"),
        ("topic", "greeting", "code"),
    ]
    with_feedback = (await api.get("/api/requests?feedback=helpfulness")).json()["data"]
    assert [r["id"] for r in with_feedback] == [request_id]
    assert (await api.get("/api/requests?feedback=nothing")).json()["data"] == []
    metrics = (await api.get("/metrics")).text
    assert 'modelyard_feedback_total{name="thumbs",source="human"} 1.0' in metrics


async def test_exports_stream_every_matching_row(api: AppClient, home_registry: Registry) -> None:
    register_scripted(home_registry, "bot", replies=["hello"])
    await api.reload_routes()
    for _ in range(3):
        await api.post("/v1/chat/completions", json=ASK)
    await api.post("/v1/chat/completions", json={**ASK, "model": "nope"})
    await api.logged()
    jsonl = await api.get("/api/requests.jsonl?route=bot")
    lines = jsonl.text.strip().split("\n")
    assert jsonl.headers["content-type"].startswith("application/x-ndjson") and len(lines) == 3
    csv = (await api.get("/api/requests.csv")).text.strip().split("\n")
    assert csv[0].startswith("id,at,key_id,endpoint,route") and len(csv) == 5
    assert sum(",404," in line for line in csv) == 1
