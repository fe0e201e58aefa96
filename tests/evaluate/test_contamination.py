"""The train-versus-eval overlap check: an eval run refuses items a curated dataset trains
on, before it sends a request, and records what it checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelyard.evaluate.contamination import TrainEvalOverlap, fingerprint
from modelyard.evaluate.datasets import DatasetService
from modelyard.evaluate.metrics import METRICS
from modelyard.evaluate.runner import run_task
from modelyard.evaluate.runs import EvalRuns
from modelyard.evaluate.tasks import TaskError, load_task
from modelyard.improve.curate import Curator
from modelyard.improve.protocol import CurateRequest
from modelyard.registry import Registry
from tests.conftest import AppClient, register_scripted

pytestmark = pytest.mark.anyio
QUESTIONS = [f"How long does transfer number {n} to account {n * 7} take?" for n in range(40)]


def task(tmp_path: Path, dataset: str, template: str = "{{ input }}") -> Path:
    path = tmp_path / "task.yaml"
    path.write_text(
        f"""
name: overlap
dataset: {dataset}
prompt: {{template: "{template}"}}
target: output
metrics: [{{name: exact_match}}]
generation: {{max_tokens: 8}}
""",
        encoding="utf-8",
    )
    return path


def curated(api: AppClient) -> DatasetService:
    datasets = DatasetService(api.services.store)
    items = [{"input": q, "output": "soon"} for q in QUESTIONS]
    datasets.register_items("faq", items, {"kind": "inline"}, actor="tests")
    body = CurateRequest(
        name="support",
        log=None,
        datasets=["faq"],
        outliers={"action": "off"},
        dedup={"near": False},  # the questions differ by numbers only
        splits={"train": 60, "dev": 20, "test": 20},
    )
    Curator(api.services.store, body, open_content=bytes, actor="tests").run()
    return datasets


async def test_an_eval_on_the_training_split_is_refused_and_on_the_test_split_runs(
    api: AppClient, home_registry: Registry, tmp_path: Path
) -> None:
    register_scripted(home_registry, "echo")
    await api.reload_routes()
    datasets = curated(api)
    runs = EvalRuns(api.services.store)
    splits = [item["split"] for item in datasets.items("support", 1)]
    assert splits.count("train") == 24 and splits.count("test") == 8

    held_out, items = load_task(
        task(tmp_path, "{registered: support, split: test}"), set(METRICS), datasets.latest_items
    )
    assert len(items) == 8
    run = await run_task(api, runs, held_out, items, "echo", actor="tests")
    assert run.status == "done"
    assert runs.spec(run.id)["train_overlap"] == {
        "checked": 8,
        "overlapping": 0,
        "datasets": [],
        "allowed": False,
    }

    seen, train = load_task(
        task(tmp_path, "{registered: support@1, split: train}"), set(METRICS), datasets.latest_items
    )
    with pytest.raises(
        TrainEvalOverlap, match=r"24 of the 24 eval items .* train split of support@1"
    ):
        await run_task(api, runs, seen, train, "echo", actor="tests")
    assert [r.id for r in runs.list_runs()] == [run.id]  # refused before a run was made
    graded = await run_task(api, runs, seen, train, "echo", actor="tests", allow_train_overlap=True)
    overlap = runs.spec(graded.id)["train_overlap"]
    assert overlap == {"checked": 24, "overlapping": 24, "datasets": ["support@1"], "allowed": True}


async def test_a_file_with_a_training_question_written_otherwise_is_refused(
    api: AppClient, tmp_path: Path
) -> None:
    datasets = curated(api)
    trained = next(
        item["input"] for item in datasets.items("support", 1) if item["split"] == "train"
    )
    rows = [
        "question,output",
        f'"  {trained.upper()}  ",soon',
        '"What is the capital of Peru?",Lima',
    ]
    (tmp_path / "mine.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    path = task(tmp_path, "{path: mine.csv}", "Answer briefly. {{ question }}")
    mine, items = load_task(path, set(METRICS))
    with pytest.raises(TrainEvalOverlap, match=r"1 of the 2 eval items \(item 0\)") as refused:
        await run_task(api, EvalRuns(api.services.store), mine, items, "echo", actor="tests")
    assert refused.value.status == 409 and refused.value.param == "dataset"
    assert fingerprint(f"  {trained.upper()}  ") == fingerprint(trained)


def test_a_split_no_item_has_is_a_task_error(tmp_path: Path) -> None:
    (tmp_path / "plain.jsonl").write_text('{"input": "a", "output": "b"}\n', encoding="utf-8")
    with pytest.raises(TaskError, match=r"dataset\.split 'test': no item has it"):
        load_task(task(tmp_path, "{path: plain.jsonl, split: test}"), set(METRICS))
