"""PII scrubbing of a curated item with the guard's detector: each value replaced by a
placeholder (``<EMAIL_1>``), the same value by the same placeholder in all of the item's
texts (question, messages, answer, correction, feedback comments)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from modelyard.guard.pii import PiiDetector, Redaction

Item = dict[str, Any]
TEXT_FIELDS = ("input", "prompt", "output", "corrected")


def scrub_item(item: Item, detector: PiiDetector) -> dict[str, int]:
    """Scrub ``item`` in place; the distinct values found, by entity type (a value in
    both the question and the messages it comes from counts once)."""
    redaction = Redaction(detector)
    for name in TEXT_FIELDS:
        if isinstance(item.get(name), str):
            item[name] = redaction.redact(item[name])
    for message in item.get("messages") or []:
        if isinstance(message, dict):
            message["content"] = _scrub_content(message.get("content"), redaction)
    for given in item.get("feedback") or []:
        if isinstance(given, dict) and isinstance(given.get("comment"), str):
            given["comment"] = redaction.redact(given["comment"])
    return dict(Counter(_entity(p) for p in redaction.placeholders))


def _entity(placeholder: str) -> str:
    """``<CREDIT_CARD_2>`` -> ``CREDIT_CARD``."""
    return placeholder.strip("<>").rsplit("_", 1)[0]


def scrub_text(text: str, detector: PiiDetector) -> str:
    return Redaction(detector).redact(text)


def _scrub_content(content: Any, redaction: Redaction) -> Any:
    """A message's content: a string, or parts of which the text parts are scrubbed."""
    if isinstance(content, str):
        return redaction.redact(content)
    if isinstance(content, list):
        return [
            {**part, "text": redaction.redact(part["text"])}
            if isinstance(part, dict) and isinstance(part.get("text"), str)
            else part
            for part in content
        ]
    return content
