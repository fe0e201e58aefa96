"""OpenAI wire types (the subset modelyard serves), validated with pydantic."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    field_validator,
)

# Re-exported: OpenAI's error body lives beside the error type every package raises.
from modelyard.errors import ErrorBody as ErrorBody
from modelyard.errors import ErrorDetail as ErrorDetail
from modelyard.wire import JSON_INTEGER, Integer

MAX_STOP_SEQUENCES = 4
MAX_CHOICES = 128


# Request fields beyond the ones modelled here (``tools``, ``response_format``, ``logprobs``,
# ``top_k``, ...) are kept as sent (``model_extra``): forwarded to engines that honour them,
# refused with a 400 naming them by the others, never dropped (``serving.generation``).
class TextPart(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: Literal["text"]
    text: str


class MediaPart(BaseModel):
    """An image or audio part, forwarded as sent to engines that take it."""

    model_config = ConfigDict(extra="allow")

    type: Literal["image_url", "input_audio"]


class FunctionCall(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    arguments: str  # JSON, as the model wrote it


class ToolCall(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[TextPart | MediaPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None  # an assistant's calls
    tool_call_id: str | None = None  # a tool result's call

    def text(self) -> str:
        """The message's text: its content, or its text parts joined."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content if isinstance(part, TextPart))


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
        default=1,
        ge=1,
        le=MAX_CHOICES,
        description="Choices to generate; more than 1 where the engine supports it.",
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
