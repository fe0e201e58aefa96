"""Datasets: content-hashed versions from files and from the request log, three faces."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from modelyard.cli import main
from modelyard.evaluate.datasets import (
    DatasetNotFound,
    DatasetService,
    EmptyDataset,
    InvalidDataset,
)
from modelyard.evaluate.tasks import TaskError
from modelyard.registry import Registry
from modelyard.store import Store
from modelyard.store.tables import AuditEventRow, DatasetItemRow
from tests.conftest import AppClient, bearer, new_key, register_scripted

ROWS = [{"question": "2+2?", "answer": "4"}, {"question": "3+3?", "answer": "6"}]


def _jsonl(path: Path, rows: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


# -- the service ------------------------------------------------------------------------


def test_a_new_version_only_when_the_content_changes(store: Store, tmp_path: Path) -> None:
    service = DatasetService(store)
    first = service.register_file("math", _jsonl(tmp_path / "a.jsonl", ROWS), actor="tests")
    assert (first.version, first.item_count, first.source["kind"]) == (1, 2, "file")
    again = service.register_file("math", _jsonl(tmp_path / "b.jsonl", ROWS), actor="tests")
    assert again == first  # same items, other file: the same version
    csv = tmp_path / "c.csv"
    csv.write_text("question,answer\n2+2?,4\n3+3?,6\n4+4?,8\n", encoding="utf-8")
    second = service.register_file("math", csv, actor="tests")
    assert (second.version, second.item_count) == (2, 3) and second.sha256 != first.sha256
    back = service.register_file("math", tmp_path / "a.jsonl", actor="tests")
    assert back.version == 3  # only the latest is compared: returning to old content is news

    assert service.get("math").version == 3
    assert service.get("math", 2).sha256 == second.sha256
    assert service.items("math", 2)[2] == {"question": "4+4?", "answer": "8"}
    assert service.items("math", 2, offset=1, limit=1) == [{"question": "3+3?", "answer": "6"}]
    assert [d.version for d in service.versions("math")] == [3, 2, 1]
    lines = list(service.export_jsonl("math", 1))
    assert [json.loads(line) for line in lines] == ROWS
    other = service.register_items("other", [{"x": 1}], {"kind": "inline"}, actor="tests")
    assert [(d.name, d.version) for d in service.list_datasets()] == [("math", 3), (other.name, 1)]
    with store.session() as session:
        audited = session.scalar(
            select(func.count()).where(AuditEventRow.action == "dataset.create")
        )
    assert audited == 4


def test_what_cannot_become_a_dataset(store: Store, tmp_path: Path) -> None:
    service = DatasetService(store)
    with pytest.raises(DatasetNotFound, match="no dataset 'nope'"):
        service.get("nope")
    with pytest.raises(DatasetNotFound):
        service.versions("nope")
    service.register_items("d", [{"x": 1}], {}, actor="tests")
    with pytest.raises(DatasetNotFound, match="version 9"):
        service.items("d", 9)
    with pytest.raises(EmptyDataset):
        service.register_items("d", [], {}, actor="tests")
    with pytest.raises(InvalidDataset, match="invalid dataset name"):
        service.register_items("a b@1", [{"x": 1}], {}, actor="tests")
    with pytest.raises(TaskError, match="does not exist"):
        service.register_file("d", tmp_path / "missing.jsonl", actor="tests")
    with pytest.raises(EmptyDataset, match="no logged request matches"):
        service.from_log(
            "d",
            route=None,
            feedback="thumbs",
            negative_only=True,
            since=datetime.now(UTC) - timedelta(days=1),
            until=None,
            limit=10,
            open_content=lambda blob: blob,
            actor="tests",
        )


# -- the API ----------------------------------------------------------------------------


@pytest.fixture
async def dapi(api: AppClient) -> AppClient:
    """The full app as its admin (the datasets routes are part of it)."""
    return api


ASK = {"model": "bot", "messages": [{"role": "user", "content": "hi"}]}


async def _ask(api: AppClient, key: str, text: str) -> str:
    body = {**ASK, "messages": [{"role": "user", "content": text}]}
    response = await api.post("/v1/chat/completions", json=body, headers=bearer(key))
    assert response.status_code == 200, response.text
    return response.headers["x-modelyard-request-id"]


async def _thumbs(
    api: AppClient, key: str, request_id: str, value: bool, comment: str = ""
) -> None:
    feedback = {"request_id": request_id, "name": "thumbs", "value": value, "comment": comment}
    given = await api.post("/v1/feedback", json=feedback, headers=bearer(key))
    assert given.status_code == 201, given.text


@pytest.mark.anyio
async def test_from_log_keeps_the_negative_judged_requests(
    dapi: AppClient, home_registry: Registry
) -> None:
    register_scripted(home_registry, "bot")  # echoes the user's message
    await dapi.reload_routes()
    alice, bob = await new_key(dapi), await new_key(dapi)
    bad_a = await _ask(dapi, alice, "capital of France?")
    good = await _ask(dapi, alice, "2+2?")
    bad_b = await _ask(dapi, bob, "translate 'cat'")
    await _ask(dapi, bob, "unjudged")
    await _thumbs(dapi, alice, bad_a, False, "wrong city")
    await _thumbs(dapi, alice, good, True)
    await _thumbs(dapi, bob, bad_b, False)
    await dapi.logged()

    body = {"name": "regressions", "route": "bot", "feedback": "thumbs", "negative_only": True}
    made = await dapi.post("/api/datasets/from-log", json=body)
    assert made.status_code == 201, made.text
    out = made.json()
    assert (out["name"], out["version"], out["item_count"]) == ("regressions", 1, 2)
    assert out["source"]["kind"] == "log" and out["source"]["skipped_without_content"] == 0
    assert out["created_by"].startswith("key:")

    detail = (await dapi.get("/api/datasets/regressions/1")).json()
    items = detail["items"]
    assert [item["request_id"] for item in items] == [bad_a, bad_b]
    first = items[0]
    assert first["input"] == "capital of France?"
    assert first["output"] == "echo: capital of France?"
    assert first["messages"] == [{"role": "user", "content": "capital of France?"}]
    assert first["corrected"] is None and first["route"] == "bot"
    assert first["feedback"] == [{"name": "thumbs", "value": False, "comment": "wrong city"}]
    with dapi.services.store.session() as session:
        kept = sorted(str(r) for r in session.scalars(select(DatasetItemRow.request_id)))
    assert kept == sorted([bad_a, bad_b])

    again = await dapi.post("/api/datasets/from-log", json=body)
    assert again.json()["version"] == 1  # the same requests: the same version
    everything = await dapi.post("/api/datasets/from-log", json={**body, "negative_only": False})
    assert everything.json()["version"] == 2 and everything.json()["item_count"] == 3

    listed = (await dapi.get("/api/datasets")).json()["data"]
    assert [(d["name"], d["version"]) for d in listed] == [("regressions", 2)]
    versions = (await dapi.get("/api/datasets/regressions")).json()["data"]
    assert [d["version"] for d in versions] == [2, 1]
    jsonl = await dapi.get("/api/datasets/regressions/1.jsonl")
    assert jsonl.headers["content-type"].startswith("application/x-ndjson")
    assert [json.loads(line)["request_id"] for line in jsonl.text.splitlines()] == [bad_a, bad_b]
    page = (await dapi.get("/api/datasets/regressions/2?offset=1&limit=1")).json()
    assert page["offset"] == 1 and len(page["items"]) == 1

    # Readers read, only admins build.
    reader = await new_key(dapi, role="viewer")
    assert (await dapi.get("/api/datasets", headers=bearer(reader))).status_code == 200
    refused = await dapi.post("/api/datasets/from-log", json=body, headers=bearer(reader))
    assert refused.status_code == 403


@pytest.mark.anyio
async def test_api_errors(dapi: AppClient, home_registry: Registry) -> None:
    for path in ("/api/datasets/nope", "/api/datasets/nope/1", "/api/datasets/nope/1.jsonl"):
        missing = await dapi.get(path)
        assert missing.status_code == 404, path
        assert missing.json()["error"]["code"] == "dataset_not_found"
    nothing = await dapi.post(
        "/api/datasets/from-log", json={"name": "d", "feedback": "thumbs", "negative_only": True}
    )
    assert nothing.status_code == 400
    assert "no logged request matches" in nothing.json()["error"]["message"]
    assert (
        await dapi.post("/api/datasets/from-log", json={"name": "d", "days": 0})
    ).status_code == 400


@pytest.mark.anyio
async def test_console_templates_render_the_json(dapi: AppClient, tmp_path: Path) -> None:
    service = DatasetService(dapi.services.store)
    service.register_file("math", _jsonl(tmp_path / "a.jsonl", ROWS), actor="tests")
    listed = (await dapi.get("/api/datasets")).json()["data"]
    detail = (await dapi.get("/api/datasets/math/1?limit=50")).json()
    versions = (await dapi.get("/api/datasets/math")).json()["data"]
    env = dapi.app.state.templates.env
    common = {
        "nav": (),
        "version": "test",
        "path": "/ui/datasets",
        "here": "/ui/datasets",
        "principal": None,
        "language": dapi.app.state.console_languages["en"],
        "languages": (),
    }
    page = env.get_template("datasets.html").render(
        **common, title="Datasets", value={"data": listed}, json_url="/api/datasets"
    )
    assert 'href="/ui/datasets/math/1"' in page and "file " in page
    one = env.get_template("dataset.html").render(
        **common, title="math@1", value=detail, versions=versions, json_url="/api/datasets/math/1"
    )
    assert "2+2?" in one and detail["sha256"] in one
    logged = {"request_id": "req_1", "input": "hi", "output": "echo: hi", "corrected": None}
    feedback = [{"name": "thumbs", "value": False, "comment": "rude"}]
    service.register_items("log", [{**logged, "feedback": feedback}], {"kind": "log"}, "tests")
    detail = (await dapi.get("/api/datasets/log/1")).json()
    one = env.get_template("dataset.html").render(
        **common, title="log@1", value=detail, versions=[]
    )
    assert 'href="/ui/requests/req_1"' in one and "thumbs=false" in one and "rude" in one


# -- the CLI ----------------------------------------------------------------------------


@pytest.fixture
def cli() -> click.Group:
    """The whole CLI, with its error handling."""
    return main


def test_cli_add_list_show_export(cli: click.Group, tmp_path: Path) -> None:
    runner = CliRunner()
    path = _jsonl(tmp_path / "a.jsonl", ROWS)

    def run(*args: str) -> str:
        result = runner.invoke(cli, ["datasets", *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    added = json.loads(run("add", "math", str(path), "--json"))
    assert [(d["name"], d["version"], d["item_count"]) for d in added] == [("math", 1, 2)]
    assert json.loads(run("add", "math", str(path), "--json"))[0]["version"] == 1
    tsv = tmp_path / "more.txt"
    tsv.write_text("1+1?\t2\n", encoding="utf-8")
    run("add", "math", str(tsv), "--format", "tsv", "--columns", "question,answer")
    assert "math" in run("list")
    shown = json.loads(run("show", "math@1", "--json", "--items", "1"))
    assert shown["version"] == 1 and shown["items"] == ROWS[:1]
    assert json.loads(run("show", "math", "--json"))["items"] == [
        {"question": "1+1?", "answer": "2"}
    ]
    exported = run("export", "math@1").splitlines()
    assert [json.loads(line) for line in exported] == ROWS

    for args, message in (
        (["show", "nope"], "no dataset 'nope'"),
        (["export", "math@7"], "version 7"),
        (["show", "math@x"], "NAME@VERSION"),
        (["add", "math", str(tmp_path / "missing.jsonl")], "does not exist"),
        (["from-log", "math", "--feedback", "thumbs", "--negative"], "no logged request"),
    ):
        result = runner.invoke(cli, ["datasets", *args])
        assert result.exit_code != 0 and message in result.output, (args, result.output)
        assert result.exception is None or isinstance(result.exception, SystemExit)
