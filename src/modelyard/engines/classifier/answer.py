"""A classifier's answer as a chat or text completion: the reply is the most probable
label (or, at a temperature above 0, one drawn from the labels' probabilities), and
``logprobs`` are the labels' log probabilities.

The whole answer is one "token", the label. With ``logprobs`` (chat: ``logprobs: true``
and ``top_logprobs: k``; completions: ``logprobs: k``) it comes as OpenAI dicts
(``Chunk.openai``), shaped as the llama.cpp engine shapes its own: the label's log
probability, and the ``k`` most probable labels with theirs among the alternatives.
Without, it is plain chunks and serving models the answer.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from modelyard.engines.base import Chunk, EngineError, GenerationRequest, Usage


class InvalidClassifierField(EngineError):
    """A 400 naming the field (``messages``, ``logprobs``, ``top_logprobs``)."""

    status = 400
    code = "invalid_request"
    error_type = "invalid_request_error"

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


def text_of(request: GenerationRequest) -> str:
    """What is classified: the prompt, or the last user message (instructions belong in
    the system message, which a classifier does not read)."""
    if request.prompt is not None:
        return request.prompt
    users = [m.content for m in request.messages or () if m.role == "user"]
    if not users or not users[-1].strip():
        raise InvalidClassifierField(
            "A classifier classifies the last user message; this request has no user "
            "message with text.",
            "messages",
        )
    return users[-1]


def top_wanted(request: GenerationRequest, labels: int) -> int | None:
    """How many alternatives the request asks for: None for no logprobs, else 0 to
    ``labels`` (a 400 naming the field otherwise)."""
    fields = request.openai
    if request.messages is None:
        return _count(fields.get("logprobs"), labels, "logprobs")
    wanted, top = fields.get("logprobs"), fields.get("top_logprobs")
    if wanted is not None and not isinstance(wanted, bool):
        raise InvalidClassifierField("'logprobs' must be true or false.", "logprobs")
    if top is not None and not wanted:
        raise InvalidClassifierField("'top_logprobs' needs 'logprobs' set to true.", "top_logprobs")
    if not wanted:
        return None
    return 0 if top is None else _count(top, labels, "top_logprobs")


def _count(value: object, labels: int, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= labels:
        raise InvalidClassifierField(
            f"'{name}' must be an integer from 0 to {labels} (this classifier's labels).", name
        )
    return value


@dataclass(frozen=True)
class Ranked:
    """The labels, most probable first, with their log probabilities."""

    labels: tuple[str, ...]
    logprobs: tuple[float, ...]

    @classmethod
    def of(cls, labels: Sequence[str], probabilities: Sequence[float]) -> Ranked:
        order = sorted(range(len(labels)), key=lambda i: -probabilities[i])
        return cls(
            tuple(labels[i] for i in order),
            tuple(math.log(max(probabilities[i], 1e-45)) for i in order),
        )

    @property
    def label(self) -> str:
        return self.labels[0]


def chosen(ranked: Ranked, request: GenerationRequest) -> int:
    """Which label answers: the most probable one, unless the request sets a temperature
    above 0, which samples one from the labels' probabilities raised to 1/temperature,
    within the ``top_p`` most probable mass, seeded by ``seed``."""
    temperature = request.temperature
    if temperature is None or temperature <= 0:
        return 0
    weights = [math.exp(lp / temperature) for lp in ranked.logprobs]
    total = sum(weights)
    kept, mass = [], 0.0
    for index, weight in enumerate(weights):
        kept.append(index)
        mass += weight / total
        if request.top_p is not None and mass >= request.top_p:
            break
    rng = random.Random(request.seed)
    return rng.choices(kept, weights=[weights[i] for i in kept])[0]


def _cut(label: str, stops: Sequence[str]) -> str:
    cuts = [label.index(stop) for stop in stops if stop and stop in label]
    return label[: min(cuts)] if cuts else label


def answer_chunks(
    request: GenerationRequest, ranked: Ranked, top: int | None, prompt_tokens: int
) -> list[Chunk]:
    """The chunks of the answer (its label cut at a stop string, if one is in it), the
    last with its finish and usage."""
    usage = Usage(prompt_tokens=prompt_tokens, completion_tokens=1)
    pick = chosen(ranked, request)
    label = _cut(ranked.labels[pick], request.stop)
    if top is None:
        return [Chunk(text=label), Chunk(text="", finish_reason="stop", usage=usage)]
    chat = request.messages is not None
    logprobs = _chat_logprobs(ranked, pick, top) if chat else _text_logprobs(ranked, pick, top)
    created = int(time.time())
    if not request.stream:
        whole = _completion(chat, label, logprobs, usage, created)
        return [Chunk(text=label, finish_reason="stop", usage=usage, openai=whole)]
    return [
        Chunk(text=label, openai=_chunk(chat, label, logprobs, None, created)),
        Chunk(text="", openai=_chunk(chat, "", None, "stop", created)),
        Chunk(text="", finish_reason="stop", usage=usage),
    ]


def _chat_logprobs(ranked: Ranked, pick: int, top: int) -> dict[str, Any]:
    def entry(label: str, logprob: float) -> dict[str, Any]:
        return {"token": label, "logprob": logprob, "bytes": list(label.encode("utf-8"))}

    alternatives = [
        entry(lb, lp) for lb, lp in zip(ranked.labels[:top], ranked.logprobs, strict=False)
    ]
    first = entry(ranked.labels[pick], ranked.logprobs[pick])
    return {"content": [{**first, "top_logprobs": alternatives}]}


def _text_logprobs(ranked: Ranked, pick: int, top: int) -> dict[str, Any]:
    return {
        "tokens": [ranked.labels[pick]],
        "token_logprobs": [ranked.logprobs[pick]],
        "top_logprobs": [dict(zip(ranked.labels[:top], ranked.logprobs, strict=False))],
        "text_offset": [0],
    }


def _choice(
    chat: bool, text: str, logprobs: Mapping[str, Any] | None, finish: str | None, whole: bool
) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": 0}
    if not chat:
        choice["text"] = text
    elif whole:
        choice["message"] = {"role": "assistant", "content": text}
    else:
        choice["delta"] = {"role": "assistant", "content": text} if text else {}
    choice.update(logprobs=logprobs, finish_reason=finish)
    return choice


def _completion(
    chat: bool, label: str, logprobs: Mapping[str, Any], usage: Usage, created: int
) -> dict[str, Any]:
    return {
        "id": "",
        "object": "chat.completion" if chat else "text_completion",
        "created": created,
        "model": "",
        "choices": [_choice(chat, label, logprobs, "stop", whole=True)],
        "usage": {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
        },
    }


def _chunk(
    chat: bool, text: str, logprobs: Mapping[str, Any] | None, finish: str | None, created: int
) -> dict[str, Any]:
    return {
        "id": "",
        "object": "chat.completion.chunk" if chat else "text_completion",
        "created": created,
        "model": "",
        "choices": [_choice(chat, text, logprobs, finish, whole=False)],
    }
