"""ONNX Runtime on the CPU over the graph built from the model's weights, with the model's
own ``tokenizer.json`` (Hugging Face ``tokenizers``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime
from onnxruntime.capi.onnxruntime_pybind11_state import (
    Fail,
    InvalidArgument,
    InvalidGraph,
    InvalidProtobuf,
    NoSuchFile,
    RuntimeException,
)
from safetensors import SafetensorError
from tokenizers import Tokenizer

from modelyard.engines.base import EngineError
from modelyard.engines.embedding.backend import Encoded, Precision
from modelyard.engines.embedding.graph import OUTPUT
from modelyard.engines.embedding.graph_cache import graph_file
from modelyard.engines.embedding.model_dir import SentenceModelDir, UnsupportedModel

_LOAD_ERRORS = (SafetensorError, InvalidGraph, InvalidProtobuf, NoSuchFile, Fail)


def load_tokenizer(model: SentenceModelDir) -> Tokenizer:
    """The model's tokenizer, truncating at its ``max_seq_length`` and padding to the longest
    text of a batch (tokenizer.json's own settings are for training, not for this)."""
    tokenizer = Tokenizer.from_file(str(model.tokenizer))
    padding = tokenizer.padding or {}
    tokenizer.enable_truncation(max_length=model.max_tokens)
    tokenizer.enable_padding(
        pad_id=int(padding.get("pad_id", 0)), pad_token=str(padding.get("pad_token", "[PAD]"))
    )
    return tokenizer


class OnnxBackend:
    name = "onnxruntime"

    def __init__(
        self,
        model: SentenceModelDir,
        cache_dir: Path,
        threads: int,
        precision: Precision = "float32",
    ) -> None:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Idle worker threads would otherwise spin on the cores the LLM engines decode on.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.graph = graph_file(model, cache_dir, precision)
            self._session = onnxruntime.InferenceSession(
                str(self.graph), options, providers=["CPUExecutionProvider"]
            )
        except _LOAD_ERRORS as error:
            raise UnsupportedModel(f"cannot load {model.directory}: {error}") from error
        self._tokenizer = load_tokenizer(model)

    def encode(self, texts: list[str]) -> Encoded:
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        try:
            (vectors,) = self._session.run([OUTPUT], {"input_ids": ids, "attention_mask": mask})
        except (Fail, InvalidArgument, RuntimeException) as error:
            raise EngineError(f"ONNX Runtime failed to embed: {error}") from error
        return Encoded(vectors.tolist(), mask.sum(axis=1).tolist())
