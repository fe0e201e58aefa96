"""One llama.cpp context generating one sequence at a time, driven from a worker thread."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import llama_cpp

from modelyard.engines.base import Chunk, FinishReason, GenerationRequest, Usage
from modelyard.engines.llamacpp.text import StopScanner

Emit = Callable[[Chunk | BaseException], None]


@dataclass(frozen=True)
class Sampling:
    """Sampling settings of one request, after the version's defaults were applied."""

    temperature: float
    top_p: float
    top_k: int
    min_p: float
    repeat_penalty: float
    presence_penalty: float
    frequency_penalty: float
    seed: int

    @classmethod
    def of(cls, request: GenerationRequest, defaults: Mapping[str, Any]) -> Sampling:
        def pick(value: float | None, name: str, fallback: float) -> float:
            return float(value if value is not None else defaults.get(name, fallback))

        return cls(
            temperature=pick(request.temperature, "temperature", 1.0),
            top_p=pick(request.top_p, "top_p", 1.0),
            top_k=int(defaults.get("top_k", 40)),
            min_p=float(defaults.get("min_p", 0.05)),
            repeat_penalty=float(defaults.get("repeat_penalty", 1.0)),
            presence_penalty=request.presence_penalty,
            frequency_penalty=request.frequency_penalty,
            seed=request.seed if request.seed is not None else random.getrandbits(31),
        )


@dataclass(frozen=True)
class Job:
    """One generation handed to a slot's worker thread."""

    prompt: list[int]
    max_tokens: int
    stops: list[str]
    sampling: Sampling
    cancel: threading.Event
    emit: Emit


class Slot:
    """A ``Llama`` context. Not thread-safe: the engine lends it to one request at a time."""

    def __init__(self, llama: Any) -> None:
        self.llama = llama
        self._vocab = llama._model.vocab

    def is_end_of_generation(self, token: int) -> bool:
        return bool(llama_cpp.llama_vocab_is_eog(self._vocab, token))

    def run(self, job: Job) -> None:
        """Generate until end of generation, a stop string, ``max_tokens`` or cancellation."""
        try:
            self._generate(job)
        except (RuntimeError, ValueError, OSError) as error:
            job.emit(error)

    def _generate(self, job: Job) -> None:
        sampling = job.sampling
        self.llama.set_seed(sampling.seed)
        scanner = StopScanner(job.stops)
        produced = 0
        finish: FinishReason = "length"
        tokens = self.llama.generate(
            job.prompt,
            temp=sampling.temperature,
            top_p=sampling.top_p,
            top_k=sampling.top_k,
            min_p=sampling.min_p,
            repeat_penalty=sampling.repeat_penalty,
            presence_penalty=sampling.presence_penalty,
            frequency_penalty=sampling.frequency_penalty,
        )
        try:
            for token in tokens:
                if job.cancel.is_set():
                    return
                if self.is_end_of_generation(token):
                    finish = "stop"
                    break
                produced += 1
                text = scanner.push(self.llama.detokenize([token]))
                if text:
                    job.emit(Chunk(text=text))
                if scanner.stopped:
                    finish = "stop"
                    break
                if produced >= job.max_tokens:
                    break
        finally:
            tokens.close()
        usage = Usage(prompt_tokens=len(job.prompt), completion_tokens=produced)
        job.emit(Chunk(text=scanner.flush(), finish_reason=finish, usage=usage))
