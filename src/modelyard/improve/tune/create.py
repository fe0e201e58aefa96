"""Opening a study: its items read, split into searched and held-out ones, everything a
trial could fail on checked, and the study stored, before any request is sent."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from modelyard.evaluate.contamination import check_overlap
from modelyard.evaluate.datasets import DatasetService
from modelyard.evaluate.tasks import Item, Task, TaskError
from modelyard.evaluate.tasks.loading import RegisteredItems, load_items, registered_items
from modelyard.improve.tune.errors import InvalidStudy
from modelyard.improve.tune.partition import partition
from modelyard.improve.tune.protocol import StudyRequest
from modelyard.improve.tune.space import check_study
from modelyard.improve.tune.studies import Studies
from modelyard.store import Store

MAX_ITEMS = 20_000  # each trial runs every searched item through the model


def items_of(task: Task, base: Path | None, registered: RegisteredItems) -> list[Item]:
    """Every item of the task's dataset, all splits (``base``: the directory a file path is
    relative to; None where files may not be read, as over the API)."""
    try:
        if task.dataset.registered is not None:
            items = registered_items(task.dataset.registered, registered)
            items = items[: task.dataset.limit] if task.dataset.limit else items
        elif base is None:
            raise InvalidStudy(
                "task.dataset.path: a study over the API reads registered datasets only "
                "(`modelyard datasets add`, then task.dataset.registered)",
                param="task.dataset.path",
            )
        else:
            items = load_items(task.dataset, base)
    except TaskError as error:
        raise InvalidStudy(str(error), param="task.dataset") from error
    if len(items) > MAX_ITEMS:
        raise InvalidStudy(
            f"the dataset has {len(items)} items; a study takes at most {MAX_ITEMS} "
            "(set task.dataset.limit)",
            param="task.dataset.limit",
        )
    return items


def create_study(
    store: Store,
    request: StudyRequest,
    items: list[Item],
    trainers: Collection[str],
    actor: str,
) -> int:
    """The new study's id, once its items split and every check passed (InvalidStudy,
    or TrainEvalOverlap for items a curated dataset trains on, otherwise)."""
    split = partition(request, items)
    objective = check_study(request, split.search, split.holdout, trainers)
    training = DatasetService(store).training_overlap
    for side in (split.search, split.holdout):
        indices = list(range(len(side)))
        check_overlap(request.task, side, indices, training, request.allow_train_overlap)
    return Studies(store).create(request, split, objective, actor)
