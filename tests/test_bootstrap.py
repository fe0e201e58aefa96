from __future__ import annotations

from pathlib import Path

import pytest

from modelyard.bootstrap import (
    CHAT,
    DEFAULT_EMBEDDING_MODEL,
    EMBEDDING,
    ensure_default_embedding_model,
    minilm_dir,
)
from modelyard.config import Settings
from modelyard.engines.kinds import check_parameters
from modelyard.registry import ModelNotFound, Registry


def test_minilm_is_found_without_importing_its_package() -> None:
    directory = minilm_dir()
    assert directory.name == "model"
    assert (directory / "model.safetensors").is_file()
    assert (directory / "1_Pooling" / "config.json").is_file()


def test_first_start_registers_the_default_embedding_model(
    home_registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELYARD_DEFAULT_EMBEDDING_MODEL", "minilm")
    ensure_default_embedding_model(Settings(), home_registry, actor="tests")
    ensure_default_embedding_model(Settings(), home_registry, actor="tests")  # idempotent
    model = home_registry.model(DEFAULT_EMBEDDING_MODEL)
    assert model.task == "embedding"
    assert [(a.name, a.version) for a in model.aliases] == [("production", 1)]
    (version,) = model.versions
    assert version.engine_kind == "sentence-transformers"
    assert Path(version.artifact_uri) == minilm_dir().resolve()
    assert version.artifact_sha256 is not None and len(version.artifact_sha256) == 64


def test_none_registers_nothing(home_registry: Registry) -> None:
    ensure_default_embedding_model(Settings(), home_registry, actor="tests")
    with pytest.raises(ModelNotFound):
        home_registry.model(DEFAULT_EMBEDDING_MODEL)


def test_a_path_registers_that_directory(
    home_registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"weights")
    monkeypatch.setenv("MODELYARD_DEFAULT_EMBEDDING_MODEL", str(tmp_path))
    ensure_default_embedding_model(Settings(), home_registry, actor="tests")
    (version,) = home_registry.model(DEFAULT_EMBEDDING_MODEL).versions
    assert version.artifact_uri == str(tmp_path.resolve())
    assert "MODELYARD_DEFAULT_EMBEDDING_MODEL" in version.notes


def test_the_defaults_parameters_fit_their_kinds() -> None:
    """Registration checks them like any other version's (the sampling defaults of SmolLM2)."""
    for default in (CHAT, EMBEDDING):
        check_parameters(default.engine_kind, default.parameters)
