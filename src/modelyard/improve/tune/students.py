"""The extension point for a student's hyper-parameters: a trainer, registered under a
name, makes (or finds) the student a trial's values describe and names the model the
trial then evaluates. The space's ``student.trainer`` picks one; a server has none built in
(``TuneJobs(trainers=...)`` and ``StudyRunner(trainers=...)`` take them)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class StudentTrainer(Protocol):
    async def model_for(self, params: Mapping[str, Any], *, study: int, trial: int) -> str:
        """The public model name (``name@version``) of the student ``params`` make."""
        ...


Trainers = Mapping[str, StudentTrainer]
