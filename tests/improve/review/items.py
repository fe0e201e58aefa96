"""A small dataset of questions and answers as ``datasets from-log`` makes them (with
request ids and splits), a labelled one, and a clock the tests move by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from modelyard.evaluate.datasets import DatasetOut, DatasetService, StoredItem
from modelyard.improve.review.protocol import ReviewCreate, ReviewOut
from modelyard.improve.review.reviews import Reviews
from modelyard.store import Store
from tests.conftest import AppClient

LABELS = ("billing", "cards", "travel")
ADMIN = "admin@tests"


def answer_items(count: int) -> list[dict[str, Any]]:
    return [
        {
            "request_id": f"req-{i}",
            "input": f"What is question {i}?",
            "output": f"answer {i}",
            "corrected": None,
            "feedback": [{"name": "thumbs", "value": i % 2 == 0, "comment": ""}],
            "split": "test" if i % 2 else "train",
        }
        for i in range(count)
    ]


def register_answers(store: Store, count: int = 6, name: str = "qa") -> DatasetOut:
    """A version whose items carry request ids, splits and fingerprints in the store."""
    stored = (
        StoredItem(item, item["request_id"], item["split"], f"print-{i}")
        for i, item in enumerate(answer_items(count))
    )
    return DatasetService(store).register_stream(name, stored, {"kind": "tests"}, "tests")


def register_labelled(store: Store, count: int = 6, name: str = "intents") -> DatasetOut:
    """A version as labelling writes it: ``source.kind`` labelled, the label in ``label``."""
    items = [
        {"text": f"message {i}", "label": LABELS[i % 3], "teacher_request_id": f"t-{i}"}
        for i in range(count)
    ]
    source = {"kind": "labelled", "label_field": "label"}
    return DatasetService(store).register_items(name, items, source, "tests")


def create_review(store: Store, clock: Clock | None = None, **fields: Any) -> ReviewOut:
    request = ReviewCreate.model_validate({"dataset": "qa", **fields})
    return Reviews(store, clock or Clock()).create(request, ADMIN)


class Clock:
    """Now, as the tests say: a lease expires when the test moves the clock past it."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, minutes: float) -> None:
        self.now += timedelta(minutes=minutes)


async def review_pages(api: AppClient) -> dict[str, str]:
    """A review with a decision, and the URLs of the console pages that show it, keyed by
    their routes' paths."""
    register_answers(api.services.store, 3, name="qa-pages")
    made = await api.post("/api/reviews", json={"dataset": "qa-pages"})
    assert made.status_code == 201, made.text
    review_id = made.json()["id"]
    decided = await api.post(
        f"/api/reviews/{review_id}/items/0/decision", json={"decision": "accept"}
    )
    assert decided.status_code == 200, decided.text
    return {"/ui/reviews": "/ui/reviews", "/ui/reviews/{review_id}": f"/ui/reviews/{review_id}"}
