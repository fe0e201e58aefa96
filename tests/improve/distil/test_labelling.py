"""Teacher labelling through the serving path: labels, provenance, failures and answers
outside the label set counted, resuming without asking again, the API and the CLI."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from modelyard.cli import main
from modelyard.evaluate.contamination import fingerprint
from modelyard.evaluate.datasets import DatasetService
from modelyard.improve.distil.label_runs import LabelRuns
from modelyard.improve.distil.labelling import label, start_labelling
from modelyard.improve.distil.protocol import LabelRequest
from modelyard.registry import Registry
from modelyard.store.tables import RequestLogRow
from tests.conftest import AppClient
from tests.improve.distil.toy import (
    FAILING,
    ITEMS,
    LABELS,
    LOOSE,
    OUTSIDE,
    register_teacher,
    register_toy,
    text,
    toy_items,
)

pytestmark = pytest.mark.anyio
REQUEST = {"dataset": "toy", "teacher": "teacher", "labels_from": "truth", "concurrency": 3}


async def setup(api: AppClient, **teacher: object) -> None:
    register_toy(api.services.store)
    register_teacher(api.services.registry, **teacher)
    await api.reload_routes()


async def test_a_teacher_labels_a_version_whose_provenance_names_it(api: AppClient) -> None:
    await setup(api)
    store = api.services.store
    run = start_labelling(store, LabelRequest.model_validate(REQUEST), "tests")
    assert run.labels == list(LABELS) and run.input_field == "text"
    out = await label(api, store, run.id)

    assert out.status == "done" and out.result == "toy-labelled@1"
    expected = ITEMS - len(FAILING) - len(OUTSIDE)
    counts = out.counts.model_dump()
    assert counts == {
        "items": ITEMS,
        "done": ITEMS,
        "labelled": expected,
        "unmapped": len(OUTSIDE),
        "failed": len(FAILING),
    }
    datasets = DatasetService(store)
    version = datasets.get("toy-labelled", 1)
    assert version.item_count == expected
    source = version.source
    assert source["kind"] == "labelled" and source["from"] == "toy@1"
    assert source["teacher"] == {"route": "teacher", "versions": ["teacher@1"]}
    assert "{{ label }}" in source["prompt"]["system"] and source["prompt"]["template"]
    assert source["counts"] == counts and source["label_run"] == run.id
    items = datasets.items("toy-labelled", 1)
    kept = [i for i in range(ITEMS) if i not in FAILING | OUTSIDE]
    assert [item["text"] for item in items] == [text(i) for i in kept]
    assert all(item["label"] == item["truth"] for item in items)  # "Beta." mapped too
    assert any(item["text"] == text(LOOSE) for item in items)
    assert all(item["split"] in ("train", "test") and item["teacher_request_id"] for item in items)
    # The labelled train items count as training data for the train-versus-eval check.
    assert "toy-labelled@1" in datasets.training_overlap({fingerprint(text(0))})

    await api.logged()  # every teacher request went through the serving path, logged
    with store.session() as session:
        logged = session.scalar(
            select(func.count()).select_from(RequestLogRow).where(RequestLogRow.route == "teacher")
        )
    assert logged == ITEMS


class Recorder(httpx.AsyncBaseTransport):
    """Passes requests on, and records the user message of each chat completion."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner, self.asked = inner, list[str]()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/chat/completions":
            self.asked.append(json.loads(request.content)["messages"][-1]["content"])
        return await self.inner.handle_async_request(request)


def recording(api: AppClient) -> tuple[httpx.AsyncClient, Recorder]:
    recorder = Recorder(httpx.ASGITransport(app=api.app))
    client = httpx.AsyncClient(
        transport=recorder, base_url="http://modelyard", headers=dict(api.headers)
    )
    return client, recorder


