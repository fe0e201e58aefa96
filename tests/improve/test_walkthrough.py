"""docs/walkthrough.md, run as written: banking77 traffic to a production LLM, curated,
its test split reviewed into a gold set, labelled by a teacher, a student distilled,
evaluated against the LLM with the paired bootstrap, rolled out behind an eval gate and
promoted. Every step is the CLI's command (the traffic is an application's: OpenAI's SDK
against the API); the console's pages show what each step made.

The LLM and the teacher are scripted stand-ins with known mistakes (15 % and 5 % of the
texts answered with another intent), so the test knows what the reviewers must correct
and what the student can reach. Data: ../shared/datasets/banking77_test.csv (PolyAI,
CC BY 4.0)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml
from click.testing import CliRunner, Result

from modelyard.cli import main
from modelyard.config import Settings
from modelyard.evaluate.datasets import DatasetService
from modelyard.registry import Registry
from modelyard.store import open_store
from tests.conftest import app_client, register_scripted
from tests.improve.banking77 import banking77_rows, noisy_answers

DATASET = "banking77-traffic"
ROUTE = "intents"
TEACHER = "teacher"
OFF_TOPIC = [
    "what's the weather like in Lisbon tomorrow?",
    "write me a haiku about autumn leaves",
    "who won the football world cup in 1998?",
    "how many grams of flour go into a loaf of bread?",
    "translate 'good morning' into Japanese please",
    "recommend a good science fiction novel",
    "what is the capital city of Australia?",
    "how do I fix a flat bicycle tyre?",
    "tell me a joke about penguins",
    "what time does the sun set in Oslo in June?",
] * 3  # asked three times each: the exact-duplicate step keeps one of each


@dataclass
class Traffic:
    """What the application sends, and what the test knows about it."""

    messages: list[str]
    truth: dict[str, str]  # text (as sent, or as curation scrubs it) -> intent
    llm: dict[str, str]
    teacher: dict[str, str]
    copies: list[set[str]] = field(default_factory=list)  # texts sent more than once, retyped
    with_email: list[str] = field(default_factory=list)


def make_traffic() -> Traffic:
    rows = banking77_rows()
    truth = {row["text"]: row["category"] for row in rows}
    texts = list(truth)
    retyped = {f"{text.rstrip('?!. ')}, please?": text for text in texts[:60]}
    with_email = [
        f"{text} My email is jo.doe{i}@example.com" for i, text in enumerate(texts[60:80])
    ]
    scrubbed = {f"{text} My email is <EMAIL_1>": text for text in texts[60:80]}
    for variant, original in [
        *retyped.items(),
        *zip(with_email, texts[60:80], strict=True),
        *scrubbed.items(),
    ]:
        truth[variant] = truth[original]
    llm, _ = noisy_answers(truth, 0.15, seed=15)
    teacher, _ = noisy_answers(truth, 0.05, seed=5)
    for i, text in enumerate(OFF_TOPIC):  # the models answer something; nothing is right
        llm[text] = teacher[text] = truth[texts[i]]
    messages = [*texts, *texts[:100], *retyped, *with_email, *OFF_TOPIC]
    copies = [{text} for text in [*texts[:100], *OFF_TOPIC[:10]]]
    for variant, original in [*retyped.items(), *scrubbed.items()]:
        copies[texts.index(original)].add(variant)
    return Traffic(messages, truth, llm, teacher, copies, with_email)


def system_prompt(labels: list[str]) -> str:
    return "Classify the user's message into one of: " + ", ".join(labels) + "."


async def drive_traffic(settings: Settings, traffic: Traffic, system: str) -> None:
    """Step 1: an application asks the production route, eight requests at a time."""
    async with app_client(settings) as api:
        key = api.headers["authorization"].removeprefix("Bearer ")
        client = openai.AsyncOpenAI(
            base_url="http://modelyard/v1",
            api_key=key,
            http_client=httpx.AsyncClient(transport=httpx.ASGITransport(app=api.app)),
        )
        gate = asyncio.Semaphore(8)

        async def ask(text: str) -> None:
            async with gate:
                await client.chat.completions.create(
                    model=ROUTE,
                    messages=[
                        {"role": "system", "content": system},
                        {"role": "user", "content": text},
                    ],
                    temperature=0,
                )

        await asyncio.gather(*(ask(text) for text in traffic.messages))
        await api.logged()


def cli(*args: str) -> Any:
    """One CLI command with `--json`; its output parsed."""
    result: Result = CliRunner().invoke(main, [*args, "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def review_test_split(review: int, traffic: Traffic) -> tuple[int, int]:
    """Step 3: a reviewer who knows the intents goes through the queue: a wrong label is
    corrected, a message that is not about banking rejected. Returns (corrected, rejected)."""
    corrected = rejected = 0
    while (step := cli("review", "next", str(review)))["item"] is not None:
        item = step["item"]
        index, text, label = str(item["index"]), item["data"]["input"], item["view"]["label"]
        if text in OFF_TOPIC:
            cli("review", "decide", str(review), index, "reject")
            rejected += 1
        elif label != traffic.truth[text]:
            cli(
                "review",
                "decide",
                str(review),
                index,
                "correct",
                "--correction",
                traffic.truth[text],
            )
            corrected += 1
        else:
            cli("review", "decide", str(review), index, "accept")
    return corrected, rejected


async def console_pages(settings: Settings, pages: dict[str, str]) -> None:
    async with app_client(settings) as api:
        for url, expected in pages.items():
            page = await api.get(url)
            assert page.status_code == 200, (url, page.text[:300])
            assert expected in page.text, (url, expected)


def test_from_traffic_to_a_promoted_student(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELYARD_DEFAULT_EMBEDDING_MODEL", "minilm")
    settings = Settings()
    settings.ensure_home()
    traffic = make_traffic()
    labels = sorted(set(traffic.truth.values()))
    store = open_store(settings.store_url)
    try:
        registry = Registry(store)
        assert register_scripted(registry, ROUTE, replies_by_message=traffic.llm) == 1
        register_scripted(registry, TEACHER, replies_by_message=traffic.teacher)
    finally:
        store.close()

    # 1. traffic
    asyncio.run(drive_traffic(settings, traffic, system_prompt(labels)))

    # 2. curate
    curated = cli("curate", DATASET, "--route", ROUTE, "--label", "output")
    report = curated["report"]
    assert report["read"] == len(traffic.messages)
    dropped = report["dropped_by"]
    assert dropped["exact_duplicate"] + dropped["near_duplicate"] >= 200  # the copies sent
    assert report["pii"]["entities"]["EMAIL"] == len(traffic.with_email)
    store = open_store(settings.store_url)
    try:
        items = DatasetService(store).items(DATASET, 1)
    finally:
        store.close()
    assert not any("@example.com" in json.dumps(item) for item in items)
    assert all(item["request_ids"] and item["split"] in ("train", "dev", "test") for item in items)
    standing = [[i for i in items if i["input"] in copies] for copies in traffic.copies]
    assert all(standing)  # nothing sent is lost ...
    collapsed = [kept[0] for kept in standing if len(kept) == 1]
    assert len(collapsed) >= 0.95 * len(standing)  # ... and its copies are one item
    assert all(len(item["request_ids"]) >= 2 for item in collapsed)
    test_split = [item for item in items if item["split"] == "test"]
    wrong_in_test = sum(
        item["label"] != traffic.truth[item["input"]]
        for item in test_split
        if item["input"] not in OFF_TOPIC
    )

    # 3. review the test split into a gold set
    review = cli("review", "create", f"{DATASET}@1", "--split", "test", "--label-field", "label")
    corrected, rejected = review_test_split(review["id"], traffic)
    finished = cli("review", "finish", str(review["id"]), "--undecided", "keep")
    result = finished["result"]
    assert result["dataset"] == f"{DATASET}@2"
    assert (
        (result["corrected"], result["rejected"])
        == (corrected, rejected)
        == (
            wrong_in_test,
            sum(item["input"] in OFF_TOPIC for item in test_split),
        )
    )
    assert corrected > 0

    # 4. label with the teacher
    run = cli(
        "label",
        f"{DATASET}@2",
        "--teacher",
        TEACHER,
        "--labels-from",
        "label",
        "--label-field",
        "teacher_label",
        "--concurrency",
        "8",
    )
    assert run["status"] == "done" and run["counts"]["failed"] == 0
    assert run["versions"] == [f"{TEACHER}@1"]
    labelled = run["result"]

    # 5. distil a student: the next version of the route's model
    student = cli("distil", labelled, "-m", ROUTE, "--label-field", "teacher_label")
    assert student["status"] == "done" and student["version"] == 2
    assert student["lineage"]["dataset"]["name"] == labelled
    assert student["lineage"]["teacher"] == {"route": TEACHER, "versions": [f"{TEACHER}@1"]}

    # 6. a rollout behind an eval gate: it waits for the runs, and cannot be promoted before
    steps = tmp_path / "steps.yaml"
    gate = {"task": "banking77-intents", "rules": [{"metric": "exact_match", "max_drop": 0.05}]}
    steps.write_text(yaml.safe_dump([{"gate": gate}, {"set_weight": 100}]), encoding="utf-8")
    rollout = cli("rollout", "start", ROUTE, "2", "--steps", str(steps))
    refused = CliRunner().invoke(main, ["rollout", "promote", str(rollout["id"])])
    assert refused.exit_code == 1 and "requires an eval gate" in refused.output

    # 7. evaluate the student against the LLM on the reviewed test split
    task = tmp_path / "banking77.yaml"
    task.write_text(
        yaml.safe_dump(
            {
                "name": "banking77-intents",
                "dataset": {"registered": f"{DATASET}@2", "split": "test"},
                "prompt": {"system": system_prompt(labels), "template": "{{ input }}"},
                "target": "label",
                "filters": ["strip"],
                "metrics": [{"name": "exact_match"}],
                "generation": {"temperature": 0, "max_tokens": 16},
            }
        ),
        encoding="utf-8",
    )
    llm_run = cli("eval", "run", str(task), "-m", f"{ROUTE}@1")
    student_run = cli("eval", "run", str(task), "-m", f"{ROUTE}@2")
    comparison = cli("eval", "compare", str(llm_run["id"]), str(student_run["id"]))
    exact = comparison["differences"]["exact_match"]
    facts = {
        "curated": [report["kept"], report["read"]],
        "splits": {name: split["items"] for name, split in report["splits"].items()},
        "reviewed": {"corrected": corrected, "rejected": rejected},
        "student": student["metrics"],
        "exact_match": exact,
        "mcnemar": comparison["mcnemar"],
    }
    print(f"\nwalkthrough: {json.dumps(facts)}")
    assert comparison["items"] == len(test_split) - rejected
    assert exact["candidate"] >= 0.80 and 0.80 <= exact["baseline"] <= 0.90
    assert exact["ci_low"] <= exact["difference"] <= exact["ci_high"]
    assert exact["difference"] > -0.05 and comparison["mcnemar"]["p_value"] is not None

    # 8. promote: the gate passes, the production alias moves to the student
    promoted = CliRunner().invoke(main, ["rollout", "promote", str(rollout["id"])])
    assert promoted.exit_code == 0, promoted.output
    assert cli("rollout", "status", str(rollout["id"]))["rollout"]["status"] == "promoted"
    store = open_store(settings.store_url)
    try:
        aliases = {a.name: a.version for a in Registry(store).model(ROUTE).aliases}
        assert aliases["production"] == 2
    finally:
        store.close()

    # the console shows every step
    asyncio.run(
        console_pages(
            settings,
            {
                f"/ui/curate/{DATASET}/1": 'id="kept"',
                f"/ui/reviews/{review['id']}": f"{DATASET}@2",
                f"/ui/label/{run['id']}": labelled,
                f"/ui/distil/{student['id']}": labelled,
                f"/ui/eval/compare?baseline={llm_run['id']}&candidate={student_run['id']}": (
                    "exact_match"
                ),
                f"/ui/rollouts/{rollout['id']}": "promoted",
            },
        )
    )
