"""Structured output: every reply of a compiled schema validates; the rest are a 400."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import jsonschema_rs
import pytest

from modelyard.bootstrap import smollm2_path
from modelyard.config import Settings
from modelyard.engines import EngineSpec, GenerationRequest, Message
from modelyard.engines.llamacpp import LlamaCppEngine
from modelyard.engines.llamacpp.grammar import InvalidSchema, to_gbnf
from tests.engines.llamacpp.schema_corpus import corpus

PROMPT = "Reply with a short, realistic JSON example."


# Enough for most replies to finish on 2 shared cores; the cut ones are counted apart.
MAX_TOKENS = 96


def fmt(schema: Any) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": "s", "schema": schema}}


def test_a_refusal_names_the_part_of_the_schema() -> None:
    schema = {"type": "object", "properties": {"tags": {"type": "array", "uniqueItems": True}}}
    with pytest.raises(InvalidSchema) as caught:
        to_gbnf(schema)
    assert caught.value.status == 400
    assert caught.value.param == "response_format"
    assert "/properties/tags/uniqueItems" in str(caught.value)


def test_the_corpus_is_large_and_varied() -> None:
    schemas = corpus()
    assert len(schemas) >= 50
    text = json.dumps([s.schema for s in schemas])
    for keyword in ('"enum"', '"items"', '"properties"', '"format"', '"anyOf"', '"$ref"'):
        assert keyword in text


@pytest.fixture
async def engine() -> AsyncIterator[LlamaCppEngine]:
    spec = EngineSpec("default", 1, "llamacpp", str(smollm2_path()), {"n_ctx": 1024})
    loaded = LlamaCppEngine(spec, Settings())
    await loaded.start()
    yield loaded
    await loaded.aclose()


async def reply(engine: LlamaCppEngine, schema: Any, **sampling: Any) -> tuple[str, str | None]:
    request = GenerationRequest(
        messages=[Message("user", PROMPT)],
        max_tokens=MAX_TOKENS,
        response_format=fmt(schema),
        **sampling,
    )
    chunks = [chunk async for chunk in engine.generate(request)]
    return "".join(c.text for c in chunks), chunks[-1].finish_reason


@pytest.mark.anyio
@pytest.mark.model
async def test_every_reply_of_a_compiled_schema_validates(engine: LlamaCppEngine) -> None:
    schemas = corpus()
    ends: Counter[str] = Counter()
    invalid: list[str] = []
    refused: dict[str, str] = {}

    async def check(index: int) -> None:
        item = schemas[index]
        validator = jsonschema_rs.validator_for(item.schema, validate_formats=True)
        runs = [{"temperature": 0.0}, {"temperature": 0.8, "seed": index}]
        for sampling in runs if index % 8 == 0 else runs[:1]:
            try:
                text, finish = await reply(engine, item.schema, **sampling)
            except InvalidSchema as error:
                assert error.status == 400 and "response_format.json_schema.schema" in str(error)
                refused[item.name] = str(error)
                return
            ends[str(finish)] += 1
            if finish == "stop" and not validator.is_valid(json.loads(text)):
                invalid.append(f"{item.name}: {text}")

    await asyncio.gather(*(check(i) for i in range(len(schemas))))
    compiled = len(schemas) - len(refused)
    share = f"{compiled}/{len(schemas)} ({compiled / len(schemas):.0%})"
    print(f"\ncompiled {share}; replies {dict(ends)}")
    for name, why in sorted(refused.items()):
        print(f"  refused {name}: {why}")
    assert not invalid, invalid
    assert ends["stop"] > 0
    assert compiled / len(schemas) >= 0.8  # today's share; a drop is a regression
