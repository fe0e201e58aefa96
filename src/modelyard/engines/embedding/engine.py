"""The ``sentence-transformers`` engine kind: a sentence-transformers model directory
(all-MiniLM-L6-v2 by default) served for ``/v1/embeddings``; its parameters are
``SentenceTransformersParameters``, all optional.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from modelyard import config
from modelyard.engines.base import Embeddings, Engine, EngineInfo, EngineNotReady, EngineSpec
from modelyard.engines.capabilities import EMBEDS
from modelyard.engines.embedding.backend import EmbeddingBackend, open_backend
from modelyard.engines.embedding.batcher import MicroBatcher
from modelyard.engines.embedding.model_dir import SentenceModelDir, read_model_dir
from modelyard.engines.embedding.parameters import SentenceTransformersParameters


@dataclass(frozen=True)
class EmbeddingInfo(EngineInfo):
    dimensions: int | None = None  # of each vector, once the model is loaded
    backend: str | None = None
    precision: str | None = None
    max_batch: int | None = None
    forward_passes: int | None = None


class SentenceTransformersEngine(Engine):
    kind = "sentence-transformers"
    capabilities = EMBEDS
    Parameters = SentenceTransformersParameters

    def __init__(self, spec: EngineSpec, settings: config.Settings) -> None:
        super().__init__(spec, settings)
        params = self.read_parameters(SentenceTransformersParameters)
        self._backend_name = params.backend
        self._precision = params.precision
        self._threads = params.threads
        self._max_batch = params.max_batch
        self._max_wait_s = params.max_wait_ms / 1000
        self._model: SentenceModelDir | None = None
        self._size_bytes: int | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._batcher: MicroBatcher | None = None

    async def start(self) -> None:
        # One thread for loading and every forward pass: they never overlap, and the
        # event loop's default pool stays free for other work.
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"embed-{self.spec.model}")
        try:
            model, backend = await asyncio.get_running_loop().run_in_executor(executor, self._load)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        self._model, self._executor = model, executor
        self._batcher = MicroBatcher(
            backend.encode, executor, max_batch=self._max_batch, max_wait_s=self._max_wait_s
        )

    def _load(self) -> tuple[SentenceModelDir, EmbeddingBackend]:
        model = read_model_dir(Path(self.spec.artifact_uri).expanduser())
        self._size_bytes = model.weights.stat().st_size
        cache = self.settings.home / "cache" / "onnx"
        backend = open_backend(self._backend_name, model, cache, self._threads, self._precision)
        return model, backend

    async def aclose(self) -> None:
        if self._batcher is not None:
            await self._batcher.aclose()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        self._batcher = self._executor = None

    @property
    def forward_passes(self) -> int:
        """Batches encoded so far (fewer than requests when requests were batched together)."""
        return self._batcher.forward_passes if self._batcher is not None else 0

    def info(self) -> EmbeddingInfo:
        model = self._model
        return EmbeddingInfo(
            kind=self.kind,
            context_length=model.max_tokens if model is not None else None,
            size_bytes=self._size_bytes if model is not None else None,
            dimensions=model.dimensions if model is not None else None,
            backend=self._backend_name,
            precision=self._precision,
            max_batch=self._max_batch,
            forward_passes=self.forward_passes,
        )

    async def embed(self, texts: Sequence[str]) -> Embeddings:
        if self._batcher is None:
            raise EngineNotReady(f"the embedding engine of '{self.spec.model}' is not started")
        encoded = await self._batcher.submit(texts)
        return Embeddings(vectors=encoded.vectors, prompt_tokens=sum(encoded.tokens))
