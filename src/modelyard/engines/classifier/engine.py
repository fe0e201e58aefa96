"""The ``classifier`` engine kind: a sentence-transformers encoder and a linear head over
its vectors (``artifact.py``), served through the chat and completions APIs. The reply is
the most probable label, or at a temperature above 0 one drawn from the labels'
probabilities; ``logprobs`` give the labels' probabilities (``answer.py``). Concurrent requests
are classified together in one forward pass (the embedding kind's micro-batcher), on a
thread of the engine's own.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard import config
from modelyard.engines.base import (
    Chunk,
    Engine,
    EngineInfo,
    EngineNotReady,
    EngineSpec,
    GenerationRequest,
)
from modelyard.engines.capabilities import Capabilities
from modelyard.engines.classifier.answer import Ranked, answer_chunks, text_of, top_wanted
from modelyard.engines.classifier.parameters import ClassifierParameters, ClassifierSettings
from modelyard.engines.embedding.backend import Encoded
from modelyard.engines.embedding.batcher import MicroBatcher

if TYPE_CHECKING:  # numpy and the artifact load with the engine, not with the server
    from modelyard.engines.classifier.artifact import ClassifierArtifact
    from modelyard.engines.embedding.backend import EmbeddingBackend

# What the chat API needs of a classifier: chat and completions (streamed or not),
# logprobs (the labels' probabilities) and a seed (of a draw at a temperature above 0).
CLASSIFIES = Capabilities(
    chat=True, completion=True, streaming=True, classification=True, logprobs=True, seed=True
)


@dataclass(frozen=True)
class ClassifierInfo(EngineInfo):
    labels: list[str] | None = None
    dimensions: int | None = None
    encoder: str | None = None  # the registry version the head was trained on
    distilled_from: str | None = None  # the dataset version, from the lineage
    max_batch: int | None = None
    forward_passes: int | None = None


class ClassifierEngine(Engine):
    kind = "classifier"
    capabilities = CLASSIFIES
    Parameters = ClassifierParameters
    Settings = ClassifierSettings

    def __init__(self, spec: EngineSpec, settings: config.Settings) -> None:
        super().__init__(spec, settings)
        params = self.read_parameters(ClassifierParameters)
        tuning = ClassifierSettings()
        self._threads = tuning.threads if params.threads is None else params.threads
        self._max_batch = tuning.max_batch if params.max_batch is None else params.max_batch
        wait_ms = tuning.max_wait_ms if params.max_wait_ms is None else params.max_wait_ms
        self._max_wait_s = wait_ms / 1000
        self._artifact: ClassifierArtifact | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._batcher: MicroBatcher | None = None
        self._size_bytes: int | None = None
        self._context_length: int | None = None

    async def start(self) -> None:
        # One thread loads and runs every pass: they never overlap.
        executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"classify-{self.spec.model}"
        )
        try:
            artifact, backend = await asyncio.get_running_loop().run_in_executor(
                executor, self._load
            )
        except BaseException:
            executor.shutdown(wait=False)
            raise
        self._artifact, self._executor = artifact, executor

        def classify(texts: list[str]) -> Encoded:
            return _classified(artifact, backend, texts)

        self._batcher = MicroBatcher(
            classify, executor, max_batch=self._max_batch, max_wait_s=self._max_wait_s
        )

    def _load(self) -> tuple[ClassifierArtifact, EmbeddingBackend]:
        from modelyard.engines.classifier.artifact import load_encoder, read_artifact

        directory = Path(self.spec.artifact_uri).expanduser()
        artifact = read_artifact(directory)
        cache = self.settings.home / "cache" / "onnx"
        model, backend = load_encoder(artifact, cache, self._threads)
        self._context_length = model.max_tokens
        self._size_bytes = model.weights.stat().st_size + sum(
            f.stat().st_size for f in directory.iterdir() if f.is_file()
        )
        return artifact, backend

    async def aclose(self) -> None:
        if self._batcher is not None:
            await self._batcher.aclose()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        self._batcher = self._executor = None

    def info(self) -> ClassifierInfo:
        artifact = self._artifact
        if artifact is None:
            return ClassifierInfo(kind=self.kind, max_batch=self._max_batch)
        return ClassifierInfo(
            kind=self.kind,
            context_length=self._context_length,
            size_bytes=self._size_bytes,
            labels=list(artifact.head.labels),
            dimensions=artifact.head.dimensions,
            encoder=artifact.encoder.served_as or artifact.encoder.directory,
            distilled_from=_dataset_of(artifact.lineage),
            max_batch=self._max_batch,
            forward_passes=self._batcher.forward_passes if self._batcher is not None else 0,
        )

    async def classify(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """Each text's probability of each label, in the head's label order."""
        labels, encoded = await self._submit(texts)
        return [dict(zip(labels, row, strict=True)) for row in encoded.vectors]

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[Chunk, None]:
        if self._artifact is None:
            raise EngineNotReady(f"the classifier of '{self.spec.model}' is not started")
        text = text_of(request)
        top = top_wanted(request, len(self._artifact.head.labels))
        labels, encoded = await self._submit([text])
        ranked = Ranked.of(labels, encoded.vectors[0])
        for chunk in answer_chunks(request, ranked, top, encoded.tokens[0]):
            yield chunk

    async def _submit(self, texts: Sequence[str]) -> tuple[tuple[str, ...], Encoded]:
        if self._batcher is None or self._artifact is None:
            raise EngineNotReady(f"the classifier of '{self.spec.model}' is not started")
        return self._artifact.head.labels, await self._batcher.submit(texts)


def _classified(
    artifact: ClassifierArtifact, backend: EmbeddingBackend, texts: list[str]
) -> Encoded:
    """The labels' probabilities of each text (on the engine's thread)."""
    import numpy as np

    encoded = backend.encode(texts)
    vectors = np.asarray(encoded.vectors, dtype=np.float32)
    return Encoded(artifact.head.probabilities(vectors).tolist(), encoded.tokens)


def _dataset_of(lineage: dict[str, Any]) -> str | None:
    dataset = lineage.get("dataset")
    if isinstance(dataset, dict):
        name = dataset.get("name")
        return str(name) if name is not None else None
    return None
