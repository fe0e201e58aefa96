"""sentence-transformers on PyTorch (CPU), for hosts that have it installed; not a
dependency of modelyard (``pip install torch==2.13.0 sentence-transformers``)."""

from __future__ import annotations

from modelyard.engines.base import EngineError
from modelyard.engines.embedding.backend import Encoded
from modelyard.engines.embedding.model_dir import SentenceModelDir


class TorchBackend:
    name = "torch"

    def __init__(self, model: SentenceModelDir, threads: int) -> None:
        try:
            import torch
            from sentence_transformers import SentenceTransformer
        except ImportError as error:
            raise EngineError(
                "the torch backend needs torch and sentence-transformers: "
                "pip install torch==2.13.0 sentence-transformers"
            ) from error
        if threads > 0:
            torch.set_num_threads(threads)
        self._torch = torch
        # A local directory and local_files_only: nothing is fetched from a hub.
        self._model = SentenceTransformer(str(model.directory), device="cpu", local_files_only=True)

    def encode(self, texts: list[str]) -> Encoded:
        features = self._model.preprocess(texts)
        with self._torch.inference_mode():
            out = self._model.forward(features)
        tokens = features["attention_mask"].sum(dim=1)
        return Encoded(out["sentence_embedding"].tolist(), tokens.tolist())
