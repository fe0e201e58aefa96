"""What makes two requests the same to the cache, and which requests it may answer."""

from __future__ import annotations

from dataclasses import replace

from modelyard.engines import GenerationRequest, Message, Need
from modelyard.routing.cache.keys import (
    cacheable,
    deterministic,
    key_of,
    normalised,
    query_of,
)

CHAT = GenerationRequest(
    messages=[Message("system", "be brief"), Message("user", "hi"), Message("user", "why?")],
    temperature=0,
)


def key(request: GenerationRequest, scope: str = "k1", version: str = "chat@1") -> str:
    return key_of(scope, version, normalised(request))


def test_the_key_covers_the_request_the_version_and_the_scope() -> None:
    assert key(CHAT) == key(replace(CHAT, stream=False))  # how it travels is not in it
    assert key(CHAT) == key(replace(CHAT, openai={"user": "u1"}))
    assert key(CHAT) != key(CHAT, scope="k2")
    assert key(CHAT) != key(CHAT, version="chat@2")
    assert key(CHAT) != key(replace(CHAT, max_tokens=5))
    assert key(CHAT) != key(replace(CHAT, openai={"top_k": 3}))
    assert key(CHAT) != key(replace(CHAT, messages=[Message("user", "hi")]))


def test_a_semantic_bucket_leaves_out_only_the_last_user_message() -> None:
    other = replace(CHAT, messages=[*CHAT.messages[:2], Message("user", "how come?")])  # type: ignore[index]
    assert query_of(CHAT) == "why?" and query_of(other) == "how come?"
    bucket = normalised(CHAT, without_query=True)
    assert bucket == normalised(other, without_query=True)
    assert bucket != normalised(replace(other, temperature=0.5), without_query=True)
    assert query_of(GenerationRequest(prompt="once upon")) == "once upon"


def test_only_deterministic_requests_by_default() -> None:
    assert deterministic(CHAT, {})
    assert not deterministic(replace(CHAT, temperature=0.7), {})
    assert deterministic(replace(CHAT, temperature=0.7, seed=1), {})
    assert not deterministic(replace(CHAT, temperature=None), {})  # OpenAI's default: 1
    assert deterministic(replace(CHAT, temperature=None), {"temperature": 0})


def test_answers_with_more_than_text_are_not_cacheable() -> None:
    assert cacheable(replace(CHAT, needs=(Need("response_format", "structured_output"),)))
    assert not cacheable(replace(CHAT, needs=(Need("logprobs", "logprobs"),)))
    assert not cacheable(replace(CHAT, needs=(Need("n", "multiple_choices"),)))
