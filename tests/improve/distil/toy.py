"""A small dataset with known labels and a scripted teacher that knows them, except for
items it answers outside the label set and items it fails on."""

from __future__ import annotations

from typing import Any

from modelyard.evaluate.datasets import DatasetOut, DatasetService
from modelyard.registry import Registry
from modelyard.store import Store
from tests.conftest import AppClient, register_scripted

LABELS = ("alpha", "beta", "gamma")
ITEMS = 60
FAILING = {7, 19, 33}  # the teacher fails on these
OUTSIDE = {4, 50}  # the teacher answers something that is no label
LOOSE = 10  # answered "Beta." (its label is beta): mapped all the same
MARKER = "FAILME"


def text(index: int) -> str:
    return f"message {index}" + (f" {MARKER}" if index in FAILING else "")


def truth(index: int) -> str:
    return LABELS[index % 3]


def toy_items() -> list[dict[str, Any]]:
    return [
        {"text": text(i), "truth": truth(i), "split": "train" if i < 45 else "test"}
        for i in range(ITEMS)
    ]


def register_toy(store: Store, name: str = "toy") -> DatasetOut:
    return DatasetService(store).register_items(name, toy_items(), {"kind": "test"}, "tests")


def teacher_answers() -> dict[str, str]:
    answers = {text(i): truth(i) for i in range(ITEMS)}
    for index in OUTSIDE:
        answers[text(index)] = "I cannot tell"
    answers[text(LOOSE)] = "Beta."
    return answers


def register_teacher(registry: Registry, model: str = "teacher", **parameters: Any) -> int:
    return register_scripted(
        registry,
        model,
        replies_by_message=teacher_answers(),
        fail_when_prompt_contains=MARKER,
        **parameters,
    )


async def distil_pages(api: AppClient) -> dict[str, str]:
    """A finished label run and a (failed: no embedding route) distillation, and the URLs
    of the console pages that show them, keyed by their routes' paths."""
    register_toy(api.services.store)
    register_teacher(api.services.registry)
    await api.reload_routes()
    body = {"dataset": "toy", "teacher": "teacher", "labels_from": "truth"}
    run = await api.post("/api/label", json=body)
    assert run.status_code == 202, run.text
    await api.app.state.improve_jobs.wait(f"label:{run.json()['id']}")
    body = {"dataset": "toy-labelled", "model": "student", "embedding_model": "missing"}
    distilled = await api.post("/api/distil", json=body)
    assert distilled.status_code == 202, distilled.text
    await api.app.state.improve_jobs.wait(f"distil:{distilled.json()['id']}")
    return {
        "/ui/label": "/ui/label",
        "/ui/label/{run_id}": f"/ui/label/{run.json()['id']}",
        "/ui/distil": "/ui/distil",
        "/ui/distil/{distillation_id}": f"/ui/distil/{distilled.json()['id']}",
    }
