"""What the engine asks of a backend, and how one is chosen (imported only when opened)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, get_args

from modelyard.engines.embedding.model_dir import SentenceModelDir

BackendName = Literal["onnxruntime", "torch"]
BACKENDS: tuple[str, ...] = get_args(BackendName)
Precision = Literal["float32", "int8"]


@dataclass(frozen=True)
class Encoded:
    """Vectors of a batch of texts, in order, and the tokens the model read for each."""

    vectors: list[list[float]]
    tokens: list[int]

    def part(self, start: int, stop: int) -> Encoded:
        return Encoded(self.vectors[start:stop], self.tokens[start:stop])

    @classmethod
    def joined(cls, parts: list[Encoded]) -> Encoded:
        return cls(
            [v for p in parts for v in p.vectors],
            [t for p in parts for t in p.tokens],
        )


class EmbeddingBackend(Protocol):
    """Runs the model; ``encode`` blocks, so the engine calls it from a worker thread."""

    name: str

    def encode(self, texts: list[str]) -> Encoded: ...


def backend_name(value: object) -> BackendName:
    """The backend ``value`` names (None: the default); a ValueError for any other value."""
    if value == "torch":
        return "torch"
    if value in (None, "onnxruntime"):
        return "onnxruntime"
    raise ValueError(f"unknown embedding backend {value!r}; choose one of {', '.join(BACKENDS)}")


def open_backend(
    name: BackendName,
    model: SentenceModelDir,
    cache_dir: Path,
    threads: int,
    precision: Precision = "float32",
) -> EmbeddingBackend:
    """Load the model (slow: call it from a thread); the backend's imports happen here.
    ``int8`` runs the graph with its weights quantised (onnxruntime only)."""
    if name == "torch":
        from modelyard.engines.embedding.torch_backend import TorchBackend

        return TorchBackend(model, threads)
    from modelyard.engines.embedding.onnx_backend import OnnxBackend

    return OnnxBackend(model, cache_dir, threads, precision)
