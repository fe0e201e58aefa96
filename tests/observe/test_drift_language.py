"""Drift's language column across the change from scripts to languages: rows logged before
(``latin``) and after (``en``) the change are compared by script, so the change of column
is no drift; windows of languages alone compare languages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from modelyard.observe.drift import drift_report
from modelyard.observe.drift_jobs import KINDS, Windows, windows_of
from modelyard.store import Store
from modelyard.store.tables import RequestLogRow

NOW = datetime(2026, 12, 6, 12, tzinfo=UTC)
WINDOWS = Windows.ending(NOW, timedelta(hours=24), timedelta(days=7))


def log(store: Store, languages: list[str | None], at: datetime, tag: str) -> None:
    with store.session() as session:
        for i, language in enumerate(languages):
            session.add(
                RequestLogRow(
                    id=f"{tag}-{i}",
                    at=at + timedelta(minutes=i),
                    day=at.date().isoformat(),
                    key_id="k",
                    endpoint="chat.completions",
                    route="bot",
                    version="bot@1",
                    status=200,
                    latency_ms=100.0 + i % 7,
                    prompt_tokens=20 + i % 5,
                    completion_tokens=30 + i % 3,
                    language=language,
                )
            )


def language_drift(store: Store) -> tuple[list[str], list[str], bool]:
    reference, current = windows_of(store, "bot", WINDOWS, lambda blob: blob)
    report = drift_report(
        {"language": reference["language"]},
        {"language": current["language"]},
        {"language": KINDS["language"]},
    )
    return reference["language"], current["language"], report.columns[0].drifted


def test_old_script_rows_and_new_language_rows_compare_by_script(store: Store) -> None:
    log(store, ["latin"] * 50 + ["zh"] * 10 + [None] * 5, NOW - timedelta(days=3), "old")
    log(
        store, ["en"] * 30 + ["fr"] * 20 + ["zh"] * 10 + [None] * 5, NOW - timedelta(hours=3), "new"
    )
    reference, current, drifted = language_drift(store)
    assert sorted(set(reference)) == sorted(set(current)) == ["latin", "none", "zh"]
    assert not drifted


def test_languages_alone_compare_as_languages(store: Store) -> None:
    log(store, ["en"] * 60 + ["zh"] * 5, NOW - timedelta(days=3), "old")
    log(store, ["fr"] * 60 + ["zh"] * 5, NOW - timedelta(hours=3), "new")
    reference, current, drifted = language_drift(store)
    assert set(reference) == {"en", "zh"} and set(current) == {"fr", "zh"}
    assert drifted  # English to French is a change of language, though one script
