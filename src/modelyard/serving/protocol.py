"""OpenAI wire types (the subset modelyard serves), validated with pydantic."""

from __future__ import annotations

from types import MappingProxyType
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    field_validator,
    model_validator,
)

# Re-exported: OpenAI's error body lives beside the error type every package raises.
from modelyard.errors import ErrorBody as ErrorBody
from modelyard.errors import ErrorDetail as ErrorDetail
from modelyard.wire import JSON_INTEGER, Integer

# Request fields that change what OpenAI would return; refused rather than silently ignored.
UNSUPPORTED_FIELDS = MappingProxyType(
    {
        "tools": "tool calling",
        "tool_choice": "tool calling",
        "functions": "function calling",
        "function_call": "function calling",
        "response_format": "structured output (response_format)",
        "logprobs": "logprobs",
        "top_logprobs": "logprobs",
        "logit_bias": "logit_bias",
        "best_of": "best_of",
        "echo": "echo",
        "suffix": "suffix",
    }
)
MAX_STOP_SEQUENCES = 4


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart] | None = None
    name: str | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class StreamOptions(BaseModel):
    include_usage: StrictBool = False


class _SamplingRequest(BaseModel):
    """Fields shared by chat and text completions."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    max_tokens: Annotated[int, Field(ge=1), JSON_INTEGER] | None = None
    temperature: StrictFloat | None = Field(default=None, ge=0.0, le=2.0)
    top_p: StrictFloat | None = Field(default=None, gt=0.0, le=1.0)
    n: Integer = Field(
        default=1, ge=1, description="Only 1 is supported.", json_schema_extra={"maximum": 1}
    )
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    stop: str | list[str] | None = None
    seed: Integer | None = None
    presence_penalty: StrictFloat = Field(default=0.0, ge=-2.0, le=2.0)
    frequency_penalty: StrictFloat = Field(default=0.0, ge=-2.0, le=2.0)
    user: str | None = None

    @field_validator("stop")
    @classmethod
    def _few_stops(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and len(value) > MAX_STOP_SEQUENCES:
            raise ValueError(f"at most {MAX_STOP_SEQUENCES} stop sequences are allowed")
        return value

    @field_validator("n")
    @classmethod
    def _single_choice(cls, value: int) -> int:
        if value != 1:
            raise ValueError("only n=1 is supported; send separate requests for more choices")
        return value

    @model_validator(mode="after")
    def _refuse_unsupported(self) -> _SamplingRequest:
        for name, value in (self.model_extra or {}).items():
            if name in UNSUPPORTED_FIELDS and value not in (None, False, [], {}):
                raise ValueError(f"{UNSUPPORTED_FIELDS[name]} is not supported yet ('{name}')")
        return self

    def stop_list(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)

    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class ChatCompletionRequest(_SamplingRequest):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: Annotated[int, Field(ge=1), JSON_INTEGER] | None = None

    def token_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


class CompletionRequest(_SamplingRequest):
    prompt: str = Field(min_length=1)
    max_tokens: Annotated[int, Field(ge=1), JSON_INTEGER] | None = 16

    def token_limit(self) -> int | None:
        return self.max_tokens


class UsageOut(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: str | None
    logprobs: None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: UsageOut
    system_fingerprint: str | None = None


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChatChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    finish_reason: str | None = None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChatChunkChoice]
    usage: UsageOut | None = None
    system_fingerprint: str | None = None


class TextChoice(BaseModel):
    index: int = 0
    text: str
    finish_reason: str | None = None
    logprobs: None = None


class Completion(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[TextChoice]
    usage: UsageOut | None = None
    system_fingerprint: str | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "modelyard"
    task: str
    version: int
    alias: str | None


class ModelCardList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


MAX_EMBEDDING_INPUTS = 2048
NonEmptyText = Annotated[str, Field(min_length=1)]


def _text_input(value: object) -> str | list[str]:
    """``input`` as OpenAI takes it, less token-id arrays: a string or a list of strings,
    none of them empty."""
    if isinstance(value, str):
        if not value:
            raise ValueError("the string is empty; send text to embed")
        return value
    if not isinstance(value, list):
        raise ValueError("expected a string or a list of strings")
    if not value:
        raise ValueError("the list is empty; send at least one string")
    if any(isinstance(item, int | list) and not isinstance(item, bool) for item in value):
        raise ValueError(
            "token-id arrays are not supported; send the text (a string or a list of strings)"
        )
    if len(value) > MAX_EMBEDDING_INPUTS:
        raise ValueError(
            f"the list has {len(value)} items; at most {MAX_EMBEDDING_INPUTS} are allowed"
        )
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise ValueError(f"item {index} is not a string")
        if not item:
            raise ValueError(f"item {index} is an empty string; send text to embed")
    return value


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1)
    input: (
        NonEmptyText
        | Annotated[list[NonEmptyText], Field(min_length=1, max_length=MAX_EMBEDDING_INPUTS)]
    )
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: Annotated[int, Field(ge=1), JSON_INTEGER] | None = None
    user: str | None = None

    @field_validator("input", mode="before")
    @classmethod
    def _texts_only(cls, value: object) -> str | list[str]:
        return _text_input(value)

    def texts(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else list(self.input)


class Embedding(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    # A list of floats, or with encoding_format=base64 their little-endian float32 bytes.
    embedding: list[float] | str


class EmbeddingUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage
