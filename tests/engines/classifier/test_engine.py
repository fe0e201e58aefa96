"""The ``classifier`` kind: its artifact (no pickle) against scikit-learn's own
probabilities, the answer as chat and text completions with and without logprobs, what it
refuses, and an encoder that is not the one the head was trained on."""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from modelyard.bootstrap import minilm_dir
from modelyard.config import Settings
from modelyard.engines import Chunk, EngineError, EngineSpec, GenerationRequest, Message, Need
from modelyard.engines.classifier import ClassifierEngine
from modelyard.engines.classifier.artifact import (
    MANIFEST,
    ClassifierArtifact,
    InvalidArtifact,
    LinearHead,
    encoder_ref,
    read_artifact,
    write_artifact,
)
from modelyard.engines.embedding.model_dir import read_model_dir
from modelyard.engines.embedding.onnx_backend import OnnxBackend
from modelyard.engines.kinds import engine_class

pytestmark = pytest.mark.anyio

TRAINING = {
    "weather": ["Will it rain tomorrow?", "How hot is it outside?", "Is a storm coming tonight?"],
    "banking": ["What is my account balance?", "Transfer money to savings", "My card was declined"],
    "sports": [
        "Who won the football match?",
        "When does the tennis final start?",
        "Score of the game",
    ],
}
LABELS = sorted(TRAINING)


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


def head_of(model: LogisticRegression) -> LinearHead:
    """The exported head, as distillation exports it (training.fit_head's conversion)."""
    weight, bias = model.coef_.astype(np.float32), model.intercept_.astype(np.float32)
    if len(model.classes_) == 2:
        weight, bias = np.vstack([-weight / 2, weight / 2]), np.concatenate([-bias / 2, bias / 2])
    return LinearHead(tuple(model.classes_), weight, bias)


@pytest.mark.parametrize("classes", [2, 4])
def test_the_exported_head_gives_scikit_learns_probabilities(classes: int, tmp_path: Path) -> None:
    rng = np.random.default_rng(classes)
    vectors = rng.normal(size=(200, 16)).astype(np.float32)
    labels = np.array([f"c{i % classes}" for i in range(200)])
    vectors[:, 0] += np.arange(200) % classes  # something to learn
    model = LogisticRegression(C=3.0, max_iter=500).fit(vectors, labels)
    encoder = encoder_ref(minilm_dir())
    write_artifact(tmp_path / "student", ClassifierArtifact(head_of(model), encoder, {"k": 1}))
    read = read_artifact(tmp_path / "student")
    assert read.head.labels == tuple(model.classes_) and read.lineage == {"k": 1}
    ours = read.head.probabilities(vectors)
    assert np.allclose(ours, model.predict_proba(vectors), atol=1e-5)
    assert sorted(p.name for p in (tmp_path / "student").iterdir()) == [
        "classifier.json",
        "head.safetensors",
    ]
    with pytest.raises(InvalidArtifact, match="exists"):
        write_artifact(tmp_path / "student", read)


def test_a_broken_artifact_is_refused_with_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(InvalidArtifact, match="cannot read"):
        read_artifact(tmp_path)
    head = LinearHead(("a", "b"), np.zeros((2, 3), np.float32), np.zeros(2, np.float32))
    write_artifact(tmp_path / "s", ClassifierArtifact(head, encoder_ref(minilm_dir())))
    manifest = json.loads((tmp_path / "s" / MANIFEST).read_text())
    (tmp_path / "s" / MANIFEST).write_text(json.dumps({**manifest, "dimensions": 4}))
    with pytest.raises(InvalidArtifact, match="3 dimensions"):
        read_artifact(tmp_path / "s")
    with pytest.raises(InvalidArtifact, match="rows"):
        LinearHead(("a", "b", "c"), np.zeros((2, 3), np.float32), np.zeros(2, np.float32))


def trained_student(directory: Path, cache: Path) -> Path:
    """A head trained on MiniLM's vectors of a few texts, written as an artifact."""
    backend = OnnxBackend(read_model_dir(minilm_dir()), cache, 1)
    texts = [t for label in LABELS for t in TRAINING[label]]
    labels = [label for label in LABELS for _ in TRAINING[label]]
    vectors = np.asarray(backend.encode(texts).vectors, dtype=np.float32)
    model = LogisticRegression(C=100.0, max_iter=1000).fit(vectors, labels)
    artifact = ClassifierArtifact(head_of(model), encoder_ref(minilm_dir(), "emb@1"), {})
    write_artifact(directory, artifact)
    return directory


@pytest.fixture(scope="module")
async def engine(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ClassifierEngine]:
    home = tmp_path_factory.mktemp("home")
    student = trained_student(home / "student", home / "cache" / "onnx")
    spec = EngineSpec("intents", 2, "classifier", str(student), {"threads": 1})
    started = ClassifierEngine(spec, Settings(home=home))
    await started.start()
    yield started
    await started.aclose()


def chat(text: str, **openai: Any) -> GenerationRequest:
    stream = openai.pop("stream", False)
    return GenerationRequest(
        messages=[Message("system", "Classify."), Message("user", text)],
        stream=stream,
        openai=openai,
    )


async def chunks(engine: ClassifierEngine, request: GenerationRequest) -> list[Chunk]:
    return [chunk async for chunk in engine.generate(request)]


