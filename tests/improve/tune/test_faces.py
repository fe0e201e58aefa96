"""Tuning's three faces: the JSON API (a study in the background, polled), the console
(its pages render what the API returns) and the CLI."""

from __future__ import annotations

import asyncio
import html
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from modelyard.cli import main
from modelyard.config import Settings
from modelyard.improve.tune.studies import Studies
from modelyard.registry import Registry
from modelyard.store import open_store
from tests.conftest import AppClient, app_client, bearer, new_key, register_scripted
from tests.improve.tune.words import (
    MODEL,
    POLL_S,
    RIGHT_TEMPLATE,
    TASK,
    finished,
    set_up,
    study_body,
    words,
)

pytestmark = pytest.mark.anyio


async def in_first_trial(api: AppClient, study_id: int) -> None:
    """Once the first trial's eval run is under way (its 12 items take 480 ms or more)."""
    for _ in range(int(60 / POLL_S)):
        trials = (await api.get(f"/api/tune/studies/{study_id}")).json()["trials"]
        if trials and trials[0]["run_id"] is not None:
            return
        await asyncio.sleep(POLL_S)
    raise AssertionError(f"study {study_id} has not started")


async def test_a_study_runs_in_the_background_as_its_caller_and_is_polled(
    api: AppClient,
) -> None:
    await set_up(api)
    made = await api.post("/api/keys", json={"name": "tuner", "role": "admin"})
    tuner = made.json()
    started = await api.post(
        "/api/tune/studies", json=study_body(trials=5), headers=bearer(tuner["secret"])
    )
    assert started.status_code == 202, started.text
    assert started.json()["status"] == "running" and started.json()["trials_planned"] == 5
    study = await finished(api, started.json()["id"])
    assert study["status"] == "done", study["message"]
    assert [t["state"] for t in study["trials"]] == ["complete"] * 5
    assert study["created_by"].startswith(f"key:{tuner['id']}")

    runs = (await api.get("/api/eval/runs?task=repeat")).json()["data"]
    assert {t["run_id"] for t in study["trials"]} <= {r["id"] for r in runs}
    items = (await api.get(f"/api/eval/runs/{study['trials'][0]['run_id']}/items")).json()
    await api.logged()
    logged = (await api.get(f"/api/requests/{items[0]['request_id']}")).json()
    assert logged["key_id"] == tuner["id"]  # the trials' requests went as the caller

    listed = (await api.get("/api/tune/studies")).json()["data"]
    assert [(s["id"], s["trials_done"], s["status"]) for s in listed] == [(study["id"], 5, "done")]
    again = await api.post(f"/api/tune/studies/{study['id']}/resume")
    assert again.status_code == 409 and again.json()["error"]["code"] == "study_state"
    assert (await api.post(f"/api/tune/studies/{study['id']}/stop")).status_code == 409
    for path in ("/api/tune/studies/999", "/api/tune/studies/999/resume"):
        method = api.get if path.endswith("999") else api.post
        assert (await method(path)).status_code == 404


async def test_a_study_is_stopped_and_resumed_over_the_api(api: AppClient) -> None:
    await set_up(api, first_token_delay_ms=40)
    body = study_body(trials=3, confirm=False, concurrency=1)
    study_id = (await api.post("/api/tune/studies", json=body)).json()["id"]
    await in_first_trial(api, study_id)
    stopped = await api.post(f"/api/tune/studies/{study_id}/stop")
    assert stopped.status_code == 200, stopped.text
    assert stopped.json()["status"] == "interrupted"
    states = [t["state"] for t in stopped.json()["trials"]]
    assert states[-1] == "running" and set(states[:-1]) <= {"complete"}
    cut = stopped.json()["trials"][-1]
    assert (await api.post(f"/api/tune/studies/{study_id}/stop")).status_code == 409
    resumed = await api.post(f"/api/tune/studies/{study_id}/resume")
    assert resumed.status_code == 202, resumed.text
    assert resumed.json()["status"] == "running" and resumed.json()["message"] is None
    study = await finished(api, study_id)
    assert study["status"] == "done"
    assert [t["number"] for t in study["trials"]] == [0, 1, 2]
    assert study["trials"][cut["number"]]["run_id"] == cut["run_id"]  # finished, not redone


async def test_a_server_stopping_leaves_its_studies_interrupted(
    home_registry: Registry,
) -> None:
    async with app_client(Settings()) as api:
        await set_up(api, first_token_delay_ms=40)
        body = study_body(trials=3, concurrency=1)
        study_id = (await api.post("/api/tune/studies", json=body)).json()["id"]
        await in_first_trial(api, study_id)
    store = open_store(Settings().store_url)
    try:
        study = Studies(store).get(study_id)
    finally:
        store.close()
    assert study.status == "interrupted" and study.trials[-1].state == "running"


