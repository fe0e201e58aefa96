"""A configured task on a list of items as one eval run: created first (so a trial or the
confirmation records its id before any item goes out), then run; an interrupted run is
finished where it stopped."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from modelyard.evaluate.protocol import EvalItemOut, EvalRunOut
from modelyard.evaluate.runner import create_run, run_task
from modelyard.evaluate.runs import EvalRuns
from modelyard.evaluate.tasks import Item, Task

if TYPE_CHECKING:
    import httpx


@dataclass(frozen=True)
class Evaluator:
    client: httpx.AsyncClient
    runs: EvalRuns
    actor: str
    concurrency: int = 4
    allow_train_overlap: bool = False

    async def start(self, task: Task, items: list[Item], model: str) -> int:
        """A new eval run of every item (the train-versus-eval check first)."""
        indices = list(range(len(items)))
        return await asyncio.to_thread(
            create_run,
            self.runs,
            task,
            items,
            model,
            indices,
            0,
            self.actor,
            self.allow_train_overlap,
        )

    async def finish(
        self, task: Task, items: list[Item], model: str, run_id: int
    ) -> tuple[EvalRunOut, list[EvalItemOut]]:
        """Run ``run_id`` to its end (the items it holds are not asked again)."""
        run = await run_task(
            self.client,
            self.runs,
            task,
            items,
            model,
            concurrency=self.concurrency,
            actor=self.actor,
            resume=run_id,
        )
        return run, await asyncio.to_thread(self.runs.items, run.id)
