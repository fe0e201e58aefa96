"""Which items the search runs on, and which only the confirmation sees: the split the task
names and a held-out split, or a seeded partition when the dataset has no splits. A
held-out item whose prompt a searched item has too is left out, so the confirmation grades
nothing the search saw."""

from __future__ import annotations

import random
from dataclasses import dataclass

from jinja2 import TemplateError

from modelyard.evaluate.contamination import fingerprint
from modelyard.evaluate.tasks import Item, Task, messages_for
from modelyard.improve.tune.errors import InvalidStudy
from modelyard.improve.tune.protocol import Partition, StudyRequest

MIN_ITEMS = 2  # on each side: a paired comparison of one item says nothing
DEFAULT_HOLDOUT = "test"


@dataclass(frozen=True)
class Split:
    search: list[Item]
    holdout: list[Item]
    out: Partition


def partition(request: StudyRequest, items: list[Item]) -> Split:
    """The searched and held-out items of ``items`` (every item of the task's dataset)."""
    if request.task.dataset.split is not None or request.holdout_split is not None:
        split = _by_split(request, items)
    else:
        split = _seeded(request, items)
    return _unseen(request.task, split)


def _by_split(request: StudyRequest, items: list[Item]) -> Split:
    searched, held = request.task.dataset.split, request.holdout_split or DEFAULT_HOLDOUT
    if searched == held:
        raise InvalidStudy(
            f"holdout_split '{held}' is the split searched (task.dataset.split): name another",
            param="holdout_split",
        )
    found = ", ".join(sorted({str(item.get("split")) for item in items}))
    holdout = [item for item in items if item.get("split") == held]
    if not holdout:
        raise InvalidStudy(
            f"holdout_split '{held}': no item has it (the items' splits: {found})",
            param="holdout_split",
        )
    if searched is None:
        search = [item for item in items if item.get("split") != held]
        what = f"every split but {held}"
    else:
        search = [item for item in items if item.get("split") == searched]
        what = f"split {searched}"
    if not search:
        raise InvalidStudy(f"task.dataset.split '{searched}': no item has it", param="task")
    out = Partition(
        how="splits",
        search=what,
        holdout=f"split {held}",
        search_items=len(search),
        holdout_items=len(holdout),
        duplicates_dropped=0,
    )
    return Split(search, holdout, out)


def _seeded(request: StudyRequest, items: list[Item]) -> Split:
    order = list(range(len(items)))
    random.Random(request.seed).shuffle(order)
    held = set(order[: max(1, round(request.holdout_share * len(items)))])
    holdout = [item for index, item in enumerate(items) if index in held]
    search = [item for index, item in enumerate(items) if index not in held]
    share = f"{request.holdout_share:.0%}"
    out = Partition(
        how="seeded",
        search=f"the other items (of {len(items)})",
        holdout=f"{share} of the items, drawn with seed {request.seed}",
        search_items=len(search),
        holdout_items=len(holdout),
        duplicates_dropped=0,
    )
    return Split(search, holdout, out)


def _unseen(task: Task, split: Split) -> Split:
    """``split`` without the held-out items whose prompt a searched item has too."""
    seen = {_print(task, item) for item in split.search}
    holdout = [item for item in split.holdout if _print(task, item) not in seen]
    for side, kept in (("search", split.search), ("holdout", holdout)):
        if len(kept) < MIN_ITEMS:
            param = "holdout_share"  # a seeded partition: the share decides both sides
            if split.out.how == "splits":
                param = "task" if side == "search" else "holdout_split"
            raise InvalidStudy(
                f"the {side} side has {len(kept)} item(s) ({split.out.search} / "
                f"{split.out.holdout}); each side needs at least {MIN_ITEMS}",
                param=param,
            )
    dropped = len(split.holdout) - len(holdout)
    out = split.out.model_copy(
        update={"holdout_items": len(holdout), "duplicates_dropped": dropped}
    )
    return Split(split.search, holdout, out)


def _print(task: Task, item: Item) -> str:
    try:
        return fingerprint(str(messages_for(task, item, [])[-1]["content"]))
    except TemplateError as error:
        raise InvalidStudy(
            f"task.prompt.template cannot be rendered for an item: {error}",
            param="task.prompt.template",
        ) from error
