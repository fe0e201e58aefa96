"""Review queue JSON API: an admin makes a review of a dataset version and finishes it
into a new version; reviewers (any key that reads everything: admin or viewer) take items
one at a time and decide them. Each reviewer is the caller's key."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import APIRouter, Body, FastAPI, Path, Query, Request

from modelyard.errors import error_responses
from modelyard.guard.auth import actor_of, principal_of, requires
from modelyard.guard.roles import Access
from modelyard.improve.review.finish import finish_review
from modelyard.improve.review.protocol import (
    DecisionIn,
    FinishRequest,
    ReviewCreate,
    ReviewItemList,
    ReviewList,
    ReviewOut,
    ReviewStatus,
    ReviewStep,
)
from modelyard.improve.review.queue import ReviewQueue
from modelyard.improve.review.reviews import Reviews
from modelyard.services import services_of

router = APIRouter(prefix="/api/reviews", tags=["improve"], responses=error_responses(401, 403))
READ = requires(Access.read)
ADMIN = requires(Access.admin)
# Who may read every item may review it: admins and viewers (a developer reads only its own).
REVIEW = requires(Access.admin, Access.read)
ReviewId = Annotated[int, Path(ge=1, le=2**31 - 1)]
ItemIndex = Annotated[int, Path(ge=0, le=2**31 - 1)]
Limit = Annotated[int, Query(ge=1, le=1000)]
Decided = Literal["accept", "correct", "reject", "undecided"]


def _actor(request: Request) -> str:
    return actor_of(principal_of(request))


def _queue(request: Request) -> ReviewQueue:
    return ReviewQueue(services_of(request).store)


@router.post(
    "",
    response_model=ReviewOut,
    status_code=201,
    dependencies=[ADMIN],
    responses=error_responses(400, 404),
)
async def create_review(body: ReviewCreate, request: Request) -> ReviewOut:
    """A review of one dataset version: its queue holds the items the filter selects."""
    reviews = Reviews(services_of(request).store)
    return await asyncio.to_thread(reviews.create, body, _actor(request))


@router.get("", response_model=ReviewList, dependencies=[READ])
async def list_reviews(
    request: Request, status: ReviewStatus | None = None, limit: Limit = 100
) -> ReviewList:
    """Reviews with their progress, newest first."""
    reviews = Reviews(services_of(request).store)
    return ReviewList(data=await asyncio.to_thread(reviews.list_reviews, status, limit))


@router.get(
    "/{review_id}", response_model=ReviewOut, dependencies=[READ], responses=error_responses(404)
)
async def get_review(review_id: ReviewId, request: Request) -> ReviewOut:
    """One review: its progress by decision and by reviewer, and what finishing wrote."""
    return await asyncio.to_thread(Reviews(services_of(request).store).get, review_id)


@router.get(
    "/{review_id}/items",
    response_model=ReviewItemList,
    dependencies=[READ],
    responses=error_responses(404),
)
async def list_review_items(
    review_id: ReviewId,
    request: Request,
    decision: Decided | None = None,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    limit: Limit = 100,
) -> ReviewItemList:
    """The queue's items in order, with their decision, reviewer and lease."""
    reviews = Reviews(services_of(request).store)
    return await asyncio.to_thread(reviews.items, review_id, decision, offset, limit)


@router.post(
    "/{review_id}/next",
    response_model=ReviewStep,
    dependencies=[REVIEW],
    responses=error_responses(404, 409),
)
async def next_item(review_id: ReviewId, request: Request) -> ReviewStep:
    """The item the caller holds (its lease renewed), else the next free one, leased to
    the caller; ``item`` is null when nothing is left for them."""
    return await asyncio.to_thread(_queue(request).next, review_id, _actor(request))


@router.post(
    "/{review_id}/items/{item_index}/lease",
    response_model=ReviewStep,
    dependencies=[REVIEW],
    responses=error_responses(404, 409),
)
async def lease_item(review_id: ReviewId, item_index: ItemIndex, request: Request) -> ReviewStep:
    """Hold one item (to decide it, or change its decision), or renew the hold; 409 while
    another reviewer holds it."""
    queue = _queue(request)
    return await asyncio.to_thread(queue.lease, review_id, item_index, _actor(request))


@router.post(
    "/{review_id}/items/{item_index}/decision",
    response_model=ReviewStep,
    dependencies=[REVIEW],
    responses=error_responses(400, 404, 409),
)
async def decide_item(
    review_id: ReviewId,
    item_index: ItemIndex,
    body: Annotated[DecisionIn, Body()],
    request: Request,
) -> ReviewStep:
    """Accept, correct (the answer, or the label of a labelled review) or reject an item,
    or skip it (it goes back to the queue for others). A decided item can be decided
    again."""
    queue = _queue(request)
    return await asyncio.to_thread(queue.decide, review_id, item_index, body, _actor(request))


@router.post(
    "/{review_id}/undo",
    response_model=ReviewStep,
    dependencies=[REVIEW],
    responses=error_responses(404, 409),
)
async def undo_step(review_id: ReviewId, request: Request) -> ReviewStep:
    """Take back the caller's latest decision or skip; the item is theirs again."""
    return await asyncio.to_thread(_queue(request).undo, review_id, _actor(request))


@router.post(
    "/{review_id}/finish",
    response_model=ReviewOut,
    dependencies=[ADMIN],
    responses=error_responses(400, 404, 409),
)
async def finish(review_id: ReviewId, body: FinishRequest, request: Request) -> ReviewOut:
    """Write the decisions as a new version of the dataset and close the review."""
    store = services_of(request).store
    return await asyncio.to_thread(finish_review, store, review_id, body, _actor(request))


def attach(app: FastAPI) -> None:
    app.include_router(router)
