"""Studies end to end through the serving path: the search finds the settings that are
right, bounds make trials infeasible, the confirmation grades only unseen items, and an
interrupted study resumes as if it had never stopped."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import httpx
import pytest

from modelyard.evaluate.runs import EvalRuns
from modelyard.improve.tune.studies import Studies
from tests.conftest import AppClient, register_scripted
from tests.improve.tune.words import (
    HELD_OUT,
    MODEL,
    RIGHT_TEMPLATE,
    SEARCHED,
    new_study,
    run_study,
    runner,
    set_up,
    study_body,
)

pytestmark = pytest.mark.anyio


async def test_tune_finds_the_right_settings_and_confirms_them_on_unseen_items(
    api: AppClient,
) -> None:
    await set_up(api)
    study = await run_study(api, study_body())
    assert study.status == "done", study.message
    assert len(study.trials) == 10 and all(t.state == "complete" for t in study.trials)

    default = study.trials[0]  # the task's own settings come first
    assert default.default and default.settings.template == "Say {{ word }}"
    assert default.settings.generation["temperature"] == 0.9 and default.value == 0.0
    best = study.trials[study.best_trial or 0]
    assert best.value == 1.0 > default.value  # better than the defaults ...
    assert best.settings.template == RIGHT_TEMPLATE  # ... and in the region known right
    assert best.settings.generation["temperature"] <= 0.5
    right = [
        t
        for t in study.trials
        if t.settings.template == RIGHT_TEMPLATE and t.settings.generation["temperature"] <= 0.5
    ]
    assert all(t.value == 1.0 for t in right)
    assert all(t.value == 0.0 for t in study.trials if t not in right)
    assert [p.best for p in study.history][-1] == 1.0

    runs = EvalRuns(api.services.store)
    listed = {run.id for run in runs.list_runs("repeat")}
    assert {t.run_id for t in study.trials} <= listed  # every trial is an eval run
    searched = {i.reference for t in study.trials for i in runs.items(t.run_id or 0)}
    assert searched == {f"word{i}" for i in range(SEARCHED)}

    confirmed = study.confirmation
    assert confirmed is not None and confirmed.status == "done"
    assert confirmed.trial == study.best_trial and confirmed.baseline_model == f"{MODEL}:production"
    held = {
        i.reference
        for run_id in (confirmed.baseline_run, confirmed.candidate_run)
        for i in runs.items(run_id or 0)
    }
    assert held == {f"word{i}" for i in range(SEARCHED, SEARCHED + HELD_OUT)}
    assert held.isdisjoint(searched)  # the confirmation graded nothing the search saw
    assert confirmed.difference is not None and confirmed.difference["difference"] == 1.0
    assert confirmed.better is True and confirmed.p_value is not None
    assert confirmed.p_value < 0.01
    assert study.importances is not None and study.importances.values is not None
    assert set(study.importances.values) == {"temperature", "template", "few_shot"}


async def test_a_trial_over_a_bound_is_infeasible_and_never_the_best(api: AppClient) -> None:
    # One output token costs 1: a whole answer ("echo: wordN") costs 2, one cut at
    # max_tokens 1 costs 1. Under a bound of 1.5 per item only wrong answers are feasible.
    await set_up(api, price={"output_per_million": 1_000_000})
    body = study_body(
        task={**study_body()["task"], "prompt": {"template": RIGHT_TEMPLATE}},
        space={"max_tokens": {"low": 1, "high": 4}},
        constraints={"max_cost": 1.5},
        trials=6,
        startup_trials=3,
        confirm=False,
    )
    body["task"]["generation"] = {"temperature": 0}
    study = await run_study(api, body)
    assert study.status == "done", study.message
    infeasible = [t for t in study.trials if t.feasible is False]
    assert infeasible and all(t.value == 1.0 for t in infeasible)
    assert all(t.cost == 2.0 and t.constraints == {"cost": 0.5} for t in infeasible)
    best = study.trials[study.best_trial or 0]
    assert best.feasible and best.params == {"max_tokens": 1} and best.value == 0.0
    assert study.best_trial not in {t.number for t in infeasible}
    assert all(p.best == 0.0 for p in study.history if p.best is not None)


async def test_with_no_feasible_trial_nothing_is_confirmed(api: AppClient) -> None:
    await set_up(api)
    body = study_body(trials=2, constraints={"max_latency_ms": 0.001})
    study = await run_study(api, body)
    assert study.status == "done"
    assert all(t.feasible is False and t.constraints["latency_ms"] > 0 for t in study.trials)
    assert study.best_trial is None and study.best_value is None
    assert study.confirmation is not None and study.confirmation.status == "skipped"
    assert "nothing to confirm" in (study.confirmation.reason or "")
    assert study.importances is not None and study.importances.values is None
    assert "at least 5 complete trials" in (study.importances.reason or "")


class Counting(httpx.AsyncBaseTransport):
    """Counts the items' requests and says when ``at`` of them have gone out."""

    def __init__(self, inner: httpx.AsyncBaseTransport, at: int) -> None:
        self.inner, self.at, self.sent = inner, at, 0
        self.reached = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/chat/completions":
            self.sent += 1
            if self.sent >= self.at:
                self.reached.set()
        return await self.inner.handle_async_request(request)


