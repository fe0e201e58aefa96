"""Eval runs through the serving path: scores, resume, comparison, gates, the CLI."""

from __future__ import annotations

import asyncio
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from modelyard.cli import main
from modelyard.evaluate import runner
from modelyard.evaluate.compare import compare, gate
from modelyard.evaluate.gates import GateRule
from modelyard.evaluate.judges import Judgements, pairwise, summary
from modelyard.evaluate.metrics import METRICS
from modelyard.evaluate.report import report, task_of
from modelyard.evaluate.runner import run_task
from modelyard.evaluate.runs import EvalRuns
from modelyard.evaluate.tasks import load_task
from modelyard.registry import Registry
from tests.conftest import AppClient, register_scripted

pytestmark = pytest.mark.anyio
ITEMS = 12


def task_file(tmp_path: Path) -> Path:
    data = "".join(json.dumps({"q": f"q{i}", "a": f"answer {i}"}) + "\n" for i in range(ITEMS))
    (tmp_path / "data.jsonl").write_text(data, encoding="utf-8")
    path = tmp_path / "echo.yaml"
    # The scripted model echoes the user's message, so a template holding the reference
    # makes a model that is always right.
    path.write_text(
        """
name: echo
dataset: {path: data.jsonl}
prompt: {template: "{{ a }}"}
target: a
filters: [{regex: "echo: (.*)"}]
metrics: [{name: exact_match}]
generation: {max_tokens: 8}
""",
        encoding="utf-8",
    )
    return path


class FailAfter(httpx.AsyncBaseTransport):
    """Passes ``allowed`` requests through, then breaks like a dropped connection."""

    def __init__(self, inner: httpx.AsyncBaseTransport, allowed: int) -> None:
        self.inner, self.allowed, self.sent = inner, allowed, 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/chat/completions":  # the items' questions
            self.sent += 1
            if self.sent > self.allowed:
                raise RuntimeError("interrupted")
        return await self.inner.handle_async_request(request)


class CancelWhileSaving(httpx.AsyncBaseTransport):
    """Answers until the first batch is full, then keeps the only worker thread busy
    before answering (so the batch's save waits for a thread), and cancels the run on the
    next question; the worker is let go a moment later."""

    def __init__(self, inner: httpx.AsyncBaseTransport, batch: int) -> None:
        self.inner, self.batch, self.sent = inner, batch, 0
        self.run: asyncio.Task[Any] | None = None
        self.worker_busy = threading.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/chat/completions":
            self.sent += 1
            loop = asyncio.get_running_loop()
            if self.sent == self.batch:
                loop.run_in_executor(None, self.worker_busy.wait, 10.0)
            elif self.sent == self.batch + 1 and self.run is not None:
                self.run.cancel()
                loop.call_later(0.2, self.worker_busy.set)
        return await self.inner.handle_async_request(request)