async def test_a_stopped_run_resumes_without_asking_again(api: AppClient) -> None:
    await setup(api, first_token_delay_ms=5)
    store = api.services.store
    request = LabelRequest.model_validate(REQUEST)
    runs = LabelRuns(store)
    first = start_labelling(store, request, "tests")
    client, recorder = recording(api)
    async with client:
        task = asyncio.current_task()
        work = asyncio.create_task(
            label(client, store, first.id, lambda done, _: done >= 25 and work.cancel())
        )
        with pytest.raises(asyncio.CancelledError):
            await work
        assert task is not None and not task.cancelling()
    stopped = runs.get(first.id)
    assert stopped.status == "stopped" and 25 <= stopped.counts.done < ITEMS
    answered = {a.item_index for a in runs.answers(first.id) if a.error is None}

    again = start_labelling(store, request, "tests")  # the same labelling: continued
    assert again.id == first.id and again.status == "running"
    client, recorder = recording(api)
    async with client:
        out = await label(client, store, again.id)
    assert sorted(recorder.asked) == sorted(text(i) for i in range(ITEMS) if i not in answered)
    assert out.status == "done" and out.counts.done == ITEMS
    assert out.counts.failed == len(FAILING) and out.result == "toy-labelled@1"

    fresh = start_labelling(store, request.model_copy(update={"fresh": True}), "tests")
    assert fresh.id != first.id and fresh.counts.done == 0


async def test_a_run_being_labelled_is_not_started_twice(api: AppClient) -> None:
    await setup(api, first_token_delay_ms=20)
    store = api.services.store
    request = LabelRequest.model_validate({**REQUEST, "concurrency": 1})
    run = start_labelling(store, request, "tests")
    again = await api.post("/api/label", json={**REQUEST, "concurrency": 1})
    assert again.status_code == 409 and again.json()["error"]["code"] == "label_run_active"
    resumed = await api.post(f"/api/label/{run.id}/resume")
    assert resumed.status_code == 409


async def test_the_api_starts_a_run_and_shows_its_progress(api: AppClient) -> None:
    await setup(api)
    started = await api.post("/api/label", json=REQUEST)
    assert started.status_code == 202, started.text
    run = started.json()
    assert run["status"] == "running" and run["teacher"] == "teacher"
    await api.app.state.improve_jobs.wait(f"label:{run['id']}")
    detail = (await api.get(f"/api/label/{run['id']}")).json()
    assert detail["status"] == "done" and detail["result"] == "toy-labelled@1"
    assert detail["counts"]["failed"] == len(FAILING)
    assert sorted(e["item_index"] for e in detail["unmapped_examples"]) == sorted(OUTSIDE)
    assert {e["text"] for e in detail["failed_examples"]} == {text(i) for i in FAILING}
    assert all(e["error"] for e in detail["failed_examples"])
    assert sum(detail["distribution"].values()) == detail["counts"]["labelled"]
    listed = (await api.get("/api/label")).json()["data"]
    assert [r["id"] for r in listed] == [run["id"]]

    again = await api.post("/api/label", json=REQUEST)  # continues: only failures again
    assert again.status_code == 202 and again.json()["id"] == run["id"]
    await api.app.state.improve_jobs.wait(f"label:{run['id']}")
    assert (await api.get(f"/api/label/{run['id']}")).json()["result"] == "toy-labelled@1"


async def test_api_errors_name_what_to_change(api: AppClient) -> None:
    await setup(api)
    missing = await api.post("/api/label", json={**REQUEST, "dataset": "nope"})
    assert missing.status_code == 404
    DatasetService(api.services.store).register_items(
        "one", [{"text": "a", "truth": "x"}, {"text": "b", "truth": "x"}], {}, "tests"
    )
    refused = await api.post("/api/label", json={**REQUEST, "dataset": "one"})
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "labels_from"
    assert "2 distinct" not in refused.json()["error"]["message"]
    both = await api.post("/api/label", json={**REQUEST, "labels": list(LABELS)})
    assert both.status_code == 400
    field = await api.post("/api/label", json={**REQUEST, "input_field": "nothing"})
    assert field.status_code == 400 and field.json()["error"]["param"] == "input_field"
    assert (await api.get("/api/label/999")).status_code == 404
    assert (await api.post("/api/label/999/resume")).status_code == 404


def test_the_cli_labels_and_continues(home_registry: Registry) -> None:
    store = home_registry._store  # the home store the CLI opens
    DatasetService(store).register_items("toy", toy_items(), {"kind": "test"}, "tests")
    register_teacher(home_registry)
    args = ["label", "toy", "--teacher", "teacher", "--labels-from", "truth", "--json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["status"] == "done" and out["result"] == "toy-labelled@1"
    assert out["counts"]["labelled"] == ITEMS - len(FAILING) - len(OUTSIDE)
    table = CliRunner().invoke(main, args[:-1])  # again: continues, asks only the failures
    assert table.exit_code == 0, table.output
    assert "toy-labelled@1" in table.output and "failed" in table.output
