"""What a review refuses, each with its status and code."""

from __future__ import annotations

from modelyard.errors import ModelyardError


class ReviewError(ModelyardError):
    """Any refusal of a review (the CLI prints its message)."""


class InvalidReview(ReviewError, ValueError):
    """A review that cannot be made as asked; ``param`` names the field to change."""

    status = 400
    code = "invalid_review"


class InvalidDecision(ReviewError, ValueError):
    status = 400
    code = "invalid_decision"


class UndecidedItems(ReviewError, ValueError):
    """Finishing with undecided items needs to be told whether to keep them."""

    status = 400
    code = "undecided_items"
    param = "undecided"


class ReviewNotFound(ReviewError, LookupError):
    status = 404
    code = "review_not_found"

    def __init__(self, review_id: int) -> None:
        super().__init__(f"no review {review_id} (see GET /api/reviews)")


class ReviewItemNotFound(ReviewError, LookupError):
    status = 404
    code = "review_item_not_found"

    def __init__(self, review_id: int, index: int) -> None:
        super().__init__(f"review {review_id} has no item {index} (its filter left it out)")


class ReviewFinished(ReviewError):
    status = 409
    code = "review_finished"

    def __init__(self, review_id: int) -> None:
        super().__init__(f"review {review_id} is finished: start a new review to change more")


class ItemLeased(ReviewError):
    """Another reviewer holds the item (their lease has not expired)."""

    status = 409
    code = "item_leased"


class NothingToUndo(ReviewError):
    status = 409
    code = "nothing_to_undo"


class DecisionChanged(ReviewError):
    """The decision to undo was replaced since by someone else's."""

    status = 409
    code = "decision_changed"
