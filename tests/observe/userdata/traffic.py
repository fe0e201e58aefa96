"""Two end users' traffic through a real app, and what is made of it: feedback, a dataset
from the log, a curated version, a review correction and a teacher's labels."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest
from sqlalchemy import select

from modelyard.config import Settings
from modelyard.registry import Registry
from modelyard.store import open_store
from modelyard.store.tables import (
    AuditEventRow,
    DatasetItemRow,
    DatasetRow,
    FeedbackRow,
    LabelItemRow,
    RequestLogRow,
    ReviewEventRow,
    ReviewItemRow,
)
from tests.conftest import AppClient, app_client, register_scripted

# Words only one user's prompts hold: whatever carries one of them came from that user.
ALICE_WORD = "aliceword"
BOB_WORD = "bobword"
PROMPTS = {
    "alice": [
        f"{ALICE_WORD} where should I travel in spring with two children",
        f"{ALICE_WORD} how do I cancel the order number I placed last week",
        f"{ALICE_WORD} explain compound interest to a teenager in simple words",
        # Asked again: curation keeps one, and its report quotes the duplicate dropped.
        f"{ALICE_WORD} where should I travel in spring with two children",
    ],
    "bob": [
        f"{BOB_WORD} which houseplants survive a dark north facing room",
        f"{BOB_WORD} write a haiku about the first snow on the harbour",
    ],
}
PRICE = {"input_per_million": 1_000_000.0, "output_per_million": 2_000_000.0}


@dataclass
class Traffic:
    requests: dict[str, list[str]] = field(default_factory=dict)  # by user


@asynccontextmanager
async def app_on(database_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[AppClient]:
    """An app over the store at ``database_url`` (SQLite or PostgreSQL), as its admin, with
    a priced chat model and a teacher."""
    monkeypatch.setenv("MODELYARD_DATABASE_URL", database_url)
    store = open_store(database_url)
    registry = Registry(store)
    register_scripted(registry, "chat", replies=["a helpful answer"], price=PRICE)
    register_scripted(registry, "teacher", replies=["good"])
    store.close()
    async with app_client(Settings()) as client:
        yield client


async def populate(api: AppClient) -> Traffic:
    traffic = Traffic()
    for user, prompts in PROMPTS.items():
        for prompt in prompts:
            body = {
                "model": "chat",
                "user": user,
                "messages": [{"role": "user", "content": prompt}],
            }
            answered = await api.post("/v1/chat/completions", json=body)
            assert answered.status_code == 200, answered.text
            traffic.requests.setdefault(user, []).append(answered.headers["x-modelyard-request-id"])
    await api.logged()
    for user in PROMPTS:
        feedback = {
            "request_id": traffic.requests[user][0],
            "name": "thumbs",
            "value": False,
            "comment": f"{user} says the answer ignored {user}word details",
        }
        assert (await api.post("/v1/feedback", json=feedback)).status_code == 201
    made = await api.post("/api/datasets/from-log", json={"name": "log"})
    assert made.status_code == 201, made.text
    curated = await api.post("/api/curate", json={"name": "curated", "examples": 5})
    assert curated.status_code == 201, curated.text
    await _review(api)
    await _label(api)
    return traffic


async def _review(api: AppClient) -> None:
    """A correction of every item of ``log@1`` (the texts name their user)."""
    made = await api.post("/api/reviews", json={"dataset": "log"})
    assert made.status_code == 201, made.text
    review = made.json()["id"]
    items = (await api.get("/api/datasets/log/1")).json()["items"]
    for index, item in enumerate(items):
        word = ALICE_WORD if ALICE_WORD in item["input"] else BOB_WORD
        decision = {"decision": "correct", "correction": f"{word} a better answer"}
        path = f"/api/reviews/{review}/items/{index}/decision"
        assert (await api.post(path, json=decision)).status_code == 200


async def _label(api: AppClient) -> None:
    body = {"dataset": "log", "teacher": "teacher", "labels": ["good", "bad"]}
    run = await api.post("/api/label", json=body)
    assert run.status_code == 202, run.text
    await api.app.state.improve_jobs.wait(f"label:{run.json()['id']}")
    assert (await api.get(f"/api/label/{run.json()['id']}")).json()["status"] == "done"
    await api.logged()


def stored_texts(api: AppClient) -> str:
    """Every text the store holds where a user's words could be, content decrypted."""
    cipher = api.services.guard.cipher
    parts: list[str] = []
    with api.services.store.session() as session:
        parts += [
            cipher.open(blob).decode()
            for blob in session.scalars(
                select(RequestLogRow.content).where(RequestLogRow.content.is_not(None))
            )
        ]
        parts += [str(data) for data in session.scalars(select(DatasetItemRow.data))]
        parts += [str(source) for source in session.scalars(select(DatasetRow.source))]
        for event in session.scalars(select(AuditEventRow)):
            parts += [str(event.before), str(event.after)]
        parts += [str(c) for c in session.scalars(select(ReviewItemRow.correction))]
        for event in session.scalars(select(ReviewEventRow)):
            parts += [str(event.correction), str(event.before)]
        parts += list(session.scalars(select(LabelItemRow.answer)))
        parts += list(session.scalars(select(FeedbackRow.comment)))
    return "\n".join(parts)
