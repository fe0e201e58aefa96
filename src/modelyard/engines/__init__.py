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
    InvalidParameters,
    Message,
    Usage,
)
from modelyard.engines.capabilities import Capabilities, Need
from modelyard.engines.parameters import EngineParameters, Price

__all__ = [
    "Capabilities",
    "Chunk",
    "ContextLengthExceeded",
    "Embeddings",
    "Engine",
    "EngineError",
    "EngineInfo",
    "EngineNotReady",
    "EngineParameters",
    "EngineSpec",
    "GenerationRequest",
    "InvalidParameters",
    "Message",
    "Need",
    "Price",
    "Usage",
]
