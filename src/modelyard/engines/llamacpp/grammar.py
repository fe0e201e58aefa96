"""``response_format`` as a GBNF grammar for llama.cpp's grammar sampler.

A schema is normalised (``schema.py``: what the grammar cannot guarantee is refused, with
its JSON pointer), converted by llama-cpp-python's ``SchemaConverter`` and parsed once by
llama.cpp to prove it loads. ``GrammarCache`` keeps the grammars of recent schemas, keyed
by their canonical JSON, so a schema is compiled once; ``json_object`` is the grammar of
any JSON object.
"""

from __future__ import annotations

import collections
import json
import re
import threading
from collections.abc import Mapping
from typing import Any

import llama_cpp
from llama_cpp.llama_grammar import PRIMITIVE_RULES, RESERVED_NAMES, SchemaConverter

from modelyard.engines.base import EngineError
from modelyard.engines.llamacpp.schema import SchemaRefused, normalise

# A JSON string's character: no raw quote, backslash or control character (the converter's
# own rule lets a raw newline through, which is not JSON).
JSON_CHAR = r'[^"\\\x7F\x00-\x1F] | [\\] (["\\/bfnrt] | "u" [0-9a-fA-F]{4})'
LITERAL_ESCAPES = {"\r": "\\r", "\n": "\\n", '"': '\\"', "\\": "\\\\"}
LITERAL_ESCAPE_RE = re.compile(r'[\r\n"\\]')
# The converter reports a schema it cannot read with these (asserts included).
CONVERTER_ERRORS = (AssertionError, ValueError, KeyError, TypeError, IndexError, RecursionError)
CACHE_SIZE = 256


class InvalidSchema(EngineError):
    """``response_format`` holds a schema the engine cannot turn into a grammar."""

    status = 400
    code = "invalid_schema"
    error_type = "invalid_request_error"
    param = "response_format"


def schema_of(response_format: Mapping[str, Any] | None) -> Any:
    """The schema a reply must match; None: the reply is free text."""
    if response_format is None:
        return None
    kind = response_format.get("type")
    if kind in (None, "text"):
        return None
    if kind == "json_object":
        return {"type": "object"}
    if kind != "json_schema":
        raise InvalidSchema(f"response_format type {kind!r} is not one of text, json_object, "
                            "json_schema")  # fmt: skip
    spec = response_format.get("json_schema")
    schema = spec.get("schema") if isinstance(spec, Mapping) else None
    if not isinstance(schema, Mapping | bool):
        raise InvalidSchema("response_format.json_schema.schema must be a JSON schema object")
    return schema


def to_gbnf(schema: Any) -> str:
    """The GBNF grammar of replies that validate against ``schema``."""
    try:
        normalised = normalise(json.loads(json.dumps(schema)))  # a private, plain copy
    except SchemaRefused as error:
        raise InvalidSchema(
            f"response_format.json_schema.schema{error.pointer}: {error.reason}"
        ) from error
    converter = _Converter()
    try:
        resolved = converter.resolve_refs(normalised, "")
        converter.visit(resolved, "")
    except CONVERTER_ERRORS as error:
        raise InvalidSchema(
            f"response_format.json_schema.schema could not be turned into a grammar: {error}"
        ) from error
    return converter.grammar()


class _Converter(SchemaConverter):
    """llama-cpp-python's converter, with verbatim GBNF rules (``x-gbnf``), JSON-safe
    string characters and backslashes escaped in literals."""

    def __init__(self) -> None:
        super().__init__(  # type: ignore[no-untyped-call]
            prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False
        )

    def visit(self, schema: Any, name: str) -> str:
        rule = schema.get("x-gbnf") if isinstance(schema, dict) else None
        if rule is None:
            return str(super().visit(schema, name))  # type: ignore[no-untyped-call]
        self._add_primitive("char", PRIMITIVE_RULES["char"])  # format rules may use it
        rule_name = name + "-" if name in RESERVED_NAMES else name or "root"
        return str(self._add_rule(rule_name, rule))  # type: ignore[no-untyped-call]

    def _format_literal(self, literal: str) -> str:
        return '"' + LITERAL_ESCAPE_RE.sub(lambda m: LITERAL_ESCAPES[m.group(0)], literal) + '"'

    def grammar(self) -> str:
        if "char" in self._rules:
            self._rules["char"] = JSON_CHAR
        return str(self.format_grammar())  # type: ignore[no-untyped-call]


class GrammarCache:
    """Compiled grammars of the most recent distinct schemas (LRU), for one model's vocab.
    Compiling is CPU work: callers run ``grammar_for`` in a worker thread."""

    def __init__(self, vocab: Any, size: int = CACHE_SIZE) -> None:
        self._vocab = vocab
        self._size = size
        self._grammars: collections.OrderedDict[str, str | InvalidSchema] = (
            collections.OrderedDict()
        )
        self._lock = threading.Lock()

    def grammar_for(self, response_format: Mapping[str, Any] | None) -> str | None:
        """The grammar of ``response_format`` (None: unconstrained); raises InvalidSchema."""
        schema = schema_of(response_format)
        if schema is None:
            return None
        key = json.dumps(schema, sort_keys=True, separators=(",", ":"))
        with self._lock:
            found = self._grammars.get(key)
            if found is not None:
                self._grammars.move_to_end(key)
        if found is None:
            found = self._compile(schema)
            with self._lock:
                self._grammars[key] = found
                while len(self._grammars) > self._size:
                    self._grammars.popitem(last=False)
        if isinstance(found, InvalidSchema):
            # A fresh error per request: the cached one carries another traceback.
            raise InvalidSchema(str(found))
        return found

    def _compile(self, schema: Any) -> str | InvalidSchema:
        try:
            gbnf = to_gbnf(schema)
        except InvalidSchema as error:
            return error  # remembered too: a bad schema sent again is refused at once
        sampler = llama_cpp.llama_sampler_init_grammar(self._vocab, gbnf.encode(), b"root")
        if not sampler:
            return InvalidSchema(
                "response_format.json_schema.schema gave a grammar llama.cpp cannot parse"
            )
        llama_cpp.llama_sampler_free(sampler)
        return gbnf

    def __len__(self) -> int:
        with self._lock:
            return len(self._grammars)
