"""What a sentence-transformers model directory holds, read from its JSON files (no imports
of torch or sentence-transformers): a BERT encoder, mean pooling, optional L2 normalisation."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelyard.engines.base import EngineError

WEIGHTS_FILE = "model.safetensors"
TOKENIZER_FILE = "tokenizer.json"
_CHUNK = 1024 * 1024


class UnsupportedModel(EngineError):
    """The directory is not a sentence-transformers model this engine can run."""

    code = "unsupported_model"


@dataclass(frozen=True)
class BertShape:
    """The encoder's size, from ``config.json``."""

    layers: int
    hidden: int
    heads: int
    intermediate: int
    max_positions: int
    layer_norm_eps: float


@dataclass(frozen=True)
class SentenceModelDir:
    directory: Path
    shape: BertShape
    max_tokens: int
    normalize: bool

    @property
    def weights(self) -> Path:
        return self.directory / WEIGHTS_FILE

    @property
    def tokenizer(self) -> Path:
        return self.directory / TOKENIZER_FILE

    @property
    def dimensions(self) -> int:
        return self.shape.hidden

    def weights_sha256(self) -> str:
        digest = hashlib.sha256()
        with self.weights.open("rb") as handle:
            while block := handle.read(_CHUNK):
                digest.update(block)
        return digest.hexdigest()


def read_model_dir(directory: Path) -> SentenceModelDir:
    """Check the module chain (Transformer → mean Pooling → [Normalize]) and read the sizes."""
    if not directory.is_dir():
        raise UnsupportedModel(f"'{directory}' is not a directory of a sentence-transformers model")
    for name in (WEIGHTS_FILE, TOKENIZER_FILE, "config.json", "modules.json"):
        if not (directory / name).is_file():
            raise UnsupportedModel(f"'{directory}' has no {name}")
    entries = _json(directory, "modules.json")
    modules = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in entries]
    if modules[:2] != ["Transformer", "Pooling"] or modules[2:] not in ([], ["Normalize"]):
        raise UnsupportedModel(
            f"modules {modules} are not supported: expected Transformer, Pooling[, Normalize]"
        )
    pooling = _json(directory, f"{entries[1].get('path') or '1_Pooling'}/config.json")
    modes = sorted(k for k, v in pooling.items() if k.startswith("pooling_mode") and v is True)
    if modes != ["pooling_mode_mean_tokens"]:
        raise UnsupportedModel(f"pooling {modes} is not supported: only mean pooling is")
    config = _json(directory, "config.json")
    if config.get("model_type") != "bert" or config.get("hidden_act", "gelu") != "gelu":
        raise UnsupportedModel("only BERT encoders with GELU activations are supported")
    shape = BertShape(
        layers=int(config["num_hidden_layers"]),
        hidden=int(config["hidden_size"]),
        heads=int(config["num_attention_heads"]),
        intermediate=int(config["intermediate_size"]),
        max_positions=int(config["max_position_embeddings"]),
        layer_norm_eps=float(config.get("layer_norm_eps", 1e-12)),
    )
    st_config = directory / "sentence_bert_config.json"
    seq = _json(directory, st_config.name).get("max_seq_length") if st_config.is_file() else None
    return SentenceModelDir(
        directory=directory,
        shape=shape,
        max_tokens=min(int(seq or shape.max_positions), shape.max_positions),
        normalize=modules[2:] == ["Normalize"],
    )


def _json(directory: Path, name: str) -> Any:
    try:
        return json.loads((directory / name).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise UnsupportedModel(f"cannot read {directory / name}: {error}") from error
