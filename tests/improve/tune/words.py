r"""A task whose best settings are known. The scripted model echoes the user's message
(``echo: <message>``) and, sampled above temperature 0.5, reverses its reply; the answer is
read with ``^echo: (\S+)$``. So only the bare template ``{{ word }}`` at a temperature of
at most 0.5 is right, and the task's own settings (``Say {{ word }}`` at 0.9) never are."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from modelyard.evaluate.datasets import DatasetService
from modelyard.improve.tune.create import create_study, items_of
from modelyard.improve.tune.measure import version_parameters
from modelyard.improve.tune.protocol import StudyOut, StudyRequest
from modelyard.improve.tune.runner import StudyRunner
from modelyard.improve.tune.students import Trainers
from modelyard.improve.tune.studies import Studies
from modelyard.registry import Registry
from tests.conftest import AppClient, register_scripted

SEARCHED, HELD_OUT = 12, 8
POLL_S = 0.05
MODEL = "repeat"
RIGHT_TEMPLATE = "{{ word }}"
TASK: dict[str, Any] = {
    "name": "repeat",
    "dataset": {"registered": "words", "split": "dev"},
    "prompt": {"template": "Say {{ word }}"},
    "target": "word",
    "filters": [{"regex": r"^echo: (\S+)$"}],
    "metrics": [{"name": "exact_match"}],
    "generation": {"temperature": 0.9, "max_tokens": 16},
}
SPACE: dict[str, Any] = {
    "temperature": {"low": 0.0, "high": 1.0},
    "templates": [RIGHT_TEMPLATE, "Repeat {{ word }} please"],
    "few_shot": {"low": 0, "high": 2},
}


def words(searched: int = SEARCHED, held_out: int = HELD_OUT) -> list[dict[str, Any]]:
    return [
        {"word": f"word{i}", "split": "dev" if i < searched else "test"}
        for i in range(searched + held_out)
    ]


def study_body(**changes: Any) -> dict[str, Any]:
    body = {
        "task": TASK,
        "model": MODEL,
        "trials": 10,
        "startup_trials": 4,
        "seed": 0,
        "space": SPACE,
    }
    return {**body, **changes}


async def set_up(api: AppClient, items: list[dict[str, Any]] | None = None, **params: Any) -> None:
    """The scripted route and the registered dataset of the task."""
    register_scripted(api.services.registry, MODEL, reverse_above_temperature=0.5, **params)
    DatasetService(api.services.store).register_items(
        "words", items or words(), {"kind": "tests"}, "tests"
    )
    await api.reload_routes()


def new_study(api: AppClient, body: dict[str, Any]) -> int:
    store = api.services.store
    request = StudyRequest.model_validate(body)
    items = items_of(request.task, None, DatasetService(store).latest_items)
    trainer = request.space.student.trainer if request.space.student else None
    return create_study(store, request, items, [trainer] if trainer else [], "tests")


def runner(
    api: AppClient, client: httpx.AsyncClient | None = None, trainers: Trainers | None = None
) -> StudyRunner:
    """What runs a study through ``client`` (default: the app's own client)."""
    store = api.services.store
    parameters = version_parameters(Registry(store))
    return StudyRunner(client or api, Studies(store), "tests", parameters, trainers or {})


async def run_study(api: AppClient, body: dict[str, Any]) -> StudyOut:
    """A study created and run to its end, in the foreground (as the CLI runs it)."""
    return await runner(api).run(new_study(api, body))


async def finished(api: AppClient, study_id: int, timeout_s: float = 60) -> dict[str, Any]:
    """The study once it no longer runs."""
    for _ in range(int(timeout_s / POLL_S)):
        study = (await api.get(f"/api/tune/studies/{study_id}")).json()
        if study["status"] != "running":
            return dict(study)
        await asyncio.sleep(POLL_S)
    raise AssertionError(f"study {study_id} still runs after {timeout_s} s")
