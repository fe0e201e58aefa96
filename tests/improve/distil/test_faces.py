"""Distillation's three faces on a small set of real sentences: the CLI (its own app
in-process, the packaged MiniLM as encoder), the JSON API's refusals and failures, and the
console pages that render what their twins return."""

from __future__ import annotations

import asyncio
import json
import re

import pytest
from click.testing import CliRunner
from markupsafe import escape

from modelyard.cli import main
from modelyard.config import Settings
from modelyard.evaluate.datasets import DatasetService
from modelyard.registry import Registry
from tests.conftest import AppClient, app_client
from tests.improve.distil.toy import distil_pages, register_toy

pytestmark = pytest.mark.anyio

SENTENCES = {
    "weather": [
        "Will it rain tomorrow?",
        "How hot will it be this afternoon?",
        "Is a storm coming tonight?",
        "Do I need an umbrella today?",
        "What is the forecast for the weekend?",
        "Will it snow in the mountains?",
    ],
    "banking": [
        "What is my account balance?",
        "Transfer fifty pounds to my savings",
        "My card was declined at the shop",
        "How do I pay off my credit card?",
        "Why was I charged a fee?",
        "Open a new current account",
    ],
    "sports": [
        "Who won the football match?",
        "When does the tennis final start?",
        "What was the score of the game?",
        "Which team leads the league?",
        "Is the marathon on Sunday?",
        "Who scored the winning goal?",
    ],
}


def sentences() -> list[dict[str, str]]:
    return [
        {"text": text, "label": label, "split": "test" if i % 3 == 2 else "train"}
        for label, texts in SENTENCES.items()
        for i, text in enumerate(texts)
    ]


def test_the_cli_distils_a_student_that_answers_through_the_api(
    home_registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELYARD_DEFAULT_EMBEDDING_MODEL", "minilm")
    DatasetService(home_registry._store).register_items("moods", sentences(), {}, "tests")
    args = ["distil", "moods", "--model", "student", "--c", "100", "--json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["status"] == "done" and out["version"] == 1 and out["stage"] == "done"
    assert out["metrics"]["train_items"] == 12 and out["metrics"]["holdout_items"] == 6
    assert out["metrics"]["holdout_accuracy"] >= 5 / 6
    lineage = out["lineage"]
    assert lineage["teacher"] is None and lineage["dataset"]["name"] == "moods@1"
    assert lineage["partition"]["how"].startswith("the items' splits")
    version = home_registry.version("student", 1)
    assert version.engine_kind == "classifier" and "moods@1" in version.notes
    table = CliRunner().invoke(main, args[:-1])
    assert table.exit_code == 0, table.output
    assert "student@2" in table.output and "holdout_accuracy" in table.output
    assert asyncio.run(ask("student@1", "Is it going to be sunny?")) == ("weather", "student@1")


async def ask(model: str, text: str) -> tuple[str, str]:
    """The answer of the home's app to one chat message, and the version that gave it."""
    async with app_client(Settings()) as api:
        body = {"model": model, "messages": [{"role": "user", "content": text}]}
        answer = await api.post("/v1/chat/completions", json=body)
    assert answer.status_code == 200, answer.text
    return answer.json()["choices"][0]["message"]["content"], answer.headers["x-modelyard-version"]


async def test_api_refusals_and_a_failed_distillation(api: AppClient) -> None:
    register_toy(api.services.store)
    missing = await api.post("/api/distil", json={"dataset": "nope", "model": "s"})
    assert missing.status_code == 404
    unlabelled = await api.post("/api/distil", json={"dataset": "toy", "model": "s"})
    assert unlabelled.status_code == 400
    assert unlabelled.json()["error"]["param"] == "label_field"
    body = {"dataset": "toy", "model": "s", "label_field": "truth", "embedding_model": "nope"}
    started = await api.post("/api/distil", json=body)
    assert started.status_code == 202 and started.json()["stage"] == "queued"
    await api.app.state.improve_jobs.wait(f"distil:{started.json()['id']}")
    failed = (await api.get(f"/api/distil/{started.json()['id']}")).json()
    assert failed["status"] == "failed" and failed["stage"] == "failed"
    assert "embedding through 'nope' failed: 404" in failed["message"]
    assert (await api.get("/api/distil/999")).status_code == 404
    listed = (await api.get("/api/distil?model=s")).json()["data"]
    assert [d["id"] for d in listed] == [started.json()["id"]]


async def test_the_pages_render_what_their_twins_return(api: AppClient) -> None:
    urls = await distil_pages(api)
    run_page = await api.get(urls["/ui/label/{run_id}"])
    run = (await api.get(urls["/ui/label/{run_id}"].replace("/ui/", "/api/"))).json()
    counts = run["counts"]
    for name in ("done", "labelled", "unmapped", "failed"):
        value = f"{counts[name]}/{counts['items']}" if name == "done" else str(counts[name])
        assert re.search(rf'id="{name}">{re.escape(value)}<', run_page.text), name
    assert f'id="status">{run["status"]}<' in run_page.text and run["result"] in run_page.text
    assert all(escape(e["text"]) in run_page.text for e in run["failed_examples"])
    listing = (await api.get("/ui/label")).text
    assert f'href="/ui/label/{run["id"]}"' in listing

    page = await api.get(urls["/ui/distil/{distillation_id}"])
    twin = (await api.get(urls["/ui/distil/{distillation_id}"].replace("/ui/", "/api/"))).json()
    assert f'id="status">{twin["status"]} ({twin["stage"]})<' in page.text
    assert escape(twin["message"]) in page.text
    assert f'href="/ui/distil/{twin["id"]}"' in (await api.get("/ui/distil")).text
