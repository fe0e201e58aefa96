"""Curation over a synthetic request log with planted rows of each kind: each kind is found
(recall >= 0.95, precision >= 0.9), and every row read is kept or accounted for."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from modelyard.evaluate.datasets import DatasetService, EmptyDataset
from modelyard.evaluate.runs import dataset_digest
from modelyard.guard import crypto
from modelyard.guard.crypto import ContentCipher
from modelyard.improve import curate as curate_module
from modelyard.improve.curate import Curation, Curator, NothingToCurate
from modelyard.improve.language import UnknownLanguage
from modelyard.improve.protocol import CurateRequest
from modelyard.improve.versions import curated_versions, curation_of
from modelyard.store import Store
from modelyard.store.tables import DatasetItemRow, DatasetRow
from tests.improve.synthetic import COUNTS, LogBuilder, Planted, write_log

# The cleaning reasons a planted kind is dropped for.
DROPPED_AS = {
    "failed": "failed",
    "truncated": "truncated",
    "refused": "refused",
    "shadow": "shadow",
    "empty": "empty",
}


@pytest.fixture
def cipher(modelyard_home: Path) -> ContentCipher:
    modelyard_home.mkdir(parents=True, exist_ok=True)
    return crypto.load_or_create(modelyard_home)


@pytest.fixture
def planted(store: Store, cipher: ContentCipher) -> Planted:
    builder = LogBuilder().build()
    asyncio.run(write_log(store, cipher, builder))
    return builder.planted


def curate(store: Store, cipher: ContentCipher, **request: Any) -> Curation:
    body = CurateRequest.model_validate({"name": "support", **request})
    return Curator(store, body, open_content=cipher.open, actor="curator@example").run()


def score(found: set[str], planted: set[str]) -> tuple[float, float]:
    hit = len(found & planted)
    return hit / len(planted), (hit / len(found) if found else 0.0)


def groups(items: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Request id -> the request ids of the item that holds it."""
    return {rid: item["request_ids"] for item in items for rid in item["request_ids"]}


def duplicate_scores(
    planted: Planted, dropped: dict[str, str], held: dict[str, list[str]], kind: str
) -> tuple[float, float]:
    """A planted pair is found when one of the two is dropped for ``kind`` and the item kept
    holds both; a drop is right when it is one of a planted pair of that kind."""
    reason = f"{kind}_duplicate"
    pairs = [
        (copy, original) for copy, original in planted.copies.items() if copy in planted.ids[kind]
    ]
    members = {rid for pair in pairs for rid in pair}
    found = sum(
        1
        for copy, original in pairs
        if reason in (dropped.get(copy), dropped.get(original)) and copy in held.get(original, [])
    )
    flagged = {rid for rid, why in dropped.items() if why == reason}
    return found / len(pairs), len(flagged & members) / len(flagged)


def test_each_planted_kind_is_found_and_every_row_accounted_for(
    store: Store, cipher: ContentCipher, planted: Planted
) -> None:
    result = curate(store, cipher, label="feedback:intent")
    report, dataset = result.out.report, result.out.dataset
    assert dataset is not None
    items = DatasetService(store).items("support", dataset.version)
    dropped = {rid: d.reason for d in result.dropped for rid in d.request_ids}
    held = groups(items)
    measured: dict[str, tuple[float, float]] = {}
    for kind, reason in DROPPED_AS.items():
        found = {rid for rid, why in dropped.items() if why == reason}
        measured[kind] = score(found, set(planted.ids[kind]))
    for kind in ("exact", "near"):
        measured[kind] = duplicate_scores(planted, dropped, held, kind)
    with_pii = {rid for item in items if item["pii"] for rid in item["request_ids"]}
    measured["pii"] = score(with_pii, set(planted.ids["pii"]))
    flagged = {rid for item in items if item["outlier"] for rid in item["request_ids"]}
    measured["outlier"] = score(flagged, set(planted.ids["outlier"]))
    print("recall, precision by planted kind:", json.dumps(measured))
    for kind, (recall, precision) in measured.items():
        assert recall >= 0.95 and precision >= 0.9, (kind, recall, precision)

    # Every row read is in an item or dropped with a reason, and the report adds up.
    total = sum(COUNTS.values())
    assert report.read == total == len(planted.prompts)
    assert report.kept == len(items) == dataset.item_count
    assert report.kept + report.dropped == report.read
    assert sum(report.dropped_by.values()) == report.dropped == len(result.dropped)
    assert set(held) | set(dropped) == set(planted.prompts)
    unplanted = {rid for rid in dropped if planted.kind_of(rid) == "normal"}
    assert all(rid in planted.copies.values() for rid in unplanted)  # a duplicate's twin
    steps = {step.step: step for step in report.steps}
    assert steps["clean"].dropped == sum(COUNTS[kind] for kind in DROPPED_AS)
    assert steps["near_duplicates"].examples and all(
        "Jaccard" in e.note and "kept req-" in e.note for e in steps["near_duplicates"].examples
    )
    assert steps["outliers"].flagged == sum(1 for item in items if item["outlier"])