async def test_an_interrupted_study_keeps_its_trials_and_resumes_where_it_stopped(
    api: AppClient,
) -> None:
    await set_up(api, first_token_delay_ms=5)
    body = study_body(trials=4, confirm=False, concurrency=2)
    counting = Counting(httpx.ASGITransport(app=api.app), at=SEARCHED + 5)  # in trial 1
    async with httpx.AsyncClient(
        transport=counting, base_url="http://modelyard", headers=api.headers
    ) as client:
        study_id = new_study(api, body)
        running = asyncio.create_task(runner(api, client).run(study_id))
        await counting.reached.wait()
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
    studies, runs = Studies(api.services.store), EvalRuns(api.services.store)
    stopped = studies.get(study_id)
    assert stopped.status == "interrupted" and "resume" in (stopped.message or "")
    assert [t.state for t in stopped.trials] == ["complete", "running"]
    cut = stopped.trials[1]
    assert cut.run_id is not None and 0 < len(runs.items(cut.run_id)) < SEARCHED

    resumed = await runner(api).run(study_id)
    assert resumed.status == "done" and [t.state for t in resumed.trials] == ["complete"] * 4
    assert resumed.trials[1].run_id == cut.run_id  # its eval run finished, not started over
    finished = runs.items(cut.run_id)
    assert sorted(i.item_index for i in finished) == list(range(SEARCHED))

    straight = await run_study(api, body)  # the same study, never interrupted
    assert [t.params for t in resumed.trials] == [t.params for t in straight.trials]
    assert [t.value for t in resumed.trials] == [t.value for t in straight.trials]


class Students:
    """A trainer whose "good" student echoes at any temperature and "bad" one never
    answers right: what a trainer of real students would hand back, a model to query."""

    def __init__(self) -> None:
        self.asked: list[tuple[dict[str, Any], int, int]] = []

    async def model_for(
        self,
        client: httpx.AsyncClient,
        options: Mapping[str, Any],
        params: Mapping[str, Any],
        *,
        study: int,
        trial: int,
    ) -> str:
        self.asked.append((dict(params), study, trial))
        return f"student-{params['quality']}:production"


async def test_a_student_s_hyper_parameters_are_searched_through_its_trainer(
    api: AppClient,
) -> None:
    await set_up(api)
    register_scripted(api.services.registry, "student-good")
    register_scripted(api.services.registry, "student-bad", replies=["nope"])
    await api.reload_routes()
    task = {**study_body()["task"], "prompt": {"template": RIGHT_TEMPLATE}}
    quality = {"type": "categorical", "choices": ["bad", "good"]}
    space = {"student": {"trainer": "fake", "params": {"quality": quality}}}
    body = study_body(task=task, space=space, trials=4, startup_trials=2)
    students = Students()
    study_id = new_study(api, body)
    study = await runner(api, trainers={"fake": students}).run(study_id)
    assert study.status == "done", study.message
    assert [(trial, number) for _, trial, number in students.asked] == [
        (study_id, n) for n in range(4)
    ]
    for trial, (params, _, _) in zip(study.trials, students.asked, strict=True):
        assert trial.params == {"student.quality": params["quality"]}
        assert trial.settings.student == params
        assert trial.settings.model == f"student-{params['quality']}:production"
        assert trial.value == (1.0 if params["quality"] == "good" else 0.0)
    best = study.trials[study.best_trial or 0]
    assert best.settings.student == {"quality": "good"}
    confirmed = study.confirmation
    assert confirmed is not None and confirmed.candidate_model == "student-good:production"
    assert confirmed.baseline_model == f"{MODEL}:production" and confirmed.better is True
