"""The ``Engine`` contract every engine kind implements, and the values it exchanges."""

from __future__ import annotations

import abc
import logging
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import ValidationError

from modelyard import config
from modelyard.engines.capabilities import Capabilities, Need
from modelyard.engines.parameters import EngineParameters, explain
from modelyard.errors import ModelyardError

log = logging.getLogger(__name__)

FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "function_call"]
P = TypeVar("P", bound=EngineParameters)
NOTHING: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True)
class Message:
    """A chat message: its role and its text (the text parts joined)."""

    role: str
    content: str
    # The message as the client sent it, when it holds more than a role and a text
    # (content parts such as images, assistant ``tool_calls``, a tool result's
    # ``tool_call_id``, a ``name``), with its texts as forwarded (redacted): what an engine
    # that forwards OpenAI requests sends. None for a plain message.
    openai: Mapping[str, Any] | None = None


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
    # OpenAI's ``response_format`` as the client sent it (``{"type": "json_schema", ...}``
    # or ``{"type": "json_object"}``); only engines declaring ``structured_output`` get it.
    response_format: Mapping[str, Any] | None = None
    # The request's other OpenAI fields as the client sent them (``tools``, ``tool_choice``,
    # ``logprobs``, ``n``, ``logit_bias``, extra sampling fields such as ``top_k``, ...):
    # an engine that forwards OpenAI requests sends them on; ``needs`` says which of them
    # a kind must honour, and routing sends the request only to kinds that do.
    openai: Mapping[str, Any] = field(default_factory=lambda: NOTHING)
    needs: tuple[Need, ...] = ()
    # The W3C trace context of this engine call (``traceparent``, ``tracestate``) when
    # tracing is on: a ``remote`` engine sends it as HTTP headers, so the server's own
    # spans join the request's trace. None when tracing is off.
    trace_context: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        if (self.messages is None) == (self.prompt is None):
            raise ValueError("a GenerationRequest needs exactly one of messages or prompt")


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    # The usage as an OpenAI-compatible engine reported it (with ``prompt_tokens_details``,
    # ``completion_tokens_details``, ...), relayed as is.
    openai: Mapping[str, Any] | None = field(default=None, compare=False)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Chunk:
    """A piece of generated text; the last chunk carries ``finish_reason`` and ``usage``."""

    text: str
    finish_reason: FinishReason | None = None
    usage: Usage | None = None
    # The OpenAI chunk (streamed) or completion (whole) as an engine that relays an
    # OpenAI-compatible server received it; serving sends it on with its own ``id`` and
    # ``model``. ``text`` is then choice 0's text. A relaying engine's last chunk (the
    # finish and usage) has none: it was relayed with the chunks before it.
    openai: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Embeddings:
    """One vector per input text, in input order, and the tokens the inputs used."""

    vectors: list[list[float]]
    prompt_tokens: int


@dataclass(frozen=True)
class EngineInfo:
    """What an engine knows about its model. A kind adds typed facts of its own in a
    subclass; ``details`` shows them by name, as ``GET /api/engines`` does."""

    kind: str
    context_length: int | None = None
    chat_template: str | None = None
    size_bytes: int | None = None

    @property
    def details(self) -> dict[str, Any]:
        """The subclass's own facts that are known (not None)."""
        common = {f.name for f in fields(EngineInfo)}
        own = (f.name for f in fields(self) if f.name not in common)
        return {name: value for name in own if (value := getattr(self, name)) is not None}

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "context_length": self.context_length,
            "chat_template": self.chat_template,
            "size_bytes": self.size_bytes,
            "details": self.details,
        }


@dataclass(frozen=True)
class EngineSpec:
    """The registry's description of a version, as an engine needs it to start."""

    model: str
    version: int
    kind: str
    artifact_uri: str
    parameters: dict[str, Any] = field(default_factory=dict)


