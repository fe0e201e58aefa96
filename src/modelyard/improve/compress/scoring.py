"""A compression's eval stage: the request's task run on the parent and on each variant
(the same sample of items, through the serving path as the caller who started it), and each
variant's per-item scores compared with the parent's (paired bootstrap, McNemar)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelyard.evaluate.compare import compare
from modelyard.evaluate.datasets import DatasetService
from modelyard.evaluate.protocol import EvalRunOut, EvalRunRequest
from modelyard.evaluate.runner import run_task
from modelyard.evaluate.runs import EvalRuns
from modelyard.evaluate.start import task_items, task_of
from modelyard.evaluate.tasks import Item, Task
from modelyard.improve.compress.protocol import CompressEval
from modelyard.store import Store

if TYPE_CHECKING:
    import httpx

# Opens a client of the serving path (the app itself, or one started in-process).
ClientFactory = Callable[[], AbstractAsyncContextManager["httpx.AsyncClient"]]


@dataclass(frozen=True)
class Scored:
    run: EvalRunOut
    measurements: dict[str, float]  # eval_<metric>: each numeric metric's value


def eval_task(store: Store, spec: CompressEval) -> tuple[Task, list[Item]]:
    """The task and its items, checked as ``POST /api/eval/runs`` checks them (InvalidTask
    names the field); registered datasets only."""
    task, field = task_of(EvalRunRequest(task=spec.task, task_yaml=spec.task_yaml))
    return task, task_items(task, f"eval.{field}", DatasetService(store).latest_items)


async def score_rows(
    client: httpx.AsyncClient,
    store: Store,
    spec: CompressEval,
    models: list[str],
    actor: str,
) -> list[Scored]:
    """One eval run per model (``name@version``), in order, on the same items."""
    task, items = await asyncio.to_thread(eval_task, store, spec)
    runs = EvalRuns(store)
    scored = []
    for model in models:
        run = await run_task(
            client,
            runs,
            task,
            items,
            model,
            limit=spec.limit,
            seed=spec.seed,
            concurrency=spec.concurrency,
            actor=actor,
        )
        values = {
            f"eval_{name}": float(result["value"])
            for name, result in run.metrics.items()
            if isinstance(result, dict) and isinstance(result.get("value"), int | float)
        }
        scored.append(Scored(run, values))
    return scored


def compare_scores(
    store: Store, spec: CompressEval, parent: Scored, variant: Scored
) -> dict[str, Any]:
    """The variant's run against the parent's, item by item (blocking: a worker thread)."""
    task, _ = eval_task(store, spec)
    runs = EvalRuns(store)
    result = compare(
        task, parent.run, runs.items(parent.run.id), variant.run, runs.items(variant.run.id)
    )
    return {"task": task.name, "parent_run": parent.run.id, "variant_run": variant.run.id, **result}