def test_pii_is_scrubbed_everywhere_and_the_items_keep_their_sources(
    store: Store, cipher: ContentCipher, planted: Planted
) -> None:
    result = curate(store, cipher)
    assert result.out.dataset is not None
    items = DatasetService(store).items("support", result.out.dataset.version)
    stored = json.dumps(items) + result.out.report.model_dump_json()
    assert "4111 1111 1111 1111" not in stored and "555 0132" not in stored
    assert "<CREDIT_CARD_1>" in stored and "<EMAIL_1>" in stored
    pii_items = [item for item in items if item["pii"]]
    for item in pii_items:  # the question, its message and the input scrubbed alike
        assert item["messages"][0]["content"] == item["input"]
    assert result.out.report.pii.scrubbed and result.out.report.pii.opted_out_by is None
    assert set(result.out.report.pii.entities) == {"EMAIL", "CREDIT_CARD", "PHONE"}
    assert all(
        item["request_ids"] and item["request_id"] == item["request_ids"][0] for item in items
    )
    assert all(item["split"] in ("train", "dev", "test") for item in items)
    assert all(item["language"] == "en" for item in items)


def test_opting_out_of_pii_scrubbing_is_recorded_in_the_provenance(
    store: Store, cipher: ContentCipher, planted: Planted
) -> None:
    result = curate(store, cipher, scrub_pii=False)
    assert result.out.dataset is not None
    version = DatasetService(store).get("support", result.out.dataset.version)
    assert version.source["kind"] == "curated"
    pii = version.source["report"]["pii"]
    assert pii == {"scrubbed": False, "opted_out_by": "curator@example", "entities": {}}
    assert version.source["request"]["scrub_pii"] is False
    items = DatasetService(store).items("support", version.version)
    assert any("4111 1111 1111 1111" in item["input"] for item in items)
    assert all("pii" not in item for item in items)


def test_versions_are_immutable_and_content_hashed(
    store: Store, cipher: ContentCipher, planted: Planted
) -> None:
    first = curate(store, cipher).out.dataset
    again = curate(store, cipher).out.dataset
    assert first is not None and again is not None
    assert again.version == first.version  # the same content: the same version
    service = DatasetService(store)
    items = service.items("support", first.version)
    assert first.sha256 == dataset_digest(items)  # the streamed hash is the digest of record
    other = curate(store, cipher, splits={"seed": 1}).out.dataset
    assert other is not None and other.version == first.version + 1
    assert service.get("support", first.version).sha256 == first.sha256  # untouched
    with store.session() as session:
        query = (
            select(DatasetItemRow)
            .join(DatasetRow, DatasetRow.id == DatasetItemRow.dataset_id)
            .where(DatasetRow.name == "support", DatasetRow.version == first.version)
        )
        stored = list(session.scalars(query))
        prints = {row.fingerprint for row in stored}
        assert len(prints) == len(stored) and None not in prints
        assert Counter(row.split for row in stored) == Counter(i["split"] for i in items)
    assert [(d.name, d.version) for d in curated_versions(store)] == [
        ("support", 2),
        ("support", 1),
    ]
    assert curation_of(store, "support", 1).report.kept == first.item_count


