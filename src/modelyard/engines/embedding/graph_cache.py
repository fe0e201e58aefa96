"""The ONNX file of a model, built once and kept under ``MODELYARD_HOME``, keyed by the
SHA-256 of its weights and the graph's version."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import onnx

from modelyard.engines.embedding.graph import GRAPH_VERSION, build_graph
from modelyard.engines.embedding.model_dir import SentenceModelDir

log = logging.getLogger(__name__)


def graph_file(model: SentenceModelDir, cache_dir: Path, precision: str = "float32") -> Path:
    """The cached graph's path, building it first when it is not there yet. ``int8``: the
    float graph with its MatMul and Gather weights quantised to signed 8-bit integers by
    ONNX Runtime's dynamic quantiser (activations are quantised per batch as it runs)."""
    pooling = "mean-l2" if model.normalize else "mean"
    path = cache_dir / f"{model.weights_sha256()}-{pooling}-g{GRAPH_VERSION}.onnx"
    if not path.is_file():
        log.info("building the ONNX graph of %s into %s", model.directory, path)
        _write(path, lambda partial: onnx.save_model(build_graph(model), partial))
    if precision == "float32":
        return path
    if precision != "int8":
        raise ValueError(f"unknown precision {precision!r}: float32 or int8")
    quantised = path.with_name(path.name.removesuffix(".onnx") + "-int8.onnx")
    if not quantised.is_file():
        from onnxruntime.quantization import QuantType, quantize_dynamic

        log.info("quantising %s to int8 into %s", path.name, quantised)
        _write(
            quantised,
            lambda partial: quantize_dynamic(path, partial, weight_type=QuantType.QInt8),
        )
    return quantised


def _write(path: Path, save: Callable[[str], object]) -> None:
    """Write ``path`` aside and rename it, so a concurrent or interrupted build never leaves
    half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(dir=path.parent, suffix=".partial")
    os.close(handle)
    try:
        save(partial)
        Path(partial).replace(path)
    finally:
        Path(partial).unlink(missing_ok=True)