class EngineError(ModelyardError):
    """The engine could not serve the request. ``status`` and ``code`` map it to HTTP."""

    status = 500
    code = "engine_error"
    error_type = "server_error"
    retry_after_s: int | None = None  # sent as Retry-After when set

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        error_type: str | None = None,
    ) -> None:
        super().__init__(message, status=status, code=code, error_type=error_type)
        if self.retry_after_s is not None:
            self.headers = {"retry-after": str(self.retry_after_s)}


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


class InvalidParameters(EngineError):
    """A version's parameters are not what its kind accepts."""

    status = 400
    code = "invalid_parameters"
    error_type = "invalid_request_error"


class Engine(abc.ABC):
    """A way to run a model version. Subclasses set ``kind``, declare ``capabilities``,
    ``Parameters`` and ``Settings``, and implement ``info`` and ``generate`` or ``embed``."""

    kind: ClassVar[str]
    capabilities: ClassVar[Capabilities] = Capabilities()
    # Request fields beyond the ones modelyard models that the kind honours (``top_k``).
    extra_fields: ClassVar[frozenset[str]] = frozenset()
    # What a version of this kind may set in its parameters; checked when it is registered.
    Parameters: ClassVar[type[EngineParameters]] = EngineParameters
    # The kind's settings (MODELYARD_<KIND>_*): defaults of every version of the kind.
    Settings: ClassVar[type[config.EngineSettings]] = config.EngineSettings
    # Its model runs in another process, reached over HTTP (the request's trace context
    # goes with each call): tracing shows the call as a client span with its HTTP request.
    remote: ClassVar[bool] = False

    def __init__(self, spec: EngineSpec, settings: config.Settings) -> None:
        self.spec = spec
        self.settings = settings

    @classmethod
    def unable(
        cls, needs: Sequence[Need], parameters: Mapping[str, Any]
    ) -> tuple[Need, str] | None:
        """The first of a request's ``needs`` this kind (a version of it with
        ``parameters``) cannot honour, with why; None when it honours them all. A
        capability counts as declared; an extra field counts when the kind takes it
        (``extra_fields``)."""
        for need in needs:
            if need.capability is None:
                if need.field not in cls.extra_fields:
                    return need, f"engine kind '{cls.kind}' does not take the field"
            elif not getattr(cls.capabilities, need.capability):
                return need, f"engine kind '{cls.kind}' does not support {need.capability}"
        return None

    @classmethod
    def check_parameters(cls, parameters: Mapping[str, Any]) -> None:
        """Refuse parameters this kind does not accept: an unknown name or a wrong type
        (strictly: no string for a number). Registering a version calls it."""
        try:
            cls.Parameters.model_validate(dict(parameters), strict=True)
        except ValidationError as error:
            raise InvalidParameters(explain(error, cls.kind, cls.Parameters)) from None

    def read_parameters(self, model: type[P]) -> P:
        """This version's parameters as ``model`` (the kind's ``Parameters``). Laxer than
        the check, for versions registered before parameters were checked: an unknown name
        is dropped with a warning, a number given as a string is converted."""
        given = self.spec.parameters
        unknown = sorted(set(given) - set(model.model_fields))
        if unknown:
            log.warning(
                "%s version %s: ignoring parameters %s, unknown to engine kind '%s'",
                self.spec.model,
                self.spec.version,
                ", ".join(unknown),
                self.kind,
            )
        try:
            return model.model_validate({k: v for k, v in given.items() if k not in unknown})
        except ValidationError as error:
            raise InvalidParameters(explain(error, self.kind, model)) from None

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
        """Embed ``texts`` (an engine of an ``embedding`` model implements this), one
        vector per text in order, with the tokens the texts used."""
        raise UnsupportedOperation(f"engine kind '{self.kind}' does not embed")

    async def classify(self, texts: Sequence[str]) -> list[dict[str, float]]:
        raise UnsupportedOperation(f"engine kind '{self.kind}' does not classify")
