from __future__ import annotations

from pathlib import Path

import pytest

from modelyard.registry import InvalidRegistration
from modelyard.registry.artifacts import pin_artifact, sha256_of_dir


def model_dir(root: Path, weights: bytes = b"w") -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "model.bin").write_bytes(weights)
    (root / "sub" / "config.json").write_text("{}")
    return root


def test_a_directory_is_pinned_by_its_files_and_their_paths(tmp_path: Path) -> None:
    first = model_dir(tmp_path / "a")
    uri, digest = pin_artifact(str(first))
    assert uri == str(first.resolve())
    assert digest == sha256_of_dir(first)
    assert sha256_of_dir(model_dir(tmp_path / "b")) == digest  # same content, same digest
    assert sha256_of_dir(model_dir(tmp_path / "c", weights=b"v")) != digest
    (first / "sub" / "config.json").rename(first / "config.json")
    assert sha256_of_dir(first) != digest  # a moved file changes the digest


def test_a_missing_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidRegistration, match="does not exist"):
        pin_artifact(str(tmp_path / "nothing"))
