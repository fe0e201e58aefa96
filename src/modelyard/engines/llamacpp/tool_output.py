"""A tool-calling reply's text as OpenAI tool calls (see ``tools.py``, ``tool_grammar.py``).

``ToolOutput`` sits between the scheduler and the engine's queue (it is the job's
``emit``; scheduler thread only). The grammar fixes the reply's form, so it is parsed as it
comes: once a call's ``<tool_call>{"name": "...", "arguments": `` is complete, its first
delta goes out (index, id, type, name, arguments ""), then its arguments text as it is
generated, until the arguments object closes. Streamed, each delta is a ``Chunk`` with its
OpenAI chunk (``openai``), then the finish (``tool_calls``) as a chunk of its own and a
last ``Chunk`` with the usage; not streamed, one ``Chunk`` holds the whole
``chat.completion``, ``content`` null. An ``auto`` reply that starts with anything but
``<`` is text and passes through untouched.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

from modelyard.engines.base import Chunk, FinishReason, Usage
from modelyard.engines.llamacpp.sequence import Emit
from modelyard.engines.llamacpp.tools import ToolPlan

HEADER = re.compile(r'<tool_call>\s*\{\s*"name"\s*:\s*"((?:[^"\\]|\\.)*)"\s*,\s*"arguments"\s*:')


class ArgumentsScanner:
    """Finds where a JSON value ends in text that comes in pieces."""

    def __init__(self) -> None:
        self.depth = 0
        self.in_string = False
        self.escape = False

    def scan(self, text: str) -> tuple[str, int, bool]:
        """The value's text in ``text`` (leading whitespace left out), how much of
        ``text`` it used, and whether the value is complete."""
        start = 0
        for index, char in enumerate(text):
            if self.in_string:
                if self.escape:
                    self.escape = False
                elif char == "\\":
                    self.escape = True
                elif char == '"':
                    self.in_string = False
            elif char == '"':
                self.in_string = True
            elif char in "{[":
                self.depth += 1
            elif char in "}]":
                self.depth -= 1
                if self.depth == 0:
                    return text[start : index + 1], index + 1, True
            elif self.depth == 0 and char.isspace() and index == start:
                start = index + 1
        return text[start:], len(text), False


class ToolOutput:
    """The job's ``emit`` for a reply under a tool plan: text in, tool calls out."""

    def __init__(self, plan: ToolPlan, stream: bool, emit: Emit) -> None:
        self._emit = emit
        self._stream = stream
        self._calls_only = plan.choice != "auto"
        self._mode: str | None = None  # "calls" or "text", from the reply's first character
        self._raw: list[str] = []
        self._pending = ""  # text not parsed yet
        self._scanner: ArgumentsScanner | None = None  # set while a call's arguments come
        self.calls: list[dict[str, Any]] = []
        self._created = int(time.time())

    def __call__(self, item: Chunk | BaseException) -> None:
        if isinstance(item, BaseException):
            self._emit(item)
            return
        if self._mode is None and item.text:
            as_call = self._calls_only or item.text.startswith("<")
            self._mode = "calls" if as_call else "text"
        if self._mode != "calls":
            self._emit(item)
            return
        self._raw.append(item.text)
        self._feed(item.text)
        if item.finish_reason is not None:
            self._finish(item.finish_reason, item.usage)

    def _feed(self, text: str) -> None:
        self._pending += text
        while self._pending:
            if self._scanner is None:
                found = HEADER.search(self._pending)
                if found is None:
                    return
                self._start(found.group(1))
                self._pending = self._pending[found.end() :]
                self._scanner = ArgumentsScanner()
                continue
            fragment, used, done = self._scanner.scan(self._pending)
            self._pending = self._pending[used:]
            if fragment:
                self.calls[-1]["function"]["arguments"] += fragment
                index = len(self.calls) - 1
                self._delta({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]})
            if done:
                self._scanner = None

    def _start(self, quoted_name: str) -> None:
        name = json.loads(f'"{quoted_name}"')
        call = {
            "id": f"call_{uuid.uuid4().hex[:24]}",
            "type": "function",
            "function": {"name": name, "arguments": ""},
        }
        delta: dict[str, Any] = {"role": "assistant"} if not self.calls else {}
        self.calls.append(call)
        started = {
            "index": len(self.calls) - 1,
            **call,
            "function": {"name": name, "arguments": ""},
        }
        self._delta({**delta, "tool_calls": [started]})

    def _delta(self, delta: dict[str, Any], finish: str | None = None) -> None:
        if not self._stream:
            return
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        self._emit(Chunk(text="", openai=self._envelope("chat.completion.chunk", choice)))

    def _envelope(self, kind: str, choice: dict[str, Any]) -> dict[str, Any]:
        # id and model are serving's: it replaces them when it relays the dict.
        return {
            "id": "",
            "object": kind,
            "created": self._created,
            "model": "",
            "choices": [choice],
        }

    def _finish(self, reason: FinishReason, usage: Usage | None) -> None:
        if not self.calls:  # cut before a call's name was complete: what came, as text
            self._emit(Chunk(text="".join(self._raw), finish_reason=reason, usage=usage))
            return
        finish: FinishReason = "length" if self._scanner is not None else "tool_calls"
        if self._stream:
            self._delta({}, finish)
            self._emit(Chunk(text="", finish_reason=finish, usage=usage))
            return
        message = {"role": "assistant", "content": None, "tool_calls": self.calls}
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
        whole = self._envelope("chat.completion", choice)
        if usage is not None:
            whole["usage"] = {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "total_tokens": usage.total_tokens,
            }
        self._emit(Chunk(text="", finish_reason=finish, usage=usage, openai=whole))
