"""The ``Engine`` contract every engine kind implements, and the values it exchanges."""

from __future__ import annotations

import abc
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from modelyard.config import Settings

FinishReason = Literal["stop", "length"]


@dataclass(frozen=True)
class Message:
    role: str
    content: str


@dataclass(frozen=True)
class GenerationRequest:
    """What to generate. Exactly one of ``messages`` (chat) or ``prompt`` (completion) is set."""

    messages: Sequence[Message] | None = None
    prompt: str | None = None
    max_tokens: int | None = None
    # None: the version's default (its parameters), else OpenAI's default of 1.0.
    temperature: float | None = None
    top_p: float | None = None
    stop: Sequence[str] = ()
    seed: int | None = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    # Whether the caller streams the answer. An engine may produce a non-streamed answer
    # as one chunk (an upstream server is asked for it non-streamed, as the client asked).
    stream: bool = True

    def __post_init__(self) -> None:
        if (self.messages is None) == (self.prompt is None):
            raise ValueError("a GenerationRequest needs exactly one of messages or prompt")


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Chunk:
    """A piece of generated text; the last chunk carries ``finish_reason`` and ``usage``."""

    text: str
    finish_reason: FinishReason | None = None
    usage: Usage | None = None


@dataclass(frozen=True)
class Embeddings:
    """One vector per input text, in input order, and the tokens the inputs used."""

    vectors: list[list[float]]
    prompt_tokens: int


@dataclass(frozen=True)
class EngineInfo:
    kind: str
    context_length: int | None = None
    chat_template: str | None = None
    size_bytes: int | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EngineSpec:
    """The registry's description of a version, as an engine needs it to start."""

    model: str
    version: int
    kind: str
    artifact_uri: str
    parameters: dict[str, Any] = field(default_factory=dict)


class EngineError(Exception):
    """The engine could not serve the request. ``status`` and ``code`` map it to HTTP."""

    status: int = 500
    code: str = "engine_error"
    error_type: str = "server_error"
    retry_after_s: int | None = None  # sent as Retry-After when set

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        error_type: str | None = None,
    ) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        if error_type is not None:
            self.error_type = error_type


class EngineNotReady(EngineError):
    status = 503
    code = "engine_not_ready"


class ContextLengthExceeded(EngineError):
    """The prompt plus ``max_tokens`` does not fit the model's context window."""

    status = 400
    code = "context_length_exceeded"
    error_type = "invalid_request_error"


class UnsupportedOperation(EngineError):
    status = 400
    code = "unsupported_operation"
    error_type = "invalid_request_error"


class Engine(abc.ABC):
    """A way to run a model version. Subclasses set ``kind`` and implement ``generate``."""

    kind: ClassVar[str]

    def __init__(self, spec: EngineSpec, settings: Settings) -> None:
        self.spec = spec
        self.settings = settings

    async def start(self) -> None:  # noqa: B027  (optional hook)
        """Load weights or open connections; called once before any request."""

    async def aclose(self) -> None:  # noqa: B027  (optional hook)
        """Release what ``start`` acquired."""

    @abc.abstractmethod
    def info(self) -> EngineInfo:
        """Context length, chat template, size: what the engine knows about its model."""

    def generate(self, request: GenerationRequest) -> AsyncGenerator[Chunk, None]:
        """Stream the generation. Closing the iterator early cancels it and frees the engine."""
        raise UnsupportedOperation(f"engine kind '{self.kind}' does not generate text")

    async def embed(self, texts: Sequence[str]) -> Embeddings:
        """Embed ``texts`` (an engine of an ``embedding`` model implements this)."""
        raise UnsupportedOperation(f"engine kind '{self.kind}' does not embed")

    async def classify(self, texts: Sequence[str]) -> list[dict[str, float]]:
        raise UnsupportedOperation(f"engine kind '{self.kind}' does not classify")