def test_the_log_is_read_in_bounded_batches(
    store: Store, cipher: ContentCipher, planted: Planted, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes: list[int] = []
    logged = curate_module.logged

    def spy(*args: Any, **kwargs: Any) -> Iterator[list[Any]]:
        for batch in logged(*args, **{**kwargs, "batch": 100}):
            sizes.append(len(batch))
            yield batch

    monkeypatch.setattr(curate_module, "logged", spy)
    result = curate(store, cipher, log={"limit": 1050})
    assert max(sizes) == 100 and sum(sizes) == 1050 == result.out.report.read
    assert len(planted.prompts) > 1050  # the limit stopped the reading, not the log's end


def test_cleaning_rules_can_be_turned_off_and_outliers_dropped(
    store: Store, cipher: ContentCipher, planted: Planted
) -> None:
    result = curate(
        store,
        cipher,
        cleaning={"truncated": False, "refused": False},
        outliers={"action": "drop"},
    )
    report = result.out.report
    assert "truncated" not in report.dropped_by and "refused" not in report.dropped_by
    outliers = {rid for d in result.dropped if d.reason == "outlier" for rid in d.request_ids}
    assert set(planted.ids["outlier"]) <= outliers
    # Besides them, refusals kept this time may stand out (a short canned answer); hardly
    # anything else does.
    others = {rid for rid in outliers if planted.kind_of(rid) not in ("outlier", "refused")}
    assert len(others) <= 2, others
    assert report.dropped_by["failed"] == COUNTS["failed"]
    assert report.kept + report.dropped == report.read
    assert result.out.dataset is not None
    items = DatasetService(store).items("support", result.out.dataset.version)
    assert not any(item["outlier"] for item in items)
    kept = {rid for item in items for rid in item["request_ids"]}
    assert set(planted.ids["truncated"]) <= kept


def test_a_preview_builds_nothing_and_bad_requests_say_what_to_change(
    store: Store, cipher: ContentCipher, planted: Planted
) -> None:
    body = CurateRequest(name="support")
    preview = Curator(store, body, open_content=cipher.open, actor="x").run(dry_run=True)
    assert preview.out.dataset is None and preview.out.report.kept > 0
    assert DatasetService(store).list_datasets() == []
    with pytest.raises(NothingToCurate, match="give `log`, `datasets` or both"):
        Curator(store, CurateRequest(name="s", log=None), open_content=cipher.open, actor="x")
    with pytest.raises(UnknownLanguage, match="xx"):
        Curator(
            store,
            CurateRequest(name="s", languages=["en", "xx"]),
            open_content=cipher.open,
            actor="x",
        )
    empty = CurateRequest(name="s", log={"route": "nowhere"})
    with pytest.raises(EmptyDataset, match="nothing is left of the 0 rows"):
        Curator(store, empty, open_content=cipher.open, actor="x").run()


def test_datasets_join_a_curation_with_their_request_ids(
    store: Store, cipher: ContentCipher, planted: Planted
) -> None:
    service = DatasetService(store)
    extra = [
        {
            "question": "What is the fee for a wire transfer to Japan?",
            "answer": "1%",
            "request_id": "r1",
        },
        {"question": "what is the fee for a wire transfer to japan?", "answer": "1%"},
        {"question": "Wie hoch ist die Gebühr für eine Überweisung nach Japan?", "answer": "1%"},
    ]
    service.register_items("faq", extra, {"kind": "inline"}, actor="tests")
    result = curate(store, cipher, log=None, datasets=["faq@1"], outliers={"action": "off"})
    report = result.out.report
    assert (report.read, report.kept, report.dropped_by) == (3, 2, {"exact_duplicate": 1})
    assert report.languages == {"en": 1, "de": 1}
    assert result.out.dataset is not None
    items = service.items("support", result.out.dataset.version)
    assert {item["source"] for item in items} == {"dataset:faq@1"}
    english = next(item for item in items if item["language"] == "en")
    assert english["request_ids"] == ["r1"] and english["input"].startswith("What is the fee")
    provenance = service.get("support", result.out.dataset.version).source
    assert provenance["inputs"]["datasets"] == [
        {"name": "faq", "version": 1, "sha256": service.get("faq", 1).sha256}
    ]
