"""Exports of a stored dataset version: streamed a page at a time, counted, deterministic,
recorded; the CLI writes the same bytes the API streams."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from modelyard.evaluate.datasets import DatasetNotFound
from modelyard.improve.export.errors import ExportNotFound, InvalidExport
from modelyard.improve.export.exports import create_export, export_bytes, write_export
from modelyard.improve.export.protocol import ExportRequest
from modelyard.improve.export.records import get_export, latest_export, list_exports
from modelyard.improve.export.stream import Tally, export_chunks, item_pages
from modelyard.store import Store
from tests.improve.export.data import CONVERTIBLE, SKIPPED, TRAIN, register
from tests.improve.export.openai_format import problems


def request(**fields: object) -> ExportRequest:
    return ExportRequest.model_validate({"dataset": "support@1", **fields})


def streamed(store: Store, export_id: int) -> bytes:
    _, chunks = export_bytes(store, export_id)
    return b"".join(chunks)


def test_an_export_holds_every_convertible_item_and_reports_the_rest(store: Store) -> None:
    register(store)
    out = create_export(store, request(), "ann")
    counts = out.counts
    assert (counts.items, counts.written, counts.other_splits) == (10, len(CONVERTIBLE), 0)
    assert counts.skipped == len(SKIPPED) and counts.corrected == 1
    assert counts.skipped_by == {reason: 1 for reason in sorted(SKIPPED.values())}
    assert {(e.item_index, e.reason) for e in out.skipped_examples} == set(SKIPPED.items())
    assert counts.written + counts.skipped + counts.other_splits == counts.items
    body = streamed(store, out.id)
    assert hashlib.sha256(body).hexdigest() == out.sha256 and len(body) == out.bytes
    lines = [json.loads(text) for text in body.decode().splitlines()]
    assert len(lines) == len(CONVERTIBLE) and all(problems(line) == [] for line in lines)
    assert lines[1]["messages"][-1]["content"] == "Paris"  # the correction, not "Lyon"
    assert (out.created_by, out.dataset, out.filename) == (
        "ann",
        "support@1",
        "support-1-openai.jsonl",
    )


def test_a_split_filter_keeps_that_split_only(store: Store) -> None:
    register(store)
    out = create_export(store, request(split="train"), "ann")
    assert out.counts.written == len(TRAIN) and out.counts.other_splits == 3
    lines = streamed(store, out.id).decode().splitlines()
    assert [json.loads(text)["messages"][0]["content"] for text in lines] == [
        "Be brief.",
        "Capital of France?",
        "Use the tools.",
        "Weather in Oslo?",
    ]
    assert out.filename == "support-1-train-openai.jsonl"


def test_the_same_version_gives_the_same_bytes(store: Store) -> None:
    register(store)
    first, second = (create_export(store, request(), "ann") for _ in range(2))
    assert first.id != second.id and first.sha256 == second.sha256
    assert streamed(store, first.id) == streamed(store, second.id)
    assert [e.id for e in list_exports(store)] == [second.id, first.id]
    assert latest_export(store, "support@1", "openai", None) == second
    assert latest_export(store, "support@1", "sharegpt", None) is None


def test_sharegpt_as_jsonl_and_as_one_array(store: Store) -> None:
    register(store)
    lines = create_export(store, request(format="sharegpt"), "ann")
    array = create_export(store, request(format="sharegpt-json"), "ann")
    from_lines = [json.loads(text) for text in streamed(store, lines.id).decode().splitlines()]
    assert json.loads(streamed(store, array.id)) == from_lines
    assert array.media_type == "application/json" and array.filename.endswith(".json")
    roles = {turn["from"] for line in from_lines for turn in line["conversations"]}
    assert roles == {"system", "human", "gpt", "function_call", "observation"}


def test_the_cli_file_is_the_streamed_bytes(store: Store, tmp_path: Path) -> None:
    register(store)
    path = tmp_path / "train.jsonl"
    written = write_export(store, request(split="train"), path, "ann")
    assert path.read_bytes() == streamed(store, written.id)
    assert written.sha256 == create_export(store, request(split="train"), "bob").sha256


def test_an_export_with_nothing_in_it_is_refused_and_not_recorded(
    store: Store, tmp_path: Path
) -> None:
    register(store)
    with pytest.raises(InvalidExport, match="10 items, 10 of other splits") as raised:
        create_export(store, request(split="holdout"), "ann")
    assert raised.value.param == "split"
    path = tmp_path / "out.jsonl"
    with pytest.raises(InvalidExport):
        write_export(store, request(split="holdout"), path, "ann")
    assert not [p for p in tmp_path.iterdir() if p.name != "home"]  # no file, no .partial
    assert list_exports(store) == []


def test_unknown_versions_and_exports(store: Store) -> None:
    register(store)
    with pytest.raises(DatasetNotFound):
        create_export(store, request(dataset="support@2"), "ann")
    with pytest.raises(DatasetNotFound):
        create_export(store, request(dataset="nothing"), "ann")
    with pytest.raises(ExportNotFound):
        get_export(store, 1)  # the dataset's own audit event is no export
    assert list_exports(store) == []


def test_items_are_read_a_page_at_a_time(store: Store) -> None:
    register(store)
    pages = list(item_pages(store, "support", 1, page=4))
    assert [len(page) for page in pages] == [4, 4, 2]
    assert [index for page in pages for index, _ in page] == list(range(10))
    dataset = create_export(store, request(), "ann")
    tally = Tally()
    chunks = list(export_chunks(store, register(store), "openai", None, tally))
    assert len(chunks) == 1 and tally.digest.hexdigest() == dataset.sha256
