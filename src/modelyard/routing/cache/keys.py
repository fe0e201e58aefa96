"""What makes two requests the same to the response cache: the request normalised (its
fields that shape the answer, in one canonical JSON), the version that serves it and whose
answers it may see (its API key, unless the route shares them)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from modelyard.engines import GenerationRequest

# Fields that change how an answer travels or whom it is for, not what it says.
NOT_IN_KEY = frozenset({"user", "stream_options"})
# What a stored answer (its text) cannot give back: token probabilities, several choices.
UNCACHEABLE_NEEDS = frozenset({"logprobs", "multiple_choices"})
SHARED_SCOPE = "*"


def cacheable(request: GenerationRequest) -> bool:
    """Whether an answer's text says all the answer to ``request`` holds."""
    return not any(need.capability in UNCACHEABLE_NEEDS for need in request.needs)


def deterministic(request: GenerationRequest, parameters: Mapping[str, Any]) -> bool:
    """Temperature 0 (the request's, else the version's default) or a seed."""
    if request.seed is not None:
        return True
    temperature = request.temperature
    if temperature is None:
        temperature = parameters.get("temperature")
    return isinstance(temperature, int | float) and temperature == 0


def query_of(request: GenerationRequest) -> str:
    """The text a semantic cache compares: the last user message, or the prompt."""
    if request.prompt is not None:
        return request.prompt
    for message in reversed(request.messages or ()):
        if message.role == "user":
            return message.content
    return ""


def normalised(request: GenerationRequest, *, without_query: bool = False) -> dict[str, Any]:
    """The fields of ``request`` that shape its answer; with ``without_query`` the text
    ``query_of`` reads is left out (what a semantic cache's neighbours must share)."""
    messages = None
    if request.messages is not None:
        last_user = _last_user(request) if without_query else -1
        messages = [
            {
                "role": m.role,
                "content": None if i == last_user else m.content,
                "openai": None if i == last_user else m.openai,
            }
            for i, m in enumerate(request.messages)
        ]
    return {
        "messages": messages,
        "prompt": None if without_query else request.prompt,
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "stop": list(request.stop),
        "seed": request.seed,
        "presence_penalty": request.presence_penalty,
        "frequency_penalty": request.frequency_penalty,
        "response_format": request.response_format,
        "openai": {k: v for k, v in request.openai.items() if k not in NOT_IN_KEY},
    }


def key_of(scope: str, version: str, fields: Mapping[str, Any]) -> str:
    """A digest of the normalised request, the version and the scope (an API key's id, or
    ``*`` when the route shares its cache)."""
    canonical = json.dumps([scope, version, fields], sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(canonical.encode(), digest_size=20).hexdigest()


def _last_user(request: GenerationRequest) -> int:
    messages = request.messages or ()
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].role == "user":
            return i
    return -1
