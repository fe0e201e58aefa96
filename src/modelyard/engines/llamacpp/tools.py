"""Tool calling in the embedded engine: what a request asks for, and its prompt.

``ToolPlan.of`` reads a chat request's ``tools``, ``tool_choice`` and
``parallel_tool_calls`` (refusing with 400 what the engine cannot do with them). The
prompt: a GGUF chat template that knows tools (its Jinja source uses ``tools``) gets them
as ``tools=``; any other template gets a system-prompt preamble listing the functions and
the Hermes-style output format, ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``.
Earlier assistant tool calls and tool results are rendered into the conversation in that
same format, so multi-turn conversations work with any template. The reply's grammar is
made in ``tool_grammar.py``; its text becomes OpenAI tool calls in ``tool_output.py``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from modelyard.engines.base import EngineError, GenerationRequest, Message

TOOLS_IN_TEMPLATE = re.compile(r"\btools\b")
OPEN, CLOSE = "<tool_call>", "</tool_call>"
PREAMBLE = (
    "You may call one or more functions to assist with the user query. You are provided "
    "with function signatures within <tools></tools> XML tags:\n<tools>\n{tools}\n</tools>\n\n"
    "For each function call, return a json object with the function name and arguments "
    "within <tool_call></tool_call> XML tags:\n<tool_call>\n"
    '{{"name": <function-name>, "arguments": <args-json-object>}}\n</tool_call>'
)
NO_PARAMETERS: Mapping[str, Any] = {"type": "object", "properties": {}}


class ToolsRefused(EngineError):
    """A tool request the embedded engine cannot honour; ``param`` names the field."""

    status = 400
    code = "invalid_request"
    error_type = "invalid_request_error"

    def __init__(self, message: str, *, param: str) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class Function:
    name: str
    description: str
    parameters: Mapping[str, Any]  # always an object schema
    index: int  # its place in ``tools``, for errors


@dataclass(frozen=True)
class ToolPlan:
    """The functions offered and how the reply must use them. ``choice`` is ``auto``,
    ``required`` or the one function's name (``none`` makes no plan)."""

    functions: tuple[Function, ...]
    choice: str
    parallel: bool

    @classmethod
    def of(cls, request: GenerationRequest) -> ToolPlan | None:
        """The request's tool plan; None when no tools are offered (or ``tool_choice``
        is ``none``). Raises ``ToolsRefused`` (400)."""
        openai = request.openai
        for legacy in ("functions", "function_call"):
            if openai.get(legacy):
                raise ToolsRefused(f"'{legacy}' is not supported here; use 'tools'", param=legacy)
        tools = openai.get("tools") or []
        choice = openai.get("tool_choice") or ("auto" if tools else "none")
        if not tools or choice == "none":
            return None
        _refuse_combinations(request)
        functions = tuple(_function(tool, index) for index, tool in enumerate(tools))
        if isinstance(choice, Mapping):
            choice = choice["function"]["name"]  # serving checked it names a tool
        parallel = openai.get("parallel_tool_calls") is not False
        return cls(functions, str(choice), parallel)

    @property
    def forced(self) -> tuple[Function, ...]:
        """The functions a call may name."""
        if self.choice in ("auto", "required"):
            return self.functions
        return tuple(f for f in self.functions if f.name == self.choice)


def _refuse_combinations(request: GenerationRequest) -> None:
    openai = request.openai
    if openai.get("n") not in (None, 1):
        raise ToolsRefused("tools cannot be combined with n > 1 here", param="n")
    for name in ("logprobs", "top_logprobs"):
        if openai.get(name):
            raise ToolsRefused("tools cannot be combined with logprobs here", param=name)
    if request.response_format is not None:
        raise ToolsRefused(
            "tools cannot be combined with response_format here; use tool_choice 'none' "
            "for a structured answer",
            param="response_format",
        )


def _function(tool: Mapping[str, Any], index: int) -> Function:
    function = tool["function"]  # serving checked every tool is a function with a name
    where = f"tools[{index}].function.parameters"
    parameters = function.get("parameters")
    if parameters is None:
        parameters = NO_PARAMETERS
    if not isinstance(parameters, Mapping):
        raise ToolsRefused(f"{where} must be a JSON schema object", param=where)
    kind = parameters.get("type", "object")
    if kind != "object":
        raise ToolsRefused(f"{where} must describe an object, not {kind!r}", param=where)
    description = function.get("description")
    return Function(
        name=function["name"],
        description=description if isinstance(description, str) else "",
        parameters={**parameters, "type": "object"},
        index=index,
    )


def native_tools(template: str | None) -> bool:
    """Whether the chat template renders ``tools`` itself."""
    return bool(template and TOOLS_IN_TEMPLATE.search(template))


def chat_messages(
    messages: Sequence[Message], plan: ToolPlan | None, native: bool
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The messages for the chat template, and the template's extra arguments."""
    if native:
        rendered = [_native(m) for m in messages]
        extra = {"tools": [_tool(f) for f in plan.functions]} if plan is not None else {}
        return rendered, extra
    rendered = []
    for message in messages:
        one = _as_text(message)
        previous = rendered[-1] if rendered else None
        if previous is not None and one.get("tool") and previous.get("tool"):
            previous["content"] += "\n" + one["content"]  # results of one turn together
        else:
            rendered.append(one)
    for one in rendered:
        one.pop("tool", None)
    return (_with_preamble(rendered, plan) if plan is not None else rendered), {}


def _native(message: Message) -> dict[str, Any]:
    if message.openai is None:
        return {"role": message.role, "content": message.content}
    out = {**message.openai, "role": message.role, "content": message.content}
    if out.get("tool_calls"):
        out["tool_calls"] = [
            {**call, "function": {**call["function"], "arguments": _loaded(call)}}
            for call in out["tool_calls"]
        ]
    return out


def _loaded(call: Mapping[str, Any]) -> Any:
    """A call's arguments as an object (templates render them with ``tojson``)."""
    arguments = call["function"].get("arguments")
    try:
        return json.loads(arguments) if isinstance(arguments, str) else arguments
    except ValueError:
        return arguments


def _as_text(message: Message) -> dict[str, Any]:
    """A message in the Hermes text form: calls inside the assistant's text, a tool result
    as a user message (every template knows the user role)."""
    openai = message.openai or {}
    if message.role in ("tool", "function"):
        content = f"<tool_response>\n{message.content}\n</tool_response>"
        return {"role": "user", "content": content, "tool": True}
    calls = openai.get("tool_calls") or []
    blocks = [_call_text(call["function"]["name"], _loaded(call)) for call in calls]
    content = "\n".join(part for part in (message.content, *blocks) if part)
    return {"role": message.role, "content": content}


def _call_text(name: str, arguments: Any) -> str:
    call = json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False)
    return f"{OPEN}\n{call}\n{CLOSE}"


def _tool(function: Function) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": function.name,
            "description": function.description,
            "parameters": dict(function.parameters),
        },
    }


def _with_preamble(messages: list[dict[str, Any]], plan: ToolPlan) -> list[dict[str, Any]]:
    tools = "\n".join(json.dumps(_tool(f), ensure_ascii=False) for f in plan.functions)
    preamble = PREAMBLE.format(tools=tools)
    if messages and messages[0]["role"] == "system":
        first = messages[0]
        return [{**first, "content": f"{first['content']}\n\n{preamble}"}, *messages[1:]]
    return [{"role": "system", "content": preamble}, *messages]
