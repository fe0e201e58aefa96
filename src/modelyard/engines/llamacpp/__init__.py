"""The embedded engine: GGUF files served in-process by llama.cpp (llama-cpp-python).

The engine is imported on first use: ``artifact`` (a GGUF file's header, read when a
fine-tune is registered) needs neither llama.cpp nor numpy, and the server imports it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelyard.engines.llamacpp.engine import LlamaCppEngine

__all__ = ["LlamaCppEngine"]


def __getattr__(name: str) -> Any:
    if name == "LlamaCppEngine":
        from modelyard.engines.llamacpp.engine import LlamaCppEngine

        return LlamaCppEngine
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
