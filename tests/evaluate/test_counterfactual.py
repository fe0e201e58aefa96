"""Counterfactual twins: the documented swap lists, both ways in one pass, and the task
option that asks for them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import get_args

import pytest

from modelyard.evaluate.counterfactual import SWAPS, Swapper, twins_of
from modelyard.evaluate.metrics import METRICS
from modelyard.evaluate.tasks import TaskError, load_task
from modelyard.evaluate.tasks.spec import SwapList


def test_each_pair_swaps_both_ways_in_one_pass_keeping_case() -> None:
    gender = Swapper(["gender"])
    assert gender.swap("He told her his plan; SHE laughed.") == (
        "She told his her plan; HE laughed."
    )
    assert gender.swap("The fisherman's son") == "The fisherman's daughter"  # whole words only
    assert gender.swap("他说她的哥哥来了") == "她说他的姐姐来了"
    assert gender.swap("其他人") == "其他人"  # "other", not "he"


def test_region_names_and_dialect_lists() -> None:
    swapper = Swapper(["names", "region", "dialect"])
    assert swapper.swap("Emily flew from New York to London.") == (
        "Lakisha flew from Mumbai to Lagos."
    )
    assert swapper.swap("My favourite colour") == "My favorite color"
    assert swapper.swap("你在北京干什么？") == "你在上海干啥？"
    with pytest.raises(ValueError, match="unknown swap list"):
        Swapper(["accent"])
    assert set(SWAPS) == set(get_args(SwapList))  # the task file names every list


def test_only_items_a_swap_changes_get_a_twin() -> None:
    items = [{"text": "he ran", "label": "1"}, {"text": "it rained", "label": "0"}]
    twins = twins_of(items, [0, 1], ["text"], ["gender"])
    assert twins == {0: {"text": "she ran", "label": "1"}}


def write_task(tmp_path: Path, counterfactual: str) -> Path:
    rows = [{"text": "he ran", "label": "1"}, {"text": "she sat", "label": "0"}]
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    path = tmp_path / "task.yaml"
    path.write_text(
        "name: t\ndataset: {path: data.jsonl}\nprompt: {template: '{{ text }}'}\n"
        f"target: label\nmetrics: [{{name: accuracy}}]\ncounterfactual: {counterfactual}\n"
    )
    return path


def test_the_task_option_is_checked_when_the_task_loads(tmp_path: Path) -> None:
    task, _ = load_task(write_task(tmp_path, "{swaps: [gender]}"), set(METRICS))
    assert task.counterfactual is not None and task.counterfactual.swaps == ["gender"]
    with pytest.raises(TaskError, match=r"counterfactual\.swaps\.0: Input should be 'gender'"):
        load_task(write_task(tmp_path, "{swaps: [accent]}"), set(METRICS))
    with pytest.raises(TaskError, match=r"counterfactual\.fields names field"):
        load_task(write_task(tmp_path, "{swaps: [gender], fields: [body]}"), set(METRICS))
