"""Robustness runs through the serving path with scripted models whose answers make the
figures known: the clean run, perturbed runs compared item by item, the report on the
three faces, paraphrase through a route, and the gate rule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from modelyard.cli import main
from modelyard.evaluate.gates import GateResult
from modelyard.evaluate.metrics import METRICS
from modelyard.evaluate.robustness.apply import PerturbationFailed
from modelyard.evaluate.robustness.gate import RobustnessRule, split_rules, with_robustness
from modelyard.evaluate.robustness.report import NotACleanRun, robustness_report
from modelyard.evaluate.robustness.spec import parse_perturbation
from modelyard.evaluate.runner import run_task
from modelyard.evaluate.runs import EvalRuns
from modelyard.evaluate.tasks import Task, load_task
from modelyard.registry import Registry
from tests.conftest import AppClient, register_scripted

pytestmark = pytest.mark.anyio
ITEMS = 12
WITH_MARK = 4  # the first four questions end with a question mark


def question(i: int) -> str:
    return f"what is item {i}" + ("?" if i < WITH_MARK else "")


def task_file(tmp_path: Path) -> Path:
    rows = [{"q": question(i), "a": f"answer {i}"} for i in range(ITEMS)]
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    path = tmp_path / "items.yaml"
    path.write_text(
        "name: items\ndataset: {path: data.jsonl}\nprompt: {template: '{{ q }}'}\ntarget: a\n"
        "metrics: [{name: exact_match}]\ngeneration: {max_tokens: 8}\n",
        encoding="utf-8",
    )
    return path


def register_knower(registry: Registry) -> None:
    """A model that knows the answer to each question exactly as written, and nothing else."""
    register_scripted(
        registry,
        "knower",
        replies=["nope"],
        replies_by_message={question(i): f"answer {i}" for i in range(ITEMS)},
    )


def perturbed(task: Task, spec: str) -> Task:
    return task.model_copy(update={"perturbation": parse_perturbation(spec)})


async def test_perturbed_runs_against_the_clean_run(
    api: AppClient, home_registry: Registry, tmp_path: Path
) -> None:
    register_knower(home_registry)
    register_scripted(home_registry, "rewriter")  # echoes: "echo: <the text>"
    await api.reload_routes()
    task, items = load_task(task_file(tmp_path), set(METRICS))
    runs = EvalRuns(api.services.store)
    clean = await run_task(api, runs, task, items, "knower", actor="tests")
    assert clean.metrics["exact_match"]["value"] == 1.0
    marks = await run_task(api, runs, perturbed(task, "punctuation"), items, "knower", actor="t")
    upper = await run_task(api, runs, perturbed(task, "casing"), items, "knower", actor="t")
    said = await run_task(
        api, runs, perturbed(task, "paraphrase@rewriter"), items, "knower", actor="t"
    )
    # Only the questions with a mark changed; upper case and the rewrite changed every one.
    assert marks.metrics["exact_match"]["value"] == pytest.approx(1 - WITH_MARK / ITEMS)
    assert upper.metrics["exact_match"]["value"] == 0.0
    assert said.metrics["exact_match"]["value"] == 0.0
    asked = runs.items(marks.id)
    assert [a.question for a in asked] == [question(i).rstrip("?") for i in range(ITEMS)]
    assert [a.reference for a in asked] == [f"answer {i}" for i in range(ITEMS)]  # untouched
    assert runs.items(said.id)[0].question == f"echo: {question(0)}"
    assert runs.spec(marks.id)["perturbation"]["kind"] == "punctuation"

    report = robustness_report(runs, clean.id)
    rows = {row["perturbation"]: row for row in report["perturbations"]}
    assert list(rows) == ["punctuation", "casing", "paraphrase@rewriter"]
    drop = rows["punctuation"]["differences"]["exact_match"]
    assert drop["difference"] == pytest.approx(-WITH_MARK / ITEMS)
    assert drop["ci_low"] < drop["difference"] < drop["ci_high"] <= 0
    assert rows["punctuation"]["mcnemar"]["baseline_only"] == WITH_MARK
    everything = rows["casing"]["differences"]["exact_match"]
    assert (everything["difference"], everything["ci_low"], everything["ci_high"]) == (-1, -1, -1)
    assert everything["significant"] is True
    with pytest.raises(NotACleanRun, match="itself perturbed \\(casing\\)"):
        robustness_report(runs, upper.id)

    # The gate: a third of the items lost is within 0.34 and not within 0.3.
    def gate(rules: list[object]) -> GateResult:
        metric_rules, robust = split_rules(rules)
        assert not metric_rules
        return with_robustness(GateResult(passed=True, checks=[]), robust, runs, clean.id)

    assert gate([{"robustness": {"perturbation": "punctuation", "max_drop": 0.34}}]).passed
    failed = gate([{"robustness": {"perturbation": "punctuation", "max_drop": 0.3}}])
    assert not failed.passed and "robustness punctuation: max_drop" in failed.checks[0].reason
    # The interval's worst end is a bigger drop than the point estimate.
    strict = gate(
        [{"robustness": {"perturbation": "punctuation", "max_drop": 0.34, "use_interval": True}}]
    )
    assert [c.passed for c in strict.checks] == [True, False]
    missing = gate([{"robustness": {"perturbation": "typos", "max_drop": 0.5}}])
    assert not missing.passed and "no finished run" in missing.checks[0].reason
    with pytest.raises(ValueError, match="sets no threshold"):
        RobustnessRule.model_validate({"robustness": {"perturbation": "typos"}})


async def test_a_failing_paraphrase_stops_the_run(
    api: AppClient, home_registry: Registry, tmp_path: Path
) -> None:
    register_knower(home_registry)
    register_scripted(home_registry, "broken", fail_when_prompt_contains="item")
    await api.reload_routes()
    task, items = load_task(task_file(tmp_path), set(METRICS))
    runs = EvalRuns(api.services.store)
    with pytest.raises(PerturbationFailed, match="paraphrase of q by broken failed: 502"):
        await run_task(api, runs, perturbed(task, "paraphrase@broken"), items, "knower", actor="t")
    assert runs.list_runs()[0].done == 0  # no item was graded unperturbed


async def test_the_report_on_the_api_and_the_console(
    api: AppClient, home_registry: Registry, tmp_path: Path
) -> None:
    register_knower(home_registry)
    await api.reload_routes()
    task, items = load_task(task_file(tmp_path), set(METRICS))
    runs = EvalRuns(api.services.store)
    clean = await run_task(api, runs, task, items, "knower", actor="tests")
    lower = await run_task(api, runs, perturbed(task, "casing:lower"), items, "knower", actor="t")
    data = (await api.get(f"/api/eval/runs/{clean.id}/robustness")).json()
    (row,) = data["perturbations"]
    assert row["run"] == lower.id and row["differences"]["exact_match"]["difference"] == 0.0
    refused = await api.get(f"/api/eval/runs/{lower.id}/robustness")
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "not_a_clean_run"
    assert (await api.get("/api/eval/runs/999/robustness")).status_code == 404
    page = await api.get(f"/ui/eval/runs/{clean.id}/robustness")
    assert page.status_code == 200 and 'data-perturbation="casing:lower"' in page.text
    assert f"/api/eval/runs/{clean.id}/robustness" in page.headers["link"]
    run_page = (await api.get(f"/ui/eval/runs/{clean.id}")).text
    assert f'href="/ui/eval/runs/{clean.id}/robustness"' in run_page
    # Over the API a perturbed run starts like any run, the perturbation in its task.
    body = {
        "task": {
            **task.model_dump(mode="json", exclude={"dataset"}),
            "dataset": {"registered": "nothing"},
            "perturbation": {"kind": "casing", "mode": "sideways"},
        },
        "model": "knower",
    }
    bad = await api.post("/api/eval/runs", json=body)
    assert bad.status_code == 400 and "has no mode 'sideways'" in bad.text


def test_the_cli_runs_a_suite_reports_and_gates(home_registry: Registry, tmp_path: Path) -> None:
    register_knower(home_registry)
    path = task_file(tmp_path)
    cli = CliRunner()
    typo = cli.invoke(main, ["eval", "robustness", str(path), "-m", "knower", "-p", "casing:up"])
    assert typo.exit_code == 1 and "has no mode 'up'" in typo.output
    ran = cli.invoke(
        main,
        [
            "eval",
            "robustness",
            str(path),
            "-m",
            "knower",
            "-p",
            "punctuation",
            "-p",
            "typos",
            "--rate",
            "0.2",
            "--json",
        ],
    )
    assert ran.exit_code == 0, ran.output
    report = json.loads(ran.output)
    clean = report["clean"]["id"]
    assert [r["perturbation"] for r in report["perturbations"]] == ["punctuation", "typos"]
    table = cli.invoke(main, ["eval", "robustness-report", str(clean)], env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "punctuation" in table.output and "-0.3333" in table.output
    # Another perturbation later, against the same clean run and its items.
    more = cli.invoke(
        main,
        [
            "eval",
            "robustness",
            str(path),
            "-m",
            "knower",
            "-p",
            "casing",
            "--clean",
            str(clean),
            "--json",
        ],
    )
    assert more.exit_code == 0, more.output
    other = [
        "eval",
        "robustness",
        str(path),
        "-m",
        "rewriter",
        "-p",
        "casing",
        "--clean",
        str(clean),
    ]
    wrong = cli.invoke(main, other)
    assert wrong.exit_code == 1 and "give -m knower" in wrong.output
    asked = ["eval", "robustness", str(path), "-m", "knower", "-p", "casing", "--field", "question"]
    unknown = cli.invoke(main, asked)
    assert unknown.exit_code == 1 and "the items have no field(s) question" in unknown.output
    labels = [r["perturbation"] for r in json.loads(more.output)["perturbations"]]
    assert labels == ["punctuation", "typos", "casing"]
    rules = tmp_path / "gate.yaml"
    rules.write_text(
        "- {metric: exact_match, min_value: 0.9}\n"
        "- {robustness: {perturbation: punctuation, max_drop: 0.4}}\n"
    )
    passed = cli.invoke(main, ["eval", "gate", str(clean), "--rules", str(rules)])
    assert passed.exit_code == 0 and "PASS  robustness punctuation" in passed.output
    rules.write_text("- {robustness: {perturbation: casing, metric: exact_match, max_drop: 0.5}}\n")
    failed = cli.invoke(main, ["eval", "gate", str(clean), "--rules", str(rules)])
    assert failed.exit_code == 1 and "FAIL  robustness casing" in failed.output
