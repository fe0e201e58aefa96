"""OpenAI wire types (the subset modelyard serves), validated with pydantic."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictFloat,
    Tag,
    TypeAdapter,
    ValidationError,
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
    """An image, audio or file part, forwarded as sent to engines that take it."""

    model_config = ConfigDict(extra="allow")

    type: Literal["image_url", "input_audio", "file"]


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
    # Other options (vLLM's ``continuous_usage_stats``, ...) are kept as sent: forwarded to
    # engines that take them, refused by the others, as other extra fields are.
    model_config = ConfigDict(extra="allow")

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


# OpenAI's Responses API (``POST /v1/responses``), stateless: served as a chat completion
# (``serving.responses``). The request's fields beyond the modelled ones are kept as sent
# and refused with a 400 naming them (the document says none is taken), never dropped.
class InputTextPart(BaseModel):
    """A text part of an input message (``output_text``: an earlier answer sent back)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["input_text", "output_text"]
    text: str
    annotations: list[dict[str, object]] | None = None  # an earlier answer's, ignored
    logprobs: list[dict[str, object]] | None = None  # an earlier answer's, ignored


class InputMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["message"] = "message"
    role: Literal["user", "system", "developer", "assistant"]
    content: str | list[InputTextPart]
    id: str | None = None  # an earlier answer's item id, ignored
    status: Literal["in_progress", "completed", "incomplete"] | None = None


class InputFunctionCall(BaseModel):
    """A function call the model made earlier, sent back with its output."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["function_call"]
    call_id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    arguments: str
    id: str | None = None
    status: Literal["in_progress", "completed", "incomplete"] | None = None


class InputFunctionCallOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["function_call_output"]
    call_id: str = Field(min_length=1)
    output: str
    id: str | None = None
    status: Literal["in_progress", "completed", "incomplete"] | None = None


def _item_type(value: object) -> str:
    """An input item's ``type``; a message may leave it out."""
    kind = value.get("type", "message") if isinstance(value, dict) else getattr(value, "type", "")
    return str(kind)


InputItem = Annotated[
    Annotated[InputMessage, Tag("message")]
    | Annotated[InputFunctionCall, Tag("function_call")]
    | Annotated[InputFunctionCallOutput, Tag("function_call_output")],
    Discriminator(_item_type),
]


_INPUT_ITEMS: TypeAdapter[list[InputItem]] = TypeAdapter(list[InputItem])
# The union branches pydantic names in an error's location, left out of a refusal's.
_UNION_BRANCHES = frozenset(
    {"message", "function_call", "function_call_output", "str", "list[InputTextPart]"}
)


