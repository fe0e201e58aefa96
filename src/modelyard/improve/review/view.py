"""What a reviewer reads of an item, and what a decision makes of it in the new version."""

from __future__ import annotations

from typing import Any

from modelyard.improve.review.protocol import ItemView
from modelyard.improve.sources import INPUT_FIELDS, OUTPUT_FIELDS

Item = dict[str, Any]


def item_view(item: Item, label_field: str | None) -> ItemView:
    """The question (or the messages), the answer, the label and the feedback, picked from
    the fields curation and ``datasets from-log`` write (``input``, ``output``, ...)."""
    answers = tuple(name for name in OUTPUT_FIELDS if name != label_field)
    messages = item.get("messages")
    feedback = item.get("feedback")
    return ItemView(
        question=_first_text(item, INPUT_FIELDS),
        messages=messages if isinstance(messages, list) else None,
        answer=_first_text(item, answers),
        label=_text(item.get(label_field)) if label_field else None,
        corrected=_text(item.get("corrected")),
        feedback=feedback if isinstance(feedback, list) else [],
    )


def corrected(item: Item, correction: str, label_field: str | None) -> Item:
    """The item with a reviewer's correction: in ``corrected``, and in the label field of
    a labelled review."""
    changed = {**item, "corrected": correction}
    if label_field is not None:
        changed[label_field] = correction
    return changed


def _first_text(item: Item, names: tuple[str, ...]) -> str | None:
    for name in names:
        value = item.get(name)
        if isinstance(value, str):
            return value
    return None


def _text(value: object) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)
