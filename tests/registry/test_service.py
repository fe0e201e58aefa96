from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from modelyard.registry import (
    AliasNotFound,
    InvalidRegistration,
    ModelNotFound,
    Registry,
    VersionNotFound,
)
from modelyard.registry.errors import ImmutableRecord
from modelyard.registry.protocol import VersionCreate
from modelyard.store import Store
from modelyard.store.tables import AliasMoveRow, VersionRow


def scripted(notes: str = "") -> VersionCreate:
    return VersionCreate(engine_kind="scripted", artifact_uri="scripted:", notes=notes)


def test_versions_are_numbered_per_model_and_create_the_model(registry: Registry) -> None:
    first = registry.add_version("alpha", scripted("one"), actor="ann")
    second = registry.add_version("alpha", scripted("two"), actor="bob")
    other = registry.add_version("beta", scripted(), actor="ann")
    assert (first.number, second.number, other.number) == (1, 2, 1)
    assert second.created_by == "bob" and second.notes == "two"
    assert [m.name for m in registry.list_models()] == ["alpha", "beta"]
    assert registry.model("alpha").latest_version == 2


def test_a_file_artifact_is_pinned_by_sha256(registry: Registry, tmp_path: Path) -> None:
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"GGUF" + bytes(range(256)) * 10)
    version = registry.add_version(
        "local", VersionCreate(engine_kind="llamacpp", artifact_uri=str(gguf)), actor="ann"
    )
    assert version.artifact_sha256 == hashlib.sha256(gguf.read_bytes()).hexdigest()
    assert version.artifact_uri == str(gguf.resolve())


def test_missing_file_and_bad_url_are_refused(registry: Registry, tmp_path: Path) -> None:
    with pytest.raises(InvalidRegistration, match="does not exist"):
        registry.add_version(
            "x",
            VersionCreate(engine_kind="llamacpp", artifact_uri=str(tmp_path / "no.gguf")),
            actor="ann",
        )
    with pytest.raises(InvalidRegistration, match="no host"):
        registry.add_version(
            "x", VersionCreate(engine_kind="upstream", artifact_uri="http://"), actor="ann"
        )
    assert registry.list_models() == []


def test_versions_and_alias_moves_cannot_be_changed(registry: Registry, store: Store) -> None:
    registry.add_version("alpha", scripted(), actor="ann")
    registry.set_alias("alpha", "production", 1, actor="ann")
    with pytest.raises(ImmutableRecord), store.session() as session:
        session.scalars(select(VersionRow)).one().notes = "edited"
    with pytest.raises(ImmutableRecord), store.session() as session:
        session.delete(session.scalars(select(AliasMoveRow)).one())
    assert registry.version("alpha", 1).notes == ""
    assert len(registry.history("alpha")) == 1


def test_rollback_restores_the_previous_version_and_history_shows_both(
    registry: Registry,
) -> None:
    for _ in range(3):
        registry.add_version("alpha", scripted(), actor="ann")
    registry.set_alias("alpha", "production", 1, actor="ann", reason="launch")
    registry.set_alias("alpha", "production", 2, actor="bob", reason="better eval")
    move = registry.rollback("alpha", "production", actor="carol", reason="errors up")
    assert (move.from_version, move.to_version) == (2, 1)
    assert registry.model("alpha").aliases[0].version == 1
    history = registry.history("alpha", "production")
    assert [(h.from_version, h.to_version, h.actor, h.reason) for h in history] == [
        (None, 1, "ann", "launch"),
        (1, 2, "bob", "better eval"),
        (2, 1, "carol", "errors up"),
    ]
    # Like `kubectl rollout undo`, a second rollback returns to where the first started.
    assert registry.rollback("alpha", "production", actor="carol").to_version == 2
    assert registry.rollback("alpha", "production", actor="dan", to_version=3).to_version == 3


def test_rollback_needs_a_previous_version(registry: Registry) -> None:
    registry.add_version("alpha", scripted(), actor="ann")
    with pytest.raises(AliasNotFound):
        registry.rollback("alpha", "production", actor="ann")
    registry.set_alias("alpha", "production", 1, actor="ann")
    with pytest.raises(InvalidRegistration, match="never moved"):
        registry.rollback("alpha", "production", actor="ann")


def test_what_was_production_at_time_t(registry: Registry) -> None:
    registry.add_version("alpha", scripted(), actor="ann")
    registry.add_version("alpha", scripted(), actor="ann")
    before = datetime.now(UTC)
    time.sleep(0.02)
    registry.set_alias("alpha", "production", 1, actor="ann")
    time.sleep(0.02)
    between = datetime.now(UTC)
    time.sleep(0.02)
    registry.set_alias("alpha", "production", 2, actor="ann")
    assert registry.alias_at("alpha", "production", before) is None
    assert registry.alias_at("alpha", "production", between) == 1
    assert registry.alias_at("alpha", "production", datetime.now(UTC)) == 2


def test_unknown_names_and_invalid_names(registry: Registry) -> None:
    with pytest.raises(ModelNotFound):
        registry.model("ghost")
    registry.add_version("alpha", scripted(), actor="ann")
    with pytest.raises(VersionNotFound):
        registry.set_alias("alpha", "production", 7, actor="ann")
    with pytest.raises(AliasNotFound):
        registry.history("alpha", "staging")
    with pytest.raises(InvalidRegistration, match="not valid"):
        registry.add_version("bad name!", scripted(), actor="ann")
    with pytest.raises(InvalidRegistration, match="not valid"):
        registry.set_alias("alpha", "pro duction", 1, actor="ann")
    with pytest.raises(InvalidRegistration, match="already exists"):
        registry.create_model("alpha")


def test_routing_state_reflects_aliases_and_moves_its_marker(registry: Registry) -> None:
    empty = registry.routing_state()
    registry.add_version("alpha", scripted(), actor="ann")
    registry.set_alias("alpha", "production", 1, actor="ann")
    state = registry.routing_state()
    assert state.marker != empty.marker
    assert state.marker == registry.change_marker()
    assert [(e.model, e.alias, e.version.number) for e in state.entries] == [
        ("alpha", "production", 1)
    ]
