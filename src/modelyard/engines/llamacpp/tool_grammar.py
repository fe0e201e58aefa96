"""The GBNF grammar of a reply that calls tools (see ``tools.py``).

Each function a call may name becomes, through the same schema normaliser and converter
as ``response_format`` (``schema.py``, ``grammar.py``), the JSON object
``{"name": <its name>, "arguments": <its parameters schema>}``, name first; a call is one
of them inside ``<tool_call>\\n ... \\n</tool_call>``. A named function: the reply is
one call of it. ``required``: one call, up to ``MAX_CALLS`` with ``parallel_tool_calls``.
``auto``: those calls, or free text that does not start with ``<``: the model chooses with
its first token, and a call it makes always has arguments valid for its function.
"""

from __future__ import annotations

import json
import re
from typing import Any

import llama_cpp

from modelyard.engines.llamacpp.grammar import CONVERTER_ERRORS, _Converter
from modelyard.engines.llamacpp.schema import SchemaRefused, normalise
from modelyard.engines.llamacpp.tools import CLOSE, OPEN, Function, ToolPlan, ToolsRefused

RULE_NAME_UNSAFE = re.compile(r"[^a-zA-Z0-9-]+")
MAX_CALLS = 8  # calls in one reply with parallel_tool_calls: a small model may not stop


def tool_grammar(plan: ToolPlan, vocab: Any) -> str:
    """The grammar of the plan's reply; raises ``ToolsRefused`` naming a function's
    parameters that cannot be turned into a grammar. CPU work: call it in a thread."""
    converter = _ToolConverter()
    calls = " | ".join(_call_rule(converter, function) for function in plan.forced)
    rules = [f"tool-call ::= {_literal(OPEN + chr(10))} ( {calls} ) {_literal(chr(10) + CLOSE)}"]
    several = plan.parallel and plan.choice in ("auto", "required")
    more = f' ( "\\n" tool-call ){{0,{MAX_CALLS - 1}}}' if several else ""
    rules.append(f"tool-calls ::= tool-call{more}")
    if plan.choice == "auto":
        rules.append("tool-text ::= ( [^<] [^\\x00]* )?")
        rules.append("root ::= tool-calls | tool-text")
    else:
        rules.append("root ::= tool-calls")
    gbnf = converter.grammar().rstrip("\n") + "\n" + "\n".join(rules) + "\n"
    sampler = llama_cpp.llama_sampler_init_grammar(vocab, gbnf.encode(), b"root")
    if not sampler:
        raise ToolsRefused("the tools gave a grammar llama.cpp cannot parse", param="tools")
    llama_cpp.llama_sampler_free(sampler)
    return gbnf


class _ToolConverter(_Converter):
    """The converter, naming a referenced schema's rule by its whole reference: two
    functions' ``#/$defs/item`` stay two rules (the converter's own name is ``item``)."""

    def _resolve_ref(self, ref: str) -> str:
        name = "ref-" + RULE_NAME_UNSAFE.sub("-", ref)
        if name not in self._rules and ref not in self._refs_being_resolved:
            self._refs_being_resolved.add(ref)
            self.visit(self._refs[ref], name)
            self._refs_being_resolved.remove(ref)
        return name


def _call_rule(converter: _Converter, function: Function) -> str:
    """Adds the rules of one function's call object; its rule's name."""
    where = f"tools[{function.index}].function.parameters"
    try:
        parameters = normalise(json.loads(json.dumps(function.parameters)))
    except SchemaRefused as error:
        raise ToolsRefused(f"{where}{error.pointer}: {error.reason}", param=where) from error
    try:
        # Each function's "#/..." references resolve within its own parameters.
        resolved = converter.resolve_refs(parameters, f"tool{function.index}")
        call = {
            "type": "object",
            "properties": {"name": {"const": function.name}, "arguments": resolved},
            "required": ["name", "arguments"],
        }
        return converter.visit(call, f"tool-{function.index}")
    except CONVERTER_ERRORS as error:
        raise ToolsRefused(
            f"{where} could not be turned into a grammar: {error}", param=where
        ) from error


def _literal(text: str) -> str:
    return json.dumps(text)
