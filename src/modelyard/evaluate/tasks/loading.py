"""Reading a task file and its dataset, checking everything before anything runs."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml
from jinja2 import StrictUndefined, TemplateSyntaxError, meta
from jinja2.sandbox import SandboxedEnvironment
from pydantic import ValidationError

from modelyard.evaluate.robustness.spec import perturbed_fields
from modelyard.evaluate.tasks.filters import compile_filters
from modelyard.evaluate.tasks.spec import DatasetSource, Task

Item = dict[str, Any]
EXTENSIONS = MappingProxyType({".jsonl": "jsonl", ".csv": "csv", ".tsv": "tsv", ".json": "json"})


class TaskError(ValueError):
    """A task that cannot run, with the reason (raised before any request is sent)."""


def environment() -> SandboxedEnvironment:
    """Templates are data: sandboxed, and a missing field is an error, not an empty string."""
    return SandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=False)


# Reads a registered dataset: (name, version or None for the latest) -> its items.
RegisteredItems = Callable[[str, int | None], list[Item]]


def load_task(
    path: Path,
    known_metrics: set[str] | None = None,
    registered: RegisteredItems | None = None,
) -> tuple[Task, list[Item]]:
    """The task in ``path`` and its dataset's items, checked; TaskError otherwise."""
    if not path.is_file():
        raise TaskError(f"task file {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise TaskError(f"{path} is not valid YAML: {error}") from error
    if not isinstance(raw, dict):
        raise TaskError(f"{path} must hold a mapping (name, dataset, prompt, target, metrics)")
    try:
        task = Task.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise TaskError(f"{path}: {where}: {first['msg']}") from error
    task.source_file = path
    if task.dataset.registered is not None:
        items = registered_items(task.dataset.registered, registered)
    else:
        items = load_items(task.dataset, path.parent)
    items = split_items(task.dataset, items)
    check(task, items, known_metrics)
    return task, items


def split_items(source: DatasetSource, items: list[Item]) -> list[Item]:
    """The items of ``source.split`` (all when it names none)."""
    if source.split is None:
        return items
    kept = [item for item in items if item.get("split") == source.split]
    if not kept:
        found = sorted({str(item.get("split")) for item in items})
        raise TaskError(
            f"dataset.split '{source.split}': no item has it (the items' splits: "
            f"{', '.join(found)})"
        )
    return kept


def registered_items(name: str, read: RegisteredItems | None) -> list[Item]:
    if read is None:
        raise TaskError(f"dataset.registered '{name}' needs the store (run it with modelyard)")
    dataset, _, version = name.partition("@")
    if version and not version.isdigit():
        raise TaskError(f"dataset.registered '{name}': a version is a number (name@3)")
    try:
        items = read(dataset, int(version) if version else None)
    except LookupError as error:
        raise TaskError(f"dataset.registered '{name}': {error}") from error
    if not items:
        raise TaskError(f"registered dataset '{name}' has no items")
    return items


def load_items(source: DatasetSource, base: Path) -> list[Item]:
    if source.path is None:
        raise TaskError("dataset.path is missing")
    path = Path(source.path).expanduser()
    path = path if path.is_absolute() else (base / path)
    if not path.is_file():
        raise TaskError(f"dataset file {path} does not exist")
    fmt = source.format or EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        raise TaskError(f"cannot tell the format of {path}; set dataset.format")
    try:
        items = _read(path, fmt, source)
    except (ValueError, KeyError, csv.Error) as error:
        raise TaskError(f"cannot read {path} as {fmt}: {error}") from error
    if not items:
        raise TaskError(f"dataset {path} has no items")
    return items[: source.limit] if source.limit else items


def _read(path: Path, fmt: str, source: DatasetSource) -> list[Item]:
    text = path.read_text(encoding="utf-8")
    if fmt == "jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    if fmt in ("csv", "tsv"):
        rows = csv.DictReader(
            text.splitlines(),
            fieldnames=source.columns,
            delimiter="\t" if fmt == "tsv" else ",",
            quoting=csv.QUOTE_NONE if fmt == "tsv" else csv.QUOTE_MINIMAL,
        )
        return [dict(row) for row in rows]
    data = json.loads(text)
    if fmt == "squad":
        return [
            {
                "id": qa["id"],
                "context": paragraph["context"],
                "question": qa["question"],
                "answers": [answer["text"] for answer in qa["answers"]],
            }
            for article in data["data"]
            for paragraph in article["paragraphs"]
            for qa in paragraph["qas"]
        ]
    records = data[source.records] if source.records else data
    if not isinstance(records, list):
        raise ValueError("the JSON holds no list of items (set dataset.records to its key)")
    return list(records)


def check(task: Task, items: list[Item], known_metrics: set[str] | None) -> None:
    fields = set(items[0])
    env = environment()
    for name, source in (
        ("prompt.template", task.prompt.template),
        ("prompt.system", task.prompt.system),
        ("prompt.few_shot_answer", task.prompt.few_shot_answer),
    ):
        if source is None:
            continue
        try:
            used = meta.find_undeclared_variables(env.parse(source))
        except TemplateSyntaxError as error:
            raise TaskError(f"{name} is not a valid template: {error.message}") from error
        if missing := sorted(used - fields):
            raise TaskError(
                f"{name} uses field(s) {', '.join(missing)} that the dataset's items do not have "
                f"(they have: {', '.join(sorted(fields))})"
            )
    if task.target not in fields:
        raise TaskError(
            f"target '{task.target}' is not a field of the dataset's items "
            f"(they have: {', '.join(sorted(fields))})"
        )
    try:
        compile_filters(task.filters)
    except ValueError as error:
        raise TaskError(str(error)) from error
    if known_metrics is not None:
        unknown = sorted({m.name for m in task.metrics} - known_metrics)
        if unknown:
            raise TaskError(
                f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(sorted(known_metrics))}"
            )
    swapped = task.counterfactual.fields if task.counterfactual is not None else None
    if swapped is not None and (missing := sorted(set(swapped) - fields)):
        raise TaskError(
            f"counterfactual.fields names field(s) {', '.join(missing)} that the dataset's "
            f"items do not have (they have: {', '.join(sorted(fields))})"
        )
    if task.perturbation is not None:
        used = meta.find_undeclared_variables(env.parse(task.prompt.template))
        try:
            perturbed_fields(task.perturbation, used, task.target, fields)
        except ValueError as error:
            raise TaskError(str(error)) from error
    if task.prompt.few_shot >= len(items):
        raise TaskError(f"few_shot {task.prompt.few_shot} needs more items than the dataset has")


def swapped_fields(task: Task) -> list[str]:
    """The item fields a counterfactual twin swaps words in: the task's own list, or the
    fields its prompt template uses."""
    if task.counterfactual is not None and task.counterfactual.fields is not None:
        return list(task.counterfactual.fields)
    return sorted(meta.find_undeclared_variables(environment().parse(task.prompt.template)))
