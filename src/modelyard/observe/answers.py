"""What a generated answer holds beyond its text, read off the request path (by the
request-log writer, on its thread): the tool calls the model made, assembled from the
relayed deltas, and whether a structured-output answer is the JSON it was asked for."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

FormatError = Literal["invalid_json", "schema_mismatch"]
JSON_FORMATS = frozenset({"json_object", "json_schema"})


def merge_tool_calls(parts: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
    """The tool calls of choice 0, whole: ``parts`` are the ``tool_calls`` lists of its
    chunks' deltas (streamed: each call's name in its first delta, its arguments in
    pieces, by ``index``) or the one list of a non-streamed message (whole calls)."""
    calls: dict[int, dict[str, Any]] = {}
    for part in parts:
        for position, delta in enumerate(part):
            if not isinstance(delta, Mapping):
                continue
            index = delta.get("index", position)
            call = calls.setdefault(
                index if isinstance(index, int) else position,
                {"id": None, "type": "function", "function": {"name": "", "arguments": ""}},
            )
            if delta.get("id"):
                call["id"] = delta["id"]
            if delta.get("type"):
                call["type"] = delta["type"]
            function = delta.get("function")
            if isinstance(function, Mapping):
                call["function"]["name"] += function.get("name") or ""
                call["function"]["arguments"] += function.get("arguments") or ""
    return [calls[index] for index in sorted(calls)]


def tool_names(calls: Sequence[Mapping[str, Any]]) -> list[str]:
    """The functions called, in order (a name at most 64 characters, as OpenAI's)."""
    return [str(call["function"]["name"])[:64] for call in calls]


def format_error(response_format: object, text: str) -> FormatError | None:
    """Why an answer to a JSON ``response_format`` is not what was asked (None: it is, or
    no JSON was asked): not JSON at all, or (``json_schema``) not valid under the schema.
    Validation runs the schema's own rules (``jsonschema-rs``); an unusable schema is not
    held against the answer."""
    if not isinstance(response_format, Mapping):
        return None
    kind = response_format.get("type")
    if kind not in JSON_FORMATS:
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):  # nested deeper than Python's parser goes
        return "invalid_json"
    if kind == "json_object":
        return None if isinstance(value, dict) else "invalid_json"
    spec = response_format.get("json_schema")
    schema = spec.get("schema") if isinstance(spec, Mapping) else None
    if not isinstance(schema, Mapping | bool):
        return None
    return None if _valid(schema, value) else "schema_mismatch"


def _valid(schema: Mapping[str, Any] | bool, value: object) -> bool:
    import jsonschema_rs  # only when an answer has a schema to meet

    try:  # offline: a schema's remote ``$ref`` is never fetched
        validator = jsonschema_rs.validator_for(
            schema if isinstance(schema, bool) else dict(schema), offline=True
        )
    except (jsonschema_rs.ReferencingError, ValueError, TypeError):
        return True  # the schema itself is not one: nothing to hold the answer to
    try:
        return bool(validator.is_valid(value))
    except (ValueError, RecursionError):  # a value too deep to hand to the validator
        return False
