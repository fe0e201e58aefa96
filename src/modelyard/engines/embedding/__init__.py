"""The ``sentence-transformers`` engine kind: text embeddings on the CPU (ONNX Runtime by
default), micro-batched across concurrent requests."""

from modelyard.engines.embedding.engine import SentenceTransformersEngine

__all__ = ["SentenceTransformersEngine"]
