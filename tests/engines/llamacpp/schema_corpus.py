"""The real-world JSON schemas the structured-output tests use, with where each comes from.

- ``openai:*``: the JSON schemas pydantic makes of the ``openai`` package's own types
  (request parameters and response objects of the OpenAI API: function-call parameters,
  nested objects, arrays, enums from ``Literal``s), read from the installed package.
- ``data/vendored_schemas.json``: whole schemas or self-contained definitions of the
  schemas check-jsonschema 0.39.0 vendors (SchemaStore, GitHub, Compose, Buildkite, ...),
  each with its file, JSON pointer and license.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydantic

VENDORED = Path(__file__).parent / "data" / "vendored_schemas.json"

OPENAI_TYPES = (
    "shared_params.function_definition:FunctionDefinition",
    "chat.chat_completion_tool_param:ChatCompletionToolParam",
    "chat.chat_completion_message_tool_call:ChatCompletionMessageToolCall",
    "chat.chat_completion_message:ChatCompletionMessage",
    "chat.chat_completion_token_logprob:ChatCompletionTokenLogprob",
    "chat.chat_completion_stream_options_param:ChatCompletionStreamOptionsParam",
    "chat.chat_completion_named_tool_choice_param:ChatCompletionNamedToolChoiceParam",
    "chat.chat_completion_system_message_param:ChatCompletionSystemMessageParam",
    "chat.chat_completion_user_message_param:ChatCompletionUserMessageParam",
    "completion_usage:CompletionUsage",
    "completion_choice:CompletionChoice",
    "embedding:Embedding",
    "create_embedding_response:CreateEmbeddingResponse",
    "model:Model",
    "file_object:FileObject",
    "image:Image",
    "batch_request_counts:BatchRequestCounts",
    "batch_error:BatchError",
    "shared.error_object:ErrorObject",
    "shared.response_format_json_schema:ResponseFormatJSONSchema",
    "shared.response_format_json_object:ResponseFormatJSONObject",
    "shared.function_definition:FunctionDefinition",
    "moderation:Moderation",
    "beta.thread:Thread",
    "vector_store:VectorStore",
    "upload:Upload",
    "audio.transcription:Transcription",
)


@dataclass(frozen=True)
class CorpusSchema:
    name: str
    source: str
    schema: dict[str, Any]


def corpus() -> list[CorpusSchema]:
    return [*_openai_schemas(), *_vendored_schemas()]


def _openai_schemas() -> list[CorpusSchema]:
    out = []
    for spec in OPENAI_TYPES:
        module, name = spec.split(":")
        kind = getattr(importlib.import_module(f"openai.types.{module}"), name)
        schema = pydantic.TypeAdapter(kind).json_schema()
        out.append(CorpusSchema(f"openai:{name}", f"openai.types.{module}", schema))
    return out


def _vendored_schemas() -> list[CorpusSchema]:
    document = json.loads(VENDORED.read_text())
    return [
        CorpusSchema(entry["name"], f"{entry['file']}#{entry['pointer']}", entry["schema"])
        for entry in document["schemas"]
    ]
