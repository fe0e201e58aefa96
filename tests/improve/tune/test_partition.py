"""Searched and held-out items: disjoint, by split or drawn with the seed, and no held-out
item the search saw under another index."""

from __future__ import annotations

from typing import Any

import pytest

from modelyard.improve.tune.errors import InvalidStudy
from modelyard.improve.tune.partition import partition
from modelyard.improve.tune.protocol import StudyRequest
from tests.improve.tune.words import study_body, words


def request(task: dict[str, Any] | None = None, **changes: Any) -> StudyRequest:
    body = study_body(**changes)
    if task is not None:
        body["task"] = {**body["task"], **task}
    return StudyRequest.model_validate(body)


def unsplit(count: int) -> list[dict[str, Any]]:
    return [{"word": f"w{i}"} for i in range(count)]


NO_SPLIT = {"dataset": {"registered": "words"}}


def test_the_task_s_split_is_searched_and_the_test_split_held_out() -> None:
    split = partition(request(), words())
    assert [i["split"] for i in split.search] == ["dev"] * 12
    assert [i["split"] for i in split.holdout] == ["test"] * 8
    assert (split.out.how, split.out.search, split.out.holdout) == (
        "splits",
        "split dev",
        "split test",
    )


def test_without_splits_a_seeded_share_is_held_out() -> None:
    items = unsplit(40)
    first = partition(request(NO_SPLIT, holdout_share=0.25), items)
    again = partition(request(NO_SPLIT, holdout_share=0.25), items)
    other = partition(request(NO_SPLIT, holdout_share=0.25, seed=7), items)
    assert (len(first.search), len(first.holdout)) == (30, 10)
    assert first.holdout == again.holdout and first.holdout != other.holdout
    searched = {i["word"] for i in first.search}
    assert searched.isdisjoint(i["word"] for i in first.holdout)
    assert searched | {i["word"] for i in first.holdout} == {i["word"] for i in items}


def test_a_held_out_item_the_search_saw_is_left_out() -> None:
    items = [*words(), {"word": "word3", "split": "test"}]  # word3 is searched (dev) too
    split = partition(request(), items)
    assert split.out.duplicates_dropped == 1 and len(split.holdout) == 8
    assert "word3" not in {i["word"] for i in split.holdout}


@pytest.mark.parametrize(
    ("task", "changes", "items", "param"),
    [
        (None, {"holdout_split": "dev"}, words(), "holdout_split"),
        (None, {"holdout_split": "eval"}, words(), "holdout_split"),
        ({"dataset": {"registered": "words", "split": "train"}}, {}, words(), "task"),
        (NO_SPLIT, {"holdout_share": 0.5}, unsplit(3), "holdout_share"),
        (None, {}, words(held_out=1), "holdout_split"),
    ],
)
def test_a_partition_that_cannot_work_names_what_to_change(
    task: dict[str, Any] | None, changes: dict[str, Any], items: list[Any], param: str
) -> None:
    with pytest.raises(InvalidStudy) as refused:
        partition(request(task, **changes), items)
    assert refused.value.param == param
