"""Slices, fairness and counterfactual pairs of runs on the shipped poem-sentiment task (real
verses from ../shared/datasets), answered by scripted models whose answers are known, so
every figure is checked against a count by hand."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from modelyard.cli import main
from modelyard.config import Settings
from modelyard.evaluate.breakdown import breakdown, gate_values, load_breakdown
from modelyard.evaluate.compare import gate
from modelyard.evaluate.fairness import FairnessRefused, fairness
from modelyard.evaluate.gates import GateRule
from modelyard.evaluate.metrics import METRICS
from modelyard.evaluate.protocol import EvalItemOut
from modelyard.evaluate.runner import run_task
from modelyard.evaluate.runs import EvalRuns
from modelyard.evaluate.slices import MIN_INTERVAL_ITEMS
from modelyard.evaluate.tasks import Item, Task, load_task, messages_for
from modelyard.registry import Registry
from modelyard.store import open_store
from tests.conftest import AppClient, register_scripted

pytestmark = pytest.mark.anyio
TASKS = Path(__file__).resolve().parents[2] / "tasks"
LABELS = ("-1", "0", "1")


def poems() -> tuple[Task, list[Item]]:
    """The shipped task over its 104 real verses, each given a group by its id's parity
    (what a dataset with a demographic column would hold)."""
    task, items = load_task(TASKS / "poem_sentiment.yaml", set(METRICS))
    return task, [
        {**item, "group": "even" if int(item["id"]) % 2 == 0 else "odd"} for item in items
    ]


def asked(task: Task, item: Item) -> str:
    return str(messages_for(task, item, [])[-1]["content"])


def unfair_replies(task: Task, items: list[Item]) -> dict[str, str]:
    """Right for the even group; "1" (positive) for every verse of the odd group."""
    return {asked(task, item): item["label"] if item["group"] == "even" else "1" for item in items}


def by_hand(items: list[Item], label: str) -> dict[str, Any]:
    """Selection, true- and false-positive rates of ``label`` per group, and the measures,
    counted without any library."""
    rates = {}
    for group in ("even", "odd"):
        members = [i for i in items if i["group"] == group]
        predicted = [i["label"] if group == "even" else "1" for i in members]
        chosen = [p == label for p in predicted]
        positives = [c for c, i in zip(chosen, members, strict=True) if i["label"] == label]
        negatives = [c for c, i in zip(chosen, members, strict=True) if i["label"] != label]
        rates[group] = {
            "selection_rate": sum(chosen) / len(members),
            "true_positive_rate": sum(positives) / len(positives),
            "false_positive_rate": sum(negatives) / len(negatives),
        }
    selection = [r["selection_rate"] for r in rates.values()]
    return {
        "by_group": rates,
        "demographic_parity_difference": max(selection) - min(selection),
        "disparate_impact_ratio": min(selection) / max(selection),
        "equalized_odds_difference": max(
            abs(rates["even"][k] - rates["odd"][k])
            for k in ("true_positive_rate", "false_positive_rate")
        ),
    }


async def test_fairness_and_slices_of_a_model_unfair_to_one_group(
    api: AppClient, home_registry: Registry
) -> None:
    task, items = poems()
    register_scripted(home_registry, "unfair", replies_by_message=unfair_replies(task, items))
    await api.reload_routes()
    runs = EvalRuns(api.services.store)
    run = await run_task(api, runs, task, items, "unfair", actor="tests", concurrency=8)
    answers = load_breakdown(runs, run.id)
    result = breakdown(answers, ["group", "id"], "group", None)

    fair = result["fairness"]
    sizes = Counter(i["group"] for i in items)
    assert fair["groups"] == {"even": sizes["even"], "odd": sizes["odd"]} == {"even": 52, "odd": 52}
    for label in LABELS:
        expected, found = by_hand(items, label), fair["labels"][label]
        for measure in ("demographic_parity_difference", "disparate_impact_ratio"):
            assert found[measure] == pytest.approx(expected[measure], abs=1e-12), (label, measure)
        assert found["equalized_odds_difference"] == pytest.approx(
            expected["equalized_odds_difference"], abs=1e-12
        )
        for group in ("even", "odd"):
            assert found["by_group"][group] == pytest.approx(expected["by_group"][group])
    # "1" is given to every odd verse: its parity gap is the largest; "-1" and "0" are never
    # given to the odd group, so their ratio is 0, the worst.
    worst = fair["worst"]
    assert worst["demographic_parity_difference"]["label"] == "1"
    assert worst["demographic_parity_difference"]["value"] == pytest.approx(
        1 - by_hand(items, "1")["by_group"]["even"]["selection_rate"]
    )
    assert worst["disparate_impact_ratio"]["value"] == 0.0
    only_positive = breakdown(answers, [], "group", "1")["fairness"]
    assert list(only_positive["labels"]) == ["1"]
    evens = [i for i in answers.items if answers.attributes[i.item_index]["group"] == "even"]
    with pytest.raises(FairnessRefused, match="at least two groups"):
        breakdown(replace(answers, items=evens), [], "group", None)
    with pytest.raises(FairnessRefused, match="one label per item"):
        breakdown(
            replace(answers, items=[evens[0].model_copy(update={"reference": ["0", "1"]})]),
            [],
            "group",
            None,
        )

    by_group = {s["value"]: s for s in result["slices"][0]["slices"]}
    odd_right = sum(i["label"] == "1" for i in items if i["group"] == "odd") / 52
    assert by_group["even"]["n"] == 52 and by_group["even"]["metrics"]["accuracy"]["value"] == 1.0
    odd = by_group["odd"]["metrics"]["accuracy"]
    assert odd["value"] == pytest.approx(odd_right)
    assert odd["ci_low"] < odd["value"] < odd["ci_high"] and odd["ci_high"] - odd["ci_low"] < 0.4
    assert by_group["even"]["metrics"]["accuracy"]["ci_low"] == 1.0  # every item right
    assert result["slices"][0]["worst"]["accuracy"] == {
        "slice": "odd",
        "value": odd["value"],
        "n": 52,
    }
    # One slice per verse: every one too small for an interval, none the worst.
    per_verse = result["slices"][1]
    assert len(per_verse["slices"]) == 104 and per_verse["worst"]["accuracy"] is None
    assert all(
        s["metrics"]["accuracy"]["ci_low"] is None
        and f"n < {MIN_INTERVAL_ITEMS}" in s["metrics"]["accuracy"]["note"]
        for s in per_verse["slices"]
    )

    rules = [
        GateRule(metric="accuracy", slice="group=even", min_value=1.0),
        GateRule(metric="accuracy", slice="group", min_value=0.5),
        GateRule(metric="disparate_impact_ratio", sensitive="group", positive="1", min_value=0.8),
        GateRule(
            metric="demographic_parity_difference",
            sensitive="group",
            greater_is_better=False,
            min_value=0.1,
        ),
    ]
    values = gate_values(rules, answers)
    assert values["accuracy[worst group]"] == pytest.approx(odd_right)
    verdict = gate(rules, task, run, runs.items(run.id), extra=values)
    assert [c.passed for c in verdict.checks] == [True, False, False, False]
    assert "accuracy[group=even] = 1 is at or above" in verdict.checks[0].reason
    assert "disparate_impact_ratio[group, positive=1]" in verdict.checks[2].reason


async def test_length_and_language_slices_cover_every_item(
    api: AppClient, home_registry: Registry
) -> None:
    task, items = poems()
    register_scripted(home_registry, "unfair", replies_by_message=unfair_replies(task, items))
    await api.reload_routes()
    runs = EvalRuns(api.services.store)
    run = await run_task(api, runs, task, items, "unfair", actor="tests", concurrency=8)
    result = breakdown(load_breakdown(runs, run.id), ["length", "language"], None, None)
    length, language = result["slices"]
    low, high = length["edges"]
    questions = {i.item_index: len(i.question) for i in runs.items(run.id)}
    assert sorted(s["value"] for s in length["slices"]) == ["long", "medium", "short"]
    counted = Counter(
        "short" if n <= low else "medium" if n <= high else "long" for n in questions.values()
    )
    assert {s["value"]: s["n"] for s in length["slices"]} == counted
    assert all(25 <= n <= 45 for n in counted.values())  # terciles of 104 verses
    assert sum(s["n"] for s in language["slices"]) == 104
    assert max(language["slices"], key=lambda s: s["n"])["value"] == "en"  # English verses
    assert "group" in result["attributes"] and "variant" not in result["attributes"]


async def test_counterfactual_twins_are_asked_and_compared_pair_by_pair(
    api: AppClient, home_registry: Registry, tmp_path: Path
) -> None:
    path = tmp_path / "poems.yaml"
    shipped = (TASKS / "poem_sentiment.yaml").read_text(encoding="utf-8")
    path.write_text(
        shipped.replace("../../shared", str(TASKS.parents[1] / "shared"))
        + "counterfactual: {swaps: [gender]}\n",
        encoding="utf-8",
    )
    task, items = load_task(path, set(METRICS))
    # Right on every verse as written; "0" for any other text (the swapped verses).
    right = {asked(task, item): item["label"] for item in items}
    register_scripted(home_registry, "brittle", replies_by_message=right, replies=["0"])
    await api.reload_routes()
    runs = EvalRuns(api.services.store)
    run = await run_task(api, runs, task, items, "brittle", actor="tests", concurrency=8)
    assert run.metrics["accuracy"]["value"] == 1.0 and run.done == run.item_count == 104

    twins = runs.twins(run.id)
    gendered = [i for i, item in enumerate(items) if _has_gender_word(item["text"])]
    assert sorted(twins) == gendered and len(gendered) == 18  # of the 104 verses
    first = items[gendered[0]]["text"]
    assert twins[gendered[0]].question != asked(task, items[gendered[0]]) and first
    pairs = breakdown(load_breakdown(runs, run.id), [], None, None)["counterfactual"]
    changed = [i for i in gendered if items[i]["label"] != "0"]
    assert pairs["pairs"] == len(gendered) and pairs["flip_rate"] == pytest.approx(
        len(changed) / len(gendered)
    )
    accuracy = pairs["differences"]["accuracy"]
    assert accuracy["baseline"] == 1.0
    assert accuracy["difference"] == pytest.approx(-len(changed) / len(gendered))
    assert (
        pairs["mcnemar"]["baseline_only"] == len(changed)
        and pairs["mcnemar"]["candidate_only"] == 0
    )
    assert accuracy["significant"] is (accuracy["ci_high"] < 0)

    variant = breakdown(load_breakdown(runs, run.id), ["variant"], "variant", "0")
    sizes = {s["value"]: s["n"] for s in variant["slices"][0]["slices"]}
    assert sizes == {"original": 18, "counterfactual": 18}
    assert variant["fairness"]["labels"]["0"]["by_group"]["counterfactual"]["selection_rate"] == 1.0

    flip = [GateRule(metric="counterfactual_flip_rate", greater_is_better=False, min_value=0.05)]
    verdict = gate(
        flip, task, run, runs.items(run.id), extra=gate_values(flip, load_breakdown(runs, run.id))
    )
    assert not verdict.passed and "counterfactual_flip_rate" in verdict.checks[0].reason


GENDER_WORDS = [
    "he",
    "she",
    "his",
    "her",
    "him",
    "himself",
    "herself",
    "man",
    "woman",
    "men",
    "women",
    "boy",
    "girl",
    "boys",
    "girls",
    "father",
    "mother",
    "son",
    "daughter",
    "brother",
    "sister",
    "husband",
    "wife",
    "king",
    "queen",
    "mr",
    "ms",
    "male",
    "female",
]


def _has_gender_word(text: str) -> bool:
    return any(word in GENDER_WORDS for word in re.findall(r"[a-z]+", text.lower()))


async def test_the_api_cli_and_console_show_slices(
    api: AppClient, home_registry: Registry, tmp_path: Path
) -> None:
    task, items = poems()
    register_scripted(home_registry, "unfair", replies_by_message=unfair_replies(task, items))
    await api.reload_routes()
    runs = EvalRuns(api.services.store)
    run = await run_task(api, runs, task, items, "unfair", actor="tests", concurrency=8)
    url = f"/api/eval/runs/{run.id}/slices?by=group&sensitive=group&positive=1"
    data = (await api.get(url)).json()
    assert data["fairness"]["labels"]["1"]["by_group"]["odd"]["selection_rate"] == 1.0
    bad = await api.get(f"/api/eval/runs/{run.id}/slices?by=gender")
    assert bad.status_code == 400 and "no attribute 'gender'" in bad.json()["error"]["message"]
    assert (await api.get("/api/eval/runs/999/slices")).status_code == 404
    page = await api.get(f"/ui/eval/runs/{run.id}/slices?by=group&sensitive=group&positive=1")
    assert page.status_code == 200 and 'data-attribute="group"' in page.text
    assert "Disparate impact ratio" in page.text and url in page.headers["link"]

    cli = CliRunner()
    shown = cli.invoke(main, ["eval", "slices", str(run.id), "--by", "group", "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["slices"][0]["worst"]["accuracy"]["slice"] == "odd"
    table = cli.invoke(
        main, ["eval", "slices", str(run.id), "--by", "group", "--sensitive", "group"]
    )
    assert table.exit_code == 0 and "worst disparate_impact_ratio: 0.0000" in table.output
    refused = cli.invoke(main, ["eval", "slices", str(run.id), "--by", "colour"])
    assert refused.exit_code == 1 and "items have no attribute 'colour'" in refused.output
    rules = tmp_path / "gate.yaml"
    rules.write_text("- {metric: accuracy, slice: group, min_value: 0.9}\n")
    gated = cli.invoke(main, ["eval", "gate", str(run.id), "--rules", str(rules)])
    assert gated.exit_code == 1 and "FAIL  min_value: accuracy[worst group]" in gated.output


def test_the_cli_asks_twins_with_swap(home_registry: Registry) -> None:
    task, items = poems()
    register_scripted(home_registry, "unfair", replies_by_message=unfair_replies(task, items))
    cli = CliRunner()
    swapped = cli.invoke(
        main,
        ["eval", "run", str(TASKS / "poem_sentiment.yaml"), "-m", "unfair", "--limit", "40",
         "--swap", "gender", "--json"],
    )  # fmt: skip
    assert swapped.exit_code == 0, swapped.output
    made = json.loads(swapped.output)["id"]
    store = open_store(Settings().store_url)
    spec = EvalRuns(store).spec(made)
    store.close()
    sampled = spec["indices"]
    gendered = [i for i in sampled if _has_gender_word(items[i]["text"])]
    assert spec["twins"] == gendered and gendered
    pairs = cli.invoke(main, ["eval", "slices", str(made), "--by", "variant", "--json"])
    assert json.loads(pairs.output)["counterfactual"]["pairs"] == len(gendered)


def test_a_task_of_many_labels_names_its_positive_label() -> None:
    labels = [f"intent_{n}" for n in range(21)]
    items = [
        EvalItemOut(
            item_index=n,
            request_id=None,
            version=None,
            question="q",
            prediction=label,
            extracted=label,
            reference=label,
            error=None,
            latency_ms=1.0,
            prompt_tokens=1,
            completion_tokens=1,
        )
        for n, label in enumerate(labels * 2)
    ]
    groups = ["a"] * 21 + ["b"] * 21
    with pytest.raises(FairnessRefused, match=r"21 labels.*name the label with positive"):
        fairness(items, groups, "group", None)
    one = fairness(items, groups, "group", "intent_3")["labels"]["intent_3"]
    assert one["demographic_parity_difference"] == 0.0 and one["disparate_impact_ratio"] == 1.0
    assert one["equalized_odds_difference"] == 0.0  # right on every item of both groups
