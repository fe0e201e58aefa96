"""Engines: the ``Engine`` contract and its kinds (``modelyard.engines`` entry points)."""

from modelyard.engines.base import (
    Chunk,
    ContextLengthExceeded,
    Embeddings,
    Engine,
    EngineError,
    EngineInfo,
    EngineNotReady,
    EngineSpec,
    GenerationRequest,
    Message,
    Usage,
)

__all__ = [
    "Chunk",
    "ContextLengthExceeded",
    "Embeddings",
    "Engine",
    "EngineError",
    "EngineInfo",
    "EngineNotReady",
    "EngineSpec",
    "GenerationRequest",
    "Message",
    "Usage",
]
