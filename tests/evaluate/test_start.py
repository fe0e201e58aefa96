"""Eval runs started over the API: the same run as the CLI's, checked before the 202, run
in the background as the caller, and recorded as failed when it stops on the way."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from modelyard.cli import main
from modelyard.config import Settings
from modelyard.evaluate.datasets import DatasetService
from modelyard.registry import Registry
from modelyard.store import open_store
from tests.conftest import AppClient, app_client, bearer, new_key, register_scripted
from tests.evaluate.test_contamination import curated

pytestmark = pytest.mark.anyio
ITEMS = 12
# The scripted model echoes the prompt: an item whose prompt shows its answer is right.
TASK = """
name: echo
dataset: {registered: qa, split: test}
prompt: {template: "{{ shown }}"}
target: a
filters: [{regex: "echo: (.*)"}]
metrics: [{name: exact_match}, {name: char_f1}]
generation: {max_tokens: 8}
"""


def qa_items() -> list[dict[str, str]]:
    """Half the items show their answer, half show a near miss; all in the test split."""
    return [
        {
            "a": f"answer {i}",
            "shown": f"answer {i}" if i % 2 else f"answer {i + 1}",
            "split": "test",
        }
        for i in range(ITEMS)
    ]


def register_qa(registry: Registry) -> None:
    register_scripted(registry, "echo")
    store = open_store(Settings().store_url)
    DatasetService(store).register_items("qa", qa_items(), {"kind": "inline"}, actor="tests")
    store.close()


async def finished(api: AppClient, body: dict[str, Any]) -> dict[str, Any]:
    """Start a run over the API, wait for its job, and return what GET says of it."""
    started = await api.post("/api/eval/runs", json=body)
    assert started.status_code == 202, started.text
    run = started.json()
    assert run["status"] == "running" and run["done"] == 0
    await api.app.state.eval_jobs.wait(f"eval:{run['id']}")
    got = await api.get(f"/api/eval/runs/{run['id']}")
    assert got.status_code == 200
    return dict(got.json())


def test_a_run_started_over_the_api_scores_as_the_cli_does(
    home_registry: Registry, tmp_path: Path
) -> None:
    register_qa(home_registry)
    path = tmp_path / "echo.yaml"
    path.write_text(TASK, encoding="utf-8")
    sample = ["--limit", "8", "--seed", "3"]
    by_cli = CliRunner().invoke(main, ["eval", "run", str(path), "-m", "echo", *sample, "--json"])
    assert by_cli.exit_code == 0, by_cli.output
    cli_run = json.loads(by_cli.output)

    async def by_api() -> tuple[dict[str, Any], dict[str, Any], list[Any], list[Any]]:
        async with app_client(Settings()) as api:
            from_yaml = await finished(
                api, {"task_yaml": TASK, "model": "echo", "limit": 8, "seed": 3}
            )
            task = yaml.safe_load(TASK)
            from_json = await finished(
                api, {"task": task, "model": "echo@1", "limit": 8, "seed": 3}
            )
            items = [
                (await api.get(f"/api/eval/runs/{r}/items")).json()
                for r in (cli_run["id"], from_yaml["id"])
            ]
        return from_yaml, from_json, *items

    from_yaml, from_json, cli_items, api_items = asyncio.run(by_api())
    assert cli_run["metrics"]["exact_match"]["value"] == 0.5  # not all right, not all wrong
    for run in (from_yaml, from_json):
        assert run["status"] == "done" and run["done"] == run["item_count"] == 8
        assert run["metrics"] == cli_run["metrics"] and run["versions"] == ["echo@1"]
        assert run["dataset_sha256"] == cli_run["dataset_sha256"] and run["error"] is None
        assert run["created_by"].startswith("key:")  # the caller's, not the server's
    answered = ["item_index", "question", "extracted", "reference", "error"]
    assert [[i[k] for k in answered] for i in api_items] == [
        [i[k] for k in answered] for i in cli_items
    ]


async def test_a_task_that_cannot_run_is_refused_naming_the_field(
    api: AppClient, home_registry: Registry
) -> None:
    register_qa(home_registry)
    await api.reload_routes()
    task = yaml.safe_load(TASK)

    async def refused(body: dict[str, Any], status: int = 400) -> dict[str, Any]:
        answer = await api.post("/api/eval/runs", json={"model": "echo", **body})
        assert answer.status_code == status, answer.text
        error: dict[str, Any] = answer.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}
        return error

    missing = await refused({"task_yaml": TASK.replace("{{ shown }}", "{{ answer }}")})
    assert missing["param"] == "task_yaml" and "uses field(s) answer" in missing["message"]
    assert missing["code"] == "invalid_task" and missing["type"] == "invalid_request_error"
    typo = await refused({"task_yaml": TASK.replace("target:", "targt:")})
    assert typo["param"] == "task_yaml.target"  # missing; `targt` is next
    assert (await refused({"task_yaml": "name: [unclosed"}))["param"] == "task_yaml"
    assert (await refused({"task_yaml": "- a list"}))["param"] == "task_yaml"
    no_metrics = await refused({"task": {**task, "metrics": []}})
    assert no_metrics["param"] == "task.metrics"  # FastAPI's own check, in OpenAI's shape
    assert (await refused({"task": task, "task_yaml": TASK}))["param"] == "task"
    assert (await refused({}))["param"] == "task"
    a_file = await refused({"task": {**task, "dataset": {"path": "/etc/passwd"}}})
    assert (
        a_file["param"] == "task.dataset.path" and "registered datasets only" in a_file["message"]
    )
    unknown = await refused({"task": {**task, "dataset": {"registered": "nope"}}})
    assert unknown["param"] == "task.dataset"
    no_split = await refused({"task": {**task, "dataset": {"registered": "qa", "split": "dev"}}})
    assert no_split["param"] == "task.dataset" and "no item has it" in no_split["message"]
    assert (await refused({"task": task, "limit": 0}))["param"] == "limit"
    model = await refused({"task": task, "model": "nope"}, status=404)
    assert model["param"] == "model" and model["code"] == "model_not_found"
    assert (await api.get("/api/eval/runs")).json()["data"] == []  # none was made


async def test_only_an_admin_starts_a_run_and_its_requests_are_the_callers(
    api: AppClient, home_registry: Registry
) -> None:
    register_qa(home_registry)
    await api.reload_routes()
    body = {"task_yaml": TASK, "model": "echo"}
    for role in ("viewer", "developer"):
        key = await new_key(api, role)
        answer = await api.post("/api/eval/runs", json=body, headers=bearer(key))
        assert answer.status_code == 403, answer.text
    unauthenticated = await api.post("/api/eval/runs", json=body, headers={"authorization": ""})
    assert unauthenticated.status_code == 401
    assert (await api.get("/api/eval/runs")).json()["data"] == []

    made = await api.post("/api/keys", json={"name": "evaluator", "role": "admin"})
    evaluator = made.json()
    started = await api.post("/api/eval/runs", json=body, headers=bearer(evaluator["secret"]))
    assert started.status_code == 202, started.text
    await api.app.state.eval_jobs.wait(f"eval:{started.json()['id']}")
    await api.logged()
    items = (await api.get(f"/api/eval/runs/{started.json()['id']}/items")).json()
    logged = (await api.get("/api/requests?route=echo&limit=100")).json()["data"]
    keys = {row["key_id"] for row in logged if row["id"] in {i["request_id"] for i in items}}
    assert len(items) == ITEMS and keys == {evaluator["id"]}


async def test_the_train_eval_overlap_is_refused_before_the_202(
    api: AppClient, home_registry: Registry
) -> None:
    register_scripted(home_registry, "echo")
    await api.reload_routes()
    curated(api)
    task = {
        "name": "overlap",
        "dataset": {"registered": "support@1", "split": "train"},
        "prompt": {"template": "{{ input }}"},
        "target": "output",
        "metrics": [{"name": "exact_match"}],
    }
    body = {"task": task, "model": "echo"}
    refused = await api.post("/api/eval/runs", json=body)
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert error["code"] == "train_eval_overlap" and error["param"] == "dataset"
    assert "24 of the 24 eval items" in error["message"]
    assert (await api.get("/api/eval/runs")).json()["data"] == []
    graded = await finished(api, {**body, "allow_train_overlap": True, "limit": 5})
    assert graded["status"] == "done" and graded["done"] == 5


async def test_a_run_shows_while_it_runs_and_is_failed_when_the_server_stops(
    api: AppClient, home_registry: Registry
) -> None:
    register_qa(home_registry)
    register_scripted(home_registry, "slow", token_delay_ms=300)
    await api.reload_routes()
    body = {"task_yaml": TASK, "model": "slow", "concurrency": 1}
    started = (await api.post("/api/eval/runs", json=body)).json()
    running = (await api.get(f"/api/eval/runs/{started['id']}")).json()
    assert running["status"] == "running" and running["finished_at"] is None
    report = await api.get(f"/api/eval/runs/{started['id']}/report")
    assert report.status_code == 200 and report.json()["metrics"] == {}
    page = await api.get(f"/ui/eval/runs/{started['id']}")
    assert page.status_code == 200 and 'id="status">running<' in page.text
    assert "/static/eval.js" in page.text and 'id="done">' in page.text

    await api.app.state.eval_jobs.aclose()  # what the app does when it stops
    stopped = (await api.get(f"/api/eval/runs/{started['id']}")).json()
    assert stopped["status"] == "failed" and stopped["done"] < ITEMS
    assert stopped["error"].startswith("stopped with the server")
    assert f"--resume {started['id']}" in stopped["error"]
    page = await api.get(f"/ui/eval/runs/{started['id']}")
    assert 'id="status">failed<' in page.text and "stopped with the server" in page.text
    assert "/static/eval.js" not in page.text  # nothing to follow
