from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from modelyard.bootstrap import minilm_dir
from modelyard.engines.embedding.model_dir import UnsupportedModel, read_model_dir

SMALL_FILES = ["config.json", "modules.json", "sentence_bert_config.json", "1_Pooling/config.json"]


@pytest.fixture
def model_copy(tmp_path: Path) -> Path:
    """The small JSON files of all-MiniLM-L6-v2, with empty weights and tokenizer."""
    source = minilm_dir()
    for name in SMALL_FILES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source / name, tmp_path / name)
    (tmp_path / "model.safetensors").touch()
    (tmp_path / "tokenizer.json").touch()
    return tmp_path


def edit(path: Path, **changes: object) -> None:
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def test_minilm_reads_as_a_normalised_mean_pooled_bert() -> None:
    model = read_model_dir(minilm_dir())
    assert (model.dimensions, model.max_tokens, model.normalize) == (384, 256, True)
    assert (model.shape.layers, model.shape.heads, model.shape.intermediate) == (6, 12, 1536)


def test_without_normalize_the_vectors_are_left_as_pooled(model_copy: Path) -> None:
    modules = json.loads((model_copy / "modules.json").read_text())
    (model_copy / "modules.json").write_text(json.dumps(modules[:2]))
    assert read_model_dir(model_copy).normalize is False


def test_other_pooling_is_refused(model_copy: Path) -> None:
    pooling = model_copy / "1_Pooling" / "config.json"
    edit(pooling, pooling_mode_mean_tokens=False, pooling_mode_cls_token=True)
    with pytest.raises(UnsupportedModel, match="only mean pooling"):
        read_model_dir(model_copy)


def test_other_architectures_are_refused(model_copy: Path) -> None:
    edit(model_copy / "config.json", model_type="xlm-roberta")
    with pytest.raises(UnsupportedModel, match="only BERT"):
        read_model_dir(model_copy)


def test_a_missing_file_is_named(model_copy: Path) -> None:
    (model_copy / "tokenizer.json").unlink()
    with pytest.raises(UnsupportedModel, match=r"has no tokenizer\.json"):
        read_model_dir(model_copy)


def test_a_file_is_not_a_model_directory(model_copy: Path) -> None:
    with pytest.raises(UnsupportedModel, match="is not a directory"):
        read_model_dir(model_copy / "config.json")
