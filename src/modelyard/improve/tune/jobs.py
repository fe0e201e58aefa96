"""The studies a server runs in the background: each an asyncio task, kept here so that a
stop, or the app's shutdown, cancels it (the study is then ``interrupted``, every trial it
stored kept), and each sending its items through the app itself, as the caller who
started it: that key's role, limits and budget apply to every trial's requests."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Mapping
from typing import Any

from modelyard.improve.tune.errors import StudyBusy
from modelyard.improve.tune.measure import version_parameters
from modelyard.improve.tune.runner import StudyRunner
from modelyard.improve.tune.students import Trainers
from modelyard.improve.tune.studies import Studies
from modelyard.jobs import gateway_client
from modelyard.registry import Registry

log = logging.getLogger(__name__)


class TuneJobs:
    def __init__(self, trainers: Trainers | None = None) -> None:
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self.trainers: Trainers = dict(trainers or {})

    def running(self, study_id: int) -> bool:
        return study_id in self._tasks

    def start(
        self,
        app: Any,
        study_id: int,
        studies: Studies,
        headers: Mapping[str, str],
        actor: str,
        timeout_s: float,
    ) -> None:
        """Run study ``study_id`` in the background through the ASGI ``app``, with the
        credentials found in ``headers`` (the caller's request)."""
        if self.running(study_id):
            raise StudyBusy(f"study {study_id} is running already")
        work = self._run(app, study_id, studies, headers, actor, timeout_s)
        task = asyncio.create_task(work, name=f"tune study {study_id}")
        self._tasks[study_id] = task
        task.add_done_callback(functools.partial(self._ended, study_id))

    async def _run(
        self,
        app: Any,
        study_id: int,
        studies: Studies,
        headers: Mapping[str, str],
        actor: str,
        timeout_s: float,
    ) -> None:
        async with gateway_client(app, headers, timeout_s) as client:
            parameters = version_parameters(Registry(studies.store))
            runner = StudyRunner(client, studies, actor, parameters, self.trainers)
            await runner.run(study_id)

    def _ended(self, study_id: int, task: asyncio.Task[None]) -> None:
        self._tasks.pop(study_id, None)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("study %s stopped by an unexpected error", study_id, exc_info=error)

    async def stop(self, study_id: int) -> None:
        """Cancel study ``study_id`` and wait until it has written that it stopped."""
        task = self._tasks.get(study_id)
        if task is None:
            raise StudyBusy(f"study {study_id} is not running on this server")
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    async def aclose(self) -> None:
        """Cancel every study (the app is stopping): each is left ``interrupted``."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
