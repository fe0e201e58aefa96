"""What a teacher is asked for an item, and which label its answer is.

The label set goes in the system message and the item's text is the user message, so the
teacher reads the same instructions for every item (a prompt cache reads them once) and a
student, which classifies the last user message, is asked exactly what the teacher was.

An answer is mapped to a label in this order: the answer itself (stripped of spaces,
quotes, a trailing full stop); the same compared loosely (case, and ``_``, ``-`` and spaces
alike); the one label the answer names as a whole word or phrase (the longest, when one
label's name holds another's). Anything else is *outside the label set*: the item is left
out of the labelled version and counted as ``unmapped``, its answer kept with the run.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from jinja2 import TemplateError

from modelyard.evaluate.tasks.loading import environment
from modelyard.improve.distil.errors import InvalidLabelling

DEFAULT_SYSTEM = (
    "Classify the user's message into exactly one of these labels:\n"
    "{% for label in labels %}{{ label }}\n{% endfor %}"
    "Answer with the label only, written exactly as above."
)
# Where an item's text is, in order of preference (as curation reads items).
INPUT_FIELDS = ("input", "text", "question", "prompt")
_LOOSE = re.compile(r"[\s_\-]+")
_PUNCTUATION = re.compile(r"[^\w\s-]")
_EDGES = " \t\r\n\"'`.*:"


def input_field_of(item: dict[str, Any], asked: str | None) -> str:
    """The field that holds an item's text: ``asked``, or the first of INPUT_FIELDS."""
    if asked is not None:
        return asked
    for name in INPUT_FIELDS:
        if isinstance(item.get(name), str):
            return name
    raise InvalidLabelling(
        f"the items have none of the fields {', '.join(INPUT_FIELDS)}: name the text's "
        "field (input_field)",
        param="input_field",
    )


@dataclass(frozen=True)
class LabelPrompt:
    """The messages a teacher is sent for an item."""

    system: str
    template: str
    labels: tuple[str, ...]
    input_field: str

    def messages(self, item: dict[str, Any]) -> list[dict[str, str]]:
        env = environment()
        text = item.get(self.input_field)
        context = {**item, "input": "" if text is None else str(text), "labels": self.labels}
        try:
            system = env.from_string(self.system).render(context)
            user = env.from_string(self.template).render(context)
        except TemplateError as error:
            raise InvalidLabelling(f"the prompt cannot be rendered: {error}") from None
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def loose(text: str) -> str:
    return _LOOSE.sub(" ", text.casefold()).strip()


def map_answer(answer: str, labels: Sequence[str]) -> str | None:
    """The label ``answer`` gives, or None when it gives none (or several)."""
    stripped = answer.strip().strip(_EDGES).strip()
    if stripped in labels:
        return stripped
    by_loose = {loose(label): label for label in labels}
    found = by_loose.get(loose(stripped))
    if found is not None:
        return found
    said = f" {loose(_PUNCTUATION.sub(' ', answer))} "
    named = [label for key, label in by_loose.items() if key and f" {key} " in said]
    longest = [a for a in named if not any(a != b and loose(a) in loose(b) for b in named)]
    return longest[0] if len(longest) == 1 else None
