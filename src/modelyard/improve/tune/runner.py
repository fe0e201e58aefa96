"""Running a study: trial after trial, each asked of the sampler, written to the store,
measured as an eval run of the searched items and written again; then the confirmation.

An interrupted study (a stop, a shutdown, Ctrl-C) is marked ``interrupted`` and keeps every
trial it stored; run again, it finishes the trial it was in (that trial's eval run resumes
where it stopped), asks for the rest and confirms."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from modelyard.errors import ModelyardError
from modelyard.evaluate.runs import EvalRuns
from modelyard.evaluate.tasks import TaskError
from modelyard.improve.tune import search
from modelyard.improve.tune.confirm import confirm
from modelyard.improve.tune.errors import InvalidStudy, TuneError
from modelyard.improve.tune.evaluator import Evaluator
from modelyard.improve.tune.measure import Parameters, measure
from modelyard.improve.tune.protocol import StudyOut, TrialOut, TrialSettings
from modelyard.improve.tune.ranking import best_of
from modelyard.improve.tune.space import STUDENT, configured, pinned, settings_for
from modelyard.improve.tune.students import Trainers
from modelyard.improve.tune.studies import Studies, StudyState

if TYPE_CHECKING:
    import httpx

FAILURES_IN_A_ROW = 3  # then the study stops: something other than the settings is wrong
INTERRUPTED = "stopped before it finished; its trials are kept: resume it"


class TrialsFailing(TuneError):
    status = 502
    code = "trials_failing"


@dataclass
class StudyRunner:
    """Runs studies through ``client`` (a modelyard server, its key set), as ``actor``."""

    client: httpx.AsyncClient
    studies: Studies
    actor: str
    parameters: Parameters  # a version's parameters, for its price
    trainers: Trainers = field(default_factory=dict)
    progress: Callable[[TrialOut], None] | None = None

    async def run(self, study_id: int) -> StudyOut:
        """Run (or resume) the study to its end; what stops it is written on the study."""
        try:
            await self._run(study_id)
        except asyncio.CancelledError:
            interrupted = asyncio.to_thread(
                self.studies.set_status, study_id, "interrupted", INTERRUPTED
            )
            await asyncio.shield(interrupted)
            raise
        except (ModelyardError, TaskError) as error:
            await asyncio.to_thread(self.studies.set_status, study_id, "failed", str(error))
        return await asyncio.to_thread(self.studies.get, study_id)

    async def _run(self, study_id: int) -> None:
        await asyncio.to_thread(self.studies.set_status, study_id, "running")
        state = await asyncio.to_thread(self.studies.state, study_id)
        request = state.request
        evaluator = Evaluator(
            self.client,
            EvalRuns(self.studies.store),
            self.actor,
            request.concurrency,
            request.allow_train_overlap,
        )
        trials = await self._search(evaluator, state)
        if request.confirm:
            best = best_of(trials, state.objective.higher_is_better)
            await confirm(evaluator, self.studies, state, best)
        await asyncio.to_thread(self.studies.set_status, study_id, "done")

    async def _search(self, evaluator: Evaluator, state: StudyState) -> list[TrialOut]:
        trials = [t for t in state.trials if t.state != "running"]
        for left in (t for t in state.trials if t.state == "running"):  # interrupted mid-trial
            trials.append(
                await self._measured(evaluator, state, left.number, left.settings, left.run_id)
            )
            await self._importances(state, trials)
        while len(trials) < state.request.trials:
            _check_failures(trials)
            number = len(trials)
            params, default = await asyncio.to_thread(
                search.ask, state.request, state.objective, trials, number
            )
            settings = await self._settings(state, number, params)
            await asyncio.to_thread(
                self.studies.start_trial, state.id, number, params, settings, default
            )
            trials.append(await self._measured(evaluator, state, number, settings, None))
            await self._importances(state, trials)
        return trials

    async def _importances(self, state: StudyState, trials: list[TrialOut]) -> None:
        found = await asyncio.to_thread(search.importances, state.request, state.objective, trials)
        await asyncio.to_thread(self.studies.save_importances, state.id, found)

    async def _settings(
        self, state: StudyState, number: int, params: dict[str, object]
    ) -> TrialSettings:
        """What trial ``number`` sends; with a student space, the trainer makes the model."""
        request, model = state.request, pinned(state.request.model)
        student = request.space.student
        if student is not None:
            trainer = self.trainers.get(student.trainer)
            if trainer is None:
                raise InvalidStudy(
                    f"no student trainer '{student.trainer}' here", param="space.student.trainer"
                )
            values = {
                k.removeprefix(STUDENT): v for k, v in params.items() if k.startswith(STUDENT)
            }
            model = await trainer.model_for(
                self.client, student.options, values, study=state.id, trial=number
            )
        return settings_for(request, params, model)

    async def _measured(
        self,
        evaluator: Evaluator,
        state: StudyState,
        number: int,
        settings: TrialSettings,
        run_id: int | None,
    ) -> TrialOut:
        """Trial ``number`` run as an eval run of the searched items, measured and stored."""
        task = configured(state.request.task, settings)
        if run_id is None:
            run_id = await evaluator.start(task, state.search, settings.model)
            await asyncio.to_thread(self.studies.attach_run, state.id, number, run_id)
        run, answers = await evaluator.finish(task, state.search, settings.model, run_id)
        bounds = state.request.constraints
        measured = await asyncio.to_thread(
            measure, run, answers, state.objective, bounds, self.parameters
        )
        trial = await asyncio.to_thread(self.studies.finish_trial, state.id, number, measured)
        if self.progress is not None:
            self.progress(trial)
        return trial


def _check_failures(trials: list[TrialOut]) -> None:
    recent = trials[-FAILURES_IN_A_ROW:]
    if len(recent) == FAILURES_IN_A_ROW and all(t.state == "failed" for t in recent):
        raise TrialsFailing(
            f"the last {FAILURES_IN_A_ROW} trials failed ({recent[-1].message}); "
            "fix the model or the task and resume the study"
        )
