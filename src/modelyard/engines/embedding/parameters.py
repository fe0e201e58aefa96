"""What a ``sentence-transformers`` version may set."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

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

    precision: Literal["float32", "int8"] = Field(
        default="float32",
        description="`int8`: the ONNX graph's weights quantised to 8 bits by ONNX Runtime's "
        "dynamic quantiser (onnxruntime backend only); `modelyard compress` makes such "
        "versions and measures them against the float model.",
    )

    @model_validator(mode="after")
    def _int8_on_onnx(self) -> SentenceTransformersParameters:
        if self.precision == "int8" and self.backend != "onnxruntime":
            raise ValueError("precision int8 needs the onnxruntime backend")
        return self

    @field_validator("backend", mode="before")
    @classmethod
    def _known_backend(cls, value: object) -> BackendName:
        return backend_name(value)
