"""A stored answer: what a hit gives back instead of the engine's generation."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    """An answer's text as the model produced it (redacted where the route redacts: the
    hit's own request restores its own values), how it ended, and its usage."""

    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int

    def dumps(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def loads(cls, raw: str | bytes) -> CachedAnswer | None:
        """The answer stored as ``raw``; None when it is not one (an older format)."""
        try:
            data = json.loads(raw)
            return cls(
                str(data["text"]),
                str(data["finish_reason"]),
                int(data["prompt_tokens"]),
                int(data["completion_tokens"]),
            )
        except (ValueError, KeyError, TypeError):
            return None
