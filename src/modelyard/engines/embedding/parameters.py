"""What a ``sentence-transformers`` version may set."""

from __future__ import annotations

from pydantic import Field, field_validator

from modelyard.engines.embedding.backend import BackendName, backend_name
from modelyard.engines.parameters import EngineParameters


class SentenceTransformersParameters(EngineParameters):
    backend: BackendName = Field(
        default="onnxruntime",
        description="`onnxruntime` or `torch` (needs torch and sentence-transformers).",
    )
    threads: int = Field(
        default=0, ge=0, description="CPU threads of a forward pass; 0 lets the backend choose."
    )
    max_batch: int = Field(
        default=32, ge=1, description="Texts encoded together in one forward pass."
    )
    max_wait_ms: float = Field(
        default=5, ge=0, description="How long the first queued text waits for others to join."
    )

    @field_validator("backend", mode="before")
    @classmethod
    def _known_backend(cls, value: object) -> BackendName:
        return backend_name(value)
