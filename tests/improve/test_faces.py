"""Curation's three faces: the JSON API, the CLI and the console show one truth."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from markupsafe import escape

from modelyard.cli import main
from modelyard.config import Settings
from modelyard.evaluate.datasets import DatasetService
from modelyard.guard import crypto
from modelyard.store import open_store
from tests.conftest import AppClient, bearer, new_key
from tests.improve.synthetic import COUNTS, LogBuilder, write_log

pytestmark = pytest.mark.anyio
TOTAL = sum(COUNTS.values())


async def logged(api: AppClient) -> LogBuilder:
    builder = LogBuilder(seed=3).build()
    await write_log(api.services.store, api.services.guard.cipher, builder)
    return builder


async def test_the_api_previews_builds_lists_and_reads_a_curation(api: AppClient) -> None:
    await logged(api)
    body = {"name": "support", "label": "feedback:intent", "examples": 2}
    preview = await api.post("/api/curate/preview", json=body)
    assert preview.status_code == 200, preview.text
    assert preview.json()["dataset"] is None and preview.json()["report"]["read"] == TOTAL
    assert (await api.get("/api/datasets")).json()["data"] == []  # a preview builds nothing

    built = await api.post("/api/curate", json=body)
    assert built.status_code == 201, built.text
    out = built.json()
    dataset, report = out["dataset"], out["report"]
    assert report["read"] == TOTAL and report["kept"] == dataset["item_count"]
    assert report["kept"] + report["dropped"] == report["read"]
    assert report["pii"]["scrubbed"] is True and report["language_id"].startswith("py3langid")
    assert set(report["labels"]) == {"billing", "cards", "travel"}
    assert all(len(step["examples"]) <= 2 for step in report["steps"])
    said = preview.json()["report"]  # the preview said what would be built (but its time)
    assert [s["counts"] for s in said["steps"]] == [s["counts"] for s in report["steps"]]
    assert {**said, "steps": None} == {**report, "steps": None}

    listed = (await api.get("/api/curate")).json()["data"]
    assert [(d["name"], d["version"]) for d in listed] == [("support", 1)]
    again = await api.get("/api/curate/support/1")
    assert again.status_code == 200 and again.json() == out
    items = (await api.get("/api/datasets/support/1?limit=5")).json()["items"]
    assert all(item["request_ids"] and item["split"] for item in items)


async def test_api_errors_name_what_to_change(api: AppClient) -> None:
    viewer = bearer(await new_key(api, "viewer"))
    refused = await api.post("/api/curate", json={"name": "x"}, headers=viewer)
    assert refused.status_code == 403
    cases = [
        ({"name": "x", "log": None}, 400, "log"),
        ({"name": "x", "languages": ["en", "xx"]}, 400, "languages"),
        ({"name": "x", "splits": {"train": 0}}, 400, "splits.train"),
        ({"name": "x", "datasets": ["ghost@2"]}, 404, None),
        ({"name": "x"}, 400, None),  # an empty log: nothing is left to build
    ]
    for body, status, param in cases:
        answer = await api.post("/api/curate", json=body)
        assert answer.status_code == status, (body, answer.text)
        error = answer.json()["error"]
        assert error["message"] and (param is None or param in (error["param"] or "")), error
    assert (await api.get("/api/curate/ghost/1")).status_code == 404
    DatasetService(api.services.store).register_items(
        "plain", [{"x": "y"}], {"kind": "inline"}, "t"
    )
    plain = await api.get("/api/curate/plain/1")
    assert plain.status_code == 404 and plain.json()["error"]["code"] == "not_curated"


async def test_the_console_renders_what_the_api_returns(api: AppClient) -> None:
    await logged(api)
    built = await api.post("/api/curate", json={"name": "support"})
    assert built.status_code == 201, built.text
    page = await api.get("/ui/curate")
    assert page.status_code == 200
    assert 'href="/ui/curate/support/1"' in page.text and 'id="curate"' in page.text
    assert (
        page.headers["link"] == '</api/curate?limit=100>; rel="alternate"; type="application/json"'
    )
    detail = await api.get("/ui/curate/support/1")
    assert detail.status_code == 200
    value = (await api.get("/api/curate/support/1")).json()
    report = value["report"]
    text = detail.text
    assert f'id="read">{report["read"]}<' in text and f'id="kept">{report["kept"]}<' in text
    for reason, count in report["dropped_by"].items():
        assert f"{reason} {count}" in text
    for step in report["steps"]:
        assert escape(step["what"]) in text
        assert all(escape(e["text"]) in text for e in step["examples"])
    assert 'href="/api/curate/support/1"' in text
    viewer = bearer(await new_key(api, "viewer"))
    seen = await api.get("/ui/curate", headers=viewer)
    assert seen.status_code == 200 and 'id="curate"' not in seen.text  # no form to use


def test_the_cli_builds_reports_and_lists_every_drop(tmp_path: Path) -> None:
    settings = Settings()
    settings.ensure_home()
    store = open_store(settings.store_url)
    asyncio.run(write_log(store, crypto.load_or_create(settings.home), LogBuilder(seed=5).build()))
    store.close()
    cli = CliRunner()
    dry = cli.invoke(main, ["curate", "support", "--dry-run", "--json"], catch_exceptions=False)
    assert dry.exit_code == 0, dry.output
    preview = json.loads(dry.output)
    assert preview["dataset"] is None and preview["report"]["read"] == TOTAL
    dropped = tmp_path / "dropped.jsonl"
    args = [
        "curate",
        "support",
        "--keep",
        "truncated",
        "--split",
        "70/15/15",
        "--dropped",
        str(dropped),
    ]
    built = cli.invoke(main, args, catch_exceptions=False, env={"COLUMNS": "300"})
    assert built.exit_code == 0, built.output
    assert "support@1:" in built.output and "near_duplicates" in built.output
    lines = [json.loads(line) for line in dropped.read_text().splitlines()]
    reasons = {line["reason"] for line in lines}
    assert "truncated" not in reasons and {"failed", "near_duplicate"} <= reasons
    assert all(line["request_ids"] and line["step"] for line in lines)
    shown = cli.invoke(main, ["datasets", "show", "support", "--json", "--items", "0"])
    source = json.loads(shown.output)["source"]
    assert source["kind"] == "curated" and source["request"]["splits"]["train"] == 70
    assert len(lines) == source["report"]["dropped"]
    wrong = cli.invoke(main, ["curate", "x", "--language", "xx"])
    assert wrong.exit_code == 1 and "unknown language code(s) xx" in wrong.output
