"""The engine against a direct call of sentence-transformers on PyTorch: an implementation
independent of ours (its own graph, pooling and tokenizer settings) on the same weights."""

from __future__ import annotations

import asyncio
import math
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from numpy.typing import NDArray
from sentence_transformers import SentenceTransformer

from modelyard.bootstrap import minilm_dir
from modelyard.config import Settings
from modelyard.engines import EngineError, EngineSpec
from modelyard.engines.embedding import SentenceTransformersEngine
from modelyard.engines.embedding.model_dir import UnsupportedModel
from modelyard.engines.kinds import engine_class

pytestmark = pytest.mark.anyio

PARAPHRASES = [
    ("A man is playing a guitar.", "Someone is strumming a guitar."),
    ("The cat sleeps on the sofa.", "A cat is napping on the couch."),
    ("How do I reset my password?", "I forgot my password, how can I change it?"),
    ("The stock market fell sharply today.", "Share prices dropped steeply today."),
]
LONG = "The lighthouse keeper wrote in his log every night. " * 60  # > 256 tokens
SENTENCES = [s for pair in PARAPHRASES for s in pair] + [LONG, "x"]


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def reference() -> SentenceTransformer:
    # One thread: OpenMP's spinning threads slow to a crawl on a busy 2-core machine.
    torch.set_num_threads(1)
    return SentenceTransformer(str(minilm_dir()), device="cpu", local_files_only=True)


@pytest.fixture(scope="module")
def expected(reference: SentenceTransformer) -> dict[str, NDArray[np.float32]]:
    return dict(zip(SENTENCES, reference.encode(SENTENCES, convert_to_numpy=True), strict=True))


def start_engine(home: Path, **parameters: Any) -> SentenceTransformersEngine:
    spec = EngineSpec("minilm", 1, "sentence-transformers", str(minilm_dir()), parameters)
    return SentenceTransformersEngine(spec, Settings(home=home))


@pytest.fixture(scope="module")
async def engine(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Any]:
    started = start_engine(tmp_path_factory.mktemp("home"))
    await started.start()
    yield started
    await started.aclose()


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / math.sqrt(
        sum(x * x for x in a) * sum(y * y for y in b)
    )


def test_the_kind_loads_through_its_entry_point() -> None:
    assert engine_class("sentence-transformers") is SentenceTransformersEngine


def test_loading_the_kind_imports_neither_torch_nor_onnxruntime() -> None:
    code = (
        "import sys\n"
        "from modelyard.app import build_app\n"
        "from modelyard.engines.kinds import engine_class\n"
        "build_app(); engine_class('sentence-transformers')\n"
        "heavy = {'torch', 'onnxruntime', 'onnx', 'sentence_transformers'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


async def test_vectors_equal_sentence_transformers(
    engine: SentenceTransformersEngine, expected: dict[str, NDArray[np.float32]]
) -> None:
    got = np.array((await engine.embed(SENTENCES)).vectors)
    assert got.shape == (len(SENTENCES), 384)
    assert np.abs(got - np.array([expected[s] for s in SENTENCES])).max() < 1e-5
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


async def test_paraphrases_are_closer_than_unrelated_sentences(
    engine: SentenceTransformersEngine,
) -> None:
    texts = [s for pair in PARAPHRASES for s in pair]
    vectors = (await engine.embed(texts)).vectors
    pairs = [(vectors[i], vectors[i + 1]) for i in range(0, len(vectors), 2)]
    related = [cosine(a, b) for a, b in pairs]
    unrelated = [
        cosine(pairs[i][0], pairs[j][1])
        for i in range(len(pairs))
        for j in range(len(pairs))
        if i != j
    ]
    assert min(related) > max(unrelated)
    assert min(related) > 0.6 and max(unrelated) < 0.3


async def test_prompt_tokens_are_the_tokenizer_counts(
    engine: SentenceTransformersEngine, reference: SentenceTransformer
) -> None:
    features = reference.preprocess(SENTENCES)
    expected = int(features["attention_mask"].sum())
    assert (await engine.embed(SENTENCES)).prompt_tokens == expected
    assert (await engine.embed([LONG])).prompt_tokens == 256  # truncated as the model reads it


async def test_concurrent_calls_get_their_own_vectors_in_fewer_forward_passes(
    engine: SentenceTransformersEngine, expected: dict[str, NDArray[np.float32]]
) -> None:
    before = engine.forward_passes
    calls = [list(pair) for pair in PARAPHRASES] * 3
    results = await asyncio.gather(*(engine.embed(texts) for texts in calls))
    passes = engine.forward_passes - before
    assert passes < len(calls)
    for texts, result in zip(calls, results, strict=True):
        wanted = np.array([expected[t] for t in texts])
        assert np.abs(np.array(result.vectors) - wanted).max() < 1e-5


async def test_info_reports_the_model(engine: SentenceTransformersEngine) -> None:
    info = engine.info()
    assert info.kind == "sentence-transformers"
    assert info.context_length == 256
    assert info.details["dimensions"] == 384
    assert info.details["backend"] == "onnxruntime"
    assert info.size_bytes is not None and info.size_bytes > 80_000_000


async def test_the_onnx_graph_is_cached_by_the_weights_sha256(
    engine: SentenceTransformersEngine,
) -> None:
    cached = list((engine.settings.home / "cache" / "onnx").iterdir())
    assert len(cached) == 1
    assert cached[0].name.startswith(
        "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
    )


async def test_the_torch_backend_gives_the_same_vectors(
    tmp_path: Path, engine: SentenceTransformersEngine
) -> None:
    torch_engine = start_engine(tmp_path, backend="torch", threads=1)
    await torch_engine.start()
    try:
        by_torch = await torch_engine.embed(SENTENCES)
    finally:
        await torch_engine.aclose()
    by_onnx = await engine.embed(SENTENCES)
    assert np.abs(np.array(by_torch.vectors) - np.array(by_onnx.vectors)).max() < 1e-5
    assert by_torch.prompt_tokens == by_onnx.prompt_tokens


async def test_a_directory_that_is_not_a_sentence_model_fails_to_start(tmp_path: Path) -> None:
    spec = EngineSpec("m", 1, "sentence-transformers", str(tmp_path), {})
    with pytest.raises(UnsupportedModel, match=r"no model\.safetensors"):
        await SentenceTransformersEngine(spec, Settings(home=tmp_path)).start()


async def test_corrupt_weights_fail_to_start(tmp_path: Path) -> None:
    broken = tmp_path / "model"
    shutil.copytree(minilm_dir(), broken, ignore=shutil.ignore_patterns("model.safetensors"))
    (broken / "model.safetensors").write_bytes(b"not safetensors")
    spec = EngineSpec("m", 1, "sentence-transformers", str(broken), {})
    with pytest.raises(UnsupportedModel, match="cannot load"):
        await SentenceTransformersEngine(spec, Settings(home=tmp_path)).start()


def test_an_unknown_backend_is_refused(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="unknown embedding backend 'tpu'"):
        start_engine(tmp_path, backend="tpu")
