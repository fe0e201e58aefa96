"""What a ``classifier`` version's artifact directory holds, and reading and writing it.

* ``classifier.json``: the labels in the head's order, the encoder the head was trained on
  (a sentence-transformers directory and the SHA-256 of its weights) and the lineage (how
  the head was made: dataset, teacher, hyper-parameters, metrics);
* ``head.safetensors``: the linear head, ``weight`` [labels, dimensions] and ``bias``
  [labels], float32. A label's probability is the softmax of ``weight · x + bias`` over the
  encoder's vector ``x`` (multinomial logistic regression).

Nothing is pickled: safetensors holds bare tensors and JSON holds data, so reading an
artifact never runs code from it.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from modelyard.engines.base import EngineError
from modelyard.engines.embedding.backend import EmbeddingBackend, open_backend
from modelyard.engines.embedding.model_dir import SentenceModelDir, read_model_dir

MANIFEST = "classifier.json"
HEAD = "head.safetensors"
FORMAT = 1


class InvalidArtifact(EngineError):
    """The directory is not a classifier this engine can serve."""

    code = "invalid_artifact"


class EncoderRef(BaseModel):
    """The embedding model a head was trained on; serving must use the very same."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    directory: str = Field(description="A sentence-transformers model directory.")
    weights_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    served_as: str | None = Field(
        default=None, description="The registry version that embedded the training texts."
    )


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    format: int = FORMAT
    labels: list[str] = Field(min_length=2)
    dimensions: int = Field(ge=1)
    encoder: EncoderRef
    lineage: dict[str, Any] = Field(default_factory=dict)


@dataclass(frozen=True)
class LinearHead:
    labels: tuple[str, ...]
    weight: NDArray[np.float32]  # [labels, dimensions]
    bias: NDArray[np.float32]  # [labels]

    def __post_init__(self) -> None:
        rows, _ = self.weight.shape
        if rows != len(self.labels) or self.bias.shape != (rows,):
            raise InvalidArtifact(
                f"the head has {rows} rows and {self.bias.shape[0]} biases for "
                f"{len(self.labels)} labels"
            )

    @property
    def dimensions(self) -> int:
        return int(self.weight.shape[1])

    def probabilities(self, vectors: NDArray[np.float32]) -> NDArray[np.float32]:
        """Each vector's probability of each label (rows add up to 1)."""
        scores = vectors @ self.weight.T + self.bias
        scores -= scores.max(axis=1, keepdims=True)
        exp = np.exp(scores)
        out: NDArray[np.float32] = exp / exp.sum(axis=1, keepdims=True)
        return out


@dataclass(frozen=True)
class ClassifierArtifact:
    head: LinearHead
    encoder: EncoderRef
    lineage: dict[str, Any] = field(default_factory=dict)


def encoder_ref(directory: Path, served_as: str | None = None) -> EncoderRef:
    """The reference to a sentence-transformers directory (its weights hashed: slow)."""
    model = read_model_dir(directory)
    return EncoderRef(
        directory=str(model.directory.resolve()),
        weights_sha256=model.weights_sha256(),
        served_as=served_as,
    )


def write_artifact(directory: Path, artifact: ClassifierArtifact) -> None:
    """Write ``artifact`` into ``directory``, which must not exist yet (written aside and
    renamed, so an interrupted write leaves no half artifact)."""
    if directory.exists():
        raise InvalidArtifact(f"'{directory}' exists already")
    directory.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}-"))
    try:
        head = artifact.head
        save_file(
            {
                "weight": np.ascontiguousarray(head.weight, dtype=np.float32),
                "bias": np.ascontiguousarray(head.bias, dtype=np.float32),
            },
            str(partial / HEAD),
        )
        manifest = Manifest(
            labels=list(head.labels),
            dimensions=head.dimensions,
            encoder=artifact.encoder,
            lineage=artifact.lineage,
        )
        text = json.dumps(manifest.model_dump(mode="json"), indent=2, ensure_ascii=False)
        (partial / MANIFEST).write_text(text + "\n", encoding="utf-8")
        partial.replace(directory)
    finally:
        if partial.exists():
            shutil.rmtree(partial)


def read_artifact(directory: Path) -> ClassifierArtifact:
    """The artifact in ``directory``; InvalidArtifact naming what is wrong."""
    try:
        manifest = Manifest.model_validate_json((directory / MANIFEST).read_bytes())
        tensors = load_file(str(directory / HEAD))
    except (OSError, SafetensorError) as error:
        raise InvalidArtifact(f"cannot read the classifier in '{directory}': {error}") from None
    except ValidationError as error:
        raise InvalidArtifact(f"'{directory / MANIFEST}' is not valid: {error}") from None
    if manifest.format != FORMAT:
        raise InvalidArtifact(f"classifier format {manifest.format} is not {FORMAT}")
    weight, bias = tensors.get("weight"), tensors.get("bias")
    if weight is None or bias is None or weight.ndim != 2:
        raise InvalidArtifact(f"'{directory / HEAD}' holds no 2-D weight and bias")
    if weight.shape[1] != manifest.dimensions:
        raise InvalidArtifact(
            f"the head takes {weight.shape[1]} dimensions, the manifest says {manifest.dimensions}"
        )
    head = LinearHead(tuple(manifest.labels), weight.astype(np.float32), bias.astype(np.float32))
    return ClassifierArtifact(head, manifest.encoder, dict(manifest.lineage))


def load_encoder(
    artifact: ClassifierArtifact, cache_dir: Path, threads: int
) -> tuple[SentenceModelDir, EmbeddingBackend]:
    """The encoder the head was trained on, on ONNX Runtime; InvalidArtifact when its
    weights are not the ones the head was trained on (their vectors would mean nothing to
    it)."""
    reference = artifact.encoder
    model = read_model_dir(Path(reference.directory))
    found = model.weights_sha256()
    if found != reference.weights_sha256:
        raise InvalidArtifact(
            f"the encoder in '{reference.directory}' is not the one the head was trained on "
            f"(weights sha256 {found[:12]}…, trained on {reference.weights_sha256[:12]}…)"
        )
    if model.dimensions != artifact.head.dimensions:
        raise InvalidArtifact(
            f"the encoder gives {model.dimensions} dimensions, the head takes "
            f"{artifact.head.dimensions}"
        )
    return model, open_backend("onnxruntime", model, cache_dir, threads)
