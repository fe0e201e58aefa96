"""The ONNX file of a model, built once and kept under ``MODELYARD_HOME``, keyed by the
SHA-256 of its weights and the graph's version."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import onnx

from modelyard.engines.embedding.graph import GRAPH_VERSION, build_graph
from modelyard.engines.embedding.model_dir import SentenceModelDir

log = logging.getLogger(__name__)


def graph_file(model: SentenceModelDir, cache_dir: Path) -> Path:
    """The cached graph's path, building it first when it is not there yet."""
    pooling = "mean-l2" if model.normalize else "mean"
    path = cache_dir / f"{model.weights_sha256()}-{pooling}-g{GRAPH_VERSION}.onnx"
    if path.is_file():
        return path
    log.info("building the ONNX graph of %s into %s", model.directory, path)
    cache_dir.mkdir(parents=True, exist_ok=True)
    # Written aside and renamed, so a concurrent or interrupted build never leaves half a file.
    handle, partial = tempfile.mkstemp(dir=cache_dir, suffix=".partial")
    os.close(handle)
    try:
        onnx.save_model(build_graph(model), partial)
        Path(partial).replace(path)
    finally:
        Path(partial).unlink(missing_ok=True)
    return path
