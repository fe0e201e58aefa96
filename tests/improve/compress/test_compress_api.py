"""Compression through the JSON API on the packaged models: a GGUF's variants registered,
measured beside the parent, served, compared text by text and gated; the int8 embedding
model judged by agreement with the float one and by classification accuracy on banking77;
and each refusal a 400 or 404 that names what to change."""

from __future__ import annotations

import math
from typing import Any

import pytest

from modelyard.bootstrap import minilm_dir, smollm2_path
from modelyard.evaluate.datasets import DatasetService
from modelyard.registry import Registry
from modelyard.registry.protocol import VersionCreate
from tests.conftest import AppClient, register_scripted
from tests.improve.banking77 import banking77_rows

pytestmark = pytest.mark.anyio

SENTENCES = [
    "The cat sat on the mat and looked out of the window.",
    "Paris is the capital of France and its largest city.",
    "I would like to know how long a transfer to another bank takes.",
    "Water boils at one hundred degrees Celsius at sea level.",
    "She walked to the station because the bus was late again.",
    "Please send me the report before the meeting on Monday.",
    "The children played football in the park until it got dark.",
    "My card was declined at the shop although I have money.",
    "The river flows through the valley towards the sea.",
    "He forgot his umbrella and got wet on the way home.",
    "Can you tell me why my account was charged twice?",
    "The museum opens at nine in the morning on weekdays.",
]


def add_smollm(registry: Registry) -> None:
    registry.add_version(
        "smol",
        VersionCreate(engine_kind="llamacpp", artifact_uri=str(smollm2_path())),
        actor="tests",
    )


async def finished(api: AppClient, compression_id: int) -> dict[str, Any]:
    await api.app.state.improve_jobs.wait(f"compress:{compression_id}")
    response = await api.get(f"/api/compress/{compression_id}")
    assert response.status_code == 200, response.text
    out: dict[str, Any] = response.json()
    return out


async def test_gguf_variants_are_registered_measured_served_and_gated(
    home_registry: Registry, api: AppClient
) -> None:
    add_smollm(home_registry)
    gate = [{"metric": "perplexity", "greater_is_better": False, "max_relative_drop": 0.05}]
    response = await api.post(
        "/api/compress",
        json={
            "model": "smol",
            "version": 1,
            "to": ["Q8_0", "Q2_K"],
            "texts": {"texts": SENTENCES},
            "streams": [1],
            "max_tokens": 16,
            "gate": gate,
        },
    )
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "running"
    out = await finished(api, response.json()["id"])
    assert out["status"] == "done" and out["stage"] == "done", out["message"]
    parent, q8, q2 = out["variants"]
    assert (parent["role"], parent["version"], parent["method"]) == ("parent", 1, "Q4_1")
    assert [(row["version"], row["method"]) for row in (q8, q2)] == [(2, "Q8_0"), (3, "Q2_K")]
    assert "re-quantised" in parent["notes"][0]
    for row in (q8, q2):
        lineage = row["lineage"]
        assert lineage["parent"]["version"] == 1 and lineage["method"] == row["method"]
        assert lineage["requantised"] is True and lineage["parent"]["type"] == "Q4_1"
        version = home_registry.version("smol", row["version"])
        assert version.engine_kind == "llamacpp" and version.artifact_sha256
        assert f"{row['method']} variant of smol@1" in version.notes
    sizes = {row["method"]: row["measurements"]["size_mb"] for row in out["variants"]}
    assert sizes["Q8_0"] > sizes["Q4_1"] > sizes["Q2_K"]
    for row in out["variants"]:
        measured = row["measurements"]
        assert measured["perplexity_texts"] == len(SENTENCES)
        assert measured["tokens_per_s_1"] > 0 and measured["rss_mb"] > 0
    # Q8_0 holds Q4_1's values almost exactly; Q2_K rounds them away.
    assert abs(q8["comparison"]["nll_per_token"]["perplexity_ratio"] - 1) < 0.02
    assert q8["gate"]["passed"] is True
    worse = q2["comparison"]["nll_per_token"]
    assert worse["difference"] > 0 and worse["texts"] == len(SENTENCES)
    assert math.isclose(worse["perplexity_ratio"], math.exp(worse["difference"]), rel_tol=1e-3)
    assert q2["measurements"]["perplexity"] > parent["measurements"]["perplexity"]
    assert q2["gate"]["passed"] is (
        q2["measurements"]["perplexity"] <= 1.05 * parent["measurements"]["perplexity"]
    )
    assert parent["pareto"] is True  # nothing is both smaller and better than the source
    assert [axis["role"] for axis in out["axes"]] == ["quality", "size", "speed"]
    # The variant is a version like any other: served by name@version.
    await api.reload_routes()
    answer = await api.post(
        "/v1/chat/completions",
        json={"model": "smol@3", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4},
    )
    assert answer.status_code == 200, answer.text
    listed = (await api.get("/api/compress", params={"model": "smol"})).json()["data"]
    assert [item["id"] for item in listed] == [out["id"]]


