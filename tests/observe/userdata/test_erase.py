"""Erasing a user's data through the API, on SQLite and PostgreSQL: their content, feedback
comments and dataset items go, other users' stay, usage and cost add up as before, and one
audit record names the user's pseudonym."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import func, select

from modelyard.evaluate.datasets import DatasetService
from modelyard.evaluate.runs import dataset_digest
from modelyard.observe.userdata.erase import emptied_item, items_sha256
from modelyard.store import Store
from modelyard.store.tables import RequestLogRow
from tests.conftest import AppClient
from tests.observe.userdata.traffic import ALICE_WORD, BOB_WORD, app_on, populate, stored_texts

pytestmark = pytest.mark.anyio


def totals(rows: list[dict[str, Any]]) -> tuple[int, int, int, float]:
    return (
        sum(r["requests"] for r in rows),
        sum(r["prompt_tokens"] for r in rows),
        sum(r["completion_tokens"] for r in rows),
        round(sum(r["cost"] for r in rows), 6),
    )


def log_figures(store: Store) -> tuple[Any, ...]:
    t = RequestLogRow
    query = select(
        func.count(), func.sum(t.cost), func.sum(t.energy_wh), func.count(func.distinct(t.user))
    )
    with store.session() as session:
        rows, cost, energy, users = session.execute(query).one()
    # Rounded: a SUM of floats may add them in another order once rows changed.
    return rows, round(cost, 9), round(energy, 12), users


async def test_erase_removes_one_users_data_and_keeps_the_figures(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with app_on(database_url, monkeypatch) as api:
        traffic = await populate(api)
        usage = totals((await api.get("/api/usage")).json()["data"])
        figures = log_figures(api.services.store)
        bob_before = (await api.get("/api/users/bob/export")).json()
        assert ALICE_WORD in stored_texts(api)

        erased = await api.post("/api/users/alice/erase")
        assert erased.status_code == 200, erased.text
        done = erased.json()
        counts = done["counts"]
        assert counts["requests"] == counts["contents"] == 4
        assert counts["feedback_comments"] == 1
        assert counts["review_corrections"] == 4  # log@1's four items of alice
        assert counts["label_answers"] == counts["teacher_contents"] == 4
        assert counts["dataset_items"] == 4 + 4 + 3  # log, labelled, curated
        assert done["datasets"] == ["curated@1", "log@1", "log-labelled@1"]
        assert counts["report_examples"] >= 1  # the curation report quoted one of hers
        assert done["pseudonym"].startswith("erased:") and "alice" not in done["pseudonym"]

        texts = stored_texts(api)
        assert ALICE_WORD not in texts and BOB_WORD in texts
        assert totals((await api.get("/api/usage")).json()["data"]) == usage
        assert log_figures(api.services.store) == figures  # rows, cost, energy, users
        assert (await api.get("/api/users/bob/export")).json()["requests"] == bob_before["requests"]
        for path in ("summary", "export"):
            gone = await api.get(f"/api/users/alice/{path}")
            assert gone.status_code == 404 and gone.json()["error"]["code"] == "user_not_found"
        await _audited(api, done)
        await _versions_note_it(api, traffic.requests["alice"])


async def _audited(api: AppClient, done: dict[str, Any]) -> None:
    events = (await api.get("/api/audit?action=user.erase")).json()["data"]
    assert [(e["id"], e["target"]) for e in events] == [(done["audit_id"], done["pseudonym"])]
    assert events[0]["after"]["counts"] == done["counts"]
    assert "alice" not in json.dumps(events)
    assert events[0]["actor"].startswith("key:")


async def _versions_note_it(api: AppClient, alice: list[str]) -> None:
    """The changed version says so: a new sha256 of what it holds, the indexes emptied."""
    datasets = DatasetService(api.services.store)
    version = datasets.get("log", 1)
    (note,) = version.source["erasures"]
    assert note["previous_sha256"] != version.sha256
    items = datasets.items("log", 1)
    assert version.sha256 == dataset_digest(items)
    assert version.item_count == len(items) == 6  # nothing removed
    erased = [i for i, item in enumerate(items) if item.get("erased")]
    assert erased == note["indexes"] and len(erased) == 4
    assert all(items[i]["input"] == "" and items[i]["messages"] is None for i in erased)
    kept = [item for item in items if not item.get("erased")]
    assert {item["request_id"] for item in kept}.isdisjoint(alice)


async def test_unknown_users_and_bad_ids(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with app_on(database_url, monkeypatch) as api:
        await populate(api)
        for method, path in (("GET", "summary"), ("GET", "export"), ("POST", "erase")):
            missing = await api.request(method, f"/api/users/nobody/{path}")
            assert missing.status_code == 404, missing.text
            assert "no logged request names the user 'nobody'" in missing.json()["error"]["message"]
        empty = await api.get("/api/users//summary")
        assert empty.status_code == 400 and empty.json()["error"]["type"] == "invalid_request_error"
        long = await api.get(f"/api/users/{'x' * 257}/summary")
        assert long.status_code == 400
        assert (await api.get("/api/audit?action=user.erase")).json()["data"] == []


def test_an_erased_item_hashes_as_a_version_does() -> None:
    items = [{"input": "é", "n": 1, "split": "train"}, emptied_item({"input": "x", "tags": []})]
    assert emptied_item({"input": "x", "tags": [], "split": "dev"}) == {
        "input": "",
        "tags": None,
        "split": "dev",
        "erased": True,
    }
    assert items_sha256(items) == dataset_digest(items)


def test_the_sha256_a_version_gets_is_items_sha256(store: Store) -> None:
    items = [{"b": 2, "a": "ü"}, {"erased": True, "input": ""}]
    version = DatasetService(store).register_items("d", items, {"kind": "tests"}, "tests")
    assert version.sha256 == items_sha256(items)
