"""Starting an eval run over the API. The task comes in the request (a JSON object, or a
task file's YAML text) and reads a registered dataset: a server reads no file a request
names. Everything a task file is checked for is checked, and the run is created (the
train-versus-eval check included) before the caller is answered; its items then go
through the serving path in the background, as the caller, exactly as the CLI sends them.

httpx is imported by the caller that makes the client (issue 8)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

import yaml
from pydantic import ValidationError

from modelyard.errors import ModelyardError
from modelyard.evaluate.datasets import DatasetService
from modelyard.evaluate.metrics import METRICS
from modelyard.evaluate.protocol import EvalRunOut, EvalRunRequest
from modelyard.evaluate.runner import create_run, run_task
from modelyard.evaluate.runs import EvalRuns, sample
from modelyard.evaluate.tasks import Item, Task, TaskError
from modelyard.evaluate.tasks.loading import RegisteredItems, check, registered_items, split_items
from modelyard.store import Store

if TYPE_CHECKING:
    import httpx


class InvalidTask(ModelyardError, ValueError):
    """A task sent that cannot run; ``param`` names the field to change."""

    status = 400
    code = "invalid_task"


@dataclass(frozen=True)
class StartedRun:
    """A run created and not asked yet: what its background job needs."""

    run: EvalRunOut
    task: Task
    items: list[Item]


def start_run(store: Store, body: EvalRunRequest, actor: str) -> StartedRun:
    """The run ``body`` asks for, created once every check passed (on a worker thread);
    InvalidTask otherwise, or TrainEvalOverlap (409) for items a curated dataset trains on
    unless ``body.allow_train_overlap``."""
    task, field = task_of(body)
    items = task_items(task, field, DatasetService(store).latest_items)
    runs = EvalRuns(store)
    indices = sample(len(items), body.limit, body.seed)
    run_id = create_run(
        runs, task, items, body.model, indices, body.seed, actor, body.allow_train_overlap
    )
    return StartedRun(runs.get(run_id), task, items)


def task_of(body: EvalRunRequest) -> tuple[Task, str]:
    """The task sent, and the field that holds it (``task`` or ``task_yaml``)."""
    if (body.task is None) == (body.task_yaml is None):
        raise InvalidTask(
            "give the task as `task` (a JSON object) or as `task_yaml` (a task file's text): "
            "one of them",
            param="task",
        )
    if body.task is not None:
        return body.task, "task"
    try:
        raw = yaml.safe_load(body.task_yaml or "")
    except yaml.YAMLError as error:
        raise InvalidTask(f"task_yaml is not valid YAML: {error}", param="task_yaml") from error
    if not isinstance(raw, dict):
        raise InvalidTask(
            "task_yaml must hold a mapping (name, dataset, prompt, target, metrics)",
            param="task_yaml",
        )
    try:
        return Task.model_validate(raw), "task_yaml"
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise InvalidTask(
            f"task_yaml: {where}: {first['msg']}", param=f"task_yaml.{where}"
        ) from error


def task_items(task: Task, field: str, registered: RegisteredItems) -> list[Item]:
    """The items ``task`` runs on, checked as a task file's are (``load_task``)."""
    if task.dataset.registered is None:
        raise InvalidTask(
            f"{field}.dataset.path: a run started over the API reads registered datasets only "
            "(`modelyard datasets add NAME FILE`, then dataset: {registered: NAME})",
            param=f"{field}.dataset.path",
        )
    try:
        items = split_items(task.dataset, registered_items(task.dataset.registered, registered))
    except TaskError as error:
        raise InvalidTask(str(error), param=f"{field}.dataset") from error
    try:
        check(task, items, set(METRICS))
    except TaskError as error:
        raise InvalidTask(str(error), param=field) from error
    return items


async def finish_started(
    client: httpx.AsyncClient, store: Store, started: StartedRun, concurrency: int
) -> EvalRunOut:
    """Ask every item of ``started`` through ``client`` (closed at the end) and score the
    answers. A run that stops on the way (an error, the server stopping) is recorded as
    ``failed`` with the reason, its answers so far kept for ``--resume``."""
    runs, run = EvalRuns(store), started.run
    async with client:
        try:
            return await run_task(
                client,
                runs,
                started.task,
                started.items,
                run.model,
                concurrency=concurrency,
                actor=run.created_by,
                resume=run.id,
            )
        except asyncio.CancelledError:
            await asyncio.to_thread(runs.fail, run.id, f"stopped with the server; {_resume(run)}")
            raise
        except Exception as error:  # recorded, then logged with its traceback by the jobs
            why = str(error) or type(error).__name__
            await asyncio.to_thread(runs.fail, run.id, f"{why}; {_resume(run)}")
            raise


def _resume(run: EvalRunOut) -> str:
    return f"`modelyard eval run TASK.yaml -m {run.model} --resume {run.id}` finishes it"