class FunctionTool(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["function"]
    name: str = Field(min_length=1)
    description: str | None = None
    parameters: dict[str, object] | None = None
    strict: StrictBool | None = None


class FunctionChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["function"]
    name: str = Field(min_length=1)


class PlainFormat(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["text", "json_object"]


class JsonSchemaFormat(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_by_name=True, serialize_by_alias=True)

    type: Literal["json_schema"]
    name: str = Field(min_length=1, max_length=64)
    schema_: dict[str, object] = Field(alias="schema")
    description: str | None = None
    strict: StrictBool | None = None


class TextConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: Annotated[PlainFormat | JsonSchemaFormat, Field(discriminator="type")] = Field(
        default_factory=lambda: PlainFormat(type="text")
    )


class ResponsesRequest(BaseModel):
    # Extra fields are kept to be refused by name (``serving.responses``); the document
    # says that none is taken.
    model_config = ConfigDict(extra="allow", json_schema_extra={"additionalProperties": False})

    model: str = Field(min_length=1)
    input: Annotated[str, Field(min_length=1)] | Annotated[list[InputItem], Field(min_length=1)]
    instructions: str | None = Field(default=None, description="The first, system message.")
    max_output_tokens: Annotated[int, Field(ge=1), JSON_INTEGER] | None = None
    temperature: StrictFloat | None = Field(default=None, ge=0.0, le=2.0)
    top_p: StrictFloat | None = Field(default=None, gt=0.0, le=1.0)
    stream: StrictBool = False
    user: str | None = None
    metadata: Annotated[dict[str, str], Field(max_length=16)] | None = None
    text: TextConfig | None = None
    tools: list[FunctionTool] | None = None
    tool_choice: Literal["none", "auto", "required"] | FunctionChoice | None = None
    parallel_tool_calls: StrictBool | None = None
    store: Literal[False] | None = Field(
        default=None, description="modelyard is stateless: it stores no response."
    )
    # Sent on as the chat request's fields of the same names, to engines that take them.
    service_tier: str | None = None
    prompt_cache_key: str | None = None
    safety_identifier: str | None = None

    @field_validator("input", mode="before")
    @classmethod
    def _items(cls, value: object) -> object:
        """A list's items validated here, so that a refusal names the item that is wrong
        rather than the string the list is not."""
        if value == "" or value == []:
            raise ValueError("it is empty; send the text, or a list of at least one item")
        if not isinstance(value, list):
            return value
        try:
            return _INPUT_ITEMS.validate_python(value)
        except ValidationError as error:
            # The deepest problem: a content list's part, not the string it is not.
            problem = max(error.errors(include_url=False), key=lambda e: len(e["loc"]))
            where = ".".join(str(part) for part in problem["loc"] if part not in _UNION_BRANCHES)
            raise ValueError(f"item {where}: {problem['msg']}") from None

    @field_validator("store", mode="before")
    @classmethod
    def _stateless(cls, value: object) -> object:
        if value is True:
            raise ValueError(
                "modelyard is stateless and stores no response; send 'store': false or "
                "leave it out, and send the whole conversation in 'input'"
            )
        return value


class OutputText(BaseModel):
    type: Literal["output_text"] = "output_text"
    text: str
    annotations: list[dict[str, object]] = Field(default_factory=list)
    logprobs: list[dict[str, object]] = Field(default_factory=list)


ItemStatus = Literal["in_progress", "completed", "incomplete"]


class OutputMessage(BaseModel):
    id: str
    type: Literal["message"] = "message"
    role: Literal["assistant"] = "assistant"
    status: ItemStatus
    content: list[OutputText]


class OutputFunctionCall(BaseModel):
    id: str
    type: Literal["function_call"] = "function_call"
    call_id: str
    name: str
    arguments: str
    status: ItemStatus


class InputTokensDetails(BaseModel):
    cached_tokens: int = 0
    cache_write_tokens: int = 0


class OutputTokensDetails(BaseModel):
    reasoning_tokens: int = 0


class ResponseUsage(BaseModel):
    input_tokens: int
    input_tokens_details: InputTokensDetails = Field(default_factory=InputTokensDetails)
    output_tokens: int
    output_tokens_details: OutputTokensDetails = Field(default_factory=OutputTokensDetails)
    total_tokens: int


class IncompleteDetails(BaseModel):
    reason: Literal["max_output_tokens", "content_filter"]


class ResponseError(BaseModel):
    code: str
    message: str


class ResponseObject(BaseModel):
    """A response of the Responses API; ``store`` is always false (nothing is kept)."""

    id: str
    object: Literal["response"] = "response"
    created_at: int
    status: Literal["in_progress", "completed", "incomplete", "failed"]
    error: ResponseError | None = None
    incomplete_details: IncompleteDetails | None = None
    instructions: str | None = None
    max_output_tokens: int | None = None
    model: str
    output: list[Annotated[OutputMessage | OutputFunctionCall, Field(discriminator="type")]] = (
        Field(default_factory=list)
    )
    parallel_tool_calls: bool = True
    previous_response_id: None = None
    store: Literal[False] = False
    temperature: float | None = None
    top_p: float | None = None
    text: TextConfig = Field(default_factory=TextConfig)
    tool_choice: Literal["none", "auto", "required"] | FunctionChoice = "auto"
    tools: list[FunctionTool] = Field(default_factory=list)
    truncation: Literal["disabled"] = "disabled"
    usage: ResponseUsage | None = None
    user: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