async def test_a_cancelled_run_keeps_the_batch_whose_save_waited_for_a_thread(
    api: AppClient, home_registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    register_scripted(home_registry, "echo")
    await api.reload_routes()
    task, items = load_task(task_file(tmp_path), set(METRICS))
    runs = EvalRuns(api.services.store)
    monkeypatch.setattr(runner, "SAVE_EVERY", 3)
    loop = asyncio.get_running_loop()
    loop.set_default_executor(ThreadPoolExecutor(max_workers=1))
    transport = CancelWhileSaving(httpx.ASGITransport(app=api.app), batch=3)
    try:
        async with httpx.AsyncClient(
            transport=transport, base_url="http://modelyard", headers=api.headers
        ) as client:
            transport.run = asyncio.ensure_future(
                run_task(client, runs, task, items, "echo", actor="tests", concurrency=1)
            )
            with pytest.raises(asyncio.CancelledError):
                await transport.run
    finally:
        transport.worker_busy.set()
        loop.set_default_executor(ThreadPoolExecutor())
    cancelled = runs.list_runs()[0]
    # The three answered items were saved although the run was cancelled while their
    # save still waited for the worker thread; the run can be resumed from there.
    assert transport.worker_busy.is_set() and transport.sent == 4
    assert cancelled.status == "running" and cancelled.done == 3
    assert runs.done_indices(cancelled.id) == set(runs.spec(cancelled.id)["indices"][:3])


async def test_runs_score_compare_gate_and_resume(
    api: AppClient, home_registry: Registry, tmp_path: Path
) -> None:
    register_scripted(home_registry, "echo")
    register_scripted(home_registry, "wrong", replies=["nope"])
    await api.reload_routes()
    task, items = load_task(task_file(tmp_path), set(METRICS))
    runs = EvalRuns(api.services.store)

    good = await run_task(api, runs, task, items, "echo", actor="tests", concurrency=3)
    assert good.status == "done" and good.done == ITEMS and good.versions == ["echo@1"]
    assert good.metrics["exact_match"]["value"] == 1.0
    bad = await run_task(api, runs, task, items, "wrong", actor="tests")
    assert bad.metrics["exact_match"]["value"] == 0.0
    sampled = await run_task(api, runs, task, items, "echo", actor="tests", limit=5, seed=1)
    assert sampled.item_count == 5 and sampled.done == 5

    answers = runs.items(good.id)
    assert all(a.request_id and a.request_id.startswith("req_") for a in answers)
    assert all(a.prompt_tokens > 0 and a.completion_tokens > 0 for a in answers)
    await api.logged()  # every eval request is in the request log like any other
    logged = (await api.get("/api/requests?route=echo&limit=1000")).json()["data"]
    assert {a.request_id for a in answers} <= {r["id"] for r in logged}

    # Interrupted after 5 requests: the finished items are kept and not asked again.
    broken = FailAfter(httpx.ASGITransport(app=api.app), allowed=5)
    async with httpx.AsyncClient(
        transport=broken, base_url="http://modelyard", headers=api.headers
    ) as flaky:
        with pytest.raises(RuntimeError, match="interrupted"):
            await run_task(flaky, runs, task, items, "echo", actor="tests", concurrency=1)
    interrupted = runs.list_runs()[0]
    assert interrupted.status == "running" and interrupted.done == 5
    counting = FailAfter(httpx.ASGITransport(app=api.app), allowed=10_000)
    async with httpx.AsyncClient(
        transport=counting, base_url="http://modelyard", headers=api.headers
    ) as client:
        resumed = await run_task(
            client, runs, task, items, "echo", actor="tests", resume=interrupted.id
        )
    assert counting.sent == ITEMS - 5 and resumed.done == ITEMS and resumed.status == "done"
    assert resumed.metrics["exact_match"]["value"] == 1.0

    versus = compare(task, bad, runs.items(bad.id), good, answers)
    assert versus["significant"] is True and versus["mcnemar"]["candidate_only"] == ITEMS
    itself = compare(task, good, answers, good, answers)
    assert itself["significant"] is False and itself["mcnemar"]["p_value"] == 1.0
    rules = [GateRule(metric="exact_match", min_value=0.9)]
    assert gate(rules, task, good, answers).passed
    assert not gate(rules, task, bad, runs.items(bad.id)).passed

    spec = runs.spec(good.id)
    assert spec["facts"]["server_peak_rss_bytes"] > 10_000_000  # asked of /api/engines
    assert spec["facts"]["versions"]["echo@1"]["context_length"] == 4096  # the scripted default
    data = report(good, answers, home_registry, task_of(spec), facts=spec["facts"])
    assert data["server_peak_rss_bytes"] == spec["facts"]["server_peak_rss_bytes"]
    assert data["metrics"] == {"exact_match": 1.0}
    assert data["by_version"]["echo@1"]["metrics"] == {"exact_match": 1.0}
    assert data["worst"] == [] and data["latency_ms"]["p50"] > 0
    worst = report(bad, runs.items(bad.id), home_registry, task_of(runs.spec(bad.id)))["worst"]
    assert len(worst) == 10 and worst[0]["prediction"] == "nope"


def test_the_cli_fails_fast_and_gates_with_an_exit_code(
    home_registry: Registry, tmp_path: Path
) -> None:
    register_scripted(home_registry, "echo")
    register_scripted(home_registry, "wrong", replies=["nope"])
    path = task_file(tmp_path)
    cli = CliRunner()
    broken = tmp_path / "broken.yaml"
    broken.write_text(path.read_text().replace("{{ a }}", "{{ answer }}"))
    refused = cli.invoke(main, ["eval", "run", str(broken), "-m", "echo"])
    assert refused.exit_code == 1 and "uses field(s) answer" in refused.output
    good = cli.invoke(main, ["eval", "run", str(path), "-m", "echo", "--json"])
    assert good.exit_code == 0, good.output
    good_id = json.loads(good.output)["id"]
    bad = cli.invoke(main, ["eval", "run", str(path), "-m", "wrong", "--json"])
    bad_id = json.loads(bad.output)["id"]
    rules = tmp_path / "gate.yaml"
    rules.write_text("- {metric: exact_match, min_value: 0.9}\n")
    passed = cli.invoke(main, ["eval", "gate", str(good_id), "--rules", str(rules)])
    assert passed.exit_code == 0 and "gate passed" in passed.output
    failed = cli.invoke(main, ["eval", "gate", str(bad_id), "--rules", str(rules)])
    assert failed.exit_code == 1 and "gate FAILED" in failed.output
    compared = cli.invoke(main, ["eval", "compare", str(bad_id), str(good_id), "--json"])
    assert compared.exit_code == 0 and json.loads(compared.output)["significant"] is True
    listed = cli.invoke(main, ["eval", "list", "--json"])
    assert [r["id"] for r in json.loads(listed.output)] == [bad_id, good_id]
    out = tmp_path / "report.json"
    written = cli.invoke(main, ["eval", "report", str(good_id), "--out", str(out)])
    assert written.exit_code == 0 and json.loads(out.read_text())["metrics"] == {"exact_match": 1.0}


async def test_api_and_console_show_runs_reports_and_comparisons(
    api: AppClient, home_registry: Registry, tmp_path: Path
) -> None:
    register_scripted(home_registry, "echo")
    register_scripted(home_registry, "wrong", replies=["nope"])
    await api.reload_routes()
    task, items = load_task(task_file(tmp_path), set(METRICS))
    runs = EvalRuns(api.services.store)
    good = await run_task(api, runs, task, items, "echo", actor="tests")
    bad = await run_task(api, runs, task, items, "wrong", actor="tests")
    listed = (await api.get("/api/eval/runs")).json()["data"]
    assert [r["id"] for r in listed] == [bad.id, good.id]
    await api.logged()
    data = (await api.get(f"/api/eval/runs/{bad.id}/report")).json()
    assert data["metrics"] == {"exact_match": 0.0} and len(data["worst"]) == 10
    assert data["costs"]["logged"] == ITEMS and data["costs"]["energy_wh"] > 0
    assert len((await api.get(f"/api/eval/runs/{good.id}/items")).json()) == ITEMS
    versus = (await api.get(f"/api/eval/compare?baseline={bad.id}&candidate={good.id}")).json()
    assert versus["differences"]["exact_match"]["difference"] == 1.0
    assert (await api.get("/api/eval/runs/999")).status_code == 404
    page = (await api.get("/ui/eval")).text
    assert f'href="/ui/eval/runs/{good.id}"' in page
    report_page = (await api.get(f"/ui/eval/runs/{bad.id}")).text
    assert "nope" in report_page and "exact_match" in report_page
    compare_page = (await api.get(f"/ui/eval/compare?baseline={bad.id}&candidate={good.id}")).text
    assert "+1.0000" in compare_page and "McNemar" in compare_page


async def test_rubric_and_pairwise_judges_keep_their_prompts_and_outputs(
    api: AppClient, home_registry: Registry, tmp_path: Path
) -> None:
    register_scripted(home_registry, "echo")
    register_scripted(home_registry, "wrong", replies=["nope"])
    register_scripted(home_registry, "grader", replies=["Score: 4"])
    register_scripted(home_registry, "picker", replies=["A"])  # always the first answer
    register_scripted(home_registry, "mute", replies=["no idea"])
    await api.reload_routes()
    path = task_file(tmp_path)
    path.write_text(
        path.read_text()
        + "judges:\n"
        + "  - {name: quality, model: grader, rubric: 'Is it right?', scale: [1, 5]}\n"
        + "  - {name: silent, model: mute, rubric: 'Is it right?'}\n"
    )
    task, items = load_task(path, set(METRICS))
    runs = EvalRuns(api.services.store)
    good = await run_task(api, runs, task, items, "echo", actor="tests")
    assert good.metrics["judge:quality"]["value"] == 4.0
    assert good.metrics["judge:quality"]["scored"] == ITEMS
    assert good.metrics["judge:silent"]["value"] is None  # no score in "no idea"
    assert good.metrics["judge:silent"]["failed"] == ITEMS
    stored = Judgements(api.services.store).of_run(good.id)
    quality = [j for j in stored if j["judge"] == "quality"]
    assert len(quality) == ITEMS and quality[0]["outputs"] == ["Score: 4"]
    assert "Answer to grade:\necho: answer" in quality[0]["prompts"][0]

    bad = await run_task(api, runs, task, items, "wrong", actor="tests")
    answers_b, answers_c = runs.items(bad.id), runs.items(good.id)
    judged = await pairwise(
        api, "picker", "Which is right?", [a.question for a in answers_c], answers_b, answers_c
    )
    # A judge that always says "A" picks the candidate first, the baseline when swapped:
    # position bias shows up as a tie, never as a win.
    assert {j.score for j in judged} == {0.5}
    assert all(len(j.prompts) == 2 and j.outputs == ["A", "A"] for j in judged)
    assert "Answer A:\necho: answer" in judged[0].prompts[0]
    assert "Answer B:\necho: answer" in judged[0].prompts[1]
    assert summary(judged)["value"] == 0.5
