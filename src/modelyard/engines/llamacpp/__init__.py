"""The embedded engine: GGUF files served in-process by llama.cpp (llama-cpp-python)."""

from modelyard.engines.llamacpp.engine import LlamaCppEngine

__all__ = ["LlamaCppEngine"]