def test_the_kind_loads_through_its_entry_point_and_declares_what_it_does() -> None:
    assert engine_class("classifier") is ClassifierEngine
    names = ClassifierEngine.capabilities.names()
    assert names == ["chat", "completion", "streaming", "classification", "logprobs", "seed"]
    for need in (Need("tools", "tools"), Need("response_format", "structured_output")):
        assert ClassifierEngine.unable([need], {}) is not None
    assert ClassifierEngine.unable([Need("n", "multiple_choices")], {}) is not None
    assert ClassifierEngine.unable([Need("top_k")], {}) is not None
    assert ClassifierEngine.unable([Need("logprobs", "logprobs")], {}) is None
    with pytest.raises(EngineError, match="unknown parameter 'thread'"):
        ClassifierEngine.check_parameters({"thread": 1})


async def test_the_reply_is_the_label_of_the_last_user_message(engine: ClassifierEngine) -> None:
    out = await chunks(engine, chat("Is it going to snow this weekend?"))
    assert "".join(c.text for c in out) == "weather"
    assert out[-1].finish_reason == "stop" and out[-1].usage is not None
    assert out[-1].usage.prompt_tokens > 3 and out[-1].usage.completion_tokens == 1
    assert all(c.openai is None for c in out)  # plain: serving models the answer
    completion = GenerationRequest(prompt="Pay my credit card bill")
    assert "".join(c.text for c in await chunks(engine, completion)) == "banking"
    info = engine.info()
    assert info.labels == LABELS and info.dimensions == 384 and info.encoder == "emb@1"


async def test_logprobs_are_the_labels_probabilities(engine: ClassifierEngine) -> None:
    (whole,) = await chunks(
        engine, chat("Basketball scores tonight", logprobs=True, top_logprobs=3)
    )
    assert whole.text == "sports" and whole.openai is not None
    choice = whole.openai["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "sports"}
    (entry,) = choice["logprobs"]["content"]
    assert entry["token"] == "sports" and entry["bytes"] == list(b"sports")
    top = entry["top_logprobs"]
    assert top[0]["token"] == "sports" and len(top) == 3
    assert math.isclose(sum(math.exp(t["logprob"]) for t in top), 1.0, abs_tol=1e-4)
    assert top[0]["logprob"] == entry["logprob"]
    probabilities = (await engine.classify(["Basketball scores tonight"]))[0]
    assert math.isclose(math.exp(entry["logprob"]), probabilities["sports"], rel_tol=1e-5)
    (none,) = await chunks(engine, chat("Basketball scores tonight", logprobs=True))
    assert none.openai is not None
    assert none.openai["choices"][0]["logprobs"]["content"][0]["top_logprobs"] == []


async def test_streamed_and_text_logprobs_are_shaped_as_openai_does(
    engine: ClassifierEngine,
) -> None:
    streamed = await chunks(engine, chat("rain?", logprobs=True, top_logprobs=1, stream=True))
    first, end, last = streamed
    assert first.openai is not None and first.openai["object"] == "chat.completion.chunk"
    assert first.openai["choices"][0]["delta"] == {"role": "assistant", "content": "weather"}
    assert end.openai is not None and end.openai["choices"][0]["finish_reason"] == "stop"
    assert last.openai is None and last.usage is not None
    text = GenerationRequest(prompt="wire transfer fee", stream=False, openai={"logprobs": 2})
    (whole,) = await chunks(engine, text)
    assert whole.openai is not None and whole.openai["object"] == "text_completion"
    logprobs = whole.openai["choices"][0]["logprobs"]
    assert logprobs["tokens"] == ["banking"] and len(logprobs["top_logprobs"][0]) == 2


async def test_a_temperature_draws_a_label_and_a_stop_cuts_it(engine: ClassifierEngine) -> None:
    def hot(seed: int, **fields: Any) -> GenerationRequest:
        return GenerationRequest(
            messages=[Message("user", "rain?")], temperature=50.0, seed=seed, **fields
        )

    drawn = ["".join(c.text for c in await chunks(engine, hot(seed))) for seed in range(30)]
    assert set(drawn) == set(LABELS)  # nearly uniform at a temperature of 50
    again = ["".join(c.text for c in await chunks(engine, hot(seed))) for seed in range(30)]
    assert again == drawn  # a seed draws the same label
    nucleus = [await chunks(engine, hot(seed, top_p=0.01)) for seed in range(5)]
    assert {"".join(c.text for c in out) for out in nucleus} == {"weather"}
    cold = GenerationRequest(messages=[Message("user", "rain?")], temperature=0.0, stop=("ath",))
    assert "".join(c.text for c in await chunks(engine, cold)) == "we"


@pytest.mark.parametrize(
    ("request_", "param"),
    [
        (chat("x", top_logprobs=2), "top_logprobs"),
        (chat("x", logprobs=True, top_logprobs=4), "top_logprobs"),
        (chat("x", logprobs="yes"), "logprobs"),
        (GenerationRequest(messages=[Message("system", "only this")]), "messages"),
        (GenerationRequest(prompt="x", openai={"logprobs": True}), "logprobs"),
    ],
)
async def test_fields_it_cannot_honour_are_400s_naming_them(
    engine: ClassifierEngine, request_: GenerationRequest, param: str
) -> None:
    with pytest.raises(EngineError) as refused:
        await chunks(engine, request_)
    assert refused.value.status == 400 and refused.value.param == param


async def test_an_encoder_other_than_the_trained_one_is_refused(tmp_path: Path) -> None:
    head = LinearHead(("a", "b"), np.zeros((2, 384), np.float32), np.zeros(2, np.float32))
    wrong = encoder_ref(minilm_dir()).model_copy(update={"weights_sha256": "0" * 64})
    write_artifact(tmp_path / "s", ClassifierArtifact(head, wrong))
    spec = EngineSpec("intents", 1, "classifier", str(tmp_path / "s"), {})
    engine = ClassifierEngine(spec, Settings(home=tmp_path))
    with pytest.raises(InvalidArtifact, match="not the one the head was trained on"):
        await engine.start()
