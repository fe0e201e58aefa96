"""The export's three faces: the JSON API (the manifest, the streamed bytes), the CLI and the
console page show one truth; mistakes are OpenAI-shaped 4xx and one-line CLI errors."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from modelyard.cli import main
from modelyard.config import Settings
from modelyard.improve.export.exports import export_bytes
from modelyard.registry import Registry
from modelyard.store import Store, open_store
from tests.conftest import AppClient, bearer, new_key
from tests.improve.export.data import TRAIN, register

pytestmark = pytest.mark.anyio


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    return error


async def test_the_api_streams_the_bytes_its_manifest_describes(api: AppClient) -> None:
    store = api.services.store
    register(store)
    made = await api.post("/api/finetune/exports", json={"dataset": "support", "split": "train"})
    assert made.status_code == 201, made.text
    manifest = made.json()
    assert manifest["dataset"] == "support@1" and manifest["counts"]["written"] == len(TRAIN)
    assert (await api.get(f"/api/finetune/exports/{manifest['id']}")).json() == manifest
    file = await api.get(manifest["file_url"])
    assert file.status_code == 200
    assert file.headers["content-type"] == "application/x-ndjson"
    assert file.headers["x-modelyard-export-sha256"] == manifest["sha256"]
    assert file.headers["etag"] == f'"{manifest["sha256"]}"'
    assert int(file.headers["content-length"]) == manifest["bytes"] == len(file.content)
    assert 'filename="support-1-train-openai.jsonl"' in file.headers["content-disposition"]
    assert hashlib.sha256(file.content).hexdigest() == manifest["sha256"]
    _, chunks = export_bytes(store, manifest["id"])
    assert file.content == b"".join(chunks)  # the route streams what the function yields
    listed = (await api.get("/api/finetune")).json()
    assert listed == {"exports": [manifest], "finetunes": []}


async def test_api_mistakes_are_openai_shaped_and_store_nothing(api: AppClient) -> None:
    register(api.services.store)
    missing = await api.post("/api/finetune/exports", json={"dataset": "support@7"})
    assert error_of(missing, 404)["code"] == "dataset_not_found"
    bad = await api.post("/api/finetune/exports", json={"dataset": "support", "format": "csv"})
    assert error_of(bad, 400)["param"] == "format"
    empty = await api.post("/api/finetune/exports", json={"dataset": "support", "split": "x"})
    error = error_of(empty, 400)
    assert (error["code"], error["param"]) == ("invalid_export", "split")
    assert error["type"] == "invalid_request_error" and "nothing to export" in error["message"]
    assert error_of(await api.get("/api/finetune/exports/99"), 404)["code"] == "export_not_found"
    assert error_of(await api.get("/api/finetune/exports/99/file"), 404)["code"] == (
        "export_not_found"
    )
    viewer = bearer(await new_key(api, "viewer"))
    refused = await api.post("/api/finetune/exports", json={"dataset": "support"}, headers=viewer)
    assert refused.status_code == 403
    assert (await api.get("/api/finetune")).json() == {"exports": [], "finetunes": []}


async def test_the_console_page_shows_exports_and_fine_tunes(api: AppClient) -> None:
    register(api.services.store)
    made = (await api.post("/api/finetune/exports", json={"dataset": "support"})).json()
    body = {
        "model": "ft",
        "from_export": str(made["id"]),
        "upstream": "http://127.0.0.1:9/v1",
        "upstream_model": "ft:support",
        "trainer_job": "ftjob-42",
    }
    assert (await api.post("/api/finetune/models", json=body)).status_code == 201
    page = await api.get("/ui/finetune")
    assert page.status_code == 200
    assert (
        page.headers["link"]
        == '</api/finetune?limit=100>; rel="alternate"; type="application/json"'
    )
    twin = (await api.get("/api/finetune?limit=100")).json()
    export, finetune = twin["exports"][0], twin["finetunes"][0]
    assert f'href="{export["file_url"]}"' in page.text and export["sha256"][:12] in page.text
    assert "ft@1" in page.text and "ftjob-42" in page.text
    assert finetune["lineage"]["kind"] == "finetune" and '"kind": "finetune"' in page.text


@pytest.fixture
def home_store(home_registry: Registry) -> Iterator[Store]:
    """The store the CLI opens (MODELYARD_HOME's), with the dataset."""
    store = open_store(Settings().store_url)
    register(store)
    yield store
    store.close()


def run(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == code, result.output
    return result.output


def test_the_cli_exports_lists_and_registers(home_store: Store, tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    said = run("finetune", "export", "support", "--split", "train", "-o", str(path))
    assert f"{len(TRAIN)} conversations (1 corrected)" in said
    manifest = json.loads(run("finetune", "list", "--json"))["exports"][0]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == manifest["sha256"]
    everything = tmp_path / "all.jsonl"
    said = run("finetune", "export", "support@1", "-o", str(everything), "--format", "sharegpt")
    assert "skipped 4 items that cannot be converted" in said and "no_answer: 1" in said
    registered = run(
        "finetune", "register", "ft", "--from-export", "support@1", "--split", "train",
        "--upstream", "http://127.0.0.1:9/v1", "--upstream-model", "ft:support",
        "--param", "epochs=3", "--param", "learning_rate=2e-5", "--trainer-job", "job-1",
        "--json",
    )  # fmt: skip
    lineage = json.loads(registered)["lineage"]
    assert lineage["export"]["id"] == manifest["id"]  # the export the CLI recorded
    assert lineage["trainer"] == {
        "name": None,
        "job": "job-1",
        "hyperparameters": {"epochs": 3, "learning_rate": 2e-5},
    }
    listed = run("finetune", "list")
    assert "ft@1" in listed and "job-1" in listed


def test_cli_mistakes_are_one_line(home_store: Store, tmp_path: Path) -> None:
    out = str(tmp_path / "x.jsonl")
    said = run("finetune", "export", "support@3", "-o", out, code=1)
    assert said == "Error: no dataset 'support' version 3 (see `modelyard datasets list`)\n"
    assert "'xml' is not one of" in run(
        "finetune", "export", "support", "-o", out, "--format", "xml", code=2
    )
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"not a model at all, just text")
    said = run(
        "finetune", "register", "ft", "--from-export", "support@1", "--gguf", str(fake), code=1
    )
    assert "is not a GGUF file" in said
    said = run(
        "finetune",
        "register",
        "ft",
        "--from-export",
        "9",
        "--upstream",
        "http://h/v1",
        "--upstream-model",
        "m",
        code=1,
    )
    assert said.startswith("Error: no export 9")
    assert json.loads(run("finetune", "list", "--json")) == {"exports": [], "finetunes": []}
    assert not (tmp_path / "x.jsonl").exists()
