"""What an external trainer made, registered with the export's lineage: a real GGUF (the
default model's, registered as a "fine-tune" of itself) that then serves chat, an upstream
model behind a fake OpenAI-compatible server, and refusals that store nothing."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelyard.bootstrap import smollm2_path
from tests.conftest import AppClient
from tests.fake_vllm import MODEL, fake_vllm
from tests.improve.export.data import TRAIN, register

pytestmark = pytest.mark.anyio
USER = [{"role": "user", "content": "Say hi"}]


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    return error


@pytest.mark.model
async def test_a_gguf_is_registered_with_its_lineage_and_serves(api: AppClient) -> None:
    dataset = register(api.services.store)
    gguf = smollm2_path()
    body = {
        "model": "ft",
        "from_export": "support@1",
        "split": "train",
        "gguf": str(gguf),
        "base": "HuggingFaceTB/SmolLM2-135M-Instruct",
        "trainer": "axolotl",
        "trainer_job": "job-7",
        "hyperparameters": {"epochs": 3, "learning_rate": 2e-5, "lora": True},
        "parameters": {"n_ctx": 1024},
    }
    made = await api.post("/api/finetune/models", json=body)
    assert made.status_code == 201, made.text
    out = made.json()
    (export,) = (await api.get("/api/finetune")).json()["exports"]  # made for this
    assert (export["dataset"], export["split"], export["format"]) == (
        "support@1",
        "train",
        "openai",
    )
    lineage = out["lineage"]
    assert lineage["export"] == {
        "id": export["id"],
        "format": "openai",
        "split": "train",
        "sha256": export["sha256"],
        "bytes": export["bytes"],
        "conversations": len(TRAIN),
    }
    assert lineage["dataset"] == {"name": "support@1", "sha256": dataset.sha256, "kind": "test"}
    assert lineage["base"] == body["base"]
    assert lineage["trainer"] == {
        "name": "axolotl",
        "job": "job-7",
        "hyperparameters": body["hyperparameters"],
    }
    digest = hashlib.sha256(gguf.read_bytes()).hexdigest()
    artifact = lineage["artifact"]
    assert (artifact["engine_kind"], artifact["uri"], artifact["sha256"]) == (
        "llamacpp",
        str(gguf.resolve()),
        digest,
    )
    assert artifact["gguf"]["version"] == 3 and artifact["gguf"]["tensors"] > 0
    assert (await api.get("/api/finetune/models/ft/1")).json() == out
    version = (await api.get("/api/models/ft/versions/1")).json()
    assert version["artifact_sha256"] == digest and version["parameters"] == {"n_ctx": 1024}
    assert "job-7" in version["notes"] and f"export {export['id']}" in version["notes"]
    again = await api.post("/api/finetune/models", json={**body, "from_export": "support@1"})
    assert again.json()["lineage"]["export"]["id"] == export["id"]  # the recorded export
    answer = await api.post(
        "/v1/chat/completions",
        json={"model": "ft@1", "messages": USER, "max_tokens": 4, "temperature": 0},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["choices"][0]["message"]["content"]
    assert answer.headers["x-modelyard-version"] == "ft@1"


@pytest.fixture
def upstream() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    with fake_vllm() as running:
        yield running


async def test_an_upstream_model_is_registered_and_served(
    api: AppClient, upstream: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = upstream
    register(api.services.store)
    made = await api.post(
        "/api/finetune/exports", json={"dataset": "support", "format": "sharegpt"}
    )
    body = {
        "model": "remote-ft",
        "from_export": str(made.json()["id"]),
        "upstream": url,
        "upstream_model": MODEL,
        "trainer": "vllm-finetune",
    }
    registered = await api.post("/api/finetune/models", json=body)
    assert registered.status_code == 201, registered.text
    out = registered.json()
    assert (out["engine_kind"], out["artifact_uri"], out["artifact_sha256"]) == (
        "upstream",
        url,
        None,
    )
    lineage = out["lineage"]
    assert lineage["export"]["format"] == "sharegpt" and lineage["export"]["split"] is None
    assert lineage["artifact"] == {
        "engine_kind": "upstream",
        "uri": url,
        "sha256": None,
        "upstream_model": MODEL,
    }
    version = (await api.get("/api/models/remote-ft/versions/1")).json()
    assert version["parameters"] == {"model": MODEL}
    answer = await api.post("/v1/chat/completions", json={"model": "remote-ft@1", "messages": USER})
    assert answer.status_code == 200, answer.text
    assert received[-1]["model"] == MODEL
    listed = (await api.get("/api/finetune")).json()["finetunes"]
    assert [f["id"] for f in listed] == [out["id"]]


def gguf_file(tmp_path: Path, version: int = 3, tensors: int = 1) -> str:
    path = tmp_path / f"v{version}-{tensors}.gguf"
    path.write_bytes(struct.pack("<4sIQQ", b"GGUF", version, tensors, 4) + b"\0" * 64)
    return str(path)


@pytest.mark.parametrize(
    ("change", "status", "param", "says"),
    [
        ({"from_export": "support@9"}, 404, None, "no dataset 'support' version 9"),
        ({"from_export": "nothing@1"}, 404, None, "no dataset 'nothing'"),
        ({"from_export": "77"}, 404, "from_export", "no export 77"),
        ({"from_export": "support"}, 400, "from_export", "match pattern"),
        ({"gguf": "NOT_GGUF"}, 400, "gguf", "is not a GGUF file"),
        ({"gguf": "MISSING"}, 400, "gguf", "is not a file"),
        ({"gguf": "V1"}, 400, "gguf", "GGUF version 1"),
        ({"gguf": "EMPTY"}, 400, "gguf", "holds no tensors"),
        ({"upstream": "http://h/v1"}, 400, "gguf", "exactly one of gguf"),
        ({"gguf": None}, 400, "gguf", "exactly one of gguf"),
        ({"upstream_model": "m"}, 400, "upstream_model", "goes with upstream"),
        ({"gguf": None, "upstream": "http://h/v1"}, 400, "upstream_model", "needs"),
        ({"gguf": None, "upstream": "ftp://h", "upstream_model": "m"}, 400, "upstream", "http"),
        ({"format": "sharegpt"}, 400, "format", "has its own format"),
        ({"parameters": {"n_ctxx": 5}}, 400, "parameters", "unknown parameter 'n_ctxx'"),
        ({"model": "bad name"}, 400, "model", "pattern"),
    ],
)
async def test_refusals_store_nothing(
    api: AppClient,
    tmp_path: Path,
    change: dict[str, Any],
    status: int,
    param: str | None,
    says: str,
) -> None:
    register(api.services.store)
    files = {
        "NOT_GGUF": str(tmp_path / "text.gguf"),
        "MISSING": str(tmp_path / "missing.gguf"),
        "V1": gguf_file(tmp_path, version=1),
        "EMPTY": gguf_file(tmp_path, tensors=0),
    }
    (tmp_path / "text.gguf").write_text("a model, honest")
    body = {"model": "ft", "from_export": "support@1", "gguf": gguf_file(tmp_path), **change}
    if body.get("gguf") in files:
        body["gguf"] = files[body["gguf"]]
    if change.get("format"):
        body["from_export"] = "1"  # an export id has its own format
    error = error_of(await api.post("/api/finetune/models", json=body), status)
    assert says in error["message"], error
    if param is not None:
        assert error["param"] == param
    assert (await api.get("/api/finetune")).json() == {"exports": [], "finetunes": []}
    assert error_of(await api.get("/api/models/ft"), 404)["code"] == "not_found"
