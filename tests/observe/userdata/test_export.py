"""Exporting a user's data through the API, on SQLite and PostgreSQL: every request with its
content and feedback, the dataset items made from them and what reviews and teachers said
of those, and nothing of another user."""

from __future__ import annotations

import json

import pytest

from tests.observe.userdata.traffic import ALICE_WORD, BOB_WORD, PROMPTS, app_on, populate

pytestmark = pytest.mark.anyio


async def test_an_export_holds_everything_of_one_user_and_nothing_of_another(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with app_on(database_url, monkeypatch) as api:
        traffic = await populate(api)
        answer = await api.get("/api/users/alice/export")
        assert answer.status_code == 200, answer.text
        export = answer.json()
        pseudonym = (await api.get("/api/users/alice/summary")).json()["pseudonym"]
        audit = (await api.get("/api/audit?action=user.export")).json()["data"]
    assert [(e["target"], e["after"]) for e in audit] == [
        (pseudonym, {"requests": 4, "dataset_items": 11})
    ]
    assert "alice" not in str(audit)
    assert BOB_WORD not in answer.text and "bob" not in answer.text
    assert export["user"] == "alice" and export["exported_at"]
    requests = export["requests"]
    assert [r["id"] for r in requests] == traffic.requests["alice"]  # oldest first
    assert [r["content"]["messages"][0]["content"] for r in requests] == PROMPTS["alice"]
    assert all(r["user"] == "alice" and r["content"]["response"] for r in requests)
    (feedback,) = requests[0]["feedback"]
    assert feedback["comment"].startswith("alice says") and feedback["value"] is False
    items = export["dataset_items"]
    assert {(i["dataset"], i["version"]) for i in items} == {
        ("curated", 1),
        ("log", 1),
        ("log-labelled", 1),
    }
    assert len(items) == 4 + 4 + 3 and all(ALICE_WORD in json.dumps(i["data"]) for i in items)
    assert {i["request_id"] for i in items} <= set(traffic.requests["alice"])
    corrections = export["review_corrections"]
    assert [c["decision"] for c in corrections] == ["correct"] * 4
    assert all(ALICE_WORD in c["correction"] for c in corrections)
    answers = export["label_answers"]
    assert [(a["label"], a["answer"]) for a in answers] == [("good", "good")] * 4
    assert all(a["teacher_request_id"] for a in answers)


async def test_a_summary_counts_what_an_export_holds(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with app_on(database_url, monkeypatch) as api:
        await populate(api)
        summary = (await api.get("/api/users/alice/summary")).json()
        again = (await api.get("/api/users/alice/summary")).json()
    assert summary == again  # the pseudonym is stable
    assert summary["pseudonym"].startswith("erased:")
    assert {k: summary[k] for k in ("requests", "with_content", "feedback", "dataset_items")} == {
        "requests": 4,
        "with_content": 4,
        "feedback": 1,
        "dataset_items": 11,
    }
    assert summary["datasets"] == ["curated@1", "log@1", "log-labelled@1"]
    assert summary["first_at"] <= summary["last_at"]
