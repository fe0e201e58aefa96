"""llama.cpp's quantiser, through llama-cpp-python: a GGUF file written again with its
weights in another type (``Q8_0``, ``Q4_K_M``, ...). The type of the source is read from
its metadata, so a caller can say when a variant is made from weights that were already
quantised (re-quantising cannot bring back what the first quantisation lost).

llama_cpp is imported where the quantiser runs: importing this module loads neither it nor
numpy."""

from __future__ import annotations

import ctypes
import logging
import os
from pathlib import Path

# The file types llama.cpp writes without an importance matrix (the IQ1/IQ2/IQ3 types need
# one, computed from calibration text: not offered). The name is llama.cpp's own, as its
# ``llama-quantize`` tool spells it; each maps to ``LLAMA_FTYPE_MOSTLY_<name>``.
METHODS = (
    "F16",
    "BF16",
    "Q8_0",
    "Q6_K",
    "Q5_K_M",
    "Q5_K_S",
    "Q5_1",
    "Q5_0",
    "Q4_K_M",
    "Q4_K_S",
    "Q4_1",
    "Q4_0",
    "IQ4_NL",
    "IQ4_XS",
    "Q3_K_L",
    "Q3_K_M",
    "Q3_K_S",
    "Q2_K",
)
# ``general.file_type`` (llama_ftype) of the types a source may already have.
_FILE_TYPES = {0: "F32", 1: "F16", 32: "BF16"}


class QuantiseError(RuntimeError):
    """llama.cpp could not write the variant; the message says what was asked."""


def unknown_methods(methods: list[str]) -> list[str]:
    """The names in ``methods`` that are not quantisation types this module offers."""
    return [method for method in methods if method not in METHODS]


def file_type(path: Path) -> str:
    """The weight type of the GGUF at ``path`` as llama.cpp names it (``Q4_1``, ``F16``),
    from its ``general.file_type``; ``unknown`` when the file does not say."""
    import llama_cpp

    value = _metadata_value(path, "general.file_type")
    if value is None:
        return "unknown"
    number = int(value)
    if number in _FILE_TYPES:
        return _FILE_TYPES[number]
    for method in METHODS:
        if getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{method}", None) == number:
            return method
    return f"type {number}"


def is_quantised(kind: str) -> bool:
    """Whether weights of this type were already quantised (not float)."""
    return kind not in ("F32", "F16", "BF16", "unknown")


def quantise(source: Path, target: Path, method: str, threads: int | None = None) -> None:
    """Write ``source``'s weights as ``method`` into ``target`` (replaced if it exists,
    written to a temporary name first so a failure never leaves half a file). Blocking: a
    caller on an event loop runs it in a worker thread (ctypes releases the GIL)."""
    import llama_cpp

    if method not in METHODS:
        raise QuantiseError(f"unknown quantisation type {method!r}; known: {', '.join(METHODS)}")
    _quiet()
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{method}")
    params.nthread = threads or (os.cpu_count() or 1)
    # A source that is already quantised (the default SmolLM2 is Q4_1) can only be
    # re-quantised: llama.cpp refuses it unless asked.
    params.allow_requantize = True
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    status = llama_cpp.llama_model_quantize(
        str(source).encode(), str(partial).encode(), ctypes.byref(params)
    )
    if status != 0 or not partial.is_file():
        partial.unlink(missing_ok=True)
        raise QuantiseError(
            f"llama.cpp could not quantise {source.name} to {method} (status {status}); "
            "its log (the llama-cpp-python logger, at ERROR) says why"
        )
    partial.replace(target)


def _metadata_value(path: Path, key: str) -> str | None:
    """One metadata value of a GGUF, read by llama.cpp without loading the weights'
    data into memory (``vocab_only``)."""
    import llama_cpp

    _quiet()
    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    model = llama_cpp.llama_model_load_from_file(str(path).encode(), params)
    if not model:
        raise QuantiseError(f"llama.cpp could not read {path}")
    try:
        buffer = ctypes.create_string_buffer(256)
        size = llama_cpp.llama_model_meta_val_str(model, key.encode(), buffer, len(buffer))
        return None if size < 0 else buffer.value.decode("utf-8", "replace")
    finally:
        llama_cpp.llama_model_free(model)


def _quiet() -> None:
    """llama.cpp's log (a line per tensor while quantising) only for errors, as the engine
    sets it when it loads a model."""
    logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)
