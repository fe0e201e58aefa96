"""The train-versus-eval overlap check: an eval run refuses items that a curated dataset's
training split holds, since a model tuned or distilled on them would be graded on what it
has seen.

An item's text is compared by *fingerprint*: the SHA-256 of the text normalized (Unicode
NFKC, case-folded, whitespace collapsed), so "Where is my card?" and "where is  my CARD?"
are one text. A curated item's fingerprint is that of its ``input``, stored with the item;
an eval item's are those of the prompt the task renders from it and of each field the
prompt template reads."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable, Collection
from typing import Any

from jinja2 import meta

from modelyard.errors import ModelyardError
from modelyard.evaluate.tasks import Item, Task, messages_for
from modelyard.evaluate.tasks.loading import environment

SPACES = re.compile(r"\s+")
EXAMPLES = 3  # overlapping texts named in the error

# fingerprints -> {"name@version" of a curated dataset: the fingerprints its train split holds}
TrainingOverlap = Callable[[Collection[str]], dict[str, set[str]]]


class TrainEvalOverlap(ModelyardError, ValueError):
    """An eval run over items that a curated dataset trains on."""

    status = 409
    code = "train_eval_overlap"
    param = "dataset"


def normalized(text: str) -> str:
    """What two texts that are "the same" have in common: NFKC, case-folded, single spaces."""
    return SPACES.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def fingerprint(text: str) -> str:
    return hashlib.sha256(normalized(text).encode("utf-8")).hexdigest()


def prompt_fields(task: Task) -> set[str]:
    """The item fields the task's prompt template reads."""
    return set(meta.find_undeclared_variables(environment().parse(task.prompt.template)))


def item_texts(task: Task, item: Item, fields: set[str]) -> list[str]:
    """What the model is shown of ``item``: its rendered prompt and the template's fields."""
    rendered = str(messages_for(task, item, [])[-1]["content"])
    return [rendered, *(str(item[f]) for f in sorted(fields) if isinstance(item.get(f), str))]


def check_overlap(
    task: Task, items: list[Item], indices: list[int], overlap: TrainingOverlap, allow: bool
) -> dict[str, Any]:
    """What the run records of the check; TrainEvalOverlap when an item is a training item
    of a curated dataset, unless ``allow`` (then the overlap is recorded)."""
    fields = prompt_fields(task)
    by_print: dict[str, int] = {}
    for index in indices:
        for text in item_texts(task, items[index], fields):
            if normalized(text):
                by_print.setdefault(fingerprint(text), index)
    found = overlap(by_print.keys())
    hits = sorted({by_print[p] for prints in found.values() for p in prints})
    record = {"checked": len(indices), "overlapping": len(hits), "datasets": sorted(found)}
    if hits and not allow:
        shown = ", ".join(str(i) for i in hits[:EXAMPLES])
        raise TrainEvalOverlap(
            f"{len(hits)} of the {len(indices)} eval items (item {shown}"
            f"{', …' if len(hits) > EXAMPLES else ''}) are in the train split of "
            f"{', '.join(sorted(found))}: evaluate on its dev or test split "
            "(dataset.split in the task), or pass --allow-train-overlap to grade seen items"
        )
    return {**record, "allowed": allow and bool(hits)}
