"""Finishing a review writes exactly its decisions as a new version: accepted items as
they were, corrections in ``corrected`` (and the label of a labelled review), rejected
items left out, undecided ones kept or dropped as asked, items outside the filter kept;
request ids, splits and fingerprints carried over, the review in the provenance."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from modelyard.evaluate.datasets import DatasetService, EmptyDataset
from modelyard.improve.review.errors import (
    InvalidReview,
    ReviewFinished,
    UndecidedItems,
)
from modelyard.improve.review.finish import finish_review
from modelyard.improve.review.protocol import Accept, Correct, FinishRequest, Reject, Skip
from modelyard.improve.review.queue import ReviewQueue
from modelyard.improve.review.reviews import Reviews
from modelyard.store import Store
from modelyard.store.tables import DatasetItemRow, DatasetRow
from tests.improve.review.items import (
    ADMIN,
    answer_items,
    create_review,
    register_answers,
    register_labelled,
)

ANN, BOB = "ann", "bob"


def stored_columns(store: Store, name: str, version: int) -> list[tuple[Any, ...]]:
    query = (
        select(DatasetItemRow.request_id, DatasetItemRow.split, DatasetItemRow.fingerprint)
        .join(DatasetRow, DatasetRow.id == DatasetItemRow.dataset_id)
        .where(DatasetRow.name == name, DatasetRow.version == version)
        .order_by(DatasetItemRow.item_index)
    )
    with store.session() as session:
        return [tuple(row) for row in session.execute(query)]


def test_the_new_version_holds_exactly_the_decisions(store: Store) -> None:
    base = register_answers(store, 6)
    review = create_review(store)
    queue = ReviewQueue(store)
    queue.decide(review.id, 0, Accept(decision="accept"), ANN)
    queue.decide(review.id, 1, Correct(decision="correct", correction="Paris"), ANN)
    queue.decide(review.id, 2, Reject(decision="reject"), BOB)
    queue.decide(review.id, 3, Correct(decision="correct", correction="42"), BOB)
    queue.decide(review.id, 4, Skip(decision="skip"), BOB)  # 4 and 5 stay undecided
    with pytest.raises(UndecidedItems) as refused:
        finish_review(store, review.id, FinishRequest(), ADMIN)
    assert refused.value.param == "undecided" and "2 item(s)" in str(refused.value)
    assert Reviews(store).get(review.id).status == "open"  # nothing happened

    out = finish_review(store, review.id, FinishRequest(undecided="keep"), ADMIN)
    assert out.status == "finished" and out.finished_by == ADMIN
    assert out.result is not None and out.result.dataset == "qa@2"
    assert (out.result.accepted, out.result.corrected, out.result.rejected) == (1, 2, 1)
    assert (out.result.undecided_items, out.result.items, out.result.reviewers) == (
        2,
        5,
        [ANN, BOB],
    )
    items = answer_items(6)
    expected = [
        items[0],
        {**items[1], "corrected": "Paris"},
        {**items[3], "corrected": "42"},
        items[4],
        items[5],
    ]
    datasets = DatasetService(store)
    assert datasets.items("qa", 2) == expected
    kept = [0, 1, 3, 4, 5]
    assert stored_columns(store, "qa", 2) == [
        (f"req-{i}", "test" if i % 2 else "train", f"print-{i}") for i in kept
    ]
    version = datasets.get("qa", 2)
    assert version.created_by == ADMIN
    assert version.source == {
        "kind": "reviewed",
        "from": "qa@1",
        "sha256": base.sha256,
        "review": review.id,
        "filter": {"split": None, "where": {}},
        "instructions": "",
        "label_field": None,
        "undecided": "keep",
        "counts": {
            "accepted": 1,
            "corrected": 2,
            "rejected": 1,
            "undecided_items": 2,
            "outside_filter": 0,
            "items": 5,
        },
        "reviewers": [ANN, BOB],
    }
    assert datasets.items("qa", 1) == items  # the base version is untouched
    with pytest.raises(ReviewFinished):
        queue.next(review.id, ANN)
    with pytest.raises(ReviewFinished):
        finish_review(store, review.id, FinishRequest(undecided="keep"), ADMIN)


def test_undecided_items_dropped_and_items_outside_the_filter_kept(store: Store) -> None:
    register_answers(store, 6)
    review = create_review(store, filter={"split": "test"}, instructions="check the facts")
    assert review.progress.items == 3  # items 1, 3, 5
    queue = ReviewQueue(store)
    queue.decide(review.id, 1, Correct(decision="correct", correction="one"), ANN)
    out = finish_review(store, review.id, FinishRequest(undecided="drop", name="qa-checked"), ADMIN)
    assert out.result is not None and out.result.dataset == "qa-checked@1"
    assert (out.result.outside_filter, out.result.undecided_items, out.result.items) == (3, 2, 4)
    items = answer_items(6)
    assert DatasetService(store).items("qa-checked", 1) == [
        items[0],
        {**items[1], "corrected": "one"},
        items[2],
        items[4],
    ]
    source = DatasetService(store).get("qa-checked", 1).source
    assert source["filter"] == {"split": "test", "where": {}}
    assert source["instructions"] == "check the facts"


def test_a_labelled_review_changes_the_label_too(store: Store) -> None:
    register_labelled(store, 3)
    review = create_review(store, dataset="intents")
    queue = ReviewQueue(store)
    queue.decide(review.id, 0, Accept(decision="accept"), ANN)
    queue.decide(review.id, 1, Correct(decision="correct", correction="travel"), ANN)
    queue.decide(review.id, 2, Accept(decision="accept"), ANN)
    out = finish_review(store, review.id, FinishRequest(), ADMIN)
    assert out.result is not None and out.result.dataset == "intents@2"
    items = DatasetService(store).items("intents", 2)
    assert items[1] == {
        "text": "message 1",
        "label": "travel",
        "corrected": "travel",
        "teacher_request_id": "t-1",
    }
    assert items[0] == {"text": "message 0", "label": "billing", "teacher_request_id": "t-0"}
    assert DatasetService(store).get("intents", 2).source["label_field"] == "label"


def test_everything_accepted_is_the_same_content(store: Store) -> None:
    """The version is content-hashed like any other: the same items, the same version."""
    register_answers(store, 2)
    review = create_review(store)
    for index in (0, 1):
        ReviewQueue(store).decide(review.id, index, Accept(decision="accept"), ANN)
    out = finish_review(store, review.id, FinishRequest(), ADMIN)
    assert out.result is not None and out.result.dataset == "qa@1" and out.result.items == 2


def test_rejecting_everything_leaves_the_review_open(store: Store) -> None:
    register_answers(store, 2)
    review = create_review(store)
    for index in (0, 1):
        ReviewQueue(store).decide(review.id, index, Reject(decision="reject"), ANN)
    with pytest.raises(EmptyDataset):
        finish_review(store, review.id, FinishRequest(), ADMIN)
    reopened = Reviews(store).get(review.id)
    assert reopened.status == "open" and reopened.result is None and reopened.finished_at is None
    assert ReviewQueue(store).undo(review.id, ANN).item is not None  # work goes on


def test_refused_reviews(store: Store) -> None:
    register_answers(store, 2)
    register_labelled(store, 3)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"filter": {"split": "dev"}}, "filter"),
        ({"filter": {"where": {"input": "nothing like it"}}}, "filter"),
        ({"labels": ["a", "b"]}, "labels"),
        ({"label_field": "category"}, "label_field"),
        ({"dataset": "intents", "labels": ["x", "x"]}, "labels"),
    ]
    for fields, param in cases:
        with pytest.raises(InvalidReview) as refused:
            create_review(store, **fields)
        assert refused.value.param == param, fields
    explicit = create_review(store, dataset="intents", labels=["billing", "new"])
    assert explicit.labels == ["billing", "new"]
    where = create_review(store, filter={"where": {"output": "answer 1"}})
    assert where.progress.items == 1
