"""Leases, decisions and undo on SQLite and PostgreSQL: two reviewers never hold the same
item, an expired lease hands the item back, a skip hands it to others, a decision can be
changed and a reviewer's latest step undone."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from modelyard.improve.review.errors import (
    DecisionChanged,
    InvalidDecision,
    ItemLeased,
    NothingToUndo,
    ReviewItemNotFound,
    ReviewNotFound,
)
from modelyard.improve.review.protocol import Accept, Correct, Reject, Skip
from modelyard.improve.review.queue import ReviewQueue
from modelyard.improve.review.reviews import Reviews
from modelyard.store import Store
from tests.improve.review.items import Clock, create_review, register_answers, register_labelled

ANN, BOB, CLEO = "ann", "bob", "cleo"


@pytest.fixture
def clock() -> Clock:
    return Clock()


def index_of(queue: ReviewQueue, review_id: int, reviewer: str) -> int | None:
    step = queue.next(review_id, reviewer)
    return None if step.item is None else step.item.index


def test_two_reviewers_never_hold_the_same_item(store: Store, clock: Clock) -> None:
    register_answers(store, 4)
    review = create_review(store, clock)
    queue = ReviewQueue(store, clock)
    ann, bob = queue.next(review.id, ANN), queue.next(review.id, BOB)
    assert ann.item is not None and bob.item is not None
    assert (ann.item.index, bob.item.index) == (0, 1)
    assert ann.item.leased_by == ANN and ann.item.lease_expires_at is not None
    assert ann.item.data["input"] == "What is question 0?"
    assert ann.item.view.question == "What is question 0?"
    assert ann.item.view.answer == "answer 0"
    assert bob.progress.leased == 2 and bob.progress.remaining == 4
    # Asking again gives each the item they hold, not another.
    assert index_of(queue, review.id, ANN) == 0
    assert index_of(queue, review.id, BOB) == 1
    with pytest.raises(ItemLeased, match="held by ann"):
        queue.decide(review.id, 0, Accept(decision="accept"), BOB)
    with pytest.raises(ItemLeased):
        queue.lease(review.id, 0, BOB)


def test_many_reviewers_asking_at_once_get_distinct_items(store: Store) -> None:
    register_answers(store, 12)
    review = create_review(store)
    queue = ReviewQueue(store)
    reviewers = [f"reviewer-{n}" for n in range(12)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        taken = list(pool.map(lambda who: index_of(queue, review.id, who), reviewers))
    assert sorted(i for i in taken if i is not None) == list(range(12))
    assert index_of(queue, review.id, "reviewer-late") is None


def test_an_expired_lease_returns_the_item_to_the_queue(store: Store, clock: Clock) -> None:
    register_answers(store, 2)
    review = create_review(store, clock, lease_minutes=10)
    queue = ReviewQueue(store, clock)
    assert index_of(queue, review.id, ANN) == 0
    clock.advance(9)
    assert index_of(queue, review.id, BOB) == 1  # ann's lease still holds item 0
    clock.advance(9)  # ann's lease (renewed at 0, not since) is over; bob's holds
    assert index_of(queue, review.id, CLEO) == 0
    # Ann comes back: item 0 is cleo's now, and nothing else is free.
    step = queue.next(review.id, ANN)
    assert step.item is None and "held by other reviewers" in step.message
    with pytest.raises(ItemLeased):
        queue.decide(review.id, 0, Accept(decision="accept"), ANN)


def test_activity_renews_the_lease(store: Store, clock: Clock) -> None:
    register_answers(store, 2)
    review = create_review(store, clock, lease_minutes=10)
    queue = ReviewQueue(store, clock)
    assert index_of(queue, review.id, ANN) == 0
    for _ in range(3):
        clock.advance(8)
        renewed = queue.lease(review.id, 0, ANN)  # what the console sends on activity
        assert renewed.item is not None
        assert renewed.item.lease_expires_at == clock.now + timedelta(minutes=10)
    assert index_of(queue, review.id, BOB) == 1


def test_a_skip_hands_the_item_to_others_and_the_skipper_goes_on(
    store: Store, clock: Clock
) -> None:
    register_answers(store, 3)
    review = create_review(store, clock)
    queue = ReviewQueue(store, clock)
    assert index_of(queue, review.id, ANN) == 0
    skipped = queue.decide(review.id, 0, Skip(decision="skip"), ANN)
    assert skipped.item is not None and skipped.item.decision is None
    assert skipped.item.leased_by is None and skipped.item.skipped_before
    assert index_of(queue, review.id, ANN) == 1  # ann goes on
    assert index_of(queue, review.id, BOB) == 0  # item 0 went back to the queue
    queue.decide(review.id, 1, Accept(decision="accept"), ANN)
    assert index_of(queue, review.id, ANN) == 2
    queue.decide(review.id, 2, Accept(decision="accept"), ANN)
    # Only items ann skipped are left (bob holds item 0): none for her now.
    assert index_of(queue, review.id, ANN) is None
    queue.decide(review.id, 0, Skip(decision="skip"), BOB)
    again = queue.next(review.id, ANN)  # what she skipped comes back, last
    assert again.item is not None and again.item.index == 0 and again.item.skipped_before
    counts = again.progress.by_reviewer
    assert counts[ANN].skip == 1 and counts[ANN].accept == 2 and counts[BOB].skip == 1
    assert again.progress.by_decision.skip == 2 and again.progress.decided == 2


def test_decisions_progress_and_changing_a_decision(store: Store, clock: Clock) -> None:
    register_answers(store, 4)
    review = create_review(store, clock)
    queue = ReviewQueue(store, clock)
    queue.decide(review.id, 0, Accept(decision="accept"), ANN)
    queue.decide(review.id, 1, Correct(decision="correct", correction="better 1"), ANN)
    step = queue.decide(review.id, 2, Reject(decision="reject"), BOB)
    assert step.item is not None and step.item.decision == "reject"
    assert step.item.decided_by == BOB and step.item.decided_at == clock.now
    progress = step.progress
    assert (progress.items, progress.decided, progress.remaining) == (4, 3, 1)
    assert progress.by_decision.model_dump() == {"accept": 1, "correct": 1, "reject": 1, "skip": 0}
    assert progress.by_reviewer[ANN].correct == 1 and progress.by_reviewer[BOB].reject == 1
    # Bob changes ann's acceptance: a decided item can be decided again.
    changed = queue.decide(review.id, 0, Reject(decision="reject"), BOB)
    assert changed.progress.by_decision.reject == 2 and changed.progress.decided == 3
    assert index_of(queue, review.id, CLEO) == 3  # decided items are not handed out
    listed = Reviews(store, clock).items(review.id, "reject").data
    assert [(s.index, s.decided_by) for s in listed] == [(0, BOB), (2, BOB)]
    assert [s.index for s in Reviews(store, clock).items(review.id, "undecided").data] == [3]


def test_undo_restores_the_state_before_and_hands_the_item_back(store: Store, clock: Clock) -> None:
    register_answers(store, 3)
    review = create_review(store, clock)
    queue = ReviewQueue(store, clock)
    queue.decide(review.id, 0, Correct(decision="correct", correction="first"), ANN)
    queue.decide(review.id, 0, Correct(decision="correct", correction="second"), ANN)
    queue.decide(review.id, 1, Skip(decision="skip"), ANN)
    undone = queue.undo(review.id, ANN)  # the skip
    assert undone.item is not None and undone.item.index == 1
    assert undone.item.leased_by == ANN and not undone.item.skipped_before
    undone = queue.undo(review.id, ANN)  # the second correction: the first is back
    assert undone.item is not None and undone.item.index == 0
    assert undone.item.decision == "correct" and undone.item.correction == "first"
    assert undone.item.leased_by == ANN
    assert queue.next(review.id, ANN).item is not None  # she holds one item at a time
    undone = queue.undo(review.id, ANN)  # the first correction: undecided again
    assert undone.item is not None and undone.item.decision is None
    assert undone.item.correction is None and undone.item.decided_by is None
    assert undone.progress.decided == 0
    with pytest.raises(NothingToUndo):
        queue.undo(review.id, ANN)


def test_undo_refuses_a_decision_someone_replaced(store: Store, clock: Clock) -> None:
    register_answers(store, 2)
    review = create_review(store, clock)
    queue = ReviewQueue(store, clock)
    queue.decide(review.id, 0, Accept(decision="accept"), ANN)
    queue.decide(review.id, 0, Reject(decision="reject"), BOB)
    with pytest.raises(DecisionChanged, match="by bob"):
        queue.undo(review.id, ANN)
    queue.lease(review.id, 0, BOB)
    assert queue.undo(review.id, BOB).item is not None  # bob's own step: back to accepted
    assert Reviews(store, clock).items(review.id).data[0].decision == "accept"


def test_a_labelled_review_takes_labels_of_its_set(store: Store, clock: Clock) -> None:
    register_labelled(store, 6)
    review = create_review(store, clock, dataset="intents")
    assert review.label_field == "label" and review.labels == ["billing", "cards", "travel"]
    queue = ReviewQueue(store, clock)
    step = queue.next(review.id, ANN)
    assert step.item is not None and step.item.view.label == "billing"
    assert step.item.view.question == "message 0"
    with pytest.raises(InvalidDecision) as refused:
        queue.decide(review.id, 0, Correct(decision="correct", correction="bills"), ANN)
    assert refused.value.param == "correction" and "billing, cards, travel" in str(refused.value)
    done = queue.decide(review.id, 0, Correct(decision="correct", correction="cards"), ANN)
    assert done.item is not None and done.item.correction == "cards"


def test_unknown_reviews_and_items(store: Store) -> None:
    register_answers(store, 4)
    review = create_review(store, filter={"split": "test"})
    queue = ReviewQueue(store)
    with pytest.raises(ReviewNotFound):
        queue.next(review.id + 1, ANN)
    with pytest.raises(ReviewItemNotFound, match="has no item 0"):  # a train item
        queue.decide(review.id, 0, Accept(decision="accept"), ANN)
    assert index_of(queue, review.id, ANN) == 1