async def test_the_int8_embedding_model_agrees_with_the_float_one(
    home_registry: Registry, api: AppClient
) -> None:
    rows = [row for row in banking77_rows() if row["category"] in INTENTS]
    DatasetService(home_registry._store).register_items("b77", rows, {}, "tests")
    home_registry.add_version(
        "emb",
        VersionCreate(
            engine_kind="sentence-transformers", artifact_uri=str(minilm_dir()), task="embedding"
        ),
        actor="tests",
    )
    response = await api.post(
        "/api/compress",
        json={
            "model": "emb",
            "version": 1,
            "to": ["int8"],
            "texts": {"dataset": "b77", "label_field": "category", "limit": 5000},
            "gate": [{"metric": "accuracy", "max_drop": 0.05}],
        },
    )
    assert response.status_code == 202, response.text
    out = await finished(api, response.json()["id"])
    assert out["status"] == "done", out["message"]
    parent, int8 = out["variants"]
    assert (parent["method"], int8["method"], int8["version"]) == ("float32", "int8", 2)
    assert home_registry.version("emb", 2).parameters["precision"] == "int8"
    # Weights in 8 bits instead of 32: the graph is about a quarter of the size.
    assert int8["measurements"]["size_mb"] < 0.35 * parent["measurements"]["size_mb"]
    cosine = int8["comparison"]["cosine"]
    assert cosine["texts"] == len(rows) and cosine["mean"] > 0.95 and cosine["min"] > 0.8
    accuracy = int8["comparison"]["accuracy"]
    assert accuracy["texts"] == len(rows) and accuracy["parent"] > 0.8
    assert abs(accuracy["difference"]) < 0.05 and accuracy["ci_low"] <= accuracy["difference"]
    assert int8["gate"]["passed"] is True
    # Served: the int8 version's vectors point where the float ones do.
    await api.reload_routes()
    texts = ["Where is my new card?", "I want to change my PIN"]
    vectors = []
    for model in ("emb@1", "emb@2"):
        answer = await api.post("/v1/embeddings", json={"model": model, "input": texts})
        assert answer.status_code == 200, answer.text
        vectors.append([item["embedding"] for item in answer.json()["data"]])
    for a, b in zip(*vectors, strict=True):
        assert sum(x * y for x, y in zip(a, b, strict=True)) > 0.9


INTENTS = {"card_arrival", "change_pin", "lost_or_stolen_card", "top_up_failed", "exchange_rate"}


async def test_what_cannot_be_compressed_is_refused_by_name(
    home_registry: Registry, api: AppClient
) -> None:
    add_smollm(home_registry)
    register_scripted(home_registry, "echo")
    cases = [
        ({"model": "smol", "version": 1, "to": ["Q9"]}, 400, "unknown quantisation type Q9"),
        ({"model": "echo", "version": 1, "to": ["Q8_0"]}, 400, "is a scripted version"),
        ({"model": "smol", "version": 7, "to": ["Q8_0"]}, 404, "version"),
        ({"model": "smol", "version": 1, "to": ["Q8_0", "Q8_0"]}, 400, "twice"),
        (
            {
                "model": "smol",
                "version": 1,
                "to": ["Q8_0"],
                "gate": [{"metric": "perplexity", "max_drop": 1}],
            },
            400,
            "does not measure",
        ),
        (
            {"model": "smol", "version": 1, "to": ["Q8_0"], "texts": {"dataset": "nope"}},
            404,
            "nope",
        ),
        (
            {
                "model": "smol",
                "version": 1,
                "to": ["Q8_0"],
                "texts": {"texts": ["a"], "dataset": "x"},
            },
            400,
            "exactly one of dataset",
        ),
    ]
    for body, status, message in cases:
        response = await api.post("/api/compress", json=body)
        assert response.status_code == status, (body, response.text)
        assert message in response.json()["error"]["message"], response.text
    assert (await api.get("/api/compress/99")).status_code == 404
    assert (await api.get("/api/compress")).json()["data"] == []


CAPITALS = {"France": "Paris", "Italy": "Rome", "Japan": "Tokyo", "Spain": "Madrid"}
TASK = """
name: capitals
dataset: {registered: capitals}
prompt: {template: "What is the capital of {{ country }}? Answer with the city only."}
target: city
filters: [strip, first_line]
metrics: [{name: char_f1}, {name: exact_match}]
generation: {temperature: 0, max_tokens: 6}
"""


async def test_an_eval_task_scores_every_row_and_pairs_each_variant_with_the_parent(
    home_registry: Registry, api: AppClient
) -> None:
    add_smollm(home_registry)
    items = [{"country": country, "city": city} for country, city in CAPITALS.items()]
    DatasetService(home_registry._store).register_items("capitals", items, {}, "tests")
    body = {
        "model": "smol",
        "version": 1,
        "to": ["Q8_0"],
        "streams": [1],
        "max_tokens": 8,
        "eval": {"task_yaml": TASK},
        "gate": [{"metric": "eval_char_f1", "max_drop": 1}],
    }
    response = await api.post("/api/compress", json=body)
    assert response.status_code == 202, response.text
    out = await finished(api, response.json()["id"])
    assert out["status"] == "done", out["message"]
    parent, q8 = out["variants"]
    runs = [row["measurements"]["eval_run"] for row in (parent, q8)]
    assert runs[0] != runs[1]
    for row, run_id in zip((parent, q8), runs, strict=True):
        run = (await api.get(f"/api/eval/runs/{run_id}")).json()
        assert run["model"] == f"smol@{row['version']}" and run["status"] == "done"
        assert row["measurements"]["eval_char_f1"] == run["metrics"]["char_f1"]["value"]
    paired = q8["comparison"]["eval"]
    assert paired["task"] == "capitals" and paired["items"] == len(CAPITALS)
    assert (paired["parent_run"], paired["variant_run"]) == tuple(runs)
    assert set(paired["differences"]) == {"char_f1", "exact_match"}
    assert q8["gate"]["passed"] is True
    assert any(note.startswith("capitals char_f1:") for note in q8["notes"])
    # A task started over the API reads a registered dataset, never a path.
    refused = await api.post(
        "/api/compress",
        json={
            **body,
            "eval": {"task_yaml": TASK.replace("{registered: capitals}", "{path: x.jsonl}")},
        },
    )
    assert refused.status_code == 400 and "registered datasets only" in refused.text
