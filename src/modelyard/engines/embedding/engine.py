"""The ``sentence-transformers`` engine kind: a sentence-transformers model directory
(all-MiniLM-L6-v2 by default) served for ``/v1/embeddings``.

Parameters (all optional):
- ``backend``: ``onnxruntime`` (default) or ``torch`` (needs torch and sentence-transformers).
- ``threads``: CPU threads of a forward pass; 0 (default) lets the backend choose (all cores).
- ``max_batch``: texts encoded together in one forward pass (default 32).
- ``max_wait_ms``: how long the first queued text waits for others to join (default 5).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from modelyard.config import Settings
from modelyard.engines.base import Embeddings, Engine, EngineInfo, EngineNotReady, EngineSpec
from modelyard.engines.embedding.backend import EmbeddingBackend, backend_name, open_backend
from modelyard.engines.embedding.batcher import MicroBatcher
from modelyard.engines.embedding.model_dir import SentenceModelDir, read_model_dir


class SentenceTransformersEngine(Engine):
    kind = "sentence-transformers"

    def __init__(self, spec: EngineSpec, settings: Settings) -> None:
        super().__init__(spec, settings)
        params = spec.parameters
        self._backend_name = backend_name(params.get("backend"))
        self._threads = int(params.get("threads", 0))
        self._max_batch = int(params.get("max_batch", 32))
        self._max_wait_s = float(params.get("max_wait_ms", 5)) / 1000
        if self._threads < 0 or self._max_batch < 1 or self._max_wait_s < 0:
            raise ValueError("threads and max_wait_ms must be >= 0, max_batch >= 1")
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
        return model, open_backend(self._backend_name, model, cache, self._threads)

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

    def info(self) -> EngineInfo:
        details: dict[str, object] = {
            "backend": self._backend_name,
            "max_batch": self._max_batch,
            "forward_passes": self.forward_passes,
        }
        if self._model is None:
            return EngineInfo(kind=self.kind, details=details)
        return EngineInfo(
            kind=self.kind,
            context_length=self._model.max_tokens,
            size_bytes=self._size_bytes,
            details={"dimensions": self._model.dimensions, **details},
        )

    async def embed(self, texts: Sequence[str]) -> Embeddings:
        if self._batcher is None:
            raise EngineNotReady(f"the embedding engine of '{self.spec.model}' is not started")
        encoded = await self._batcher.submit(texts)
        return Embeddings(vectors=encoded.vectors, prompt_tokens=sum(encoded.tokens))