BAD = [
    ({"space": {}}, "space"),
    ({"space": {"temperature": {"low": 0.8, "high": 0.2}}}, "space.temperature"),
    ({"space": {"temperature": {"low": 0, "high": 3}}}, "space.temperature.high"),
    ({"space": {"templates": ["{{ nope }}"]}}, "space.templates.0"),
    ({"space": {"few_shot": {"low": 0, "high": 12}}}, "space.few_shot.high"),
    (
        {
            "space": {
                "student": {"trainer": "x", "params": {"c": {"type": "int", "low": 1, "high": 3}}}
            }
        },
        "space.student.trainer",
    ),
    ({"objective": "bleu"}, "objective"),
    ({"holdout_split": "eval"}, "holdout_split"),
    ({"trials": 0}, "trials"),
    ({"trials": "5"}, "trials"),
    ({"task": {**TASK, "dataset": {"path": "/etc/passwd"}}}, "task.dataset.path"),
    ({"task": {**TASK, "dataset": {"registered": "nope"}}}, "task.dataset"),
]


@pytest.mark.parametrize(("changes", "param"), BAD)
async def test_a_bad_study_is_a_400_naming_the_field(
    api: AppClient, changes: dict[str, Any], param: str
) -> None:
    await set_up(api)
    refused = await api.post("/api/tune/studies", json=study_body(**changes))
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["param"] == param
    assert (await api.get("/api/tune/studies")).json()["data"] == []  # nothing stored


async def test_only_an_admin_starts_a_study(api: AppClient) -> None:
    await set_up(api)
    viewer = bearer(await new_key(api, "viewer"))
    assert (
        await api.post("/api/tune/studies", json=study_body(), headers=viewer)
    ).status_code == 403
    assert (await api.get("/api/tune/studies", headers=viewer)).status_code == 200


async def test_the_console_shows_what_the_api_returns(api: AppClient) -> None:
    await set_up(api)
    study_id = (await api.post("/api/tune/studies", json=study_body(trials=6))).json()["id"]
    study = await finished(api, study_id)
    page = await api.get(f"/ui/tune/{study_id}")
    assert page.status_code == 200
    assert (
        page.headers["link"]
        == f'</api/tune/studies/{study_id}>; rel="alternate"; type="application/json"'
    )
    embedded = re.search(
        r'<script id="study-data" type="application/json">(.*?)</script>', page.text, re.S
    )
    assert embedded is not None and json.loads(embedded.group(1)) == study
    for trial in study["trials"]:
        assert f'href="/ui/eval/runs/{trial["run_id"]}"' in page.text
    confirmed = study["confirmation"]
    assert f"/ui/eval/compare?baseline={confirmed['baseline_run']}&amp;candidate=" in page.text
    assert f"{confirmed['difference']['difference']:+.4f}" in page.text
    assert 'id="chart-history"' in page.text and "/ui/vendor/plotly.min.js" in page.text
    found = study["importances"]
    shown = f'<span class="mono">{found["evaluator"]}</span> over 6 complete trials'
    assert found["values"] and shown in page.text
    infeasible = await api.post(
        "/api/tune/studies", json=study_body(trials=2, constraints={"max_latency_ms": 0.001})
    )
    few = await finished(api, infeasible.json()["id"])
    shown = (await api.get(f"/ui/tune/{few['id']}")).text
    assert shown.count('class="tag warn">infeasible') == 2
    assert html.escape(few["importances"]["reason"]) in shown
    assert html.escape(few["confirmation"]["reason"]) in shown
    listing = await api.get("/ui/tune")
    assert f'href="/ui/tune/{study_id}"' in listing.text and 'id="start-study"' in listing.text
    viewer = bearer(await new_key(api, "viewer"))
    assert 'id="start-study"' not in (await api.get("/ui/tune", headers=viewer)).text


def test_the_cli_runs_lists_shows_and_refuses(home_registry: Registry, tmp_path: Path) -> None:
    register_scripted(home_registry, MODEL, reverse_above_temperature=0.5)
    data = "".join(json.dumps(item) + "\n" for item in words())
    (tmp_path / "words.jsonl").write_text(data, encoding="utf-8")
    task = {**TASK, "dataset": {"path": "words.jsonl", "split": "dev"}}
    (tmp_path / "task.yaml").write_text(yaml.safe_dump(task), encoding="utf-8")
    body = {**study_body(trials=8), "task": "task.yaml"}
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(body), encoding="utf-8")
    cli = CliRunner()

    ran = cli.invoke(main, ["tune", "run", str(tmp_path / "study.yaml"), "--json"])
    assert ran.exit_code == 0, ran.output
    study = json.loads(ran.output)
    best = study["trials"][study["best_trial"]]
    assert best["settings"]["template"] == RIGHT_TEMPLATE and best["value"] == 1.0
    assert study["confirmation"]["better"] is True

    listed = json.loads(cli.invoke(main, ["tune", "list", "--json"]).output)
    assert [s["id"] for s in listed] == [study["id"]]
    shown = cli.invoke(main, ["tune", "show", str(study["id"])])
    assert f"best: trial {study['best_trial']}" in shown.output and "held-out items" in shown.output
    done = cli.invoke(main, ["tune", "resume", str(study["id"])])
    assert done.exit_code == 1 and "is done" in done.output

    (tmp_path / "bad.yaml").write_text(
        yaml.safe_dump({**body, "space": {"templates": ["{{ nope }}"]}}), encoding="utf-8"
    )
    bad = cli.invoke(main, ["tune", "run", str(tmp_path / "bad.yaml")])
    assert bad.exit_code == 1 and "space.templates.0" in bad.output
