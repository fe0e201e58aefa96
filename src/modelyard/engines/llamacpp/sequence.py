"""One request inside the scheduler: its tokens, position, sampler and output."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from modelyard.engines.base import Chunk, FinishReason, Usage
from modelyard.engines.llamacpp.choices import Choices
from modelyard.engines.llamacpp.logprobs import TokenLogprob
from modelyard.engines.llamacpp.sampling import Sampling
from modelyard.engines.llamacpp.text import StopScanner

Emit = Callable[[Chunk | BaseException], None]


@dataclass
class Job:
    """What the event loop hands the scheduler: a tokenised prompt and where output goes."""

    prompt: list[int]
    max_tokens: int
    stops: list[str]
    sampling: Sampling
    emit: Emit
    grammar: str | None = None  # GBNF the reply must match (response_format)
    cancel: threading.Event = field(default_factory=threading.Event)
    # OpenAI-shaped output (logprobs, n > 1 choices); None: plain chunks, nothing computed.
    choices: Choices | None = None

    @property
    def n(self) -> int:
        """Sequences the job takes: one per choice, all sharing the prompt's prefill."""
        return 1 if self.choices is None else self.choices.n

    @property
    def top_logprobs(self) -> int | None:
        """None: no logprobs; else the alternatives reported per token."""
        return None if self.choices is None else self.choices.top_logprobs


@dataclass
class Sequence:
    """A job admitted to the batch, owning llama.cpp sequence id ``seq_id``."""

    job: Job
    seq_id: int
    sampler: Any
    scanner: StopScanner
    grammar: Any = None  # llama.cpp grammar sampler of a constrained reply, freed with it
    prefilled: int = 0  # prompt tokens already in the KV cache (reused ones included)
    last_token: int = -1
    produced: int = 0
    generated: list[int] = field(default_factory=list)
    batch_index: int = -1  # row of this step's batch whose logits it samples from
    index: int = 0  # the choice it generates
    # Choices 1.. of the job, their ids reserved: they join once this one read the prompt.
    followers: list[Sequence] = field(default_factory=list)

    @property
    def position(self) -> int:
        """Position of the next token fed to the model."""
        return len(self.job.prompt) + self.produced - 1

    @property
    def decoding(self) -> bool:
        return self.prefilled == len(self.job.prompt)

    def accept(
        self, token: int, piece: bytes | None, logprob: TokenLogprob | None = None
    ) -> FinishReason | None:
        """Take a sampled token (``piece`` None: end of generation) and its logprob when
        asked; say if it finished."""
        if piece is None:
            return "stop"
        self.produced += 1
        self.last_token = token
        self.generated.append(token)
        text = self.scanner.push(piece)
        if self.job.choices is not None:
            self.job.choices.token(self.index, text, logprob)
        elif text:
            self.job.emit(Chunk(text=text))
        if self.scanner.stopped:
            return "stop"
        if self.produced >= self.job.max_tokens:
            return "length"
        return None

    def tokens_in_cache(self) -> list[int]:
        """What this sequence's KV stream holds: its prompt read so far, and every generated
        token but the last (sampled, never fed back)."""
        if not self.decoding:
            return self.job.prompt[: self.prefilled]
        return self.job.prompt + self.generated[:-1]

    def final_chunk(self, finish: FinishReason) -> Chunk:
        usage = Usage(prompt_tokens=len(self.job.prompt), completion_tokens=self.produced)
        return Chunk(text=self.scanner.flush(), finish_reason=finish, usage=usage)

    def finish(self, reason: FinishReason) -> None:
        """Tell the caller this sequence ended (a choice of a job with several: the job
        ends with its last)."""
        choices = self.job.choices
        if choices is None:
            self.job.emit(self.final_chunk(reason))
        else:
            choices.finish(self.index, self.scanner.flush(), reason, self.produced)
