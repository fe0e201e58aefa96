"""Cleaning rules: which rows are not material for a dataset, and why."""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import MappingProxyType

from modelyard.improve.protocol import Cleaning

A = "['\u2019]"  # an apostrophe, typed or typographic
# An answer that opens with a refusal (English and Chinese), as chat models phrase them.
REFUSAL = re.compile(
    rf"^\W*(?:(?:i{A}?m|i am) (?:so )?sorry,? but (?:i|as an ai)"
    rf"|i (?:can{A}?t|cannot|won{A}?t|am unable to|{A}?m unable to|am not able to)"
    r" (?:help|assist|provide|comply|do that|answer|fulfil)"
    rf"|as an ai(?: language model)?,? i (?:can{A}?t|cannot|am unable)"
    r"|(?:很?抱歉|对不起)，?我(?:无法|不能))",
    re.IGNORECASE,
)
# The order rules are tried in: a row dropped by one is not counted by the next.
REASONS = ("shadow", "failed", "empty", "truncated", "refused")
WHY = MappingProxyType(
    {
        "no_content": "no stored content (content logging off, or purged by retention)",
        "unreadable": "content this key ring cannot open",
        "shadow": "a shadow copy: no client saw its answer",
        "failed": "the request failed (status other than 200)",
        "empty": "no question, or no answer",
        "truncated": "the answer was cut at the token limit (finish_reason length)",
        "refused": "the model refused (finish_reason content_filter, or a refusal phrase)",
    }
)


@dataclass(frozen=True)
class RowFacts:
    """What cleaning reads of one row (a dataset item has no status: None)."""

    status: int | None
    variant: str | None
    finish_reason: str | None
    question: str
    answer: str | None


def is_refusal(facts: RowFacts) -> bool:
    if facts.finish_reason == "content_filter":
        return True
    return facts.answer is not None and REFUSAL.match(facts.answer.strip()[:200]) is not None


def unclean(facts: RowFacts, rules: Cleaning) -> str | None:
    """The first enabled rule the row breaks, or None."""
    broken = {
        "shadow": facts.variant == "shadow",
        "failed": facts.status is not None and facts.status != 200,
        "empty": not facts.question.strip()
        or (facts.status is not None and not (facts.answer or "").strip()),
        "truncated": facts.finish_reason == "length",
        "refused": is_refusal(facts),
    }
    for reason in REASONS:
        if getattr(rules, reason) and broken[reason]:
            return reason
    return None
