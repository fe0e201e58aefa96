"""Eval tasks in YAML: the shipped ones load over ../shared/datasets, bad ones fail early."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelyard.evaluate.tasks import (
    TaskError,
    apply_filters,
    compile_filters,
    few_shot_pool,
    load_task,
    messages_for,
    reference_of,
)

TASKS = Path(__file__).resolve().parents[2] / "tasks"
DATASETS = Path(__file__).resolve().parents[3] / "shared" / "datasets"
KNOWN = {"exact_match", "char_f1", "accuracy", "f1"}


@pytest.mark.parametrize(
    ("name", "items", "target"),
    [
        ("cmrc2018", 3219, ["光荣和ω-force"] * 3),
        ("banking77", 3080, "card_arrival"),
        ("gaokao_math", 214, ["D"]),
        ("nq_open", 3610, ["14 December 1972 UTC", "December 1972"]),
        ("poem_sentiment", 104, "0"),
    ],
)
def test_shipped_tasks_load_over_the_shared_datasets(
    name: str, items: int, target: str | list[str]
) -> None:
    if not DATASETS.is_dir():
        pytest.fail(f"{DATASETS} is missing: the shared datasets sit beside the repository")
    task, loaded = load_task(TASKS / f"{name}.yaml", KNOWN)
    assert task.name == name and len(loaded) == items
    assert reference_of(task, loaded[0]) == target
    messages = messages_for(task, loaded[0], few_shot_pool(task, loaded, 0))
    assert messages[-1]["role"] == "user" and "{{" not in messages[-1]["content"]


def write(tmp_path: Path, text: str, data: str = '{"q": "2+2?", "a": "4"}\n') -> Path:
    (tmp_path / "data.jsonl").write_text(data, encoding="utf-8")
    task = tmp_path / "task.yaml"
    task.write_text(text, encoding="utf-8")
    return task


GOOD = """
name: t
dataset: {path: data.jsonl}
prompt: {template: "Q: {{ q }}"}
target: a
metrics: [{name: exact_match}]
"""


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("data.jsonl", "missing.jsonl"), "missing.jsonl does not exist"),
        (
            ("{{ q }}", "{{ question }}"),
            "uses field(s) question that the dataset's items do not have",
        ),
        (("exact_match", "bleurt"), "unknown metric(s) bleurt"),
        (("target: a", "target: answer"), "target 'answer' is not a field"),
        (("Q: {{ q }}", "Q: {{ q "), "prompt.template is not a valid template"),
        (("metrics: [{name: exact_match}]", "metrics: []"), "metrics"),
        (("target: a", "target: a\nfilters: [shout]"), "unknown filter 'shout'"),
        (("target: a", "target: a\nfilters: [{regex: '('}]"), "does not compile"),
    ],
)
def test_bad_tasks_fail_before_any_request(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    path = write(tmp_path, GOOD.replace(*change))
    with pytest.raises(TaskError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_task(path, KNOWN)


def test_malformed_yaml_and_data(tmp_path: Path) -> None:
    with pytest.raises(TaskError, match="not valid YAML"):
        load_task(write(tmp_path, "name: [unclosed"), KNOWN)
    with pytest.raises(TaskError, match=r"cannot read .* as jsonl"):
        load_task(write(tmp_path, GOOD, data="{not json}\n"), KNOWN)
    with pytest.raises(TaskError, match="does not exist"):
        load_task(tmp_path / "nope.yaml", KNOWN)
    _, items = load_task(write(tmp_path, GOOD), KNOWN)
    assert items == [{"q": "2+2?", "a": "4"}]


def test_few_shot_examples_and_system_prompt(tmp_path: Path) -> None:
    data = "".join(f'{{"q": "{i}+{i}?", "a": "{2 * i}"}}\n' for i in range(4))
    text = GOOD.replace(
        'prompt: {template: "Q: {{ q }}"}',
        'prompt: {system: "Be brief.", template: "Q: {{ q }}", few_shot: 2}',
    )
    task, items = load_task(write(tmp_path, text, data), KNOWN)
    messages = messages_for(task, items[0], few_shot_pool(task, items, 0))
    assert [m["role"] for m in messages] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
    ]
    assert [m["content"] for m in messages[1:]] == ["Q: 1+1?", "2", "Q: 2+2?", "4", "Q: 0+0?"]


@pytest.mark.parametrize(
    ("filters", "reply", "answer"),
    [
        (["choice_letter"], "答案是B。", "B"),
        (["choice_letter"], "(c) because", ""),
        (["choice_letter"], "c", "C"),
        (["first_number"], "It costs about 1,234.5 dollars, not 7", "1234.5"),
        (["first_number"], "none", ""),
        (["first_line", "strip"], "\n  Paris \nFrance", "Paris"),
        (["normalize"], "The  Eiffel Tower!", "eiffel tower"),
        ([{"regex": r"answer: (\w+)"}], "so the answer: yes.", "yes"),
        ([{"regex": r"\d+"}], "abc 42 7", "42"),
    ],
)
def test_filters(filters: list[object], reply: str, answer: str) -> None:
    assert apply_filters(reply, compile_filters(filters)) == answer  # type: ignore[arg-type]


def test_a_task_may_read_a_registered_dataset(tmp_path: Path) -> None:
    text = GOOD.replace("dataset: {path: data.jsonl}", "dataset: {registered: sums@2}")
    versions = {("sums", 2): [{"q": "1+1?", "a": "2"}]}

    def read(name: str, version: int | None) -> list[dict[str, str]]:
        if (name, version) not in versions:
            raise LookupError(f"no dataset {name}@{version}")
        return versions[(name, version)]

    task, items = load_task(write(tmp_path, text), KNOWN, read)
    assert items == [{"q": "1+1?", "a": "2"}] and task.dataset.registered == "sums@2"
    missing = write(tmp_path, text.replace("sums@2", "sums@9"))
    with pytest.raises(TaskError, match="no dataset sums@9"):
        load_task(missing, KNOWN, read)
    with pytest.raises(TaskError, match="needs the store"):
        load_task(missing, KNOWN)
    both = write(
        tmp_path, text.replace("{registered: sums@2}", "{registered: sums, path: data.jsonl}")
    )
    with pytest.raises(TaskError, match=r"exactly one of dataset\.path and dataset\.registered"):
        load_task(both, KNOWN, read)
